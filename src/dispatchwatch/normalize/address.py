"""Addresses -> block level (``1512 Summit Ave`` -> ``15XX SUMMIT AVE``) and the city split.

Pure and on the ingest hot path: regexes are compiled once and results are memoized per string
with bounded :func:`functools.lru_cache` caches.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from .postal import STATES, split_postal_tail

__all__ = ["block_address", "split_city"]

# "1512 1/2": the fraction is dropped first, before "/" splits an intersection in two.
_FRACTION = re.compile(r"(?<![\w.])(\d+[A-Z]?|\d+XX)(?:(?:\s+|-)\d{1,2}/\d{1,2}(?!\S))+")
# "4700-BLK", "4700 BLK", "4700 BLOCK OF" -> "47XX"; "4700A BLK" too, so that reducing
# "4700A BLK" (to "47XX BLK" otherwise) and reducing the result give the same.
_BLOCK_WORD = re.compile(
    r"(?<!\S)(\d+)(XX|[A-Z]|-\d+[A-Z]?|-[A-Z])?(?:\s*-?\s*(?:BLK|BLOCK)(?:\s+OF)?)+(?!\S)"
)
# A trailing unit designator ("APT 3", "UNIT 5B", "#12", "STE 200"). The value must hold a
# digit or be one letter, so a street like "RUE STE CATHERINE" is not cut. (Lookbehinds, not
# a leading "[\s,]+", keep the search linear on junk like ", , , , ...".)
_UNIT_WORD = r"(?:APT|APARTMENT|UNIT|STE|SUITE|RM|ROOM|LOT|SPC|SPACE|BLDG|TRLR)\.?\s*#?\s*"
_UNIT_ID = r"(?:[A-Z]?-?\d+[A-Z]?(?:-[A-Z0-9]+)?|[A-Z](?:-?\d+)?)"
_UNIT_VALUE = rf"{_UNIT_ID}[\s,]*$"
_UNIT_DESIGNATOR = re.compile(rf"(?:(?<![^\s,]){_UNIT_WORD}|#\s*){_UNIT_VALUE}")
# The same, for a designator that starts the (trimmed) segment: nothing is before it.
_UNIT_AT_START = re.compile(rf"(?:{_UNIT_WORD}|#\s*){_UNIT_VALUE}")
_UNIT_TAIL = 48
# A designator that starts a segment and is followed by the house number: "APT 4 1512 ELM ST".
_UNIT_BEFORE_NUMBER = re.compile(rf"(?:{_UNIT_WORD}|#\s*){_UNIT_ID}[\s,]+(?=\d)")
# A token's core: from its first to its last word character (one greedy match, linear time).
_CORE = re.compile(r"\w(?:.*\w)?", re.S)
_LEADING_DIGITS = re.compile(r"\d+")
# What may start a segment: a hundred block or an ordinal street ("3RD AVE").
_SAFE_NUMBER = re.compile(r"\d+XX|\d+(?:ST|ND|RD|TH)")
# A hundred block as some sources write it already: "054XX" (New Orleans) is "54XX".
_XX_BLOCK = re.compile(r"(\d*)XX")
# Direction of travel: "94 EB" is I-94 eastbound, "I 45 N/B" I-45 northbound.
_BOUNDS = frozenset({"NB", "SB", "EB", "WB", "IB", "OB", "N/B", "S/B", "E/B", "W/B"})
_ROUTE_AT_START = re.compile(r"\d{1,4}")
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
    | {"MILE", "MILEPOST", "CR", "FM", "LOOP", "SPUR", "BELTWAY", "BUS", "BYP", "BYPASS", "BW"}
    # Texas ranch roads ("RM 620 N", "RR 620") and mile markers ("MM 12 I 5"). A room
    # ("1512 ELM ST RM 12") is a unit at the end, dropped before numbers are read.
    | {"RM", "RR", "MM"}
    # State routes ("NB MD 300 N", "TX 1604"): the state codes that are not also a word, a
    # direction or a street suffix ("IN", "NE", "CT", "WA" are read as those).
    | (STATES - {"AL", "AR", "AS", "CO", "CT", "DE", "GA", "HI", "ID", "IN", "LA", "MA", "ME"})
    - {"MS", "MT", "NE", "OH", "OK", "OR", "PA", "WA"}
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
# After these words a number is the house the call is placed by, even with no street after it
# ("NEAR 1512", "REAR-1512", "ACROSS FROM 1512"). Not "AT": Seattle writes "SB I5 AT 130".
_BY_A_HOUSE = frozenset({"NEAR", "REAR", "BEHIND", "IFO", "OPPOSITE", "OPP", "BESIDE", "ACROSS"})
# "COUNTY RD 120", "FOREST RD 2810": the number after such a road names the road.
_ROAD_CLASSES = frozenset(
    {"COUNTY", "CO", "CTY", "STATE", "FOREST", "FARM", "RANCH", "TOWN", "TOWNSHIP", "TWP"}
)
# Exact coordinates written into the text ("LL(47.60164,-122.32766)", "47.60164 -122.32766"):
# any decimal of 3+ places goes (3 places are the block precision of the coordinates stored
# apart), with a label and brackets around a pair.
_DECIMAL = r"[-+]?\d+\.\d{3,}"
_COORDINATES = re.compile(
    r"(?:(?<![^\W\d_])(?:LL|LATLON|LATLONG|LAT/LON|LAT/LONG|GPS|COORDS?|XY)\s*[:=]?\s*)?"
    rf"(?:[(\[]\s*{_DECIMAL}\s*[,;/ ]\s*{_DECIMAL}\s*[)\]]|(?<!\d){_DECIMAL}(?!\d))"
)
# A flag of the call between asterisks ("**CODE RED**", "*HOT*"): no part of the place, it goes
# (unless nothing else is left: "**ELM ST**" is then the address, its asterisks trimmed).
_MARKER = re.compile(r"\*+[^*\d]*\*+")
# A house number glued to what is before it: "NEAR:1512" (a space goes in), "REAR-1512" (the
# hyphen becomes one; not after a route word or a state: "SR-520").
_GLUED_PUNCTUATION = re.compile(r"(?<=[^\W\d_])([^\w\s()\[\]{}#/.,'\"-]+)(?=\d)")
_GLUED_HYPHEN = re.compile(r"(?<!\w)([^\W\d_]{2,})-(?=\d)")
# ... or to the street after it: "1512ELM ST" (not "12TH", "3RD", "15XX", "1512A").
_GLUED_STREET = re.compile(r"(?<!\w)(\d+)(?!(?:ST|ND|RD|TH|XX)(?!\w))(?=[^\W\d_]{2})")
# "/" splits an intersection, but not inside "1/2" ("SEVEN 1/2 MILE RD") or "N/B".
_SLASH = re.compile(r"(?<![^\W\d_])[NSEW]/B(?![^\W\d_])|\d/\d|/")
# A ZIP code after a state: dropped ("WA 98101" -> "WA"); it is no house number.
_STATE_ZIP = re.compile(r"(?<![^\s,])([A-Z]{2})(?:\s+\d{5}(?:-\d{4})?(?![\w-]))+")
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
    if _core(tokens[j]) in _ROUTE_WORDS:  # "SW LOOP 410", "N US 59": the route's number
        return False
    if j > 0 and _core(tokens[j]) in _DIRECTIONS:
        j -= 1
    return (
        j > 0 and _core(tokens[j]) in _STREET_SUFFIXES and _core(tokens[j - 1]) not in _ROAD_CLASSES
    )


def _after_a_route_word(tokens: list[str], i: int) -> bool:
    """Is ``tokens[i]`` a road's number: after ``I``, ``HWY``, ``LOOP``..., or ``COUNTY RD``?"""
    previous = _core(tokens[i - 1])
    return previous in _ROUTE_WORDS or (
        i > 1 and previous in ("RD", "ROAD") and _core(tokens[i - 2]) in _ROAD_CLASSES
    )


def _by_a_house(tokens: list[str], i: int) -> bool:
    """Does a word placing the call by a house (``NEAR``, ``ACROSS FROM``) precede ``tokens[i]``?"""
    words = (word for word in map(_core, reversed(tokens[max(0, i - 4) : i])) if word)
    previous = next(words, "")
    if previous == "FROM":
        previous = next(words, "")
    return previous in _BY_A_HOUSE


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
    if core == "XX" and i == 0 and len(tokens) > 1:  # New Orleans' block 0-99: "XX SWAN ST"
        return "0XX"
    if core[0].isdecimal():
        xx = _XX_BLOCK.fullmatch(core)
        if xx:  # a block already; "054XX" -> "54XX"
            block = _hundred_block(xx.group(1) + "00")
            return None if block == core else block
        # "94 EB AT N 27TH ST", "NEAR 94 EB": a number before a direction of travel is the route.
        following = tokens[i + 1].rstrip(",") if i + 1 < len(tokens) else ""
        if following in _BOUNDS and _ROUTE_AT_START.fullmatch(tokens[i]):
            return None
        if i == 0:
            # The privacy invariant: a segment never starts with a finer number than a block.
            return None if _SAFE_NUMBER.fullmatch(core) else _block_of(core)
        if not _HOUSE_NUMBER.fullmatch(core):
            return None
        if _by_a_house(tokens, i):
            return _block_of(core)
        if i + 1 == len(tokens):
            return _block_of(core) if _is_trailing_house_number(tokens, i, core) else None
        if not _STREET_TOKEN.match(_core(tokens[i + 1])):
            return None
        # "NEAR 1512 SUMMIT AVE": a house number behind a leading word. Behind a route word
        # ("I 94 EB", "MP 12") the number is the route, unless a street follows it.
        if not _after_a_route_word(tokens, i):
            return _block_of(core)
        # "RT 1512 SUMMIT AVE": a house number on a street after the route word; but after a
        # house number ("1512 E LOOP 820 SVC RD") the number is the route's.
        if _names_a_street(tokens, i + 1) and not _XX_BLOCK.fullmatch(_core(tokens[0])):
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


def _without_units(
    segment: str, lo: int, hi: int, partners: dict[int, int] | None
) -> tuple[int, int, dict[int, int] | None]:
    """``segment[lo:hi]`` narrowed past trailing unit designators ("BLDG 2 APT 3" loses both).

    Only the tail is searched: a designator is short, and that keeps junk like "APT 3 APT 3
    ..." from costing quadratic time.
    """
    while lo < hi:
        start = max(lo, hi - _UNIT_TAIL)
        if start == lo:  # the lookbehind must not see what was trimmed off before ``lo``
            match = _UNIT_AT_START.match(segment, lo, hi)
            match = match or _UNIT_DESIGNATOR.search(segment, lo + 1, hi)
        else:
            match = _UNIT_DESIGNATOR.search(segment, start, hi)
        if match is None or _is_ranch_road(segment, lo, match):
            break
        lo, hi, partners = _trim(segment, lo, match.start(), partners)
    return lo, hi, partners


# Only a house number (and a direction) before it: no street for a room to be in.
# Any form of house number: "1512", "1512A", a range "1512-1520", a block "15XX" (these two
# read as no house number: "12-14 RM 1" became "0XX", the road read as a room, and so did
# "0XX RM 1": reducing a result again changed it).
_HOUSE_ONLY = re.compile(rf"[\s,]*(?:\d+{_HOUSE_TAIL}|\d*XX)(?:\s+(?:N|S|E|W|NE|NW|SE|SW))?[\s,]*")


def _is_ranch_road(segment: str, lo: int, match: re.Match[str]) -> bool:
    """Is a trailing "RM 620" a Texas ranch road ("1512 RM 620"), not a room? It is when
    nothing but a house number stands before it."""
    return match.group().startswith("RM") and bool(
        _HOUSE_ONLY.fullmatch(segment, lo, match.start())
    )


def _without_inner_units(segment: str) -> str:
    """Each comma-separated part without its trailing units, the parts joined by ", ".

    ``"8611 SW LOOP 410, UNIT 520, SAN ANTONIO"`` -> ``"8611 SW LOOP 410, SAN ANTONIO"``.
    """
    kept = []
    for part in segment.split(","):
        lo, hi, _ = _without_units(part, *_trim(part, 0, len(part), None))
        if lo < hi:
            kept.append(part[lo:hi])
    return ", ".join(kept)


def _reduce_segment(segment: str, *, again: bool = True) -> str:
    """One side of an intersection with every house number cut to its hundred block."""
    lo, hi, _ = _trim(segment, 0, len(segment), None)
    # After the trim, so that "(4700 BLK" reads as "4700 BLK" does.
    segment = _BLOCK_WORD.sub(_block_word, segment[lo:hi])
    if "," in segment:  # "1512 ELM ST APT 12-B, SEATTLE": a unit inside goes too
        segment = _without_inner_units(segment)
    lo, hi, partners = _trim(segment, 0, len(segment), None)
    leading = _UNIT_BEFORE_NUMBER.match(segment, lo, hi)
    if leading:  # "APT 4 1512 ELM ST"
        lo = leading.end()
    lo, hi, partners = _without_units(segment, lo, hi, partners)
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
    # So does a number reduced before a block word: "0:0 BLK" -> "0XX BLK" -> "0XX".
    if again and (lost_a_bracket or _BLOCK_WORD.search(reduced)):
        return _reduce_segment(reduced, again=False)
    return reduced


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

    Shapes found on real feeds (issue 8):

    * units go wherever they stand: ``APT 12-B``, ``1512 ELM ST APT 3, SEATTLE``, and before
      the house number (``APT 4 1512 ELM ST`` -> ``15XX ELM ST``);
    * a ZIP code after a state is dropped, not reduced (``WA 98101`` -> ``WA``);
    * route numbers stay: after a route word or a state (``N LOOP 1604 W``, ``SW LOOP 410``,
      ``FM 1960``, ``NB MD 300 N``) and before a direction of travel (``94 EB AT N 27TH
      ST``, ``I 45 N/B``);
    * a ``/`` between digits or in ``N/B`` is no intersection (``SEVEN 1/2 MILE RD``);
    * a house number glued to a word is one: ``REAR-1512`` -> ``REAR 15XX``, ``NEAR:1512``
      -> ``NEAR: 15XX``, ``1512ELM ST`` -> ``15XX ELM ST``; after a word placing the call by
      a house (``NEAR``, ``REAR``, ``BEHIND``, ``IFO``, ``ACROSS FROM``...) a number is a
      house number even with no street after it (``NEAR 1512`` -> ``NEAR 15XX``);
    * a flag between asterisks is no part of the place: ``**CODE RED**1127 N WATER ST`` ->
      ``11XX N WATER ST``;
    * blocks written by the source are normalized: ``054XX`` -> ``54XX``, ``XX SWAN ST`` ->
      ``0XX SWAN ST``;
    * coordinates written as text (``LL(47.60164,-122.32766)``, any decimal of 3+ places)
      are dropped: the rounded coordinates are stored apart.

    Punctuation at the ends of a segment goes, and so do a bracket without its partner and a
    pair around the whole segment: ``(1512 Summit Ave)`` -> ``15XX SUMMIT AVE``.

    Invariant: no segment of the result (split at the ``/`` that separate streets) starts with
    a number other than a hundred block (``15XX``), an ordinal (``3RD``) or a route of 1-4
    digits before a direction of travel (``94 EB``), nor with a grid house number finer than
    a block; no ZIP code follows a state and no decimal of 3+ places is left. Reducing the
    result again changes nothing. Empty text gives ``None``.
    """
    if text is None:
        return None
    value = text.upper()
    if "*" in value:
        value = _without_markers(value)
    if "." in value:
        value = _COORDINATES.sub(" ", value)
    value = _GLUED_STREET.sub(r"\1 ", _STATE_ZIP.sub(_without_zip, value))
    if not value.replace(" ", "").isalnum():  # the common case has no punctuation at all
        value = _GLUED_HYPHEN.sub(_unglue_hyphen, _GLUED_PUNCTUATION.sub(r"\1 ", value))
    value = " ".join(value.split())
    value = _FRACTION.sub(r"\1", value)
    segments = (_reduce_segment(part) for part in _segments(value))
    # Once more: a reduced number can now stand before a fraction ("0:A 1/2" -> "0XX 1/2").
    return _FRACTION.sub(r"\1", " / ".join(s for s in segments if s)) or None


def _without_markers(value: str) -> str:
    """``value`` without the flags between asterisks, unless nothing else is left."""
    kept = _MARKER.sub(" ", value)
    return kept if any(c.isalnum() for c in kept) else value


def _without_zip(match: re.Match[str]) -> str:
    state = match.group(1)
    return state if state in STATES else match.group()


def _unglue_hyphen(match: re.Match[str]) -> str:
    word = match.group(1)
    return match.group() if word in _ROUTE_WORDS or word in STATES else word + " "


def _segments(value: str) -> list[str]:
    """``value`` split at each ``/`` that separates two streets (not ``1/2``, ``N/B``)."""
    if "/" not in value:
        return [value]
    parts, start = [], 0
    for match in _SLASH.finditer(value):
        if match.group() == "/":
            parts.append(value[start : match.start()])
            start = match.end()
    parts.append(value[start:])
    return parts


def _city_for(code: str, city_codes: Mapping[str, str]) -> str | None:
    city = city_codes.get(code)
    if city is None:  # the mapping may spell its keys in lower case or with spaces
        city = next((v for k, v in city_codes.items() if k.strip().upper() == code), None)
    return city


_UNKNOWN_CODE = re.compile(r"[A-Z]{2,4}")
# "WI", "WA 98101": a state, maybe with its ZIP code.
_STATE_TAIL = re.compile(r"([A-Z]{2})(?:\s+\d{5}(?:-\d{4})?)?")
# A place name: words of letters ("OAKCREEK", "SAN ANTONIO", "COEUR D'ALENE", "ST. PAUL").
_PLACE_NAME = re.compile(r"[^\W\d_]+(?:[ .'-]+[^\W\d_]+)*\.?")
_PLACE_STATE = re.compile(rf"({_PLACE_NAME.pattern}) ([A-Z]{{2}})(?: \d{{5}}(?:-\d{{4}})?)?")


def split_city(
    text: str | None, city_codes: Mapping[str, str], default_city: str | None
) -> tuple[str | None, str | None]:
    """Split a trailing city (a jurisdiction code, or a "City, ST" tail) off an address.

    ``"3268 N 29TH ST,MKE"`` with ``{"MKE": "Milwaukee"}`` -> ``("3268 N 29TH ST",
    "Milwaukee")``; spaces around the code are fine (``,WA `` is how one source pads it).
    A code missing from ``city_codes`` but made of 2-4 letters is returned itself, upper-cased,
    unless it is a US state: after a place name, ``"500 E OAK ST, OAKCREEK, WI"`` and ``"1512
    ELM ST, SEATTLE, WA 98101"`` give the city ``OAKCREEK`` / ``SEATTLE`` (upper-cased; the
    state and ZIP code are dropped); alone, ``"1512 ELM ST, WI"`` and ``"1512 ELM ST, WA
    98101"`` give ``("1512 ELM ST", default_city)``: a state is no city. Without commas, a
    tail that ends in a state code (``"3500 AILSA AV BALTIMORE MD"``) is labelled by
    usaddress (:func:`~dispatchwatch.normalize.postal.split_postal_tail`). Otherwise: ``(text,
    default_city)``. The address is stripped, not block-reduced.
    """
    if text is None:
        return None, default_city
    head, comma, tail = text.rpartition(",")
    if comma:
        code = " ".join(tail.split()).upper()
        city = _city_for(code, city_codes) if code else None
        if city is None:
            place_state = _PLACE_STATE.fullmatch(code)
            if place_state and place_state.group(2) in STATES:  # "..., SEATTLE WA 98101"
                return head.strip() or None, place_state.group(1)
            state = _STATE_TAIL.fullmatch(code)
            if state and state.group(1) in STATES:
                street, comma, place = head.rpartition(",")
                place = " ".join(place.split()).upper()
                if comma and _PLACE_NAME.fullmatch(place):  # "..., OAKCREEK, WI"
                    return street.strip() or None, place
                return head.strip() or None, default_city  # "..., WI": a state, no city
            if _UNKNOWN_CODE.fullmatch(code):
                city = code
        if city is not None:
            return head.strip() or None, city
    found = _postal_tail(text)
    if found is not None:
        return found
    return text.strip() or None, default_city


def _postal_tail(text: str) -> tuple[str | None, str] | None:
    """``split_postal_tail`` of the last street of ``text`` (after its last ``/``)."""
    value = " ".join(text.upper().split())
    if len(value) < 4 or not value[-1].isalnum():
        return None
    before, slash, last = value.rpartition("/")
    found = split_postal_tail(last.strip())
    if found is None:
        return None
    street, city = found
    return (f"{before}{slash}{' ' if slash else ''}{street}".strip() or None), city
