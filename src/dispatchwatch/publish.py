"""Publishing an archive with Datasette: views, metadata, snapshots and ``serve``.

- :func:`install_views` creates the ``zone_offsets`` lookup table and the views
  ``incidents_local`` and ``incident_timeline`` (run by schema migration 2).
- :func:`build_metadata` writes Datasette metadata (titles, descriptions, facets, canned
  queries) from the archive's ``feeds`` table.
- :func:`snapshot` copies a live archive with SQLite's online backup API, optionally limited
  to some feeds and a date range, ready for ``datasette publish``.
- :func:`datasette_command` builds the ``datasette serve`` command line for ``dispatchwatch
  serve``.

Local times use a plain lookup table rather than a SQL function: a view that calls a
function registered by a plugin breaks every reader without that plugin (the sqlite3 shell,
sqlite-utils, a published snapshot), while ``zone_offsets`` holds each zone's UTC offsets
between transitions, computed with :mod:`zoneinfo`, so the views are plain SQL that any
SQLite reads, DST included.
"""

from __future__ import annotations

import html
import json
import os
import sqlite3
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .incident import TRACKED_FIELDS
from .status import STALE_INTERVALS, STALE_MINIMUM

__all__ = [
    "CANNED_QUERIES",
    "SnapshotResult",
    "build_metadata",
    "datasette_command",
    "dump_metadata",
    "ensure_zone_offsets",
    "install_views",
    "parse_bound",
    "prepare_live_archive",
    "run_datasette",
    "snapshot",
    "zone_transitions",
]

# --- zone offsets ----------------------------------------------------------------------------

#: The span over which transitions are computed; times before it use the offset in force at
#: its start (the first row starts at year 0), times after it the last offset.
ZONE_YEARS = (1970, 2100)
_BEGINNING = "0000-01-01T00:00:00Z"
_END = "9999-12-31T23:59:59Z"


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def zone_transitions(
    zone: str, years: tuple[int, int] = ZONE_YEARS
) -> list[tuple[str, int, str, int]]:
    """``(starts_at, utc_offset_seconds, abbreviation, is_dst)`` rows for an IANA zone.

    zoneinfo does not expose its transition table, so sample every week and bisect every
    change down to the second: about 25 ms a zone, done once per zone in an archive. (No
    zone since 1970 has had two transitions less than a week apart that cancel out.)
    """
    tz = ZoneInfo(zone)

    def state(ts: int) -> tuple[int, str, int]:
        local = datetime.fromtimestamp(ts, tz)
        offset = local.utcoffset() or timedelta(0)
        return int(offset.total_seconds()), local.tzname() or "", int(bool(local.dst()))

    start = int(datetime(years[0], 1, 1, tzinfo=UTC).timestamp())
    stop = int(datetime(years[1], 1, 1, tzinfo=UTC).timestamp())
    current = state(start)
    rows = [(_BEGINNING, *current)]
    step = 7 * 86_400
    ts = start
    while ts < stop:
        following = state(ts + step)
        if following != current:
            low, high = ts, ts + step
            while high - low > 1:
                middle = (low + high) // 2
                if state(middle) == current:
                    low = middle
                else:
                    high = middle
            rows.append((_iso(high), *following))
            current = following
        ts += step
    return rows


def _known_zone(zone: str | None) -> bool:
    try:
        ZoneInfo(zone or "")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


_CREATE_ZONE_OFFSETS = """
CREATE TABLE IF NOT EXISTS zone_offsets (
    zone TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    utc_offset INTEGER NOT NULL,
    offset_text TEXT NOT NULL,
    abbreviation TEXT,
    is_dst INTEGER NOT NULL,
    PRIMARY KEY (zone, starts_at)
) WITHOUT ROWID
"""


def ensure_zone_offsets(
    conn: sqlite3.Connection, zones: Iterable[str] | None = None, *, refresh: bool = False
) -> list[str]:
    """Fill ``zone_offsets`` for ``zones`` (default: every feed's timezone) not yet there.

    With ``refresh``, recompute them from the installed tz database. Unknown zone names are
    skipped (their local times stay NULL). Returns the zones written. The caller owns the
    transaction.
    """
    conn.execute(_CREATE_ZONE_OFFSETS)
    if zones is None:
        zones = [row[0] for row in conn.execute("SELECT DISTINCT timezone FROM feeds")]
    present = {row[0] for row in conn.execute("SELECT DISTINCT zone FROM zone_offsets")}
    written = []
    for zone in sorted({z for z in zones if z}):
        if zone in present and not refresh:
            continue
        try:
            rows = zone_transitions(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
        conn.execute("DELETE FROM zone_offsets WHERE zone = ?", [zone])
        ends = [starts for starts, *_ in rows[1:]] + [_END]
        conn.executemany(
            "INSERT INTO zone_offsets VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (zone, starts, end, offset, _offset_text(offset), abbreviation, dst)
                for (starts, offset, abbreviation, dst), end in zip(rows, ends, strict=True)
            ],
        )
        written.append(zone)
    return written


# --- views -----------------------------------------------------------------------------------


def _local(utc: str, zone: str) -> str:
    """SQL for the local time of the UTC text ``utc`` in ``zone``, ISO 8601 with its offset
    (``2024-03-31T18:30:18-07:00``), so it stays unambiguous in the repeated DST hour."""
    return (
        f"(SELECT strftime('%Y-%m-%dT%H:%M:%S', {utc}, z.utc_offset || ' seconds')"
        f" || z.offset_text FROM zone_offsets z"
        f" WHERE z.zone = {zone} AND z.starts_at <= {utc}"
        f" ORDER BY z.starts_at DESC LIMIT 1)"
    )


INCIDENTS_LOCAL_SQL = f"""
SELECT
    i.feed,
    i.incident_id,
    i.received_at,
    {_local("i.received_at", "f.timezone")} AS received_local,
    f.timezone,
    i.call_type,
    i.priority,
    i.status,
    i.disposition,
    i.address,
    i.city,
    i.district,
    i.beat,
    i.units,
    i.latitude,
    i.longitude,
    i.extra,
    i.first_seen_at,
    {_local("i.first_seen_at", "f.timezone")} AS first_seen_local,
    i.last_seen_at,
    {_local("i.last_seen_at", "f.timezone")} AS last_seen_local,
    i.gone_at,
    {_local("i.gone_at", "f.timezone")} AS gone_local,
    i.version
FROM incidents i
JOIN feeds f ON f.slug = i.feed
"""

# The fields spelled out in a timeline row's ``changes`` ("status: Dispatched → Closed").
_SHOWN_CHANGES = [name for name in TRACKED_FIELDS if name != "extra"]


def _change(name: str) -> str:
    return (
        f"CASE WHEN v.{name} IS NOT p.{name} THEN '{name}: ' || coalesce(p.{name}, '∅')"
        f" || ' → ' || coalesce(v.{name}, '∅') || '; ' ELSE '' END"
    )


_CHANGES = (
    "CASE WHEN p.version IS NULL THEN '' ELSE "
    + "\n        || ".join(_change(name) for name in _SHOWN_CHANGES)
    + "\n        || CASE WHEN v.extra IS NOT p.extra THEN 'extra; ' ELSE '' END END"
)

INCIDENT_TIMELINE_SQL = f"""
SELECT
    id, feed, incident_id, version, event, observed_at, observed_local, poll_id,
    CASE WHEN changes_text = '' THEN NULL
         ELSE substr(changes_text, 1, length(changes_text) - 2) END AS changes,
    changed_columns, received_at, call_type, priority, status, disposition, address, city,
    district, beat, units, latitude, longitude, gone_at, source
FROM (
    SELECT
        v.id,
        v.feed,
        v.incident_id,
        v.version,
        CASE
            WHEN p.version IS NULL THEN 'new'
            WHEN v.gone_at IS NOT NULL THEN 'gone'
            WHEN p.gone_at IS NOT NULL THEN 'back'
            ELSE 'changed'
        END AS event,
        v.observed_at,
        {_local("v.observed_at", "f.timezone")} AS observed_local,
        v.poll_id,
        {_CHANGES} AS changes_text,
        v.changed AS changed_columns,
        v.received_at, v.call_type, v.priority, v.status, v.disposition, v.address, v.city,
        v.district, v.beat, v.units, v.latitude, v.longitude, v.gone_at,
        polls.source
    FROM incident_versions v
    JOIN feeds f ON f.slug = v.feed
    -- Versions of an incident are numbered 1, 2, 3...: the unique index finds the previous.
    LEFT JOIN incident_versions p
        ON p.feed = v.feed AND p.incident_id = v.incident_id AND p.version = v.version - 1
    LEFT JOIN polls ON polls.id = v.poll_id
)
"""

VIEWS = {"incidents_local": INCIDENTS_LOCAL_SQL, "incident_timeline": INCIDENT_TIMELINE_SQL}


def install_views(conn: sqlite3.Connection) -> None:
    """Create ``zone_offsets`` (filled for the registered feeds) and (re)create the views.

    Views hold no data, so a later migration that changes them just calls this again. The
    caller owns the transaction (migrations run in one).
    """
    ensure_zone_offsets(conn)
    for name, sql in VIEWS.items():
        conn.execute(f"DROP VIEW IF EXISTS {name}")
        conn.execute(f"CREATE VIEW {name} AS {sql.strip()}")


# --- canned queries --------------------------------------------------------------------------

#: "Now" as stored times spell it (UTC, ``Z``), so comparisons stay plain text comparisons
#: that use the indexes. Everything "recent" is relative to the clock, not to the newest data.
_NOW = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now'{})"


def _since(modifier: str) -> str:
    return _NOW.format(f", '{modifier}'")


CANNED_QUERIES: dict[str, dict[str, Any]] = {
    "last_24_hours": {
        "title": "Calls in the last 24 hours",
        "description": "Every call received in the last 24 hours, newest first, with its "
        "local time. Leave feed empty for all feeds.",
        "params": ["feed"],
        "sql": f"""
SELECT feed, incident_id, received_at, received_local, call_type, priority, status,
       address, district, units, latitude, longitude
FROM incidents_local
WHERE received_at >= {_since("-24 hours")}
  AND (:feed = '' OR feed = :feed)
ORDER BY received_at DESC
""",
    },
    "calls_per_hour": {
        "title": "Calls per hour",
        "description": "Calls per hour of one day in the feed's local time (day as "
        "YYYY-MM-DD; empty means today). Leave feed empty for all feeds, each counted in "
        "its own local time.",
        "params": ["day", "feed"],
        "sql": f"""
WITH RECURSIVE
hours(h) AS (SELECT 0 UNION ALL SELECT h + 1 FROM hours WHERE h < 23),
chosen(day) AS (
  SELECT coalesce(nullif(:day, ''), (
    SELECT strftime('%Y-%m-%d', 'now', z.utc_offset || ' seconds')
    FROM feeds f JOIN zone_offsets z ON z.zone = f.timezone
    WHERE f.slug = :feed AND z.starts_at <= {_NOW.format("")}
    ORDER BY z.starts_at DESC LIMIT 1
  ), date('now'))
),
calls(h, n) AS (
  SELECT CAST(substr(received_local, 12, 2) AS INTEGER), count(*)
  FROM incidents_local, chosen
  -- a local day lies within a day either side of the UTC day: narrow by index first
  WHERE received_at >= strftime('%Y-%m-%dT%H:%M:%SZ', chosen.day, '-1 day')
    AND received_at < strftime('%Y-%m-%dT%H:%M:%SZ', chosen.day, '+2 days')
    AND substr(received_local, 1, 10) = chosen.day
    AND (:feed = '' OR feed = :feed)
  GROUP BY 1
)
SELECT chosen.day AS day, printf('%02d:00', hours.h) AS hour, coalesce(calls.n, 0) AS calls
FROM hours CROSS JOIN chosen LEFT JOIN calls ON calls.h = hours.h
ORDER BY hours.h
""",
    },
    "busiest_blocks": {
        "title": "Busiest blocks this week",
        "description": "Block-level addresses with the most calls in the last 7 days, with "
        "their most common call type. Leave feed empty for all feeds.",
        "params": ["feed"],
        "sql": f"""
SELECT i.feed, i.address, count(*) AS calls,
  (SELECT j.call_type FROM incidents j
   WHERE j.feed = i.feed AND j.address = i.address
     AND j.received_at >= {_since("-7 days")}
   GROUP BY j.call_type ORDER BY count(*) DESC, j.call_type LIMIT 1) AS top_call_type,
  count(DISTINCT i.call_type) AS call_types,
  min(i.received_at) AS first_call,
  max(i.received_at) AS last_call,
  round(avg(i.latitude), 4) AS latitude,
  round(avg(i.longitude), 4) AS longitude
FROM incidents i
WHERE i.received_at >= {_since("-7 days")}
  AND coalesce(i.address, '') != ''
  AND (:feed = '' OR i.feed = :feed)
GROUP BY i.feed, i.address
ORDER BY calls DESC, i.feed, i.address
LIMIT 100
""",
    },
    "incident_history": {
        "title": "An incident's full history",
        "description": "Every version of one incident, oldest first: what changed, when, "
        "and which poll saw it.",
        "params": ["feed", "incident_id"],
        "sql": """
SELECT version, event, observed_at, observed_local, changes, status, call_type, priority,
       disposition, address, units, gone_at, poll_id, source
FROM incident_timeline
WHERE feed = :feed AND incident_id = :incident_id
ORDER BY version
""",
    },
    "feed_health": {
        "title": "Feed health",
        "description": "Per feed: the last successful poll, the last error, failures in a "
        "row since the last success, and polls in the last 24 hours. 'stale' means no "
        "success for three poll intervals (at least 15 minutes), as `dispatchwatch status`.",
        "sql": f"""
SELECT feed, name,
  CASE
    WHEN consecutive_failures > 0 THEN 'failing'
    WHEN last_success IS NULL
      OR last_success < strftime('%Y-%m-%dT%H:%M:%SZ', 'now',
                                 '-' || max({STALE_INTERVALS} * interval_seconds,
                                            {STALE_MINIMUM:g}) || ' seconds')
      THEN 'stale'
    ELSE 'ok'
  END AS health,
  last_success, last_error, last_error_message, consecutive_failures, polls_24h, errors_24h
FROM (
  SELECT f.slug AS feed, f.name, coalesce(f.interval_seconds, 60) AS interval_seconds,
    (SELECT max(p.started_at) FROM polls p
     WHERE p.feed = f.slug AND p.outcome IN ('new', 'unchanged', 'not_modified'))
      AS last_success,
    (SELECT max(p.started_at) FROM polls p
     WHERE p.feed = f.slug AND p.outcome = 'error') AS last_error,
    (SELECT coalesce(p.error_kind || ': ', '') || coalesce(p.error, '') FROM polls p
     WHERE p.feed = f.slug AND p.outcome = 'error' ORDER BY p.id DESC LIMIT 1)
      AS last_error_message,
    (SELECT count(*) FROM polls p
     WHERE p.feed = f.slug AND p.outcome = 'error'
       AND p.id > coalesce((SELECT max(q.id) FROM polls q WHERE q.feed = f.slug
                            AND q.outcome IN ('new', 'unchanged', 'not_modified')), 0))
      AS consecutive_failures,
    (SELECT count(*) FROM polls p
     WHERE p.feed = f.slug AND p.started_at >= {_since("-24 hours")}) AS polls_24h,
    (SELECT count(*) FROM polls p
     WHERE p.feed = f.slug AND p.outcome = 'error'
       AND p.started_at >= {_since("-24 hours")}) AS errors_24h
  FROM feeds f
)
ORDER BY feed
""",
    },
}

# --- metadata --------------------------------------------------------------------------------

_INCIDENT_FIELD_DOCS = {
    "feed": "Feed slug (see the feeds table), e.g. seattle-fire",
    "incident_id": "The source's own incident ID",
    "received_at": "When the call was received, UTC (ISO 8601, Z)",
    "call_type": "The source's call type or nature",
    "priority": "The source's priority or level",
    "status": "The source's status (active/closed, Service in Progress, ...)",
    "disposition": "Final disposition, where the source has one",
    "address": "Block-level location (15XX SUMMIT AVE); never an exact address",
    "city": "City or jurisdiction split off the address",
    "district": "The source's district",
    "beat": "The source's beat or response area",
    "units": "Units dispatched, space-separated, in first-seen order",
    "latitude": "Latitude, rounded to about 100 m unless the feed is exact",
    "longitude": "Longitude, rounded to about 100 m unless the feed is exact",
    "extra": "The source's other fields, as a JSON object",
}
_LOCAL_DOC = "{} in the feed's local time, ISO 8601 with the UTC offset"

TABLE_DOCS: dict[str, dict[str, Any]] = {
    "incidents": {
        "title": "Incidents",
        "description": "The current state of every incident: one row per call, updated as "
        "the source changes it. Times are UTC; see incidents_local for local times.",
        "columns": {
            **_INCIDENT_FIELD_DOCS,
            "first_seen_at": "When dispatchwatch first saw the incident, UTC",
            "last_seen_at": "When dispatchwatch last saw it listed, UTC",
            "gone_at": "When it left a snapshot feed's list of active calls, UTC",
            "version": "Number of versions in incident_versions",
        },
    },
    "incident_versions": {
        "title": "Incident versions",
        "description": "Append-only history: a full copy of an incident each time it is "
        "first seen, changes, leaves the active list or comes back.",
        "columns": {
            "id": "Row ID",
            **{k: v for k, v in _INCIDENT_FIELD_DOCS.items()},
            "version": "1 for the first sighting, then 2, 3, ...",
            "poll_id": "The poll that saw this version",
            "observed_at": "When the source showed this version, UTC",
            "changed": 'JSON list of the columns that changed (["new"] for version 1)',
            "gone_at": "Set when this version records the incident leaving the list",
        },
    },
    "polls": {
        "title": "Polls",
        "description": "One row per poll of a feed, successful or not.",
        "columns": {
            "id": "Poll ID",
            "feed": "Feed slug",
            "started_at": "When the poll started, UTC",
            "observed_at": "The page's own 'as of' time, else the fetch time, UTC",
            "duration_ms": "How long the poll took",
            "outcome": "new (parsed and archived), unchanged (same body), not_modified "
            "(HTTP 304) or error",
            "http_status": "HTTP status of the response",
            "bytes": "Size of the response body",
            "sha256": "SHA-256 of the response body",
            "etag": "The response's ETag",
            "last_modified": "The response's Last-Modified",
            "incidents": "Incidents on the page",
            "new": "Incidents seen for the first time",
            "changed": "Incidents whose fields changed",
            "gone": "Incidents that left the active list",
            "returned": "Incidents that came back to the list",
            "error_kind": "The kind of failure (network, http, layout, ...)",
            "error": "The error message",
            "source": "Where the page came from (URL or file)",
        },
    },
    "feeds": {
        "title": "Feeds",
        "description": "The dispatch feeds in this archive, with their sources and licenses.",
        "columns": {
            "slug": "Short name used in every other table",
            "name": "Human name of the feed",
            "agency": "The agency that publishes it",
            "city": "City",
            "state": "State or region",
            "scraper": "The dispatchwatch scraper that reads it",
            "url": "The page dispatchwatch polls",
            "homepage": "The agency's page about the feed",
            "timezone": "IANA time zone of the source's times",
            "snapshot": "1 if the feed lists only active calls (so calls leave it)",
            "interval_seconds": "Seconds between polls",
            "precision": "block (rounded locations) or exact",
            "license": "License or terms of the source data",
            "source_notes": "Notes about the source",
            "added_at": "When the feed was added to the archive, UTC",
            "updated_at": "When its description was last updated, UTC",
        },
    },
    "incidents_local": {
        "title": "Incidents in local time",
        "description": "The incidents table with every time also in the feed's own time "
        "zone (DST-aware), beside the UTC original.",
        "columns": {
            **_INCIDENT_FIELD_DOCS,
            "received_local": _LOCAL_DOC.format("received_at"),
            "timezone": "The feed's IANA time zone",
            "first_seen_at": "When dispatchwatch first saw the incident, UTC",
            "first_seen_local": _LOCAL_DOC.format("first_seen_at"),
            "last_seen_at": "When dispatchwatch last saw it listed, UTC",
            "last_seen_local": _LOCAL_DOC.format("last_seen_at"),
            "gone_at": "When it left a snapshot feed's list, UTC",
            "gone_local": _LOCAL_DOC.format("gone_at"),
            "version": "Number of versions in incident_versions",
        },
    },
    "incident_timeline": {
        "title": "Incident timeline",
        "description": "One row per version of each incident: what happened (new, changed, "
        "gone, back), what changed from the previous version, and the poll that saw it.",
        "columns": {
            "id": "Row ID in incident_versions; orders versions as they were archived",
            "feed": "Feed slug",
            "incident_id": "The source's incident ID",
            "version": "1 for the first sighting, then 2, 3, ...",
            "event": "new, changed, gone (left the active list) or back (listed again)",
            "observed_at": "When the source showed this version, UTC",
            "observed_local": _LOCAL_DOC.format("observed_at"),
            "poll_id": "The poll that saw this version",
            "changes": "What changed from the previous version: field: old → new",
            "changed_columns": "JSON list of the changed columns",
            **{k: v for k, v in _INCIDENT_FIELD_DOCS.items() if k not in ("feed", "extra")},
            "gone_at": "Set when this version records the incident leaving the list",
            "source": "Where the page of that poll came from",
        },
    },
    "zone_offsets": {
        "title": "Time zone offsets",
        "description": "UTC offsets of each feed's time zone between DST transitions "
        "(from the tz database); used by the local-time views.",
        "hidden": True,
    },
}

#: Table options beyond the docs: default sort, facets, sortable columns.
TABLE_OPTIONS: dict[str, dict[str, Any]] = {
    "incidents": {
        "sort_desc": "received_at",
        "facets": ["feed", "call_type", "status", "district"],
        "sortable_columns": [
            "received_at",
            "first_seen_at",
            "last_seen_at",
            "gone_at",
            "feed",
            "call_type",
            "priority",
            "status",
            "district",
            "address",
            "version",
        ],
    },
    "incidents_local": {
        "sort_desc": "received_at",
        "facets": ["feed", "call_type", "status", "district"],
        "sortable_columns": [
            "received_at",
            "received_local",
            "feed",
            "call_type",
            "priority",
            "status",
            "district",
            "address",
            "version",
        ],
    },
    "incident_timeline": {
        # id, not observed_at: versions are appended in order and id is the rowid, so the
        # newest page needs no sort of the whole history.
        "sort_desc": "id",
        "facets": ["feed", "event"],
        "sortable_columns": ["id", "observed_at", "feed", "incident_id", "version", "event"],
    },
    "incident_versions": {"sort_desc": "id", "facets": ["feed"]},
    "polls": {
        "sort_desc": "id",
        "facets": ["feed", "outcome", "error_kind"],
        "sortable_columns": [
            "id",
            "started_at",
            "duration_ms",
            "bytes",
            "incidents",
            "new",
            "changed",
            "gone",
            "feed",
            "outcome",
        ],
    },
    # Rows and facets link a feed by its short slug; the feed's long name would otherwise be
    # picked (Datasette labels by any "name" column) and swamp the incidents table.
    "feeds": {"label_column": "slug"},
}


#: Datasette 0.65 lists column descriptions one per line above the rows, which pushes a
#: 19-column table below the fold. Lay them out three to a line instead. A data: URL, so
#: the style travels with the metadata to a published copy (no static files to ship).
_COMPACT_COLUMN_DESCRIPTIONS_CSS = (
    "dl.column-descriptions{display:grid;"
    "grid-template-columns:repeat(3,max-content minmax(0,1fr));"
    "gap:0.1em 0.8em;font-size:0.8em;margin-bottom:1em}"
    "dl.column-descriptions dt{font-weight:bold}"
    "dl.column-descriptions dd{margin:0;color:#555}"
    "@media (max-width:800px){dl.column-descriptions{grid-template-columns:max-content 1fr}}"
)


def _connect_readonly(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no archive at {path}")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def _link(url: str | None, text: str) -> str:
    # Only http(s) becomes a link: the feeds table is data, not trusted HTML.
    if url and url.startswith(("http://", "https://")):
        return f'<a href="{html.escape(url)}">{html.escape(text)}</a>'
    return html.escape(text)


def _feed_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM feeds ORDER BY slug")]
    except sqlite3.OperationalError as exc:
        raise ValueError(f"not a dispatchwatch archive ({exc})") from exc


def _feed_item(feed: dict[str, Any]) -> str:
    place = ", ".join(p for p in (feed.get("city"), feed.get("state")) if p)
    parts = [
        _link(feed.get("homepage") or feed.get("url"), feed.get("name") or feed["slug"])
        + f" (<code>{html.escape(feed['slug'])}</code>)"
    ]
    if feed.get("agency") or place:
        parts.append(html.escape(" — ".join(p for p in (feed.get("agency"), place) if p)))
    if feed.get("url"):
        parts.append("source: " + _link(feed["url"], feed["url"]))
    parts.append("license: " + html.escape(feed.get("license") or "not stated by the source"))
    if feed.get("source_notes"):
        parts.append(html.escape(feed["source_notes"]))
    return "<li>" + "; ".join(parts) + "</li>"


def build_metadata(
    path: str | Path, *, database_name: str | None = None, title: str | None = None
) -> dict[str, Any]:
    """Datasette metadata for the archive at ``path``, read from its ``feeds`` table.

    ``database_name`` is the name Datasette gives the file (its stem, the default).
    """
    conn = _connect_readonly(path)
    try:
        feeds = _feed_rows(conn)
    finally:
        conn.close()
    name = database_name or Path(path).stem
    cities = list(dict.fromkeys(f["city"] for f in feeds if f.get("city")))
    if title is None:
        title = "Dispatch archive"
        if 0 < len(cities) <= 4:
            title += ": " + ", ".join(cities)
    description = (
        "<p>Police and fire dispatch calls archived by dispatchwatch from public feeds. "
        "Addresses are at block level and coordinates rounded; times are UTC "
        "(see <em>incidents_local</em> for local times).</p>"
    )
    if feeds:
        description += "<ul>" + "".join(_feed_item(f) for f in feeds) + "</ul>"
    licenses = {f.get("license") or "" for f in feeds}
    metadata: dict[str, Any] = {
        "title": title,
        "description_html": description,
    }
    if len(licenses) == 1 and "" not in licenses:
        metadata["license"] = licenses.pop()
    elif len(licenses) > 1:
        metadata["license"] = "Varies by feed (see the feeds table)"
    if feeds:
        metadata["source"] = "; ".join(dict.fromkeys(f.get("agency") or f["name"] for f in feeds))
        if len(feeds) == 1 and (feeds[0].get("homepage") or feeds[0].get("url")):
            metadata["source_url"] = feeds[0].get("homepage") or feeds[0]["url"]
    metadata["about"] = "dispatchwatch"
    metadata["extra_css_urls"] = [
        "data:text/css," + urllib.parse.quote(_COMPACT_COLUMN_DESCRIPTIONS_CSS, safe=":;,().")
    ]
    tables = {}
    for table, docs in TABLE_DOCS.items():
        tables[table] = {**docs, **TABLE_OPTIONS.get(table, {})}
    queries = {
        key: {
            "title": q["title"],
            "description": q["description"],
            "sql": q["sql"].strip() + "\n",
            **({"params": q["params"]} if "params" in q else {}),
        }
        for key, q in CANNED_QUERIES.items()
    }
    metadata["databases"] = {
        name: {
            "description": "Dispatch calls, their change history and the polls that saw them.",
            "tables": tables,
            "queries": queries,
        }
    }
    return metadata


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the SQL) as ``|`` blocks, so the YAML stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def dump_metadata(metadata: dict[str, Any], fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.dump(
            metadata, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100
        )
    raise ValueError(f"unknown metadata format {fmt!r} (use yaml or json)")


# --- serve -----------------------------------------------------------------------------------


def datasette_command(
    db_path: str | Path,
    metadata_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``datasette serve`` command line for a live archive.

    The file is passed as a plain (mutable) database, never ``-i``: immutable mode assumes
    the file never changes and would serve stale or torn pages while the daemon writes.
    Datasette then opens it with ``?mode=ro``, so its reads cannot write, and in WAL mode
    readers never wait for the writer. Nothing that writes is enabled (no ``--crossdb``,
    no ``--nolock``, no write plugins).

    Facet suggestions are off: on every page they try a query per column, each cut off at
    its time limit, which on a large, growing archive adds a second or more per page for
    suggestions that never arrive. The configured facets stay, and any column can still be
    faceted from its menu.
    """
    return [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        str(db_path),
        "--metadata",
        str(metadata_path),
        "--host",
        host,
        "--port",
        str(port),
        "--setting",
        "suggest_facets",
        "off",
        *extra,
    ]


def prepare_live_archive(db_path: str | Path) -> None:
    """Make sure an archive has what the metadata refers to: the current schema (views) and
    offsets for every feed's time zone.

    Writes only when something is missing, in one short transaction by dispatchwatch before
    Datasette starts (so serving a current archive, even a read-only file, writes nothing).
    Deliberately not :class:`Archive`: closing that checkpoints the WAL, which waits for
    the daemon.
    """
    import sqlite_utils

    from .archive import SCHEMA_VERSION, migrate

    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"no archive at {path}")
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            migrate(sqlite_utils.Database(conn))
        present = {row[0] for row in conn.execute("SELECT DISTINCT zone FROM zone_offsets")}
        wanted = {row[0] for row in conn.execute("SELECT DISTINCT timezone FROM feeds")}
        if any(_known_zone(zone) for zone in wanted - present):
            conn.execute("BEGIN IMMEDIATE")
            try:
                ensure_zone_offsets(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise ValueError(f"cannot prepare {path} for serving: {exc}") from exc
    finally:
        conn.close()


def run_datasette(command: Sequence[str]) -> int:
    """Run ``command`` in the foreground; stop it with us (Ctrl+C, SIGTERM)."""
    import signal

    process = subprocess.Popen(list(command))

    def stop(signum: int, frame: object) -> None:
        process.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            process.kill()


# --- snapshot --------------------------------------------------------------------------------


@dataclass(slots=True)
class SnapshotResult:
    path: Path
    counts: dict[str, int]
    size: int
    first_received: str | None
    last_received: str | None
    feeds: list[str] = field(default_factory=list)


def parse_bound(text: str, *, end: bool = False) -> str:
    """A ``--since``/``--until`` value as stored time text (UTC, ``Z``).

    A date means the start of that UTC day, or for ``end`` the start of the next one, so
    ``--until 2024-04-01`` includes all of April 1st. A time without a zone is UTC.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"not a date or time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
        ) from None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_SNAPSHOT_TABLES = ("feeds", "incidents", "incident_versions", "polls")


def snapshot(
    source: str | Path,
    out: str | Path,
    *,
    feeds: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    replace: bool = False,
) -> SnapshotResult:
    """Copy the archive at ``source`` to ``out``, consistently, while the daemon writes.

    SQLite's backup API copies every page under one read transaction, so the copy is the
    archive as of one commit. It is then limited to ``feeds`` and to incidents received in
    [``since``, ``until``) (stored time text, see :func:`parse_bound`) together with their
    versions, the polls of the kept feeds in that range and every poll a kept version
    refers to. The copy is brought to the current schema, switched out of WAL (one
    self-contained file for ``datasette publish``), its search index rebuilt and, when
    rows were removed, vacuumed. The copy is written beside ``out`` and renamed into place.
    """
    import sqlite_utils

    from .archive import migrate

    source, out = Path(source), Path(out)
    if not source.is_file():
        raise FileNotFoundError(f"no archive at {source}")
    if out.exists():
        if out.resolve() == source.resolve():
            raise ValueError("the snapshot cannot overwrite the archive it copies")
        if not replace:
            raise FileExistsError(f"{out} exists (use --replace to overwrite it)")
    if since and until and since >= until:
        raise ValueError("--since must be before --until")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    src = _connect_readonly(source)
    dst = sqlite3.connect(str(partial), isolation_level=None)
    try:
        known = [feed["slug"] for feed in _feed_rows(src)]
        unknown = [slug for slug in feeds if slug not in known]
        if unknown:
            raise ValueError(
                f"no feed {', '.join(unknown)} in {source} (feeds: {', '.join(known) or 'none'})"
            )
        src.backup(dst)
        src.close()
        # One self-contained file: a published database is opened immutable, without WAL.
        dst.execute("PRAGMA journal_mode = DELETE")
        migrate(sqlite_utils.Database(dst))
        removed = _limit(dst, feeds, since, until)
        dst.execute("BEGIN")
        ensure_zone_offsets(dst, refresh=True)
        kept_zones = [row[0] for row in dst.execute("SELECT DISTINCT timezone FROM feeds")]
        dst.execute(
            f"DELETE FROM zone_offsets WHERE zone NOT IN ({', '.join('?' * len(kept_zones))})",
            kept_zones,
        )
        dst.execute("INSERT INTO incidents_fts (incidents_fts) VALUES ('rebuild')")
        dst.execute("COMMIT")
        problems = dst.execute("PRAGMA foreign_key_check").fetchall()
        if problems:  # would mean a bug in _limit: never publish a broken copy
            raise RuntimeError(f"snapshot left dangling references: {problems[:5]}")
        dst.execute("ANALYZE")
        if removed:
            dst.execute("VACUUM")
        counts = {
            table: dst.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]
            for table in _SNAPSHOT_TABLES
        }
        first, last = dst.execute(
            "SELECT min(received_at), max(received_at) FROM incidents"
        ).fetchone()
        kept_feeds = [row[0] for row in dst.execute("SELECT slug FROM feeds ORDER BY slug")]
        dst.close()
        os.replace(partial, out)
    except BaseException:
        src.close()
        dst.close()
        partial.unlink(missing_ok=True)
        raise
    return SnapshotResult(out, counts, out.stat().st_size, first, last, kept_feeds)


def _limit(
    conn: sqlite3.Connection, feeds: Sequence[str], since: str | None, until: str | None
) -> int:
    """Delete what is outside the feeds and date range; returns the rows deleted."""
    if not feeds and not since and not until:
        return 0
    keep_incident = ["1"]
    keep_poll = ["1"]
    params: list[Any] = []
    poll_params: list[Any] = []
    if feeds:
        marks = ", ".join("?" * len(feeds))
        keep_incident.append(f"feed IN ({marks})")
        keep_poll.append(f"feed IN ({marks})")
        params += feeds
        poll_params += feeds
    # An incident without a received time is dated by when it was first seen.
    when = "coalesce(received_at, first_seen_at)"
    if since:
        keep_incident.append(f"{when} >= ?")
        keep_poll.append("started_at >= ?")
        params.append(since)
        poll_params.append(since)
    if until:
        keep_incident.append(f"{when} < ?")
        keep_poll.append("started_at < ?")
        params.append(until)
        poll_params.append(until)
    before = conn.total_changes
    conn.execute("BEGIN")
    conn.execute(f"DELETE FROM incidents WHERE NOT ({' AND '.join(keep_incident)})", params)
    conn.execute(
        "DELETE FROM incident_versions WHERE NOT EXISTS (SELECT 1 FROM incidents i "
        "WHERE i.feed = incident_versions.feed AND i.incident_id = incident_versions.incident_id)"
    )
    # A kept version keeps its poll, even one just outside the range.
    conn.execute(
        f"DELETE FROM polls WHERE NOT ({' AND '.join(keep_poll)}) "
        "AND id NOT IN (SELECT poll_id FROM incident_versions WHERE poll_id IS NOT NULL)",
        poll_params,
    )
    if feeds:
        conn.execute(f"DELETE FROM feeds WHERE slug NOT IN ({', '.join('?' * len(feeds))})", feeds)
    conn.execute("COMMIT")
    return conn.total_changes - before
