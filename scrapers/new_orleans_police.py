"""New Orleans Police Department: Calls for Service (Socrata, one dataset per year, data.nola.gov).

Updated daily with the previous day's closed calls. The feed polls the current year's dataset
(the year in Central time) and, for a week after New Year, the previous year's too; each
dataset keeps its own watermark on the create time (``timecreate``). NOPD may reclassify a
call for up to 36 hours after it is closed, so every poll re-reads the last 72 hours before
the watermark (``look_back``): a reclassified call adds one version, unchanged ones nothing.
A poll when nothing changed is one small request (the adapter's probe).

Quirks (reproduced in ``fixtures/socrata/new_orleans_*.json``):

- Column names differ between years: 2011-2012 ``type`` and no ``Initial*``, ``SelfInitiated``
  or ``Beat``; 2013-2016 ``type_``; 2015+ add ``InitialType``, ``InitialTypeText``,
  ``InitialPriority``, ``SelfInitiated``, ``Beat``; later years add ``location`` (a point,
  ``[0,0]`` when unknown) and store times and ``PoliceDistrict`` as text. The API lower-cases
  names, the CSV export keeps their case: columns are looked up case-insensitively.
- The final type and priority are the call's (``call_type`` is the type text, the code is in
  ``extra``); the initial ones go to ``extra``; the disposition text is the disposition.
- ``BLOCK_ADDRESS`` is already block level with a zero-padded block (``054XX Laurel St`` ->
  ``54XX LAUREL ST``); recent rows can read ``Approx Loc: 015XX Iberville St`` (the prefix is
  dropped and ``extra.approximate_location`` set).
- Coordinates: ``location`` where present (the API's point, the CSV export's WKT ``POINT (lon
  lat)`` or ``(lat, lon)`` text), else ``MapX``/``MapY``, Louisiana South state-plane
  feet (NAD83, US survey feet, EPSG:3452), converted with pyproj. Points at ``0,0`` or outside
  Orleans Parish are junk and dropped (the call is kept). Sensitive calls carry none.
"""

from __future__ import annotations

import re
import threading
from array import array
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from dispatchwatch.normalize.coordinates import LAT_LON_TEXT
from dispatchwatch.normalize.memo import Memo
from dispatchwatch.normalize.rows import _received_utc
from dispatchwatch.normalize.time import _TAILS, _US_HEADS, _hour_memo, _us_24_hour
from dispatchwatch.scraper import RawRow
from dispatchwatch.sources import socrata
from dispatchwatch.sources.socrata import text

#: Year -> Socrata dataset id of "Calls for Service YYYY" (a new one appears each January;
#: config.yaml can add it: ``datasets: {2027: abcd-1234}``).
DATASETS = {
    2011: "28ec-c8d6", 2012: "rv3g-ypg7", 2013: "5fn8-vtui", 2014: "jsyu-nz5r",
    2015: "w68y-xmk6", 2016: "wgrp-d3ma", 2017: "bqmt-f3jk", 2018: "9san-ivhk",
    2019: "qf6q-pp4b", 2020: "hp7u-i9hf", 2021: "3pha-hum9", 2022: "nci8-thrr",
    2023: "pc5d-tvaw", 2024: "2zcj-b6ts", 2025: "4xwx-sfte", 2026: "es9j-6y5d",
}  # fmt: skip
URL = f"https://data.nola.gov/resource/{DATASETS[max(DATASETS)]}.json"
HOMEPAGE = "https://data.nola.gov/browse?q=calls+for+service"
#: Orleans Parish, generously (longitude west..east, latitude south..north).
PARISH = (-90.15, -89.60, 29.85, 30.21)
#: The state plane of MapX/MapY: NAD83 / Louisiana South (US survey feet).
STATE_PLANE = "EPSG:3452"

_ZERO_BLOCK = re.compile(r"^0+(?=\d+XX\b)", re.I)
_APPROX = re.compile(r"^\s*approx(?:imate)?\.?\s+loc(?:ation)?\s*:\s*", re.I)
_USED = {
    "nopd_item", "type", "type_", "typetext", "priority", "initialtype", "initialtypetext",
    "initialpriority", "mapx", "mapy", "timecreate", "disposition", "dispositiontext",
    "beat", "block_address", "policedistrict", "location",
}  # fmt: skip
#: Extra columns under friendlier names.
_EXTRA = {
    "type_": "type_code", "type": "type_code", "initialtype": "initial_type_code",
    "initialtypetext": "initial_type", "initialpriority": "initial_priority",
    "disposition": "disposition_code", "selfinitiated": "self_initiated",
    "timedispatch": "time_dispatch", "timearrive": "time_arrive", "timeclosed": "time_closed",
    "zip": "zip",
}  # fmt: skip

#: What never goes to ``extra`` as it is (mapped, or renamed above).
_NOT_EXTRA = frozenset(_USED | set(_EXTRA))

_local = threading.local()  # pyproj transformers are not thread-safe


def _transformer() -> Any:
    transformer = getattr(_local, "transformer", None)
    if transformer is None:
        from pyproj import Transformer

        transformer = Transformer.from_crs(STATE_PLANE, "EPSG:4326", always_xy=True)
        _local.transformer = transformer
    return transformer


def in_parish(latitude: float | None, longitude: float | None) -> bool:
    west, east, south, north = PARISH
    return (
        latitude is not None
        and longitude is not None
        and south <= latitude <= north
        and west <= longitude <= east
    )


def _positive(x: Any, y: Any) -> tuple[float, float] | tuple[None, None]:
    try:
        fx, fy = float(x), float(y)
    except (TypeError, ValueError):
        return None, None
    if fx <= 0 or fy <= 0:
        return None, None
    return fx, fy


def _lat_lon(text: str) -> tuple[float | None, float | None]:
    """``(latitude, longitude)`` of ``(lat, lon)`` text, else ``(None, None)``."""
    match = LAT_LON_TEXT.fullmatch(text.strip())
    if match is None:
        return None, None
    return float(match.group(1)), float(match.group(2))


def point(value: Any) -> tuple[float | None, float | None]:
    """``(latitude, longitude)`` of a ``location`` cell: ``(lat, lon)`` text (the CSV
    export's), else what :func:`socrata.point` reads (the API's point, WKT), else ``(None,
    None)``. Not range-checked here (the reader keeps only points in the parish)."""
    if isinstance(value, str) and value.lstrip()[:1] == "(":
        return _lat_lon(value)
    return socrata.point(value)


@lru_cache(maxsize=65536)
def state_plane_to_lat_lon(x: str | float, y: str | float) -> tuple[float | None, float | None]:
    """``MapX``/``MapY`` (Louisiana South state-plane feet) -> ``(latitude, longitude)``, or
    ``(None, None)`` for missing, zero or unparsable values and points outside the parish."""
    fx, fy = _positive(x, y)
    if fx is None or fy is None:
        return None, None
    lon, lat = _transformer().transform(fx, fy)
    return (lat, lon) if in_parish(lat, lon) else (None, None)


@lru_cache(maxsize=8192)
def block(address: str | None) -> tuple[str | None, bool]:
    """``BLOCK_ADDRESS`` without the ``Approx Loc:`` prefix and the block's leading zeros;
    and whether it was approximate. Memoized: block addresses repeat from call to call."""
    if address is None:
        return None, False
    stripped = _APPROX.sub("", address)
    approximate = stripped != address
    return _ZERO_BLOCK.sub("", stripped.strip()) or None, approximate


#: :func:`block` of a cell's text (or None) in front of its memo: a dict lookup when it hits
#: (cheaper than an lru_cache call on every row).
_blocks = Memo(block, 8192)


@lru_cache(maxsize=64)
def _lower(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The column names of a file or dataset in lower case (worked out once per header)."""
    return tuple(column.lower() for column in columns)


#: The cells :func:`_read` reads, by their column's name in lower case.
_WANTED = (
    "location", "mapx", "mapy", "nopd_item", "timecreate", "typetext", "type_", "type",
    "priority", "dispositiontext", "disposition", "policedistrict", "beat", "block_address",
)  # fmt: skip


class _Columns:
    """Where each column :func:`row` reads sits in a record of one header (its keys in
    order): the last of several names equal but for case wins, as in a dict of lower-case
    names. Worked out once per header, with ``read``: :func:`_read` for records laid out so."""

    def __init__(self, names: tuple[str, ...]) -> None:
        at: dict[str, int] = {}
        for index, name in enumerate(_lower(names)):
            at[name] = index
        self.width = len(names)
        self.at = at
        self.renamed = tuple((at[col], name) for col, name in _EXTRA.items() if col in at)
        # socrata.extras: every other column but system ones (":id"), under its name in
        # lower case, in the order the record lists them.
        self.others = tuple(
            (name, index)
            for name, index in at.items()
            if name not in _NOT_EXTRA and not name.startswith(":")
        )
        self.read = _reader(self)


def _cell_lines(
    columns: _Columns, scope: dict[str, Any], *, stored: bool = False
) -> tuple[list[str], dict[str, str]]:
    """The generated lines (no indent) that read one record, ``values``, laid out as
    ``columns`` says (each cell at its index, an absent column None, ``(lat, lon)`` text read
    at once by its regex, the extra columns one by one with no loop), into variables; and
    each :class:`RawRow` field's expression of them. Also sets ``state_plane``: the
    ``(MapX, MapY)`` still to project, or None. What :func:`_reader` and
    :func:`stored_reader` share; column names are never pasted into the code (``k0``...
    name them, in ``scope``); indexes are numbers. ``stored`` (for :func:`stored_reader`:
    records of text, PARISH unpacked before): ``address``, ``city`` and ``approximate``
    through one memo of the stored address of a cell (``addresses``), and ``extra_text``:
    the stored JSON of ``extra`` written at once (:func:`_extra_lines`)."""
    at = columns.at
    cell = {name: (f"values[{at[name]}]" if name in at else "None") for name in _WANTED}
    scope.update({
        "RawRow": RawRow, "text": text, "point": point, "lat_lon": _lat_lon,
        "lat_lon_text": LAT_LON_TEXT.fullmatch, "blocks": _blocks,
        "is_geo": _is_geo, "PARISH": PARISH,
    })  # fmt: skip
    lines = [
        *([] if stored else ["west, east, south, north = PARISH"]),
        *(f"{name} = {cell[name]}" for name in _WANTED),
    ]
    if "location" in at:
        lines += [
            'if location.__class__ is str and location[:1] == "(":  # (lat, lon), not WKT',
            "    match = lat_lon_text(location)",
            "    if match is None:  # (or spaces around it)",
            "        lat, lon = lat_lon(location)",
            "    else:",
            "        lat = float(match[1])",
            "        lon = float(match[2])",
            "else:",
            "    lat, lon = point(location)",
        ]
    else:
        lines.append("lat = None")
    lines += [
        "state_plane = None",
        "if lat is None or not (south <= lat <= north and west <= lon <= east):",
        "    lat = lon = None",
        "    state_plane = (mapx, mapy)",
    ]
    if stored:
        lines += ["address, city, approximate = addresses[block_address]"]
        extra = _extra_lines(columns, scope)
        if extra is not None:
            return [*lines, *extra], _fields()
        lines += ["extra = {}"]  # (the dict, as below, then its JSON)
    else:
        lines += [
            "address, approximate = blocks[",
            "    (block_address.strip() or None)",
            "    if block_address.__class__ is str",
            "    else text(block_address)",
            "]",
            "extra = {}",
        ]
    for n, (index, name) in enumerate(columns.renamed):
        scope[f"k{n}"] = name
        lines += [
            f"value = values[{index}]",
            "if value.__class__ is str:",
            "    if value.strip():",
            f"        extra[k{n}] = value",
            "elif value is not None and text(value):",
            f"    extra[k{n}] = value",
        ]
    for n, (name, index) in enumerate(columns.others):
        scope[f"o{n}"] = name
        lines += [
            f"value = values[{index}]",
            'if value not in ("", None) and not is_geo(value):',
            f"    extra[o{n}] = value",
        ]
    lines += [
        "if approximate:",
        '    extra["approximate_location"] = True',
    ]
    if stored:
        lines.append("extra_text = extra_json(extra) if extra else None")
    return lines, _fields()


def _fields() -> dict[str, str]:
    """Each :class:`RawRow` field's expression of the variables :func:`_cell_lines` sets."""
    return {
        "incident_id": (
            '(nopd_item.strip() if nopd_item.__class__ is str else text(nopd_item) or "")'
        ),
        "received": (
            "((timecreate.strip() or None) if timecreate.__class__ is str else text(timecreate))"
        ),
        "call_type": (
            "((typetext.strip() if typetext.__class__ is str else text(typetext))"
            " or text(type_) or text(type))"
        ),
        "priority": "((priority.strip() or None) if priority.__class__ is str else text(priority))",
        "status": "None",
        "disposition": (
            "((dispositiontext.strip() if dispositiontext.__class__ is str"
            " else text(dispositiontext)) or text(disposition))"
        ),
        "address": "address",
        "district": (
            "((policedistrict.strip() or None) if policedistrict.__class__ is str"
            " else text(policedistrict))"
        ),
        "beat": "((beat.strip() or None) if beat.__class__ is str else text(beat))",
        "units": "None",
        "latitude": "lat",
        "longitude": "lon",
        "extra": "extra",
    }


def _extra_lines(columns: _Columns, scope: dict[str, Any]) -> list[str] | None:
    """Generated lines setting ``extra_text``: the stored JSON of the ``extra`` that
    :func:`_cell_lines` would make of a record of text (``extra_json`` of it: keys sorted,
    ``ensure_ascii=False``), or None when it is empty, written at once: each key's
    ``"key": "`` part is known here, the values are slotted in. A value that JSON escapes
    (not printable, ``\\``, a quote: checked on the whole text) goes the long way
    (``slow_extra``). None (no such lines) when a key repeats or is not plain text."""
    from json.encoder import encode_basestring  # type: ignore[attr-defined]

    from dispatchwatch.extrajson import extra_json

    keys = [
        *((name, "value.strip()", index) for index, name in columns.renamed),
        *((name, "value", index) for name, index in columns.others),
        ("approximate_location", "approximate", None),
    ]
    names = [name for name, _, _ in keys]
    if len(set(names)) != len(names) or any(
        not name.isprintable() or encode_basestring(name) != f'"{name}"' for name in names
    ):
        return None
    renamed, others = columns.renamed, columns.others

    def slow_extra(values: Sequence[Any], approximate: bool) -> str | None:
        """``extra_json`` of the record's ``extra`` as :func:`_read` makes it."""
        extra = {name: value for index, name in renamed if text(value := values[index])}
        for name, index in others:
            value = values[index]
            if value not in ("", None) and not _is_geo(value):
                extra[name] = value
        if approximate:
            extra["approximate_location"] = True
        return extra_json(extra) if extra else None

    scope["slow_extra"] = slow_extra
    lines = ["items = []"]
    for n, (name, test, index) in enumerate(sorted(keys)):
        if index is None:
            lines += [
                "if approximate:",
                f"    items.append({f'{encode_basestring(name)}: true'!r})",
            ]
            continue
        scope[f"j{n}"] = f"{encode_basestring(name)}: " + '"'
        lines += [
            f"value = values[{index}]",
            f"if {test}:",
            f"    items.append(j{n} + value + '\"')",
        ]
    lines += [
        "if items:",
        '    extra_text = "{" + ", ".join(items) + "}"',
        "    if (",
        "        not extra_text.isprintable()",
        '        or "\\\\" in extra_text',
        "        or extra_text.count('\"') != 4 * len(items) - 2 * approximate",
        "    ):",
        "        extra_text = slow_extra(values, approximate)",
        "else:",
        "    extra_text = None",
    ]
    return lines


def _reader(columns: _Columns) -> Any:
    """:func:`_read` for one header, generated (see :func:`_cell_lines`)."""
    scope: dict[str, Any] = {}
    cells, fields = _cell_lines(columns, scope)
    lines = [
        "def read(values):",
        *(f"    {line}" for line in cells),
        "    return RawRow(",
        *(f"        {expression}," for expression in fields.values()),
        "    ), state_plane",
    ]
    exec(compile("\n".join(lines), "<new orleans row reader>", "exec"), scope)  # noqa: S102
    return scope["read"]


_columns = lru_cache(maxsize=64)(_Columns)


def _project(
    pending: list[tuple[int, float, float]],
    latitudes: list[Any],
    longitudes: list[Any],
    exact: bool,
) -> None:
    """The ``(index, MapX, MapY)`` of :func:`stored_reader`'s rows without a point in the
    parish, projected in one pyproj call as :func:`rows` does; the stored coordinates of
    those that land in the parish set at their index (the others stay None)."""
    from dispatchwatch.normalize.rows import stored_point

    lons, lats = _transformer().transform(
        array("d", [x for _, x, _ in pending]), array("d", [y for _, _, y in pending])
    )
    west, east, south, north = PARISH
    for (index, _, _), lat, lon in zip(pending, lats, lons, strict=True):
        if south <= lat <= north and west <= lon <= east:  # in_parish
            latitudes[index], longitudes[index] = stored_point(lat, lon, exact)


@lru_cache(maxsize=64)
def stored_reader(header: tuple[str, ...]) -> Any:
    """A :data:`~dispatchwatch.normalize.rows.PageNormalizer` of the records of a file with
    ``header`` (lists of cells aligned with it): what :func:`rows` reads of them, then
    ``normalize_rows`` and ``StoredIncidents.of`` (the archive's columns), in one generated
    pass with no RawRow or Incident per row; None (for the caller to go the general way)
    as soon as a record's width is not the header's or its ID is missing, repeats or is not
    clean as it stands. None for a header that names a column twice (:func:`rows` reads
    those rows as dicts)."""
    from dispatchwatch.normalize.rows import page_normalizer

    if len(set(header)) != len(header):
        return None
    columns = _columns(header)
    scope: dict[str, Any] = {
        "project": _project, "address_memo": _addresses, "us_hour_memo": _us_hours,
    }  # fmt: skip
    from dispatchwatch.extrajson import extra_json

    scope["extra_json"] = extra_json
    cells, fields = _cell_lines(columns, scope, stored=True)
    present = {
        name: f"f_{name}"
        for name, expression in fields.items()
        if expression != "None" and name not in ("received", "address", "extra")
    }
    scope.update(tails=_TAILS, received_utc=_received_utc)
    cells = [
        "values = record",
        *cells,
        *(f"{variable} = {fields[name]}" for name, variable in present.items()),
        # The time as UTC text: to_utc's fast path of "M/D/YYYY H:MM:SS" (the hour's UTC
        # prefix from the zone's memo, then the minutes and seconds) inline, else to_utc.
        f"received = {fields['received']}",
        "if received is not None:",
        '    colon = received.find(":")',
        "    if (",
        '        colon > 0 and received[4:5] != "-"',
        "        and (tail := tails.get(received[colon:])) is not None",
        "        and (head := us_hours[received[:colon]]) is not None",
        "    ):",
        "        received = head + tail",
        "    else:",
        "        received = received_utc(received, timezone)",
        # rows(): MapX/MapY when they read as positive numbers, projected after the loop.
        "if state_plane is not None:",
        "    try:",
        "        x, y = float(mapx), float(mapy)",
        "    except (TypeError, ValueError):",
        "        pass",
        "    else:",
        "        if x > 0 and y > 0:",
        "            pending.append((len(ids), x, y))",
    ]
    return page_normalizer(
        cells,
        present,
        scope,
        "<new orleans stored reader>",
        record_check=[f"if len(record) != {columns.width}:", "    return None"],
        before=[
            "west, east, south, north = PARISH",
            "pending = []",
            "addresses = address_memo(places, default_city)",
            "us_hours = us_hour_memo(timezone)",
        ],
        after=["if pending:", "    project(pending, c_latitude, c_longitude, exact)"],
        stored={
            "received": "received",
            "address": "address",
            "city": "city",
            "extra": "extra_text",
        },  # fmt: skip
        # An ID as it stands is what a batch is cut by (imports.run): give up unless it is
        # also the stored one (no whitespace to collapse).
        clean_ids=False,
    )


def _us_hours(zone: str) -> Memo:
    """The zone's memo of local ``M/D/YYYY H`` hours -> UTC ``YYYY-MM-DDTHH`` (or None), as
    ``to_utc``'s fast path of US times reads them (``normalize.time._fast_us``)."""
    return _US_HEADS.get(zone) or _hour_memo(_US_HEADS, zone, _us_24_hour)


#: ``(places, default_city)`` -> the memo of :func:`_addresses` (a few at most).
_ADDRESSES: dict[tuple[int, str | None], tuple[Any, Memo]] = {}


def _addresses(places: Any, default_city: str | None) -> Memo:
    """A memo of ``BLOCK_ADDRESS`` cells (text) -> ``(address, city, approximate)`` as
    stored with the memo of ``places`` (see ``normalize.rows._places``): what :func:`block`
    and then the normalizer make of the cell, in one lookup."""
    key = (id(places), default_city)
    found = _ADDRESSES.get(key)
    if found is not None and found[0] is places:
        return found[1]

    def stored(cell: str) -> tuple[str | None, str | None, bool]:
        address, approximate = block(
            (cell.strip() or None) if cell.__class__ is str else text(cell)
        )
        if address is None:
            return None, default_city, approximate
        return (*places[address], approximate)

    if len(_ADDRESSES) >= 8:
        _ADDRESSES.clear()
    memo = Memo(stored, 8192)
    _ADDRESSES[key] = (places, memo)
    return memo


def _is_geo(value: Any) -> bool:
    """A point (kept out of ``extra``: exact coordinates are never stored), as
    :func:`socrata.extras` tells them."""
    return isinstance(value, dict) and (
        "coordinates" in value or "latitude" in value or "longitude" in value
    )


def _read(columns: _Columns, values: Sequence[Any]) -> tuple[RawRow, tuple[Any, Any] | None]:
    """One call from the values of a record laid out as ``columns`` says: the row, with its
    coordinates from ``location``, and else the ``MapX``/``MapY`` still to project (or None).
    (The work is ``columns.read``, generated per header; this is its reference form.)"""
    at = columns.at
    (
        location, mapx, mapy, item, created, type_text, type_code, type_old, priority,
        disposition_text, disposition, district, beat, block_address,
    ) = [values[i] if (i := at.get(name)) is not None else None for name in _WANTED]  # fmt: skip
    lat, lon = point(location)
    state_plane = None
    if lat is None or not in_parish(lat, lon):
        lat = lon = None
        state_plane = (mapx, mapy)
    address, approximate = block(text(block_address))
    extra = {name: value for index, name in columns.renamed if text(value := values[index])}
    for name, index in columns.others:
        value = values[index]
        if value not in ("", None) and not _is_geo(value):
            extra[name] = value
    if approximate:
        extra["approximate_location"] = True
    raw = RawRow(
        text(item) or "",
        text(created),
        text(type_text) or text(type_code) or text(type_old),
        text(priority),
        None,  # status
        text(disposition_text) or text(disposition),
        address,
        text(district),
        text(beat),
        None,  # units
        lat,
        lon,
        extra,
    )
    return raw, state_plane


def row(record: Mapping[str, Any]) -> RawRow:
    """One call of any year's dataset (API or CSV column names)."""
    raw, state_plane = _columns(tuple(record)).read(tuple(record.values()))
    if state_plane is not None:
        raw.latitude, raw.longitude = state_plane_to_lat_lon(*state_plane)
    return raw


def rows(header: Sequence[str], records: Sequence[Sequence[Any]]) -> list[RawRow | Exception]:
    """Many calls of a file (``records`` are lists of cells aligned with ``header``), each
    as :func:`row` reads ``dict(zip(header, record))``, or the exception it raised; the
    ``MapX``/``MapY`` of all of them are projected in one pyproj call."""
    header = tuple(header)
    columns = _columns(header)
    plain = len(set(header)) == len(header)  # else dict(zip(...)) drops repeated names
    out: list[RawRow | Exception] = []
    # The rows whose MapX/MapY are to be projected (positive numbers, as _positive reads them).
    pending: list[RawRow] = []
    xs: list[float] = []
    ys: list[float] = []
    read, append = columns.read, out.append
    for values in records:
        try:
            if not plain or len(values) != columns.width:
                append(row(dict(zip(header, values, strict=False))))
                continue
            raw, state_plane = read(values)
            append(raw)
            if state_plane is not None:
                try:
                    x, y = float(state_plane[0]), float(state_plane[1])
                except (TypeError, ValueError):
                    continue
                if x <= 0 or y <= 0:
                    continue
                pending.append(raw)
                xs.append(x)
                ys.append(y)
        except Exception as exc:  # noqa: BLE001 - reported per row by the caller
            append(exc)
    if pending:
        lons, lats = _transformer().transform(array("d", xs), array("d", ys))
        west, east, south, north = PARISH
        for raw, lat, lon in zip(pending, lats, lons, strict=True):
            if south <= lat <= north and west <= lon <= east:  # in_parish
                raw.latitude, raw.longitude = lat, lon
    return out


row.many = rows  # type: ignore[attr-defined]  # what `dispatchwatch import` uses for files
row.stored = stored_reader  # type: ignore[attr-defined]  # ... and for its one-pass batches


scraper = socrata.scraper(
    slug="new-orleans-police",
    name="New Orleans Police Calls for Service",
    agency="New Orleans Police Department",
    city="New Orleans",
    state="LA",
    url=URL,
    homepage=HOMEPAGE,
    timezone="America/Chicago",
    interval="1h",
    mode="incremental",
    time_field="timecreate",
    look_back="72h",
    datasets=DATASETS,
    year_overlap="7d",
    row=row,
    default_city="New Orleans",
    license="City of New Orleans open data (public domain dedication on the portal).",
    source_notes=(
        "Socrata, one dataset per year; updated daily with the previous day's closed calls. "
        "Final type/priority in call_type/priority, initial ones in extra; MapX/MapY "
        "(EPSG:3452 feet) converted with pyproj; junk points dropped."
    ),
)
