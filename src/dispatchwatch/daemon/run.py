"""``dispatchwatch run``: open the archive and the fetcher, take the run lock, start the alerts
worker and the daemon, wait for a stop, and close everything in order."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .. import exitcodes
from ..archive import Archive
from ..errors import DispatchwatchError
from ..runlock import RunLock
from . import memory
from .alerts import with_alerts
from .lifecycle import Daemon
from .report import PollReport
from .settings import DaemonSettings, PollFetcher

if TYPE_CHECKING:
    from pathlib import Path

    from ..config import Config

log = logging.getLogger("dispatchwatch.daemon")


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
    from ..fetch import Fetcher

    feeds = config.enabled_feeds
    if not once:
        memory.limit_arenas()  # before any poll thread allocates
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
        alerts, on_poll = with_alerts(config, path, on_poll)
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
