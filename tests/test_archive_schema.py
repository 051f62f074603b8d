"""The archive's storage choices (migrations 8 and 9): the full-text index stays exactly in step
with the rows through the batched write path, versions store fields only where they are not
the incident's current ones and read back whole, and a version 7 archive upgrades in place."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_archive import FEED, call, poll

from dispatchwatch.archive import SCHEMA_VERSION, Archive
from dispatchwatch.incident import TRACKED_FIELDS
from dispatchwatch.versions import whole_versions


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    with Archive(tmp_path / "dispatch.db") as archive:
        archive.register_feed(FEED)
        yield archive


FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "archives" / "archive-v7.db"


def search(conn: sqlite3.Connection, term: str) -> set[str]:
    rows = conn.execute(
        "SELECT i.incident_id FROM incidents_fts JOIN incidents i ON i.rowid = incidents_fts.rowid "
        "WHERE incidents_fts MATCH ?",
        [f'"{term}"'],
    )
    return {row[0] for row in rows}


def scan(conn: sqlite3.Connection, term: str) -> set[str]:
    """What the search must find, by reading every row (words are whole tokens here)."""
    rows = conn.execute("SELECT incident_id, call_type, address FROM incidents")
    return {
        incident_id
        for incident_id, call_type, address in rows
        if term.upper() in f"{call_type or ''} {address or ''}".upper().split()
    }


TERMS = ["TRAFFIC", "STOP", "HOWELL", "VLIET", "SHOTSPOTTER", "THEFT", "LINCOLN", "AV", "ST"]


def assert_in_step(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO incidents_fts (incidents_fts) VALUES ('integrity-check')")
    for term in TERMS:
        assert search(conn, term) == scan(conn, term), term


def test_search_stays_in_step_through_new_changed_gone_and_rollback(archive: Archive) -> None:
    conn = archive.conn
    many = [call(str(n)) for n in range(1, 1201)]  # more than one IN (...) chunk
    many.append(call("vliet", call_type="SHOTSPOTTER", address="29XX W VLIET ST"))
    poll(archive, many, "2023-01-21T23:00:00Z")
    assert search(conn, "VLIET") == {"vliet"}
    assert len(search(conn, "HOWELL")) == 1200
    assert_in_step(conn)

    # Changed type and address, an unchanged row, a status-only change, one gone, one new.
    page = [
        call("vliet", call_type="THEFT", address="29XX W VLIET ST"),
        call("1", address="30XX W LINCOLN AV"),
        call("2", status="Assignment Completed"),
        *many[3:1199],
        call("new", call_type="SHOTSPOTTER", address="9XX N LINCOLN AV"),
    ]
    summary = poll(archive, page, "2023-01-21T23:05:00Z")
    assert (summary.new, summary.changed, summary.gone) == (1, 3, 2)
    assert search(conn, "SHOTSPOTTER") == {"new"}
    assert search(conn, "THEFT") == {"vliet"}
    assert search(conn, "LINCOLN") == {"1", "new"}
    assert "1" not in search(conn, "HOWELL")
    assert_in_step(conn)

    # A poll that fails half-way leaves rows and index as they were.
    before = {term: search(conn, term) for term in TERMS}

    class Boom(Exception):
        pass

    def fail(*args: object, **kwargs: object) -> None:
        raise Boom

    original = archive.__class__._load_state
    try:
        archive.__class__._load_state = lambda self, c, f, ids, s: (  # type: ignore[method-assign]
            c.execute(
                "INSERT INTO incidents (feed, incident_id, call_type, version) "
                "VALUES ('mke', 'ghost', 'BURGLARY', 1)"
            ),
            fail(),
        )
        with pytest.raises(Boom):
            poll(archive, [call("x", call_type="BURGLARY")], "2023-01-21T23:10:00Z")
    finally:
        archive.__class__._load_state = original  # type: ignore[method-assign]
    assert {term: search(conn, term) for term in TERMS} == before
    assert search(conn, "BURGLARY") == set()
    assert_in_step(conn)

    # The next poll after the failure writes through the same staging table.
    poll(archive, [*page, call("y", call_type="BURGLARY")], "2023-01-21T23:15:00Z")
    assert search(conn, "BURGLARY") == {"y"}
    assert_in_step(conn)


def test_new_incidents_keep_page_order(archive: Archive) -> None:
    ids = ["b", "a", "d", "c"]
    poll(archive, [call(i) for i in ids], "2023-01-21T23:00:00Z")
    rows = archive.conn.execute("SELECT incident_id FROM incidents ORDER BY rowid").fetchall()
    assert [row[0] for row in rows] == ids


def gone_fields(conn: sqlite3.Connection) -> list[tuple]:
    names = ", ".join(TRACKED_FIELDS)
    return conn.execute(
        f"SELECT {names} FROM incident_versions WHERE gone_at IS NOT NULL ORDER BY id"
    ).fetchall()


def stored(conn: sqlite3.Connection) -> list[tuple]:
    """Per version as archived: (incident_id, version, are its fields stored?)."""
    return conn.execute(
        "SELECT i.incident_id, l.version, x.id IS NOT NULL FROM version_log l "
        "JOIN incidents i ON i.rowid = l.incident LEFT JOIN version_values x ON x.id = l.id "
        "ORDER BY l.id"
    ).fetchall()


def assert_compact(conn: sqlite3.Connection) -> None:
    """Exactly the versions that a later version (not gone) superseded store their fields."""
    superseded = {
        row[0]
        for row in conn.execute(
            "SELECT l.id FROM version_log l WHERE EXISTS (SELECT 1 FROM version_log n "
            "WHERE n.incident = l.incident AND n.version > l.version AND n.gone IS NULL)"
        )
    }
    assert {row[0] for row in conn.execute("SELECT id FROM version_values")} == superseded


def test_versions_store_fields_only_when_superseded_and_read_back_whole(
    archive: Archive,
) -> None:
    conn = archive.conn
    poll(archive, [call("1", units="A1 B2"), call("2")], "2023-01-21T23:00:00Z")
    assert stored(conn) == [("1", 1, 0), ("2", 1, 0)]  # the incidents' current values
    poll(archive, [call("2")], "2023-01-21T23:05:00Z")  # 1 leaves the list
    assert stored(conn) == [("1", 1, 0), ("2", 1, 0), ("1", 2, 0)]  # gone: as before it
    poll(archive, [call("1", units="A1 B2", status="Back")], "2023-01-21T23:10:00Z")
    # 1 came back changed: its first two versions now hold the values it had; 2 left.
    assert stored(conn) == [("1", 1, 1), ("2", 1, 0), ("1", 2, 1), ("1", 3, 0), ("2", 2, 0)]
    assert_compact(conn)
    assert conn.execute("SELECT count(*) FROM incident_versions").fetchone()[0] == 5
    timeline = conn.execute(
        "SELECT incident_id, version, event, changes, status, units, address, gone_at "
        "FROM incident_timeline ORDER BY id"
    ).fetchall()
    assert timeline == [
        ("1", 1, "new", None, "Service in Progress", "A1 B2", "51XX S HOWELL AV", None),
        ("2", 1, "new", None, "Service in Progress", None, "51XX S HOWELL AV", None),
        ("1", 2, "gone", None, "Service in Progress", "A1 B2", "51XX S HOWELL AV",
         "2023-01-21T23:05:00Z"),
        # Compared with the version before it left, not with the empty gone version.
        ("1", 3, "back", "status: Service in Progress → Back", "Back", "A1 B2",
         "51XX S HOWELL AV", None),
        ("2", 2, "gone", None, "Service in Progress", None, "51XX S HOWELL AV",
         "2023-01-21T23:10:00Z"),
    ]  # fmt: skip
    whole = conn.execute(
        f"SELECT incident_id, version, status, units FROM {whole_versions()} AS v ORDER BY id"
    ).fetchall()
    assert whole[2] == ("1", 2, "Service in Progress", "A1 B2")
    assert whole[4] == ("2", 2, "Service in Progress", None)


def _schema(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    ).fetchall()


def test_a_version_7_archive_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    # What version 7 shows (its own view, over gone versions stored whole).
    timeline = conn.execute("SELECT * FROM incident_timeline ORDER BY id").fetchall()
    versions = conn.execute("SELECT * FROM incident_versions ORDER BY id").fetchall()
    stored_whole = gone_fields(conn)
    conn.close()
    assert len(stored_whole) == 5 and all(row[1] for row in stored_whole)

    with Archive(path) as upgraded:
        conn = upgraded.conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 10
        assert_compact(conn)
        assert gone_fields(conn) == stored_whole  # read back whole
        # Users see exactly what they saw before.
        assert conn.execute("SELECT * FROM incident_timeline ORDER BY id").fetchall() == timeline
        assert (
            conn.execute(f"SELECT * FROM {whole_versions()} AS v ORDER BY id").fetchall()
            == versions
        )
        assert_in_step(conn)
        assert search(conn, "VLIET") == {"3"}
        # And the archive goes on: 3 leaves, 2 comes back with a new address.
        summary = poll(
            upgraded,
            [
                call(
                    "2",
                    status="Unable to Locate Complainant",
                    address="30XX W LINCOLN AV",
                    extra={"source_row": "2"},  # as the fixture has it
                )
            ],
            "2023-01-21T23:25:00Z",
        )
        assert (summary.new, summary.changed, summary.gone, summary.returned) == (0, 1, 1, 1)
        assert search(conn, "LINCOLN") == {"2"}
        assert search(conn, "VLIET") == {"3"}
        assert_in_step(conn)
        assert_compact(conn)
        last = conn.execute(
            "SELECT incident_id, event, changes FROM incident_timeline ORDER BY id DESC LIMIT 2"
        ).fetchall()
        assert sorted(last) == [
            ("2", "back", "address: 51XX S HOWELL AV → 30XX W LINCOLN AV"),
            ("3", "gone", None),
        ]
        schema = _schema(conn)
    with Archive(tmp_path / "fresh.db") as fresh:
        assert _schema(fresh.conn) == schema  # a fresh archive gets the same schema


def test_merging_a_version_7_archive_stores_its_versions_compact(tmp_path: Path) -> None:
    from dispatchwatch.merge import merge

    old = tmp_path / "old.db"
    shutil.copy(FIXTURE, old)
    conn = sqlite3.connect(old)
    timeline = conn.execute("SELECT * FROM incident_timeline ORDER BY id").fetchall()
    conn.close()
    out = tmp_path / "merged.db"
    with Archive(out) as other:  # the output already holds another feed's history
        other.register_feed(dataclasses.replace(FEED, slug="other"))
        other.record_success(
            "other",
            [dataclasses.replace(call("9"), feed="other")],
            observed_at="2023-01-21T23:00:00Z",
            snapshot=True,
        )
        other.record_success("other", [], observed_at="2023-01-21T23:05:00Z", snapshot=True)
    merge(out, [old])
    assert old.read_bytes() == FIXTURE.read_bytes()  # the input is only read
    with Archive(out) as merged:
        conn = merged.conn
        assert_compact(conn)
        assert len(gone_fields(conn)) == 6
        shown = conn.execute(
            "SELECT * FROM incident_timeline WHERE feed = 'mke' ORDER BY id"
        ).fetchall()
        # Same rows but for the renumbered ids (the other feed's versions came first).
        assert [row[1:] for row in shown] == [
            (row[1], *row[2:7], row[7] + 2, *row[8:]) for row in timeline
        ]
        assert_in_step(conn)


def test_an_import_into_a_gone_incident_stores_what_it_supersedes(archive: Archive) -> None:
    conn = archive.conn
    poll(archive, [call("1"), call("2")], "2023-01-21T23:00:00Z")
    poll(archive, [call("2")], "2023-01-21T23:05:00Z")  # 1 leaves the list
    summary = archive.record_success(
        "mke", [call("1", status="Closed")], observed_at="2023-01-21T23:10:00Z", kind="import"
    )
    assert (summary.changed, summary.returned) == (1, 0)
    assert conn.execute("SELECT gone_at FROM incidents WHERE incident_id = '1'").fetchone() == (
        "2023-01-21T23:05:00Z",
    )  # an import's row is no listing: 1 stays gone
    assert stored(conn) == [("1", 1, 1), ("2", 1, 0), ("1", 2, 1), ("1", 3, 0)]
    assert_compact(conn)
    rows = conn.execute(
        "SELECT version, changed, status, gone_at FROM incident_versions "
        "WHERE incident_id = '1' ORDER BY version"
    ).fetchall()
    assert rows == [
        (1, '["new"]', "Service in Progress", None),
        (2, '["gone_at"]', "Service in Progress", "2023-01-21T23:05:00Z"),
        (3, '["status"]', "Closed", None),
    ]


def test_whole_versions_written_through_the_view_read_back_as_written(archive: Archive) -> None:
    from dispatchwatch.versions import COMPACT_VALUES, VERSION_COLUMNS

    conn = archive.conn
    poll(archive, [call("1")], "2023-01-21T23:00:00Z")
    poll(archive, [call("1", status="Closed")], "2023-01-21T23:05:00Z")
    before = conn.execute("SELECT * FROM incident_versions ORDER BY id").fetchall()
    # A version as an older archive may hold it: its time is not its poll's.
    odd = (*before[0][:3], 3, before[0][4], "2023-01-21T22:59:59.5Z", '["units"]')
    odd += before[1][7:-1] + (None,)
    with archive.transaction():
        conn.execute(
            f"INSERT INTO incident_versions ({', '.join(VERSION_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(VERSION_COLUMNS))})",
            (99, *odd[1:]),
        )
        conn.execute(COMPACT_VALUES)
    assert conn.execute("SELECT * FROM version_times").fetchall() == [
        (99, "2023-01-21T22:59:59.5Z")
    ]
    assert conn.execute("SELECT * FROM incident_versions WHERE id = 99").fetchone() == (
        99,
        *odd[1:],
    )
    # Written whole, then compacted: the new latest version reads its incident's values.
    assert stored(conn)[-1] == ("1", 3, 0)
    with archive.transaction():
        conn.execute("DELETE FROM incident_versions WHERE id = 99")
    assert conn.execute("SELECT * FROM incident_versions ORDER BY id").fetchall() == before
    for table in ("version_log", "version_values", "version_times"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE id = 99").fetchone() == (0,)


def test_a_new_archive_is_made_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All migrations of a new archive run in one transaction: one that fails (here the
    last) leaves no table behind, and the next open makes the archive whole."""
    from dispatchwatch import archive as archive_module

    def failing(db: object) -> None:
        raise RuntimeError("killed")

    path = tmp_path / "new.db"
    with monkeypatch.context() as patch:
        patch.setitem(archive_module.MIGRATIONS, SCHEMA_VERSION, failing)
        with pytest.raises(RuntimeError, match="killed"):
            Archive(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    conn.close()
    with Archive(path) as archive:
        assert archive.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        archive.register_feed(FEED)


def test_a_new_archive_has_the_schema_the_migrations_make_one_by_one(tmp_path: Path) -> None:
    """A new archive is made in one transaction, with its views made once (see
    archive._install_views): the same tables, indexes, triggers and views, in the same order,
    as running every migration in its own transaction as an older archive upgrades."""
    from dispatchwatch.archive import MIGRATIONS, Schema, write_transaction

    step = sqlite3.connect(tmp_path / "step.db", isolation_level=None)
    for version in range(1, SCHEMA_VERSION + 1):
        with write_transaction(step):
            MIGRATIONS[version](Schema(step))
            step.execute(f"PRAGMA user_version = {version}")
    with Archive(tmp_path / "new.db") as archive:
        new = archive.conn
        schema = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
        assert new.execute(schema).fetchall() == step.execute(schema).fetchall()
        for (table,) in step.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            columns = f"PRAGMA table_xinfo([{table}])"
            assert new.execute(columns).fetchall() == step.execute(columns).fetchall()
    step.close()
