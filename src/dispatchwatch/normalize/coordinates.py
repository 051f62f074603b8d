"""Coordinates -> block precision (3 decimals, about 110 m) unless a feed is exact."""

from __future__ import annotations

import math
import re
from functools import lru_cache

__all__ = ["LAT_LON_TEXT", "round_coordinate"]

#: A point as ``(lat, lon)`` or ``lat, lon`` text (a CSV export's location column): groups
#: latitude, longitude. For ``fullmatch``.
LAT_LON_TEXT = re.compile(r"\(?\s*(-?[0-9]+(?:\.[0-9]+)?)\s*,\s*(-?[0-9]+(?:\.[0-9]+)?)\s*\)?")


# typed: True and 1 (and 1.0) are equal keys, but True is no coordinate.
@lru_cache(maxsize=16384, typed=True)
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
