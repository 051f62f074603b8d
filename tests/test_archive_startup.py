"""Opening an archive (and ``dispatchwatch ingest``) without importing sqlite-utils: the
schema migration 1 writes is still, to the letter, the one sqlite-utils wrote, the connection
has the setting sqlite-utils gave it, and ``Archive.db`` is still a sqlite-utils Database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import sqlite_utils

from dispatchwatch import archive
from dispatchwatch.archive import INCIDENT_COLUMNS, Archive


def _sqlite_utils_migration_1(db: sqlite_utils.Database) -> None:
    """Migration 1's tables and indexes as the sqlite-utils calls that first made them."""
    db["feeds"].create(
        {
            "slug": str, "name": str, "agency": str, "city": str, "state": str,
            "scraper": str, "url": str, "homepage": str, "timezone": str, "snapshot": int,
            "interval_seconds": float, "precision": str, "license": str,
            "source_notes": str, "added_at": str, "updated_at": str,
        },
        pk="slug",
    )  # fmt: skip
    db["incidents"].create(
        {
            "feed": str, "incident_id": str, **INCIDENT_COLUMNS, "first_seen_at": str,
            "last_seen_at": str, "gone_at": str, "version": int,
        },
        pk=("feed", "incident_id"),
        foreign_keys=[("feed", "feeds", "slug")],
    )  # fmt: skip
    db["polls"].create(
        {
            "id": int, "feed": str, "started_at": str, "observed_at": str,
            "duration_ms": float, "outcome": str, "http_status": int, "bytes": int,
            "sha256": str, "etag": str, "last_modified": str, "incidents": int, "new": int,
            "changed": int, "gone": int, "returned": int, "error_kind": str, "error": str,
            "source": str,
        },
        pk="id",
        foreign_keys=[("feed", "feeds", "slug")],
    )  # fmt: skip
    db["incident_versions"].create(
        {
            "id": int, "feed": str, "incident_id": str, "version": int, "poll_id": int,
            "observed_at": str, "changed": str, **INCIDENT_COLUMNS, "gone_at": str,
        },
        pk="id",
        foreign_keys=[("feed", "feeds", "slug"), ("poll_id", "polls", "id")],
    )  # fmt: skip
    db["incidents"].create_index(["received_at"])
    db["incidents"].create_index(["feed", "received_at"])
    db["incidents"].create_index(["call_type"])
    db["incidents"].create_index(["district"])
    db["incident_versions"].create_index(["feed", "incident_id", "version"], unique=True)
    db["incident_versions"].create_index(["poll_id"])
    db["polls"].create_index(["feed", "started_at"])
    db["polls"].create_index(["feed", "outcome", "id"])


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    return conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
    ).fetchall()


def test_migration_1_writes_what_sqlite_utils_wrote() -> None:
    ours = sqlite3.connect(":memory:", isolation_level=None)
    for statement in archive._MIGRATION_1:
        ours.execute(statement)
    theirs = sqlite_utils.Database(sqlite3.connect(":memory:", isolation_level=None))
    _sqlite_utils_migration_1(theirs)
    assert _schema(ours) == _schema(theirs.conn)
    assert len(_schema(ours)) == 4 + 8 + 2  # (two automatic primary-key indexes)


def test_a_new_archive_keeps_sqlite_utils_settings_and_api(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.db") as opened:
        assert opened.conn.execute("PRAGMA recursive_triggers").fetchone() == (1,)
        assert isinstance(opened.db, sqlite_utils.Database)
        assert opened.db.conn is opened.conn
        assert "incidents" in opened.db.table_names()


def test_ingest_never_imports_sqlite_utils(tmp_path: Path) -> None:
    page = tmp_path / "page.json"
    page.write_text(json.dumps([{"incident_number": "F1", "datetime": "2024-01-01T00:00:00.000",
                                 "type": "Aid Response", "address": "100 Pine St"}]))  # fmt: skip
    code = (
        "import sys\n"
        "from dispatchwatch.cli import cli\n"
        "try:\n"
        f"    cli(['ingest', 'seattle-fire-open-data', '--db', {str(tmp_path / 'a.db')!r}, "
        f"{str(page)!r}])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "assert 'sqlite_utils' not in sys.modules, 'sqlite_utils was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "1 new" in done.stdout
