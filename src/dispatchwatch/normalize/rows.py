"""Raw rows of one page -> incidents: the several rows one incident may have are merged.

Uses the per-field rules of the sibling modules (times, addresses, units, coordinates), whose
costly parts (addresses, non-ISO times) are memoized per value (bounded caches); the single-row
case, by far the most common, skips the merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError, PageError
from ..incident import Incident
from ..scraper import RawRow
from .coordinates import round_coordinate
from .place import place
from .time import _fast_iso, to_utc
from .units import split_units

__all__ = ["normalize_rows"]

_NO_CITY_CODES: Mapping[str, str] = MappingProxyType({})
_CodesKey = tuple[tuple[str, str], ...]


def _clean(value: object) -> str | None:
    """Strip and collapse whitespace; empty -> None. Case is kept as the source gives it."""
    if value is None:
        return None
    # Every whitespace character but " " is unprintable: so text that is printable, with no
    # "  " and no space at either end, is already clean (the common case). (strip() gives
    # back the very same str when there is nothing to strip.)
    if (
        value.__class__ is str
        and value.isprintable()
        and "  " not in value
        and value.strip() is value
    ):
        return value or None
    return " ".join(str(value).split()) or None


_place = place  # (the name the rest of this module uses)

#: Text fields (call types, statuses, districts...) repeat from row to row: cleaned once each.
_clean_str = lru_cache(maxsize=4096)(_clean)


def _clean_text(value: object) -> str | None:
    """:func:`_clean`, memoized for text (other values are unhashable, maybe)."""
    return _clean_str(value) if value.__class__ is str else _clean(value)


#: Points rounded (value -> rounded), at most :data:`_ROUNDED_MAX`: emptied when full.
_ROUNDED: dict[float, float] = {}
_ROUNDED_MAX = 16384


def _round3(value: float) -> float:
    """``round(value, 3)``, memoized: a feed's points repeat (one per address), and rounding
    a float to 3 decimals is among the costlier steps of a row. A plain dict rather than an
    LRU: a bulk import's points are mostly all different, and an LRU's miss (evicting its
    oldest entry) costs more than the rounding it saves."""
    rounded = _ROUNDED.get(value)
    if rounded is None:
        if len(_ROUNDED) >= _ROUNDED_MAX:
            _ROUNDED.clear()
        rounded = _ROUNDED[value] = round(value, 3)
    return rounded


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

    # Incident ID -> its (received_at, row), or a list of them when the page lists the
    # incident on several rows; in first-appearance order.
    groups: dict[str, Any] = {}
    for index, row in enumerate(rows):
        incident_id = _clean(row.incident_id)
        if incident_id is None:
            raise PageError(f"{feed}: row {index + 1} of the page has no incident ID")
        received = row.received
        try:  # (plain ISO text, the common case, straight to its fast path)
            received = (received.__class__ is str and _fast_iso(received, timezone)) or to_utc(
                received, timezone
            )
        except PageError as exc:
            raise PageError(f"{feed}: incident {incident_id}: {exc}") from exc
        member = (received, row)
        prior = groups.setdefault(incident_id, member)
        if prior is not member:
            if prior.__class__ is list:
                prior.append(member)
            else:
                groups[incident_id] = [prior, member]

    incidents = []
    append = incidents.append
    for incident_id, member in groups.items():
        if member.__class__ is list:
            append(_merge(feed, incident_id, member, codes, default_city, exact))
        else:
            append(_one_row(feed, incident_id, member[0], member[1], codes, default_city, exact))
    return incidents


def _one_row(
    feed: str,
    incident_id: str,
    received_at: str | None,
    row: RawRow,
    codes: _CodesKey,
    default_city: str | None,
    exact: bool,
) -> Incident:
    """The incident listed on one row: what :func:`_merge` gives for one member, without its
    sorting and unions (the ingest hot path: missing values and float coordinates skip the
    general helpers; addresses go through the memoized :func:`place`)."""
    address = row.address
    if address is None:
        address, city = None, default_city
    else:
        text = _clean(address)
        address, city = (None, default_city) if text is None else _place(
            text, codes, default_city, exact
        )  # fmt: skip
    lat, lon = row.latitude, row.longitude
    if lat.__class__ is float and lon.__class__ is float:  # round_coordinate's rules, inline
        if -180.0 <= lat <= 180.0 and lat != 0.0 and -180.0 <= lon <= 180.0 and lon != 0.0:
            if not exact:
                lat, lon = _round3(lat), _round3(lon)
        else:
            lat = lon = None
    else:
        lat = round_coordinate(lat, exact=exact)
        lon = round_coordinate(lon, exact=exact)
        if lat is None or lon is None:
            lat = lon = None
    units = row.units
    if units is not None:
        units = " ".join(split_units(units)) or None
    call_type, priority, status = row.call_type, row.priority, row.status
    disposition, district, beat = row.disposition, row.district, row.beat
    extra = row.extra
    return Incident(
        feed,
        incident_id,
        received_at,
        None if call_type is None else _clean_text(call_type),
        None if priority is None else _clean_text(priority),
        None if status is None else _clean_text(status),
        None if disposition is None else _clean_text(disposition),
        address,
        city,
        None if district is None else _clean_text(district),
        None if beat is None else _clean_text(beat),
        units,
        lat,
        lon,
        dict(extra) if extra else {},
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
