"""Deferred indexes for large bulk jobs (bulkload.py): the archive a deferred job leaves is the
one the row-by-row path leaves, row for row and search for search; a job killed midway
(SIGKILL) leaves an archive that the next open repairs into that same archive; Ctrl-C
restores before it returns; small jobs, big archives and a held run lock take the normal path.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dispatchwatch import bulkload
from dispatchwatch.archive import Archive
from dispatchwatch.config import parse_config
from dispatchwatch.incident import Incident
from dispatchwatch.pipeline import ingest_files
from dispatchwatch.runlock import AlreadyRunningError, RunLock

START = datetime(2024, 11, 2, 12, 0, 0)
FEED = parse_config("feeds:\n  seattle-fire-open-data: {}\n").feeds["seattle-fire-open-data"]
PAGES = 8

#: Columns whose values are the time of the run, not of the data.
RUN_TIMES = {
    "feeds": {"added_at", "updated_at"},
    "polls": {"started_at", "duration_ms"},
    "pages": {"first_at", "last_at"},
    "poll_log": {"started_at", "duration_ms", "local_time"},
    "imports": {"started_at", "completed_at"},
}


TYPES = ("Aid Response", "Medic Response", "Rubbish Fire")


def _row(i: int, page: int) -> dict[str, object]:
    when = START + timedelta(seconds=i * 599)
    street = f"{100 + i * 7} Summit Av" if i % 4 else "Pine St / 3rd Av"
    return {
        "incident_number": f"F24{i:07d}", "type": TYPES[(i + page) % 3], "address": street,
        "datetime": when.isoformat() + ".000", "latitude": f"{47.5 + i / 1000:.6f}",
        "longitude": "-122.3", "unit": f"E{i % 9}" if i % 2 else "",
    }  # fmt: skip


def _rows(page: int) -> list[dict[str, object]]:
    """60 rows; pages overlap by 20, and a later page changes their type."""
    return [_row(i, page) for i in range(page * 40, page * 40 + 60)]


@pytest.fixture
def pages(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "pages"
    folder.mkdir()
    files = []
    for number in range(PAGES):
        path = folder / f"page_{number}.json"
        path.write_text(json.dumps(_rows(number)))
        files.append(path)
    return files


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """These pages (~60 KB) count as a large job."""
    monkeypatch.setattr(bulkload, "MIN_ROWS", 10)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    skip = RUN_TIMES.get(table, set())
    return [row[1] for row in conn.execute(f"PRAGMA table_info([{table}])") if row[1] not in skip]


def dump(path: Path) -> dict[str, object]:
    """Everything a user can read: every table and view row for row (run times left out),
    the schema, and what full-text search finds for every word archived."""
    conn = sqlite3.connect(path)
    try:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'incidents_fts%' ORDER BY name"
            )
        ]
        out: dict[str, object] = {}
        for name in names:
            columns = ", ".join(f"[{c}]" for c in _columns(conn, name))
            out[name] = conn.execute(f"SELECT {columns} FROM [{name}] ORDER BY 1, 2").fetchall()
        out["schema"] = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        words = {
            word
            for (text,) in conn.execute(
                "SELECT call_type || ' ' || coalesce(address, '') FROM incidents"
            )
            for word in text.replace("/", " ").split()
        }
        assert len(words) > 10
        out["search"] = {
            word: conn.execute(
                "SELECT rowid FROM incidents_fts WHERE incidents_fts MATCH ? ORDER BY rowid",
                [f'"{word}"'],
            ).fetchall()
            for word in sorted(words)
        }
        conn.execute("INSERT INTO incidents_fts (incidents_fts) VALUES ('integrity-check')")
        return out
    finally:
        conn.close()


def _normal(path: Path, pages: list[Path]) -> dict[str, object]:
    with Archive(path) as archive, bulkload_off():
        ingest_files(archive, FEED, pages)
    return dump(path)


class bulkload_off:  # noqa: N801 - used like a function
    """Force the normal path (row-by-row indexes) for the block."""

    def __enter__(self) -> None:
        self.saved = bulkload.MIN_ROWS
        bulkload.MIN_ROWS = 10**12

    def __exit__(self, *exc: object) -> None:
        bulkload.MIN_ROWS = self.saved


def _deferred_objects(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT name FROM deferred_schema ORDER BY name")]
    finally:
        conn.close()


def test_a_deferred_ingest_leaves_the_archive_the_normal_path_does(
    tmp_path: Path, pages: list[Path], small_threshold: None
) -> None:
    seen: list[int] = []
    with Archive(tmp_path / "bulk.db") as archive:

        def during(_path: Path, _summary: object) -> None:
            # While the job runs, its indexes and triggers are gone and recorded.
            seen.append(len(_deferred_objects(tmp_path / "bulk.db")))

        summaries = ingest_files(archive, FEED, pages, on_page=during)
    assert [s.outcome for s in summaries] == ["new"] * PAGES
    assert sum(s.changed for s in summaries) > 50  # the overlapping pages change rows
    assert seen and all(count >= 5 for count in seen)  # 2 indexes + 3 triggers
    assert _deferred_objects(tmp_path / "bulk.db") == []
    assert dump(tmp_path / "bulk.db") == _normal(tmp_path / "normal.db", pages)


def test_small_jobs_big_archives_and_a_running_daemon_take_the_normal_path(
    tmp_path: Path, pages: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.db"
    with Archive(path) as archive:
        # Small: the default threshold (these pages are ~60 KB).
        assert bulkload.estimated_rows(pages) < bulkload.MIN_ROWS
        with bulkload.deferred_indexes(archive, job="ingest", rows=100) as deferred:
            assert not deferred
        ingest_files(archive, FEED, pages)
        assert _deferred_objects(path) == []
        monkeypatch.setattr(bulkload, "MIN_ROWS", 10)
        held = archive.conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
        # Fewer new rows than the archive holds: the rebuild would cost more than it saves.
        with bulkload.deferred_indexes(archive, job="ingest", rows=held - 1) as deferred:
            assert not deferred
        # The run lock is held (a daemon is running): normal path, nothing dropped.
        with (
            RunLock(path),
            bulkload.deferred_indexes(archive, job="ingest", rows=10**6) as deferred,
        ):
            assert not deferred
            assert _deferred_objects(path) == []
        with bulkload.deferred_indexes(archive, job="ingest", rows=10**6) as deferred:
            assert deferred  # and now it may
            assert len(_deferred_objects(path)) >= 5
            # Meanwhile the daemon cannot start, and says why.
            with pytest.raises(AlreadyRunningError, match=rf"PID {os.getpid()}, a bulk ingest"):
                RunLock(path).acquire()
    assert _deferred_objects(path) == []


def test_only_the_indexes_written_out_of_order_and_the_search_triggers_are_deferred(
    tmp_path: Path,
) -> None:
    """Indexes whose keys a bulk job writes in order (time, feed, poll) stay live; the rest
    (two indexes, the full-text triggers) are dropped for the job and recreated after it."""
    path = tmp_path / "a.db"
    with Archive(path) as archive:
        schema = _schema(path)
        with bulkload.deferred_indexes(archive, job="ingest", rows=10**6) as deferred:
            assert deferred
            assert _deferred_objects(path) == [
                "idx_incidents_call_type", "idx_incidents_district",
                "incidents_ad", "incidents_ai", "incidents_au",
            ]  # fmt: skip
            live = {name for name, _ in _schema(path)}
            assert {
                "idx_incidents_received_at", "idx_incidents_feed_received_at",
                "idx_incidents_listed", "idx_version_log_new", "idx_version_log_incident",
            } <= live  # fmt: skip
        assert _schema(path) == schema


def _schema(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()
    finally:
        conn.close()


def test_ctrl_c_restores_before_returning(
    tmp_path: Path, pages: list[Path], small_threshold: None
) -> None:
    path = tmp_path / "bulk.db"

    def interrupt(_path: Path, summary: object) -> None:
        if _path == pages[3]:
            raise KeyboardInterrupt

    with Archive(path) as archive, pytest.raises(KeyboardInterrupt):
        ingest_files(archive, FEED, pages, on_page=interrupt)
    assert _deferred_objects(path) == []
    assert dump(path) == _normal(tmp_path / "normal.db", pages[:4])


KILLER = """
import os, signal, sys
# As in a terminal, whatever the test runner's own SIGINT disposition (a runner started in the
# background by a shell without job control ignores SIGINT, and so would this process).
signal.signal(signal.SIGINT, signal.default_int_handler)
from dispatchwatch import bulkload
from dispatchwatch.archive import Archive
bulkload.MIN_ROWS = 10
polls = 0
record = Archive.record_success
def record_then_die(self, *args, **kwargs):
    global polls
    summary = record(self, *args, **kwargs)
    polls += 1
    if polls == int(os.environ["DIE_AFTER"]):
        if os.environ["SIGNAL"] == "INT":  # Ctrl-C in a terminal: the whole process group
            os.killpg(os.getpgrp(), signal.SIGINT)
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    return summary
Archive.record_success = record_then_die
from dispatchwatch.cli import cli
cli(sys.argv[1:])
"""


def _killed_ingest(
    path: Path, pages: list[Path], after: int, how: str = "KILL", stderr: Path | None = None
) -> int:
    """Run ``dispatchwatch ingest`` in a process that SIGKILLs itself (``how`` "INT": sends
    its process group SIGINT) after ``after`` polls; its exit status. Its parse-ahead child
    must stop by itself once it is gone."""
    env = {**os.environ, "DIE_AFTER": str(after), "SIGNAL": how}
    command = [sys.executable, "-c", KILLER, "ingest", "seattle-fire-open-data", "--db", str(path)]
    with open(stderr or os.devnull, "w") as errors:
        process = subprocess.Popen(
            [*command, *map(str, pages)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
        status = process.wait(timeout=120)
    for _ in range(100):  # its children (the parse-ahead process) end with it
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the parse-ahead process outlived the killed ingest")
    return status


def test_a_killed_job_is_repaired_when_the_archive_is_next_opened(
    tmp_path: Path, pages: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "killed.db"
    assert _killed_ingest(path, pages, after=3) == -signal.SIGKILL
    # Left behind: three polls committed, the indexes and triggers dropped and recorded.
    assert len(_deferred_objects(path)) >= 5
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM polls").fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'incidents'").fetchone()[0] == 0  # fmt: skip
    conn.close()
    with caplog.at_level("WARNING", logger="dispatchwatch.bulkload"), Archive(path):
        pass
    assert "ended before rebuilding its indexes" in caplog.text
    assert _deferred_objects(path) == []
    assert dump(path) == _normal(tmp_path / "normal.db", pages[:3])
    # And the job can be run again to the end: the rest goes in.
    with Archive(path) as archive, bulkload_off():
        ingest_files(archive, FEED, pages)
    assert dump(path) == _normal(tmp_path / "whole.db", pages)


def test_ctrl_c_in_a_terminal_rebuilds_before_the_command_exits(
    tmp_path: Path, pages: list[Path]
) -> None:
    path, errors = tmp_path / "interrupted.db", tmp_path / "stderr.txt"
    assert _killed_ingest(path, pages, after=4, how="INT", stderr=errors) == 1
    assert errors.read_text().strip() == "Aborted!"  # no traceback, the child's neither
    assert _deferred_objects(path) == []
    assert dump(path) == _normal(tmp_path / "normal.db", pages[:4])


def test_an_archive_is_not_repaired_under_a_running_job(tmp_path: Path, pages: list[Path]) -> None:
    """Another process opening the archive while the job runs (it holds the run lock) leaves
    the deferred objects alone; once the lock is free, the next open repairs."""
    path = tmp_path / "killed.db"
    assert _killed_ingest(path, pages, after=2) == -signal.SIGKILL
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            with Archive(path):
                assert len(_deferred_objects(path)) >= 5
        finally:
            holder.kill()
    with Archive(path):
        assert _deferred_objects(path) == []
    assert dump(path) == _normal(tmp_path / "normal.db", pages[:2])


_HOLD_LOCK = """
import sys, time
from dispatchwatch.runlock import AlreadyRunningError, RunLock
with RunLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture(autouse=True)
def _no_leftover_jobs() -> Iterator[None]:
    yield
    assert not bulkload._ACTIVE


def test_a_deferred_import_leaves_the_archive_the_normal_path_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulkload, "MIN_ROWS", 1)  # the 10-row fixture counts as large
    from dispatchwatch.config import default_feed
    from dispatchwatch.imports.mapping import load_mapping
    from dispatchwatch.imports.run import import_files

    csv = Path(__file__).parent.parent / "fixtures" / "imports" / "milwaukee_accumulated_export.csv"
    feed, mapping = default_feed("milwaukee-police"), load_mapping("milwaukee-accumulated-export")
    seen: list[int] = []

    def run(path: Path) -> None:
        with Archive(path) as archive:
            reports = import_files(
                archive, feed, [csv], mapping, batch_size=3,
                on_file=lambda _report: seen.append(len(_deferred_objects(path))),
            )  # fmt: skip
        assert [r.outcome for r in reports] == ["imported"]
        assert reports[0].polls > 2

    run(tmp_path / "bulk.db")
    with bulkload_off():
        run(tmp_path / "normal.db")
    assert seen[0] >= 5 and seen[1] == 0  # deferred during the first run only
    assert dump(tmp_path / "bulk.db") == dump(tmp_path / "normal.db")


def _incident(number: int, **fields: object) -> Incident:
    values: dict[str, object] = {
        "received_at": f"2024-11-02T12:{number % 60:02d}:00Z", "call_type": "Aid Response",
        "address": f"{100 + number} BLOCK OF SUMMIT AV", "latitude": 47.5 + number / 1000,
        "longitude": -122.3,
    }  # fmt: skip
    values.update(fields)
    return Incident("seattle-fire-open-data", f"F{number:05d}", **values)  # type: ignore[arg-type]


def _polls() -> list[list[Incident]]:
    """Three polls of new incidents only: empty columns, a column empty in some rows only,
    ``extra`` with non-ASCII text and a date (``default=str``); then a poll that changes some
    and adds some."""
    first = [_incident(n, units="E1 M2" if n % 2 else None) for n in range(5)]
    second = [
        _incident(n, extra={"zip": "98101", "note": "café", "at": datetime(2024, 11, 2)})
        for n in range(5, 9)
    ]
    third = [_incident(n, priority="1", status=None, beat="K3") for n in range(9, 12)]
    fourth = [_incident(2, call_type="Medic Response"), _incident(12), _incident(6)]
    return [first, second, third, fourth]


@pytest.mark.parametrize("deferred", [True, False])
def test_new_incidents_stage_only_what_they_hold(tmp_path: Path, deferred: bool) -> None:
    """A poll of new incidents stages only the columns that hold a value in some row and
    numbers its versions by the rowids its incidents got: the archive is the one the stage
    of whole rows wrote (``_stage_whole_rows``), deferred indexes or not."""
    statements: list[str] = []

    def run(path: Path) -> None:
        with Archive(path) as archive:
            archive.register_feed(FEED.record())
            archive.conn.set_trace_callback(statements.append)
            with bulkload.deferred_indexes(archive, job="ingest", rows=10**6 if deferred else 1):
                for number, poll in enumerate(_polls()):
                    archive.record_success(
                        FEED.slug, poll, observed_at=f"2024-11-02T13:0{number}:00Z"
                    )

    run(tmp_path / "columns.db")
    staged = list(  # each poll's statement (traced once a row, values filled in)
        dict.fromkeys(
            s.split(" VALUES")[0] for s in statements if s.startswith("INSERT INTO temp.dw")
        )
    )
    assert len(staged) == 4
    assert "units" in staged[0] and "priority" not in staged[0] and "extra" not in staged[0]
    assert "extra" in staged[1] and "beat" in staged[2] and "status" not in staged[2]
    assert "changed" in staged[3]  # (the poll with changed incidents stages whole rows)
    with _stage_whole_rows():
        run(tmp_path / "whole.db")
    ours, whole = dump(tmp_path / "columns.db"), dump(tmp_path / "whole.db")
    for views in (ours, whole):  # (they count up to now: the seconds differ)
        del views["coverage"], views["coverage_days"]
    assert ours == whole
    conn = sqlite3.connect(tmp_path / "columns.db")
    extra = conn.execute("SELECT extra FROM incidents WHERE incident_id = 'F00005'").fetchone()[0]
    assert extra == '{"at": "2024-11-02 00:00:00", "note": "café", "zip": "98101"}'
    conn.close()


class _stage_whole_rows:  # noqa: N801 - used like a function
    """Stage whole rows, every column bound, and join versions back by ID (the path before
    columns were left out and versions numbered by rowid)."""

    def __enter__(self) -> None:
        from dispatchwatch import archive as module

        self.saved = module._bound, module._insert_new_versions
        module._bound = lambda names, columns: (tuple(names), zip(*columns, strict=True))
        module._insert_new_versions = lambda conn, feed, poll_id, _last, _count: conn.execute(
            module._INSERT_NEW_VERSIONS_FROM_STAGE, [poll_id, feed]
        )

    def __exit__(self, *exc: object) -> None:
        from dispatchwatch import archive as module

        module._bound, module._insert_new_versions = self.saved


def test_new_incidents_whose_rowids_are_not_in_order_get_their_versions_in_page_order(
    tmp_path: Path,
) -> None:
    """When the largest rowid is taken, SQLite picks rowids at random: the versions of a
    poll's new incidents are then joined back by ID (not taken over the rowid range)."""
    with Archive(tmp_path / "a.db") as archive:
        archive.register_feed(FEED.record())
        with archive.transaction() as conn:
            conn.execute(
                "INSERT INTO incidents (rowid, feed, incident_id, version) VALUES (?, ?, 'X', 1)",
                [2**63 - 1, FEED.slug],
            )
        archive.record_success(
            FEED.slug, [_incident(n) for n in range(20)], observed_at="2024-11-02T13:00:00Z"
        )
        rows = archive.conn.execute(
            "SELECT i.incident_id, l.version FROM version_log l JOIN incidents i "
            "ON i.rowid = l.incident ORDER BY l.id"
        ).fetchall()
    assert rows == [(f"F{n:05d}", 1) for n in range(20)]


def test_ctrl_c_during_the_rebuild_is_held_until_it_has_committed(
    tmp_path: Path, pages: list[Path], small_threshold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGINT that arrives while the deferred indexes are rebuilt (a real signal, as in a
    terminal) no longer rolls the rebuild back: it is delivered once the rebuild committed."""
    path = tmp_path / "bulk.db"
    recreate = bulkload._recreate
    went_on: list[bool] = []

    def interrupted(conn: sqlite3.Connection) -> int:
        signal.raise_signal(signal.SIGINT)  # in the middle of the rebuild's work
        went_on.append(True)
        return recreate(conn)

    monkeypatch.setattr(bulkload, "_recreate", interrupted)
    # As in a terminal, whatever the test runner's own SIGINT disposition.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with Archive(path) as archive, pytest.raises(KeyboardInterrupt):
            ingest_files(archive, FEED, pages)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert went_on == [True]  # the rebuild went on after the signal
    assert _deferred_objects(path) == []
    assert dump(path) == _normal(tmp_path / "normal.db", pages)


def _shadow(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("incidents_fts_data", "incidents_fts_idx", "incidents_fts_config")
        }
    finally:
        conn.close()


def test_the_full_text_index_built_beside_is_the_rebuilds_byte_for_byte(
    tmp_path: Path, pages: list[Path], small_threshold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild at the end builds the full-text index in a thread beside the indexes and
    copies it in: the shadow tables are those 'rebuild' writes, and the archive the normal
    path's; on a failure there, the rebuild runs as before."""
    copied: list[bool] = []
    real = bulkload._FtsBeside.copy_into

    def spy(self: bulkload._FtsBeside, conn: sqlite3.Connection) -> bool:
        copied.append(real(self, conn))
        return copied[-1]

    monkeypatch.setattr(bulkload._FtsBeside, "copy_into", spy)
    path = tmp_path / "bulk.db"
    with Archive(path) as archive:
        ingest_files(archive, FEED, pages)
    assert copied == [True]
    ours = _shadow(path)
    conn = sqlite3.connect(path)
    conn.execute(bulkload._FTS_REBUILD)
    conn.commit()
    conn.close()
    assert _shadow(path) == ours
    assert dump(path) == _normal(tmp_path / "normal.db", pages)

    def fails(self: bulkload._FtsBeside) -> None:
        self.error = sqlite3.OperationalError("no twin")

    monkeypatch.setattr(bulkload._FtsBeside, "_build", fails)
    with Archive(tmp_path / "again.db") as archive:
        ingest_files(archive, FEED, pages)
    assert copied[-1] is False
    assert dump(tmp_path / "again.db") == dump(path)


def test_a_connection_that_searched_before_the_job_searches_right_after_it(
    tmp_path: Path, pages: list[Path], small_threshold: None
) -> None:
    """FTS5 keeps an index's structure in memory between transactions: the connection that
    wrote and searched the index before a deferred job (whose index is copied in) searches
    the new one after it, and writes it right (the next row-by-row poll)."""
    path = tmp_path / "bulk.db"
    with Archive(path) as archive:
        with bulkload_off():
            ingest_files(archive, FEED, pages[:2])
        before = archive.conn.execute(
            "SELECT count(*) FROM incidents_fts WHERE incidents_fts MATCH 'summit'"
        ).fetchone()[0]
        assert before > 0
        seen: list[int] = []
        ingest_files(
            archive, FEED, pages[2:-1],
            on_page=lambda *_: seen.append(len(_deferred_objects(path))),
        )  # fmt: skip
        assert seen[0] > 0 and not _deferred_objects(path)  # (deferred, and rebuilt)
        after = archive.conn.execute(
            "SELECT count(*) FROM incidents_fts WHERE incidents_fts MATCH 'summit'"
        ).fetchone()[0]
        assert after > before
        with bulkload_off():
            ingest_files(archive, FEED, pages[-1:])
        archive.conn.execute("INSERT INTO incidents_fts (incidents_fts) VALUES ('integrity-check')")
    assert dump(path) == _normal(tmp_path / "normal.db", pages)
