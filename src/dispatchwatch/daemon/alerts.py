"""The alerts worker beside the daemon: each committed poll with new incidents is handed to a
background :class:`~dispatchwatch.alerts.AlertWorker` (which reads the archive on its own
connection), so matching watch rules never holds up a poll."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from .report import PollReport

if TYPE_CHECKING:
    from pathlib import Path

    from ..config import Config


@contextmanager
def _alert_worker(worker: Any) -> Iterator[None]:
    if worker is not None:
        worker.start()
    try:
        yield
    finally:
        if worker is not None:
            worker.stop()


def with_alerts(
    config: Config, path: Path, on_poll: Callable[[PollReport], None] | None
) -> tuple[AbstractContextManager[None], Callable[[PollReport], None] | None]:
    """With watch rules configured: a background :class:`~dispatchwatch.alerts.AlertWorker`
    (as a context) fed each committed poll, and ``on_poll`` wrapped to feed it."""
    if not config.alerts:
        return _alert_worker(None), on_poll
    from ..alerts import AlertWorker

    worker = AlertWorker(path, config.alerts)

    def fed(report: PollReport) -> None:
        if report.new and report.poll_id:
            worker.submit(report.poll_id)
        if on_poll is not None:
            on_poll(report)

    return _alert_worker(worker), fed
