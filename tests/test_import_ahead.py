"""``dispatchwatch import`` with its reading, mapping and normalization one batch ahead in a
forked child (:mod:`dispatchwatch.imports.ahead`): the archive and the report are what the
import gives in one process, with unreadable rows, incidents listed on several rows across
batch cuts, a child that dies, and a file unreadable part way."""

from __future__ import annotations

import csv
import os
import random
import sqlite3
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_import import FOIA_HEADER, NOLA_HEADER

from dispatchwatch.archive import Archive
from dispatchwatch.config import default_feed
from dispatchwatch.imports import ahead, run
from dispatchwatch.imports.mapping import load_mapping
from dispatchwatch.imports.readers import ImportFileError
from dispatchwatch.imports.run import FileReport, import_file

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="no fork here (not Linux)"
)


@pytest.fixture(autouse=True)
def _a_spare_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the machine's load (the tests compare both ways on purpose)."""
    monkeypatch.setattr(ahead, "spare_core", lambda: True)


STREETS = ["W MADISON ST", "N STATE ST", "S PULASKI RD", "Tulane Ave", "Canal St"]
BATCH = 150


def _us(moment: datetime) -> str:
    return f"{moment.month}/{moment.day}/{moment.year} {moment:%H:%M:%S}"


def _foia(path: Path, rows: int, bad: bool, seed: int = 7) -> Path:
    """Chicago FOIA rows: some incidents on two rows in a row (a batch is never cut between
    them), some rows without an ID or with an unreadable time when ``bad``."""
    rng = random.Random(seed)
    moment = datetime(2016, 3, 12)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FOIA_HEADER)
        number = 0
        while number < rows:
            moment += timedelta(seconds=rng.randint(1, 90))
            event = f"16{number:07d}"
            for repeat in range(2 if rng.random() < 0.1 else 1):
                cells = [
                    event, _us(moment + timedelta(seconds=repeat)), rng.choice("ABC"),
                    rng.choice(["1A", "2B"]), "011", "1133",
                    f"{rng.randint(1, 99) * 100 + rng.randint(0, 99)} {rng.choice(STREETS)}",
                    "", rng.choice(["ADVISED", ""]), "911",
                ]  # fmt: skip
                if bad and rng.random() < 0.01:
                    cells[rng.choice([0, 1])] = rng.choice(["", "not a time"])
                writer.writerow(cells)
                number += 1
    return path


def _nola(path: Path, rows: int, seed: int = 9) -> Path:
    """New Orleans rows (read by the live feed's reader, many at a time), points as
    ``(lat, lon)`` or as state-plane MapX/MapY only."""
    rng = random.Random(seed)
    moment = datetime(2016, 1, 1)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(NOLA_HEADER)
        for n in range(rows):
            moment += timedelta(seconds=rng.randint(1, 600))
            lat, lon = 29.9 + rng.random() * 0.1, -90.1 + rng.random() * 0.1
            location = f"({lat:.7f}, {lon:.7f})" if rng.random() < 0.8 else "(0.0, 0.0)"
            writer.writerow(
                [
                    f"A{n:07d}16", "21", "COMPLAINT OTHER", "1H", "21", "COMPLAINT OTHER", "1H",
                    str(3670000 + rng.randint(0, 9000)), str(530000 + rng.randint(0, 9000)),
                    _us(moment), _us(moment + timedelta(minutes=5)), "", "", "NAT",
                    "Necessary Action Taken", "N", "1A01",
                    f"{rng.randint(1, 99):03d}XX {rng.choice(STREETS)}", "70112", "1", location,
                ]
            )  # fmt: skip
    return path


def _archive_rows(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        return {
            "incidents": conn.execute("SELECT * FROM incidents ORDER BY rowid").fetchall(),
            "versions": conn.execute("SELECT * FROM incident_versions ORDER BY id").fetchall(),
            "polls": conn.execute(
                "SELECT feed, kind, outcome, source, new, changed, gone, incidents FROM polls "
                "ORDER BY id"
            ).fetchall(),
        }
    finally:
        conn.close()


def _import(db: Path, feed: str, path: Path, mapping: str, fork: bool, **options) -> FileReport:
    """One import, its batches made in a child process or not (forced either way, as
    test_parseahead forces its child: an idle thread another test left running is no harm)."""
    with pytest.MonkeyPatch.context() as patch, Archive(db) as archive:
        patch.setattr(run, "can_fork", lambda size: fork)
        report = import_file(
            archive, default_feed(feed), path, load_mapping(mapping), batch_size=BATCH, **options
        )
    assert report.ahead is fork
    return report


def _same(tmp_path: Path, feed: str, path: Path, mapping: str, **options) -> FileReport:
    here = _import(tmp_path / "here.db", feed, path, mapping, False, **options)
    forked = _import(tmp_path / "forked.db", feed, path, mapping, True, **options)
    for report in (here, forked):
        report.seconds, report.ahead = 0.0, False
    assert forked == here
    assert _archive_rows(tmp_path / "forked.db") == _archive_rows(tmp_path / "here.db")
    return here


@pytest.mark.parametrize("on_error", ["skip", "stop"])
def test_a_file_made_ahead_is_archived_as_made_here(tmp_path: Path, on_error: str) -> None:
    path = _foia(tmp_path / "foia.csv", 3000, bad=on_error == "skip")
    report = _same(tmp_path, "chicago-police", path, "chicago-oemc-foia", on_error=on_error)
    assert report.outcome == "imported" and report.polls > 10
    rows = len(path.read_text().splitlines()) - 1
    assert report.rows == rows and report.imported + report.bad == rows
    assert (report.bad > 10) is (on_error == "skip")


def test_a_stopping_import_of_a_bad_file_writes_nothing_either_way(tmp_path: Path) -> None:
    path = _foia(tmp_path / "foia.csv", 3000, bad=True)
    report = _same(tmp_path, "chicago-police", path, "chicago-oemc-foia", on_error="stop")
    assert report.outcome == "failed" and report.bad > 10 and report.imported == 0
    assert len(report.problems) == min(report.bad, 20)
    assert _archive_rows(tmp_path / "forked.db")["incidents"] == []


@pytest.mark.parametrize("on_error", ["skip", "stop"])
def test_a_row_function_read_many_at_a_time_ahead(tmp_path: Path, on_error: str) -> None:
    path = _nola(tmp_path / "nola.csv", 2500)
    report = _same(
        tmp_path, "new-orleans-police", path, "new-orleans-socrata-csv", on_error=on_error
    )
    assert report.imported == 2500


@pytest.mark.parametrize("on_error", ["skip", "stop"])
def test_a_child_that_dies_leaves_the_rest_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_error: str
) -> None:
    """The child dies after sending a few batches: this process reads on from the first row
    those did not account for; nothing is archived twice or lost, no bad row counted twice."""
    path = _foia(tmp_path / "foia.csv", 3000, bad=on_error == "skip", seed=11)
    expected = _import(tmp_path / "here.db", "chicago-police", path, "chicago-oemc-foia", False,
                       on_error=on_error)  # fmt: skip
    flat = ahead._flat
    sent = [0]
    parent = os.getpid()

    def dies(piece: ahead.Piece) -> tuple:
        sent[0] += 1
        if os.getpid() != parent and sent[0] > 4:
            os._exit(3)  # (the child: as if killed)
        return flat(piece)

    monkeypatch.setattr(ahead, "_flat", dies)
    report = _import(tmp_path / "forked.db", "chicago-police", path, "chicago-oemc-foia", True,
                     on_error=on_error)  # fmt: skip
    for each in (report, expected):
        each.seconds, each.ahead = 0.0, False
    assert report == expected
    assert _archive_rows(tmp_path / "forked.db") == _archive_rows(tmp_path / "here.db")


def test_a_file_unreadable_part_way_stops_where_it_does_here(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 far into the file: the same error, after the same batches
    (with --on-error skip the batches before it stay archived)."""
    path = _foia(tmp_path / "foia.csv", 3000, bad=False)
    data = path.read_bytes()
    cut = data.index(b"\n", len(data) * 3 // 4) + 1
    path.write_bytes(data[:cut] + b"16\xff\xfe9999,1/1/2016 00:00:00\n" + data[cut:])
    errors = []
    for name, fork in (("here.db", False), ("forked.db", True)):
        with pytest.raises(ImportFileError) as caught:
            _import(tmp_path / name, "chicago-police", path, "chicago-oemc-foia", fork,
                    on_error="skip")  # fmt: skip
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "cannot read past row" in errors[0]
    archived = _archive_rows(tmp_path / "forked.db")
    assert archived == _archive_rows(tmp_path / "here.db")
    assert len(archived["polls"]) > 5


def test_no_fork_with_threads_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead.threading, "active_count", lambda: 2)
    assert not ahead.can_fork(ahead.MIN_BYTES)
    monkeypatch.setattr(ahead.threading, "active_count", lambda: 1)
    assert ahead.can_fork(ahead.MIN_BYTES)
    assert not ahead.can_fork(ahead.MIN_BYTES - 1)


def test_no_fork_without_a_spare_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real spare_core
    cores = os.cpu_count() or 1
    monkeypatch.setattr(ahead.os, "getloadavg", lambda: (cores - 0.6, 0.0, 0.0))
    assert ahead.spare_core()
    monkeypatch.setattr(ahead.os, "getloadavg", lambda: (cores - 0.4, 9.0, 9.0))
    assert not ahead.spare_core()
    assert not ahead.can_fork(ahead.MIN_BYTES)


class Label(str):
    """A str subclass (marshal refuses those)."""


def test_batches_come_back_equal_through_marshal_or_pickle() -> None:
    """Plain values go through marshal, anything else (a JSON export's Decimal, a datetime, a
    str subclass) through pickle: equal values, types and dict order either way."""
    from decimal import Decimal

    from dispatchwatch.archive import StoredIncidents
    from dispatchwatch.imports.spool import Batch, Spool, dumps, loads
    from dispatchwatch.incident import Incident

    plain = Incident("f", "1", "2016-01-01T06:00:00Z", "A", None, None, None, "54XX LAUREL ST",
                     "New Orleans", "1", None, "E1 E2", 29.95, -90.1,
                     {"z": "1", "a": True, "n": [1, {"c": None}], "f": -0.0})  # fmt: skip
    odd = Incident("f", "2", None, None, None, None, None, None, None, None, None, None, None,
                   None, {"d": Decimal("1.50"), "t": datetime(2016, 1, 1), "l": Label("x")})  # fmt: skip
    assert dumps((1, "a"))[:1] == b"m" and dumps(odd.extra)[:1] == b"p"
    assert loads(dumps(plain.extra)) == plain.extra
    assert list(loads(dumps(plain.extra))) == ["z", "a", "n", "f"]
    assert type(loads(dumps(odd.extra))["d"]) is Decimal
    assert type(loads(dumps(odd.extra))["l"]) is Label
    # The spool keeps a batch as the archive stores it (extra as its JSON text).
    with Spool() as spool:
        spool.add(Batch([plain], 2, 2, 1))
        spool.add(Batch(StoredIncidents.of([odd, plain]), 3, 5, 3))
        back = list(spool)
    assert [(b.incidents, b.first, b.last, b.rows) for b in back] == [
        (StoredIncidents.of([plain]), 2, 2, 1), (StoredIncidents.of([odd, plain]), 3, 5, 3),
    ]  # fmt: skip
    assert back[1].incidents.columns[-1][0] == '{"d": "1.50", "l": "x", "t": "2016-01-01 00:00:00"}'


def test_a_file_hashed_beside_the_child_is_known_again_by_its_bytes(tmp_path: Path) -> None:
    """The SHA-256 of a file no earlier import has its size of is computed while the child
    reads the first batch; the ``imports`` row holds it, so the same file is skipped next
    time, and another of the same size (another hash) is not."""
    db = tmp_path / "a.db"
    path = _nola(tmp_path / "nola.csv", 400)
    report = _import(db, "new-orleans-police", path, "new-orleans-socrata-csv", True)
    assert report.outcome == "imported" and report.sha256 == run.file_sha256(path)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT sha256, bytes FROM imports").fetchall() == [
        (report.sha256, path.stat().st_size)
    ]
    conn.close()
    again = _import(db, "new-orleans-police", path, "new-orleans-socrata-csv", False)
    assert again.outcome == "already_imported" and again.sha256 == report.sha256
    body = path.read_bytes()
    other = tmp_path / "other.csv"
    other.write_bytes(body.replace(b"A000000016", b"A000000017", 1))  # same size
    assert other.stat().st_size == path.stat().st_size
    third = _import(db, "new-orleans-police", other, "new-orleans-socrata-csv", True)
    assert third.outcome == "imported" and third.sha256 == run.file_sha256(other)
