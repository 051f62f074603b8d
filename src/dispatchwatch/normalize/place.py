"""One cleaned address text -> the stored ``(address, city)``, memoized twice (bounded).

:func:`place` splits the city off (:func:`~.address.split_city`) and reduces the rest to its
hundred block (:func:`~.address.block_address`). Both are pure functions of the text, and
costly (regexes, and usaddress for a "City ST" tail), so results are memoized per text; and
since a feed's addresses are mostly the same streets under ever new house numbers, also per
*template*: the text with its leading house number written as ``1``s and its trailing zeros
(``4417 15th Av NE`` -> ``1111 15th Av NE``). Every rule reads such a number only by its
length (and usaddress by its trailing zeros, see :func:`~.postal._shape`), and the number
itself becomes its hundred block or stays as written; so the template's result, with its
first word put back (``11XX`` -> ``44XX``), is the text's own result. Whatever does not fit
that pattern is worked out directly. A test compares both ways on many addresses.

The caches hold at most :data:`CACHE_SIZE` entries each, so a daemon's memory stays flat.
"""

from __future__ import annotations

from functools import lru_cache

from .address import _hundred_block, block_address, split_city
from .postal import number_template

__all__ = ["CACHE_SIZE", "place"]

CACHE_SIZE = 16384
_CodesKey = tuple[tuple[str, str], ...]


@lru_cache(maxsize=64)
def _codes_dict(codes: _CodesKey) -> dict[str, str]:
    return dict(codes)


def _direct(
    text: str, codes: _CodesKey, default_city: str | None, exact: bool
) -> tuple[str | None, str | None]:
    """Stored (address, city) for one cleaned address text, worked out (no memo)."""
    if exact:
        return split_city(text.upper(), _codes_dict(codes), default_city)
    address, city = split_city(text, _codes_dict(codes), default_city)
    return block_address(address), city


_template_place = lru_cache(maxsize=CACHE_SIZE)(_direct)


@lru_cache(maxsize=CACHE_SIZE)
def place(
    text: str, codes: _CodesKey, default_city: str | None, exact: bool
) -> tuple[str | None, str | None]:
    """Stored ``(address, city)`` for one cleaned address text (whitespace collapsed).

    ``codes`` are the feed's city codes as sorted ``(CODE, city)`` pairs (hashable);
    ``exact`` keeps the house number (``precision: exact``). Same result as splitting and
    reducing ``text`` itself (see the module docstring).
    """
    number, space, rest = text.partition(" ")
    if space and number.isdigit() and number.isascii():
        template = number_template(number)
        if template != number:
            address, city = _template_place(f"{template} {rest}", codes, default_city, exact)
            if address is not None and (city is None or template not in city.split()):
                first, space, after = address.partition(" ")
                if first == template:
                    return f"{number}{space}{after}", city
                if first == _hundred_block(template):
                    return f"{_hundred_block(number)}{space}{after}", city
    return _direct(text, codes, default_city, exact)
