"""Backfill: archive a feed's past, one local day at a time, through the same plan, fetch,
parse, normalize and archive steps as a live poll.

- Every feed whose scraper can look back takes part: a day log (Seattle Fire's day pages:
  one page per day) or a feed family with a time field (Socrata, ArcGIS: a query of that
  day's range). The scraper's ``plan`` receives the day as ``PlanContext.since``/``until``.
- Each day is one poll (``polls.kind`` = ``backfill``), in its own transaction, so Ctrl-C
  between (or during) days leaves the archive consistent.
- A day archived whole is recorded in ``day_logs``; running the same backfill again skips it,
  so an interrupted backfill continues where it stopped.
- Backfilled polls never mark anything gone and never move a live feed's watermark.
- Requests are paced (``delay`` seconds between days) on top of the fetcher's own
  politeness (one request at a time per host, retries with backoff).
- ``from_web_archive`` instead lists the captures of the feed's URL in the Internet Archive
  (CDX API) and archives each capture, oldest first, as a saved page dated by its capture.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from .archive import Archive, PollSummary
from .config import Feed
from .errors import DispatchwatchError, FetchError
from .fetch import Fetcher, FetchResult
from .pipeline import OlderPageError, process_page, run_poll
from .scraper import Request

#: The Internet Archive's CDX server and the prefix of raw captures (``id_``: the body as
#: captured, without the Wayback toolbar).
CDX_URL = "https://web.archive.org/cdx/search/cdx"
WAYBACK_URL = "https://web.archive.org/web"


class BackfillError(DispatchwatchError):
    """A backfill that cannot run (a feed that cannot look back, a bad range)."""

    kind = "backfill"


@dataclass(slots=True)
class BackfillSummary:
    """What a backfill did: days (or captures) archived, skipped and failed, and totals."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    partial: int = 0
    new: int = 0
    changed: int = 0
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False

    def describe(self) -> str:
        text = (
            f"{self.done} archived, {self.skipped} already complete (skipped), "
            f"{self.partial} partial, {self.failed} failed; {self.new} new incidents, "
            f"{self.changed} changed"
        )
        if self.interrupted:
            text += " (interrupted: run it again to continue)"
        return text


def days_between(since: date, until: date, *, newest_first: bool = False) -> list[date]:
    """Every local date from ``since`` to ``until`` inclusive, in the order asked."""
    if until < since:
        raise BackfillError(f"--until ({until}) is before --since ({since})")
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    return days[::-1] if newest_first else days


def can_look_back(feed: Feed) -> bool:
    """Whether ``feed``'s scraper plans past ranges (a ``plan`` that reads ``since``)."""
    return feed.scraper.plan is not None


def _day_range(day: date, zone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end - timedelta(milliseconds=1)


def backfill(
    archive: Archive,
    feed: Feed,
    fetcher: Fetcher,
    *,
    since: date,
    until: date,
    newest_first: bool = False,
    delay: float = 1.0,
    stop: threading.Event | None = None,
    on_day: Callable[[date, PollSummary | None], None] | None = None,
) -> BackfillSummary:
    """Archive ``feed``'s local days ``since`` .. ``until`` (inclusive), one poll per day,
    skipping days already archived whole. ``delay`` is seconds between days; ``stop``
    (e.g. set by Ctrl-C) ends the run between days. ``on_day(day, summary)`` reports each
    day (summary None: skipped). Raises :class:`BackfillError` for a feed that cannot look
    back."""
    if not can_look_back(feed):
        raise BackfillError(
            f"{feed.slug} cannot look back: its scraper reads only the current list "
            f"(no past days or time ranges); import saved pages with `ingest` instead"
        )
    stop = stop or threading.Event()
    archive.register_feed(feed.record())
    done_days = archive.completed_days(feed.slug)
    summary = BackfillSummary()
    first = True
    for day in days_between(since, until, newest_first=newest_first):
        if stop.is_set():
            summary.interrupted = True
            break
        if day.isoformat() in done_days:
            summary.skipped += 1
            if on_day is not None:
                on_day(day, None)
            continue
        if not first and delay > 0 and stop.wait(delay):
            summary.interrupted = True
            break
        first = False
        start, end = _day_range(day, feed.zone)

        def fetch(request: Request, etag: str | None, last_modified: str | None) -> FetchResult:
            return fetcher.fetch(feed, request=request)

        result = run_poll(
            archive, feed, fetch, kind="backfill", since=start, until=end, now=end,
        )  # fmt: skip
        _count(summary, result)
        if result.outcome in ("new", "unchanged"):
            # An upsert: a day the poll itself already recorded (day logs) stays as it is.
            archive.complete_day(feed.slug, day.isoformat(), result.poll_id)
        if on_day is not None:
            on_day(day, result)
    return summary


def _count(summary: BackfillSummary, result: PollSummary) -> None:
    if result.outcome == "error":
        summary.failed += 1
        summary.errors.append(result.error or result.outcome)
    elif result.outcome == "partial":
        summary.partial += 1
        summary.errors.append(result.error or result.outcome)
    else:
        summary.done += 1
    summary.new += result.new
    summary.changed += result.changed


# --- the Internet Archive -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capture:
    """One capture of a URL in a web archive: its time (UTC) and where its raw body is."""

    timestamp: str  # 14 digits, UTC: 20240331183018
    original: str
    digest: str

    @property
    def captured_at(self) -> datetime:
        return datetime.strptime(self.timestamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)

    def raw_url(self, wayback: str = WAYBACK_URL) -> str:
        return f"{wayback.rstrip('/')}/{self.timestamp}id_/{self.original}"


def list_captures(
    fetcher: Fetcher,
    feed: Feed,
    *,
    since: date | None = None,
    until: date | None = None,
    cdx_url: str = CDX_URL,
) -> list[Capture]:
    """Captures of ``feed.url`` (HTTP 200 only, one per distinct body) from the CDX API,
    oldest first. Raises :class:`~dispatchwatch.errors.FetchError` or
    :class:`BackfillError` (an answer that is not a CDX JSON table)."""
    params = {"url": feed.url, "output": "json", "filter": "statuscode:200", "collapse": "digest"}
    if since is not None:
        params["from"] = since.strftime("%Y%m%d")
    if until is not None:
        params["to"] = until.strftime("%Y%m%d") + "235959"
    request = Request(f"{cdx_url}?{urlencode(params)}", label="web archive index")
    body = fetcher.fetch(feed, request=request).body
    try:
        table = json.loads(body or b"[]")
        header, rows = (table[0], table[1:]) if table else ([], [])
        at = {name: header.index(name) for name in ("timestamp", "original", "digest")}
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise BackfillError(f"the web archive index is not a CDX JSON table ({exc})") from None
    captures = [
        Capture(row[at["timestamp"]], row[at["original"]], row[at["digest"]]) for row in rows
    ]
    return sorted(captures, key=lambda c: c.timestamp)


def backfill_from_web_archive(
    archive: Archive,
    feed: Feed,
    fetcher: Fetcher,
    *,
    since: date | None = None,
    until: date | None = None,
    delay: float = 1.0,
    cdx_url: str = CDX_URL,
    wayback_url: str = WAYBACK_URL,
    stop: threading.Event | None = None,
    on_capture: Callable[[Capture, PollSummary | None], None] | None = None,
) -> BackfillSummary:
    """Archive every capture of ``feed``'s page in a web archive, oldest first, as saved
    pages dated by their capture (or the page's own "as of" time). Captures the archive
    already holds (same bytes) are skipped; captures older than what the archive already
    holds are added as history only (nothing rewritten). Like every backfill, captures never
    mark anything gone: they are hours or days apart, so a call missing from one says
    nothing about when it left the list."""
    stop = stop or threading.Event()
    archive.register_feed(feed.record())
    summary = BackfillSummary()
    seen = archive.parsed_sha256s(feed.slug)
    for index, capture in enumerate(
        list_captures(fetcher, feed, since=since, until=until, cdx_url=cdx_url)
    ):
        if stop.is_set() or (index and delay > 0 and stop.wait(delay)):
            summary.interrupted = True
            break
        request = Request(capture.raw_url(wayback_url), label=f"capture {capture.timestamp}")
        try:
            result = fetcher.fetch(feed, request=request)
        except FetchError as exc:
            summary.failed += 1
            summary.errors.append(f"capture {capture.timestamp}: {exc}")
            continue
        if hashlib.sha256(result.body).hexdigest() in seen:
            summary.skipped += 1
            if on_capture is not None:
                on_capture(capture, None)
            continue
        captured = capture.captured_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        try:
            poll = process_page(
                archive, feed, result.body, url=feed.url, headers=result.headers,
                fetched_at=captured, started_at=captured, source=request.url,
                kind="backfill", older="history", snapshot=False,
            )  # fmt: skip
        except OlderPageError:  # pragma: no cover - older="history" never raises it
            continue
        if poll.outcome != "error":
            seen.add(hashlib.sha256(result.body).hexdigest())
        _count(summary, poll)
        if on_capture is not None:
            on_capture(capture, poll)
    return summary
