"""Parse slots: at most a few polls parse and archive at once, however many fetch.

Fetching is waiting (a slow server can hold a poll for its whole deadline), so the daemon runs
many poll threads; parsing, normalizing and archiving a changed page is CPU-bound Python that
the GIL runs one thread at a time anyway. Without slots, 32 threads that got a changed page at
the same moment (every first poll at start-up) each hold a parsed tree and its rows while they
take turns on the CPU: 32 times the memory for no more throughput, and every one of them slow.
With :data:`SLOTS` slots, a poll that fetched a body waits for a slot (its body, a few hundred
KB, is all it holds meanwhile), and holds it until the poll ends or its next request goes out.
304s take no slot.
"""

from __future__ import annotations

import os
import threading

from .door import Abandoned, Door

#: Polls parsing or archiving at once: one per CPU, at least 2 (lxml and SQLite release the
#: GIL while they work).
SLOTS = max(2, os.cpu_count() or 1)


class Slots:
    """A counting semaphore that gives up (:class:`Abandoned`) once ``door`` closes."""

    def __init__(self, door: Door, slots: int = SLOTS) -> None:
        self._door = door
        self._semaphore = threading.BoundedSemaphore(slots)
        self.slots = slots

    def acquire(self) -> None:
        while not self._semaphore.acquire(timeout=0.1):
            if self._door.closed:
                raise Abandoned
        if self._door.closed:
            self._semaphore.release()
            raise Abandoned

    def release(self) -> None:
        self._semaphore.release()
