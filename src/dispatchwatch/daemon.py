"""The daemon: poll every enabled feed on its interval, forever, and record every poll.

One APScheduler interval job per feed runs :meth:`Daemon.poll` on a thread pool:

- ``max_instances=1``: never two polls of one feed at once; ``coalesce=True``: runs missed
  while the machine slept or was busy fold into one, which runs however late
  (``misfire_grace_time=None``), so an overloaded machine polls every feed less often rather
  than starving some of them.
- first runs are spread over a short window so a thousand feeds do not all fire at t=0, and
  each run gets a random jitter of up to 10% of the interval.
- each poll has a hard deadline (its interval, at least 1 s, at most twice the feed's
  connect + read timeouts), passed to the fetcher, so a hung server cannot wedge a feed.
- a failing feed backs off: interval x 2^failures, up to a cap (16 x interval, at most 1 h,
  never below the interval), back to normal on the first success. The failure streak is
  read from ``polls`` at start-up, so a restart does not forget it.

A poll never raises: fetch errors, parse errors and bugs alike become an ``error`` row in
``polls`` (with its kind) and a log line, and the feed carries on.

Stopping (:meth:`Daemon.stop`) stops scheduling, waits for in-flight polls up to a deadline and
then abandons them: each poll writes in one transaction, so an abandoned poll leaves nothing
behind, and after ``stop`` returns no poll starts to use the archive again. A poll uses the
archive only to read what it needs and to write its transaction, not while it fetches or
parses, and a second Ctrl-C (``abort``) cuts every wait short.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor as _Pool
from concurrent.futures import wait as _wait_futures
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from . import exitcodes
from .archive import Archive, PollSummary, utc_now
from .config import Config, Feed
from .errors import DispatchwatchError, FetchError
from .pipeline import run_poll
from .runlock import RunLock
from .scraper import Request
from .status import failure_streaks, format_time, human_duration, parse_time

if TYPE_CHECKING:
    from pathlib import Path

    from .fetch import FetchResult

log = logging.getLogger("dispatchwatch.daemon")

T = TypeVar("T")

#: Fraction of the interval added at random to every run (spreads feeds apart over time).
JITTER = 0.1
#: Backoff cap: BACKOFF_INTERVALS x interval, at most BACKOFF_MAX_SECONDS.
BACKOFF_INTERVALS = 16
BACKOFF_MAX_SECONDS = 3600.0
#: First runs: the first feed after FIRST_DELAY, the others spread START_STEP apart (but
#: within one interval), so start-up load looks like the steady state.
FIRST_DELAY = 0.2
START_STEP = 0.02
#: How long a poll may take at least, whatever its interval.
MIN_DEADLINE = 1.0
#: How long :meth:`Daemon.stop` waits for in-flight polls by default.
STOP_TIMEOUT = 10.0
#: How much longer :meth:`Daemon.stop` waits for a poll already writing (one transaction).
WRITE_GRACE = 2.0
#: How often runs skipped for being behind schedule are summed up in the log.
SKIP_REPORT_EVERY = 60.0
#: How often polls running past their deadline are looked for, and how far past it they
#: may run before they are reported.
OVERDUE_CHECK_EVERY = 1.0
OVERDUE_GRACE = 1.0
#: How often the raw page store is pruned to each feed's ``keep_pages`` (first run after
#: one period): one short transaction per chain of pages, between polls.
PRUNE_EVERY = 600.0


class PollFetcher(Protocol):
    """What the daemon needs from :class:`dispatchwatch.fetch.Fetcher`."""

    def fetch(
        self,
        feed: Feed,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        deadline: float | None = None,
        request: Request | None = None,
    ) -> FetchResult: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DaemonSettings:
    #: Worker threads polling at once (default: one per feed, at most 32).
    max_workers: int | None = None
    jitter: float = JITTER
    #: Backoff cap in seconds for every feed (default: min(16 x interval, 1 h)).
    backoff_max: float | None = None
    stop_timeout: float = STOP_TIMEOUT


@dataclass(slots=True)
class PollReport:
    """One finished poll: what :class:`~dispatchwatch.archive.Archive` recorded, plus timing
    and what the daemon will do next. ``--jsonl`` prints these."""

    feed: str
    poll_id: int
    outcome: str
    started_at: str
    duration_ms: float
    #: When the scheduler meant to start this poll (jitter included); None for --once.
    scheduled_at: str | None = None
    incidents: int = 0
    new: int = 0
    changed: int = 0
    gone: int = 0
    returned: int = 0
    http_status: int | None = None
    error_kind: str | None = None
    error: str | None = None
    consecutive_failures: int = 0
    #: Seconds until the next poll of this feed (None when not scheduled).
    next_in: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome != "error"

    @property
    def late_ms(self) -> float | None:
        """How much later than scheduled the poll started."""
        scheduled, started = parse_time(self.scheduled_at), parse_time(self.started_at)
        if scheduled is None or started is None:
            return None
        return round((started - scheduled).total_seconds() * 1000, 1)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "late_ms": self.late_ms}

    def describe(self) -> str:
        """The log line: ``seattle-fire new 220 incidents +3 new ~2 changed -0 gone 412ms``."""
        took = f"{self.duration_ms:.0f}ms"
        if self.outcome == "new":
            returned = f" +{self.returned} returned" if self.returned else ""
            return (
                f"{self.feed} new {self.incidents} incidents +{self.new} new "
                f"~{self.changed} changed -{self.gone} gone{returned} {took}"
            )
        if self.outcome == "error":
            line = f"{self.feed} error {self.error_kind}: {self.error} {took}"
            if self.consecutive_failures:
                line += f" ({self.consecutive_failures} in a row"
                if self.next_in is not None:
                    wait = self.next_in
                    line += f", next try in {f'{wait:.3g}s' if wait < 60 else human_duration(wait)}"
                line += ")"
            return line
        return f"{self.feed} {self.outcome} {took}"


@dataclass(slots=True)
class _FeedState:
    feed: Feed
    failures: int = 0
    last_error_at: str | None = None
    #: The interval the feed's job currently runs at (stretched while failing).
    current_interval: float = 0.0
    host: str = ""
    scheduled_at: datetime | None = None


class _Abandoned(Exception):
    """The daemon stopped while this poll was in flight: it must not touch the archive."""


class _GuardedArchive:
    """The archive as :func:`~dispatchwatch.pipeline.process_page` sees it from a poll: each
    call passes through ``use`` (:meth:`Daemon._use_archive`), so a poll holds the archive
    while it reads or writes, not while it parses."""

    def __init__(self, archive: Archive, use: Callable[[Callable[[], Any]], Any]) -> None:
        self._archive = archive
        self._use = use

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._archive, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self._use(partial(attr, *args, **kwargs))


def backoff_interval(interval: float, failures: int, cap: float | None = None) -> float:
    """The interval of a feed after ``failures`` consecutive failed polls:
    ``interval x 2^failures`` up to ``cap`` (default min(16 x interval, 1 h)), never below
    ``interval``."""
    if cap is None:
        cap = min(BACKOFF_INTERVALS * interval, BACKOFF_MAX_SECONDS)
    cap = max(cap, interval)
    if failures <= 0:
        return interval
    # min() before the power so a feed failing for months cannot overflow a float.
    return min(interval * 2 ** min(failures, 64), cap)


def poll_deadline(feed: Feed) -> float:
    """Seconds one poll of ``feed`` may take in all, retries included."""
    return min(max(feed.interval, MIN_DEADLINE), 2 * (feed.connect_timeout + feed.read_timeout))


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.lower() or url


class _Executor(ThreadPoolExecutor):
    """APScheduler's thread pool, telling the daemon when each run was *meant* to start
    (``_do_submit_job`` is the hook APScheduler executors implement), so a late start can
    be measured without guessing the trigger's jitter."""

    def __init__(self, max_workers: int, on_submit: Callable[[str, datetime], None]) -> None:
        super().__init__(max_workers)
        self._on_submit = on_submit

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        self._on_submit(job.id, run_times[-1])
        super()._do_submit_job(job, run_times)


class Daemon:
    """Polls ``feeds`` into ``archive`` with ``fetcher``; see the module docstring.

    The archive and the fetcher belong to the caller, who closes them after :meth:`stop`.
    ``on_poll`` is called (from a worker thread) with each :class:`PollReport` after its
    poll has been committed.
    """

    def __init__(
        self,
        feeds: Sequence[Feed],
        archive: Archive,
        fetcher: PollFetcher,
        *,
        settings: DaemonSettings | None = None,
        on_poll: Callable[[PollReport], None] | None = None,
    ) -> None:
        self.archive = archive
        self.fetcher = fetcher
        self.settings = settings or DaemonSettings()
        self.on_poll = on_poll
        self._states = {
            feed.slug: _FeedState(feed, current_interval=feed.interval, host=host_of(feed.url))
            for feed in feeds
        }
        self._scheduler: BackgroundScheduler | None = None
        # In-flight polls and archive users, for a clean stop.
        self._cond = threading.Condition()
        self._stopping = False
        self._closed = False
        self._in_flight = 0
        self._writers = 0
        self._skipped = 0
        #: Polls in flight: feed -> time.monotonic() at their start; and those already
        #: reported as running past their deadline.
        self._running: dict[str, float] = {}
        self._overdue: set[str] = set()
        for feed in feeds:
            archive.register_feed(feed.record())
        for slug, (count, last) in failure_streaks(archive.conn, list(self._states)).items():
            state = self._states[slug]
            state.failures, state.last_error_at = count, last
            state.current_interval = self._backoff(state)

    # -- introspection (tests, status lines)

    @property
    def feeds(self) -> list[Feed]:
        return [state.feed for state in self._states.values()]

    def consecutive_failures(self, slug: str) -> int:
        return self._states[slug].failures

    def current_interval(self, slug: str) -> float:
        """The interval ``slug`` is polled at now (its configured one unless backing off)."""
        return self._states[slug].current_interval

    def next_run_time(self, slug: str) -> datetime | None:
        if self._scheduler is None:
            return None
        job = self._scheduler.get_job(slug)
        return job.next_run_time if job else None

    # -- one poll

    def poll(self, feed: Feed, *, scheduled_at: datetime | None = None) -> PollReport | None:
        """Poll ``feed`` once and record the poll. Never raises. Returns None when the daemon
        is stopping (the poll then wrote nothing)."""
        with self._cond:
            if self._stopping:
                return None
            self._in_flight += 1
            self._running[feed.slug] = time.monotonic()
        try:
            return self._poll(feed, scheduled_at)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._running.pop(feed.slug, None)
                self._overdue.discard(feed.slug)
                self._cond.notify_all()

    def _poll(self, feed: Feed, scheduled_at: datetime | None) -> PollReport | None:
        state = self._states.get(feed.slug) or _FeedState(feed, current_interval=feed.interval)
        started_at = utc_now()
        clock = time.monotonic()

        def elapsed_ms() -> float:
            return round((time.monotonic() - clock) * 1000, 3)

        summary: PollSummary
        http_status: int | None = None
        retry_after: float | None = None
        record_error = partial(self._record_error, feed, started_at, elapsed_ms)
        deadline = clock + poll_deadline(feed)
        failures: list[FetchError] = []
        statuses: list[int] = []

        def fetch(request: Request, etag: str | None, last_modified: str | None) -> FetchResult:
            try:
                result = self.fetcher.fetch(
                    feed, request=request, etag=etag, last_modified=last_modified,
                    deadline=deadline,
                )  # fmt: skip
            except FetchError as exc:
                failures.append(exc)
                raise
            statuses.append(result.status)
            return result

        try:
            # Planning, fetching and parsing happen outside the archive; only the reads of
            # the feed's last poll and state and the one write go through _use_archive.
            summary = run_poll(
                cast("Archive", _GuardedArchive(self.archive, self._use_archive)),
                feed,
                fetch,
                started_at=started_at,
            )
            if statuses:
                http_status = statuses[0]
            if summary.outcome == "error" and failures:
                exc = failures[-1]
                http_status = exc.status
                # The fetcher gave up on a 429/503; its last attempt knows the Retry-After.
                retry_after = getattr(exc, "retry_after", None) or getattr(
                    exc.__cause__, "retry_after", None
                )
        except _Abandoned:
            log.info("%s: poll abandoned, the daemon is stopping", feed.slug)
            return None
        except Exception as exc:
            # A bug (ours or a plugin's): record it, log the traceback, keep polling.
            log.exception("%s: unexpected error in poll", feed.slug)
            try:
                summary = record_error("internal", f"{type(exc).__name__}: {exc}")
            except _Abandoned:
                return None
            except Exception:
                log.exception("%s: could not record the failed poll", feed.slug)
                return None
        next_in = self._after_poll(state, summary, retry_after)
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
        if self.on_poll is not None:
            try:
                self.on_poll(report)
            except Exception:
                log.exception("on_poll callback failed")
        return report

    def _record_error(
        self,
        feed: Feed,
        started_at: str,
        elapsed_ms: Callable[[], float],
        error_kind: str,
        error: str,
        *,
        http_status: int | None = None,
    ) -> PollSummary:
        """Record a failed poll of ``feed``."""
        return self._use_archive(
            partial(
                self.archive.record_error,
                feed.slug,
                error_kind=error_kind,
                error=error,
                http_status=http_status,
                started_at=started_at,
                duration_ms=elapsed_ms(),
                source=feed.url,
            )
        )

    def _use_archive(self, action: Callable[[], T]) -> T:
        """Run ``action`` on the archive unless the daemon has closed its door to it."""
        with self._cond:
            if self._closed:
                raise _Abandoned
            self._writers += 1
        try:
            return action()
        except Exception as exc:
            with self._cond:
                closed = self._closed
            if closed:
                # stop() gave up waiting for this write and the archive may have been closed
                # under it (or the write was interrupted): nothing was committed.
                raise _Abandoned from exc
            raise
        finally:
            with self._cond:
                self._writers -= 1
                self._cond.notify_all()

    @property
    def writing(self) -> int:
        """How many polls are inside an archive write right now."""
        with self._cond:
            return self._writers

    # -- backoff

    def _backoff(self, state: _FeedState) -> float:
        return backoff_interval(state.feed.interval, state.failures, self.settings.backoff_max)

    def _after_poll(
        self, state: _FeedState, summary: PollSummary, retry_after: float | None
    ) -> float | None:
        """Update the feed's failure streak and, when its interval changes, its schedule.
        Returns the seconds until its next poll, when the scheduler runs it."""
        before = state.current_interval
        if summary.outcome == "error":
            state.failures += 1
            state.last_error_at = utc_now()
            interval = self._backoff(state)
            if retry_after:
                # The server said when to come back; honour it, within the backoff cap.
                interval = max(
                    interval,
                    min(
                        retry_after,
                        backoff_interval(state.feed.interval, 64, self.settings.backoff_max),
                    ),
                )
        else:
            state.failures = 0
            state.last_error_at = None
            interval = state.feed.interval
        state.current_interval = interval
        if self._scheduler is None:
            return None
        if interval != before or summary.outcome == "error":
            self._reschedule(state, interval)
            return interval
        job = self._scheduler.get_job(state.feed.slug)
        if job is None or job.next_run_time is None:
            return None
        return max(0.0, (job.next_run_time - datetime.now(UTC)).total_seconds())

    def _trigger(self, interval: float, start: datetime | None = None) -> IntervalTrigger:
        jitter = self.settings.jitter * interval
        # APScheduler adds the jitter to each run and counts the next interval from there,
        # so take half of it off the interval to keep the configured rate on average.
        return IntervalTrigger(
            seconds=max(interval - jitter / 2, 0.001),
            jitter=jitter or None,
            start_date=start,
            timezone=UTC,
        )

    def _reschedule(self, state: _FeedState, interval: float) -> None:
        assert self._scheduler is not None
        start = datetime.now(UTC) + timedelta(seconds=interval)
        try:
            self._scheduler.reschedule_job(state.feed.slug, trigger=self._trigger(interval, start))
        except Exception:  # stopping: the job is gone, nothing to reschedule
            log.debug("could not reschedule %s", state.feed.slug, exc_info=True)

    # -- scheduling

    def start(self) -> None:
        """Start polling in the background (returns at once)."""
        if self._scheduler is not None:
            raise RuntimeError("the daemon is already running")
        workers = self.settings.max_workers or max(1, min(32, len(self._states)))
        scheduler = BackgroundScheduler(
            # The overdue check has a thread of its own: it must run when every poll worker
            # is stuck.
            executors={
                "default": _Executor(workers, self._on_submit),
                "watchdog": ThreadPoolExecutor(1),
            },
            timezone=UTC,
        )
        self._scheduler = scheduler
        now = datetime.now(UTC)
        count = len(self._states)
        for index, state in enumerate(self._states.values()):
            feed = state.feed
            window = min(feed.interval, count * START_STEP)
            first = now + timedelta(seconds=FIRST_DELAY + window * index / count)
            last_error = parse_time(state.last_error_at)
            if last_error is not None:
                # Still backing off from before the restart.
                first = max(first, last_error + timedelta(seconds=state.current_interval))
            scheduler.add_job(
                self._run_job,
                trigger=self._trigger(state.current_interval, first),
                next_run_time=first,  # the trigger would add jitter to the first run too
                args=[feed.slug],
                id=feed.slug,
                name=feed.slug,
                max_instances=1,
                # Runs missed while the machine slept or was busy fold into one...
                coalesce=True,
                # ...which still runs, however late: dropping late runs would starve feeds
                # at random once the machine is overloaded, while running them (at most one
                # queued per feed) slows every feed down evenly.
                misfire_grace_time=None,
                replace_existing=True,
            )
        scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        scheduler.add_job(
            self.check_overdue,
            IntervalTrigger(seconds=OVERDUE_CHECK_EVERY),
            id="_overdue",
            executor="watchdog",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._report_skipped,
            IntervalTrigger(seconds=SKIP_REPORT_EVERY),
            id="_skipped",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._prune_pages,
            IntervalTrigger(seconds=PRUNE_EVERY),
            id="_prune_pages",
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        log.info(
            "polling %d feed%s with %d worker%s",
            count,
            "" if count == 1 else "s",
            workers,
            "" if workers == 1 else "s",
        )

    def check_overdue(self) -> list[str]:
        """Report polls running past their deadline (a scraper that never returns, a server
        that trickles forever): one warning and one ``error`` poll (``deadline_exceeded``)
        each, so ``status`` shows the feed is stuck while other feeds go on. Returns the feeds
        reported now. The stuck poll itself is abandoned at :meth:`stop`."""
        now = time.monotonic()
        with self._cond:
            late = [
                (slug, now - started)
                for slug, started in self._running.items()
                if slug not in self._overdue
                and slug in self._states
                and now - started > poll_deadline(self._states[slug].feed) + OVERDUE_GRACE
            ]
            self._overdue.update(slug for slug, _ in late)
        for slug, running in late:
            feed = self._states[slug].feed
            message = (
                f"poll still running after {running:.0f}s, past its {poll_deadline(feed):g}s "
                "deadline (a scraper that never returns, or a server that never finishes); "
                "the feed is not polled until it returns"
            )
            log.warning("%s: %s", slug, message)
            try:
                self._use_archive(
                    partial(
                        self.archive.record_error, slug, error_kind="deadline_exceeded",
                        error=message, source=feed.url, duration_ms=round(running * 1000, 3),
                    )
                )  # fmt: skip
            except _Abandoned:
                break
            except Exception:
                log.exception("%s: could not record the overdue poll", slug)
        return [slug for slug, _ in late]

    def _on_skipped(self, event: JobSubmissionEvent) -> None:
        # A run came due while the previous poll of the feed was still queued or running.
        with self._cond:
            self._skipped += 1

    def _report_skipped(self) -> None:
        """One summary line instead of a warning per skipped run (there can be thousands)."""
        with self._cond:
            skipped, self._skipped = self._skipped, 0
        if skipped:
            log.warning(
                "behind schedule: %d run%s skipped in the last %gs because the previous poll "
                "of the feed had not finished (too many feeds for this machine, --workers too "
                "low, or slow servers); those feeds are polled less often",
                skipped,
                "" if skipped == 1 else "s",
                SKIP_REPORT_EVERY,
            )

    def _prune_pages(self) -> None:
        """Delete the raw pages each feed's ``keep_pages`` lets go (never raises)."""
        from .pagestore import prune

        retention = {slug: state.feed.keep_pages for slug, state in self._states.items()}
        try:
            result = prune(self.archive, retention, use=self._use_archive)
        except _Abandoned:
            return
        except Exception:
            log.exception("pruning the raw page store failed")
            return
        if result.pages:
            log.info(
                "pruned %d raw page%s (%d bytes) of %d feed%s",
                result.pages, "" if result.pages == 1 else "s", result.bytes,
                result.feeds, "" if result.feeds == 1 else "s",
            )  # fmt: skip

    def _on_submit(self, slug: str, run_time: datetime) -> None:
        state = self._states.get(slug)
        if state is not None:
            state.scheduled_at = run_time

    def _run_job(self, slug: str) -> None:
        state = self._states[slug]
        scheduled, state.scheduled_at = state.scheduled_at, None
        self.poll(state.feed, scheduled_at=scheduled)

    def stop(self, timeout: float | None = None, *, abort: threading.Event | None = None) -> bool:
        """Stop scheduling, wait up to ``timeout`` seconds (default: the settings') for
        in-flight polls, then abandon the rest. A poll already writing then gets up to
        :data:`WRITE_GRACE` more seconds to commit its one transaction. ``abort`` (e.g. a
        second Ctrl-C) cuts either wait short.

        After this returns no poll starts to use the archive again; only a write the wait gave
        up on (see :attr:`writing`) may still be under way, and it commits or rolls back whole
        (:meth:`Archive.close` waits for it). Returns True when nothing had to be abandoned."""
        timeout = self.settings.stop_timeout if timeout is None else timeout

        def aborted() -> bool:
            return abort is not None and abort.is_set()

        with self._cond:
            self._stopping = True
        cancel = getattr(self.fetcher, "cancel", None)
        if cancel is not None:
            cancel()  # no poll waits out a retry's backoff once we are stopping
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        end = time.monotonic() + timeout
        with self._cond:
            while self._in_flight and not aborted() and time.monotonic() < end:
                self._cond.wait(min(0.1, max(0.0, end - time.monotonic())))
            # Polls still writing are not abandoned (unless the wait below is cut short):
            # a write is one short transaction.
            abandoned = self._in_flight - self._writers
            self._closed = True
            end = max(end, time.monotonic() + WRITE_GRACE)
            while self._writers and not aborted() and time.monotonic() < end:
                self._cond.wait(min(0.1, max(0.0, end - time.monotonic())))
            writing = self._writers
        if abandoned:
            log.warning(
                "abandoned %d poll%s still in flight (nothing of them was written)",
                abandoned,
                "" if abandoned == 1 else "s",
            )
        if writing:
            log.warning(
                "stopped waiting for %d poll%s still writing (each commits or rolls back whole)",
                writing,
                "" if writing == 1 else "s",
            )
        return not (abandoned or writing)

    # -- once

    def run_once(self, *, stop: threading.Event | None = None) -> list[PollReport]:
        """Poll every feed once, feeds of different hosts at the same time, and return the
        reports (fewer than the feeds if ``stop`` was set meanwhile)."""
        by_host: dict[str, list[Feed]] = {}
        for state in self._states.values():
            by_host.setdefault(state.host, []).append(state.feed)
        reports: list[PollReport] = []
        lock = threading.Lock()

        def poll_host(feeds: list[Feed]) -> None:
            for feed in feeds:
                if stop is not None and stop.is_set():
                    return
                report = self.poll(feed)
                if report is not None:
                    with lock:
                        reports.append(report)

        workers = self.settings.max_workers or max(1, min(32, len(by_host)))
        pool = _Pool(max_workers=workers, thread_name_prefix="dispatchwatch-once")
        try:
            futures = [pool.submit(poll_host, feeds) for feeds in by_host.values()]
            pending = set(futures)
            while pending and not (stop is not None and stop.is_set()):
                _done, pending = _wait_futures(pending, timeout=0.2)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return reports


def run(
    config: Config,
    *,
    database: Path | None = None,
    once: bool = False,
    stop: threading.Event | None = None,
    abort: threading.Event | None = None,
    settings: DaemonSettings | None = None,
    on_poll: Callable[[PollReport], None] | None = None,
    fetcher: PollFetcher | None = None,
) -> int:
    """Run the daemon for ``config`` until ``stop`` is set (or, with ``once``, poll every
    enabled feed once). Opens and closes the archive and the fetcher. Returns the exit code:
    0, or with ``once`` :data:`exitcodes.POLLS_FAILED` when any feed failed (or was not
    polled)."""
    from .fetch import Fetcher

    feeds = config.enabled_feeds
    stop = stop or threading.Event()
    settings = settings or DaemonSettings()
    own_fetcher = fetcher is None
    fetcher = fetcher or Fetcher(config.user_agent)
    path = database or config.database
    clean = True
    lock = RunLock(path)
    try:
        try:
            # First: a file that is not an archive is refused before anything (a lock file
            # included) is created beside it.
            archive = Archive(path)
        except sqlite3.Error as exc:
            raise DispatchwatchError(f"cannot open the archive {path}: {exc}") from None
        try:
            lock.acquire()  # before any feed is registered or polled
        except BaseException:
            archive.close()
            raise
        daemon: Daemon | None = None
        alerts, on_poll = _with_alerts(config, path, on_poll)
        with _closing(archive, in_use=lambda: daemon is not None and daemon.writing > 0), alerts:
            daemon = Daemon(feeds, archive, fetcher, settings=settings, on_poll=on_poll)
            if not feeds:
                log.warning("no enabled feeds in the config: nothing to poll")
            if once:
                try:
                    reports = daemon.run_once(stop=stop)
                finally:
                    # Also when run_once raises: its pool threads may still be polling.
                    clean = daemon.stop(settings.stop_timeout, abort=abort)
                failed = len(feeds) - sum(report.ok for report in reports)
                if failed:
                    log.warning("%d of %d feeds failed", failed, len(feeds))
                return exitcodes.POLLS_FAILED if failed else exitcodes.OK
            log.info("archiving into %s", path)
            daemon.start()
            try:
                while not stop.wait(1.0):
                    pass
            finally:
                log.info("stopping: waiting up to %gs for in-flight polls", settings.stop_timeout)
                clean = daemon.stop(settings.stop_timeout, abort=abort)
            return 0
    finally:
        lock.release()
        if own_fetcher:
            if clean:
                fetcher.close()
            else:
                # Closing the client waits for the requests still in flight; don't make the
                # caller wait for what it just gave up on.
                threading.Thread(
                    target=fetcher.close, name="dispatchwatch-close", daemon=True
                ).start()


@contextmanager
def _alert_worker(worker: Any) -> Iterator[None]:
    if worker is not None:
        worker.start()
    try:
        yield
    finally:
        if worker is not None:
            worker.stop()


def _with_alerts(
    config: Config, path: Path, on_poll: Callable[[PollReport], None] | None
) -> tuple[Any, Callable[[PollReport], None] | None]:
    """With watch rules configured: a background :class:`~dispatchwatch.alerts.AlertWorker`
    (as a context) fed each committed poll, and ``on_poll`` wrapped to feed it."""
    if not config.alerts:
        return _alert_worker(None), on_poll
    from .alerts import AlertWorker

    worker = AlertWorker(path, config.alerts)

    def fed(report: PollReport) -> None:
        if report.new and report.poll_id:
            worker.submit(report.poll_id)
        if on_poll is not None:
            on_poll(report)

    return _alert_worker(worker), fed


@contextmanager
def _closing(archive: Archive, *, in_use: Callable[[], bool] = lambda: False) -> Iterator[Archive]:
    try:
        yield archive
    finally:
        if in_use():
            # The daemon stopped waiting (a second Ctrl-C) for a poll still inside a write,
            # e.g. waiting out SQLite's busy timeout behind another process. Archive.close()
            # takes the archive's lock, so it would wait for that write: close once the write
            # lets go, without making the caller wait (an exit meanwhile rolls the write back).
            threading.Thread(
                target=_close, args=(archive,), name="dispatchwatch-close-archive", daemon=True
            ).start()
        else:
            _close(archive)


def _close(archive: Archive) -> None:
    archive.close()
    log.info("archive %s closed", archive.path)
