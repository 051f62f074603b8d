"""The prune job: every :data:`~.settings.PRUNE_EVERY` seconds, the raw page store is cut to
each feed's ``keep_pages``, in short transactions through the door, between polls."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .door import Abandoned

if TYPE_CHECKING:
    from .lifecycle import Daemon

log = logging.getLogger("dispatchwatch.daemon")


def prune_pages(daemon: Daemon) -> None:
    """Delete the raw pages each feed's ``keep_pages`` lets go (never raises)."""
    from ..pagestore import prune

    retention = {slug: state.feed.keep_pages for slug, state in daemon.states.items()}
    try:
        result = prune(daemon.archive, retention, use=daemon.door.use)
    except Abandoned:
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
