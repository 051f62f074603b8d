"""Reading an archive's ``feeds`` table read-only (for metadata and snapshots)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..database import connect_read_only


def _connect_readonly(path: str | Path) -> sqlite3.Connection:
    conn = connect_read_only(path)  # one line for a missing or foreign file, works read-only
    conn.row_factory = sqlite3.Row
    return conn


def _feed_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM feeds ORDER BY slug")]
    except sqlite3.OperationalError as exc:
        raise ValueError(f"not a dispatchwatch archive ({exc})") from exc
