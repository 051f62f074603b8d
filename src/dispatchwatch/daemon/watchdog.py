"""The watchdog: polls running past their deadline are reported, not waited for.

A scraper that never returns or a server that trickles forever holds one worker; every
:data:`~.settings.OVERDUE_CHECK_EVERY` seconds (on a thread of its own, so it runs even when
every poll worker is stuck) such a poll gets one warning and one ``error`` poll
(``deadline_exceeded``), so ``status`` shows the feed is stuck while other feeds go on.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import TYPE_CHECKING

from .door import Abandoned
from .settings import OVERDUE_GRACE, poll_deadline

if TYPE_CHECKING:
    from .lifecycle import Daemon

log = logging.getLogger("dispatchwatch.daemon")


def check_overdue(daemon: Daemon) -> list[str]:
    """Report the polls of ``daemon`` running past their deadline (each once). Returns the
    feeds reported now. The stuck poll itself is abandoned at :meth:`Daemon.stop`."""
    door, states = daemon.door, daemon.states
    now = time.monotonic()
    with door.cond:
        late = [
            (slug, now - started)
            for slug, started in door.running.items()
            if slug not in door.overdue
            and slug in states
            and now - started > poll_deadline(states[slug].feed) + OVERDUE_GRACE
        ]
        door.overdue.update(slug for slug, _ in late)
    for slug, running in late:
        feed = states[slug].feed
        message = (
            f"poll still running after {running:.0f}s, past its {poll_deadline(feed):g}s "
            "deadline (a scraper that never returns, or a server that never finishes); "
            "the feed is not polled until it returns"
        )
        log.warning("%s: %s", slug, message)
        try:
            door.use(
                partial(
                    daemon.archive.record_error, slug, error_kind="deadline_exceeded",
                    error=message, source=feed.url, duration_ms=round(running * 1000, 3),
                )
            )  # fmt: skip
        except Abandoned:
            break
        except Exception:
            log.exception("%s: could not record the overdue poll", slug)
    return [slug for slug, _ in late]
