"""The archive's door: which polls are in flight, which are writing, and closing it at stop.

A poll enters the door when it starts (:meth:`Door.enter`) and leaves when it ends; it goes
through the door (:meth:`Door.use`) each time it reads or writes the archive, not while it
fetches or parses. :meth:`Door.close` (the daemon stopping) waits for polls in flight, then for
polls inside a write, and shuts the door: a poll that tries to use the archive afterwards gets
:class:`Abandoned` and writes nothing (each poll writes in one transaction).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from .settings import WRITE_GRACE

if TYPE_CHECKING:
    from ..archive import Archive

T = TypeVar("T")


class Abandoned(Exception):
    """The daemon stopped while this poll was in flight: it must not touch the archive."""


class Door:
    """In-flight polls and archive users, under one condition variable (thread-safe)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.stopping = False
        self.closed = False
        self.in_flight = 0
        self.writers = 0
        #: Polls in flight: feed -> time.monotonic() at their start; and those already
        #: reported as running past their deadline (see :mod:`.watchdog`).
        self.running: dict[str, float] = {}
        self.overdue: set[str] = set()

    def enter(self, slug: str) -> bool:
        """A poll of ``slug`` starts; False (and nothing counted) when stopping."""
        with self.cond:
            if self.stopping:
                return False
            self.in_flight += 1
            self.running[slug] = time.monotonic()
            return True

    def leave(self, slug: str) -> None:
        with self.cond:
            self.in_flight -= 1
            self.running.pop(slug, None)
            self.overdue.discard(slug)
            self.cond.notify_all()

    def use(self, action: Callable[[], T]) -> T:
        """Run ``action`` on the archive unless the door is closed (then :class:`Abandoned`)."""
        with self.cond:
            if self.closed:
                raise Abandoned
            self.writers += 1
        try:
            return action()
        except Exception as exc:
            with self.cond:
                closed = self.closed
            if closed:
                # stop() gave up waiting for this write and the archive may have been closed
                # under it (or the write was interrupted): nothing was committed.
                raise Abandoned from exc
            raise
        finally:
            with self.cond:
                self.writers -= 1
                self.cond.notify_all()

    @property
    def writing(self) -> int:
        """How many polls are inside an archive write right now."""
        with self.cond:
            return self.writers

    def stop_entering(self) -> None:
        with self.cond:
            self.stopping = True

    def close(self, timeout: float, aborted: Callable[[], bool] = lambda: False) -> tuple[int, int]:
        """Wait up to ``timeout`` s for polls in flight, then up to :data:`WRITE_GRACE` s
        more for those inside a write, and close the door. Returns ``(abandoned, writing)``:
        polls given up on before they wrote, and polls still inside a write."""
        end = time.monotonic() + timeout
        with self.cond:
            while self.in_flight and not aborted() and time.monotonic() < end:
                self.cond.wait(min(0.1, max(0.0, end - time.monotonic())))
            # Polls still writing are not abandoned (unless the wait below is cut short):
            # a write is one short transaction.
            abandoned = self.in_flight - self.writers
            self.closed = True
            end = max(end, time.monotonic() + WRITE_GRACE)
            while self.writers and not aborted() and time.monotonic() < end:
                self.cond.wait(min(0.1, max(0.0, end - time.monotonic())))
            return abandoned, self.writers


class GuardedArchive:
    """The archive as :func:`~dispatchwatch.pipeline.process_page` sees it from a poll: each
    call passes through ``use`` (:meth:`Door.use`), so a poll holds the archive while it
    reads or writes, not while it parses."""

    def __init__(self, archive: Archive, use: Callable[[Callable[[], Any]], Any]) -> None:
        self._archive = archive
        self._use = use

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._archive, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self._use(partial(attr, *args, **kwargs))
