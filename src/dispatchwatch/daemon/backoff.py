"""After a poll: a failing feed backs off, a succeeding one is back to its interval.

After ``n`` failures in a row a feed is polled every ``interval x 2^n``, up to a cap
(:func:`~.settings.backoff_interval`); a ``Retry-After`` from the server is honoured within
that cap. The streak is read back from ``polls`` at start-up (:class:`~.lifecycle.Daemon`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..archive import PollSummary, utc_now
from .feeds import FeedState
from .settings import backoff_interval

if TYPE_CHECKING:
    from .lifecycle import Daemon


def backoff(daemon: Daemon, state: FeedState) -> float:
    """The interval ``state``'s feed is polled at after its current failure streak."""
    return backoff_interval(state.feed.interval, state.failures, daemon.settings.backoff_max)


def after_poll(
    daemon: Daemon, state: FeedState, summary: PollSummary, retry_after: float | None
) -> float | None:
    """Update the feed's failure streak and, when its interval changes, its schedule.
    Returns the seconds until its next poll, when the scheduler runs it."""
    before = state.current_interval
    if summary.outcome == "error":
        state.failures += 1
        state.last_error_at = utc_now()
        interval = backoff(daemon, state)
        if retry_after:
            # The server said when to come back; honour it, within the backoff cap.
            cap = backoff_interval(state.feed.interval, 64, daemon.settings.backoff_max)
            interval = max(interval, min(retry_after, cap))
    else:
        state.failures = 0
        state.last_error_at = None
        interval = state.feed.interval
    state.current_interval = interval
    schedule = daemon.schedule
    if schedule is None:
        return None
    if interval != before or summary.outcome == "error":
        schedule.reschedule(state.feed.slug, interval)
        return interval
    return schedule.next_in(state.feed.slug)
