"""The archive: dedupe, change history, gone marks, one transaction per poll."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from dispatchwatch.archive import (
    SCHEMA_VERSION,
    Archive,
    ArchiveError,
    FeedRecord,
    read_stats,
    write_transaction,
)
from dispatchwatch.incident import Incident

FEED = FeedRecord(
    slug="mke",
    name="Test feed",
    agency="Police",
    city="Milwaukee",
    scraper="milwaukee-police",
    url="http://127.0.0.1/",
    timezone="America/Chicago",
    snapshot=True,
    interval_seconds=300,
)


def call(incident_id: str, status: str = "Service in Progress", **fields: object) -> Incident:
    values: dict[str, object] = {
        "received_at": "2023-01-21T22:00:00Z",
        "call_type": "TRAFFIC STOP",
        "address": "51XX S HOWELL AV",
        "city": "Milwaukee",
        "district": "6",
    }
    values.update(fields)
    return Incident(feed="mke", incident_id=incident_id, status=status, **values)  # type: ignore[arg-type]


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    archive = Archive(tmp_path / "dispatch.db")
    archive.register_feed(FEED)
    yield archive
    archive.close()


def poll(archive: Archive, incidents: list[Incident], at: str, snapshot: bool = True):
    return archive.record_success("mke", incidents, observed_at=at, snapshot=snapshot)


def counts(archive: Archive) -> tuple[int, int, int]:
    conn = archive.conn
    return (
        conn.execute("SELECT count(*) FROM incidents").fetchone()[0],
        conn.execute("SELECT count(*) FROM incident_versions").fetchone()[0],
        conn.execute("SELECT count(*) FROM incidents WHERE gone_at IS NOT NULL").fetchone()[0],
    )


def test_new_archive_has_schema_wal_and_fts(archive: Archive) -> None:
    db = archive.db
    assert {"feeds", "incidents", "version_log", "polls", "incidents_fts"} <= set(db.table_names())
    assert "incident_versions" in db.view_names()  # whole versions (versions.py)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db["feeds"].get("mke")["snapshot"] == 1


def test_reopening_an_archive_keeps_it(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.db") as archive:
        archive.register_feed(FEED)
        poll(archive, [call("1")], "2023-01-21T23:00:00Z")
    with Archive(tmp_path / "a.db") as archive:
        assert counts(archive) == (1, 1, 0)


def test_seeing_an_incident_again_unchanged_adds_no_version(archive: Archive) -> None:
    first = poll(archive, [call("1"), call("2")], "2023-01-21T23:00:00Z")
    again = poll(archive, [call("1"), call("2")], "2023-01-21T23:05:00Z")
    assert (first.new, first.changed, first.gone) == (2, 0, 0)
    assert (again.new, again.changed, again.gone) == (0, 0, 0)
    assert counts(archive) == (2, 2, 0)
    row = archive.db["incidents"].get(("mke", "1"))
    assert row["first_seen_at"] == "2023-01-21T23:00:00Z"
    assert row["last_seen_at"] == "2023-01-21T23:05:00Z"
    assert row["version"] == 1


def test_a_change_adds_a_full_version_naming_the_changed_columns(archive: Archive) -> None:
    poll(archive, [call("1")], "2023-01-21T23:00:00Z")
    summary = poll(
        archive, [call("1", status="Assignment Completed", units="A1")], "2023-01-21T23:05:00Z"
    )
    assert (summary.new, summary.changed) == (0, 1)
    versions = list(
        archive.db.query("SELECT * FROM incident_versions WHERE incident_id = '1' ORDER BY version")
    )
    assert [v["version"] for v in versions] == [1, 2]
    assert json.loads(versions[0]["changed"]) == ["new"]
    assert json.loads(versions[1]["changed"]) == ["status", "units"]
    # A full snapshot, not just the changed columns.
    assert versions[1]["call_type"] == "TRAFFIC STOP"
    assert versions[1]["status"] == "Assignment Completed"
    assert versions[1]["poll_id"] == summary.poll_id
    current = archive.db["incidents"].get(("mke", "1"))
    assert (current["status"], current["version"]) == ("Assignment Completed", 2)


def test_snapshot_feed_marks_departures_gone_and_returns_ungone(archive: Archive) -> None:
    poll(archive, [call("1"), call("2")], "2023-01-21T23:00:00Z")
    left = poll(archive, [call("1")], "2023-01-21T23:05:00Z")
    assert (left.new, left.changed, left.gone) == (0, 0, 1)
    assert archive.db["incidents"].get(("mke", "2"))["gone_at"] == "2023-01-21T23:05:00Z"
    still_gone = poll(archive, [call("1")], "2023-01-21T23:10:00Z")
    assert still_gone.gone == 0  # gone once, not on every poll
    back = poll(archive, [call("1"), call("2")], "2023-01-21T23:15:00Z")
    assert (back.new, back.changed, back.gone, back.returned) == (0, 0, 0, 1)
    row = archive.db["incidents"].get(("mke", "2"))
    assert row["gone_at"] is None and row["version"] == 3
    changes = [
        json.loads(v["changed"])
        for v in archive.db.query(
            "SELECT changed FROM incident_versions WHERE incident_id = '2' ORDER BY version"
        )
    ]
    assert changes == [["new"], ["gone_at"], ["gone_at"]]
    assert counts(archive) == (2, 4, 0)


def test_day_log_feed_never_marks_gone(archive: Archive) -> None:
    poll(archive, [call("1"), call("2")], "2023-01-21T23:00:00Z", snapshot=False)
    summary = poll(archive, [call("1")], "2023-01-21T23:05:00Z", snapshot=False)
    assert summary.gone == 0
    assert counts(archive) == (2, 2, 0)


def test_a_failing_poll_leaves_the_archive_exactly_as_before(archive: Archive) -> None:
    poll(archive, [call("1")], "2023-01-21T23:00:00Z")
    before = archive.conn.execute("SELECT * FROM incidents").fetchall()
    broken = [call("1", status="Advised"), call("2", received_at=object())]  # unbindable value
    with pytest.raises(sqlite3.Error):
        poll(archive, broken, "2023-01-21T23:05:00Z")
    assert archive.conn.execute("SELECT * FROM incidents").fetchall() == before
    assert counts(archive) == (1, 1, 0)
    assert archive.conn.execute("SELECT count(*) FROM polls").fetchone()[0] == 1
    # ...and the archive is still usable afterwards.
    assert poll(archive, [call("1", status="Advised")], "2023-01-21T23:10:00Z").changed == 1


def test_error_polls_are_recorded_without_touching_incidents(archive: Archive) -> None:
    poll(archive, [call("1")], "2023-01-21T23:00:00Z")
    summary = archive.record_error("mke", error_kind="layout_changed", error="no table")
    assert summary.outcome == "error"
    row = archive.db["polls"].get(summary.poll_id)
    assert (row["outcome"], row["error_kind"], row["error"]) == (
        "error",
        "layout_changed",
        "no table",
    )
    assert counts(archive) == (1, 1, 0)


def test_last_parsed_skips_error_polls(archive: Archive) -> None:
    archive.record_success(
        "mke", [call("1")], observed_at="2023-01-21T23:00:00Z", sha256="abc", etag='"v1"'
    )
    archive.record_error("mke", error_kind="timeout", error="read timed out")
    last = archive.last_parsed("mke")
    assert last is not None and (last["sha256"], last["etag"]) == ("abc", '"v1"')


def test_full_text_search_finds_call_types_and_blocks(archive: Archive) -> None:
    poll(
        archive,
        [call("1"), call("2", call_type="SHOTSPOTTER", address="29XX W VLIET ST")],
        "2023-01-21T23:00:00Z",
    )
    found = [r["incident_id"] for r in archive.db["incidents"].search("vliet")]
    assert found == ["2"]


def test_large_pages_are_chunked(archive: Archive) -> None:
    # More incidents than one IN (...) list takes: both the lookup and the last_seen_at
    # update run in chunks. A day log, so nothing is preloaded as "listed".
    many = [call(str(n)) for n in range(1, 1502)]
    assert poll(archive, many, "2023-01-21T23:00:00Z", snapshot=False).new == 1501
    again = poll(archive, many, "2023-01-21T23:05:00Z", snapshot=False)
    assert (again.new, again.changed) == (0, 0)
    seen = archive.conn.execute("SELECT DISTINCT last_seen_at FROM incidents").fetchall()
    assert seen == [("2023-01-21T23:05:00Z",)]
    assert counts(archive) == (1501, 1501, 0)


def test_stats(archive: Archive) -> None:
    poll(
        archive, [call("1", received_at="2023-01-21T21:00:00Z"), call("2")], "2023-01-21T23:00:00Z"
    )
    (row,) = archive.stats()
    assert row["feed"] == "mke"
    assert (row["incidents"], row["versions"], row["polls"]) == (2, 2, 1)
    assert (row["first_received"], row["last_received"]) == (
        "2023-01-21T21:00:00Z",
        "2023-01-21T22:00:00Z",
    )
    assert row["last_outcome"] == "new"


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    Archive(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ArchiveError, match="newer than this dispatchwatch"):
        Archive(path)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database at all, just text that is long enough " * 20)
    with pytest.raises(ArchiveError, match="is not a dispatchwatch archive"):
        Archive(path)
    with pytest.raises(ArchiveError, match="is not a dispatchwatch archive"):
        read_stats(path)


def test_stats_never_writes(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(ArchiveError, match="not a dispatchwatch archive"):
        read_stats(other)
    assert other.read_bytes() == before  # not migrated, not switched to WAL


def test_a_failing_commit_is_rolled_back_and_the_connection_stays_usable(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE child (parent_id REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError), write_transaction(conn):
        conn.execute("INSERT INTO child VALUES (42)")  # only fails at COMMIT
    assert not conn.in_transaction
    with write_transaction(conn):
        conn.execute("INSERT INTO parent VALUES (1)")
    assert conn.execute("SELECT count(*) FROM child").fetchone()[0] == 0
    conn.close()


def test_extra_values_json_cannot_encode_are_stored_as_text(archive: Archive) -> None:
    from datetime import datetime

    odd = call("9", extra={"updated": datetime(2024, 1, 1, 12, 0)})
    assert poll(archive, [odd], "2023-01-21T23:00:00Z").new == 1
    row = archive.db["incidents"].get(("mke", "9"))
    assert json.loads(row["extra"]) == {"updated": "2024-01-01 12:00:00"}
