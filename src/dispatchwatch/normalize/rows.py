"""Raw rows of one page -> incidents: the several rows one incident may have are merged.

Uses the per-field rules of the sibling modules (times, addresses, units, coordinates); the
single-row case, by far the most common, is memoized (bounded cache).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError, PageError
from ..incident import Incident
from ..scraper import RawRow
from .address import block_address, split_city
from .coordinates import round_coordinate
from .time import to_utc
from .units import split_units

__all__ = ["normalize_rows"]

_NO_CITY_CODES: Mapping[str, str] = MappingProxyType({})
_CodesKey = tuple[tuple[str, str], ...]


def _clean(value: object) -> str | None:
    """Strip and collapse whitespace; empty -> None. Case is kept as the source gives it."""
    if value is None:
        return None
    return " ".join(str(value).split()) or None


@lru_cache(maxsize=64)
def _codes_dict(codes: _CodesKey) -> dict[str, str]:
    return dict(codes)


@lru_cache(maxsize=16384)
def _place(
    text: str, codes: _CodesKey, default_city: str | None, exact: bool
) -> tuple[str | None, str | None]:
    """Stored (address, city) for one cleaned address text."""
    if exact:
        return split_city(text.upper(), _codes_dict(codes), default_city)
    address, city = split_city(text, _codes_dict(codes), default_city)
    return block_address(address), city


def normalize_rows(
    rows: Iterable[RawRow],
    *,
    feed: str,
    timezone: str,
    city_codes: Mapping[str, str] = _NO_CITY_CODES,
    default_city: str | None = None,
    precision: str = "block",
) -> list[Incident]:
    """Turn the raw rows of one page into incidents, one per incident ID.

    Rows sharing an ID (Seattle lists one row per dispatched unit) merge: the earliest
    ``received_at``; units united in first-seen order; the other fields from the latest row
    (greatest received time, ties and missing times going to the row first in the page, since
    pages list newest first), each falling back to the next-latest row that has a value;
    ``extra`` updated from the oldest row to the latest. Incidents come out in the order they
    first appear in the page.

    ``precision="block"`` stores hundred-block addresses and coordinates rounded to 3
    decimals; ``"exact"`` keeps the address (upper-cased, city split off) and coordinates.
    A row without an incident ID, or with an unreadable time, raises :class:`PageError`.
    """
    if precision not in ("block", "exact"):
        raise ConfigError(f"precision must be 'block' or 'exact', not {precision!r}")
    exact = precision == "exact"
    # A hashable, upper-cased form of the codes, so addresses can be memoized per feed.
    codes: _CodesKey = tuple(sorted((k.strip().upper(), v) for k, v in city_codes.items()))

    groups: dict[str, list[tuple[str | None, RawRow]]] = {}  # first-appearance order
    for index, row in enumerate(rows):
        incident_id = _clean(row.incident_id)
        if incident_id is None:
            raise PageError(f"{feed}: row {index + 1} of the page has no incident ID")
        try:
            received = to_utc(row.received, timezone)
        except PageError as exc:
            raise PageError(f"{feed}: incident {incident_id}: {exc}") from exc
        groups.setdefault(incident_id, []).append((received, row))

    incidents = []
    for incident_id, members in groups.items():
        row = members[0][1]
        if len(members) == 1 and not row.extra and not isinstance(row.units, list):
            # The common case, and consecutive polls repeat most rows exactly: memoize.
            values = _single_row(
                feed,
                incident_id,
                members[0][0],
                row.call_type,
                row.priority,
                row.status,
                row.disposition,
                row.address,
                row.district,
                row.beat,
                row.units,
                row.latitude,
                row.longitude,
                codes,
                default_city,
                exact,
            )
            incidents.append(Incident(feed, incident_id, *values))
        else:
            incidents.append(_merge(feed, incident_id, members, codes, default_city, exact))
    return incidents


@lru_cache(maxsize=32768)
def _single_row(
    feed: str,
    incident_id: str,
    received_at: str | None,
    call_type: str | None,
    priority: str | None,
    status: str | None,
    disposition: str | None,
    address: str | None,
    district: str | None,
    beat: str | None,
    units: str | tuple[str, ...] | None,
    latitude: str | float | None,
    longitude: str | float | None,
    codes: _CodesKey,
    default_city: str | None,
    exact: bool,
) -> tuple[Any, ...]:
    """The tracked fields of an incident listed on one row (without ``extra``)."""
    row = RawRow(
        incident_id,
        received_at,
        call_type,
        priority,
        status,
        disposition,
        address,
        district,
        beat,
        units,
        latitude,
        longitude,
    )
    merged = _merge(feed, incident_id, [(received_at, row)], codes, default_city, exact)
    return (
        merged.received_at,
        merged.call_type,
        merged.priority,
        merged.status,
        merged.disposition,
        merged.address,
        merged.city,
        merged.district,
        merged.beat,
        merged.units,
        merged.latitude,
        merged.longitude,
    )


def _latest(rows: Sequence[RawRow], name: str) -> str | None:
    """The value of the latest row that has one (``rows`` is latest first)."""
    for row in rows:
        value = _clean(getattr(row, name))
        if value is not None:
            return value
    return None


def _newest_first_key(member: tuple[str | None, RawRow]) -> str:
    # ISO UTC text with 4-digit years sorts chronologically; a missing time sorts oldest.
    return member[0] or ""


def _merge(
    feed: str,
    incident_id: str,
    members: list[tuple[str | None, RawRow]],
    codes: _CodesKey,
    default_city: str | None,
    exact: bool,
) -> Incident:
    rows: Sequence[RawRow]
    if len(members) == 1:  # the common case: no sorting, no unions
        received_at, row = members[0]
        rows = (row,)
        units = split_units(row.units)
    else:
        received_at = min((t for t, _ in members if t is not None), default=None)
        # Latest first. The sort is stable (also with reverse=True), so rows with equal or
        # missing times stay in page order: the first in the page wins a tie.
        rows = [r for _, r in sorted(members, key=_newest_first_key, reverse=True)]
        seen: dict[str, None] = {}
        for _, row in members:  # page order: first seen first
            seen.update(dict.fromkeys(split_units(row.units)))
        units = list(seen)

    place: tuple[str | None, str | None] | None = None
    for row in rows:
        text = _clean(row.address)
        if text is not None:
            candidate = _place(text, codes, default_city, exact)
            if candidate[0] is not None:
                place = candidate
                break
            place = place or candidate  # only a city (",MKE"): keep looking for a street
    address, city = place or (None, default_city)

    # Latitude and longitude come as a pair from one row, never mixed from two.
    latitude = longitude = None
    for row in rows:
        lat = round_coordinate(row.latitude, exact=exact)
        lon = round_coordinate(row.longitude, exact=exact)
        if lat is not None and lon is not None:
            latitude, longitude = lat, lon
            break

    extra: dict[str, Any] = {}
    for row in reversed(rows):  # oldest first, so the latest value wins
        extra.update(row.extra)

    return Incident(
        feed=feed,
        incident_id=incident_id,
        received_at=received_at,
        call_type=_latest(rows, "call_type"),
        priority=_latest(rows, "priority"),
        status=_latest(rows, "status"),
        disposition=_latest(rows, "disposition"),
        address=address,
        city=city,
        district=_latest(rows, "district"),
        beat=_latest(rows, "beat"),
        units=" ".join(units) or None,
        latitude=latitude,
        longitude=longitude,
        extra=extra,
    )
