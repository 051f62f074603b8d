"""Merge archives of disjoint feeds into one (several daemons, one archive each, one site).

:func:`merge` copies every row of each input archive into ``out`` (created if missing) in one
transaction per input: feeds, incidents, versions, polls, feed state, day logs, the raw page
store and any other per-feed table, renumbering the ids that rows refer to (poll ids, version
ids, page ids) past those already in ``out``. Feeds must be disjoint: a feed in two archives
(or already in ``out``) is refused before anything is written, since two histories of one feed
cannot be interleaved into one without re-polling.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .archive import Archive
from .errors import DispatchwatchError
from .incident import TRACKED_FIELDS
from .versions import COMPACT_VALUES, VERSION_COLUMNS

#: Tables rebuilt from others (search index, zone offsets) or internal to SQLite.
_SKIP_PREFIXES = ("sqlite_", "incidents_fts")
_SKIP = {"zone_offsets"}
#: Versions are copied whole through the ``incident_versions`` view (see _copy_versions).
_VERSION_TABLES = {"incident_versions", "version_log", "version_values"}


class MergeError(DispatchwatchError):
    kind = "merge"


@dataclass(slots=True)
class MergeResult:
    out: Path
    feeds: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def _feeds(path: Path) -> list[str]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT slug FROM feeds ORDER BY slug")]
    except sqlite3.DatabaseError as exc:
        raise MergeError(f"{path} is not a dispatchwatch archive ({exc})") from None
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA {schema}.table_info([{table}])")]


def merge(out: str | Path, inputs: Sequence[str | Path]) -> MergeResult:
    """Merge the archives ``inputs`` into ``out``. Raises :class:`MergeError` (nothing
    written) when a feed is in more than one of them, or an input is missing or not an
    archive."""
    out = Path(out)
    paths = [Path(p) for p in inputs]
    owner: dict[str, Path] = {}
    if out.exists():
        for slug in _feeds(out):
            owner[slug] = out
    for path in paths:
        if not path.is_file():
            raise MergeError(f"no archive at {path}")
        if path.resolve() == out.resolve():
            raise MergeError(f"{path} is the output archive")
        for slug in _feeds(path):
            if slug in owner:
                raise MergeError(
                    f"feed {slug} is in both {owner[slug]} and {path}: merge archives of "
                    "disjoint feeds"
                )
            owner[slug] = path
    result = MergeResult(out)
    with Archive(out) as archive:
        conn = archive.conn
        for path in paths:
            # Bring the input to this version's schema in a copy-free way: read it as is,
            # column by column (columns it lacks stay NULL).
            conn.execute("ATTACH DATABASE ? AS src", [f"{path.resolve().as_uri()}?mode=ro"])
            try:
                with archive.transaction():
                    _copy(conn, result)
            finally:
                conn.execute("DETACH DATABASE src")
        from .publish import ensure_zone_offsets

        with archive.transaction():
            zones = [row[0] for row in conn.execute("SELECT DISTINCT timezone FROM feeds")]
            ensure_zone_offsets(conn, zones)
        result.feeds = sorted(owner)
    return result


def _copy(conn: sqlite3.Connection, result: MergeResult) -> None:
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM src.sqlite_master WHERE type = 'table' ORDER BY "
            # Referenced tables first.
            "CASE name WHEN 'feeds' THEN 0 WHEN 'polls' THEN 1 WHEN 'pages' THEN 2 "
            "WHEN 'imports' THEN 3 ELSE 4 END, name"
        )
    ]
    # Every table with an integer id is renumbered past the ids already in ``out``, and so is
    # every column that refers to one (``poll_id``, ``first_poll_id``, ``page_id``, ...).
    shift: dict[str, int] = {}
    for (table,) in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'"):
        if "id" in _columns(conn, "main", table) and not table.startswith(_SKIP_PREFIXES):
            shift[table] = conn.execute(
                f"SELECT coalesce(max(id), 0) FROM main.[{table}]"
            ).fetchone()[0]
    refers = {"poll_id": "polls", "first_poll_id": "polls", "last_poll_id": "polls",
              "page_id": "pages", "import_id": "imports"}  # fmt: skip
    known = {
        row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")
    }
    for table in tables:
        if table.startswith(_SKIP_PREFIXES) or table in _SKIP or table in _VERSION_TABLES:
            continue
        if table not in known:
            count = conn.execute(f"SELECT count(*) FROM src.[{table}]").fetchone()[0]
            if count:
                raise MergeError(
                    f"the input has a table {table} ({count} rows) this dispatchwatch does "
                    "not know; upgrade dispatchwatch"
                )
            continue
        source = set(_columns(conn, "src", table))
        columns = [c for c in _columns(conn, "main", table) if c in source]
        expressions = []
        for column in columns:
            target = table if column == "id" else refers.get(column)
            if table == "pages" and column in ("base", "chain"):
                target = "pages"
            if target in shift:
                expressions.append(f"[{column}] + {shift[target]}")
            else:
                expressions.append(f"[{column}]")
        order = " ORDER BY rowid" if table != "poll_pages" else ""
        cursor = conn.execute(
            f"INSERT INTO main.[{table}] ({', '.join(f'[{c}]' for c in columns)}) "
            f"SELECT {', '.join(expressions)} FROM src.[{table}]{order}"
        )
        result.rows[table] = result.rows.get(table, 0) + max(cursor.rowcount, 0)
    _copy_versions(conn, result, shift)


def _copy_versions(conn: sqlite3.Connection, result: MergeResult, shift: dict[str, int]) -> None:
    """The input's versions, whole, through the ``incident_versions`` view (its triggers key
    them by the merged incidents' rowids), then compacted (versions.py)."""
    kind = conn.execute(
        "SELECT type FROM src.sqlite_master WHERE name = 'incident_versions'"
    ).fetchone()
    if kind is None:
        return
    names = [n for n in VERSION_COLUMNS if n not in ("id", "poll_id")]
    if kind[0] == "view":  # schema 9 and later: whole already
        source = "src.incident_versions v"
        values = [f"v.[{n}]" for n in names]
    else:  # schema 8 and before: a gone version may store no fields (the previous one's)
        source = (
            "src.incident_versions v LEFT JOIN src.incident_versions p ON v.gone_at IS NOT NULL "
            "AND p.feed = v.feed AND p.incident_id = v.incident_id AND p.version = v.version - 1"
        )
        values = [
            f"CASE WHEN v.gone_at IS NULL OR p.id IS NULL THEN v.[{n}] ELSE p.[{n}] END"
            if n in TRACKED_FIELDS
            else f"v.[{n}]"
            for n in names
        ]
    first = shift.get("version_log", 0)
    cursor = conn.execute(
        f"INSERT INTO main.incident_versions (id, poll_id, {', '.join(names)}) "
        f"SELECT v.id + {int(first)}, v.poll_id + {int(shift.get('polls', 0))}, "
        f"{', '.join(values)} FROM {source} ORDER BY v.id"
    )
    result.rows["incident_versions"] = max(cursor.rowcount, 0)
    conn.execute(
        COMPACT_VALUES.replace("WHERE NOT EXISTS", f"WHERE x.id > {int(first)} AND NOT EXISTS", 1)
    )
