"""A bulk job's WAL copied into the database file by a thread (walcopy.py): while the block
runs, what the archive's connection commits reaches the file without a checkpoint of its
own; afterwards its automatic checkpoints are back and the thread is gone; an ingest with
it leaves the archive that one without it leaves."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from test_bulkload import FEED, PAGES, _normal, _rows, dump

from dispatchwatch import bulkload, walcopy
from dispatchwatch.archive import Archive


def _write(archive: Archive, rows: int) -> None:
    with archive.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, text TEXT)")
        conn.executemany(
            "INSERT INTO filler (text) VALUES (?)", [("x" * 400,) for _ in range(rows)]
        )


def _checkpoint_threads() -> list[threading.Thread]:
    """The checkpoint threads still alive (other tests' server threads are not counted)."""
    return [t for t in threading.enumerate() if t.name == "dispatchwatch-checkpoints"]


def _autocheckpoint(archive: Archive) -> int:
    return archive.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]


def test_commits_reach_the_file_by_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Archive(path) as archive:
        before = _autocheckpoint(archive)
        assert before > 0
        with walcopy.background_checkpoints(archive, interval=0.01) as on:
            assert on and _autocheckpoint(archive) == 0  # the writer no longer copies
            assert any(t.name == "dispatchwatch-checkpoints" for t in threading.enumerate())
            size = path.stat().st_size
            _write(archive, 5000)  # ~2 MB, into the WAL
            for _ in range(500):
                if path.stat().st_size > size + 1_000_000:
                    break
                time.sleep(0.01)
            assert path.stat().st_size > size + 1_000_000  # copied by the thread
        assert _autocheckpoint(archive) == before
        assert not any(t.name == "dispatchwatch-checkpoints" for t in threading.enumerate())
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM filler").fetchone()[0] == 5000
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_an_exception_stops_the_thread_and_restores_the_writer(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.db") as archive:
        before = _autocheckpoint(archive)
        with (
            pytest.raises(KeyboardInterrupt),
            walcopy.background_checkpoints(archive, interval=0.01),
        ):
            _write(archive, 100)
            raise KeyboardInterrupt
        assert _autocheckpoint(archive) == before
        assert not _checkpoint_threads()


def test_a_bulk_ingest_copies_in_the_background_and_ends_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = []
    for number in range(PAGES):
        pages.append(tmp_path / f"page_{number}.json")
        pages[-1].write_text(json.dumps(_rows(number)))
    monkeypatch.setattr(bulkload, "MIN_ROWS", 10)  # these pages count as a large job
    used = []
    real = walcopy.background_checkpoints

    def counted(archive: Archive, *args: object):  # type: ignore[no-untyped-def]
        used.append(threading.active_count())
        return real(archive, *args)  # type: ignore[arg-type]

    monkeypatch.setattr("dispatchwatch.pipeline.background_checkpoints", counted)
    from dispatchwatch.pipeline import ingest_files

    others = threading.active_count()  # threads earlier tests left (servers): not ours
    with Archive(tmp_path / "bulk.db") as archive:
        summaries = ingest_files(archive, FEED, pages)
    assert [s.outcome for s in summaries] == ["new"] * len(pages)
    assert used == [others]  # once, before its thread started (the parse-ahead child forked)
    assert not _checkpoint_threads()
    assert dump(tmp_path / "bulk.db") == _normal(tmp_path / "normal.db", pages)
