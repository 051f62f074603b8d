"""Canned queries for Datasette: recent calls, calls per hour, busiest blocks, history, health.

Each shows the feed's local time first (``local_time``: wall clock and zone abbreviation,
``2024-03-31 18:30:18 PDT``) and keeps the UTC original beside it, named for what it is
(``received_utc``, ``observed_utc``: not ``*_at``, which the Datasette plugin would show in
local time a second time).
"Today" is today in each feed's own zone. Their SQL is hidden by default (``hide_sql``);
the ``feed`` parameter is offered as a list of the archive's feeds by the dispatchwatch
Datasette plugin.
"""

from __future__ import annotations

from typing import Any

from ..status import STALE_INTERVALS, STALE_MINIMUM
from .zones import _local_label, _local_today

#: "Now" as stored times spell it (UTC, ``Z``), so comparisons stay plain text comparisons
#: that use the indexes. Everything "recent" is relative to the clock, not to the newest data.
_NOW = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now'{})"
NOW = _NOW.format("")


def _since(modifier: str) -> str:
    return _NOW.format(f", '{modifier}'")


#: The polls of the daemon (``p``), not imports, backfills, ingests or reparses.
_LIVE = "(p.kind IS NULL OR p.kind = 'live')"


def _last_live(outcome: str) -> str:
    """SQL: the id of feed ``f``'s last live poll of ``outcome`` (polls(feed, outcome, id))."""
    return (
        f"(SELECT p.id FROM polls p WHERE p.feed = f.slug AND p.outcome = '{outcome}' "
        f"AND {_LIVE} ORDER BY p.id DESC LIMIT 1)"
    )


#: Today's date in the zone of the feed ``f`` (its row in ``feeds``); UTC's for an unknown zone.
FEED_TODAY = f"coalesce({_local_today('f.timezone', NOW)}, date('now'))"

CANNED_QUERIES: dict[str, dict[str, Any]] = {
    "last_24_hours": {
        "title": "Calls in the last 24 hours",
        "description": "Every call received in the last 24 hours, newest first, in the "
        "feed's local time (received_utc is the same moment in UTC). Leave feed empty for "
        "all feeds.",
        "params": ["feed"],
        "sql": f"""
SELECT {_local_label("i.received_at", "f.timezone")} AS local_time,
       i.call_type, i.priority, i.status, i.address, i.district, i.units, i.feed,
       i.incident_id, i.received_at AS received_utc
FROM incidents i
JOIN feeds f ON f.slug = i.feed
WHERE i.received_at >= {_since("-24 hours")}
  AND (:feed = '' OR i.feed = :feed)
ORDER BY i.received_at DESC
""",
    },
    "calls_per_hour": {
        "title": "Calls per hour",
        "description": "Calls per hour of one day in the feed's local time (day as "
        "YYYY-MM-DD; empty means today in the feed's time zone). Leave feed empty for all "
        "feeds, each counted in its own local time and its own today.",
        "params": ["day", "feed"],
        "sql": f"""
WITH RECURSIVE
hours(h) AS (SELECT 0 UNION ALL SELECT h + 1 FROM hours WHERE h < 23),
chosen(feed, day) AS (
  SELECT f.slug, coalesce(nullif(:day, ''), {FEED_TODAY})
  FROM feeds f
  WHERE :feed = '' OR f.slug = :feed
),
calls(h, n) AS (
  SELECT CAST(substr(l.received_local, 12, 2) AS INTEGER), count(*)
  FROM chosen c
  JOIN incidents_local l ON l.feed = c.feed
  -- a local day lies within a day either side of the UTC day: narrow by index first
  WHERE l.received_at >= strftime('%Y-%m-%dT%H:%M:%SZ', c.day, '-1 day')
    AND l.received_at < strftime('%Y-%m-%dT%H:%M:%SZ', c.day, '+2 days')
    AND substr(l.received_local, 1, 10) = c.day
  GROUP BY 1
)
SELECT (SELECT CASE WHEN min(day) = max(day) THEN min(day)
                    ELSE min(day) || ' / ' || max(day) END FROM chosen) AS day,
       printf('%02d:00', hours.h) AS hour,
       coalesce(calls.n, 0) AS calls
FROM hours LEFT JOIN calls ON calls.h = hours.h
ORDER BY hours.h
""",
    },
    "busiest_blocks": {
        "title": "Busiest blocks this week",
        "description": "Block-level addresses with the most calls in the last 7 days, with "
        "their most common call type and the local time of the last call. Leave feed empty "
        "for all feeds.",
        "params": ["feed"],
        "sql": f"""
SELECT b.feed, b.address, b.calls, b.top_call_type, b.call_types,
       {_local_label("b.last_call", "f.timezone")} AS last_call_local,
       b.first_call, b.last_call, b.latitude, b.longitude
FROM (
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
) b
JOIN feeds f ON f.slug = b.feed
ORDER BY b.calls DESC, b.feed, b.address
""",
    },
    "incident_history": {
        "title": "An incident's full history",
        "description": "Every version of one incident, oldest first: what changed, when "
        "(the feed's local time; observed_utc in UTC), and which poll saw it.",
        "params": ["feed", "incident_id"],
        "sql": f"""
SELECT t.version, t.event, {_local_label("t.observed_at", "f.timezone")} AS local_time,
       t.changes, t.status, t.call_type, t.priority, t.disposition, t.address, t.units,
       t.gone_at, t.observed_at AS observed_utc, t.poll_id, t.source
FROM incident_timeline t
JOIN feeds f ON f.slug = t.feed
WHERE t.id IN (SELECT id FROM incident_versions
               WHERE feed = :feed AND incident_id = :incident_id)
ORDER BY t.version
""",
    },
    "feed_health": {
        "title": "Feed health",
        "description": "Per feed: the last successful poll and the last error (local time), "
        "failures in a row since the last success, and polls in the last 24 hours, all of "
        "live polls only (an import or a backfill says nothing about whether a feed is being "
        "polled). 'stale' means no success for three poll intervals (at least 15 minutes), "
        "'never succeeded' that no live poll ever succeeded, 'history only' that the feed was "
        "only imported or backfilled, as `dispatchwatch status`.",
        "sql": f"""
SELECT feed, name,
  CASE
    WHEN last_poll IS NULL AND has_polls THEN 'history only'
    WHEN last_success IS NULL THEN 'never succeeded'
    WHEN consecutive_failures > 0 THEN 'failing'
    WHEN last_success < strftime('%Y-%m-%dT%H:%M:%SZ', 'now',
                                 '-' || max({STALE_INTERVALS} * interval_seconds,
                                            {STALE_MINIMUM:g}) || ' seconds')
      THEN 'stale'
    ELSE 'ok'
  END AS health,
  {_local_label("last_success", "timezone")} AS last_success_local,
  {_local_label("last_error", "timezone")} AS last_error_local,
  last_error_message, consecutive_failures, polls_24h, errors_24h, last_success, last_error
FROM (
  SELECT *,
    (SELECT p.started_at FROM polls p WHERE p.id = h.last_good) AS last_success,
    (SELECT p.started_at FROM polls p WHERE p.id = h.last_failure) AS last_error,
    (SELECT coalesce(p.error_kind || ': ', '') || coalesce(p.error, '') FROM polls p
     WHERE p.id = h.last_failure) AS last_error_message,
    (SELECT count(*) FROM polls p
     WHERE p.feed = h.feed AND p.outcome = 'error' AND p.id > coalesce(h.last_good, 0)
       AND {_LIVE})
      AS consecutive_failures
  FROM (
    -- Each a backwards walk of an index to the first live poll (cheap after years of polls).
    SELECT f.slug AS feed, f.name, f.timezone,
      coalesce(f.interval_seconds, 60) AS interval_seconds,
      (SELECT p.started_at FROM polls p WHERE p.feed = f.slug AND {_LIVE}
       ORDER BY p.started_at DESC LIMIT 1) AS last_poll,
      EXISTS (SELECT 1 FROM polls p WHERE p.feed = f.slug) AS has_polls,
      max(
        coalesce({_last_live("new")}, 0), coalesce({_last_live("unchanged")}, 0),
        coalesce({_last_live("not_modified")}, 0)
      ) AS last_good,
      {_last_live("error")} AS last_failure,
      (SELECT count(*) FROM polls p
       WHERE p.feed = f.slug AND p.started_at >= {_since("-24 hours")} AND {_LIVE}) AS polls_24h,
      (SELECT count(*) FROM polls p
       WHERE p.feed = f.slug AND p.outcome = 'error'
         AND p.started_at >= {_since("-24 hours")} AND {_LIVE}) AS errors_24h
    FROM feeds f
  ) h
)
ORDER BY feed
""",
    },
}
