"""The tables of history imports (schema migration 5).

- ``imports``: one row per file imported completely (its SHA-256, so importing the same file
  again is skipped at once), with what it did.
- ``call_counts``: releases that hold counts of calls, not calls (Chicago's 2008-2012 FOIA
  release: calls by police district x event type, some by day of week).
- ``calls_by_type_month`` (view): counts and the per-call archive side by side, by feed,
  call type and period (a calendar month of local time for archived incidents; the release's
  own period for counts).
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ["TABLE_DOCS", "create_tables", "metadata_tables"]

_STATEMENTS = [
    """CREATE TABLE imports (
  id INTEGER PRIMARY KEY,
  feed TEXT NOT NULL REFERENCES feeds(slug),
  kind TEXT NOT NULL,
  file TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  bytes INTEGER,
  mapping TEXT,
  mapping_sha256 TEXT,
  rows INTEGER,
  imported INTEGER,
  skipped INTEGER,
  new INTEGER,
  changed INTEGER,
  first_poll_id INTEGER,
  last_poll_id INTEGER,
  started_at TEXT,
  completed_at TEXT
)""",
    "CREATE INDEX idx_imports_feed_sha256 ON imports (feed, sha256)",
    """CREATE TABLE call_counts (
  id INTEGER PRIMARY KEY,
  feed TEXT NOT NULL REFERENCES feeds(slug),
  period_start TEXT NOT NULL,
  period_end TEXT NOT NULL,
  district TEXT,
  call_type TEXT,
  day_of_week TEXT,
  count INTEGER NOT NULL,
  source_file TEXT,
  import_id INTEGER REFERENCES imports(id)
)""",
    # One count per (feed, period, district, type, day): a corrected release replaces it.
    """CREATE UNIQUE INDEX idx_call_counts_key ON call_counts (
  feed, period_start, period_end, coalesce(district, ''), coalesce(call_type, ''),
  coalesce(day_of_week, '')
)""",
    "CREATE INDEX idx_call_counts_call_type ON call_counts (call_type)",
    # Months between two local dates, both months included.
    """CREATE VIEW calls_by_type_month AS
WITH archived AS (
  SELECT i.feed, i.call_type,
    (SELECT strftime('%Y-%m', i.received_at, z.utc_offset || ' seconds')
       FROM zone_offsets z
      WHERE z.zone = f.timezone AND z.starts_at <= i.received_at
      ORDER BY z.starts_at DESC LIMIT 1) AS month
  FROM incidents i JOIN feeds f ON f.slug = i.feed
  WHERE i.received_at IS NOT NULL
),
counted AS (
  SELECT feed, period_start, period_end, call_type,
    sum(CASE WHEN day_of_week IS NULL THEN count END) AS by_district,
    sum(CASE WHEN day_of_week IS NOT NULL THEN count END) AS by_day
  FROM call_counts GROUP BY feed, period_start, period_end, call_type
)
SELECT 'archive' AS source, a.feed, f.city, a.month || '-01' AS period_start,
  date(a.month || '-01', '+1 month', '-1 day') AS period_end, 1 AS months, a.call_type,
  count(*) AS calls, count(*) * 1.0 AS calls_per_month
FROM archived a JOIN feeds f ON f.slug = a.feed
WHERE a.month IS NOT NULL
GROUP BY a.feed, a.month, a.call_type
UNION ALL
SELECT 'counts' AS source, c.feed, f.city, c.period_start, c.period_end,
  (CAST(strftime('%Y', c.period_end) AS INTEGER) - CAST(strftime('%Y', c.period_start) AS INTEGER))
    * 12 + CAST(strftime('%m', c.period_end) AS INTEGER)
    - CAST(strftime('%m', c.period_start) AS INTEGER) + 1 AS months,
  c.call_type, coalesce(c.by_district, c.by_day) AS calls,
  round(coalesce(c.by_district, c.by_day) * 1.0 / (
    (CAST(strftime('%Y', c.period_end) AS INTEGER)
      - CAST(strftime('%Y', c.period_start) AS INTEGER)) * 12
    + CAST(strftime('%m', c.period_end) AS INTEGER)
    - CAST(strftime('%m', c.period_start) AS INTEGER) + 1), 1) AS calls_per_month
FROM counted c JOIN feeds f ON f.slug = c.feed""",
]


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the import tables and view (inside the migration's transaction)."""
    for statement in _STATEMENTS:  # not executescript: it would commit the migration
        conn.execute(statement)


#: Datasette metadata for the tables and view above (merged into the archive's metadata).
TABLE_DOCS: dict[str, dict[str, Any]] = {
    "call_counts": {
        "title": "Call counts",
        "description": "Releases that hold counts of calls instead of the calls themselves "
        "(e.g. Chicago's 2008-2012 FOIA release: calls by police district and event type, "
        "some by day of week), imported with `dispatchwatch import` and a counts mapping.",
        "facets": ["feed", "period_start", "district", "day_of_week"],
        "sort_desc": "count",
        "columns": {
            "feed": "Feed slug (see the feeds table)",
            "period_start": "First day the count covers (local date, inclusive)",
            "period_end": "Last day the count covers (local date, inclusive)",
            "district": "The source's district, when the count is per district",
            "call_type": "The source's call or event type",
            "day_of_week": "Day of the week (Monday ... Sunday), when the count is per day",
            "count": "Number of calls",
            "source_file": "The file the count was imported from",
            "import_id": "The import (see the imports table)",
        },
    },
    "imports": {
        "title": "Imports",
        "description": "One row per file imported completely with `dispatchwatch import`; "
        "a file with the same SHA-256 (and mapping) is not imported again.",
        "columns": {
            "feed": "Feed slug",
            "kind": "calls (per-call rows, archived as polls of kind 'import') or counts",
            "file": "The file as named on the command line",
            "sha256": "SHA-256 of the file",
            "bytes": "Size of the file",
            "mapping": "The mapping used (a shipped name or a path)",
            "mapping_sha256": "SHA-256 of the mapping (and of any --set values)",
            "rows": "Data rows read",
            "imported": "Rows archived",
            "skipped": "Rows that could not be read and were skipped (--on-error skip)",
            "new": "Incidents new to the archive",
            "changed": "Incidents that got a new version",
            "first_poll_id": "The first poll of this import",
            "last_poll_id": "The last poll of this import",
            "started_at": "When the import started, UTC",
            "completed_at": "When it completed, UTC",
        },
    },
    "calls_by_type_month": {
        "title": "Calls by type and month",
        "description": "Counts releases beside the per-call archive: archived incidents "
        "counted per feed, call type and calendar month (local time), and count releases "
        "per feed, call type and their own period (a year, say: see months and "
        "calls_per_month). For counts, per-district rows are used when a release has them, "
        "else the per-day-of-week rows, never both.",
        "facets": ["source", "feed", "city"],
        "columns": {
            "source": "archive (counted from incidents) or counts (from call_counts)",
            "feed": "Feed slug",
            "city": "The feed's city",
            "period_start": "First day of the period (local date)",
            "period_end": "Last day of the period (local date)",
            "months": "Calendar months the period spans",
            "call_type": "The source's call type",
            "calls": "Calls in the period",
            "calls_per_month": "calls / months",
        },
    },
}


def metadata_tables() -> dict[str, dict[str, Any]]:
    """Datasette metadata for the import tables, by table (called by the metadata builder)."""
    return {table: dict(docs) for table, docs in TABLE_DOCS.items()}
