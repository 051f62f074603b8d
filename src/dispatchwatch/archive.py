"""The SQLite archive: current state, append-only change history, and a log of every poll.

Tables (see the README for the full reference):

- ``feeds``: one row per configured feed.
- ``incidents``: the current state of each incident, keyed by ``(feed, incident_id)``.
- ``incident_versions``: a full snapshot each time an incident is first seen, changes
  or comes back; when it leaves a snapshot feed's list, a version with ``gone_at`` set
  and no fields (they are the previous version's; see :mod:`dispatchwatch.versions`).
- ``polls``: one row per poll, success or failure.

Every poll is written in one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a failure
leaves the archive exactly as it was. The schema is created with sqlite-utils and versioned
with ``PRAGMA user_version``; the hot path uses plain ``executemany`` on the connection.
"""

from __future__ import annotations

import functools
import json
import operator
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import bulkload, checkpoints, versions
from .database import APPLICATION_ID, ArchiveError, check_writable, connect_read_only
from .extrajson import extra_json
from .incident import TRACKED_FIELDS, Incident
from .pagestore import Response, store_pages

if TYPE_CHECKING:
    import sqlite_utils

SCHEMA_VERSION = 10


#: Columns shared by ``incidents`` and ``incident_versions`` (besides the key).
INCIDENT_COLUMNS: dict[str, type] = {
    "received_at": str,
    "call_type": str,
    "priority": str,
    "status": str,
    "disposition": str,
    "address": str,
    "city": str,
    "district": str,
    "beat": str,
    "units": str,
    "latitude": float,
    "longitude": float,
    "extra": str,
}
assert tuple(INCIDENT_COLUMNS) == TRACKED_FIELDS

POLL_OUTCOMES = ("new", "unchanged", "not_modified", "partial", "error")
#: Outcomes of polls that read the whole list (a ``partial`` poll kept rows but may have
#: missed some; an ``error`` poll wrote nothing).
COMPLETE_OUTCOMES = ("new", "unchanged", "not_modified")


def format_time(moment: datetime) -> str:
    """The archive's timestamp format (UTC, milliseconds, ``Z``), which sorts as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def utc_now() -> str:
    return format_time(datetime.now(UTC))


@dataclass(slots=True)
class PollSummary:
    """What one poll did, as recorded in ``polls``."""

    poll_id: int
    feed: str
    outcome: str
    incidents: int = 0
    new: int = 0
    changed: int = 0
    gone: int = 0
    returned: int = 0
    error_kind: str | None = None
    error: str | None = None


@dataclass(slots=True)
class FeedRecord:
    """A feed's descriptive row in ``feeds``."""

    slug: str
    name: str
    agency: str
    city: str
    scraper: str
    url: str
    timezone: str
    snapshot: bool
    interval_seconds: float
    state: str = ""
    homepage: str = ""
    precision: str = "block"
    license: str = ""
    source_notes: str = ""


# --- migrations ----------------------------------------------------------------------------


#: Migration 1's tables and indexes, as sqlite-utils' ``create()`` and ``create_index()``
#: wrote them (the same text in ``sqlite_master``; tests/test_archive_startup.py holds it
#: to sqlite-utils), so opening an archive never imports sqlite-utils.
_M1_INCIDENT_COLUMNS = """\
   "received_at" TEXT,
   "call_type" TEXT,
   "priority" TEXT,
   "status" TEXT,
   "disposition" TEXT,
   "address" TEXT,
   "city" TEXT,
   "district" TEXT,
   "beat" TEXT,
   "units" TEXT,
   "latitude" REAL,
   "longitude" REAL,
   "extra" TEXT,
"""
_MIGRATION_1 = (
    """CREATE TABLE "feeds" (
   "slug" TEXT PRIMARY KEY,
   "name" TEXT,
   "agency" TEXT,
   "city" TEXT,
   "state" TEXT,
   "scraper" TEXT,
   "url" TEXT,
   "homepage" TEXT,
   "timezone" TEXT,
   "snapshot" INTEGER,
   "interval_seconds" REAL,
   "precision" TEXT,
   "license" TEXT,
   "source_notes" TEXT,
   "added_at" TEXT,
   "updated_at" TEXT
)""",
    """CREATE TABLE "incidents" (
   "feed" TEXT REFERENCES "feeds"("slug"),
   "incident_id" TEXT,
"""
    + _M1_INCIDENT_COLUMNS
    + """   "first_seen_at" TEXT,
   "last_seen_at" TEXT,
   "gone_at" TEXT,
   "version" INTEGER,
   PRIMARY KEY ("feed", "incident_id")
)""",
    """CREATE TABLE "polls" (
   "id" INTEGER PRIMARY KEY,
   "feed" TEXT REFERENCES "feeds"("slug"),
   "started_at" TEXT,
   "observed_at" TEXT,
   "duration_ms" REAL,
   "outcome" TEXT,
   "http_status" INTEGER,
   "bytes" INTEGER,
   "sha256" TEXT,
   "etag" TEXT,
   "last_modified" TEXT,
   "incidents" INTEGER,
   "new" INTEGER,
   "changed" INTEGER,
   "gone" INTEGER,
   "returned" INTEGER,
   "error_kind" TEXT,
   "error" TEXT,
   "source" TEXT
)""",
    """CREATE TABLE "incident_versions" (
   "id" INTEGER PRIMARY KEY,
   "feed" TEXT REFERENCES "feeds"("slug"),
   "incident_id" TEXT,
   "version" INTEGER,
   "poll_id" INTEGER REFERENCES "polls"("id"),
   "observed_at" TEXT,
   "changed" TEXT,
"""
    + _M1_INCIDENT_COLUMNS
    + """   "gone_at" TEXT
)""",
    """CREATE INDEX "idx_incidents_received_at"
    ON "incidents" ("received_at")""",
    """CREATE INDEX "idx_incidents_feed_received_at"
    ON "incidents" ("feed", "received_at")""",
    """CREATE INDEX "idx_incidents_call_type"
    ON "incidents" ("call_type")""",
    """CREATE INDEX "idx_incidents_district"
    ON "incidents" ("district")""",
    """CREATE UNIQUE INDEX "idx_incident_versions_feed_incident_id_version"
    ON "incident_versions" ("feed", "incident_id", "version")""",
    """CREATE INDEX "idx_incident_versions_poll_id"
    ON "incident_versions" ("poll_id")""",
    """CREATE INDEX "idx_polls_feed_started_at"
    ON "polls" ("feed", "started_at")""",
    """CREATE INDEX "idx_polls_feed_outcome_id"
    ON "polls" ("feed", "outcome", "id")""",
)


def _migration_1(db: sqlite_utils.Database) -> None:
    for statement in _MIGRATION_1:
        db.execute(statement)
    # The incidents still listed by a snapshot feed: read on every poll of such a feed.
    db.execute("CREATE INDEX idx_incidents_listed ON incidents (feed) WHERE gone_at IS NULL")
    # Full-text search on call type and address, kept in step by triggers (the shape
    # sqlite-utils' enable_fts makes, so `sqlite-utils search` and Datasette find it), but:
    # columnsize=0 skips a per-row size table we never rank by, and the update trigger
    # fires only when an indexed column changes, not on every last_seen_at update.
    fts_statements = [
        """CREATE VIRTUAL TABLE incidents_fts USING fts5(
  call_type, address, content="incidents", columnsize=0
)""",
        """CREATE TRIGGER incidents_ai AFTER INSERT ON incidents BEGIN
  INSERT INTO incidents_fts (rowid, call_type, address)
    VALUES (new.rowid, new.call_type, new.address);
END""",
        """CREATE TRIGGER incidents_ad AFTER DELETE ON incidents BEGIN
  INSERT INTO incidents_fts (incidents_fts, rowid, call_type, address)
    VALUES ('delete', old.rowid, old.call_type, old.address);
END""",
        """CREATE TRIGGER incidents_au AFTER UPDATE OF call_type, address ON incidents BEGIN
  INSERT INTO incidents_fts (incidents_fts, rowid, call_type, address)
    VALUES ('delete', old.rowid, old.call_type, old.address);
  INSERT INTO incidents_fts (rowid, call_type, address)
    VALUES (new.rowid, new.call_type, new.address);
END""",
    ]
    for statement in fts_statements:  # not executescript: it would commit the migration
        db.execute(statement)


def _migration_2(db: sqlite_utils.Database) -> None:
    # The local-time and timeline views for Datasette, and their zone_offsets table.
    _install_views(db)


def _install_views(db: sqlite_utils.Database | Schema) -> None:
    """:func:`~dispatchwatch.publish.install_views`, for migrations 2 and 8; in a new
    archive only its ``zone_offsets`` table: migration 9 (re)creates the views there
    anyway, once every table exists, and making them twice before only to drop them again
    was about 3% of a one-page ingest (the ``ALTER TABLE`` statements in between check them
    too).
    """
    from .publish import ensure_zone_offsets, install_views  # lazy: publish imports us

    if isinstance(db, Schema) and db.new_archive:
        ensure_zone_offsets(db.conn)
    else:
        install_views(db.conn)


def _migration_3(db: sqlite_utils.Database) -> None:
    """Feed state (watermarks), completed day logs, and what kind of poll each poll was."""
    db.execute(
        """CREATE TABLE feed_state (
  feed TEXT NOT NULL REFERENCES feeds(slug),
  key TEXT NOT NULL,
  value TEXT,
  poll_id INTEGER,
  updated_at TEXT,
  PRIMARY KEY (feed, key)
)"""
    )
    db.execute(
        """CREATE TABLE day_logs (
  feed TEXT NOT NULL REFERENCES feeds(slug),
  day TEXT NOT NULL,
  completed_at TEXT,
  poll_id INTEGER,
  PRIMARY KEY (feed, day)
)"""
    )
    # NULL: a live poll by the daemon; else 'ingest', 'backfill', 'import', 'reparse'.
    db.execute("ALTER TABLE polls ADD COLUMN kind TEXT")
    # How many HTTP requests the poll made (paged queries make several).
    db.execute("ALTER TABLE polls ADD COLUMN requests INTEGER")


def _migration_4(db: sqlite_utils.Database) -> None:
    """The raw page store (``pages``, ``poll_pages``) and ``polls.scraper_version``."""
    from .pagestore import _migration

    _migration(db)


def _migration_5(db: sqlite_utils.Database) -> None:
    """History imports: ``imports`` (files imported), ``call_counts`` and the
    ``calls_by_type_month`` view (see :mod:`dispatchwatch.imports.schema`)."""
    from .imports.schema import create_tables

    create_tables(db.conn)


def _migration_6(db: sqlite_utils.Database) -> None:
    """Reserved: alerts (``alerts_sent``) and coverage."""
    from .coverage import install_coverage_views  # lazy: coverage imports publish

    install_coverage_views(db.conn)
    from .alerts import ensure_tables

    ensure_tables(db.conn)


def _migration_7(db: sqlite_utils.Database) -> None:
    """Reserved: data-correctness bookkeeping (day logs completed, gone holds)."""


def _migration_8(db: sqlite_utils.Database) -> None:
    """Archive size and write speed (measured in ``bench/size.py`` and ``bench/socrata.py``).

    - A gone version stores only its key, poll, times and ``changed`` (its fields are the
      previous version's, see :mod:`dispatchwatch.versions`); existing ones are emptied.
      The space they held is reused by later writes; ``VACUUM`` gives it back to the disk.
    - The full-text update trigger fires only when ``call_type`` or ``address`` really
      changes, not for every update that sets them (a status change rewrote the index).
    - The views are reinstalled (``incident_timeline`` fills gone versions in).
    """
    from .versions import EMPTY_GONE_VERSIONS

    conn = db.conn
    conn.execute("DROP TRIGGER IF EXISTS incidents_au")
    conn.execute(_FTS_UPDATE_TRIGGER)
    conn.execute(EMPTY_GONE_VERSIONS)
    _install_views(db)


_FTS_UPDATE_TRIGGER = """CREATE TRIGGER incidents_au AFTER UPDATE OF call_type, address ON incidents
WHEN old.call_type IS NOT new.call_type OR old.address IS NOT new.address BEGIN
  INSERT INTO incidents_fts (incidents_fts, rowid, call_type, address)
    VALUES ('delete', old.rowid, old.call_type, old.address);
  INSERT INTO incidents_fts (rowid, call_type, address)
    VALUES (new.rowid, new.call_type, new.address);
END"""


def _migration_9(db: sqlite_utils.Database) -> None:
    """Compact versions (see :mod:`dispatchwatch.versions`): ``incident_versions`` becomes a
    view of whole versions over ``version_log`` (integer keys, the poll's time not repeated)
    and ``version_values`` (fields only where they are not the incident's current ones).
    Existing versions are moved over, read whole as schema 8 read them; a version whose
    incident is not in ``incidents`` cannot be keyed and stops the upgrade (nothing changes).
    ``VACUUM`` gives the space of the old table back to the disk."""
    from .publish import install_views  # lazy: publish imports this module

    conn = db.conn
    orphans = conn.execute(
        "SELECT count(*) FROM incident_versions v WHERE NOT EXISTS (SELECT 1 FROM incidents i "
        "WHERE i.feed = v.feed AND i.incident_id = v.incident_id)"
    ).fetchone()[0]
    if orphans:
        raise ArchiveError(
            f"{orphans} version(s) in incident_versions belong to no incident in incidents; "
            "delete them to upgrade the archive"
        )
    for statement in versions.CREATE_TABLES:
        conn.execute(statement)
    new, gone = versions.NEW, versions.GONE
    conn.execute(
        "INSERT INTO version_log (id, incident, version, poll_id, changed, gone) "
        "SELECT v.id, i.rowid, v.version, v.poll_id, "
        f"CASE WHEN v.changed IS (CASE WHEN v.gone_at IS NULL THEN '{new}' ELSE '{gone}' END) "
        "THEN NULL ELSE v.changed END, CASE WHEN v.gone_at IS NOT NULL THEN 1 END "
        "FROM incident_versions v JOIN incidents i USING (feed, incident_id) ORDER BY v.id"
    )
    conn.execute(
        "INSERT INTO version_times (id, observed_at) SELECT v.id, v.observed_at "
        "FROM incident_versions v LEFT JOIN polls p ON p.id = v.poll_id "
        "WHERE v.observed_at IS NOT p.observed_at"
    )
    # Whole (a gone version emptied by schema 8 takes the previous version's), then compacted.
    fields = ", ".join(TRACKED_FIELDS)
    whole = ", ".join(
        f"CASE WHEN v.gone_at IS NULL OR p.id IS NULL THEN v.[{n}] ELSE p.[{n}] END"
        for n in TRACKED_FIELDS
    )
    conn.execute(
        f"INSERT INTO version_values (id, {fields}) SELECT v.id, {whole} "
        "FROM incident_versions v LEFT JOIN incident_versions p ON v.gone_at IS NOT NULL "
        "AND p.feed = v.feed AND p.incident_id = v.incident_id AND p.version = v.version - 1 "
        "ORDER BY v.id"
    )
    conn.execute("DROP TABLE incident_versions")
    for statement in versions.CREATE_VIEW:
        conn.execute(statement)
    conn.execute(versions.COMPACT_VALUES)
    install_views(conn)


def _migration_10(db: sqlite_utils.Database) -> None:
    """``deferred_schema``: the indexes and triggers a large bulk job dropped until it ends
    (see :mod:`dispatchwatch.bulkload`); empty except while such a job runs."""
    db.execute(bulkload.CREATE_TABLE)


MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {
    1: _migration_1,
    2: _migration_2,
    3: _migration_3,
    4: _migration_4,
    5: _migration_5,
    6: _migration_6,
    7: _migration_7,
    8: _migration_8,
    9: _migration_9,
    10: _migration_10,
}


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception, including a COMMIT
    that fails (busy, disk full): a transaction left open would make every later poll fail."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _nothing() -> None:
    """(What an archive calls after a transaction outside an outer one.)"""


#: Page cache of an outer transaction (KiB; see Archive.outer_transaction), as large as the
#: rebuild's after it (bulkload.REBUILD_CACHE_KIB): the peak memory stays.
OUTER_CACHE_KIB = 65_536

#: ``PRAGMA wal_autocheckpoint`` of an archive's connection (pages of WAL): see Archive().
WAL_AUTOCHECKPOINT = 4000


@contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A ``SAVEPOINT`` inside the open transaction: released at the end, rolled back to on
    any exception (the transaction stays open)."""
    conn.execute("SAVEPOINT dw_write")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # (an error SQLite rolled back itself ends it all)
            conn.execute("ROLLBACK TO dw_write")
            conn.execute("RELEASE dw_write")
        raise
    conn.execute("RELEASE dw_write")


class Schema:
    """What a migration is given: the connection (``conn``) and ``execute(sql)``, the part of
    :class:`sqlite_utils.Database` the migrations use, without importing sqlite-utils (its
    import is about a tenth of a second: every start of ``ingest`` paid it)."""

    def __init__(self, conn: sqlite3.Connection, *, new_archive: bool = False) -> None:
        self.conn = conn
        #: Set by :func:`migrate` while it makes a new archive (see :func:`_install_views`).
        self.new_archive = new_archive

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, parameters)


def migrate(db: sqlite_utils.Database | Schema) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`: a new archive in one transaction, an
    older one in one transaction per migration."""
    conn = db.conn
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise ArchiveError(
            f"the archive has schema version {current}, newer than this dispatchwatch "
            f"({SCHEMA_VERSION}); upgrade dispatchwatch"
        )
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if application_id not in (0, APPLICATION_ID):
        raise ArchiveError(f"not a dispatchwatch archive (application_id {application_id:#010x})")
    if current == 0:
        # A new archive: every migration in one transaction (the same statements, one
        # commit instead of ten), so it exists whole or not at all.
        with write_transaction(conn):
            # (Another process may have made it since the version was read: then the
            # migrations it has not run yet, below, as for an older archive.)
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current == 0:
                new = Schema(conn, new_archive=True)
                for version in range(1, SCHEMA_VERSION + 1):
                    MIGRATIONS[version](new)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                return SCHEMA_VERSION
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with write_transaction(conn):
            MIGRATIONS[version](db)
            conn.execute(f"PRAGMA user_version = {version}")
            # Marks the file as ours (see database.py), with its first tables.
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    if application_id != APPLICATION_ID and current == SCHEMA_VERSION:
        with write_transaction(conn):  # an archive made before the id existed
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    return SCHEMA_VERSION


# --- the archive ---------------------------------------------------------------------------


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_SELECT_STATE = (
    f"SELECT incident_id, {', '.join(TRACKED_FIELDS)}, gone_at, version, "
    "max(coalesce(last_seen_at, ''), coalesce(gone_at, '')), rowid FROM incidents "
    "WHERE feed = ? AND "
)


def time_before(a: str, b: str) -> bool:
    """Is UTC time ``a`` before ``b``? Both ``YYYY-MM-DDTHH:MM:SS[.fff]Z``; within one second
    the fractions are compared as numbers (``...07Z`` is before ``...07.29Z``)."""
    if a[:19] != b[:19]:
        return a < b
    return (a[19:-1] or ".").ljust(10, "0") < (b[19:-1] or ".").ljust(10, "0")


def _last_of(columns: str, outcome: str, where: str = "") -> str:
    """The last poll of feed ``?1`` with ``outcome`` (``columns`` of it), by a backwards walk
    of the polls(feed, outcome, id) index that stops at its first match."""
    return (
        f"SELECT * FROM (SELECT {columns} FROM polls WHERE feed = ?1 AND outcome = '{outcome}'"
        f"{where} ORDER BY id DESC LIMIT 1)"
    )


# The last parsed poll (new, unchanged, not_modified): its id and what the fetcher needs;
# and the time of the last poll that archived rows (new or partial): a page dated before it
# can only add history (see record_success's history_only). Unchanged polls don't count
# there: their time is the fetch's, not the page's. History (a forced old page, a backfill,
# an import) is dated in the past on purpose; every other poll is in time order, so the
# last one is the latest.
_ARCHIVED_ROWS = (
    " AND (error_kind IS NULL OR error_kind != 'history') AND (kind IS NULL OR kind = 'ingest')"
)
_LAST_PARSED = (
    "SELECT id, sha256, etag, last_modified, (SELECT observed_at FROM ("
    + " UNION ALL ".join(_last_of("id, observed_at", o, _ARCHIVED_ROWS) for o in ("new", "partial"))
    + ") ORDER BY id DESC LIMIT 1) FROM (SELECT * FROM ("
    + " UNION ALL ".join(
        _last_of("id, sha256, etag, last_modified", o) for o in ("new", "unchanged", "not_modified")
    )
    + ") ORDER BY id DESC LIMIT 1)"  # (the time read once, for the poll picked)
)


_INCIDENT_ROW = [
    "feed", "incident_id", *TRACKED_FIELDS, "first_seen_at", "last_seen_at", "gone_at", "version",
]  # fmt: skip
# A poll's new and changed incidents are staged in a temporary table (one executemany), then
# copied by one INSERT ... SELECT into ``incidents`` (the new ones) and one into
# ``version_log`` (all of them, in page order). The full-text index's insert trigger
# then runs inside one statement: through executemany (one statement per row, each opening
# a statement savepoint on the FTS5 table) it measured about 60 of the 90 us a row cost,
# inside one statement almost nothing; and each row is bound once instead of twice. A poll
# stages only what varies by row (``_POLL_STAGED``, ``changed`` NULL for a new one): the feed
# and times are bound once per statement (each bound value cost about 0.5 us a row).
_STAGED = [*_INCIDENT_ROW, "changed"]
_STAGE = f"CREATE TEMP TABLE IF NOT EXISTS dw_poll_rows ({', '.join(_STAGED)})"
_INSERT_STAGED = _insert_sql("temp.dw_poll_rows", _STAGED)
_POLL_STAGED = ["incident_id", *TRACKED_FIELDS, "gone_at", "version", "changed"]
_INSERT_NEW_FROM_STAGE = (
    f"INSERT INTO incidents ({', '.join(_INCIDENT_ROW)}) SELECT ?, incident_id, "
    f"{', '.join(TRACKED_FIELDS)}, ?, ?, NULL, 1 "
    "FROM temp.dw_poll_rows WHERE changed IS NULL ORDER BY rowid"
)
_INSERT_WHOLE_FROM_STAGE = (
    f"INSERT INTO incidents ({', '.join(_INCIDENT_ROW)}) SELECT {', '.join(_INCIDENT_ROW)} "
    "FROM temp.dw_poll_rows ORDER BY rowid"
)
# Versions go to ``version_log`` (see versions.py): the incident's rowid, no fields (a new or
# changed incident's values are its current ones in ``incidents``) and ``changed`` NULL for
# ``["new"]``. Before the changed incidents are updated, the values they had are stored for
# their versions that had none (versions.STORE_SUPERSEDED).
_INSERT_VERSIONS_FROM_STAGE = (
    "INSERT INTO version_log (incident, version, poll_id, changed) SELECT i.rowid, s.version, "
    "?, s.changed FROM temp.dw_poll_rows s "
    "JOIN incidents i ON i.feed = ? AND i.incident_id = s.incident_id ORDER BY s.rowid"
)
# The changed ones, in one statement too (UPDATE ... FROM, SQLite 3.33): the full-text
# update trigger fires only when call_type or address changes, but then inside one statement.
_UPDATE_FROM_STAGE = (
    "UPDATE incidents SET "
    + ", ".join(f"{name} = s.{name}" for name in TRACKED_FIELDS)
    + ", last_seen_at = ?, gone_at = s.gone_at, version = s.version FROM temp.dw_poll_rows AS s "
    "WHERE s.changed IS NOT NULL AND incidents.feed = ? "
    "AND incidents.incident_id = s.incident_id"
)
_TOUCH_INCIDENTS = "UPDATE incidents SET last_seen_at = ? WHERE feed = ? AND incident_id IN "
_MARK_GONE = "UPDATE incidents SET gone_at = ?, version = ? WHERE feed = ? AND incident_id = ?"
# An older poll (history, an import) saw it: first_seen_at is the earliest sighting.
_SEEN_EARLIER = (
    "UPDATE incidents SET first_seen_at = ? WHERE feed = ? AND incident_id = ? "
    "AND first_seen_at > ?"
)
_INSERT_GONE_VERSION = (
    "INSERT INTO version_log (incident, version, poll_id, gone) VALUES (?, ?, ?, 1)"
)
_POLL_COLUMNS = (
    "feed", "started_at", "observed_at", "duration_ms", "outcome", "http_status", "bytes",
    "sha256", "etag", "last_modified", "incidents", "new", "changed", "gone", "returned",
    "error_kind", "error", "source", "kind", "requests", "scraper_version",
)  # fmt: skip
_INSERT_POLL = _insert_sql("polls", _POLL_COLUMNS)
_POLL_COUNTS = {"new": 0, "changed": 0, "gone": 0, "returned": 0}


def _insert_poll(conn: sqlite3.Connection, **values: Any) -> int:
    """Insert one ``polls`` row (columns not given are NULL, counts 0); returns its id."""
    values = {**_POLL_COUNTS, **values}
    cursor = conn.execute(_INSERT_POLL, [values.get(name) for name in _POLL_COLUMNS])
    return cursor.lastrowid or 0


def insert_incidents(conn: sqlite3.Connection, rows: Iterable[Sequence[Any]]) -> None:
    """Insert ``incidents`` rows (values in the order of ``_INCIDENT_ROW``) through the
    staging table, in one statement (see ``_STAGE``); inside the caller's transaction."""
    conn.execute(_STAGE)
    conn.executemany(_INSERT_STAGED, ((*row, None) for row in rows))
    conn.execute(_INSERT_WHOLE_FROM_STAGE)
    conn.execute("DELETE FROM temp.dw_poll_rows")


# A poll of new incidents only stages what varies by row (``_NEW_COLUMNS``), and their
# versions are one INSERT ... SELECT over the rowids ``incidents`` gave them (in page order:
# the stage's order), without joining the stage back by ID. Either way a column that is None
# in every row of the poll is left out of the stage's INSERT (NULL all the same) instead of
# bound once a row: most feeds leave several fields empty; each bound value costs ~0.2 us.
# (Not straight into ``incidents`` by executemany, even without the full-text triggers: with
# foreign keys on, every such INSERT opens a statement journal, and inside an outer
# transaction's savepoint each one copies the pages it touches again, a few kB a row.)
_NEW_COLUMNS = ("incident_id", *TRACKED_FIELDS)
_INSERT_NEW_VERSIONS = (
    "INSERT INTO version_log (incident, version, poll_id) "
    "SELECT rowid, 1, ? FROM incidents WHERE rowid > ? ORDER BY rowid"
)
_INSERT_NEW_VERSIONS_FROM_STAGE = (
    "INSERT INTO version_log (incident, version, poll_id) SELECT i.rowid, 1, ? "
    "FROM temp.dw_poll_rows s JOIN incidents i ON i.feed = ? AND i.incident_id = s.incident_id "
    "ORDER BY s.rowid"
)
_LAST_ROWID = "SELECT max(rowid) FROM incidents"

_cached_insert_sql = functools.lru_cache(maxsize=128)(_insert_sql)


def _bound(
    names: Sequence[str], columns: Sequence[Sequence[Any]]
) -> tuple[tuple[str, ...], Iterator[tuple[Any, ...]]]:
    """The ``names`` of the ``columns`` (each a value per row, all as long) that hold a value
    in some row, and the rows of those."""
    count = len(columns[0])
    keep = [
        k
        for k, column in enumerate(columns)
        if column[0] is not None or column.count(None) != count
    ]
    return tuple(names[k] for k in keep), zip(*(columns[k] for k in keep), strict=True)


def _stage(
    conn: sqlite3.Connection,
    staged: Sequence[tuple[Any, ...]] | StoredIncidents,
    changes: Mapping[str, tuple[Any, ...]],
) -> None:
    """Stage a poll's new and changed incidents, in page order, in one executemany:
    ``staged`` holds their stored rows (:data:`STORED_COLUMNS`), ``changes`` the changed
    ones' rows as ``_POLL_STAGED``. All new (no ``changes``): ``staged`` may be their
    :class:`StoredIncidents` as they are, and only ``_NEW_COLUMNS`` are staged (``gone_at``,
    ``version`` and ``changed`` left NULL)."""
    if changes:
        rows = [changes.get(row[0]) or (*row, None, 1, None) for row in staged]
        names, columns = _POLL_STAGED, list(zip(*rows, strict=True))
    elif isinstance(staged, StoredIncidents):
        names, columns = _NEW_COLUMNS, staged.columns
    else:
        names, columns = _NEW_COLUMNS, list(zip(*staged, strict=True))
    names, bound = _bound(names, columns)
    conn.execute(_STAGE)
    conn.executemany(_cached_insert_sql("temp.dw_poll_rows", names), bound)


def _insert_new_versions(
    conn: sqlite3.Connection, feed: str, poll_id: int, last_rowid: int, count: int
) -> None:
    """The ``version_log`` rows of a poll's ``count`` staged incidents, all new, inserted
    after ``last_rowid``: over their rowids when ``incidents`` gave them in order (each the
    largest + 1, checked), else by joining the stage back (the largest rowid was taken)."""
    if conn.execute(_LAST_ROWID).fetchone()[0] == last_rowid + count:
        conn.execute(_INSERT_NEW_VERSIONS, [poll_id, last_rowid])
    else:
        conn.execute(_INSERT_NEW_VERSIONS_FROM_STAGE, [poll_id, feed])


_IN_CHUNK = 500  # well below SQLite's bound-variable limit


def _all_new(known: Mapping[str, Any], unique: Mapping[str, Any], ids: Sequence[str]) -> bool:
    """Whether a poll's incidents are all new (none ``known``) and each listed once (as many
    ``unique`` IDs as ``ids``): then they are staged as they came, with nothing to compare
    (the same rows as comparing)."""
    return not known and len(unique) == len(ids)


#: A snapshot poll marks that many listed incidents gone at once without confirmation.
MASS_GONE_MIN = 5
#: feed_state key of a mass disappearance waiting for confirmation (its poll's time).
_HOLD_KEY = "gone_unconfirmed_since"


def _load_hold(conn: sqlite3.Connection, feed: str) -> str | None:
    row = conn.execute(
        "SELECT value FROM feed_state WHERE feed = ? AND key = ?", [feed, _HOLD_KEY]
    ).fetchone()
    return row[0] if row else None


def _store_state(
    conn: sqlite3.Connection,
    feed: str,
    state: Mapping[str, str],
    poll_id: int | None,
    updated_at: str,
) -> None:
    """Upsert ``state`` into ``feed_state`` (inside the caller's transaction)."""
    conn.executemany(
        "INSERT INTO feed_state (feed, key, value, poll_id, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(feed, key) DO UPDATE SET value = excluded.value, "
        "poll_id = excluded.poll_id, updated_at = excluded.updated_at",
        [(feed, key, value, poll_id, updated_at) for key, value in state.items()],
    )


#: The columns of :class:`StoredIncidents`: an incident's ID and its tracked fields (as
#: stored: ``extra`` as sorted JSON, so equal dicts compare equal).
STORED_COLUMNS: tuple[str, ...] = ("incident_id", *TRACKED_FIELDS)
# One getter a column, mapped over the incidents: about a third cheaper than one tuple an
# incident transposed by zip(*...) (callgrind).
_COLUMN_GETTERS = tuple(operator.attrgetter(name) for name in STORED_COLUMNS)
_RECEIVED_AT = STORED_COLUMNS.index("received_at")


@dataclass(slots=True)
class StoredIncidents:
    """A poll's incidents as the archive stores them, column by column: ``columns[k]`` holds
    the value of :data:`STORED_COLUMNS` ``[k]`` for every incident, in page order (``extra``
    as its stored JSON text, or None when empty; times already UTC text).

    :meth:`Archive.record_success` takes it in place of a list of :class:`Incident`: the
    same poll, without building, sending or re-reading an object per incident (a bulk job's
    child process makes it, see :mod:`.imports.ahead`; lists of plain values cross a pipe
    cheaply). :meth:`of` makes it from incidents, as ``record_success`` does with a list."""

    columns: list[Sequence[Any]]

    @classmethod
    def of(cls, incidents: Iterable[Incident]) -> StoredIncidents:
        """The incidents' stored columns (``extra`` encoded by :func:`.extrajson.extra_json`;
        raises what that raises)."""
        if not isinstance(incidents, list | tuple):  # read once a column
            incidents = list(incidents)
        columns: list[Sequence[Any]] = [list(map(get, incidents)) for get in _COLUMN_GETTERS]
        columns[-1] = [extra_json(extra) if extra else None for extra in columns[-1]]
        return cls(columns)

    def __len__(self) -> int:
        return len(self.columns[0])

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """One tuple per incident, in :data:`STORED_COLUMNS` order."""
        return zip(*self.columns, strict=True)

    def latest_received_at(self) -> str | None:
        """The latest ``received_at`` (UTC text), None when no incident has one."""
        return max(filter(None, self.columns[_RECEIVED_AT]), default=None)


class Archive:
    """A dispatchwatch archive in one SQLite file.

    Safe to share between threads: writes are serialized by a lock, and each poll is one
    transaction. Readers in other processes (Datasette) see only committed polls (WAL mode).

    >>> archive = Archive("dispatch.db")          # doctest: +SKIP
    >>> archive.record_success(feed, incidents, observed_at="2024-04-01T01:33:28Z")  # +SKIP
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        check_writable(self.path)  # never touch another application's file
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ArchiveError(f"cannot open the archive {self.path}: {exc}") from None
        try:
            # We manage transactions ourselves: isolation_level=None means autocommit
            # outside our explicit BEGIN ... COMMIT.
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL under WAL is durable across application crashes (kill -9) and keeps the
            # archive consistent across power loss; FULL would fsync on every poll.
            conn.execute("PRAGMA synchronous = NORMAL")
            # Under NORMAL only checkpoints fsync. A poll rewrites the same few pages
            # (the listed incidents), so checkpointing every ~16 MB of WAL rather than 4 MB
            # syncs and copies a quarter as often; durability is the same.
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
            # A checkpoint blocked by a long reader lets the WAL grow; once a checkpoint
            # resets it, truncate the file back to 32 MB instead of keeping its peak size.
            conn.execute("PRAGMA journal_size_limit = 33554432")
            conn.execute("PRAGMA foreign_keys = ON")
            # What sqlite_utils.Database() sets on a connection (see the db property).
            conn.execute("PRAGMA recursive_triggers = ON")
            self._conn = conn
            self._db: sqlite_utils.Database | None = None
            self._lock = threading.RLock()
            self._outer = False  # inside outer_transaction()
            # Called after each transaction inside it (see outer_transaction).
            self._write_behind: Callable[[], None] = _nothing
            # The checkpoint after the last outer transaction, still running (see there).
            self._checkpointer: threading.Thread | None = None
            with self._lock:
                migrate(Schema(conn))
                # What a bulk job killed midway left dropped (see bulkload.py).
                bulkload.repair(self)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ArchiveError(f"{self.path} is not a dispatchwatch archive ({exc})") from None
        except BaseException:
            conn.close()
            raise

    # -- plumbing

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    @property
    def db(self) -> sqlite_utils.Database:
        """The archive's connection as a :class:`sqlite_utils.Database` (made on first use:
        the archive's own code never needs it)."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self._conn)
        return self._db

    def close(self) -> None:
        with self._lock:
            self.wait_for_checkpoint()
            # Fold what the WAL holds back into the file, without waiting for readers (a
            # TRUNCATE checkpoint would wait out the busy timeout behind a Datasette reader
            # and delay a shutdown). The last connection to close checkpoints fully anyway.
            with suppress(sqlite3.OperationalError):
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.conn.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back entirely on any exception. Inside
        :meth:`outer_transaction` it is a ``SAVEPOINT`` of that one instead (still all or
        nothing; written when the outer one commits)."""
        with self._lock:
            if self._outer:
                with savepoint(self.conn) as conn:
                    yield conn
                self._write_behind()
            else:
                with write_transaction(self.conn) as conn:
                    yield conn

    @contextmanager
    def outer_transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction around many (a bulk job's polls, each still a
        :meth:`transaction`: a savepoint): readers see all of them at the commit or, on any
        exception (Ctrl-C included), none. Holds the write lock throughout: only for a job
        that no daemon writes beside (it holds the run lock, see :mod:`.bulkload`)."""
        with self._lock:
            self.wait_for_checkpoint()
            # Its COMMIT leaves the WAL (the whole job's pages) unchecked: copying them into the
            # file and the two fsyncs take a second per 200,000 rows, done by a thread on its
            # own connection beside what comes next (the rebuild of the deferred indexes, see
            # bulkload.py), while the read-ahead child's core is free.
            automatic = self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            self.conn.execute("PRAGMA wal_autocheckpoint = 0")
            # The WAL it grows goes to the disk poll by poll (see checkpoints.WriteBehind).
            behind = self._write_behind = checkpoints.WriteBehind(self._file())
            # A page the transaction wrote to the WAL (the cache full) and writes again is
            # overwritten there, and then its COMMIT rewrites the checksum of every frame from
            # that one on (reading the WAL, dirtying each page of it again for the checkpoint
            # to write). With the default 2 MB the hot pages of the tree are among those:
            # measured at 1,000,000 imported rows, a 64 MB cache takes the COMMIT from 0.66
            # to 0.42 s CPU and the WAL's sync after it from 1.13 to 0.44 s.
            cache = self.conn.execute("PRAGMA cache_size").fetchone()[0]
            self.conn.execute(f"PRAGMA cache_size = {-OUTER_CACHE_KIB}")
            try:
                with write_transaction(self.conn) as conn:
                    self._outer = True
                    try:
                        yield conn
                    finally:
                        self._outer = False
            finally:
                behind.close()
                self._write_behind = _nothing
                self.conn.execute(f"PRAGMA cache_size = {int(cache)}")
                self.conn.execute(f"PRAGMA wal_autocheckpoint = {int(automatic)}")
            self._checkpoint_behind()

    def _file(self) -> str:
        """The file this connection opened (absolute: the working folder may have changed);
        "" in memory."""
        return self.conn.execute("PRAGMA database_list").fetchone()[2] or ""

    def _checkpoint_behind(self) -> None:
        """Start a PASSIVE checkpoint of the WAL in a thread (see :meth:`outer_transaction`).
        It does not block this connection: a write beside it goes on (its commit's own
        automatic checkpoint is skipped while it runs; the next one catches up)."""
        file = self._file()
        if not file:  # in memory: no WAL
            return
        self._checkpointer = threading.Thread(
            target=checkpoints.checkpoint_once, args=(file,), name="dispatchwatch-checkpoint"
        )
        self._checkpointer.start()

    def wait_for_checkpoint(self) -> None:
        """Wait for the checkpoint an outer transaction left running in a thread, if any
        (before a fork: a child copies only the calling thread, see ``imports/ahead.py``)."""
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None

    # -- feeds

    def register_feed(self, feed: FeedRecord) -> None:
        """Insert or update the feed's descriptive row (keeps its ``added_at``)."""
        now = utc_now()
        row = {
            "slug": feed.slug,
            "name": feed.name,
            "agency": feed.agency,
            "city": feed.city,
            "state": feed.state,
            "scraper": feed.scraper,
            "url": feed.url,
            "homepage": feed.homepage,
            "timezone": feed.timezone,
            "snapshot": int(feed.snapshot),
            "interval_seconds": feed.interval_seconds,
            "precision": feed.precision,
            "license": feed.license,
            "source_notes": feed.source_notes,
            "updated_at": now,
        }
        with self.transaction() as conn:
            columns = ", ".join(row)
            updates = ", ".join(f"{k} = excluded.{k}" for k in row if k != "slug")
            conn.execute(
                f"INSERT INTO feeds ({columns}, added_at) VALUES "
                f"({', '.join('?' * len(row))}, ?) ON CONFLICT(slug) DO UPDATE SET {updates}",
                [*row.values(), now],
            )
            # The local-time views need the feed's zone in zone_offsets (once per zone).
            from .publish import ensure_zone_offsets  # lazy: publish imports this module

            ensure_zone_offsets(conn, [feed.timezone])

    # -- feed state (watermarks) and day logs

    def feed_state(self, feed: str) -> dict[str, str]:
        """The feed's stored state (``feed_state`` rows as ``{key: value}``)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT key, value FROM feed_state WHERE feed = ?", [feed]
            ).fetchall()
        return {key: value for key, value in rows}

    def set_feed_state(self, feed: str, state: Mapping[str, str]) -> None:
        """Store state outside a poll (e.g. a user resetting a watermark)."""
        with self.transaction() as conn:
            _store_state(conn, feed, state, None, utc_now())

    def complete_day(self, feed: str, day: str, poll_id: int | None = None) -> None:
        """Record that the day log ``day`` (local date, ``YYYY-MM-DD``) of ``feed`` has been
        archived completely (all its incidents closed, or its follow-up time ran out)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO day_logs (feed, day, completed_at, poll_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(feed, day) DO UPDATE SET completed_at = excluded.completed_at, "
                "poll_id = excluded.poll_id",
                [feed, day, utc_now(), poll_id],
            )

    def completed_days(self, feed: str) -> set[str]:
        """Local dates (``YYYY-MM-DD``) whose day log ``feed`` has archived completely."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT day FROM day_logs WHERE feed = ? AND completed_at IS NOT NULL", [feed]
            ).fetchall()
        return {row[0] for row in rows}

    # -- what the fetcher needs from the last polls

    def last_parsed(self, feed: str) -> dict[str, Any] | None:
        """The last poll of ``feed`` whose body was parsed successfully (or found unchanged):
        its ``sha256``, ``etag`` and ``last_modified`` drive conditional GETs and the
        unchanged-body check; ``observed_at`` is the time of the last poll that archived rows
        (``new`` or ``partial``), or None."""
        # One backwards walk of polls(feed, outcome, id) per outcome, each stopping at its
        # first match: an IN (...) with ORDER BY id sorts every poll of the feed, at every
        # poll (quadratic over a long history: import-git, years of a daemon). All of them
        # in one statement (ingest reads this before every page).
        with self._lock:
            row = self.conn.execute(_LAST_PARSED, [feed]).fetchone()
        if row is None:
            return None
        return dict(zip(("id", "sha256", "etag", "last_modified", "observed_at"), row, strict=True))

    def parsed_sha256s(self, feed: str) -> set[str]:
        """SHA-256 of every body of ``feed`` already archived (parsed whole or in part), so
        re-ingesting the same saved pages adds nothing."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT DISTINCT sha256 FROM polls WHERE feed = ? AND sha256 IS NOT NULL "
                "AND outcome IN ('new', 'partial', 'unchanged', 'not_modified')",
                [feed],
            ).fetchall()
        return {row[0] for row in rows}

    # -- recording polls

    def record_error(
        self,
        feed: str,
        *,
        error_kind: str,
        error: str,
        started_at: str | None = None,
        duration_ms: float | None = None,
        http_status: int | None = None,
        nbytes: int | None = None,
        sha256: str | None = None,
        source: str | None = None,
        kind: str | None = None,
        requests: int | None = None,
        scraper_version: str | None = None,
    ) -> PollSummary:
        """Record a failed poll. No incident row is touched."""
        with self.transaction() as conn:
            poll_id = _insert_poll(
                conn, feed=feed, started_at=started_at or utc_now(), duration_ms=duration_ms,
                outcome="error", http_status=http_status, bytes=nbytes, sha256=sha256,
                error_kind=error_kind, error=error, source=source, kind=kind, requests=requests,
                scraper_version=scraper_version,
            )  # fmt: skip
        return PollSummary(poll_id, feed, "error", error_kind=error_kind, error=error)

    def record_unchanged(
        self,
        feed: str,
        *,
        outcome: str = "unchanged",
        started_at: str | None = None,
        observed_at: str | None = None,
        duration_ms: float | None = None,
        http_status: int | None = None,
        nbytes: int | None = None,
        sha256: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        source: str | None = None,
        kind: str | None = None,
        requests: int | None = None,
    ) -> PollSummary:
        """Record a poll whose body is known to be unchanged (304, or same SHA-256, or the
        source's own "nothing changed since the watermark")."""
        assert outcome in ("unchanged", "not_modified")
        with self.transaction() as conn:
            poll_id = _insert_poll(
                conn, feed=feed, started_at=started_at or utc_now(), observed_at=observed_at,
                duration_ms=duration_ms, outcome=outcome, http_status=http_status, bytes=nbytes,
                sha256=sha256, etag=etag, last_modified=last_modified, source=source,
                kind=kind, requests=requests,
            )  # fmt: skip
        return PollSummary(poll_id, feed, outcome)

    def record_success(
        self,
        feed: str,
        incidents: Sequence[Incident] | StoredIncidents,
        *,
        observed_at: str,
        snapshot: bool = False,
        started_at: str | None = None,
        duration_ms: float | None = None,
        http_status: int | None = None,
        nbytes: int | None = None,
        sha256: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        source: str | None = None,
        complete: bool = True,
        reason: str | None = None,
        state: Mapping[str, str] | None = None,
        kind: str | None = None,
        requests: int | None = None,
        mass_gone_share: float | None = None,
        history_only: str | None = None,
        completed_days: Sequence[str] = (),
        scraper_version: str | None = None,
        pages: Sequence[Response] | None = None,
    ) -> PollSummary:
        """Archive one parsed poll (one page, or every page of a paged query) in one
        transaction.

        New incidents are inserted (version 1); an incident whose tracked fields differ from
        the stored ones gets a new version listing the changed columns; an unchanged one only
        has ``last_seen_at`` moved. For a ``snapshot`` feed, listed incidents missing from
        this poll are marked gone, and gone incidents that are listed again come back.

        ``incidents``: a list of :class:`Incident`, or the same as :class:`StoredIncidents`
        (their stored columns, made by a bulk job's child process: the same poll, cheaper).
        An ID listed twice counts once, where it first comes, with its last values.

        ``complete=False`` records the poll as ``partial`` (``error_kind`` ``incomplete``,
        ``error`` the ``reason``): its rows are kept, nothing is marked gone and ``state`` is
        not stored. Otherwise ``state`` (e.g. ``{"watermark": ...}``) is written to
        ``feed_state`` in the same transaction as the rows it covers.

        ``mass_gone_share``: when a snapshot poll would mark more than this share of the
        listed incidents (at least :data:`MASS_GONE_MIN` of them) gone at once, it is not
        believed yet: the poll is ``partial`` (``error_kind`` ``gone_unconfirmed``), nothing
        is marked gone, and the next whole poll that still lacks them confirms it.

        ``history_only`` (a reason) archives a page older than what the archive holds: only
        incidents the archive has never seen are added; known ones are left as they are, so
        versions stay in time order; nothing is marked gone. Recorded as ``partial``
        (``error_kind`` ``history``).

        Whatever the poll, an incident the archive last observed after ``observed_at`` (its
        ``last_seen_at`` or ``gone_at``) is left as it is: an import, a backfill or a stale
        page never makes older values current, never marks it gone, and its versions stay in
        ``observed_at`` order; only its ``first_seen_at`` moves back to ``observed_at`` when
        that is earlier (so do those of ``history_only``). An ``import`` (rows, not a list)
        never brings back an incident that left the list: a newer row updates its values (a
        version with ``gone_at`` NULL, as every version but a gone one: see versions.py) and
        the incident stays gone.

        ``pages`` (the responses parsed) go to the raw page store in the same transaction;
        ``scraper_version`` is the version of the scraper that parsed them.
        """
        if history_only is not None:
            complete, reason = False, history_only
        if not complete:
            snapshot = False
            state = None
        if not isinstance(incidents, StoredIncidents):
            incidents = StoredIncidents.of(incidents)
        ids = incidents.columns[0]
        unique = dict.fromkeys(ids)  # each ID once, where it first comes
        with self.transaction() as conn:
            known = self._load_state(conn, feed, unique.keys(), snapshot)
            # New and changed, in page order: all of them as they came when every incident
            # is new and listed once (a bulk import's batch: nothing to compare), else rows.
            staged: list[tuple[Any, ...]] | StoredIncidents = []
            changes: dict[str, tuple[Any, ...]] = {}  # the changed ones, as _POLL_STAGED
            touches: list[str] = []  # seen again, unchanged
            gone_marks: list[tuple[Any, ...]] = []
            gone_versions: list[tuple[int, int]] = []  # (incident rowid, version)
            earlier: list[tuple[Any, ...]] = []  # seen before its first_seen_at, maybe
            new = changed = gone = returned = still_listed = 0
            pending: dict[str, tuple[Any, ...]] = {}  # each ID's row, to compare
            if _all_new(known, unique, ids):
                new, staged = len(ids), incidents
            else:
                # An ID listed twice (the normalizer merges, but never trust a caller twice)
                # counts once, where it first comes, with its last row (as a dict keeps it).
                pending = dict(zip(ids, incidents.rows(), strict=True))
            for incident_id, row in pending.items():
                stored = known.pop(incident_id, None)
                if stored is None:
                    new += 1
                    staged.append(row)
                    continue
                old_values, gone_at, version, last_observed, _ = stored
                still_listed += gone_at is None
                if history_only is not None or time_before(observed_at, last_observed):
                    earlier.append((observed_at, feed, incident_id, observed_at))
                    continue  # never rewrite what a later poll already said
                values = row[1:]
                diff = (
                    [
                        name
                        for name, old, fresh in zip(TRACKED_FIELDS, old_values, values, strict=True)
                        if old != fresh
                    ]
                    if old_values != values  # (most are unchanged: one comparison in C)
                    else []
                )
                changed += bool(diff)
                # Listed again after it had left the list; an import's row is no listing.
                still_gone = gone_at if kind == "import" else None
                if gone_at is not None and still_gone is None:
                    returned += 1
                    diff.append("gone_at")
                if diff:
                    version += 1
                    staged.append(row)
                    changes[incident_id] = (
                        incident_id, *values, still_gone, version, json.dumps(diff),
                    )  # fmt: skip
                else:
                    touches.append(incident_id)
            error_kind = None if complete else ("history" if history_only else "incomplete")
            if snapshot:
                # Seen by a later poll: this page cannot say it left (an older page).
                known = {k: v for k, v in known.items() if not time_before(observed_at, v[3])}
                missing = sum(v[1] is None for v in known.values())
                listed = missing + still_listed  # what the list held before this poll
                held = _load_hold(conn, feed)
                if (
                    mass_gone_share is not None
                    and held is None
                    and missing >= MASS_GONE_MIN
                    and missing > mass_gone_share * listed
                ):
                    # Most of the list vanished at once: believe it only when the next
                    # poll agrees (a server glitch serves an empty but valid page).
                    snapshot = False
                    complete, state, error_kind = False, None, "gone_unconfirmed"
                    reason = (
                        f"{missing} of {listed} listed calls vanished at once; they are "
                        "marked gone only if the next poll confirms it"
                    )
                    _store_state(conn, feed, {_HOLD_KEY: observed_at}, None, observed_at)
                elif held is not None:
                    conn.execute(
                        "DELETE FROM feed_state WHERE feed = ? AND key = ?", [feed, _HOLD_KEY]
                    )
            if snapshot:
                # What is left in ``known`` was listed before and is not on this page.
                for incident_id, (_, gone_at, version, _, rowid) in known.items():
                    if gone_at is not None:
                        continue
                    gone += 1
                    version += 1
                    gone_marks.append((observed_at, version, feed, incident_id))
                    # Its fields are the previous version's: none stored (versions.py).
                    gone_versions.append((rowid, version))
            outcome = "new" if complete else "partial"
            poll_id = _insert_poll(
                conn, feed=feed, started_at=started_at or observed_at, observed_at=observed_at,
                duration_ms=duration_ms, outcome=outcome, http_status=http_status, bytes=nbytes,
                sha256=sha256, etag=etag, last_modified=last_modified, incidents=len(unique),
                new=new, changed=changed, gone=gone, returned=returned, source=source,
                kind=kind, requests=requests, scraper_version=scraper_version,
                error_kind=error_kind,
                error=None if complete else (reason or "the list may be incomplete"),
            )  # fmt: skip
            if pages:
                store_pages(conn, feed, poll_id, pages, utc_now())
            if state:
                _store_state(conn, feed, state, poll_id, observed_at)
            if complete and completed_days:
                conn.executemany(
                    "INSERT INTO day_logs (feed, day, completed_at, poll_id) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(feed, day) DO UPDATE SET completed_at = excluded.completed_at, "
                    "poll_id = excluded.poll_id",
                    [(feed, day, observed_at, poll_id) for day in completed_days],
                )
            last_rowid = 0
            if staged:
                _stage(conn, staged, changes)
                if new:
                    if not changes:
                        last_rowid = conn.execute(_LAST_ROWID).fetchone()[0] or 0
                    conn.execute(_INSERT_NEW_FROM_STAGE, [feed, observed_at, observed_at])
            if changes:  # changed, returned, updated while gone (an import)
                # The values they had, for their versions that stored none (versions.py).
                conn.execute(versions.STORE_SUPERSEDED, [feed])
                conn.execute(_UPDATE_FROM_STAGE, [observed_at, feed])
            for start in range(0, len(touches), _IN_CHUNK):
                chunk = touches[start : start + _IN_CHUNK]
                conn.execute(
                    _TOUCH_INCIDENTS + f"({', '.join('?' * len(chunk))})",
                    [observed_at, feed, *chunk],
                )
            if gone_marks:
                conn.executemany(_MARK_GONE, gone_marks)
            if earlier:
                conn.executemany(_SEEN_EARLIER, earlier)
            if staged:  # versions of new and changed incidents, in page order
                if changes:
                    conn.execute(_INSERT_VERSIONS_FROM_STAGE, [poll_id, feed])
                else:
                    _insert_new_versions(conn, feed, poll_id, last_rowid, new)
                conn.execute("DELETE FROM temp.dw_poll_rows")
            if gone_versions:  # then those that left the list
                conn.executemany(
                    _INSERT_GONE_VERSION,
                    ((rowid, version, poll_id) for rowid, version in gone_versions),
                )
        return PollSummary(
            poll_id,
            feed,
            outcome,
            len(unique),
            new,
            changed,
            gone,
            returned,
            error_kind=error_kind,
            error=None if complete else (reason or "the list may be incomplete"),
        )

    def _load_state(
        self,
        conn: sqlite3.Connection,
        feed: str,
        incident_ids: Iterable[str],
        snapshot: bool,
    ) -> dict[str, tuple[tuple[Any, ...], str | None, int, str, int]]:
        """Stored state of the page's incidents, plus (snapshot feeds) every listed one:
        ``(values, gone_at, version, last observed: max(last_seen_at, gone_at), rowid)``."""
        state: dict[str, tuple[tuple[Any, ...], str | None, int, str, int]] = {}
        width = len(TRACKED_FIELDS)

        def take(rows: Iterable[Sequence[Any]]) -> None:
            state.update({
                row[0]: (
                    row[1 : width + 1], row[width + 1], row[width + 2], row[width + 3],
                    row[width + 4],
                )
                for row in rows
            })  # fmt: skip

        if snapshot:
            # Every listed incident, in one indexed read; most of the page is among them.
            take(conn.execute(_SELECT_STATE + "gone_at IS NULL", [feed]))
        ids = [incident_id for incident_id in incident_ids if incident_id not in state]
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            take(
                conn.execute(
                    _SELECT_STATE + f"incident_id IN ({', '.join('?' * len(chunk))})",
                    [feed, *chunk],
                )
            )
        return state

    # -- reading

    def stats(self) -> list[dict[str, Any]]:
        """Per feed: incidents, versions, first/last received, last poll and its outcome."""
        with self._lock:
            return _stats(self.conn)


_STATS_SQL = """
SELECT f.slug AS feed,
  (SELECT count(*) FROM incidents i WHERE i.feed = f.slug) AS incidents,
  (SELECT count(*) FROM incident_versions v WHERE v.feed = f.slug) AS versions,
  (SELECT min(received_at) FROM incidents i WHERE i.feed = f.slug) AS first_received,
  (SELECT max(received_at) FROM incidents i WHERE i.feed = f.slug) AS last_received,
  (SELECT count(*) FROM polls p WHERE p.feed = f.slug) AS polls,
  (SELECT max(started_at) FROM polls p WHERE p.feed = f.slug) AS last_poll,
  (SELECT outcome FROM polls p WHERE p.feed = f.slug ORDER BY id DESC LIMIT 1) AS last_outcome
FROM feeds f ORDER BY f.slug
"""


def _stats(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    cursor = conn.execute(_STATS_SQL)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def read_stats(path: str | Path) -> list[dict[str, Any]]:
    """:meth:`Archive.stats` through a read-only connection: never creates, migrates or
    writes the file, so it is safe on any file, beside a running daemon and for a user who
    may only read it (see :func:`database.connect_read_only`)."""
    path = Path(path)
    conn = connect_read_only(path)
    try:
        return _stats(conn)
    except sqlite3.DatabaseError as exc:
        raise ArchiveError(f"{path} is not a dispatchwatch archive ({exc})") from None
    finally:
        conn.close()
