"""Export an archive table to CSV, NDJSON or Parquet, streaming with constant memory.

The way past one SQLite file: load the export into DuckDB, BigQuery, Spark or a data lake.

- **CSV** and **NDJSON** write one file (``.gz`` compresses it; ``-`` is standard output) in
  the order rows were archived. Values are as stored: times are UTC ISO 8601 text with ``Z``;
  in NDJSON the JSON columns (``extra``, ``changed``) are JSON values, in CSV JSON text.
- **Parquet** writes a Hive-partitioned folder, one file per feed and month,
  ``OUT/feed=SLUG/month=YYYY-MM/part-0.parquet``, readable as it is by DuckDB
  (``read_parquet('OUT/**/*.parquet', hive_partitioning=1)``), pandas (``read_parquet(OUT)``)
  and Spark (``spark.read.parquet(OUT)``). Times are ``timestamp[ms, UTC]``, coordinates
  ``double``, counts ``int64``, JSON columns JSON text. ``feed`` and ``month`` live in the
  folder names only (the Hive convention); the month is the UTC month of the row's date.
  A manifest ``_dispatchwatch_export.json`` (ignored by those readers) says what was exported.

A row's date, used by ``since``/``until`` and the month: ``incidents``: ``received_at``, or
``first_seen_at`` when the source gave no time; ``incident_versions``: ``observed_at`` (when
that version was seen); ``polls``: ``started_at``.

Rows are read in batches from one read-only transaction (the archive as of one commit, safe
beside a running daemon) and written as they come: memory does not grow with the archive.
Output is written beside its target (``OUT.partial``) and renamed into place when complete.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from .archive import format_time, utc_now
from .errors import DispatchwatchError

FORMATS = ("csv", "ndjson", "parquet")
#: table -> SQL of the date a row is filtered and partitioned by.
TABLES: dict[str, str] = {
    "incidents": "coalesce(received_at, first_seen_at)",
    "incident_versions": "observed_at",
    "polls": "started_at",
}
#: Columns holding archive timestamps (UTC text ``...Z``): timestamp[ms, UTC] in Parquet.
TIME_COLUMNS = frozenset(
    ("received_at", "first_seen_at", "last_seen_at", "gone_at", "observed_at", "started_at")
)
#: Columns holding JSON text, per table: JSON values in NDJSON.
JSON_COLUMNS = {
    "incidents": frozenset({"extra"}),
    "incident_versions": frozenset({"extra", "changed"}),
}
MANIFEST = "_dispatchwatch_export.json"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive's name for a NULL partition value

BATCH_ROWS = 5_000  # rows fetched from SQLite at a time
ROW_GROUP_ROWS = 100_000  # rows per Parquet row group


class ExportError(DispatchwatchError):
    """The export cannot be made as asked (unknown feed, output exists, pyarrow missing...)."""

    kind = "export"


@dataclass(slots=True)
class ExportResult:
    """What :func:`export` wrote: ``rows`` of ``table`` into ``files`` under ``path``."""

    path: Path | None  # None: standard output
    fmt: str
    table: str
    rows: int
    seconds: float
    feeds: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    bytes: int = 0

    def summary(self) -> str:
        """One line for people: what, where, how fast."""
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        where = "standard output" if self.path is None else str(self.path)
        parts = f", {len(self.files)} files" if self.fmt == "parquet" else ""
        size = f", {self.bytes:,} bytes" if self.path is not None else ""
        return (
            f"Exported {self.rows:,} {self.table} rows ({len(self.feeds)} feeds{parts}{size}) "
            f"to {where} as {self.fmt} in {self.seconds:.1f}s ({rate:,.0f} rows/s)"
        )


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # "text", "int", "float", "time", "json"


def table_columns(conn: sqlite3.Connection, table: str) -> list[Column]:
    """The exported columns of ``table``, typed from the schema (so columns that later
    migrations add are exported too)."""
    columns = []
    fallback: dict[str, str] = {}
    if table == "incident_versions":  # a view (versions.py): its CASE columns have no type
        for source in ("version_log", "incidents"):
            for _cid, name, declared, *_rest in conn.execute(f"PRAGMA table_info([{source}])"):
                fallback.setdefault(name, declared)
    for _cid, name, declared, *_rest in conn.execute(f"PRAGMA table_info([{table}])"):
        declared = (declared or fallback.get(name) or "").upper()
        if name in TIME_COLUMNS:
            kind = "time"
        elif name in JSON_COLUMNS.get(table, ()):
            kind = "json"
        elif "INT" in declared:
            kind = "int"
        elif any(word in declared for word in ("REAL", "FLOA", "DOUB")):
            kind = "float"
        else:
            kind = "text"
        columns.append(Column(name, kind))
    return columns


def _connect_readonly(path: Path) -> sqlite3.Connection:
    from .database import connect_read_only

    conn = connect_read_only(path, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM feeds").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ExportError(f"{path} is not a dispatchwatch archive ({exc})") from None
    return conn


def _where(
    conn: sqlite3.Connection,
    table: str,
    feeds: Sequence[str],
    since: str | None,
    until: str | None,
) -> tuple[str, list[Any], list[str]]:
    """The WHERE clause, its parameters, and the feeds it keeps (checked against ``feeds``)."""
    known = [row[0] for row in conn.execute("SELECT slug FROM feeds ORDER BY slug")]
    unknown = [slug for slug in feeds if slug not in known]
    if unknown:
        raise ExportError(
            f"no feed {', '.join(unknown)} in the archive (feeds: {', '.join(known) or 'none'})"
        )
    clauses, params = ["1"], []
    if feeds:
        clauses.append(f"feed IN ({', '.join('?' * len(feeds))})")
        params += list(feeds)
    dated = TABLES[table]
    if since:
        clauses.append(_bound_clause(dated, ">=", since, params))
    if until:
        clauses.append(_bound_clause(dated, "<", until, params))
    return " AND ".join(clauses), params, list(dict.fromkeys(feeds)) or known


def parse_bound(text: str, *, end: bool = False) -> str:
    """A ``--since``/``--until`` value as archive time text (UTC, milliseconds, ``Z``).

    A date (``2024-04-01``) means the start of that UTC day, or with ``end`` the start of the
    next one, so ``--until 2024-04-01`` includes all of April 1st. A time without an offset
    is UTC. Raises ``ValueError`` naming the value.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return format_time(moment + timedelta(days=1) if end else moment)
        return format_time(_instant(text))
    except (ValueError, ExportError):
        raise ValueError(
            f"not a date or time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
        ) from None


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExportError(f"not a UTC time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _bound_clause(dated: str, op: str, bound: str, params: list[Any]) -> str:
    """``date >= bound`` or ``date < bound``, exact although the archive holds times both
    to the second (``...:05Z``) and to the millisecond (``...:05.250Z``), which do not sort
    as text the way they do as times (``:05.250Z`` < ``:05Z``).

    The bound is compared as millisecond text: ``...:05.000Z`` sorts before every time of
    that second in both forms, so a whole-second bound is exact. A bound inside a second
    (``:05.250``) is exact too once ``...:05Z`` (= ``:05.000``, before it) is set apart.
    """
    text = format_time(_instant(bound))
    params.append(text)
    if text.endswith(".000Z"):
        return f"{dated} {op} ?"
    params.append(text[:-5] + "Z")  # the same second, written without milliseconds
    return f"({dated} >= ? AND {dated} != ?)" if op == ">=" else f"({dated} < ? OR {dated} = ?)"


def export(
    archive: str | Path,
    out: str | Path,
    fmt: str,
    *,
    table: str = "incidents",
    feeds: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    replace: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> ExportResult:
    """Export ``table`` of the archive at ``archive`` to ``out`` in ``fmt``.

    ``out``: a file for ``csv``/``ndjson`` (``.gz`` compresses; ``-`` writes to standard
    output), a folder for ``parquet``. ``feeds`` limits to those feeds; ``since``/``until``
    (stored time text, UTC ``...Z``: see :func:`dispatchwatch.publish.parse_bound`) to rows
    dated in [since, until). An existing ``out`` is replaced only with ``replace`` (for a
    folder, only one that holds a previous export). ``on_start(total_rows)`` is called once,
    then ``on_progress(rows)`` after each batch with the rows just written.

    Raises :class:`ExportError` (unknown table, format or feed, output exists, pyarrow not
    installed, a value that is not what its column promises).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    if table not in TABLES:
        raise ExportError(f"unknown table {table!r} (expected one of: {', '.join(TABLES)})")
    if since and until and _instant(since) >= _instant(until):
        raise ExportError("--since must be before --until")
    archive = Path(archive)
    to_stdout = str(out) == "-"
    if to_stdout and fmt == "parquet":
        raise ExportError("Parquet is written to a folder: pass -o FOLDER")
    target = None if to_stdout else Path(out)
    if target is not None:
        _check_target(archive, target, fmt, replace)
    if fmt == "parquet":
        _require_pyarrow()
    began = time.perf_counter()
    conn = _connect_readonly(archive)
    try:
        conn.execute("BEGIN")  # one read transaction: the count and the rows of one commit
        columns = table_columns(conn, table)
        where, params, kept = _where(conn, table, feeds, since, until)
        if on_start is not None:
            total = conn.execute(f"SELECT count(*) FROM [{table}] WHERE {where}", params)
            on_start(total.fetchone()[0])
        names = ", ".join(f"[{c.name}]" for c in columns)
        source, order = f"[{table}]", "rowid"
        if table == "incident_versions":  # gone versions with their fields (versions.py)
            from .versions import whole_versions

            source, order = whole_versions([c.name for c in columns]), "id"
        if fmt == "parquet":
            assert target is not None
            dated = TABLES[table]
            cursor = conn.execute(
                f"SELECT feed, coalesce(substr({dated}, 1, 7), ?), {names} FROM {source} "
                f"WHERE {where} ORDER BY feed, 2, {dated}",
                [NULL_PARTITION, *params],
            )
            manifest = {
                "table": table,
                "format": fmt,
                "feeds": kept,
                "since": since,
                "until": until,
                "exported_at": utc_now(),
                "archive": str(archive.resolve()),
                "partitioning": "hive: feed, month (the UTC month of each row's date)",
            }
            rows, files = _write_parquet(
                cursor, columns, target, manifest, batch_rows, row_group_rows, on_progress
            )
        else:
            cursor = conn.execute(
                f"SELECT {names} FROM {source} WHERE {where} ORDER BY {order}", params
            )
            with _text_output(target) as stream:
                write = _write_csv if fmt == "csv" else _write_ndjson
                rows = write(cursor, columns, stream, batch_rows, on_progress)
            files = [] if target is None else [target]
        conn.execute("COMMIT")
    finally:
        conn.close()
    result = ExportResult(target, fmt, table, rows, time.perf_counter() - began, kept, files)
    if target is not None:
        result.bytes = sum(path.stat().st_size for path in files)
    return result


def _check_target(archive: Path, target: Path, fmt: str, replace: bool) -> None:
    if target.resolve() == archive.resolve():
        raise ExportError("the export cannot overwrite the archive it reads")
    if not target.exists():
        return
    if not replace:
        raise ExportError(f"{target} exists (use --replace to overwrite it)")
    if fmt == "parquet":
        if not target.is_dir() or not (target / MANIFEST).is_file():
            raise ExportError(
                f"{target} exists and is not a previous Parquet export: remove it yourself"
            )
    elif target.is_dir():
        raise ExportError(f"{target} is a folder: CSV and NDJSON are written to a file")


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ExportError(
            "Parquet export needs pyarrow: pip install 'dispatchwatch[export]'"
        ) from None


def _batches(cursor: sqlite3.Cursor, size: int) -> Iterator[list[Any]]:
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows


# --- CSV and NDJSON ----------------------------------------------------------------------------


@contextmanager
def _text_output(target: Path | None) -> Iterator[IO[str]]:
    """Standard output, or ``target`` written as ``target.partial`` and renamed when done."""
    if target is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = target.with_name(target.name + ".partial")
    opener: Any = gzip.open if target.suffix == ".gz" else open
    try:
        with opener(partial, "wt", encoding="utf-8", newline="") as stream:
            yield stream
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _write_csv(
    cursor: sqlite3.Cursor,
    columns: list[Column],
    stream: IO[str],
    batch_rows: int,
    on_progress: Callable[[int], None] | None,
) -> int:
    """A header line, then one line per row; NULL is an empty field."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    rows = 0
    for batch in _batches(cursor, batch_rows):
        writer.writerows(batch)  # csv writes None as an empty field
        rows += len(batch)
        if on_progress is not None:
            on_progress(len(batch))
    return rows


def _write_ndjson(
    cursor: sqlite3.Cursor,
    columns: list[Column],
    stream: IO[str],
    batch_rows: int,
    on_progress: Callable[[int], None] | None,
) -> int:
    """One JSON object per line; JSON columns as JSON values, not text."""
    names = [c.name for c in columns]
    json_at = [i for i, c in enumerate(columns) if c.kind == "json"]
    dumps, loads = json.dumps, json.loads
    rows = 0
    for batch in _batches(cursor, batch_rows):
        lines = []
        for row in batch:
            values = list(row)
            for i in json_at:
                if values[i] is not None:
                    try:
                        values[i] = loads(values[i])
                    except ValueError:
                        raise ExportError(
                            f"column {names[i]} holds text that is not JSON"
                        ) from None
            lines.append(dumps(dict(zip(names, values, strict=True)), ensure_ascii=False))
        stream.write("\n".join(lines) + "\n")
        rows += len(batch)
        if on_progress is not None:
            on_progress(len(batch))
    return rows


# --- Parquet -----------------------------------------------------------------------------------


def arrow_schema(columns: Sequence[Column]) -> Any:
    """The Parquet schema of the exported columns (``feed`` is in the folder name)."""
    import pyarrow as pa

    types = {
        "text": pa.string(),
        "json": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "time": pa.timestamp("ms", tz="UTC"),
    }
    return pa.schema([pa.field(c.name, types[c.kind]) for c in columns if c.name != "feed"])


def _record_batch(rows: list[tuple[Any, ...]], columns: list[Column], schema: Any) -> Any:
    """Rows ``(feed, month, *columns)`` as an Arrow record batch of ``schema``."""
    import pyarrow as pa

    values = list(zip(*rows, strict=True))
    arrays = []
    for index, column in enumerate(columns, start=2):
        if column.name == "feed":
            continue
        data = values[index]
        try:
            if column.kind == "time":
                array = pa.array(data, pa.string()).cast(pa.timestamp("ms", tz="UTC"))
            else:
                array = pa.array(data, schema.field(column.name).type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            # Name the column, never quote a cell (errors may be published).
            expected = "UTC ISO 8601 times" if column.kind == "time" else column.kind
            raise ExportError(
                f"column {column.name} holds a value that is not {expected}; nothing exported"
            ) from None
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _write_parquet(
    cursor: sqlite3.Cursor,
    columns: list[Column],
    target: Path,
    manifest: dict[str, Any],
    batch_rows: int,
    row_group_rows: int,
    on_progress: Callable[[int], None] | None,
) -> tuple[int, list[Path]]:
    """Write rows sorted by (feed, month) as one file per partition, one open file at a
    time, each row group at most ``row_group_rows`` rows; then ``manifest`` (completed with
    the rows and files) as :data:`MANIFEST`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(columns).with_metadata(
        {"dispatchwatch.table": manifest["table"], "dispatchwatch.partitioning": "feed, month"}
    )
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    files: list[Path] = []
    writer: Any = None
    pending: list[Any] = []
    pending_rows = 0
    key: tuple[str, str] | None = None
    rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
            pending, pending_rows = [], 0

    try:
        for batch in _batches(cursor, batch_rows):
            start = 0
            while start < len(batch):  # split the batch where the partition changes
                head = (batch[start][0], batch[start][1])
                end = start + 1
                while end < len(batch) and (batch[end][0], batch[end][1]) == head:
                    end += 1
                if head != key:
                    if writer is not None:
                        flush()
                        writer.close()
                    key = head
                    folder = partial / f"feed={quote(head[0], safe='')}" / f"month={head[1]}"
                    folder.mkdir(parents=True)
                    files.append(folder / "part-0.parquet")
                    writer = pq.ParquetWriter(files[-1], schema, compression="zstd")
                pending.append(_record_batch(batch[start:end], columns, schema))
                pending_rows += end - start
                if pending_rows >= row_group_rows:
                    flush()
                start = end
            rows += len(batch)
            if on_progress is not None:
                on_progress(len(batch))
        if writer is not None:
            flush()
            writer.close()
            writer = None
        manifest["rows"] = rows
        manifest["files"] = [str(path.relative_to(partial)) for path in files]
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if target.exists():  # checked by the caller: a previous export, --replace given
            shutil.rmtree(target)
        partial.rename(target)
    except BaseException:
        if writer is not None:
            writer.close()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return rows, [target / path.relative_to(partial) for path in files]
