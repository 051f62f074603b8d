"""The daemon: poll every enabled feed on its interval, forever, and record every poll.

The flow of a poll, one module each:

- :mod:`.schedule`: one APScheduler interval job per feed on a thread pool (never two polls
  of one feed at once; late runs fold into one; first runs spread out; jitter).
- :mod:`.poll`: one poll: fetch, then (holding one of a few :mod:`.slots`) parse and
  archive through :mod:`.door` (the archive is used only to read what the poll needs and to
  write its one transaction), never raising.
- :mod:`.backoff`: after the poll, a failing feed backs off, a good one is back on time.
- :mod:`.report`: the :class:`PollReport` (log line, ``--jsonl``), then :mod:`.alerts`.

Beside the polls: :mod:`.watchdog` reports polls past their deadline, :mod:`.prune` cuts the
raw page store to each feed's retention, :mod:`.memory` hands freed memory back.
:mod:`.lifecycle` holds the :class:`Daemon` (start, stop); :mod:`.run` is ``dispatchwatch
run`` and :mod:`.once` its ``--once``; :mod:`.settings` the timing rules; :mod:`.feeds` the
little state kept per feed.
"""

from __future__ import annotations

from .door import Abandoned
from .feeds import FeedState
from .lifecycle import Daemon
from .report import PollReport
from .run import run
from .settings import (
    BACKOFF_INTERVALS,
    BACKOFF_MAX_SECONDS,
    FIRST_DELAY,
    JITTER,
    MIN_DEADLINE,
    OVERDUE_CHECK_EVERY,
    OVERDUE_GRACE,
    PRUNE_EVERY,
    SKIP_REPORT_EVERY,
    START_STEP,
    STOP_TIMEOUT,
    WRITE_GRACE,
    DaemonSettings,
    PollFetcher,
    backoff_interval,
    host_of,
    poll_deadline,
)

__all__ = [
    "BACKOFF_INTERVALS",
    "BACKOFF_MAX_SECONDS",
    "FIRST_DELAY",
    "JITTER",
    "MIN_DEADLINE",
    "OVERDUE_CHECK_EVERY",
    "OVERDUE_GRACE",
    "PRUNE_EVERY",
    "SKIP_REPORT_EVERY",
    "START_STEP",
    "STOP_TIMEOUT",
    "WRITE_GRACE",
    "Abandoned",
    "Daemon",
    "DaemonSettings",
    "FeedState",
    "PollFetcher",
    "PollReport",
    "backoff_interval",
    "host_of",
    "poll_deadline",
    "run",
]
