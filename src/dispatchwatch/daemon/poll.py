"""One poll of one feed: fetch, parse, archive (through the door), back off, report.

A poll never raises: fetch errors, parse errors and bugs alike become an ``error`` row in
``polls`` (with its kind) and a log line, and the feed carries on. Each poll has a hard
deadline (:func:`~.settings.poll_deadline`), passed to the fetcher, so a hung server cannot
wedge a feed.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, cast

from ..archive import Archive, PollSummary, utc_now
from ..errors import FetchError
from ..pipeline import run_poll
from ..status import format_time
from .backoff import after_poll
from .door import Abandoned, GuardedArchive
from .feeds import FeedState
from .report import PollReport
from .settings import poll_deadline

if TYPE_CHECKING:
    from ..config import Feed
    from ..fetch import FetchResult
    from ..scraper import Request
    from .lifecycle import Daemon

log = logging.getLogger("dispatchwatch.daemon")


def poll_feed(daemon: Daemon, feed: Feed, scheduled_at: datetime | None) -> PollReport | None:
    """Poll ``feed`` once for ``daemon`` (already entered at the door) and record it; see
    :meth:`Daemon.poll`."""
    state = daemon.states.get(feed.slug) or FeedState(feed, current_interval=feed.interval)
    started_at = utc_now()
    clock = time.monotonic()

    def elapsed_ms() -> float:
        return round((time.monotonic() - clock) * 1000, 3)

    summary: PollSummary
    http_status: int | None = None
    retry_after: float | None = None
    deadline = clock + poll_deadline(feed)
    failures: list[FetchError] = []
    statuses: list[int] = []

    held = False  # a parse slot (:mod:`.slots`): taken once a body arrives

    def fetch(request: Request, etag: str | None, last_modified: str | None) -> FetchResult:
        nonlocal held
        if held:  # the next request of a paged poll: no slot while waiting on the network
            daemon.slots.release()
            held = False
        try:
            result = daemon.fetcher.fetch(
                feed, request=request, etag=etag, last_modified=last_modified, deadline=deadline
            )
        except FetchError as exc:
            failures.append(exc)
            raise
        statuses.append(result.status)
        if not result.not_modified:
            daemon.slots.acquire()
            held = True
        return result

    try:
        # Planning, fetching and parsing happen outside the archive; only the reads of
        # the feed's last poll and state and the one write go through the door.
        try:
            summary = run_poll(
                cast("Archive", GuardedArchive(daemon.archive, daemon.door.use)),
                feed,
                fetch,
                started_at=started_at,
                offload=partial(daemon.parsers.parse, deadline=deadline),
            )
        finally:
            if held:
                daemon.slots.release()
                held = False
        if statuses:
            http_status = statuses[0]
        if summary.outcome == "error" and failures:
            exc = failures[-1]
            http_status = exc.status
            # The fetcher gave up on a 429/503; its last attempt knows the Retry-After.
            retry_after = getattr(exc, "retry_after", None) or getattr(
                exc.__cause__, "retry_after", None
            )
    except Abandoned:
        log.info("%s: poll abandoned, the daemon is stopping", feed.slug)
        return None
    except Exception as exc:
        # A bug (ours or a plugin's): record it, log the traceback, keep polling.
        log.exception("%s: unexpected error in poll", feed.slug)
        try:
            summary = daemon.door.use(
                partial(
                    daemon.archive.record_error, feed.slug, error_kind="internal",
                    error=f"{type(exc).__name__}: {exc}", started_at=started_at,
                    duration_ms=elapsed_ms(), source=feed.url,
                )
            )  # fmt: skip
        except Abandoned:
            return None
        except Exception:
            log.exception("%s: could not record the failed poll", feed.slug)
            return None
    next_in = after_poll(daemon, state, summary, retry_after)
    report = PollReport(
        feed=feed.slug,
        poll_id=summary.poll_id,
        outcome=summary.outcome,
        started_at=started_at,
        duration_ms=elapsed_ms(),
        scheduled_at=format_time(scheduled_at) if scheduled_at else None,
        incidents=summary.incidents,
        new=summary.new,
        changed=summary.changed,
        gone=summary.gone,
        returned=summary.returned,
        http_status=http_status,
        error_kind=summary.error_kind,
        error=summary.error,
        consecutive_failures=state.failures,
        next_in=next_in,
    )
    level = logging.WARNING if summary.outcome == "error" else logging.INFO
    log.log(level, "%s", report.describe())
    if daemon.on_poll is not None:
        try:
            daemon.on_poll(report)
        except Exception:
            log.exception("on_poll callback failed")
    return report
