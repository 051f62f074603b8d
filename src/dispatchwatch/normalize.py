"""Normalization: source text -> the stored form of an incident.

Local wall-clock times become UTC, locations become hundred blocks, unit lists become unique
IDs, coordinates are rounded, and the several rows one incident may have in a page are merged
into one :class:`~dispatchwatch.incident.Incident`.

Everything here is pure (no I/O) and on the ingest hot path: regexes are compiled once, and the
per-string functions are memoized with :func:`functools.lru_cache`, because consecutive polls
of a feed repeat the same times and addresses over and over.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from .errors import ConfigError, PageError
from .incident import Incident
from .scraper import RawRow

__all__ = [
    "block_address",
    "normalize_rows",
    "round_coordinate",
    "split_city",
    "split_units",
    "to_utc",
]

# --- time -------------------------------------------------------------------------------------

# `[0-9]` rather than `\d`: only ASCII digits are time digits, but `\s` stays Unicode so a
# non-breaking space between date and time (common in scraped HTML) is still a separator.
_US_TIME = re.compile(
    r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})\s+([0-9]{1,2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.[0-9]+)?)?"
    r"(?:\s*([AaPp])\.?\s*[Mm]\.?)?"
)
_ISO_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:[.,][0-9]+)?)?"
    r"\s*(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?)?"
)
# 10 digits are epoch seconds (2001..2286), 12-13 are epoch milliseconds (1973..2286).
_EPOCH_TEXT = re.compile(r"[0-9]{10}|[0-9]{12,13}")
# Numbers at least this large are milliseconds: as seconds they would be after the year 5000.
_MS_THRESHOLD = 100_000_000_000
_EPOCH = datetime(1970, 1, 1)


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ValueError, LookupError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ConfigError(f"unknown time zone {name!r}") from exc


def _utc_text(naive_utc: datetime) -> str:
    # isoformat() of a naive datetime without microseconds is exactly what we store.
    return naive_utc.replace(microsecond=0).isoformat() + "Z"


def _invalid(value: object, why: object) -> PageError:
    return PageError(f"invalid date/time {value!r}: {why}")


def _wall_time(
    value: str, year: int, month: int, day: int, hour: int, minute: int, second: int
) -> datetime:
    """A validated naive datetime; hour 24 (only as 24:00[:00]) is midnight of the next day."""
    next_day = hour == 24 and minute == 0 and second == 0
    try:
        wall = datetime(year, month, day, 0 if next_day else hour, minute, second)
        return wall + timedelta(days=1) if next_day else wall
    except (ValueError, OverflowError) as exc:
        raise _invalid(value, exc) from None


def _local_to_utc(wall: datetime, zone: str, value: object) -> str:
    """Local wall time -> UTC text.

    ``wall.fold`` picks the occurrence (zoneinfo semantics): with fold=0, an ambiguous
    fall-back time is the first (daylight) occurrence, and a non-existent spring-forward time
    is read with the offset in force before the gap (02:30 in Los Angeles on 2024-03-10 is
    02:30 PST = 10:30Z, which is 03:30 PDT).
    """
    offset = wall.replace(tzinfo=_zone(zone)).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    try:
        return _utc_text(wall - offset)
    except OverflowError as exc:
        raise _invalid(value, exc) from None


def _epoch_to_utc(number: int | float, value: object) -> str:
    if isinstance(number, float):
        if not math.isfinite(number):
            raise PageError(f"unparseable time {value!r}")
        number = math.floor(number)  # whole seconds, and integer arithmetic from here on
    seconds = number // 1000 if abs(number) >= _MS_THRESHOLD else number
    try:
        return _utc_text(_EPOCH + timedelta(seconds=seconds))
    except OverflowError as exc:
        raise _invalid(value, exc) from None


@lru_cache(maxsize=16384)
def _text_to_utc(text: str, zone: str) -> str | None:
    value = text.strip()
    if not value:
        return None

    match = _US_TIME.fullmatch(value)
    if match:
        month, day, year, hour, minute = (int(g) for g in match.group(1, 2, 3, 4, 5))
        second = int(match.group(6) or 0)
        meridiem = match.group(7)
        if meridiem:
            pm = meridiem in "Pp"
            # 12 AM is midnight and 12 PM is noon; "0:05 AM" (some CAD exports) is 00:05.
            if not (1 <= hour <= 12 or (hour == 0 and not pm)):
                raise _invalid(value, f"hour {hour} with {'PM' if pm else 'AM'}")
            hour = hour % 12 + (12 if pm else 0)
        return _local_to_utc(_wall_time(value, year, month, day, hour, minute, second), zone, value)

    match = _ISO_TIME.fullmatch(value)
    if match:
        year, month, day, hour, minute = (int(g) for g in match.group(1, 2, 3, 4, 5))
        second = int(match.group(6) or 0)
        wall = _wall_time(value, year, month, day, hour, minute, second)
        zulu, sign, off_hours, off_minutes = match.group(7, 8, 9, 10)
        if not (zulu or sign):  # floating time: local in the feed's zone
            return _local_to_utc(wall, zone, value)
        offset = timedelta(hours=int(off_hours or 0), minutes=int(off_minutes or 0))
        if offset >= timedelta(hours=24) or int(off_minutes or 0) > 59:
            raise _invalid(value, "UTC offset out of range")
        try:
            return _utc_text(wall + offset if sign == "-" else wall - offset)
        except OverflowError as exc:
            raise _invalid(value, exc) from None

    if _EPOCH_TEXT.fullmatch(value):
        return _epoch_to_utc(int(value), value)
    raise PageError(f"unparseable time {value!r}")


def to_utc(value: str | datetime | int | float | None, zone: str) -> str | None:
    """Convert a source time to UTC ISO 8601 with ``Z`` and whole seconds.

    ``zone`` is the IANA zone of the source's local times. Accepted values:

    * ``M/D/YYYY h:mm[:ss] AM|PM`` (padding optional; ``am``, ``A.M.`` work), and 24-hour
      ``M/D/YYYY HH:MM[:SS]``;
    * ISO ``YYYY-MM-DD[T ]HH:MM[:SS[.fff]]``: floating (local in ``zone``), or with ``Z`` or
      an offset, which then wins over ``zone``;
    * epoch seconds or milliseconds: ``int``/``float`` (milliseconds when >= 1e11), or a
      digit string of 10 (seconds) or 12-13 (milliseconds) digits;
    * ``datetime``: naive is local wall time in ``zone``, aware is converted.

    Deterministic rules: ``12:xx AM`` is 00:xx and ``12:xx PM`` is noon; ``24:00[:00]`` is
    midnight of the next day; sub-seconds are truncated. Around DST changes the zoneinfo
    ``fold=0`` reading is used: an ambiguous fall-back time is its first (daylight)
    occurrence, and a time in the spring-forward gap is read with the pre-gap offset. (A naive
    ``datetime`` carrying ``fold=1`` keeps it.)

    Empty text and ``None`` give ``None``. Text that is not a time, or names an impossible
    date/time (2/30, hour 25, minute 61, 13 PM), raises :class:`PageError`; an unknown zone
    raises :class:`ConfigError`.
    """
    if value is None:
        return None
    if isinstance(value, str):
        # Only text is memoized: equal datetimes can differ in fold (and so in instant), and
        # a bool would hit the cache entry of 0/1.
        return _text_to_utc(value, zone)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return _local_to_utc(value.replace(tzinfo=None), zone, value)
        offset = value.utcoffset()
        assert offset is not None
        try:
            return _utc_text(value.replace(tzinfo=None) - offset)
        except OverflowError as exc:
            raise _invalid(value, exc) from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch_to_utc(value, value)
    raise PageError(f"unparseable time {value!r}")


# --- places -----------------------------------------------------------------------------------

# "1512 1/2": the fraction is dropped first, before "/" splits an intersection in two.
_FRACTION = re.compile(r"(?<!\S)(\d+[A-Z]?|\d+XX)(?:\s+|-)\d{1,2}/\d{1,2}(?!\S)")
# "4700-BLK", "4700 BLK", "4700 BLOCK OF" -> "47XX".
_BLOCK_WORD = re.compile(r"(?<!\S)(\d+)(XX)?(?:\s*-?\s*(?:BLK|BLOCK)(?:\s+OF)?)+(?!\S)")
# A trailing unit designator ("APT 3", "UNIT 5B", "#12", "STE 200"). The value must hold a
# digit or be one letter, so a street like "RUE STE CATHERINE" is not cut. (Lookbehinds, not
# a leading "[\s,]+", keep the search linear on junk like ", , , , ...".)
_UNIT_DESIGNATOR = re.compile(
    r"(?:(?<![^\s,])(?:APT|APARTMENT|UNIT|STE|SUITE|RM|ROOM|LOT|SPC|SPACE|BLDG|TRLR)\.?\s*#?\s*"
    r"|#\s*)"
    r"(?:[A-Z]?-?\d+[A-Z]?(?:-\d+)?|[A-Z])[\s,]*$"
)
_UNIT_TAIL = 48
# A token's core: from its first to its last word character (one greedy match, linear time).
_CORE = re.compile(r"\w(?:.*\w)?", re.S)
_LEADING_DIGITS = re.compile(r"\d+")
# What may start a segment: a hundred block or an ordinal street ("3RD AVE").
_SAFE_NUMBER = re.compile(r"\d+XX|\d+(?:ST|ND|RD|TH)")
# A house number inside the text: 1-6 digits, maybe "1512A", "1512-1520", "1512-A".
_HOUSE_NUMBER = re.compile(r"\d{1,6}(?:[A-Z]|-\d+[A-Z]?|-[A-Z])?")
# A token that can follow a house number: a word, or an ordinal street ("104 12TH AVE").
_STREET_TOKEN = re.compile(r"[^\W\d_]|\d+(?:ST|ND|RD|TH)\b")
# Numbers after these words name a road, an exit or a mile post, not a house.
_ROUTE_WORDS = frozenset(
    {"I", "IH", "SR", "SH", "HWY", "HIGHWAY", "US", "ROUTE", "RT", "RTE", "EXIT", "MP"}
    | {"MILE", "MILEPOST", "CR", "FM"}
)


def _hundred_block(digits: str) -> str:
    """``"1512"`` -> ``"15XX"``, ``"10"`` -> ``"0XX"``, ``"10000"`` -> ``"100XX"``."""
    if not digits.isascii():  # house numbers in other scripts' digits are house numbers too
        digits = "".join(str(unicodedata.decimal(c)) for c in digits)
    return (digits[:-2].lstrip("0") or "0") + "XX"


def _block_of(core: str) -> str:
    """The hundred block of a token that starts with a house number."""
    digits = _LEADING_DIGITS.match(core)
    assert digits is not None  # callers check that ``core`` starts with a digit
    return _hundred_block(digits.group())


def _core(token: str) -> str:
    """A token without surrounding punctuation: ``"(1512,"`` -> ``"1512"``."""
    match = _CORE.search(token)
    return match.group() if match else ""


def _reduce_segment(segment: str) -> str:
    """One side of an intersection with every house number cut to its hundred block."""
    # "BLDG 2 APT 3" loses both. Only the tail is searched: a designator is short, and
    # that keeps junk like "APT 3 APT 3 ..." from costing quadratic time.
    while match := _UNIT_DESIGNATOR.search(segment, max(0, len(segment) - _UNIT_TAIL)):
        segment = segment[: match.start()].rstrip(" ,")  # whitespace is collapsed already
    tokens = segment.split()
    for i, token in enumerate(tokens):
        core = _core(token)
        if not core or not core[0].isdecimal():
            continue
        if i == 0:
            # The privacy invariant: a segment never starts with a finer number than a block.
            if not _SAFE_NUMBER.fullmatch(core):
                tokens[0] = _block_of(core)
        elif (
            i + 1 < len(tokens)
            and _HOUSE_NUMBER.fullmatch(core)
            and _STREET_TOKEN.match(_core(tokens[i + 1]))
            and _core(tokens[i - 1]) not in _ROUTE_WORDS
        ):
            # "NEAR 1512 SUMMIT AVE": a house number behind a leading word.
            tokens[i] = _block_of(core)
    return " ".join(tokens)


@lru_cache(maxsize=16384)
def block_address(text: str | None) -> str | None:
    """Reduce a location to block level (the form stored in the archive).

    Upper-cases and collapses whitespace; a house number becomes its hundred block
    (``1512 Summit Ave`` -> ``15XX SUMMIT AVE``, ``10 Mercer St`` -> ``0XX MERCER ST``,
    ``4700-BLK S 6TH ST`` -> ``47XX S 6TH ST``); letter, range and fraction forms
    (``1512A``, ``1512-1520``, ``1512 1/2``) reduce the same way; a trailing unit designator
    (``APT 3``, ``#12``, ``STE 200``...) is dropped. Each side of an intersection (``/``) is
    reduced alike. Highways, ordinals (``3RD AVE``) and free text stay as written.

    Invariant: no ``/``-separated segment of the result starts with a number other than a
    hundred block (``15XX``) or an ordinal (``3RD``). Empty text gives ``None``.
    """
    if text is None:
        return None
    value = " ".join(text.upper().split())
    value = _FRACTION.sub(r"\1", value)
    value = _BLOCK_WORD.sub(
        lambda m: m.group(1) + "XX" if m.group(2) else _hundred_block(m.group(1)), value
    )
    segments = (_reduce_segment(part) for part in value.split("/"))
    return " / ".join(s for s in segments if s) or None


def _city_for(code: str, city_codes: Mapping[str, str]) -> str | None:
    city = city_codes.get(code)
    if city is None:  # the mapping may spell its keys in lower case or with spaces
        city = next((v for k, v in city_codes.items() if k.strip().upper() == code), None)
    return city


_UNKNOWN_CODE = re.compile(r"[A-Z]{2,4}")


def split_city(
    text: str | None, city_codes: Mapping[str, str], default_city: str | None
) -> tuple[str | None, str | None]:
    """Split a trailing city/jurisdiction code off an address.

    ``"3268 N 29TH ST,MKE"`` with ``{"MKE": "Milwaukee"}`` -> ``("3268 N 29TH ST",
    "Milwaukee")``; spaces around the code are fine (``,WA `` is how one source pads it).
    A code missing from ``city_codes`` but made of 2-4 letters is returned itself, upper-cased.
    Without a suffix: ``(text, default_city)``. The address is stripped, not block-reduced.
    """
    if text is None:
        return None, default_city
    head, comma, tail = text.rpartition(",")
    if comma:
        code = tail.strip().upper()
        city = _city_for(code, city_codes) if code else None
        if city is None and _UNKNOWN_CODE.fullmatch(code):
            city = code
        if city is not None:
            return head.strip() or None, city
    return text.strip() or None, default_city


_UNIT_SEPARATORS = re.compile(r"[\s,;]+")


@lru_cache(maxsize=4096)
def _units_in(text: str) -> tuple[str, ...]:
    # A tuple, so callers cannot alter what the cache holds.
    return tuple(dict.fromkeys(u for u in _UNIT_SEPARATORS.split(text.upper()) if u))


def split_units(value: str | Sequence[str] | None) -> list[str]:
    """Unit IDs, unique, in first-seen order, upper-cased: ``"E25,  L1"`` -> ``["E25", "L1"]``.

    Separators are whitespace, commas and semicolons; a sequence may hold such lists too.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return list(_units_in(value))
    seen: dict[str, None] = {}
    for item in value:
        if item is not None:
            seen.update(dict.fromkeys(_units_in(str(item))))
    return list(seen)


@lru_cache(maxsize=16384)
def round_coordinate(value: str | float | None, *, exact: bool = False) -> float | None:
    """A latitude or longitude, rounded to 3 decimals (about 110 m) unless ``exact``.

    Missing, unparseable, non-finite or out-of-range (beyond +-180) values give ``None``, and
    so does 0: sources use 0 for "unknown", and no dispatch feed is at the null meridian.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number == 0 or abs(number) > 180:
        return None
    return number if exact else round(number, 3)


# --- rows -> incidents ------------------------------------------------------------------------

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
