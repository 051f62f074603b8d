"""Canned queries for Datasette: recent calls, calls per hour, busiest blocks, history, health."""

from __future__ import annotations

from typing import Any

from ..status import STALE_INTERVALS, STALE_MINIMUM

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
        "success for three poll intervals (at least 15 minutes), 'never succeeded' that "
        "nothing of the feed was ever archived, as `dispatchwatch status`.",
        "sql": f"""
SELECT feed, name,
  CASE
    WHEN last_success IS NULL THEN 'never succeeded'
    WHEN consecutive_failures > 0 THEN 'failing'
    WHEN last_success < strftime('%Y-%m-%dT%H:%M:%SZ', 'now',
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
