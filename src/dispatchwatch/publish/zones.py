"""Local time without a SQL function: the ``zone_offsets`` lookup table and SQL over it.

``zone_offsets`` holds each zone's UTC offsets between transitions, computed with
:mod:`zoneinfo`, so the views are plain SQL that any SQLite reads, DST included. A view that
called a function registered by a plugin would break every reader without that plugin (the
sqlite3 shell, sqlite-utils, a published snapshot).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

    The rows of :func:`_sampled_transitions` (the reference: every week sampled, every
    change bisected to the second, about 12,000 lookups and 25-40 ms a zone), from about 400
    lookups: zoneinfo's offsets change only at the instants its zone file lists and at
    those its rule for later years (the file's POSIX TZ string) gives each year, so the
    zone is asked only there (:func:`_candidates`), each answer compared with the one
    before. Where that transition data cannot be read (a Python whose zoneinfo differs),
    the sampling is used.
    """
    tz = ZoneInfo(zone)
    start, last = _span(years)
    try:
        candidates = _candidates(zone, start, last)
    except Exception:  # private zoneinfo internals moved: the slow way, same rows
        return _sampled_transitions(zone, years)
    current = _state(tz, start)
    rows = [(_BEGINNING, *current)]
    for ts in candidates:
        following = _state(tz, ts)
        if following != current:
            rows.append((_iso(ts), *following))
            current = following
    return rows


_WEEK = 7 * 86_400


def _span(years: tuple[int, int]) -> tuple[int, int]:
    """The first and last instant (Unix seconds) :func:`_sampled_transitions` looks at."""
    start = int(datetime(years[0], 1, 1, tzinfo=UTC).timestamp())
    stop = int(datetime(years[1], 1, 1, tzinfo=UTC).timestamp())
    return start, start + -(-(stop - start) // _WEEK) * _WEEK


def _state(tz: ZoneInfo, ts: int) -> tuple[int, str, int]:
    """The offset (seconds), abbreviation and DST flag of ``tz`` at Unix time ``ts``."""
    local = datetime.fromtimestamp(ts, tz)
    offset = local.utcoffset() or timedelta(0)
    return int(offset.total_seconds()), local.tzname() or "", int(bool(local.dst()))


def _candidates(zone: str, start: int, last: int) -> list[int]:
    """Every instant in ``(start, last]`` where ``zone``'s state may change, sorted: the
    transitions its zone file lists, the one second after the last of them (where zoneinfo
    hands over to the rule), and, from the rule, each UTC year's DST start and end and its
    first second (the rule is applied per UTC year). A superset: the caller keeps those
    where the state really changes.

    Reads zoneinfo's pure-Python implementation (``zoneinfo._zoneinfo``: the same file and
    parser results as the C one); raises whatever that raises where it differs.
    """
    from zoneinfo import _zoneinfo

    data = _zoneinfo.ZoneInfo.no_cache(zone)
    listed: list[int] = list(data._trans_utc)  # type: ignore[attr-defined]
    found = set(listed)
    if listed:
        found.add(listed[-1] + 1)
    rule = data._tz_after  # type: ignore[attr-defined]
    if isinstance(rule, _zoneinfo._TZStr):
        std = int(rule.std.utcoff.total_seconds())
        dst = int(rule.dst.utcoff.total_seconds())
        first = datetime.fromtimestamp(start, UTC).year - 1
        final = datetime.fromtimestamp(last, UTC).year + 1
        for year in range(first, final + 1):
            begins, ends = rule.transitions(year)
            found.update((begins - std, ends - dst))
            found.add(int(datetime(year, 1, 1, tzinfo=UTC).timestamp()))
    elif not isinstance(rule, _zoneinfo._ttinfo):
        raise TypeError(f"unknown zoneinfo rule {rule!r}")
    return sorted(ts for ts in found if start < ts <= last)


def _sampled_transitions(
    zone: str, years: tuple[int, int] = ZONE_YEARS
) -> list[tuple[str, int, str, int]]:
    """:func:`zone_transitions` by sampling (the reference the tests compare it with):
    sample every week and bisect every change down to the second. (No zone since 1970 has
    had two transitions less than a week apart that cancel out.)"""
    tz = ZoneInfo(zone)

    def state(ts: int) -> tuple[int, str, int]:
        return _state(tz, ts)

    start = int(datetime(years[0], 1, 1, tzinfo=UTC).timestamp())
    stop = int(datetime(years[1], 1, 1, tzinfo=UTC).timestamp())
    current = state(start)
    rows = [(_BEGINNING, *current)]
    step = _WEEK
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


def _local(utc: str, zone: str) -> str:
    """SQL for the local time of the UTC text ``utc`` in ``zone``, ISO 8601 with its offset
    (``2024-03-31T18:30:18-07:00``), so it stays unambiguous in the repeated DST hour."""
    return (
        f"(SELECT strftime('%Y-%m-%dT%H:%M:%S', {utc}, z.utc_offset || ' seconds')"
        f" || z.offset_text FROM zone_offsets z"
        f" WHERE z.zone = {zone} AND z.starts_at <= {utc}"
        f" ORDER BY z.starts_at DESC LIMIT 1)"
    )


def _local_label(utc: str, zone: str) -> str:
    """SQL for a person's reading of the UTC text ``utc`` in ``zone``: the local wall-clock
    time and the zone's abbreviation (``2024-03-31 18:30:18 PDT``; the UTC offset where the
    tz database has no abbreviation). NULL when ``utc`` is NULL or the zone is unknown."""
    return (
        f"(SELECT strftime('%Y-%m-%d %H:%M:%S', {utc}, z.utc_offset || ' seconds')"
        f" || ' ' || coalesce(nullif(z.abbreviation, ''), 'UTC' || z.offset_text)"
        f" FROM zone_offsets z"
        f" WHERE z.zone = {zone} AND z.starts_at <= {utc}"
        f" ORDER BY z.starts_at DESC LIMIT 1)"
    )


def _local_today(zone: str, now: str) -> str:
    """SQL for today's date (``YYYY-MM-DD``) in ``zone`` at the UTC text ``now``."""
    return (
        f"(SELECT strftime('%Y-%m-%d', {now}, z.utc_offset || ' seconds') FROM zone_offsets z"
        f" WHERE z.zone = {zone} AND z.starts_at <= {now}"
        f" ORDER BY z.starts_at DESC LIMIT 1)"
    )
