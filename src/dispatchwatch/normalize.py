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
# "4700-BLK", "4700 BLK", "4700 BLOCK OF" -> "47XX"; "4700A BLK" too, so that reducing
# "4700A BLK" (to "47XX BLK" otherwise) and reducing the result give the same.
_BLOCK_WORD = re.compile(
    r"(?<!\S)(\d+)(XX|[A-Z]|-\d+[A-Z]?|-[A-Z])?(?:\s*-?\s*(?:BLK|BLOCK)(?:\s+OF)?)+(?!\S)"
)
# A trailing unit designator ("APT 3", "UNIT 5B", "#12", "STE 200"). The value must hold a
# digit or be one letter, so a street like "RUE STE CATHERINE" is not cut. (Lookbehinds, not
# a leading "[\s,]+", keep the search linear on junk like ", , , , ...".)
_UNIT_WORD = r"(?:APT|APARTMENT|UNIT|STE|SUITE|RM|ROOM|LOT|SPC|SPACE|BLDG|TRLR)\.?\s*#?\s*"
_UNIT_VALUE = r"(?:[A-Z]?-?\d+[A-Z]?(?:-\d+)?|[A-Z])[\s,]*$"
_UNIT_DESIGNATOR = re.compile(rf"(?:(?<![^\s,]){_UNIT_WORD}|#\s*){_UNIT_VALUE}")
# The same, for a designator that starts the (trimmed) segment: nothing is before it.
_UNIT_AT_START = re.compile(rf"(?:{_UNIT_WORD}|#\s*){_UNIT_VALUE}")
_UNIT_TAIL = 48
# A token's core: from its first to its last word character (one greedy match, linear time).
_CORE = re.compile(r"\w(?:.*\w)?", re.S)
_LEADING_DIGITS = re.compile(r"\d+")
# What may start a segment: a hundred block or an ordinal street ("3RD AVE").
_SAFE_NUMBER = re.compile(r"\d+XX|\d+(?:ST|ND|RD|TH)")
# A house number inside the text: 1-6 digits, maybe "1512A", "1512-1520", "1512-A".
_HOUSE_TAIL = r"(?:[A-Z]|-\d+[A-Z]?|-[A-Z])?"
_HOUSE_NUMBER = re.compile(rf"\d{{1,6}}{_HOUSE_TAIL}")
# A token that can follow a house number: a word, or an ordinal street ("104 12TH AVE").
_STREET_TOKEN = re.compile(r"[^\W\d_]|\d+(?:ST|ND|RD|TH)\b")
# Wisconsin grid addresses (Waukesha, Washington... counties). "W156N11500": grid line W156,
# house number 11500 on it (-> "W156N115XX"); "N1512 SUMMIT RD": house number 1512 alone.
_GRID_PAIR = re.compile(rf"([NSEW]\d+-?[NSEW])(\d+){_HOUSE_TAIL}")
_GRID_SINGLE = re.compile(rf"([NSEW])(\d+){_HOUSE_TAIL}")
_GRID_BLOCK = re.compile(r"[NSEW]\d*XX")  # "N115XX", as reduced already
# Numbers after these words name a road, an exit or a mile post, not a house ...
_ROUTE_WORDS = frozenset(
    {"I", "IH", "SR", "SH", "HWY", "HIGHWAY", "US", "ROUTE", "RT", "RTE", "EXIT", "MP"}
    | {"MILE", "MILEPOST", "CR", "FM"}
)
# ... unless a street name and a street suffix follow ("RT 1512 SUMMIT AVE"). Such a name is
# at most this many words ("MARTIN LUTHER KING JR WAY") and holds none of these words.
_STREET_NAME_WORDS = 5
_NOT_A_STREET_NAME = _ROUTE_WORDS | {
    *("NB", "SB", "EB", "WB", "AT", "FR", "FROM", "TO", "NEAR", "ON", "OFF", "OF", "AND"),
    *("RAMP", "ONRAMP", "OFFRAMP", "BRIDGE", "TUNNEL", "EXPRESS", "CD", "HOV"),
}
_STREET_SUFFIXES = frozenset(
    {"AVE", "AV", "AVENUE", "ST", "STREET", "RD", "ROAD", "DR", "DRIVE", "LN", "LANE"}
    | {"BLVD", "BOULEVARD", "WAY", "WA", "CT", "COURT", "PL", "PLACE", "PLZ", "PLAZA"}
    | {"CIR", "CIRCLE", "TER", "TERR", "TERRACE", "PKWY", "PKY", "PARKWAY", "TRL", "TRAIL"}
    | {"SQ", "SQUARE", "LOOP", "CRES", "CRESCENT", "ALY", "ALLEY", "XING", "PIKE"}
)
_DIRECTIONS = frozenset({"N", "S", "E", "W", "NE", "NW", "SE", "SW"})
# "COUNTY RD 120", "FOREST RD 2810": the number after such a road names the road.
_ROAD_CLASSES = frozenset(
    {"COUNTY", "CO", "CTY", "STATE", "FOREST", "FARM", "RANCH", "TOWN", "TOWNSHIP", "TWP"}
)
# Brackets: a pair around the whole segment, or a bracket without its partner, is trimmed.
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_BRACKET = re.compile(r"[()\[\]{}]")


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


def _block_word(match: re.Match[str]) -> str:
    """The hundred block of a ``_BLOCK_WORD`` match."""
    return match.group(1) + "XX" if match.group(2) == "XX" else _hundred_block(match.group(1))


def _core(token: str) -> str:
    """A token without surrounding punctuation: ``"(1512,"`` -> ``"1512"``."""
    match = _CORE.search(token)
    return match.group() if match else ""


def _bracket_partners(text: str) -> dict[int, int]:
    """Index of each paired bracket -> index of its partner (a stack: linear time).

    A pair found in the whole text is also a pair in any window holding both of its ends, and a
    bracket whose partner lies outside a window has none inside it: so one pass serves every
    window the trimming below looks at.
    """
    partners: dict[int, int] = {}
    stack: list[int] = []
    for match in _BRACKET.finditer(text):
        index, char = match.start(), match.group()
        if char in _OPENERS:
            stack.append(index)
        elif stack and text[stack[-1]] == _CLOSERS[char]:
            opener = stack.pop()
            partners[opener], partners[index] = index, opener
    return partners


def _trim(
    text: str, lo: int, hi: int, partners: dict[int, int] | None
) -> tuple[int, int, dict[int, int] | None]:
    """Narrow ``text[lo:hi]`` past edge punctuation: ``"(1512 SUMMIT AVE)"`` -> the inside.

    Dropped from the ends: whitespace and punctuation (a leading ``#`` stays: it starts a unit
    designator), a bracket without its partner in the window, and a pair that encloses the
    whole window. A bracket paired inside the text stays: ``"SUMMIT AVE (REAR)"``. Each step
    drops a character, so the cost is what is dropped (plus one bracket pass, when needed).
    """
    while lo < hi:
        first, last = text[lo], text[hi - 1]
        if (first.isalnum() or first == "#") and last.isalnum():
            break  # the common case
        if partners is None and (first in _OPENERS or last in _CLOSERS):
            partners = _bracket_partners(text)
        if first in _OPENERS:
            assert partners is not None
            partner = partners.get(lo, hi)
            if partner >= hi:  # unpaired in the window
                lo += 1
                continue
            if partner == hi - 1:  # "(...)" around everything
                lo, hi = lo + 1, hi - 1
                continue
        elif not (first.isalnum() or first == "#"):  # punctuation, or a closer: never paired
            lo += 1
            continue
        if last in _CLOSERS:
            assert partners is not None
            partner = partners.get(hi - 1, -1)
            if partner < lo:
                hi -= 1
                continue
            break  # paired inside: "... (REAR)"
        if not last.isalnum():  # punctuation, or an opener: never paired at the end
            hi -= 1
            continue
        break
    return lo, hi, partners


def _names_a_street(tokens: list[str], start: int) -> bool:
    """Do ``tokens[start:]`` begin with a street name and a suffix ("SUMMIT AVE", "N 12TH ST")?"""
    for j in range(start, min(len(tokens), start + _STREET_NAME_WORDS + 1)):
        word = _core(tokens[j])
        if j > start and word in _STREET_SUFFIXES:
            return True
        if word in _NOT_A_STREET_NAME or not _STREET_TOKEN.match(word):
            return False
    return False


def _is_trailing_house_number(tokens: list[str], i: int, core: str) -> bool:
    """``"SUMMIT AVE 1512"``, ``"AURORA AVE N 12345"``: 3+ digits last, after a street suffix.

    Not ``"COUNTY RD 120"`` (the number names the road) and not a short number (``"MAIN ST
    12"``), nor one after any other word (``"SB I5 AT 130"`` is at NE 130th St).
    """
    digits = _LEADING_DIGITS.match(core)
    if digits is None or len(digits.group()) < 3:
        return False
    j = i - 1
    if j > 0 and _core(tokens[j]) in _DIRECTIONS:
        j -= 1
    return (
        j > 0 and _core(tokens[j]) in _STREET_SUFFIXES and _core(tokens[j - 1]) not in _ROAD_CLASSES
    )


def _grid_line_of_other_axis(word: str, house: str) -> bool:
    """Is ``word`` a grid number (``"W156"``, ``"W1XX"``) on the other axis than ``house``?"""
    return (
        _GRID_SINGLE.fullmatch(word) is not None or _GRID_BLOCK.fullmatch(word) is not None
    ) and (word[0] in "NS") != (house[0] in "NS")


def _is_grid_house_number(tokens: list[str], i: int, core: str) -> bool:
    """Is ``core`` (``"N1512"``, one direction letter and digits) a grid house number?

    Yes when it follows a grid line of the other axis (``"W156 N11500"``), starts the segment
    or is followed by a street word (``"NEAR N1512 SUMMIT RD"``); but not when a number of the
    other axis follows it (and no grid line precedes it): it is then the grid line itself.
    """
    previous = _core(tokens[i - 1]) if i > 0 else ""
    if _GRID_SINGLE.fullmatch(previous) and _grid_line_of_other_axis(previous, core):
        return True
    following = _core(tokens[i + 1]) if i + 1 < len(tokens) else ""
    if _grid_line_of_other_axis(following, core):
        return False
    if i == 0:
        return True
    return bool(_STREET_TOKEN.match(following)) and following not in _NOT_A_STREET_NAME


def _reduced(tokens: list[str], i: int, core: str) -> str | None:
    """The block-level form of ``core``, the core of ``tokens[i]``; ``None``: keep it."""
    if core[0].isdecimal():
        if i == 0:
            # The privacy invariant: a segment never starts with a finer number than a block.
            return None if _SAFE_NUMBER.fullmatch(core) else _block_of(core)
        if not _HOUSE_NUMBER.fullmatch(core):
            return None
        if i + 1 == len(tokens):
            return _block_of(core) if _is_trailing_house_number(tokens, i, core) else None
        if not _STREET_TOKEN.match(_core(tokens[i + 1])):
            return None
        # "NEAR 1512 SUMMIT AVE": a house number behind a leading word. Behind a route word
        # ("I 94 EB", "MP 12") the number is the route, unless a street follows it.
        if _core(tokens[i - 1]) not in _ROUTE_WORDS or _names_a_street(tokens, i + 1):
            return _block_of(core)
        return None
    if core[0] in "NSEW":
        grid = _GRID_PAIR.fullmatch(core)
        if grid:
            return grid.group(1) + _hundred_block(grid.group(2))
        grid = _GRID_SINGLE.fullmatch(core)
        if grid and _is_grid_house_number(tokens, i, core):
            return grid.group(1) + _hundred_block(grid.group(2))
    return None


def _reduce_segment(segment: str, *, again: bool = True) -> str:
    """One side of an intersection with every house number cut to its hundred block."""
    lo, hi, _ = _trim(segment, 0, len(segment), None)
    # After the trim, so that "(4700 BLK" reads as "4700 BLK" does.
    segment = _BLOCK_WORD.sub(_block_word, segment[lo:hi])
    lo, hi, partners = 0, len(segment), None
    # "BLDG 2 APT 3" loses both. Only the tail is searched: a designator is short, and
    # that keeps junk like "APT 3 APT 3 ..." from costing quadratic time.
    while lo < hi:
        start = max(lo, hi - _UNIT_TAIL)
        if start == lo:  # the lookbehind must not see what was trimmed off before ``lo``
            match = _UNIT_AT_START.match(segment, lo, hi)
            match = match or _UNIT_DESIGNATOR.search(segment, lo + 1, hi)
        else:
            match = _UNIT_DESIGNATOR.search(segment, start, hi)
        if match is None:
            break
        lo, hi, partners = _trim(segment, lo, match.start(), partners)
    tokens = segment[lo:hi].split()
    lost_a_bracket = False
    for i, token in enumerate(tokens):
        match = _CORE.search(token)
        if match is None:
            continue
        block = _reduced(tokens, i, match.group())
        if block is not None:  # punctuation around the number stays: "(1512)" -> "(15XX)"
            tokens[i] = token[: match.start()] + block + token[match.end() :]
            lost_a_bracket = lost_a_bracket or _BRACKET.search(match.group()) is not None
    reduced = " ".join(tokens)
    # Junk like "1512(A MAIN)" loses the "(" with the number, so the ")" has no partner now:
    # one more pass trims it, as reducing the result again would (a reduced token holds no
    # bracket, so a second pass loses none).
    return _reduce_segment(reduced, again=False) if lost_a_bracket and again else reduced


@lru_cache(maxsize=16384)
def block_address(text: str | None) -> str | None:
    """Reduce a location to block level (the form stored in the archive).

    Upper-cases and collapses whitespace; a house number becomes its hundred block
    (``1512 Summit Ave`` -> ``15XX SUMMIT AVE``, ``10 Mercer St`` -> ``0XX MERCER ST``,
    ``4700-BLK S 6TH ST`` -> ``47XX S 6TH ST``); letter, range and fraction forms
    (``1512A``, ``1512-1520``, ``1512 1/2``) reduce the same way; a trailing unit designator
    (``APT 3``, ``#12``, ``STE 200``...) is dropped. Each side of an intersection (``/``) is
    reduced alike. Highways, ordinals (``3RD AVE``) and free text stay as written.

    Also reduced:

    * Wisconsin grid house numbers: ``W156N11500 PILGRIM RD`` -> ``W156N115XX PILGRIM RD``
      (the grid line ``W156`` stays), ``N1512 SUMMIT`` -> ``N15XX SUMMIT``;
    * a number behind a word (``NEAR 1512 SUMMIT AVE``) when a street word follows it. Behind
      a route word (``I``, ``SR``, ``HWY``, ``RT``, ``MP``...) the number is the route (``I
      94``, ``SR 99 NB``, ``MP 12``), unless a street name and suffix follow: ``RT 1512
      SUMMIT AVE`` -> ``RT 15XX SUMMIT AVE``;
    * a last number of 3+ digits right after a street suffix (and maybe a direction):
      ``SUMMIT AVE 1512`` -> ``SUMMIT AVE 15XX``, but not ``COUNTY RD 120`` (a road's name),
      ``MAIN ST 12`` (too short to tell from a road number) or ``AT 1512`` (no street:
      Seattle writes ``SB I5 AT 130`` for "at NE 130th St").

    Punctuation at the ends of a segment goes, and so do a bracket without its partner and a
    pair around the whole segment: ``(1512 Summit Ave)`` -> ``15XX SUMMIT AVE``.

    Invariant: no ``/``-separated segment of the result starts with a number other than a
    hundred block (``15XX``) or an ordinal (``3RD``), nor with a grid house number finer than
    a block. Empty text gives ``None``.
    """
    if text is None:
        return None
    value = " ".join(text.upper().split())
    value = _FRACTION.sub(r"\1", value)
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
