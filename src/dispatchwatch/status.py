"""Is the archive being fed? Per-feed health read from the ``polls`` table.

Used by ``dispatchwatch status`` (for people, cron and monitors) and by the daemon at start-up
(:func:`failure_streaks`, so a restart does not forget a feed's backoff).

Reads only: the archive is opened read-only, so a status check can never block or disturb the
daemon that writes it.

Health is judged by live polls only (``polls.kind`` NULL or ``live``: the daemon's): an import,
a backfill, an ingest of saved pages or a reparse says nothing about whether the feed is being
polled, so it neither makes a feed look alive nor counts as one of its failures.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import exitcodes
from .archive import format_time

#: A feed is stale when its last success is older than max(STALE_INTERVALS x interval,
#: STALE_MINIMUM), unless a threshold is given.
STALE_INTERVALS = 3
STALE_MINIMUM = 15 * 60.0

EXIT_OK = exitcodes.OK
#: Some checked feed is stale or has never succeeded (not 2: that is click's usage error).
EXIT_UNHEALTHY = exitcodes.UNHEALTHY

#: :attr:`FeedStatus.state` values; the first three are healthy.
OK, NOT_CONFIGURED, HISTORY_ONLY = "ok", "not configured", "history only"
STALE, NEVER_SUCCEEDED = "stale", "never succeeded"

_OK_OUTCOMES = ("new", "unchanged", "not_modified")
#: The polls of the daemon (``kind`` is NULL in archives written before it was recorded).
LIVE_POLLS = "(kind IS NULL OR kind = 'live')"


def live_only(conn: sqlite3.Connection) -> str:
    """``" AND <live polls>"`` for a ``WHERE`` on ``polls``; ``""`` for an archive whose
    polls have no ``kind`` yet (every poll was then a live one or an ingest)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(polls)")}
    return f" AND {LIVE_POLLS}" if "kind" in columns else ""


def parse_time(text: str | None) -> datetime | None:
    """An archive timestamp (``2024-04-01T01:33:28.123Z``) as an aware datetime."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(slots=True)
class FeedStatus:
    feed: str
    interval_seconds: float | None
    configured: bool
    last_poll_at: str | None
    last_outcome: str | None
    last_success_at: str | None
    last_error_at: str | None
    last_error_kind: str | None
    last_error: str | None
    consecutive_failures: int
    polls_24h: int
    errors_24h: int
    #: Incidents first archived in the last 24 hours (the ``new`` of the polls).
    new_incidents_24h: int
    incidents_total: int
    stale_after_seconds: float
    #: Seconds since the last success (or since the feed was added, if it never succeeded).
    silent_for_seconds: float | None
    stale: bool
    #: ``ok``, ``stale``, ``never succeeded`` (no successful live poll at all, whatever its
    #: age), ``not configured`` (in the archive, not checked) or ``history only`` (no config
    #: given, and the feed was only ever imported or backfilled: nothing polls it).
    state: str = OK

    @property
    def healthy(self) -> bool:
        return self.state in (OK, NOT_CONFIGURED, HISTORY_ONLY)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def connect_read_only(path: str | Path) -> sqlite3.Connection:
    """The archive, read-only (see :func:`database.connect_read_only`)."""
    from .database import connect_read_only as connect

    return connect(path)


def failure_streaks(
    conn: sqlite3.Connection, feeds: Iterable[str] | None = None
) -> dict[str, tuple[int, str | None]]:
    """Per feed: the number of live error polls since its last good live poll, and when the
    last of them started (feeds with no such errors are left out). Backfill or import errors
    are no failure of the live feed, nor does their success end a streak."""
    if feeds is None:
        feeds = [row[0] for row in conn.execute("SELECT slug FROM feeds")]
    live = live_only(conn)
    streaks: dict[str, tuple[int, str | None]] = {}
    for feed in feeds:
        last_good = _last_good(conn, feed, live)
        count, last = conn.execute(
            "SELECT count(*), max(started_at) FROM polls "
            f"WHERE feed = ? AND outcome = 'error' AND id > ?{live}",
            [feed, last_good[0] if last_good else 0],
        ).fetchone()
        if count:
            streaks[feed] = (count, last)
    return streaks


def _last_good(conn: sqlite3.Connection, feed: str, live: str) -> tuple[int, str] | None:
    """``(id, started_at)`` of the feed's last successful live poll, or None.

    One backwards walk of polls(feed, outcome, id) per outcome, stopping at the first live
    poll: cheap after years of polls (a ``max()`` with the kind filter would read them all).
    """
    found = [
        conn.execute(
            f"SELECT id, started_at FROM polls WHERE feed = ? AND outcome = ?{live} "
            "ORDER BY id DESC LIMIT 1",
            [feed, outcome],
        ).fetchone()
        for outcome in _OK_OUTCOMES
    ]
    return max((row for row in found if row), default=None)


def feed_status(
    conn: sqlite3.Connection,
    *,
    intervals: Mapping[str, float] | None = None,
    stale_after: float | None = None,
    now: datetime | None = None,
) -> list[FeedStatus]:
    """The health of every feed in the archive.

    ``intervals`` (slug -> seconds, from config.yaml) limits the staleness check to those
    feeds, which are also listed when they have never been polled; without it every feed in
    the archive is checked with the interval it was registered with, except a feed that was
    only ever imported or backfilled (``history only``). ``stale_after`` overrides the default
    threshold of max(3 x interval, 15 minutes). Every figure but ``incidents_total`` is read
    from live polls only.
    """
    now = now or datetime.now(UTC)
    since = format_time(now - timedelta(hours=24))
    feeds = {
        slug: (interval, added_at)
        for slug, interval, added_at in conn.execute(
            "SELECT slug, interval_seconds, added_at FROM feeds ORDER BY slug"
        )
    }
    slugs = sorted(set(feeds) | set(intervals or ()))
    streaks = failure_streaks(conn, slugs)
    live = live_only(conn)
    statuses = []
    for slug in slugs:
        configured = intervals is None or slug in intervals
        interval = (intervals or {}).get(slug) or feeds.get(slug, (None, None))[0]
        added_at = feeds.get(slug, (None, None))[1]
        last_poll = conn.execute(
            # polls(feed, started_at) walked backwards to the first live poll
            f"SELECT started_at, outcome FROM polls WHERE feed = ?{live} "
            "ORDER BY started_at DESC LIMIT 1",
            [slug],
        ).fetchone()
        last_good = _last_good(conn, slug, live)
        last_ok = last_good[1] if last_good else None
        last_error = conn.execute(
            "SELECT started_at, error_kind, error FROM polls WHERE feed = ? AND outcome = 'error'"
            f"{live} ORDER BY id DESC LIMIT 1",
            [slug],
        ).fetchone() or (None, None, None)
        polls_24h, errors_24h, new_24h = conn.execute(
            "SELECT count(*), coalesce(sum(outcome = 'error'), 0), coalesce(sum(new), 0) "
            f"FROM polls WHERE feed = ? AND started_at >= ?{live}",
            [slug, since],
        ).fetchone()
        total = (
            conn.execute("SELECT count(*) FROM incidents WHERE feed = ?", [slug]).fetchone()[0]
            if _has_table(conn, "incidents")
            else 0
        )
        threshold = stale_after or max(STALE_INTERVALS * (interval or 0), STALE_MINIMUM)
        # Never succeeded: measure from when the feed was added, so a new feed has the same
        # grace as a working one; a configured feed the archive has never heard of is stale
        # (the daemon is not running with this config).
        reference = parse_time(last_ok) or parse_time(added_at)
        silent = (now - reference).total_seconds() if reference else None
        stale = configured and (silent is None or silent > threshold)
        if not configured:
            state = NOT_CONFIGURED
        elif intervals is None and last_poll is None and _has_polls(conn, slug):
            state, stale = HISTORY_ONLY, False
        elif last_ok is None:
            state = NEVER_SUCCEEDED
        else:
            state = STALE if stale else OK
        statuses.append(
            FeedStatus(
                feed=slug,
                interval_seconds=interval,
                configured=configured,
                last_poll_at=last_poll[0] if last_poll else None,
                last_outcome=last_poll[1] if last_poll else None,
                last_success_at=last_ok,
                last_error_at=last_error[0],
                last_error_kind=last_error[1],
                last_error=last_error[2],
                consecutive_failures=streaks.get(slug, (0, None))[0],
                polls_24h=polls_24h,
                errors_24h=errors_24h,
                new_incidents_24h=new_24h,
                incidents_total=total,
                stale_after_seconds=threshold,
                silent_for_seconds=round(silent, 3) if silent is not None else None,
                stale=stale,
                state=state,
            )
        )
    return statuses


def _has_polls(conn: sqlite3.Connection, feed: str) -> bool:
    """Any poll at all (with no live one: only imports, backfills, ingests)."""
    return conn.execute("SELECT 1 FROM polls WHERE feed = ? LIMIT 1", [feed]).fetchone() is not None


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]
        ).fetchone()
        is not None
    )


def archive_status(
    path: str | Path,
    *,
    intervals: Mapping[str, float] | None = None,
    stale_after: float | None = None,
    now: datetime | None = None,
) -> list[FeedStatus]:
    """:func:`feed_status` of the archive at ``path`` (opened read-only)."""
    conn = connect_read_only(path)
    try:
        return feed_status(conn, intervals=intervals, stale_after=stale_after, now=now)
    finally:
        conn.close()


def exit_code(statuses: Iterable[FeedStatus]) -> int:
    """:data:`EXIT_UNHEALTHY` when any checked feed is stale or never succeeded, else
    :data:`EXIT_OK`."""
    return EXIT_OK if all(s.healthy for s in statuses) else EXIT_UNHEALTHY


def human_duration(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h10m``, ``2d4h``: short and unambiguous."""
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s" if secs and minutes < 10 else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def format_table(statuses: list[FeedStatus]) -> list[str]:
    """A plain-text table, one feed per line (no colour: it goes to logs and mail)."""
    headers = [
        "feed",
        "state",
        "last success",
        "fails",
        "polls/24h",
        "errors/24h",
        "new/24h",
        "incidents",
        "last error",
    ]
    rows = [headers]
    for s in statuses:
        if s.state == NEVER_SUCCEEDED:
            state = "NEVER SUCCEEDED"
        elif s.state == STALE:
            state = (
                f"STALE ({human_duration(s.silent_for_seconds)} > "
                f"{human_duration(s.stale_after_seconds)})"
            )
        else:
            state = s.state
        success = (
            f"{s.last_success_at} ({human_duration(s.silent_for_seconds)} ago)"
            if s.last_success_at
            else "never"
        )
        error = "-"
        if s.last_error_at:
            text = (s.last_error or "").replace("\n", " ")
            text = text if len(text) <= 60 else text[:57] + "..."
            error = f"{s.last_error_at} {s.last_error_kind}: {text}"
        rows.append(
            [
                s.feed,
                state,
                success,
                str(s.consecutive_failures),
                str(s.polls_24h),
                str(s.errors_24h),
                str(s.new_incidents_24h),
                str(s.incidents_total),
                error,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
