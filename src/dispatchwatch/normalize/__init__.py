"""Normalization: source text -> the stored form of an incident.

Local wall-clock times become UTC (:mod:`.time`), locations become hundred blocks and the city
is split off (:mod:`.address`), unit lists become unique IDs (:mod:`.units`), coordinates are
rounded (:mod:`.coordinates`), and the several rows one incident may have in a page are merged
into one :class:`~dispatchwatch.incident.Incident` (:mod:`.rows`).

Everything here is pure (no I/O) and on the ingest hot path: regexes are compiled once, and the
per-string functions are memoized with bounded :func:`functools.lru_cache` caches, because
consecutive polls of a feed repeat the same times and addresses over and over.
"""

from __future__ import annotations

from .address import block_address, split_city
from .coordinates import round_coordinate
from .rows import normalize_rows
from .time import to_utc
from .units import split_units

__all__ = [
    "block_address",
    "normalize_rows",
    "round_coordinate",
    "split_city",
    "split_units",
    "to_utc",
]
