"""The WAL does not stay at its peak size after a long reader lets it grow (issue 8 item 15)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from dispatchwatch.archive import Archive

LIMIT = 32 * 1024 * 1024


def test_journal_size_limit_is_set_on_a_new_archive(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a.db")
    assert archive.db.execute("PRAGMA journal_size_limit").fetchone()[0] == LIMIT


def test_wal_shrinks_under_the_limit_after_the_reader_releases(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    archive = Archive(path)
    conn = archive.db.conn
    conn.execute("CREATE TABLE scratch (b BLOB)")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
    blob = os.urandom(1024 * 1024)
    for _ in range(45):  # ~45 MB: autocheckpoints cannot reset the WAL under the reader
        conn.execute("INSERT INTO scratch VALUES (?)", (blob,))
        conn.execute("DELETE FROM scratch")
    wal = Path(str(path) + "-wal")
    assert wal.stat().st_size > LIMIT
    reader.execute("COMMIT")
    reader.close()
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    conn.execute("INSERT INTO scratch VALUES (x'00')")  # the next write resets the WAL
    assert wal.stat().st_size <= LIMIT
