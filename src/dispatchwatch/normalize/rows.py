"""Raw rows of one page -> incidents: the several rows one incident may have are merged.

Uses the per-field rules of the sibling modules (times, addresses, units, coordinates), whose
costly parts (addresses, non-ISO times) are memoized per value (bounded caches); the single-row
case, by far the most common, skips the merge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError, PageError
from ..extrajson import extra_json
from ..incident import Incident
from ..scraper import RawRow
from .coordinates import round_coordinate
from .memo import Memo as _Memo
from .place import place
from .time import _fast_iso, _fast_us, to_utc
from .units import split_units

__all__ = [
    "PageNormalizer", "normalize_rows", "page_normalizer", "stored_columns", "stored_point",
]  # fmt: skip

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


#: Text fields (call types, statuses, districts...) repeat from row to row: cleaned once each
#: (text and None only: other values may hash alike but clean otherwise, ``1``, ``1.0``).
_TEXTS = _Memo(_clean, 4096)
_TEXTUAL = frozenset({str, type(None)})


def _round3(value: float) -> float:
    """``round(value, 3)``: the same float, about three times
    faster: ``round`` with digits goes through a decimal string; here the nearest integer
    ``n`` to ``value * 1000`` is found in binary, and ``n / 1000`` (a correctly rounded
    division) is the float nearest to ``n`` thousandths, which is what ``round`` returns,
    whenever ``n`` is surely the nearest integer to the exact product: its rounding error
    (below 1e-10 here) cannot carry it across a half. Near a half (a tie, or nearly), and
    for 0 (``round`` keeps the sign of ``-0.0001``), ``round`` itself. Tested against
    ``round`` on many values."""
    scaled = value * 1000.0
    if -1e8 < scaled < 1e8:  # (|value| below 1e5, where the error bound holds; not NaN)
        nearest = round(scaled)
        if nearest and -0.4999999 < scaled - nearest < 0.4999999:
            return nearest / 1000
    return round(value, 3)


#: Per feed settings (codes, default city, exact): an address cell as the source gives it
#: (text) -> its stored ``(address, city)``; the memos of at most :data:`_PLACES_MAX`
#: settings (the oldest goes first), each of at most :data:`_PLACE_CELLS` cells. (Misses
#: still find :func:`place`'s own memo.)
_PLACES: dict[tuple[_CodesKey, str | None, bool], _Memo] = {}
_PLACES_MAX = 8
_PLACE_CELLS = 8192


def _places(codes: _CodesKey, default_city: str | None, exact: bool) -> _Memo:
    """The memo of address cells for one feed's settings (:func:`place` of the cleaned text;
    a cell that cleans to nothing is ``(None, default_city)``)."""
    settings = (codes, default_city, exact)
    memo = _PLACES.get(settings)
    if memo is None:

        def stored(cell: str) -> tuple[str | None, str | None]:
            text = _clean(cell)
            return (None, default_city) if text is None else _place(
                text, codes, default_city, exact
            )  # fmt: skip

        if len(_PLACES) >= _PLACES_MAX:
            del _PLACES[next(iter(_PLACES))]
        memo = _PLACES[settings] = _Memo(stored, _PLACE_CELLS)
    return memo


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
    if rows.__class__ is not list and rows.__class__ is not tuple:
        rows = list(rows)  # (read twice when the fast pass gives up)
    try:
        places = _places(codes, default_city, exact)
        incidents = _single_rows(rows, feed, timezone, places, default_city, exact)
    except Exception:  # noqa: BLE001 - the general pass raises what is to be raised
        incidents = None
    if incidents is not None:
        return incidents
    return _grouped(rows, feed, timezone, codes, default_city, exact)


def _clean_id(incident_id: Any) -> str | None:
    """:func:`_clean` of an incident ID, with its fast path first (IDs are all different:
    not memoized)."""
    if (
        incident_id.__class__ is not str
        or not incident_id.isprintable()
        or "  " in incident_id
        or incident_id.strip() is not incident_id
    ):
        return _clean(incident_id)
    return incident_id


def _received_utc(received: Any, timezone: str) -> str | None:
    """:func:`to_utc` of a row's received time (None stays None), text, the common case,
    straight to its fast paths. Raises :class:`PageError` for a time it cannot read."""
    if received.__class__ is str:
        return (
            _fast_iso(received, timezone) if received[4:5] == "-" else _fast_us(received, timezone)
        ) or to_utc(received, timezone)
    return None if received is None else to_utc(received, timezone)


def _single_rows(
    rows: Sequence[RawRow],
    feed: str,
    timezone: str,
    places: _Memo,
    default_city: str | None,
    exact: bool,
) -> list[Incident] | None:
    """:func:`normalize_rows` in one pass when every row is its own incident (the bulk
    case): :func:`_grouped`'s answer, :func:`_one_row` of each row; None as soon as an
    incident ID repeats, and an exception for anything else unusual (an ID missing, a time
    unreadable): then :func:`_grouped` does it all again, and raises what it raises."""
    one_row = _one_row
    seen: set[str] = set()
    add = seen.add
    incidents: list[Incident] = []
    append = incidents.append
    for row in rows:
        incident_id = _clean_id(row.incident_id)
        if not incident_id or incident_id in seen:
            return None
        add(incident_id)
        received = _received_utc(row.received, timezone)
        append(one_row(feed, incident_id, received, row, places, default_city, exact))
    return incidents


def _grouped(
    rows: Sequence[RawRow],
    feed: str,
    timezone: str,
    codes: _CodesKey,
    default_city: str | None,
    exact: bool,
) -> list[Incident]:
    """:func:`normalize_rows`, the general way: rows grouped by incident ID first (raising
    :class:`PageError` for a row without an ID or with an unreadable time), then each
    incident made of its rows."""
    # Incident ID -> its (received_at, row), or a list of them when the page lists the
    # incident on several rows; in first-appearance order.
    groups: dict[str, Any] = {}
    for index, row in enumerate(rows):
        incident_id = _clean_id(row.incident_id)
        if not incident_id:
            raise PageError(f"{feed}: row {index + 1} of the page has no incident ID")
        try:
            received = _received_utc(row.received, timezone)
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
    places = _places(codes, default_city, exact)
    for incident_id, member in groups.items():
        if member.__class__ is list:
            append(_merge(feed, incident_id, member, codes, default_city, exact))
        else:
            append(_one_row(feed, incident_id, member[0], member[1], places, default_city, exact))
    return incidents


def _one_row(
    feed: str,
    incident_id: str,
    received_at: str | None,
    row: RawRow,
    places: _Memo,
    default_city: str | None,
    exact: bool,
) -> Incident:
    """The incident listed on one row: what :func:`_merge` gives for one member, without its
    sorting and unions (the ingest hot path: missing values and float coordinates skip the
    general helpers; address cells and text fields go through memos)."""
    address = row.address
    if address is None:
        city = default_city
    elif address.__class__ is str:
        address, city = places[address]
    else:
        address, city = places.function(address)
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
    texts, textual = _TEXTS, _TEXTUAL
    call_type, priority, status = row.call_type, row.priority, row.status
    disposition, district, beat = row.disposition, row.district, row.beat
    extra = row.extra
    return Incident(
        feed,
        incident_id,
        received_at,
        texts[call_type] if call_type.__class__ in textual else _clean(call_type),
        texts[priority] if priority.__class__ in textual else _clean(priority),
        texts[status] if status.__class__ in textual else _clean(status),
        texts[disposition] if disposition.__class__ in textual else _clean(disposition),
        address,
        city,
        texts[district] if district.__class__ in textual else _clean(district),
        texts[beat] if beat.__class__ in textual else _clean(beat),
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


# --- a page's records straight to stored columns ---------------------------------------------

#: Compiled by :func:`page_normalizer`: ``(records, timezone, places, default_city, exact)``
#: -> the stored columns of the page's incidents, or None (see there).
PageNormalizer = Callable[[list[Any], str, _Memo, "str | None", bool], "list[list[Any]] | None"]

#: The text fields of :class:`RawRow` that :func:`_one_row` cleans through ``_TEXTS``.
_TEXT_CELLS = ("call_type", "priority", "status", "disposition", "district", "beat")


def page_normalizer(
    cells: Sequence[str],
    present: Mapping[str, str],
    scope: Mapping[str, Any],
    name: str,
    *,
    record_check: Sequence[str] = ("if record.__class__ is not dict:", "    return None"),
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    stored: Mapping[str, str] | None = None,
    clean_ids: bool = True,
) -> PageNormalizer:
    """Compile a function that reads each record of a page and normalizes it, in one pass,
    into the page's incidents as the archive stores them (the columns of
    :class:`~dispatchwatch.archive.StoredIncidents`), without a :class:`RawRow` or an
    :class:`Incident` per row: what :func:`normalize_rows` of the rows gives, then
    ``StoredIncidents.of``, exactly (tested), when every incident is on one row.

    ``cells`` are the lines (no indent) that read one ``record`` (a dict) into variables;
    ``present`` maps each :class:`RawRow` field they set to its variable (a field not there
    is the default: None, ``""`` for the ID, no ``extra``); ``scope`` holds what the lines
    use. The function returns None, for the caller to go the general way, as soon as a
    record is not a dict or an incident ID is missing or repeats; it raises what the cells
    or the normalization raise (the general way then says what is wrong).

    ``record_check``: the lines that give up on a record the cells cannot read (by default
    one that is not a dict); ``before``: lines run once before the first record, ``after``:
    once after the last, before the columns are returned (they may change them: ``ids``,
    ``c_latitude``... as :data:`STORED_COLUMNS` names them). ``stored``: the variables the
    cells set to a stored value themselves, by column (``received``: the UTC text that
    ``to_utc`` gives of the field; ``address`` and ``city`` together,
    for a field ``present`` does not list; ``extra``: its stored JSON text, or None).
    ``clean_ids=False``: give up on an ID that is not clean as it stands, rather than
    cleaning it."""
    unknown = set(present) - set(RawRow.__dataclass_fields__)
    if unknown:
        raise ValueError(f"not fields of RawRow: {sorted(unknown)}")
    stored = stored or {}
    if set(stored) - {"received", "address", "city", "extra"} or set(stored) & set(present):
        raise ValueError(f"stored cells not for received/address/city/extra: {sorted(stored)}")
    if ("address" in stored) != ("city" in stored):
        raise ValueError("stored cells give the address and the city together, or neither")
    lines = [
        "def normalize_page(records, timezone, places, default_city, exact):",
        "    seen = set()",
        "    add = seen.add",
        "    ids = []",
        *(f"    {line}" for line in before),
    ]
    body = [*record_check, *cells]
    # The ID as _clean_id() cleans it; not memoized (IDs are all different).
    body += [
        f"incident_id = {present.get('incident_id', repr(''))}",
        "if (",
        "    incident_id.__class__ is not str",
        "    or not incident_id.isprintable()",
        '    or "  " in incident_id',
        "    or incident_id.strip() is not incident_id",
        "):",
        "    incident_id = clean(incident_id)" if clean_ids else "    return None",
        "if not incident_id or incident_id in seen:",
        "    return None",
        "add(incident_id)",
        "ids.append(incident_id)",
    ]
    columns = ["ids"]  # the returned columns, STORED_COLUMNS' order
    constant: dict[str, str] = {}  # column -> its value in every row, when fixed

    def column(name: str, expression: str) -> None:
        lines.append(f"    {name} = []")
        body.append(f"{name}.append({expression})")
        columns.append(name)

    if "received" in stored:
        column("c_received", stored["received"])
    elif "received" in present:
        column("c_received", f"received_utc({present['received']}, timezone)")
    else:
        constant["c_received"] = "None"
        columns.append("c_received")
    for field in ("call_type", "priority", "status", "disposition"):
        _text_column(field, present, column, constant, columns)
    if "address" in stored:
        column("c_address", stored["address"])
        column("c_city", stored["city"])
    elif "address" in present:  # as _one_row(): a text cell through the memo of places
        body += [
            f"address = {present['address']}",
            "if address is None:",
            "    city = default_city",
            "elif address.__class__ is str:",
            "    address, city = places[address]",
            "else:",
            "    address, city = places.function(address)",
        ]
        column("c_address", "address")
        column("c_city", "city")
    else:
        constant["c_address"], constant["c_city"] = "None", "default_city"
        columns += ["c_address", "c_city"]
    for field in ("district", "beat"):
        _text_column(field, present, column, constant, columns)
    if "units" in present:
        body += [
            f"units = {present['units']}",
            "if units is not None:",
            '    units = " ".join(split_units(units)) or None',
        ]
        column("c_units", "units")
    else:
        constant["c_units"] = "None"
        columns.append("c_units")
    # Coordinates as _one_row() takes them (its float fast path, else round_coordinate()).
    body += [
        f"lat, lon = {present.get('latitude', 'None')}, {present.get('longitude', 'None')}",
        "if lat.__class__ is float and lon.__class__ is float:",
        "    if -180.0 <= lat <= 180.0 and lat != 0.0 and -180.0 <= lon <= 180.0 and lon != 0.0:",
        "        if not exact:  # round3(), its common case inline",
        "            scaled = lat * 1000.0",
        "            if (",
        "                -1e8 < scaled < 1e8",
        "                and (near := round(scaled))",
        "                and -0.4999999 < scaled - near < 0.4999999",
        "            ):",
        "                lat = near / 1000",
        "            else:",
        "                lat = round3(lat)",
        "            scaled = lon * 1000.0",
        "            if (",
        "                -1e8 < scaled < 1e8",
        "                and (near := round(scaled))",
        "                and -0.4999999 < scaled - near < 0.4999999",
        "            ):",
        "                lon = near / 1000",
        "            else:",
        "                lon = round3(lon)",
        "    else:",
        "        lat = lon = None",
        "else:",
        "    lat = round_coordinate(lat, exact=exact)",
        "    lon = round_coordinate(lon, exact=exact)",
        "    if lat is None or lon is None:",
        "        lat = lon = None",
    ]
    column("c_latitude", "lat")
    column("c_longitude", "lon")
    if "extra" in stored:
        column("c_extra", stored["extra"])
    elif "extra" in present:  # as _one_row() copies it and StoredIncidents.of() encodes it
        extra = present["extra"]
        column("c_extra", f"extra_json(dict({extra})) if {extra} else None")
    else:
        constant["c_extra"] = "None"
        columns.append("c_extra")
    lines.append("    for record in records:")
    lines += [f"        {line}" for line in body]
    lines += [f"    {line}" for line in after]
    lines.append("    count = len(ids)")
    lines += [f"    {name} = [{value}] * count" for name, value in constant.items()]
    lines.append(f"    return [{', '.join(columns)}]")
    namespace = {
        **scope, "clean": _clean, "received_utc": _received_utc, "texts": _TEXTS,
        "textual": _TEXTUAL, "split_units": split_units, "round3": _round3,
        "round_coordinate": round_coordinate, "extra_json": extra_json,
    }  # fmt: skip
    exec(compile("\n".join(lines), name, "exec"), namespace)  # noqa: S102
    return namespace["normalize_page"]  # type: ignore[no-any-return]


def stored_point(lat: Any, lon: Any, exact: bool) -> tuple[Any, Any]:
    """A row's ``(latitude, longitude)`` as :func:`_one_row` stores them (both None, or
    both rounded unless ``exact``): for coordinates worked out after a page's pass."""
    if lat.__class__ is float and lon.__class__ is float:
        if -180.0 <= lat <= 180.0 and lat != 0.0 and -180.0 <= lon <= 180.0 and lon != 0.0:
            return (lat, lon) if exact else (_round3(lat), _round3(lon))
        return None, None
    lat = round_coordinate(lat, exact=exact)
    lon = round_coordinate(lon, exact=exact)
    return (None, None) if lat is None or lon is None else (lat, lon)


def _text_column(
    field: str,
    present: Mapping[str, str],
    column: Callable[[str, str], None],
    constant: dict[str, str],
    columns: list[str],
) -> None:
    """A text field's column for :func:`page_normalizer`, cleaned as :func:`_one_row` does
    (through the memo for text and None); None in every row when no cell sets it."""
    if field not in present:
        constant[f"c_{field}"] = "None"
        columns.append(f"c_{field}")
        return
    value = present[field]
    column(f"c_{field}", f"texts[{value}] if {value}.__class__ in textual else clean({value})")


def stored_columns(
    normalizer: PageNormalizer,
    records: list[Any],
    *,
    timezone: str,
    city_codes: Mapping[str, str] = _NO_CITY_CODES,
    default_city: str | None = None,
    precision: str = "block",
) -> list[list[Any]] | None:
    """The page's ``records`` through ``normalizer`` (see :func:`page_normalizer`) with a
    feed's settings, as :func:`normalize_rows` takes them; None when it gives up. Raises
    :class:`ConfigError` for a bad ``precision``, and what the normalizer raises."""
    if precision not in ("block", "exact"):
        raise ConfigError(f"precision must be 'block' or 'exact', not {precision!r}")
    exact = precision == "exact"
    codes: _CodesKey = tuple(sorted((k.strip().upper(), v) for k, v in city_codes.items()))
    return normalizer(records, timezone, _places(codes, default_city, exact), default_city, exact)
