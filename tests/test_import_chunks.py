"""A CSV read a chunk at a time (:attr:`~dispatchwatch.imports.readers.Table.chunks`) and its
rows batched a chunk at a time (``run._chunk_batches``): the same rows, numbers, errors and
batches as row by row (``Table.rows``, ``run._batches``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchwatch.imports import run
from dispatchwatch.imports.readers import ImportFileError, open_table
from dispatchwatch.imports.rows import RowError
from dispatchwatch.imports.run import FileReport
from dispatchwatch.scraper import RawRow


def _rows_and_chunks(path: Path, size: int) -> tuple[list[Any], list[Any]]:
    """Every ``(number, row)`` of ``path`` read row by row, then chunk by chunk (each a list
    of what was read until an error, then the error's text)."""
    results = []
    for chunked in (False, True):
        got: list[Any] = []
        with open_table(path, "csv") as table:
            try:
                if chunked:
                    assert table.chunks is not None
                    for numbers, rows in table.chunks(size):
                        assert len(numbers) == len(rows) and 0 < len(rows) <= size
                        got += zip(numbers, rows, strict=True)
                else:
                    got += table.rows
            except ImportFileError as exc:
                got.append(str(exc))
        results.append(got)
    return results[0], results[1]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_csv_chunks_are_its_rows(tmp_path: Path, size: int) -> None:
    """Blank lines (numbered, skipped), a record over two lines, the end of the file."""
    path = tmp_path / "a.csv"
    path.write_text('id,t\n1,a\n\n2,b\n3,"x\ny"\n\n\n4,c\n5,d\n6,e\n', encoding="utf-8")
    rows, chunks = _rows_and_chunks(path, size)
    assert chunks == rows
    assert [number for number, _ in rows] == [2, 4, 5, 8, 9, 10]


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_csv_chunks_stop_where_the_rows_do(tmp_path: Path, size: int) -> None:
    """Bytes that are not UTF-8 part way: the rows before, then the same error."""
    path = tmp_path / "a.csv"
    lines = b"".join(b"%d,x\n" % n for n in range(20000))
    path.write_bytes(b"id,t\n" + lines + b"\xff\xfe,1\n" + lines)
    rows, chunks = _rows_and_chunks(path, size)
    assert chunks == rows
    assert "cannot read past row" in rows[-1] and len(rows) > 1000


def _pair(incident_id: str) -> tuple[RawRow, None]:
    return RawRow(incident_id, "2016-01-01T00:00:00Z"), None


@settings(max_examples=300, deadline=None)
@given(
    ids=st.lists(st.sampled_from("aabbc"), max_size=60),
    bad=st.sets(st.integers(0, 59), max_size=8),
    size=st.integers(1, 9),
    chunk=st.integers(1, 12),
    gaps=st.lists(st.integers(1, 3), min_size=60, max_size=60),
)
def test_chunk_batches_are_the_row_batches(
    ids: list[str], bad: set[int], size: int, chunk: int, gaps: list[int]
) -> None:
    """Incidents on several rows in a row (never cut between), unreadable rows, row numbers
    with gaps: the same batches, problems (in order, between the same batches) and resume
    positions."""
    numbers = []
    number = 1
    for gap in gaps[: len(ids)]:
        number += gap
        numbers.append(number)
    results: list[Any] = [
        RowError(f"bad {n}") if i in bad else _pair(ids[i]) for i, n in enumerate(numbers)
    ]

    def row_by_row() -> list[Any]:
        report, position, out = FileReport(Path("x"), "f"), [0], []
        for batch, first, last in run._batches(
            ((n, run.RowProblem(n, str(r)) if isinstance(r, RowError) else r)
             for n, r in zip(numbers, results, strict=True)),
            size, report, position,
        ):  # fmt: skip
            out.append((batch, first, last, position[0], [str(p) for p in report.problems]))
        out.append((position[0], report.bad, [str(p) for p in report.problems]))
        return out

    def chunk_by_chunk() -> list[Any]:
        report, position, out = FileReport(Path("x"), "f"), [0], []
        chunks = [
            (range(0), list(range(k, min(k + chunk, len(results)))))
            for k in range(0, len(results), chunk)
        ]
        chunks = [(numbers[c[0] : c[-1] + 1], c) for _, c in chunks]

        def many(indexes: list[int]) -> list[Any]:
            return [results[i] for i in indexes]

        for batch, first, last in run._chunk_batches(chunks, many, size, report, position):
            out.append((batch, first, last, position[0], [str(p) for p in report.problems]))
        out.append((position[0], report.bad, [str(p) for p in report.problems]))
        return out

    assert chunk_by_chunk() == row_by_row()


@pytest.mark.parametrize("on_error", ["skip", "stop"])
def test_an_import_read_in_chunks_is_the_import_read_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_error: str
) -> None:
    """New Orleans rows (read many at a time by the live feed's reader), some without an ID
    or with an unreadable time, blank lines: archive and report as read row by row."""
    from test_import_ahead import _archive_rows, _nola

    from dispatchwatch.archive import Archive
    from dispatchwatch.config import default_feed
    from dispatchwatch.imports import readers
    from dispatchwatch.imports.mapping import load_mapping

    path = _nola(tmp_path / "nola.csv", 2500)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for n in (40, 41, 700, 1599):  # no ID; an unreadable time; blank lines
        lines[n] = "," + lines[n].split(",", 1)[1]
        lines[n + 300] = lines[n + 300].replace("/2016 ", "/2016 x", 1)
        lines[n + 600] = "\n"
    path.write_text("".join(lines), encoding="utf-8")
    open_text = readers._open_text
    reports = []
    for name, chunked in (("rows.db", False), ("chunks.db", True)):

        def opened(*args: Any, chunked: bool = chunked) -> Any:
            table = open_text(*args)
            if not chunked:
                table.chunks = None
            return table

        monkeypatch.setattr(readers, "_open_text", opened)
        with Archive(tmp_path / name) as archive:
            report = run.import_file(
                archive, default_feed("new-orleans-police"), path,
                load_mapping("new-orleans-socrata-csv"), batch_size=150, on_error=on_error,
            )  # fmt: skip
        report.seconds = 0.0
        reports.append(report)
    assert reports[0] == reports[1]
    assert reports[0].bad == 8
    assert _archive_rows(tmp_path / "chunks.db") == _archive_rows(tmp_path / "rows.db")


def test_rows_read_many_at_a_time_are_checked_as_one_by_one(tmp_path: Path) -> None:
    """The ID and time checks inlined in a ``many`` mapper: the same rows (the time as UTC
    text) and the same errors as each row mapped alone."""
    from test_import import NOLA_HEADER

    from dispatchwatch.imports.mapping import load_mapping
    from dispatchwatch.imports.rows import compile_calls

    mapping = load_mapping("new-orleans-socrata-csv")
    mapper = compile_calls(mapping, NOLA_HEADER, keyed=False, zone="America/Chicago", where="test")
    base = ["21", "COMPLAINT OTHER", "1H", "21", "COMPLAINT OTHER", "1H", "3670000", "530000"]
    tail = ["", "", "", "NAT", "Necessary Action Taken", "N", "1A01", "054XX Tulane Ave",
            "70112", "1", "(29.95, -90.07)"]  # fmt: skip
    times = [
        "1/1/2016 00:23:00", " 1/1/2016 00:23:00 ", "3/13/2016 2:30:00", "11/6/2016 1:30:00",
        "2016-01-01T00:23:00", "2016-01-01T00:23:00.000", "2016-01-01 00:23:00Z",
        "1/1/2016 12:23 PM", "1/1/2016 24:00:00", "2/30/2016 00:00:00", "x", "", "  ",
        "1451629380", "2016-01-01T00:23:00-05:00",
    ]  # fmt: skip
    rows = [
        [incident_id, *base, when, *tail]
        for incident_id in ("A0000116", " A0000216 ", "", "  ")
        for when in times
    ]
    assert len(rows[0]) == len(NOLA_HEADER)

    def one(row: list[str]) -> Any:
        try:
            return mapper(row)
        except RowError as exc:
            return str(exc)

    many = [str(r) if isinstance(r, RowError) else r for r in mapper.many(rows)]  # type: ignore[attr-defined]
    assert many == [one(row) for row in rows]
    assert sum(isinstance(r, str) for r in many) > 10
