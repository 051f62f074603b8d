"""The SQL views for people: ``incidents_local``, ``incident_timeline``, ``incident_points``
(the map) and ``poll_log``; installed by migration 2 and brought up to date by ``serve`` and
``snapshot`` (:func:`views_outdated`)."""

from __future__ import annotations

import sqlite3

from ..incident import TRACKED_FIELDS
from ..versions import GONE, NEW
from .zones import _local, _local_label, ensure_zone_offsets

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


# Versions are stored compact (see versions.py): a version's fields are in version_values
# (x for v, px for the previous version p) or, when it has none there, its incident's current
# ones (i). A gone version's fields are those of the version before it, so a version that
# comes back is compared with the one before the gone.
def _whole(version: str, values: str, name: str) -> str:
    return f"CASE WHEN {values}.id IS NULL THEN i.{name} ELSE {values}.{name} END"


def _value(name: str) -> str:
    return _whole("v", "x", name)


def _before(name: str) -> str:
    return _whole("p", "px", name)


def _change(name: str) -> str:
    return (
        f"CASE WHEN {_value(name)} IS NOT {_before(name)} THEN '{name}: ' || "
        f"coalesce({_before(name)}, '∅') || ' → ' || coalesce({_value(name)}, '∅') || '; ' "
        "ELSE '' END"
    )


_CHANGES = (
    "CASE WHEN p.version IS NULL OR v.gone IS NOT NULL THEN '' ELSE "
    + "\n        || ".join(_change(name) for name in _SHOWN_CHANGES)
    + f"\n        || CASE WHEN {_value('extra')} IS NOT {_before('extra')} THEN 'extra; ' "
    "ELSE '' END END"
)
_VALUES = ", ".join(f"{_value(name)} AS {name}" for name in _SHOWN_CHANGES)
_OBSERVED = "coalesce(t.observed_at, polls.observed_at)"

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
        f.slug AS feed,
        i.incident_id,
        v.version,
        CASE
            WHEN p.version IS NULL THEN 'new'
            WHEN v.gone IS NOT NULL THEN 'gone'
            WHEN p.gone IS NOT NULL THEN 'back'
            ELSE 'changed'
        END AS event,
        {_OBSERVED} AS observed_at,
        {_local(_OBSERVED, "f.timezone")} AS observed_local,
        v.poll_id,
        {_CHANGES} AS changes_text,
        coalesce(v.changed, CASE WHEN v.gone THEN '{GONE}' ELSE '{NEW}' END) AS changed_columns,
        {_VALUES},
        CASE WHEN v.gone THEN {_OBSERVED} END AS gone_at,
        polls.source
    FROM version_log v
    JOIN incidents i ON i.rowid = v.incident
    -- feed comes from feeds and the join is on +i.feed (no index): a page of one feed's
    -- newest versions (ORDER BY id DESC LIMIT n) then walks version_log in rowid
    -- order and stops after n rows, instead of building every version of the feed first.
    JOIN feeds f ON f.slug = +i.feed
    LEFT JOIN version_values x ON x.id = v.id
    -- Versions of an incident are numbered 1, 2, 3...: its index finds the previous.
    LEFT JOIN version_log p ON p.incident = v.incident AND p.version = v.version - 1
    LEFT JOIN version_values px ON px.id = p.id
    LEFT JOIN version_times t ON t.id = v.id
    LEFT JOIN polls ON polls.id = v.poll_id
)
"""

#: Decimal places of the map's coordinates: 3 is about 100 m, block level, whatever a feed's
#: configured precision (the table keeps what the feed gave).
MAP_DECIMALS = 3

INCIDENT_POINTS_SQL = f"""
SELECT
    i.feed,
    i.incident_id,
    {_local_label("i.received_at", "f.timezone")} AS local_time,
    i.call_type,
    i.address,
    i.status,
    round(i.latitude, {MAP_DECIMALS}) AS latitude,
    round(i.longitude, {MAP_DECIMALS}) AS longitude,
    json_object(
        'title', coalesce(i.call_type, 'Call'),
        'description', coalesce({_local_label("i.received_at", "f.timezone")}, i.received_at, '')
            || coalesce(' · ' || i.address, '') || ' · ' || i.feed
    ) AS popup,
    i.received_at
FROM incidents i
JOIN feeds f ON f.slug = i.feed
WHERE i.latitude IS NOT NULL AND i.longitude IS NOT NULL
"""

POLL_LOG_SQL = f"""
SELECT
    p.id,
    {_local_label("p.started_at", "f.timezone")} AS local_time,
    p.feed,
    p.outcome,
    p.new,
    p.changed,
    p.gone,
    p.incidents,
    p.error_kind,
    p.error,
    p.duration_ms,
    p.http_status,
    p.bytes,
    p.started_at
FROM polls p
JOIN feeds f ON f.slug = p.feed
"""

VIEWS = {
    "incidents_local": INCIDENTS_LOCAL_SQL,
    "incident_timeline": INCIDENT_TIMELINE_SQL,
    "incident_points": INCIDENT_POINTS_SQL,
    "poll_log": POLL_LOG_SQL,
}


def _create_view(name: str, sql: str) -> str:
    return f"CREATE VIEW {name} AS {sql.strip()}"


def views_outdated(conn: sqlite3.Connection) -> bool:
    """True when a view is missing or was created by another version of this module."""
    stored = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
    return any(stored.get(name) != _create_view(name, sql) for name, sql in VIEWS.items())


def install_views(conn: sqlite3.Connection) -> None:
    """Create ``zone_offsets`` (filled for the registered feeds) and (re)create the views.

    Views hold no data, so a later migration that changes them just calls this again. The
    caller owns the transaction (migrations run in one).
    """
    ensure_zone_offsets(conn)
    for name, sql in VIEWS.items():
        conn.execute(f"DROP VIEW IF EXISTS {name}")
        conn.execute(_create_view(name, sql))
