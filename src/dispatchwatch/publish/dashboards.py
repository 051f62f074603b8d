"""Dashboards for the datasette-dashboards plugin: calls per hour and per day, top call
types, busiest blocks, response times where a source publishes them, feed health, coverage.

One dashboard, ``calls``, with a ``feed`` filter picked from the archive's feeds: empty is
every feed (each counted in its own local time), a slug is that feed alone. The charts are
Vega-Lite specs the plugin draws in the browser from the chart's SQL (run through
Datasette's JSON API); the filter enters the SQL as ``[[ AND feed = :feed ]]``, which the
plugin drops when the filter is empty.

Times: "today" is today in each feed's zone; hours and days are the feed's local ones
(``incidents_local.received_local``), so a chart of an evening in Seattle is not split at
UTC midnight.

Response times are shown only where the source publishes them: the ``extra`` JSON of an
incident holding both a dispatch time (one of :data:`DISPATCHED_KEYS`) and an on-scene time
(one of :data:`ON_SCENE_KEYS`) in a form SQLite's ``julianday`` reads. Both come from the
same source in the same form, so their difference does not depend on its time zone. No
figure is invented for a feed without them: the panel then says so.
"""

from __future__ import annotations

from typing import Any

from .queries import FEED_TODAY, _since

#: Keys of ``extra`` read as the time units were dispatched / arrived, in this order.
DISPATCHED_KEYS = ("dispatched_at", "dispatch_time", "time_dispatched", "dispatch_datetime")
ON_SCENE_KEYS = ("on_scene_at", "onscene_at", "on_scene_time", "arrived_at", "arrival_time")

DASHBOARD = "calls"
#: The response-time panel's only row when no feed shown publishes both times.
NO_RESPONSE_TIMES = "(no feed here publishes dispatch and on-scene times)"

#: Vega-Lite renders SVG (readable by tests and screen readers) without the export menu.
_EMBED = {"usermeta": {"embedOptions": {"renderer": "svg", "actions": False}}}


def _first_of(keys: tuple[str, ...]) -> str:
    return "coalesce(" + ", ".join(f"json_extract(i.extra, '$.{key}')" for key in keys) + ")"


def _vega(display: dict[str, Any]) -> dict[str, Any]:
    return {**display, **_EMBED}


def _bars(x: dict[str, Any], count: str, color: str = "feed") -> dict[str, Any]:
    """Stacked bars of ``count`` over ``x``, coloured by ``color``."""
    return _vega(
        {
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {
                "x": x,
                "y": {"field": count, "type": "quantitative", "title": count},
                "color": {"field": color, "type": "nominal", "title": color},
            },
        }
    )


CALLS_TODAY_SQL = f"""
WITH RECURSIVE
hours(h) AS (SELECT 0 UNION ALL SELECT h + 1 FROM hours WHERE h < 23),
chosen(feed, day) AS (
  SELECT f.slug, {FEED_TODAY} FROM feeds f WHERE 1 [[ AND f.slug = :feed ]]
),
calls(feed, h, n) AS (
  SELECT l.feed, CAST(substr(l.received_local, 12, 2) AS INTEGER), count(*)
  FROM chosen c
  JOIN incidents_local l ON l.feed = c.feed
  WHERE l.received_at >= strftime('%Y-%m-%dT%H:%M:%SZ', c.day, '-1 day')
    AND l.received_at < strftime('%Y-%m-%dT%H:%M:%SZ', c.day, '+2 days')
    AND substr(l.received_local, 1, 10) = c.day
  GROUP BY 1, 2
)
SELECT c.feed, c.day, printf('%02d:00', hours.h) AS hour, coalesce(calls.n, 0) AS calls
FROM chosen c CROSS JOIN hours
LEFT JOIN calls ON calls.feed = c.feed AND calls.h = hours.h
ORDER BY c.feed, hours.h
"""

CALLS_PER_DAY_SQL = f"""
SELECT l.feed, substr(l.received_local, 1, 10) AS day, count(*) AS calls
FROM incidents_local l
WHERE l.received_at >= {_since("-31 days")}
  [[ AND l.feed = :feed ]]
GROUP BY 1, 2
ORDER BY 2, 1
"""

CALLS_24H_SQL = f"""
SELECT count(*) AS calls FROM incidents
WHERE received_at >= {_since("-24 hours")} [[ AND feed = :feed ]]
"""

TOP_CALL_TYPES_SQL = f"""
SELECT coalesce(call_type, '(none)') AS call_type, count(*) AS calls
FROM incidents
WHERE received_at >= {_since("-7 days")} [[ AND feed = :feed ]]
GROUP BY 1
ORDER BY calls DESC, call_type
LIMIT 15
"""

BUSIEST_BLOCKS_SQL = f"""
SELECT feed, address, count(*) AS calls, count(DISTINCT call_type) AS call_types
FROM incidents
WHERE received_at >= {_since("-7 days")} AND coalesce(address, '') != ''
  [[ AND feed = :feed ]]
GROUP BY feed, address
ORDER BY calls DESC, feed, address
LIMIT 15
"""

RESPONSE_TIMES_SQL = f"""
WITH times AS (
  SELECT i.feed,
    julianday({_first_of(DISPATCHED_KEYS)}) AS dispatched,
    julianday({_first_of(ON_SCENE_KEYS)}) AS on_scene
  FROM incidents i
  WHERE i.received_at >= {_since("-30 days")} AND json_valid(i.extra)
    [[ AND i.feed = :feed ]]
),
figures AS (
  SELECT feed,
    count(*) AS calls_with_both_times,
    round(avg((on_scene - dispatched) * 1440), 1) AS mean_minutes,
    round(min((on_scene - dispatched) * 1440), 1) AS fastest_minutes,
    round(max((on_scene - dispatched) * 1440), 1) AS slowest_minutes
  FROM times
  WHERE dispatched IS NOT NULL AND on_scene IS NOT NULL
    AND on_scene >= dispatched AND on_scene - dispatched < 1
  GROUP BY feed
)
SELECT * FROM figures
UNION ALL
SELECT '{NO_RESPONSE_TIMES}', 0, NULL, NULL, NULL
WHERE NOT EXISTS (SELECT 1 FROM figures)
ORDER BY 1
"""

# Live polls only: an import or a backfill is no sign of a feed's health.
POLLS_BY_OUTCOME_SQL = f"""
SELECT feed, outcome, count(*) AS polls
FROM polls
WHERE started_at >= {_since("-24 hours")} AND (kind IS NULL OR kind = 'live')
  [[ AND feed = :feed ]]
GROUP BY 1, 2
ORDER BY 1, 2
"""

FEEDS_SQL = "SELECT slug FROM feeds ORDER BY slug"


#: The coverage panel's columns, in this order, where the ``coverage`` view has them.
COVERAGE_COLUMNS = ("feed", "kind", "description", "minutes", "failed_polls", "errors")


def _coverage_chart(database: str, coverage_columns: list[str] | None) -> dict[str, Any]:
    """The coverage panel: the newest windows of the archive's ``coverage`` view (the
    coverage feature's own view; this only shows it) when it has one."""
    if not coverage_columns:
        return {
            "library": "markdown",
            "display": "### Coverage\n\nThis archive has no `coverage` view yet: a newer "
            "dispatchwatch adds it, listing the windows in which the archive was blind.",
        }
    shown = [c for c in COVERAGE_COLUMNS if c in coverage_columns] or ["*"]
    where = " [[ WHERE feed = :feed ]]" if "feed" in coverage_columns else ""
    order = " ORDER BY starts_at DESC" if "starts_at" in coverage_columns else ""
    return {
        "title": "Coverage: when the archive was blind or incomplete (newest first)",
        "db": database,
        "query": f"SELECT {', '.join(shown)} FROM coverage{where}{order} LIMIT 50",
        "library": "table",
    }


def build_dashboards(
    database: str, *, coverage_columns: list[str] | None = None, simulated: bool = False
) -> dict[str, Any]:
    """The ``datasette-dashboards`` plugin configuration for the database ``database``."""
    prefix = "SIMULATED (dispatchwatch demo, not real calls): " if simulated else ""

    def chart(title: str, sql: str, library: str, display: Any = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"title": title, "db": database, "query": sql.strip()}
        spec["library"] = library
        if display is not None:
            spec["display"] = display
        return spec

    charts = {
        "intro": {
            "library": "markdown",
            "display": (
                f"## {prefix}Calls, per feed or across feeds\n\n"
                "Pick a feed above, or leave it empty for every feed. Hours and days are "
                "each feed's local time; *today* is today where the feed is."
            ),
        },
        "calls-24h": chart(
            "Calls in the last 24 hours",
            CALLS_24H_SQL,
            "metric",
            {"field": "calls", "prefix": "", "suffix": " calls"},
        ),
        "calls-today": chart(
            "Calls per hour today (local time)",
            CALLS_TODAY_SQL,
            "vega-lite",
            _bars({"field": "hour", "type": "ordinal", "title": "hour (local)"}, "calls"),
        ),
        "calls-per-day": chart(
            "Calls per day, last 30 days (local days)",
            CALLS_PER_DAY_SQL,
            "vega-lite",
            _bars(
                {
                    "field": "day",
                    "type": "temporal",
                    "timeUnit": "utcyearmonthdate",
                    "title": "day (local)",
                },
                "calls",
            ),
        ),
        "top-call-types": chart(
            "Top call types, last 7 days",
            TOP_CALL_TYPES_SQL,
            "vega-lite",
            _vega(
                {
                    "mark": {"type": "bar", "tooltip": True},
                    "encoding": {
                        "y": {"field": "call_type", "type": "nominal", "sort": "-x", "title": ""},
                        "x": {"field": "calls", "type": "quantitative", "title": "calls"},
                    },
                }
            ),
        ),
        "busiest-blocks": chart("Busiest blocks, last 7 days", BUSIEST_BLOCKS_SQL, "table"),
        "response-times": chart(
            "Dispatch to on-scene, last 30 days (only feeds that publish both times)",
            RESPONSE_TIMES_SQL,
            "table",
        ),
        "feed-health": chart(
            "Feed health: live polls by outcome, last 24 hours",
            POLLS_BY_OUTCOME_SQL,
            "vega-lite",
            _bars({"field": "feed", "type": "nominal", "title": ""}, "polls", color="outcome"),
        ),
        "coverage": _coverage_chart(database, coverage_columns),
    }
    return {
        DASHBOARD: {
            "title": f"{prefix}Calls and feed health",
            "description": "Calls per hour and per day in local time, top call types, busiest "
            "blocks, response times where the source has them, and how the polls went.",
            "layout": [
                ["intro", "calls-24h"],
                ["calls-today", "calls-per-day"],
                ["top-call-types", "busiest-blocks"],
                ["feed-health", "response-times"],
                ["coverage", "coverage"],
            ],
            "filters": {
                "feed": {"name": "Feed", "type": "select", "db": database, "query": FEEDS_SQL}
            },
            "charts": charts,
        }
    }


__all__ = ["DASHBOARD", "DISPATCHED_KEYS", "ON_SCENE_KEYS", "build_dashboards"]
