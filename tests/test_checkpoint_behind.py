"""The checkpoint after a bulk job's outer transaction runs in a thread (Archive.outer_transaction):
the commit returns before the WAL is copied into the file, nothing is lost, and the archive
ends checkpointed as before."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from dispatchwatch.archive import WAL_AUTOCHECKPOINT, Archive

ROWS = 20_000  # ~ 5 MB of pages: more than the automatic checkpoint's 4,000 pages would allow


def _fill(archive: Archive, rows: int = ROWS, start: int = 0) -> None:
    with archive.transaction() as conn:
        conn.executemany(
            "INSERT INTO t VALUES (?, ?)",
            ((n, f"row {n} " + "x" * 200) for n in range(start, start + rows)),
        )


def _in_the_file(path: Path, tmp_path: Path) -> int:
    """Rows of ``t`` in the database file alone (what checkpoints copied there)."""
    copy = tmp_path / "file-only.db"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        conn.close()


def _archive(path: Path) -> Archive:
    archive = Archive(path)
    archive.conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT)")
    archive.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return archive


def test_the_outer_commit_is_checkpointed_by_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    archive = _archive(path)
    with archive.outer_transaction():
        _fill(archive)
    checkpointer = archive._checkpointer
    assert checkpointer is not None and checkpointer.name == "dispatchwatch-checkpoint"
    assert archive.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT
    archive.wait_for_checkpoint()
    assert not checkpointer.is_alive()
    assert _in_the_file(path, tmp_path) == ROWS
    archive.close()
    assert not Path(f"{path}-wal").exists()  # the last connection closed: WAL folded in, removed


def test_writes_beside_the_checkpoint_are_kept(tmp_path: Path) -> None:
    """A write transaction (the rebuild of deferred indexes) while the thread checkpoints."""
    path = tmp_path / "a.db"
    archive = _archive(path)
    with archive.outer_transaction():
        _fill(archive)
    for batch in range(1, 4):
        _fill(archive, 5_000, ROWS * batch)
    archive.close()
    assert archive._checkpointer is None
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == ROWS + 15_000
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert _in_the_file(path, tmp_path) == ROWS + 15_000


def test_a_second_outer_transaction_waits_for_the_first_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    archive = _archive(path)
    with archive.outer_transaction():
        _fill(archive)
    first = archive._checkpointer
    with archive.outer_transaction():
        assert first is not None and not first.is_alive()
        _fill(archive, 1_000, ROWS)
    archive.close()
    assert _in_the_file(path, tmp_path) == ROWS + 1_000


def test_no_checkpoint_behind_a_rolled_back_outer_transaction(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "a.db")
    with pytest.raises(RuntimeError), archive.outer_transaction():
        _fill(archive)
        raise RuntimeError
    assert archive._checkpointer is None
    assert archive.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT
    assert archive.conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    archive.close()


def test_no_thread_is_left_after_close(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "a.db")
    with archive.outer_transaction():
        _fill(archive)
    archive.close()
    assert not [t for t in threading.enumerate() if t.name == "dispatchwatch-checkpoint"]


def test_an_archive_in_memory_checkpoints_nothing() -> None:
    archive = Archive(":memory:")
    archive.conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT)")
    with archive.outer_transaction():
        _fill(archive, 10)
    assert archive._checkpointer is None
    archive.close()


def test_the_next_file_of_an_import_still_forks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint thread of file 1 is done before file 2 decides whether to read ahead in a
    child (a fork with another thread alive is refused)."""
    from dispatchwatch.config import default_feed
    from dispatchwatch.imports import run
    from dispatchwatch.imports.mapping import load_mapping

    fixtures = Path(__file__).parent.parent / "fixtures" / "imports"
    csv = fixtures / "milwaukee_accumulated_export.csv"
    second = tmp_path / "second.csv"
    second.write_text(csv.read_text())  # the same rows again (force): a second outer transaction
    # The checkpoint threads alive when each file decides (other tests may leave threads of
    # their own running: only ours matter).
    threads: list[list[str]] = []

    def checkpoints() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("dispatchwatch-")]

    monkeypatch.setattr(run, "can_fork", lambda size: threads.append(checkpoints()) or False)
    with Archive(tmp_path / "a.db") as archive:
        reports = run.import_files(
            archive, default_feed("milwaukee-police"), [csv, second],
            load_mapping("milwaukee-accumulated-export"), force=True,
        )  # fmt: skip
    assert [r.outcome for r in reports] == ["imported", "imported"]
    assert threads == [[], []]


def test_the_wal_of_an_outer_transaction_is_handed_to_the_disk_as_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each poll of the outer transaction, what the WAL gained (once a step or more)
    is handed to the disk (sync_file_range), each byte once, in order; the rows are all there
    and nothing is left open."""
    from dispatchwatch import archive as archive_module
    from dispatchwatch import checkpoints

    ranges: list[tuple[int, int]] = []
    real = checkpoints._sync_file_range()

    def recorded() -> object:
        def sync(fd: int, offset: int, length: int, flags: int) -> int:
            ranges.append((offset, length))
            return real(fd, offset, length, flags) if real is not None else 0

        return sync

    monkeypatch.setattr(checkpoints, "_sync_file_range", recorded)
    monkeypatch.setattr(checkpoints, "WRITE_BEHIND_BYTES", 1 << 20)
    monkeypatch.setattr(archive_module, "OUTER_CACHE_KIB", 2000)  # (spills: the WAL grows)
    path = tmp_path / "a.db"
    archive = _archive(path)
    with archive.outer_transaction():
        for poll in range(6):
            _fill(archive, 10_000, start=poll * 10_000)
    assert len(ranges) >= 3
    assert [offset for offset, _ in ranges] == [0] + [o + n for o, n in ranges[:-1]]
    assert all(length >= 1 << 20 for _, length in ranges)
    assert archive.conn.execute("SELECT count(*) FROM t").fetchone()[0] == 60_000
    archive.close()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone()[0] == 60_000


def test_an_outer_transaction_has_a_larger_cache_and_gives_it_back(tmp_path: Path) -> None:
    from dispatchwatch.archive import OUTER_CACHE_KIB

    archive = _archive(tmp_path / "a.db")
    before = archive.conn.execute("PRAGMA cache_size").fetchone()[0]
    with archive.outer_transaction():
        assert archive.conn.execute("PRAGMA cache_size").fetchone()[0] == -OUTER_CACHE_KIB
        _fill(archive)
    assert archive.conn.execute("PRAGMA cache_size").fetchone()[0] == before
    archive.close()
