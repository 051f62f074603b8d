"""The archive's storage choices (migration 8): the full-text index stays exactly in step
with the rows through the batched write path, gone versions store only their key and read
back whole, and a version 7 archive upgrades in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dispatchwatch.archive import Archive, FeedRecord
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


def call(incident_id: str, **fields: object) -> Incident:
    values: dict[str, object] = {
        "received_at": "2023-01-21T22:00:00Z",
        "call_type": "TRAFFIC STOP",
        "status": "Service in Progress",
        "address": "51XX S HOWELL AV",
        "city": "Milwaukee",
        "district": "6",
    }
    values.update(fields)
    return Incident(feed="mke", incident_id=incident_id, **values)  # type: ignore[arg-type]


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    archive = Archive(tmp_path / "dispatch.db")
    archive.register_feed(FEED)
    yield archive
    archive.close()


def poll(archive: Archive, incidents: list[Incident], at: str, snapshot: bool = True):
    return archive.record_success("mke", incidents, observed_at=at, snapshot=snapshot)


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
