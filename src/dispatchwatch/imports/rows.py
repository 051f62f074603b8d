"""Turning one row of an export into a :class:`~dispatchwatch.scraper.RawRow`, by a mapping.

:func:`compile_calls` resolves the mapping's columns against a file's header once, and
returns a function ``row -> (RawRow, city)``. A row that cannot be read raises
:class:`RowError` whose reason names the column and the problem, never the cell's content
(errors are printed and may be stored; cells hold addresses and free text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ..errors import PageError
from ..normalize import to_utc
from ..normalize.coordinates import LAT_LON_TEXT
from ..normalize.time import _fast_iso, _fast_us
from ..scraper import RawRow
from .mapping import ImportMapping, canonical, resolve_columns, row_function

__all__ = ["RowError", "cell_text", "compile_calls", "parse_point", "parse_time"]

_RAW_FIELDS = ("call_type", "priority", "status", "disposition", "address", "district", "beat")


class RowError(Exception):
    """One row cannot be read; ``str(exc)`` is the reason (no cell content)."""


def cell_text(value: Any) -> str | None:
    """A cell as text: stripped, ``None`` when empty; ``2.0`` (a spreadsheet number) -> ``"2"``."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value).strip() or None


def _extra_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return value
    return cell_text(value)


def _joined(values: Sequence[Any], join: str) -> Any:
    """Several cells of one field as one value: a date cell and a time cell make a datetime."""
    if len(values) == 2 and isinstance(values[0], datetime | date):
        day, clock = values
        base = datetime(day.year, day.month, day.day)
        if isinstance(clock, time):
            return datetime.combine(base.date(), clock)
        if isinstance(clock, datetime):  # a time cell some writers store on 1899-12-30
            return datetime.combine(base.date(), clock.time())
        if isinstance(clock, float) and 0 <= clock < 1:  # a fraction of a day
            return base + timedelta(seconds=round(clock * 86400))
        if isinstance(clock, str) and clock.strip():
            return f"{base.date().isoformat()} {clock.strip()}"
    texts = [t for t in (cell_text(v) for v in values) if t]
    return join.join(texts) or None


def parse_time(value: Any, formats: Sequence[str], zone: str) -> str | datetime | None:
    """A received time as :class:`RawRow` takes it, or ``None`` for an empty cell.

    ``formats`` are tried in order: ``auto`` is the normalizer's own parser (US and ISO forms,
    epoch numbers; the time as it reads it, UTC text, is returned), anything else a
    ``strptime`` format giving a naive local time. A spreadsheet date cell is used as it is.
    Raises :class:`RowError`.
    """
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = value if isinstance(value, str) else cell_text(value)
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    for fmt in formats:
        if fmt == "auto":
            try:  # its UTC text: the normalizer reads that back to itself, not parsed again
                return to_utc(text, zone)
            except PageError:
                continue
        parsed = _strptime(text, fmt)
        if parsed is not None:
            return parsed
    raise RowError("no format matched")


@lru_cache(maxsize=16384)
def _strptime(text: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(text, fmt)
    except ValueError:
        return None


_POINT_WKT = re.compile(r"POINT\s*\(\s*(-?[0-9.]+)\s+(-?[0-9.]+)\s*\)", re.I)


def parse_point(value: Any) -> tuple[Any, Any]:
    """``(latitude, longitude)`` from a point cell, or ``(None, None)``.

    Understood: WKT ``POINT (lon lat)`` (Socrata CSV), ``(lat, lon)`` and ``lat, lon`` text,
    a GeoJSON geometry ``{"type": "Point", "coordinates": [lon, lat]}``, a Socrata location
    object ``{"latitude": ..., "longitude": ...}``. Values are not range-checked here: the
    normalizer rounds them and drops impossible ones.
    """
    if value is None:
        return None, None
    if isinstance(value, dict):
        if "coordinates" in value:
            coordinates = value.get("coordinates")
            if isinstance(coordinates, list) and len(coordinates) >= 2:
                return _number(coordinates[1]), _number(coordinates[0])
            return None, None
        return _number(value.get("latitude")), _number(value.get("longitude"))
    if isinstance(value, list) and len(value) >= 2:
        return _number(value[1]), _number(value[0])
    text = cell_text(value)
    if not text:
        return None, None
    match = _POINT_WKT.search(text)
    if match:
        return float(match.group(2)), float(match.group(1))
    match = LAT_LON_TEXT.fullmatch(text)
    if match:
        return float(match.group(1)), float(match.group(2))
    return None, None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


RowMapper = Callable[[Any], tuple[RawRow, str | None]]


def compile_calls(
    mapping: ImportMapping,
    header: Sequence[str],
    *,
    keyed: bool,
    zone: str,
    where: str,
    check_only: bool = False,
) -> RowMapper:
    """A function reading one row (a list aligned with ``header``, or a dict when ``keyed``)
    into ``(RawRow, city)``; ``city`` is the mapped city column's value (else ``None``).

    ``check_only``: a cheaper function that only checks what can fail (the incident ID and
    the time, the row's width) and returns ``None``; for reading a file before writing it.
    Raises :class:`ConfigError` naming the mapped columns ``header`` lacks.
    """
    wanted = [
        (column, name, spec.optional)
        for name, spec in mapping.fields.items()
        for column in spec.columns
    ]
    if isinstance(mapping.extra, tuple):
        wanted += [(column, "extra", False) for column in mapping.extra]
    wanted += [(column, "drop", True) for column in mapping.drop]
    found = resolve_columns(header, wanted, where)
    if mapping.row is not None:
        return _function_mapper(mapping, header, keyed, zone, check_only)
    build = _build(mapping, zone, check_only)
    if keyed:
        return _keyed_mapper(mapping, build)
    return _list_mapper(mapping, header, found, build)


def _used_indexes(mapping: ImportMapping, found: dict[str, int | None]) -> set[int]:
    used = set()
    for spec in mapping.fields.values():
        used.update(i for c in spec.columns if (i := found[c]) is not None)
    used.update(i for c in mapping.drop if (i := found[c]) is not None)
    return used


Build = Callable[[dict[str, Any], Callable[[], dict[str, Any]]], Any]


def _text(value: Any) -> str | None:
    if type(value) is str:  # the common case (CSV): no further checks
        return value.strip() or None
    return cell_text(value)


def _build(mapping: ImportMapping, zone: str, check_only: bool) -> Build:
    """The part shared by list and dict rows: ``got`` holds each mapped field's raw value,
    ``extra()`` makes the row's ``extra``."""
    fields = mapping.fields
    constants = mapping.constants
    time_spec = fields["received"]
    id_column = "+".join(fields["incident_id"].columns)
    time_column = "+".join(time_spec.columns)
    simple = [name for name in (*_RAW_FIELDS, "units") if name in fields]
    fixed = {name: constants[name] for name in (*_RAW_FIELDS, "units") if name in constants}
    has_city = "city" in fields
    has_location = "location" in fields
    points = [name for name in ("latitude", "longitude") if name in fields]
    formats = time_spec.formats

    def check(got: dict[str, Any]) -> tuple[str, Any]:
        incident_id = _text(got["incident_id"])
        if incident_id is None:
            raise RowError(f"no incident ID (column {id_column!r})")
        try:
            return incident_id, parse_time(got["received"], formats, zone)
        except RowError:
            raise RowError(
                f"unreadable time in column {time_column!r} (tried {', '.join(formats)})"
            ) from None

    def check_only_build(got: dict[str, Any], extra: Callable[[], dict[str, Any]]) -> None:
        check(got)

    if check_only:
        return check_only_build

    def build(got: dict[str, Any], extra: Callable[[], dict[str, Any]]) -> tuple[RawRow, Any]:
        incident_id, received = check(got)
        values: dict[str, Any] = dict(fixed)
        for name in simple:
            values[name] = _text(got[name])
        if has_location:
            values["latitude"], values["longitude"] = parse_point(got["location"])
        for name in points:
            values[name] = _text(got[name])
        city = _text(got["city"]) if has_city else None
        return RawRow(incident_id, received, extra=extra(), **values), city

    return build


def _list_mapper(
    mapping: ImportMapping, header: Sequence[str], found: dict[str, int | None], build: Build
) -> RowMapper:
    width = len(header)
    if mapping.extra == "unmapped":
        used = _used_indexes(mapping, found)
        extra_columns = [(header[i], i) for i in range(width) if i not in used]
    elif mapping.extra == "none":
        extra_columns = []
    else:
        extra_columns = [(header[i], i) for c in mapping.extra if (i := found[c]) is not None]
    single = [
        (name, found[spec.columns[0]])
        for name, spec in mapping.fields.items()
        if len(spec.columns) == 1
    ]
    joined = [
        (name, [found[c] for c in spec.columns], spec.join)
        for name, spec in mapping.fields.items()
        if len(spec.columns) > 1
    ]

    def map_row(row: Sequence[Any]) -> Any:
        size = len(row)
        if size > width and any(cell_text(v) for v in row[width:]):
            raise RowError(f"{size} cells, but the header has {width} columns")
        got = {
            name: row[index] if index is not None and index < size else None
            for name, index in single
        }
        for name, indexes, join in joined:
            got[name] = _joined(
                [row[i] if i is not None and i < size else None for i in indexes], join
            )

        def extra() -> dict[str, Any]:
            out = {}
            for name, index in extra_columns:
                if index < size:
                    value = row[index]
                    if type(value) is str:
                        value = value.strip()
                        if value:
                            out[name] = value
                    elif (value := _extra_value(value)) is not None:
                        out[name] = value
            return out

        return build(got, extra)

    return map_row


def _keyed_mapper(mapping: ImportMapping, build: Build) -> RowMapper:
    # Keys are matched by meaning on every row: JSON exports omit empty fields, and a key
    # first seen late in the file is still found.
    meaning = {
        name: tuple(canonical(c) for c in spec.columns) for name, spec in mapping.fields.items()
    }
    joins = {name: spec.join for name, spec in mapping.fields.items()}
    used = {m for names in meaning.values() for m in names} | {canonical(c) for c in mapping.drop}
    kept = {canonical(c) for c in mapping.extra} if isinstance(mapping.extra, tuple) else None

    def map_row(row: dict[str, Any]) -> Any:
        current = {_canonical(str(k)): (str(k), v) for k, v in row.items()}
        got: dict[str, Any] = {}
        for name, names in meaning.items():
            if len(names) == 1:
                pair = current.get(names[0])
                got[name] = pair[1] if pair else None
            else:
                got[name] = _joined(
                    [current[n][1] if n in current else None for n in names], joins[name]
                )

        def extra() -> dict[str, Any]:
            if mapping.extra == "none":
                return {}
            out = {}
            for key, (name, value) in current.items():
                if key in used or (kept is not None and key not in kept):
                    continue
                value = _extra_value(value)
                if value is not None:
                    out[name] = value
            return out

        return build(got, extra)

    return map_row


_canonical = lru_cache(maxsize=4096)(canonical)


def _function_mapper(
    mapping: ImportMapping, header: Sequence[str], keyed: bool, zone: str, check_only: bool
) -> RowMapper:
    """Rows read by the mapping's ``row`` function (a scraper's own reader). When the
    function has a ``many`` form (``many(header, rows)`` -> a list of rows or exceptions,
    as the function reads each ``dict(zip(header, row))``), list rows are also read in
    chunks through it: the returned mapper's ``many`` (rows -> results or RowErrors). A
    row's received text, read to check it, comes back as that reading (UTC ISO text, which
    ``to_utc`` reads back to itself): the normalizer does not parse the local text again.
    When the function also has a ``stored`` form (``stored(header)`` -> a
    :data:`~dispatchwatch.normalize.rows.PageNormalizer` of list records, or None), the
    mapper's ``stored`` is that for ``header`` (None when checking only): see
    :mod:`.run`."""
    function = row_function(str(mapping.row), mapping.name)
    names = list(header)
    fast_iso, fast_us = _fast_iso, _fast_us

    def checked(raw: Any) -> Any:
        if not isinstance(raw, RawRow) or not _text(raw.incident_id):
            raise RowError("no incident ID")
        received = raw.received
        # parse_time(received, ("auto",), zone), spelled out: only to_utc can fail.
        if isinstance(received, str) and (received := received.strip()):
            try:
                utc = to_utc(received, zone)
            except PageError:
                raise RowError("unreadable time") from None
            # The row goes on with the time as read (UTC text, which the normalizer reads
            # back to itself on its ISO fast path) rather than parsed again from local text.
            raw.received = utc
        return None if check_only else (raw, None)

    def map_row(row: Any) -> Any:
        record = row if keyed else dict(zip(names, row, strict=False))
        try:
            raw = function(record)
        except Exception as exc:  # a reader's error text may quote the cell: keep the type
            raise RowError(f"the mapping's row function failed ({type(exc).__name__})") from None
        return checked(raw)

    many = getattr(function, "many", None)
    if many is None or keyed:
        return map_row

    def map_many(rows: Sequence[Any]) -> list[Any]:
        results: list[Any] = []
        append = results.append
        for raw in many(names, rows):
            # checked(raw), inline for the common row (a RawRow with an ID and a time that
            # to_utc's own fast paths read, as to_utc would): no call a row but the reading.
            if raw.__class__ is RawRow and not check_only:
                incident_id, received = raw.incident_id, raw.received
                if (
                    incident_id.__class__ is str
                    and incident_id.strip()
                    and received.__class__ is str
                    and (received := received.strip())
                    and (
                        utc := (
                            fast_iso(received, zone)
                            if received[4:5] == "-"
                            else fast_us(received, zone)
                        )
                    )
                ):
                    raw.received = utc
                    append((raw, None))
                    continue
            if isinstance(raw, Exception):
                append(RowError(f"the mapping's row function failed ({type(raw).__name__})"))
                continue
            try:
                append(checked(raw))
            except RowError as exc:
                append(exc)
        return results

    map_row.many = map_many  # type: ignore[attr-defined]
    # A one-pass form (records -> the archive's columns, see normalize.rows.page_normalizer):
    # ``stored(header)`` gives it for a header, or None. Checking only, nothing is stored.
    stored = getattr(function, "stored", None)
    map_row.stored = None if stored is None or check_only else stored(tuple(names))  # type: ignore[attr-defined]
    return map_row
