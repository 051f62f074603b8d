"""Local wall-clock times of a source -> UTC text (``2024-03-31T07:05:00Z``).

Pure and on the ingest hot path: regexes are compiled once and text times are memoized with
:func:`functools.lru_cache` (bounded), since consecutive polls repeat the same times.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache, partial
from zoneinfo import ZoneInfo

from ..errors import ConfigError, PageError
from .memo import Memo

__all__ = ["to_utc"]

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
# The forms most feeds and the archive itself write ("2024-03-31T18:30:18.000", Socrata's
# floating timestamps; "...Z"): read by datetime.fromisoformat, the rest by the regexes above.
_PLAIN_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(Z)?"
)
# The same forms, read without a datetime per value (:func:`_fast_iso`): the minute and second
# must be in range here (the date and hour are checked once per hour, by :func:`_utc_hour`).
_FAST_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(Z)?"
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
    offset = _zone(zone).utcoffset(wall)  # (wall's own fold is read, as with replace(tzinfo))
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


@lru_cache(maxsize=8192)
def _utc_hour(local_hour: str, zone: str | None) -> str | None:
    """The UTC ``YYYY-MM-DDTHH`` of every wall time in one local hour (``local_hour`` is
    ``YYYY-MM-DD[T ]HH``; ``zone`` None: the hour is UTC already), or None when no single
    answer fits the whole hour: an invalid date or hour, a zone offset that is not whole
    hours (Asia/Kolkata), an offset that changes inside the hour (1883's local mean time),
    or an overflow. Those go the long way, value by value.

    Exact across DST changes: ``fold=0`` offsets change only at transitions, and one hour of
    wall time never holds two of them, so an offset equal at ``HH:00:00`` and ``HH:59:59`` is
    the offset of every second between (the spring-forward gap and the fall-back hour are
    each read with one offset, as :func:`_local_to_utc` reads them).
    """
    try:
        start = datetime.fromisoformat(f"{local_hour[:10]}T{local_hour[11:13]}:00:00")
    except ValueError:  # 2/30, hour 24...
        return None
    if zone is None:
        return local_hour[:10] + "T" + local_hour[11:13]
    tz = _zone(zone)
    offset = tz.utcoffset(start)
    if offset is None or offset != tz.utcoffset(start.replace(minute=59, second=59)):
        return None
    if offset % timedelta(hours=1):
        return None
    try:
        return (start - offset).isoformat()[:13]
    except OverflowError:
        return None


def _fast_iso(value: str, zone: str) -> str | None:
    """UTC text of an ISO time :data:`_FAST_ISO` matches (floating, or with ``Z``), built
    from the hour's UTC prefix (:func:`_utc_hour`) and the value's own minutes and seconds;
    None when it must go the long way (:func:`_text_to_utc`). Same answers (tested)."""
    tail = _TAILS.get(value[13:19])
    utc = _ISO_ENDS.get(value[19:])
    if tail is not None and utc is not None:  # (Socrata's form): two lookups, no regex
        key = None if utc else zone
        head = (_ISO_HEADS.get(key) or _hour_memo(_ISO_HEADS, key, _iso_hour))[value[:13]]
        return None if head is None else head + tail
    match = _FAST_ISO.fullmatch(value)
    if match is None:
        return None
    head = _utc_hour(value[:13], None if match.group(1) else zone)
    return None if head is None else f"{head}{value[13:19]}Z"


#: What may follow ``:MM:SS`` in the commonest ISO forms -> whether it is UTC (``Z``).
_ISO_ENDS = {"": False, ".000": False, "Z": True, ".000Z": True}
#: ``YYYY-MM-DD[T ]HH`` as :data:`_FAST_ISO` begins.
_ISO_HOUR = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}")


def _iso_hour(local_hour: str, zone: str | None) -> str | None:
    """``YYYY-MM-DD[T ]HH`` -> the UTC ``YYYY-MM-DDTHH`` by :func:`_utc_hour`, or None (not
    that shape, or an hour that goes the long way); raises for an unknown zone."""
    return _utc_hour(local_hour, zone) if _ISO_HOUR.fullmatch(local_hour) else None


#: Zone (None: UTC) -> its memo of :func:`_iso_hour` (see :func:`_hour_memo`).
_ISO_HEADS: dict[str | None, Memo] = {}


# ``M/D/YYYY H:MM[:SS] [AM|PM]`` as most CAD exports write it (one space, no fraction), read
# without a datetime per value (:func:`_fast_us`) in two parts split at the first ``:``: the
# hour (``M/D/YYYY H``, read once per hour) and the rest; odder spellings go to
# :data:`_US_TIME`.
_US_HOUR = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}) ([0-9]{1,2})")
_US_REST = re.compile(r"([0-5][0-9](?::[0-5][0-9])?)(?: ([AP])M)?")


@lru_cache(maxsize=8192)
def _us_hour(local_hour: str, meridiem: str | None, zone: str) -> str | None:
    """:func:`_utc_hour` of one local hour written the US way (``M/D/YYYY H``, and ``A`` or
    ``P`` for AM/PM), or None when it is not one the general reader accepts as it stands
    (not that shape, hour 24, 13 PM...: those go the long way)."""
    match = _US_HOUR.fullmatch(local_hour)
    if match is None:
        return None
    month, day, year, hour = match.groups()
    number = int(hour)
    if meridiem is None:
        if number > 23:
            return None
    elif not 1 <= number <= 12 and not (number == 0 and meridiem == "A"):
        return None
    else:
        number = number % 12 + (12 if meridiem == "P" else 0)
    return _utc_hour(f"{year}-{int(month):02d}-{int(day):02d}T{number:02d}", zone)


_SIXTY = [f"{n:02d}" for n in range(60)]  # (each formatted once: 3,600 keys at import)
#: ``":MM:SS"`` (minutes and seconds in range) -> ``":MM:SSZ"``: the tail of the common US
#: form checked and finished in one lookup.
_TAILS = {tail: tail + "Z" for tail in [f":{m}:{s}" for m in _SIXTY for s in _SIXTY]}


def _us_24_hour(local_hour: str, zone: str) -> str | None:
    """:func:`_us_hour` of a 24-hour ``M/D/YYYY H``."""
    return _us_hour(local_hour, None, zone)


#: Zone -> its memo of :func:`_us_24_hour` (see :func:`_hour_memo`).
_US_HEADS: dict[str | None, Memo] = {}
#: Zones with a memo of their hours (all dropped beyond), and hours a memo holds.
_ZONES_MAX = 64
_HOURS_MAX = 8192


def _hour_memo(
    memos: dict[str | None, Memo], zone: str | None, read: Callable[..., str | None]
) -> Memo:
    """The memo of ``memos`` for ``zone``: a local hour -> its UTC ``YYYY-MM-DDTHH`` (or
    None) by ``read(local_hour, zone)``, a dict lookup when it hits; made when missing."""
    memo = memos.get(zone)
    if memo is None:
        if len(memos) >= _ZONES_MAX:
            memos.clear()
        memo = memos[zone] = Memo(partial(read, zone=zone), _HOURS_MAX)
    return memo


def _fast_us(value: str, zone: str) -> str | None:
    """UTC text of a US time ``M/D/YYYY H:MM[:SS][ AM| PM]``, from its hour's UTC prefix
    (:func:`_us_hour`) and its own minutes and seconds; None when it must go the long way
    (:func:`_text_to_utc`). Same answers (tested)."""
    colon = value.find(":")
    if colon < 0:
        return None
    tail = _TAILS.get(value[colon:])
    if tail is not None:  # "H:MM:SS" (most exports): two lookups, no regex
        head = (_US_HEADS.get(zone) or _hour_memo(_US_HEADS, zone, _us_24_hour))[value[:colon]]
        return None if head is None else head + tail
    rest = _US_REST.fullmatch(value, colon + 1)
    if rest is None:
        return None
    minutes, meridiem = rest.groups()
    head = _us_hour(value[:colon], meridiem, zone)
    if head is None:
        return None
    return f"{head}:{minutes}Z" if len(minutes) == 5 else f"{head}:{minutes}:00Z"


@lru_cache(maxsize=16384)
def _text_to_utc(text: str, zone: str) -> str | None:
    value = text.strip()
    if not value:
        return None
    if _PLAIN_ISO.fullmatch(value):
        try:  # the fraction is truncated: only the first 19 characters count
            wall = datetime.fromisoformat(value[:19])
        except ValueError:  # 2/30, hour 24...: the general reader says what is wrong
            pass
        else:
            return _utc_text(wall) if value[-1] == "Z" else _local_to_utc(wall, zone, value)
    return _read_text(value, zone)


def _read_text(value: str, zone: str) -> str:
    """Stripped, non-empty text -> UTC text, by the regexes (every accepted form)."""
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
        # a bool would hit the cache entry of 0/1. Plain ISO times (most feeds) are read per
        # hour (ISO and the common US form): a bulk ingest's times are all different.
        # (A "-" after 4 characters: only the ISO fast path may read it, else only the US one.)
        fast = _fast_iso(value, zone) if value[4:5] == "-" else _fast_us(value, zone)
        return fast or _text_to_utc(value, zone)
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
