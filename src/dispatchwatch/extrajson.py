"""An incident's ``extra`` as the archive stores it, quickly.

The text is ``json.dumps(extra, sort_keys=True, ensure_ascii=False, default=str)`` (sorted, so
that equal dicts compare equal), to the character. ``json.dumps`` given arguments builds a
``JSONEncoder`` and a C encoder at every call, and every row sorts and encodes its keys again,
though a feed's rows (an import's above all) come with the same few sets of keys and text
values. :func:`extra_json` remembers, per tuple of keys, their sorted order and their encoded
``"key": `` prefixes, and encodes only the values (one C call each); a value that is not
text (a number, a list, a plugin's datetime) takes one reused encoder of the whole dict.
A New Orleans row's nine extras: 26.5k -> 21k instructions (valgrind). When no value needs
escaping (printable, no ``"`` or ``\\``: the common case, checked on all of them joined),
each value is its own JSON text but for the quotes: the values are slotted between the
remembered key parts and joined at once (three C calls a row in all): 18.9k -> 11.5k
instructions a New Orleans row (callgrind).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from operator import add, itemgetter
from typing import Any

__all__ = ["extra_json"]

#: Tuples of keys remembered at most (then all forgotten at once): a feed has a few.
MAX_SHAPES = 512

_Shape = tuple[Callable[[dict[str, Any]], Any], tuple[str, ...], list[str | None]]


#: The whole dict (a value that is not text): one encoder for every call (``default=str``: a
#: plugin's datetime or Decimal must not fail the whole poll).
_general = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode
#: Tuple of keys -> (their values in sorted key order, the prefixes); None: not all text.
_shapes: dict[tuple[Any, ...], _Shape | None] = {}


def _shape(keys: tuple[Any, ...]) -> _Shape | None:
    if len(_shapes) >= MAX_SHAPES:
        _shapes.clear()
    shape = None
    if keys and all(type(key) is str for key in keys):
        order = sorted(keys)
        prefixes = tuple(
            ("{" if number == 0 else ", ") + encode_basestring(key) + ": "
            for number, key in enumerate(order)
        )
        only = order[0]
        values = itemgetter(*order) if len(order) > 1 else (lambda extra: (extra[only],))
        # '{"a": "', None, '", "b": "', None, '"}': the values (plain text) go at the Nones.
        parts: list[str | None] = []
        for number, key in enumerate(order):
            parts += [("{" if number == 0 else '", ') + encode_basestring(key) + ': "', None]
        parts.append('"}')
        shape = (values, prefixes, parts)
    _shapes[keys] = shape
    return shape


def extra_json(extra: dict[str, Any]) -> str:
    """``json.dumps(extra, sort_keys=True, ensure_ascii=False, default=str)`` (see the
    module docstring); raises what that raises (``TypeError`` for keys of mixed types)."""
    keys = tuple(extra)
    try:
        shape = _shapes[keys]
    except KeyError:
        shape = _shape(keys)
    if shape is not None:
        values, prefixes, parts = shape
        texts = values(extra)
        try:
            joined = "".join(texts)
        except TypeError:  # a value that is not text
            return _general(extra)
        # encode_basestring escapes only '"', "\\" and characters below " " (not printable):
        # without them every value is '"' + value + '"' (tested on every character).
        if joined.isprintable() and '"' not in joined and "\\" not in joined:
            slotted = parts.copy()
            slotted[1::2] = texts
            return "".join(slotted)
        return "".join(map(add, prefixes, map(encode_basestring, texts))) + "}"
    return _general(extra)
