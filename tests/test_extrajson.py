"""``extra_json`` writes exactly what ``json.dumps(extra, sort_keys=True, ensure_ascii=False,
default=str)`` writes (the archive compares stored ``extra`` text), whatever the keys and
values, however often a set of keys comes back."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchwatch import extrajson
from dispatchwatch.extrajson import extra_json


def _reference(extra: dict[Any, Any]) -> str:
    return json.dumps(extra, sort_keys=True, ensure_ascii=False, default=str)


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['"', "\\", 'a"b', "\n\t\x00\x1f", "é ü 中", "\u2028", "", 'x", "y']
)
_VALUE = st.one_of(
    _TEXT,
    _TEXT,
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.lists(_TEXT, max_size=3),
    st.dictionaries(_TEXT, _TEXT, max_size=2),
)
_KEYS = st.lists(_TEXT, min_size=1, max_size=6, unique=True)


@settings(max_examples=300, deadline=None)
@given(keys=_KEYS, rows=st.lists(st.lists(_VALUE, min_size=6, max_size=6), min_size=1, max_size=4))
def test_the_same_text_as_json_dumps(keys: list[str], rows: list[list[Any]]) -> None:
    # Several rows of the same keys (the remembered shape), text or not, in two key orders.
    for values in rows:
        extra = dict(zip(keys, values, strict=False))
        assert extra_json(extra) == _reference(extra)
        backwards = dict(reversed(list(extra.items())))
        assert extra_json(backwards) == _reference(backwards)


def test_odd_keys_and_values_take_the_general_encoder() -> None:
    row = {"when": datetime(2024, 11, 2, 13, 5), "amount": Decimal("1.50"), "zip": "98101"}
    assert extra_json(row) == '{"amount": "1.50", "when": "2024-11-02 13:05:00", "zip": "98101"}'
    assert extra_json({1: "a", 2: "b"}) == _reference({1: "a", 2: "b"})  # int keys: as text
    assert extra_json({"only": "one"}) == '{"only": "one"}'
    with pytest.raises(TypeError):  # keys of mixed types cannot be sorted, as json.dumps
        extra_json({1: "a", "b": "c"})


def test_remembered_shapes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extrajson, "MAX_SHAPES", 4)
    monkeypatch.setattr(extrajson, "_shapes", {})
    for number in range(10):
        extra = {f"k{number}": "v", "z": str(number)}
        assert extra_json(extra) == _reference(extra)
        assert len(extrajson._shapes) <= 4


def test_printable_text_is_encoded_as_it_is_but_for_the_quotes() -> None:
    """What the fast path relies on: ``encode_basestring`` escapes no printable character
    but ``"`` and ``\\``; every character checked."""
    from json.encoder import encode_basestring  # type: ignore[attr-defined]

    plain = "".join(c for c in map(chr, range(0x110000)) if c.isprintable() and c not in '"\\')
    assert encode_basestring(plain) == f'"{plain}"'
    assert extra_json({"b": plain, "a": "x"}) == _reference({"b": plain, "a": "x"})
