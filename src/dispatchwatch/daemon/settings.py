"""The daemon's settings and timing rules: how often, how late, how long a poll may take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ..config import Feed
    from ..fetch import FetchResult
    from ..scraper import Request

#: Fraction of the interval added at random to every run (spreads feeds apart over time).
JITTER = 0.1
#: Backoff cap: BACKOFF_INTERVALS x interval, at most BACKOFF_MAX_SECONDS.
BACKOFF_INTERVALS = 16
BACKOFF_MAX_SECONDS = 3600.0
#: First runs: the first feed after FIRST_DELAY, the others spread START_STEP apart (but
#: within one interval), so start-up load looks like the steady state. 25 first polls a
#: second: a first poll is a whole page to parse and archive (~36 ms of CPU for the bench's
#: mix), and at 50 a second (0.02) a 2-core machine fell behind, so first polls started late.
FIRST_DELAY = 0.2
START_STEP = 0.04
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
    #: Polls parsing and archiving at once (default :data:`~.slots.SLOTS`: one per CPU,
    #: at least 2); the other workers wait with their fetched body.
    parse_slots: int | None = None
    #: Child processes that parse and normalize changed pages (:mod:`.parsers`; default
    #: one per CPU beyond the first, at least one; 0: parse in the daemon's own process).
    parse_processes: int | None = None


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
