"""How complete is the archive? Blind windows, the share of time covered per day, day logs.

Researchers must be able to say how complete the archive is before citing it. Read from the
``polls`` table of the live daemon (``polls.kind`` NULL or ``live`` where that column exists:
ingests, backfills and imports did not watch the feed as it happened):

- **Blind windows**: the archive saw a feed through its *seen* polls: complete ones
  (``new``, ``unchanged``, ``not_modified``) and ``partial`` ones (rows kept, the list maybe
  incomplete). When two seen polls are further apart than the feed's interval allows
  (:func:`allowed_gap`: 1.5 x the interval, at least the interval + 10 s, for the daemon's
  jitter and lateness), the archive was blind in between: a call that came and went in that
  window may be missing. A window runs from the last seen poll to the next one (``ends_at``
  NULL: still blind now), and counts the polls that failed inside it and their error kinds.
  Polls before a feed's first seen poll count too (the first polls failed).
- **Incomplete windows**: runs of ``partial`` polls, from the first to the next complete poll:
  the archive saw the feed, but maybe not all of it.
- **Days** (the feed's local days, from its first poll to today): the share of the day's
  observed time (from the first poll, up to now) outside blind windows, the polls, failed and
  partial polls of the day, and for day-log feeds whether the day's log was recorded complete
  (``day_logs``; a day-log feed is a non-snapshot feed with at least one ``day_logs`` row).

The same SQL backs the ``coverage`` and ``coverage_days`` views (installed by migration 6, for
Datasette) and :func:`coverage` (for ``dispatchwatch coverage``), which runs it on a read-only
connection, so the command and the views always agree and the command never writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import DispatchwatchError
from .publish.zones import _local

COMPLETE_OUTCOMES = ("new", "unchanged", "not_modified")
SEEN_OUTCOMES = (*COMPLETE_OUTCOMES, "partial")
#: SQL of the longest gap between seen polls that is not a blind window, in seconds.
ALLOWED_GAP_SQL = "max(f.interval_seconds * 1.5, f.interval_seconds + 10)"
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


class CoverageError(DispatchwatchError):
    kind = "coverage"


def allowed_gap(interval_seconds: float) -> float:
    """The longest gap between two seen polls of a feed polled every ``interval_seconds``
    that is not a blind window, in seconds (:data:`ALLOWED_GAP_SQL` in Python)."""
    return max(interval_seconds * 1.5, interval_seconds + 10)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info([{table}])")}


def _live_polls(conn: sqlite3.Connection, feed: str | None = None) -> str:
    """SQL of the polls the daemon made while watching (all polls before ``polls.kind``),
    of one ``feed`` (a slug: lower-case letters, digits, - and _) or all."""
    where = ["1"]
    if "kind" in _columns(conn, "polls"):
        where.append("(kind IS NULL OR kind = 'live')")
    if feed is not None:
        where.append("feed = '{}'".format(feed.replace("'", "''")))
    return (
        f"SELECT id, feed, started_at, outcome, error_kind FROM polls WHERE {' AND '.join(where)}"
    )


def _seen_list() -> str:
    return ", ".join(f"'{outcome}'" for outcome in SEEN_OUTCOMES)


def _errors(where: str, outcome: str) -> str:
    """SQL: ``timeout`` when one kind, else ``timeout (4), connection (2)``, most first."""
    return f"""(SELECT CASE WHEN count(*) = 1 THEN max(k)
                ELSE group_concat(k || ' (' || n || ')', ', ') END
         FROM (SELECT coalesce(p.error_kind, 'unknown') AS k, count(*) AS n FROM live p
               WHERE p.outcome = '{outcome}' AND {where} GROUP BY k ORDER BY n DESC, k))"""


def _clock(local: str) -> str:
    """SQL: ``HH:MM:SS`` of a local ISO time (``2024-04-01T02:10:03-07:00``)."""
    return f"substr({local}, 12, 8)"


def windows_sql(conn: sqlite3.Connection, feed: str | None = None) -> str:
    """The ``coverage`` view's SELECT for this archive's schema: one row per window."""
    seen = _seen_list()
    in_window = (  # a bounded index range (an OR here would scan to the end of the feed)
        "p.feed = w.feed AND p.started_at >= w.starts_at "
        "AND p.started_at < coalesce(w.ends_at, '9999')"
    )
    starts_local = _local("w.starts_at", "f.timezone")
    ends_local = _local("w.ends_at", "f.timezone")
    return f"""
WITH live AS NOT MATERIALIZED ({_live_polls(conn, feed)}),
seen AS MATERIALIZED (  -- one ordered pass over the polls index
  SELECT feed, id, started_at, outcome,
    lag(started_at) OVER w AS previous,
    sum(outcome != 'partial') OVER w AS complete_so_far  -- a run of partial polls shares it
  FROM live WHERE outcome IN ({seen})
  WINDOW w AS (PARTITION BY feed ORDER BY started_at, id ROWS UNBOUNDED PRECEDING)
),
spans AS (
  SELECT p.feed, p.first_poll, s.first_seen, s.last_seen
  FROM (SELECT feed, min(started_at) AS first_poll FROM live GROUP BY feed) p
  LEFT JOIN (SELECT feed, min(started_at) AS first_seen, max(started_at) AS last_seen
             FROM seen GROUP BY feed) s ON s.feed = p.feed
),
runs AS (  -- runs of partial polls, each ended by the next complete poll (if any yet)
  SELECT r.feed, r.starts_at, c.started_at AS ends_at FROM (
    SELECT feed, complete_so_far, min(started_at) AS starts_at FROM seen
    WHERE outcome = 'partial' GROUP BY feed, complete_so_far
  ) r LEFT JOIN seen c ON c.feed = r.feed AND c.complete_so_far = r.complete_so_far + 1
    AND c.outcome != 'partial'
),
windows AS (
  SELECT feed, 'blind' AS kind, previous AS starts_at, started_at AS ends_at FROM seen
  WHERE previous IS NOT NULL
  UNION ALL  -- the first polls failed
  SELECT feed, 'blind', first_poll, first_seen FROM spans WHERE first_seen > first_poll
  UNION ALL  -- nothing seen since
  SELECT feed, 'blind', coalesce(last_seen, first_poll), NULL FROM spans
  UNION ALL
  SELECT feed, 'incomplete', starts_at, ends_at FROM runs
),
kept AS (  -- only the gaps longer than the feed allows: the rest is measured no further
  SELECT w.*, f.timezone AS zone, {ALLOWED_GAP_SQL} AS allowed_gap,
    (julianday(coalesce(w.ends_at, {_NOW})) - julianday(w.starts_at)) * 86400 AS seconds
  FROM windows w JOIN feeds f ON f.slug = w.feed
  WHERE w.kind = 'incomplete'
    OR (julianday(coalesce(w.ends_at, {_NOW})) - julianday(w.starts_at)) * 86400
       > {ALLOWED_GAP_SQL}
),
measured AS (
  SELECT w.*, {starts_local} AS starts_local, {ends_local} AS ends_local,
    (SELECT count(*) FROM live p WHERE {in_window} AND p.outcome = 'error') AS failed_polls,
    {_errors(in_window, "error")} AS errors,
    (SELECT count(*) FROM live p WHERE {in_window} AND p.outcome = 'partial') AS partial_polls,
    {_errors(in_window, "partial")} AS partial_reasons
  FROM kept w JOIN feeds f ON f.slug = w.feed
)
SELECT feed, kind, starts_at, ends_at, starts_local, ends_local,
  round(seconds / 60.0, 2) AS minutes, failed_polls, errors, partial_polls, partial_reasons,
  CASE WHEN substr(starts_local, 1, 10) = substr(coalesce(ends_local, ''), 1, 10)
    THEN {_clock("starts_local")} ELSE replace(substr(starts_local, 1, 19), 'T', ' ') END
  || '-' || CASE WHEN ends_at IS NULL THEN 'now'
    WHEN substr(starts_local, 1, 10) = substr(ends_local, 1, 10) THEN {_clock("ends_local")}
    ELSE replace(substr(ends_local, 1, 19), 'T', ' ') END
  || ' local, ' || CASE kind
    WHEN 'blind' THEN CASE WHEN failed_polls = 0 THEN 'no polls'
      ELSE failed_polls || CASE failed_polls WHEN 1 THEN ' poll' ELSE ' polls' END
        || ' failed: ' || errors END
    ELSE partial_polls || CASE partial_polls WHEN 1 THEN ' poll' ELSE ' polls' END
      || ' partial (seen, maybe incomplete): ' || partial_reasons END AS description,
  zone, round(allowed_gap, 3) AS allowed_gap_seconds
FROM measured
"""


def _offset_at(utc: str) -> str:
    """SQL: the UTC offset (seconds) of zone ``d.zone`` at the UTC text ``utc`` (0 for a zone
    missing from zone_offsets)."""
    return (
        f"coalesce((SELECT z.utc_offset FROM zone_offsets z WHERE z.zone = d.zone"
        f" AND z.starts_at <= {utc} ORDER BY z.starts_at DESC LIMIT 1), 0)"
    )


def _utc_of_midnight(day: str, guess: str) -> str:
    """SQL: UTC text (ms) of local midnight starting ``day``, given the offset ``guess``."""
    return f"strftime('%Y-%m-%dT%H:%M:%fZ', {day}, (-{guess}) || ' seconds')"


def days_sql(conn: sqlite3.Connection, feed: str | None = None) -> str:
    """The ``coverage_days`` view's SELECT for this archive's schema: one row per feed and
    local day, from the day of its first poll to today."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    has_day_logs = "day_logs" in tables
    if has_day_logs:
        completed = (
            "(SELECT dl.completed_at FROM day_logs dl WHERE dl.feed = b.feed AND dl.day = b.day)"
        )
        day_log_feed = (
            "(f.snapshot = 0 AND EXISTS (SELECT 1 FROM day_logs dl WHERE dl.feed = b.feed))"
        )
    else:
        completed, day_log_feed = "NULL", "0"
    in_day = "p.feed = b.feed AND p.started_at >= b.day_start AND p.started_at < b.day_end"
    first_local = _local("s.first_poll", "f.timezone")
    now_local = _local(_NOW, "f.timezone")
    return f"""
WITH RECURSIVE live AS NOT MATERIALIZED ({_live_polls(conn, feed)}),
blind AS MATERIALIZED (
  SELECT feed, starts_at, ends_at, substr(starts_local, 1, 10) AS start_day,
    substr(ends_local, 1, 10) AS end_day
  FROM coverage WHERE kind = 'blind'
),
blind_within AS MATERIALIZED (  -- windows inside one local day, summed per day (most of them)
  SELECT feed, start_day AS day,
    total((julianday(ends_at) - julianday(starts_at)) * 86400) AS seconds
  FROM blind WHERE ends_at IS NOT NULL AND start_day = end_day GROUP BY feed, start_day
),
blind_across AS MATERIALIZED (  -- the few across days, or still open: clipped to each day
  SELECT feed, starts_at, ends_at FROM blind
  WHERE ends_at IS NULL OR start_day IS NOT end_day
),
spans AS (SELECT feed, min(started_at) AS first_poll FROM live GROUP BY feed),
days(feed, zone, first_poll, day, last_day) AS (
  SELECT s.feed, f.timezone, s.first_poll,
    coalesce(substr({first_local}, 1, 10), substr(s.first_poll, 1, 10)),
    coalesce(substr({now_local}, 1, 10), date('now'))
  FROM spans s JOIN feeds f ON f.slug = s.feed
  UNION ALL
  SELECT feed, zone, first_poll, date(day, '+1 day'), last_day FROM days WHERE day < last_day
),
guessed AS (
  SELECT d.*, {_offset_at("d.day || 'T00:00:00Z'")} AS start_guess,
    {_offset_at("date(d.day, '+1 day') || 'T00:00:00Z'")} AS end_guess
  FROM days d
),
bounds AS (
  SELECT d.feed, d.zone, d.first_poll, d.day, d.last_day,
    {_utc_of_midnight("d.day", _offset_at(_utc_of_midnight("d.day", "d.start_guess")))}
      AS day_start,
    {
        _utc_of_midnight(
            "date(d.day, '+1 day')",
            _offset_at(_utc_of_midnight("date(d.day, '+1 day')", "d.end_guess")),
        )
    } AS day_end
  FROM guessed d
),
measured AS (
  SELECT b.*,
    max(0, (min(julianday(b.day_end), julianday({_NOW}))
            - max(julianday(b.day_start), julianday(b.first_poll))) * 86400) AS observed,
    (SELECT total(max(0, (min(julianday(coalesce(w.ends_at, {_NOW})), julianday(b.day_end))
                          - max(julianday(w.starts_at), julianday(b.day_start))) * 86400))
     FROM blind_across w WHERE w.feed = b.feed
       AND w.starts_at < b.day_end AND (w.ends_at IS NULL OR w.ends_at > b.day_start))
    + coalesce((SELECT seconds FROM blind_within x WHERE x.feed = b.feed AND x.day = b.day), 0)
      AS blind,
    (SELECT count(*) FROM live p WHERE {in_day}) AS polls,
    (SELECT count(*) FROM live p WHERE {in_day} AND p.outcome = 'error') AS failed_polls,
    (SELECT count(*) FROM live p WHERE {in_day} AND p.outcome = 'partial') AS partial_polls,
    {day_log_feed} AS day_log_feed, {completed} AS day_log_completed_at
  FROM bounds b JOIN feeds f ON f.slug = b.feed
)
SELECT feed, day, day_start, day_end, polls, failed_polls, partial_polls,
  round(observed / 60.0, 2) AS observed_minutes, round(blind / 60.0, 2) AS blind_minutes,
  CASE WHEN observed > 0 THEN round(max(0, 1 - blind / observed), 4) END AS covered,
  CASE WHEN NOT day_log_feed THEN NULL
    WHEN day_log_completed_at IS NOT NULL THEN 'complete'
    WHEN day = last_day THEN 'in progress' ELSE 'never completed' END AS day_log,
  day_log_completed_at, zone
FROM measured
"""


#: Titles, descriptions and column descriptions of the views, for Datasette metadata.
VIEW_DOCS: dict[str, dict[str, Any]] = {
    "coverage": {
        "title": "Coverage: blind windows",
        "description": "Per feed, the windows in which the archive was blind (no successful "
        "or partial poll for longer than 1.5 x the feed's interval, at least interval + 10 s) "
        "and the incomplete ones (partial polls: seen, maybe not all of it). Calls that came "
        "and went inside a blind window may be missing.",
        "columns": {
            "feed": "Feed slug",
            "kind": "blind (nothing seen) or incomplete (partial polls only)",
            "starts_at": "the last poll that saw the feed before the window, UTC",
            "ends_at": "the next poll that saw it, UTC (empty: still blind now)",
            "starts_local": "starts_at in the feed's local time",
            "ends_local": "ends_at in the feed's local time",
            "minutes": "the window's length, up to now while it lasts",
            "failed_polls": "polls that failed inside the window",
            "errors": "their error kinds, most frequent first",
            "partial_polls": "partial polls inside the window",
            "partial_reasons": "why they were partial",
            "description": "the window in words, local time",
            "zone": "the feed's IANA time zone",
            "allowed_gap_seconds": "the longest gap between seen polls that is not a window",
        },
    },
    "coverage_days": {
        "title": "Coverage per day",
        "description": "Per feed and local day: the share of the observed time (from the "
        "feed's first poll, up to now) outside blind windows, the day's polls, and whether "
        "the day's log was recorded complete (day-log feeds).",
        "columns": {
            "feed": "Feed slug",
            "day": "the local date",
            "day_start": "local midnight, UTC",
            "day_end": "the next local midnight, UTC",
            "polls": "the daemon's polls that day",
            "failed_polls": "of which failed",
            "partial_polls": "of which partial (seen, maybe incomplete)",
            "covered": "share of observed_minutes outside blind windows, 0 to 1",
            "observed_minutes": "minutes of the day from the feed's first poll up to now",
            "blind_minutes": "minutes of the day inside blind windows",
            "day_log": "complete, never completed, in progress (today), or empty: not a "
            "day-log feed",
            "day_log_completed_at": "when the day's log was recorded complete, UTC",
            "zone": "the feed's IANA time zone",
        },
    },
}


def install_coverage_views(conn: sqlite3.Connection) -> None:
    """(Re)create the ``coverage`` and ``coverage_days`` views for this archive's schema.
    Called by migration 6; the caller owns the transaction."""
    conn.execute("DROP VIEW IF EXISTS coverage_days")
    conn.execute("DROP VIEW IF EXISTS coverage")
    conn.execute(f"CREATE VIEW coverage AS {windows_sql(conn).strip()}")
    conn.execute(f"CREATE VIEW coverage_days AS {days_sql(conn).strip()}")


# --- the library function -------------------------------------------------------------------


@dataclass(slots=True)
class Window:
    """A blind (no seen poll) or incomplete (partial polls) window of one feed.

    Times are UTC text (``starts_at``, ``ends_at``: None while it lasts) and local ISO 8601
    with the offset (``starts_local``, ``ends_local``); ``minutes`` its length up to now.
    """

    feed: str
    kind: str
    starts_at: str
    ends_at: str | None
    starts_local: str | None
    ends_local: str | None
    minutes: float
    failed_polls: int
    errors: str | None
    partial_polls: int
    partial_reasons: str | None
    description: str


@dataclass(slots=True)
class Day:
    """One local day of one feed: ``covered`` is the share (0-1) of its observed time outside
    blind windows; ``day_log`` ``complete``/``never completed``/``in progress`` (None: not
    a day-log feed)."""

    feed: str
    day: str
    polls: int
    failed_polls: int
    partial_polls: int
    observed_minutes: float
    blind_minutes: float
    covered: float | None
    day_log: str | None
    day_log_completed_at: str | None


@dataclass(slots=True)
class FeedCoverage:
    feed: str
    timezone: str
    interval_seconds: float
    allowed_gap_seconds: float
    windows: list[Window] = field(default_factory=list)
    days: list[Day] = field(default_factory=list)

    @property
    def never_completed(self) -> list[str]:
        """Local days whose day log was never recorded complete."""
        return [day.day for day in self.days if day.day_log == "never completed"]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "never_completed": self.never_completed}


def _connect_readonly(path: Path) -> sqlite3.Connection:
    from .database import connect_read_only

    # One line for a missing or foreign file; works for a user who may only read it.
    conn = connect_read_only(path)
    conn.row_factory = sqlite3.Row
    return conn


def _since_utc(since: str, zone: str) -> str:
    """``since`` (a local date ``YYYY-MM-DD`` of the feed, or a UTC time) as UTC text."""
    if len(since) == 10:
        try:
            zoneinfo = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            zoneinfo = ZoneInfo("UTC")
        moment = datetime.combine(date.fromisoformat(since), time(), tzinfo=zoneinfo)
    else:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    from .archive import format_time

    return format_time(moment)


def coverage(
    archive: str | Path, feed: str | None = None, *, since: str | None = None
) -> list[FeedCoverage]:
    """Per feed (or only ``feed``): its blind and incomplete windows, oldest first, and its
    local days. ``since``: a date (``YYYY-MM-DD``, the feed's local day) or a UTC time; keeps
    the windows that end after it and the days from it on. Reads only (the windows are
    computed once into a temporary table of this connection).

    Raises :class:`CoverageError` (no archive, unknown feed, a bad ``since``).
    """
    path = Path(archive)
    conn = _connect_readonly(path)
    try:
        try:
            feeds = conn.execute(
                "SELECT slug, timezone, interval_seconds FROM feeds ORDER BY slug"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise CoverageError(f"{path} is not a dispatchwatch archive ({exc})") from None
        if feed is not None:
            known = [row["slug"] for row in feeds]
            if feed not in known:
                raise CoverageError(
                    f"no feed {feed} in {path} (feeds: {', '.join(known) or 'none'})"
                )
            feeds = [row for row in feeds if row["slug"] == feed]
        bounds = {row["slug"]: _since_bound(since, row["timezone"]) for row in feeds}
        # The SQL of the views, run here: no view needed, nothing written to the archive.
        # temp.coverage shadows the view for the days query.
        conn.execute(f"CREATE TEMP TABLE coverage AS {windows_sql(conn, feed)}")
        results = {
            row["slug"]: FeedCoverage(
                row["slug"],
                row["timezone"],
                row["interval_seconds"],
                allowed_gap(row["interval_seconds"]),
            )
            for row in feeds
        }
        for w in conn.execute("SELECT * FROM temp.coverage ORDER BY feed, starts_at, kind"):
            item = results.get(w["feed"])
            if item is None or (w["ends_at"] is not None and _after(bounds[item.feed], w)):
                continue
            item.windows.append(Window(**{k: w[k] for k in Window.__slots__}))
        days = f"WITH coverage_days AS ({days_sql(conn, feed)}) SELECT * FROM coverage_days"
        for d in conn.execute(days + " WHERE day >= ? ORDER BY feed, day", [(since or "")[:10]]):
            if d["feed"] in results:
                results[d["feed"]].days.append(Day(**{k: d[k] for k in Day.__slots__}))
        return list(results.values())
    finally:
        conn.close()


def _since_bound(since: str | None, zone: str | None) -> datetime | None:
    if not since:
        return None
    try:
        return _parse_time(_since_utc(since, zone or "UTC"))
    except ValueError:
        raise CoverageError(
            f"not a date or time: {since!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
        ) from None


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _after(bound: datetime | None, window: sqlite3.Row) -> bool:
    """Whether ``window`` ended at or before ``bound`` (so ``since`` leaves it out)."""
    return bound is not None and _parse_time(window["ends_at"]) <= bound
