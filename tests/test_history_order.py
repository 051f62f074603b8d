"""History never overrides a later observation (issue 9; issue 8 item 4's invariant).

Live polls, an import, a backfill and an import of a git-scraping repository of the same
Milwaukee calls, archived in every order: whatever the order, each incident's current values
are those of its latest observation, its versions are in ``observed_at`` order and ``gone_at``
is never before ``first_seen_at``. Every archive is a real SQLite file; the git repository is
built by the test. Inputs: ``fixtures/milwaukee/seq_0*.html`` and
``fixtures/imports/milwaukee_export_overlap.csv`` (see fixtures/README.md).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from dispatchwatch.archive import Archive, FeedRecord
from dispatchwatch.config import Feed, default_feed
from dispatchwatch.history import import_git
from dispatchwatch.imports.mapping import load_mapping
from dispatchwatch.imports.run import import_files
from dispatchwatch.incident import Incident
from dispatchwatch.pipeline import process_page
from dispatchwatch.versions import whole_versions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEQUENCE = sorted((FIXTURES / "milwaukee").glob("seq_0*.html"))
OVERLAP = FIXTURES / "imports" / "milwaukee_export_overlap.csv"
A, E, G, P = "240740488", "240740506", "240740515", "240740560"


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, args).fetchall()


def assert_history_in_order(db: Path) -> None:
    """The archive's invariants, and each incident's row equal to its latest version."""
    # As times (julianday), not text: "...00Z" and "...00.25Z" are both stored.
    before = "julianday({}) < julianday({})".format
    gone_early = f"{before('gone_at', 'first_seen_at')} OR {before('gone_at', 'received_at')}"
    assert query(db, f"SELECT count(*) FROM incidents WHERE {gone_early}") == [(0,)]
    backwards = query(
        db,
        "SELECT a.incident_id, a.version, a.observed_at, b.observed_at "
        "FROM incident_versions a JOIN incident_versions b "
        "ON a.feed = b.feed AND a.incident_id = b.incident_id AND b.version = a.version + 1 "
        f"WHERE {before('b.observed_at', 'a.observed_at')}",
    )
    assert backwards == []
    # (Read whole: a gone version stores no fields of its own, see versions.py.)
    fields = "status, call_type, address, city, district"
    stale = query(
        db,
        f"SELECT i.incident_id FROM incidents i JOIN {whole_versions()} v "
        f"ON v.feed = i.feed AND v.incident_id = i.incident_id AND v.version = i.version "
        f"WHERE ({', '.join('i.' + f for f in fields.split(', '))}) "
        f"IS NOT ({', '.join('v.' + f for f in fields.split(', '))})",
    )
    assert stale == []
    # Version numbers run 1..n without a gap.
    gaps = query(
        db,
        "SELECT incident_id FROM incidents i WHERE version != "
        "(SELECT count(*) FROM incident_versions v WHERE v.feed = i.feed "
        "AND v.incident_id = i.incident_id)",
    )
    assert gaps == []


def _git(repo: Path, *args: str, when: int) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "scraper", "GIT_AUTHOR_EMAIL": "scraper@example.org",
        "GIT_COMMITTER_NAME": "scraper", "GIT_COMMITTER_EMAIL": "scraper@example.org",
        "GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000",
    }  # fmt: skip
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git-scraping repository: pages 1, 3 and 5 of the sequence, one commit each."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = tmp_path_factory.mktemp("mke-calls")
    _git(path, "init", "-q", when=0)
    for n, page in enumerate(SEQUENCE[::2]):
        (path / "calls.html").write_bytes(page.read_bytes())
        when = 1710457207 + 600 * n
        _git(path, "add", "-A", when=when)
        _git(path, "commit", "-q", "-m", f"snapshot {n}", when=when)
    return path


def live(archive: Archive, feed: Feed, repo: Path) -> None:
    """The daemon's polls (kind NULL), in time order."""
    for page in SEQUENCE:
        process_page(archive, feed, page.read_bytes(), source=str(page))


def imported(archive: Archive, feed: Feed, repo: Path) -> None:
    """The overlapping export, in two batches (see fixtures/README.md)."""
    mapping = load_mapping("milwaukee-accumulated-export")
    import_files(archive, feed, [OVERLAP], mapping, batch_size=2, force=True)


def backfilled(archive: Archive, feed: Feed, repo: Path) -> None:
    """Web-archive captures of pages 2 and 4, archived as ``backfill_from_web_archive`` does."""
    for page in (SEQUENCE[1], SEQUENCE[3]):
        process_page(
            archive, feed, page.read_bytes(), source=f"capture {page.name}",
            fetched_at="2024-03-15T00:00:00.000Z", kind="backfill", older="history",
            snapshot=False,
        )  # fmt: skip


def git_imported(archive: Archive, feed: Feed, repo: Path) -> None:
    import_git(archive, feed, repo, "calls.html", force=True)


STEPS: dict[str, Callable[[Archive, Feed, Path], None]] = {
    "live": live,
    "import": imported,
    "backfill": backfilled,
    "git": git_imported,
}


@pytest.mark.parametrize("order", list(itertools.permutations(STEPS)), ids="-".join)
def test_every_order_keeps_the_latest_observation_current(
    order: tuple[str, ...], repo: Path, tmp_path: Path
) -> None:
    db = tmp_path / "a.db"
    feed = default_feed("milwaukee-police")
    with Archive(db) as archive:
        archive.register_feed(feed.record())
        for step in order:
            STEPS[step](archive, feed, repo)
            assert_history_in_order(db)
    current = {
        row[0]: row[1:]
        for row in query(db, "SELECT incident_id, status, call_type, address, city FROM incidents")
    }
    # The export's "Dispatched" (22:11:21Z) is older than the sequence's pages (23:00:07Z on):
    # never current, whatever came first.
    assert current[E] == ("Assignment Completed", "ACC PI", "42XX W LAYTON AV", "Greenfield")
    assert current[G][0] == "To be Filed"
    # The export's row of A (23:50:00Z) is later than any page: its status is current.
    assert current[A] == ("Assignment Completed", "TRBL W/SUBJ", "27XX N 38TH ST", "Milwaukee")
    assert current[P] == ("Assignment Completed", "THEFT", "15XX N WATER ST", "Milwaukee")
    assert len(current) == 16  # the sequence's 15 calls and P
    # The earliest sighting is first_seen_at, whoever saw it first.
    assert query(db, "SELECT first_seen_at FROM incidents WHERE incident_id = ?", E) == [
        ("2024-03-14T22:11:21Z",)
    ]


def test_an_import_never_brings_back_a_call_that_left_the_list(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    feed = default_feed("milwaukee-police")
    with Archive(db) as archive:
        archive.register_feed(feed.record())
        live(archive, feed, tmp_path)
        (gone_at,) = query(db, "SELECT gone_at FROM incidents WHERE incident_id = ?", A)[0]
        assert gone_at == "2024-03-14T23:05:09Z"
        imported(archive, feed, tmp_path)
    # A's later row updates its values; it stays gone, and no poll counts it as returned.
    assert query(db, "SELECT status, gone_at FROM incidents WHERE incident_id = ?", A) == [
        ("Assignment Completed", gone_at)
    ]
    assert query(db, "SELECT sum(returned) FROM polls WHERE kind = 'import'") == [(0,)]
    versions = query(
        db,
        "SELECT changed, observed_at, gone_at FROM incident_versions WHERE incident_id = ? "
        "ORDER BY version",
        A,
    )
    assert versions == [
        ('["new"]', "2024-03-14T23:00:07Z", None),
        ('["gone_at"]', "2024-03-14T23:05:09Z", gone_at),
        ('["status"]', "2024-03-14T23:50:00Z", None),  # a change, not a return
    ]
    assert_history_in_order(db)


FEED_F = FeedRecord(
    slug="f", name="f", agency="", city="", scraper="f", url="http://127.0.0.1:9/",
    timezone="America/Chicago", snapshot=True, interval_seconds=60,
)  # fmt: skip


def _incident(status: str, received: str = "2024-03-14T21:00:00Z") -> Incident:
    return Incident("f", "1", received, call_type="FIRE", status=status, address="15XX ELM ST")


@pytest.mark.parametrize("kind", ["import", "backfill", "ingest", None])
def test_an_older_observation_never_becomes_current(kind: str | None, tmp_path: Path) -> None:
    """record_success itself: values observed before an incident's last sighting are history."""
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        archive.register_feed(FEED_F)
        archive.record_success("f", [_incident("closed")], observed_at="2024-03-14T23:00:00Z")
        older = archive.record_success(
            "f", [_incident("dispatched")], observed_at="2024-03-14T22:00:00.5Z", kind=kind
        )
        # Within one second the fraction counts: 23:00:00Z is before 23:00:00.25Z.
        later = archive.record_success(
            "f", [_incident("reopened")], observed_at="2024-03-14T23:00:00.25Z", kind=kind
        )
    assert (older.new, older.changed) == (0, 0)
    assert (later.new, later.changed) == (0, 1)
    assert query(db, "SELECT status, first_seen_at, last_seen_at, version FROM incidents") == [
        ("reopened", "2024-03-14T22:00:00.5Z", "2024-03-14T23:00:00.25Z", 2)
    ]
    assert_history_in_order(db)


def test_a_page_older_than_a_sighting_marks_nothing_gone(tmp_path: Path) -> None:
    """A snapshot poll cannot say a call left the list if a later poll saw it listed."""
    db = tmp_path / "a.db"
    seen_late = Incident("f", "2", "2024-03-14T21:00:00Z", call_type="AID", status="active")
    with Archive(db) as archive:
        archive.register_feed(FEED_F)
        archive.record_success(
            "f", [_incident("active"), seen_late], observed_at="2024-03-14T22:00:00Z",
            snapshot=True,
        )  # fmt: skip
        archive.record_success(
            "f", [seen_late], observed_at="2024-03-14T23:30:00Z", kind="backfill"
        )
        summary = archive.record_success(
            "f", [_incident("active")], observed_at="2024-03-14T23:00:00Z", snapshot=True
        )
    assert summary.gone == 0
    assert query(db, "SELECT incident_id, gone_at FROM incidents ORDER BY 1") == [
        ("1", None),
        ("2", None),
    ]
    assert_history_in_order(db)


# --- a page's time against the archive's, within one second ----------------------------------


@pytest.mark.parametrize(
    ("as_of", "latest", "older"),
    [
        ("2024-04-01T01:33:07Z", "2024-04-01T01:33:07.290Z", True),  # text order says no
        ("2024-04-01T01:33:07.290Z", "2024-04-01T01:33:07Z", False),
        ("2024-04-01T01:33:07.000Z", "2024-04-01T01:33:07Z", False),  # the same moment
        ("2024-04-01T01:33:06.999Z", "2024-04-01T01:33:07Z", True),
        ("2024-04-01T01:33:08Z", "2024-04-01T01:33:07.999Z", False),
    ],
)
def test_a_page_is_older_than_the_archive_by_time_not_by_text(
    as_of: str, latest: str, older: bool
) -> None:
    from dispatchwatch.archive import time_before
    from dispatchwatch.pipeline import _older_than_archive

    assert time_before(as_of, latest) is older
    assert (_older_than_archive(as_of, {"observed_at": latest}) is not None) is older
