"""``run --once``: every feed polled once, feeds of different hosts at the same time, feeds
of one host one after the other."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from .report import PollReport

if TYPE_CHECKING:
    from ..config import Feed
    from .lifecycle import Daemon


def run_once(daemon: Daemon, *, stop: threading.Event | None = None) -> list[PollReport]:
    """Poll every feed of ``daemon`` once and return the reports (fewer than the feeds if
    ``stop`` was set meanwhile)."""
    by_host: dict[str, list[Feed]] = {}
    for state in daemon.states.values():
        by_host.setdefault(state.host, []).append(state.feed)
    reports: list[PollReport] = []
    lock = threading.Lock()

    def poll_host(feeds: list[Feed]) -> None:
        for feed in feeds:
            if stop is not None and stop.is_set():
                return
            report = daemon.poll(feed)
            if report is not None:
                with lock:
                    reports.append(report)

    workers = daemon.settings.max_workers or max(1, min(32, len(by_host)))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dispatchwatch-once")
    try:
        futures = [pool.submit(poll_host, feeds) for feeds in by_host.values()]
        pending = set(futures)
        while pending and not (stop is not None and stop.is_set()):
            _done, pending = wait(pending, timeout=0.2)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return reports
