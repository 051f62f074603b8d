"""Consecutive pages of one feed normalized with a memo of the rows the page before held.

A snapshot page (Milwaukee's list of the last 30-90 minutes' calls, refreshed every 5
minutes) repeats most of its rows from one capture to the next, cell for cell. A row that
stands alone on its page (no other row of the same incident) normalizes the same way
wherever it appears: :func:`~.rows.normalize_rows` reads it with nothing but the feed's
settings (zone, city codes, default city, precision) and its own cells; the page's "as of"
time plays no part. So :class:`PageMemo` keeps, for the last page it normalized, each
such row's cells and the incident they gave, and on the next page builds those incidents
again from the memo instead of normalizing their rows once more.

Everything else (new rows, rows of an incident listed more than once on the page, rows
with ``extra`` fields or with values that are not text) goes through
:func:`~.rows.normalize_rows` itself, and a page with any error is normalized whole again,
so the answer (incidents, their order, the error raised) is exactly
:func:`~.rows.normalize_rows`'s. The memo holds one page's rows (bounded by the page), and
belongs to one caller: it is not shared between threads.

Keeping the memo costs about as much per row as normalizing it (its keys and fields are
built for every row), which pays only when pages repeat. A row can be found in the memo only
if the page before listed its incident ID (the ID is part of the key): so each page's IDs are
kept too (a set, cheap), and the memo of a page is built only when that page shares an ID
with the page before (or is the first): a snapshot feed's pages always do, while the pages
of a bulk ingest (one after the other in time, each of new calls) never do, and are
normalized straight by :func:`~.rows.normalize_rows`. The answer is the same either way.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from types import NoneType
from typing import Any

from ..incident import Incident
from ..scraper import RawRow
from .rows import _clean, normalize_rows

__all__ = ["PageMemo"]

#: A raw row's cells, ``extra`` aside, as one tuple (the memo's key).
_cells = operator.attrgetter(*(name for name in RawRow.__dataclass_fields__ if name != "extra"))
#: An incident's fields, ``extra`` aside (a memoized row has none), in constructor order.
_INCIDENT_FIELDS = [name for name in Incident.__dataclass_fields__ if name != "extra"]
_fields = operator.attrgetter(*_INCIDENT_FIELDS)
#: Cell values a key may hold: text or nothing. (Numbers are left out: ``True == 1 == 1.0``
#: hash alike but do not normalize alike.)
_PLAIN = {str, NoneType}
_TEXT = {str}


class PageMemo:
    """:func:`~.rows.normalize_rows` for a sequence of pages of one feed, with the rows of
    the page before memoized (see the module docstring).

    >>> memo = PageMemo()                                          # doctest: +SKIP
    >>> memo.normalize_rows(rows, feed="f", timezone="America/Chicago")  # doctest: +SKIP

    ``hits`` and ``misses`` count rows built from the memo and rows normalized.
    """

    __slots__ = ("_settings", "_previous", "_ids", "hits", "misses")

    def __init__(self) -> None:
        self._settings: tuple[Any, ...] | None = None
        #: A row's cells -> (its incident ID, the incident's fields but ``extra``).
        self._previous: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = {}
        #: The incident ID cells (text) of the page before; None: no page yet (or one whose
        #: IDs are not all text), so the memo is built.
        self._ids: set[str] | None = None
        self.hits = 0
        self.misses = 0

    def normalize_rows(
        self,
        rows: Sequence[RawRow],
        *,
        feed: str,
        timezone: str,
        city_codes: Mapping[str, str] | None = None,
        default_city: str | None = None,
        precision: str = "block",
    ) -> list[Incident]:
        """The incidents of one page: what :func:`~.rows.normalize_rows` gives for the same
        arguments, in the same order; raises what it raises."""
        codes = dict(city_codes or {})
        settings = (feed, timezone, tuple(sorted(codes.items())), default_city, precision)
        if settings != self._settings:
            self._settings, self._previous, self._ids = settings, {}, None
        previous = self._previous

        def normalize(some: Sequence[RawRow]) -> list[Incident]:
            return normalize_rows(
                some, feed=feed, timezone=timezone, city_codes=codes,
                default_city=default_city, precision=precision,
            )  # fmt: skip

        # Whether this page shares an incident ID with the page before: else (a bulk ingest's
        # pages, one after the other) no row of the next page is likely to be found in a
        # memo of this one, and none of this one is in the memo: normalized straight.
        ids: set[str] | None
        try:
            ids = {row.incident_id for row in rows}
        except TypeError:  # (unhashable: not text)
            ids = None
        if ids is not None and not _TEXT.issuperset(map(type, ids)):
            ids = None  # an ID that is not text: the memo's way, which says what is wrong
        before, self._ids = self._ids, ids
        if before is not None and ids is not None and before.isdisjoint(ids):
            self._previous = {}
            self.misses += len(rows)
            return normalize(rows)

        # Per row: (incident ID, memoized fields or None, key or None); rows per ID.
        entries: list[tuple[str, tuple[Any, ...] | None, tuple[Any, ...] | None]] = []
        count: dict[str, int] = {}
        for row in rows:
            key = _cells(row)
            if row.extra or not _PLAIN.issuperset(map(type, key)):
                key = None
            found = previous.get(key) if key is not None else None
            if found is None:
                incident_id = _clean(row.incident_id) if row.incident_id.__class__ is str else None
                if incident_id is None:  # no ID, or not text: the page's error, as it says
                    return normalize(rows)
                entries.append((incident_id, None, key))
            else:
                incident_id = found[0]
                entries.append((incident_id, found[1], key))
            count[incident_id] = count.get(incident_id, 0) + 1

        # Normalized here: rows not in the memo, and every row of an incident listed twice.
        rest = [
            row
            for row, (incident_id, fields, _) in zip(rows, entries, strict=True)
            if fields is None or count[incident_id] > 1
        ]
        by_id: dict[str, Incident] = {}
        if rest:
            try:
                by_id = {incident.incident_id: incident for incident in normalize(rest)}
            except Exception:
                # Raised for a row of the page: normalized whole, it raises the same error
                # as it names it (its row number in the page, not among the rest).
                return normalize(rows)
        self.misses += len(rest)
        self.hits += len(rows) - len(rest)

        incidents: list[Incident] = []
        memo: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = {}
        for incident_id, fields, key in entries:
            if count[incident_id] == 0:
                continue  # emitted at its first row
            single = count[incident_id] == 1
            count[incident_id] = 0
            if fields is not None and single:
                incidents.append(Incident(*fields, {}))
            else:
                incident = by_id[incident_id]
                incidents.append(incident)
                if single and key is not None and not incident.extra:
                    fields = _fields(incident)
            if single and key is not None and fields is not None:
                memo[key] = (incident_id, fields)
        self._previous = memo
        return incidents
