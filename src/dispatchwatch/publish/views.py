"""The SQL views ``incidents_local`` and ``incident_timeline`` (installed by migration 2)."""

from __future__ import annotations

import sqlite3

from ..incident import TRACKED_FIELDS
from .zones import _local, ensure_zone_offsets

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
