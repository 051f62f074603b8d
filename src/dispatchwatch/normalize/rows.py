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
from .coordinates import round_coordinate
from .place import place
from .time import to_utc
from .units import split_units

__all__ = ["normalize_rows"]

_NO_CITY_CODES: Mapping[str, str] = MappingProxyType({})
_CodesKey = tuple[tuple[str, str], ...]


def _clean(value: object) -> str | None:
    """Strip and collapse whitespace; empty -> None. Case is kept as the source gives it."""
    if value is None:
        return None
    # Every whitespace character but " " is unprintable: so text that is printable, with no
    # "  " and no space at either end, is already clean (the common case).
    if (
        value.__class__ is str
        and value.isprintable()
        and "  " not in value
        and value[:1] != " "
        and value[-1:] != " "
    ):
        return value or None
    return " ".join(str(value).split()) or None


_place = place  # (the name the rest of this module uses)


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
        if len(members) > 1:
            incidents.append(_merge(feed, incident_id, members, codes, default_city, exact))
            continue
        received_at, row = members[0]
        args = (
            received_at, row.call_type, row.priority, row.status, row.disposition,
            row.address, row.district, row.beat, row.units, row.latitude, row.longitude,
            codes, default_city, exact,
        )  # fmt: skip
        if isinstance(row.units, list):  # not hashable: no memo
            values = _one_row(*args)
        else:
            try:  # consecutive polls repeat most rows exactly: memoized (bounded)
                values = _single_row(*args)
            except TypeError:  # another unhashable value from a plugin
                values = _one_row(*args)
        incidents.append(Incident(feed, incident_id, *values, dict(row.extra)))
    return incidents


def _one_row(
    received_at: str | None,
    call_type: str | None,
    priority: str | None,
    status: str | None,
    disposition: str | None,
    address: str | None,
    district: str | None,
    beat: str | None,
    units: str | Sequence[str] | None,
    latitude: str | float | None,
    longitude: str | float | None,
    codes: _CodesKey,
    default_city: str | None,
    exact: bool,
) -> tuple[Any, ...]:
    """The tracked fields (without ``extra``) of an incident listed on one row: what
    :func:`_merge` gives for one member, without its sorting and unions."""
    text = _clean(address)
    place, city = (None, default_city) if text is None else _place(text, codes, default_city, exact)
    lat = round_coordinate(latitude, exact=exact)
    lon = round_coordinate(longitude, exact=exact)
    if lat is None or lon is None:
        lat = lon = None
    return (
        received_at,
        _clean(call_type),
        _clean(priority),
        _clean(status),
        _clean(disposition),
        place,
        city,
        _clean(district),
        _clean(beat),
        " ".join(split_units(units)) or None,
        lat,
        lon,
    )


#: Bounded at 8,192 rows: enough for consecutive polls of a few feeds, whose rows mostly
#: repeat (a bulk ingest's rows are all new, and a larger memo only holds more of them:
#: 32,768 rows kept ~25 MB more alive on an import). ``typed``: ``1`` and ``True`` differ.
_single_row = lru_cache(maxsize=8192, typed=True)(_one_row)


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
