"""The :class:`Daemon`: its feeds, its archive and fetcher, starting and stopping.

Stopping (:meth:`Daemon.stop`) stops scheduling, waits for in-flight polls up to a deadline and
then abandons them: each poll writes in one transaction, so an abandoned poll leaves nothing
behind, and after ``stop`` returns no poll starts to use the archive again. A poll uses the
archive only to read what it needs and to write its transaction, not while it fetches or
parses, and a second Ctrl-C (``abort``) cuts every wait short.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from ..archive import Archive
from ..config import Feed
from ..status import failure_streaks
from .backoff import backoff
from .door import Door
from .feeds import FeedState
from .once import run_once
from .parsers import ParseProcesses, default_count
from .poll import poll_feed
from .prune import prune_pages
from .report import PollReport
from .schedule import Schedule
from .settings import DaemonSettings, PollFetcher, host_of
from .slots import SLOTS, Slots
from .watchdog import check_overdue

log = logging.getLogger("dispatchwatch.daemon")


class Daemon:
    """Polls ``feeds`` into ``archive`` with ``fetcher``; see :mod:`dispatchwatch.daemon`.

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
        self.states = {
            feed.slug: FeedState(feed, current_interval=feed.interval, host=host_of(feed.url))
            for feed in feeds
        }
        self.schedule: Schedule | None = None
        self.door = Door()
        self.slots = Slots(self.door, self.settings.parse_slots or SLOTS)
        #: None forked until :meth:`start` (``run_once`` parses here).
        self.parsers = ParseProcesses(0)
        for feed in feeds:
            archive.register_feed(feed.record())
        for slug, (count, last) in failure_streaks(archive.conn, list(self.states)).items():
            state = self.states[slug]
            state.failures, state.last_error_at = count, last
            state.current_interval = backoff(self, state)

    # -- introspection (tests, status lines)

    @property
    def feeds(self) -> list[Feed]:
        return [state.feed for state in self.states.values()]

    def consecutive_failures(self, slug: str) -> int:
        return self.states[slug].failures

    def current_interval(self, slug: str) -> float:
        """The interval ``slug`` is polled at now (its configured one unless backing off)."""
        return self.states[slug].current_interval

    def next_run_time(self, slug: str) -> datetime | None:
        return None if self.schedule is None else self.schedule.next_run_time(slug)

    @property
    def writing(self) -> int:
        """How many polls are inside an archive write right now."""
        return self.door.writing

    # -- the jobs

    def poll(self, feed: Feed, *, scheduled_at: datetime | None = None) -> PollReport | None:
        """Poll ``feed`` once and record the poll (:mod:`.poll`). Never raises. Returns None
        when the daemon is stopping (the poll then wrote nothing)."""
        if not self.door.enter(feed.slug):
            return None
        try:
            return poll_feed(self, feed, scheduled_at)
        finally:
            self.door.leave(feed.slug)

    def run_job(self, slug: str) -> None:
        """The scheduled job of feed ``slug``."""
        state = self.states[slug]
        scheduled, state.scheduled_at = state.scheduled_at, None
        self.poll(state.feed, scheduled_at=scheduled)

    def check_overdue(self) -> list[str]:
        """Report polls running past their deadline (:mod:`.watchdog`)."""
        return check_overdue(self)

    def prune_pages(self) -> None:
        """Prune the raw page store (:mod:`.prune`)."""
        prune_pages(self)

    # Older names, kept for callers of the single-module daemon.
    _prune_pages = prune_pages

    def run_once(self, *, stop: threading.Event | None = None) -> list[PollReport]:
        """Poll every feed once (:mod:`.once`)."""
        return run_once(self, stop=stop)

    # -- starting and stopping

    def start(self) -> None:
        """Start polling in the background (returns at once)."""
        if self.schedule is not None:
            raise RuntimeError("the daemon is already running")
        workers = self.settings.max_workers or max(1, min(32, len(self.states)))
        # Forked first: before the scheduler's threads (see .parsers).
        processes = self.settings.parse_processes
        self.parsers = ParseProcesses(default_count() if processes is None else processes)
        if self.parsers.count and self.settings.parse_slots is None:
            # A slot for each child's parse beside the daemon's own (its writes, or a parse
            # waiting for a child), so that the children are never idle for want of one.
            self.slots = Slots(self.door, SLOTS + self.parsers.count)
        self.schedule = Schedule(self, workers)
        self.schedule.start()
        count = len(self.states)
        log.info(
            "polling %d feed%s with %d worker%s and %d parse process%s",
            count,
            "" if count == 1 else "s",
            workers,
            "" if workers == 1 else "s",
            self.parsers.count,
            "" if self.parsers.count == 1 else "es",
        )

    def stop(self, timeout: float | None = None, *, abort: threading.Event | None = None) -> bool:
        """Stop scheduling, wait up to ``timeout`` seconds (default: the settings') for
        in-flight polls, then abandon the rest. A poll already writing then gets up to
        :data:`~.settings.WRITE_GRACE` more seconds to commit its one transaction. ``abort``
        (e.g. a second Ctrl-C) cuts either wait short.

        After this returns no poll starts to use the archive again; only a write the wait gave
        up on (see :attr:`writing`) may still be under way, and it commits or rolls back whole
        (:meth:`Archive.close` waits for it). Returns True when nothing had to be abandoned."""
        timeout = self.settings.stop_timeout if timeout is None else timeout
        self.door.stop_entering()
        cancel = getattr(self.fetcher, "cancel", None)
        if cancel is not None:
            cancel()  # no poll waits out a retry's backoff once we are stopping
        if self.schedule is not None:
            self.schedule.shutdown()
        abandoned, writing = self.door.close(timeout, lambda: abort is not None and abort.is_set())
        self.parsers.close()  # a poll still waiting for one parses here (or was abandoned)
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
