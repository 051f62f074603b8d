"""Unit lists -> unique unit IDs (``"E25,  L1"`` -> ``["E25", "L1"]``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["split_units"]

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
