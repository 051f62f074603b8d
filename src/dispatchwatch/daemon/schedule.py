"""The schedule: one APScheduler interval job per feed, on a thread pool, plus the daemon's
housekeeping jobs (the watchdog for overdue polls, the behind-schedule summary, pruning,
returning freed memory: :mod:`.memory`).

- ``max_instances=1``: never two polls of one feed at once; ``coalesce=True``: runs missed
  while the machine slept or was busy fold into one, which runs however late
  (``misfire_grace_time=None``), so an overloaded machine polls every feed less often rather
  than starving some of them.
- first runs are spread over a short window so a thousand feeds do not all fire at t=0, in
  turn over the feeds' hosts (:func:`first_order`), and each run gets a random jitter of up
  to 10% of the interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from ..status import parse_time
from . import memory
from .feeds import FeedState
from .settings import (
    FIRST_DELAY,
    OVERDUE_CHECK_EVERY,
    PRUNE_EVERY,
    SKIP_REPORT_EVERY,
    START_STEP,
)

if TYPE_CHECKING:
    from .lifecycle import Daemon

log = logging.getLogger("dispatchwatch.daemon")


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


def first_order(states: Iterable[FeedState]) -> list[FeedState]:
    """The order of the first polls: round robin over the feeds' hosts, each host's feeds in
    config order. A config that lists many feeds of one server together then does not send
    that server a burst of first polls (each a whole page to send, then to parse and archive
    here) while the other servers wait: consecutive first polls go to different hosts."""
    by_host: dict[str, list[FeedState]] = {}
    for state in states:
        by_host.setdefault(state.host, []).append(state)
    rounds = zip_longest(*by_host.values())
    return [state for round_ in rounds for state in round_ if state is not None]


class Schedule:
    """When each feed of ``daemon`` is polled next; started by :meth:`start`."""

    def __init__(self, daemon: Daemon, workers: int) -> None:
        self.daemon = daemon
        self.workers = workers
        self._lock = threading.Lock()
        self._skipped = 0
        self._scheduler = BackgroundScheduler(
            # The overdue check has a thread of its own: it must run when every poll worker
            # is stuck.
            executors={
                "default": _Executor(workers, self._on_submit),
                "watchdog": ThreadPoolExecutor(1),
            },
            timezone=UTC,
        )

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def trigger(self, interval: float, start: datetime | None = None) -> IntervalTrigger:
        jitter = self.daemon.settings.jitter * interval
        # APScheduler adds the jitter to each run and counts the next interval from there,
        # so take half of it off the interval to keep the configured rate on average.
        return IntervalTrigger(
            seconds=max(interval - jitter / 2, 0.001),
            jitter=jitter or None,
            start_date=start,
            timezone=UTC,
        )

    def start(self) -> None:
        """Add every feed's job (first runs spread over a short window) and the
        housekeeping jobs, and start the scheduler thread."""
        daemon, scheduler = self.daemon, self._scheduler
        now = datetime.now(UTC)
        states = first_order(daemon.states.values())
        count = len(states)
        for index, state in enumerate(states):
            feed = state.feed
            window = min(feed.interval, count * START_STEP)
            first = now + timedelta(seconds=FIRST_DELAY + window * index / count)
            last_error = parse_time(state.last_error_at)
            if last_error is not None:
                # Still backing off from before the restart.
                first = max(first, last_error + timedelta(seconds=state.current_interval))
            scheduler.add_job(
                daemon.run_job,
                trigger=self.trigger(state.current_interval, first),
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
        # Housekeeping, each at most once at a time; the first three on the watchdog's own
        # executor so a pool full of polls cannot hold them up (the behind-schedule line
        # is needed most when the pool is full: on the poll pool it waited behind the polls).
        housekeeping = [
            (daemon.check_overdue, OVERDUE_CHECK_EVERY, "_overdue", "watchdog"),
            (memory.trim, memory.TRIM_EVERY, "_trim", "watchdog"),
            (self.report_skipped, SKIP_REPORT_EVERY, "_skipped", "watchdog"),
            (daemon.prune_pages, PRUNE_EVERY, "_prune_pages", "default"),
        ]
        for job, every, job_id, executor in housekeeping:
            scheduler.add_job(
                job,
                IntervalTrigger(seconds=every),
                id=job_id,
                executor=executor,
                max_instances=1,
                coalesce=True,
            )
        scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def next_run_time(self, slug: str) -> datetime | None:
        job = self._scheduler.get_job(slug)
        return job.next_run_time if job else None

    def next_in(self, slug: str) -> float | None:
        """Seconds until the next run of ``slug``'s job (None when it has none)."""
        when = self.next_run_time(slug)
        if when is None:
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    def reschedule(self, slug: str, interval: float) -> None:
        """Run ``slug`` every ``interval`` seconds from now on (the next run one from now)."""
        start = datetime.now(UTC) + timedelta(seconds=interval)
        try:
            self._scheduler.reschedule_job(slug, trigger=self.trigger(interval, start))
        except Exception:  # stopping: the job is gone, nothing to reschedule
            log.debug("could not reschedule %s", slug, exc_info=True)

    def _on_submit(self, slug: str, run_time: datetime) -> None:
        state = self.daemon.states.get(slug)
        if state is not None:
            state.scheduled_at = run_time

    def _on_skipped(self, event: JobSubmissionEvent) -> None:
        # A run came due while the previous poll of the feed was still queued or running.
        with self._lock:
            self._skipped += 1

    def report_skipped(self) -> None:
        """One summary line instead of a warning per skipped run (there can be thousands)."""
        with self._lock:
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
