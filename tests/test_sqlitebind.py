"""The None adapter (sqlitebind.py): None is still bound as NULL, and nothing else changes."""

from __future__ import annotations

import sqlite3

import pytest

import dispatchwatch.archive  # noqa: F401 - registers the adapter, as every archive user does
from dispatchwatch import sqlitebind


def test_archives_bind_none_through_the_adapter() -> None:
    assert sqlitebind._NONE_KEY in sqlite3.adapters


def test_none_is_still_null() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b, c)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(None, 1, "x"), (2.5, None, None)])
    conn.execute("INSERT INTO t VALUES (:a, :b, :c)", {"a": None, "b": None, "c": b"\x00"})
    rows = conn.execute("SELECT typeof(a), typeof(b), typeof(c), a, b, c FROM t").fetchall()
    assert rows == [
        ("null", "integer", "text", None, 1, "x"),
        ("real", "null", "null", 2.5, None, None),
        ("null", "null", "blob", None, None, b"\x00"),
    ]
    assert conn.execute("SELECT ? IS NULL", [None]).fetchone() == (1,)


def test_an_adapter_of_the_application_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def own(value: None) -> str:
        return "nothing"

    monkeypatch.setitem(sqlite3.adapters, sqlitebind._NONE_KEY, own)
    sqlitebind.bind_none_fast()
    assert sqlite3.adapters[sqlitebind._NONE_KEY] is own
    monkeypatch.delitem(sqlite3.adapters, sqlitebind._NONE_KEY)
    sqlitebind.bind_none_fast()
    adapter = sqlite3.adapters[sqlitebind._NONE_KEY]
    assert adapter(None) is None and adapter.__self__ == {}  # an empty dict's get
