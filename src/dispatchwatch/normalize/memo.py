"""A bounded memo for the per-row hot paths of normalization."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Memo", "MemoInfo"]


class Memo(dict):  # type: ignore[type-arg]
    """A dict that works out a missing key's value by ``function`` (a lookup that hits stays
    in C: cheaper than an :func:`functools.lru_cache` call); emptied when it holds ``maxsize``
    entries. For pure functions of text or floats only (``1 == 1.0 == True`` hash alike).
    A ``function`` that raises stores nothing."""

    __slots__ = ("function", "maxsize")

    def __init__(self, function: Any, maxsize: int) -> None:
        super().__init__()
        self.function = function
        self.maxsize = maxsize

    def __missing__(self, key: Any) -> Any:
        if len(self) >= self.maxsize:
            self.clear()
        value = self[key] = self.function(key)
        return value

    def cache_info(self) -> MemoInfo:
        return MemoInfo(self.maxsize, len(self))


class MemoInfo(NamedTuple):
    maxsize: int
    currsize: int
