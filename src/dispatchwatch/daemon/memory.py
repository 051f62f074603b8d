"""Keeping the daemon's memory flat: freed memory goes back to the system.

What a poll allocates (the body, lxml's tree, raw rows, incidents) is freed when it ends, and
nothing of it is kept (see :mod:`.feeds`); but glibc's allocator keeps freed memory in its
heaps, one arena per thread that allocated, so a daemon with 32 poll threads that each parsed a
300 KB page once holds the high-water mark of all of them. Measured at 200 feeds: ~195 MB RSS
without trimming, ~125 MB with. Two remedies, glibc only (elsewhere they do nothing):

- :func:`limit_arenas` caps the arenas (``M_ARENA_MAX``), before the poll threads start;
- :func:`trim` (``malloc_trim(0)``) returns free pages; the daemon calls it every
  :data:`TRIM_EVERY` seconds from its watchdog thread (a few milliseconds each).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from functools import cache

log = logging.getLogger("dispatchwatch.daemon")

#: Arenas glibc may create (its default: 8 per CPU).
ARENAS = 2
#: Seconds between two trims.
TRIM_EVERY = 5.0
_M_ARENA_MAX = -8


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc only: musl has no malloc_trim)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; True when it was applied."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas))


def trim() -> bool:
    """Return the allocator's free memory to the system; True when some was."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))
