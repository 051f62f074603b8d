"""The "City ST ZIP" tail of a postal address written without commas, labelled by usaddress.

``"3500 AILSA AV BALTIMORE MD"`` -> street ``"3500 AILSA AV"``, city ``"BALTIMORE"``. Where
the city ends and the street begins cannot be read off a word list (``"1512 ELM ST SAN
ANTONIO TX"``, ``"100 BROADWAY NEW YORK NY"``), so the words are labelled by `usaddress`_, a
conditional-random-field parser trained on US addresses; the rest of the address rules stay
hand-written, where they measured better (see ``bench/addresses.py``).

Only text that ends in a US state code (and maybe a ZIP code) is parsed, so the usual feed
addresses never pay for it; results are memoized per string (bounded cache), and the labels per
*shape* of the string (bounded cache, see :func:`_shape`): ``1512 15TH AV NE`` and ``4417 15TH
AV NE`` are labelled once, since usaddress reads a number word only by its length and its
trailing zeros.

.. _usaddress: https://github.com/datamade/usaddress
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["STATES", "number_template", "split_postal_tail"]

# The US states, DC, Puerto Rico, the Virgin Islands and Guam as postal codes (not American
# Samoa's "AS" nor the Northern Marianas' "MP": a word and a mile post in dispatch text).
_STATE_CODES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE "
    "NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU"
)
STATES = frozenset(_STATE_CODES.split())
# Codes that also end street names ("S BREWERS WA" is a way, "OAK CT" a court): only with a
# ZIP code after them are they read as a state.
_AMBIGUOUS = frozenset({"WA", "CT", "AL", "LA", "IN", "ME", "OR", "DE", "MT", "CO", "PA"})
_TAIL = re.compile(r"(?:.*\s)?([A-Z]{2})(\s+\d{5}(?:-\d{4})?)?")
# Longer text is no postal address, and the parser's time grows with it: a broken feed's
# 10 MB cell must not stall ingest.
_LONGEST = 200
_STREET_LABELS = ("AddressNumber", "StreetName", "StreetNamePostType", "StreetNamePreType")
# A word of ASCII digits alone (the whole of a whitespace-separated word).
_NUMBER_WORD = re.compile(r"(?<!\S)[0-9]+(?!\S)")


def number_template(number: str) -> str:
    """A number written as ``1``s and its trailing zeros: ``"4417"`` -> ``"1111"``,
    ``"1200"`` -> ``"1100"``, ``"054"`` -> ``"111"``, ``"0"`` -> ``"0"``."""
    zeros = len(number) - len(number.rstrip("0"))
    return "1" * (len(number) - zeros) + "0" * zeros


def _shape(text: str) -> str:
    """``text`` with each word made of digits only written as ``1``s and its trailing zeros:
    ``"1512 15TH AV NE"`` -> ``"1111 15TH AV NE"``, ``"1200 ELM"`` -> ``"1100 ELM"``.

    usaddress's features of such a word (``tokenFeatures``: ``digits``, ``word``,
    ``trailing.zeros``, ``length``, ``endsinpunc``, ``abbrev``, ``directional``,
    ``street_name``, ``has.vowels``) depend on nothing else, and its tokens are whitespace
    words split further at punctuation, so the shape gets the same tokens and labels (a test
    checks it against parsing each string itself).
    """
    return _NUMBER_WORD.sub(lambda match: number_template(match.group()), text)


@lru_cache(maxsize=4096)
def _shape_labels(shape: str) -> tuple[str, ...] | None:
    """usaddress's labels of the tokens of ``shape``; None when usaddress fails on it."""
    import usaddress

    try:
        return tuple(label for _, label in usaddress.parse(shape))
    except Exception:  # usaddress raises its own errors on odd input; then no split  # noqa: BLE001
        return None


def _parse(text: str) -> list[tuple[str, str]] | None:
    """``usaddress.parse(text)`` (None when it fails), the labels read off its shape."""
    import usaddress

    labels = _shape_labels(_shape(text))
    if labels is None:
        return None
    tokens = usaddress.tokenize(text)
    if len(tokens) != len(labels):  # never seen; the labels would not fit: parse it whole
        try:
            return usaddress.parse(text)
        except Exception:  # noqa: BLE001
            return None
    return list(zip(tokens, labels, strict=True))


@lru_cache(maxsize=4096)
def split_postal_tail(text: str) -> tuple[str, str] | None:
    """``(street, city)`` of upper-case, whitespace-collapsed ``text`` ending in a state code.

    ``None`` when ``text`` is longer than 200 characters, does not end in a state code (or in
    an ambiguous one without a ZIP), when usaddress does not label a place name right before
    the state, or when nothing of a street is left before the place. State and ZIP are dropped.
    """
    if len(text) > _LONGEST:
        return None
    tail = _TAIL.fullmatch(text)
    if tail is None or tail.group(1) not in STATES:
        return None
    if tail.group(1) in _AMBIGUOUS and not tail.group(2):
        return None
    parsed = _parse(text)
    if parsed is None:
        return None
    labels = [label for _, label in parsed]
    end = len(parsed)
    while end and labels[end - 1] in ("StateName", "ZipCode", "ZipPlus4"):
        end -= 1
    if end == len(parsed) or labels[len(parsed) - 1] not in ("StateName", "ZipCode", "ZipPlus4"):
        return None
    start = end
    while start and labels[start - 1] == "PlaceName":
        start -= 1
    if start == end or not any(label in _STREET_LABELS for label in labels[:start]):
        return None
    street = " ".join(token for token, _ in parsed[:start]).rstrip(" ,")
    city = " ".join(token for token, _ in parsed[start:end]).strip(" ,")
    return (street, city) if street and city else None
