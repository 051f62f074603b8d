"""Readers for exported files: CSV, TSV, Excel (``.xlsx``/``.xls``), JSON and NDJSON.

Every reader gives a :class:`Table`: the header (column names) and an iterator of
``(row_number, row)``. ``row_number`` is what a person sees: the spreadsheet row (the header
is row 1 of a CSV, so its first data row is row 2), the line of an NDJSON file, the position
(1-based) of an object in a JSON array. ``row`` is a list aligned with the header (CSV,
Excel, Socrata ``rows.json``) or a dict (JSON objects, GeoJSON features).

Text files and JSON are streamed (constant memory, read in blocks). Excel files are read
with python-calamine, which reads both ``.xlsx`` and ``.xls`` but holds one sheet in memory
(calamine has no lazy reader; a sheet is at most 1,048,576 rows).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

from ..errors import DispatchwatchError

__all__ = ["FORMATS", "ImportFileError", "Table", "detect_format", "open_table"]

FORMATS = ("csv", "tsv", "xlsx", "xls", "json", "ndjson")
_EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xls",
    ".json": "json",
    ".geojson": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
#: How many JSON objects are read ahead to learn a JSON file's columns.
JSON_HEADER_ROWS = 1000


class ImportFileError(DispatchwatchError):
    """A file cannot be read as a table at all (not a row: the whole file)."""

    kind = "import_file"


@dataclass
class Table:
    """An open export: ``header`` and ``rows`` (see the module docstring)."""

    header: list[str]
    rows: Iterator[tuple[int, Any]]
    #: ``(done, total)`` for a progress bar, in ``unit``.
    progress: Callable[[], tuple[int, int]]
    unit: str = "bytes"
    #: True when rows are dicts (JSON objects) rather than lists aligned with the header.
    keyed: bool = False
    _close: list[Callable[[], None]] = field(default_factory=list)
    #: The same rows as ``rows`` (from where it stands: both read one source), up to ``size``
    #: at a time, for a reader that has them as lists anyway (CSV): ``chunks(size)`` gives
    #: ``(numbers, rows)``, the row numbers a range or list aligned with the rows; it raises
    #: what ``rows`` raises, after the chunk of the rows read before. None: ``rows`` only.
    chunks: Callable[[int], Iterator[tuple[Sequence[int], list[Any]]]] | None = None

    def close(self) -> None:
        for close in self._close:
            close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detect_format(path: Path, declared: str | None = None) -> str:
    """The format named by ``declared``, else by the file's extension."""
    if declared:
        return declared
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ImportFileError(
            f"{path}: cannot tell the format from the extension {path.suffix!r} "
            f"(use one of {', '.join(sorted(_EXTENSIONS))}, or set format: in the mapping)"
        )
    return found


def open_table(
    path: Path,
    fmt: str | None = None,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Table:
    """Open ``path`` as a :class:`Table`. Raises :class:`ImportFileError`."""
    fmt = detect_format(path, fmt)
    try:
        if fmt in ("csv", "tsv"):
            return _open_text(path, delimiter or ("\t" if fmt == "tsv" else ","), encoding)
        if fmt in ("xlsx", "xls"):
            return _open_excel(path, sheet)
        if fmt == "ndjson":
            return _open_ndjson(path, encoding)
        return _open_json(path)
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _progress_of(raw: IO[bytes], total: int) -> Callable[[], tuple[int, int]]:
    def progress() -> tuple[int, int]:
        try:
            return min(raw.tell(), total), total
        except (OSError, ValueError):
            return total, total

    return progress


def _sniff_encoding(raw: IO[bytes]) -> str:
    """UTF-8 (with or without BOM) when the first 64 KB decode as UTF-8, else Windows-1252
    (what spreadsheet software on Windows writes)."""
    head = raw.read(65536)
    raw.seek(0)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def _open_text(path: Path, delimiter: str, encoding: str | None) -> Table:
    raw = open(path, "rb")  # noqa: SIM115 - closed by Table.close
    total = path.stat().st_size
    text = io.TextIOWrapper(raw, encoding=encoding or _sniff_encoding(raw), newline="")
    reader = csv.reader(text, delimiter=delimiter)
    csv.field_size_limit(16 * 1024 * 1024)
    header: list[str] = []
    number = 0
    try:
        for record in reader:
            number += 1
            if any(cell.strip() for cell in record):
                header = [cell.strip() for cell in record]
                break
    except (UnicodeDecodeError, csv.Error) as exc:
        text.close()
        raise ImportFileError(f"{path}: cannot read the header: {_reason(exc)}") from None
    if not header:
        text.close()
        raise ImportFileError(f"{path}: the file is empty (no header row)")
    # The number of the last record read (shared by rows and chunks: either may go on).
    read = [number]

    def unreadable(exc: Exception) -> ImportFileError:
        return ImportFileError(
            f"{path}: cannot read past row {read[0]}: {_reason(exc)}"
            + (" (set encoding: in the mapping)" if isinstance(exc, UnicodeError) else "")
        )

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for record in reader:
                read[0] += 1
                if record:
                    yield read[0], record
        except (UnicodeDecodeError, csv.Error) as exc:
            raise unreadable(exc) from None

    def chunks(size: int) -> Iterator[tuple[Sequence[int], list[list[str]]]]:
        # The records of a chunk taken by csv.reader in C (no generator step a row); a blank
        # record (skipped, but numbered) is rare: then the numbers are listed.
        while True:
            records: list[list[str]] = []
            error = None
            try:
                records.extend(islice(reader, size))  # (keeps what it read before an error)
            except (UnicodeDecodeError, csv.Error) as exc:
                error = exc
            start = read[0] + 1
            read[0] += len(records)
            if all(records):
                numbers: Sequence[int] = range(start, read[0] + 1)
            else:
                numbers = [n for n, record in enumerate(records, start) if record]
                records = [record for record in records if record]
            if records:
                yield numbers, records
            if error is not None:
                raise unreadable(error) from None
            if read[0] < start + size - 1:  # the end of the file
                return

    table = Table(header, rows(), _progress_of(raw, total), "bytes", False, [text.close])
    table.chunks = chunks
    return table


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"bytes that are not {exc.encoding} text"
    # csv.Error texts describe the syntax ("field larger than field limit"), not the data.
    return str(exc).split(":")[0]


def _open_excel(path: Path, sheet: str | int | None) -> Table:
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        if isinstance(sheet, str):
            chosen = workbook.get_sheet_by_name(sheet)
        else:
            chosen = workbook.get_sheet_by_index(sheet or 0)
    except CalamineError as exc:
        raise ImportFileError(
            f"{path}: not a readable spreadsheet ({type(exc).__name__})"
        ) from None
    except (IndexError, KeyError, ValueError):
        raise ImportFileError(
            f"{path}: no sheet {sheet!r} (sheets: {', '.join(workbook.sheet_names)})"
        ) from None
    start_row = (chosen.start or (0, 0))[0]
    total = chosen.height
    iterator = chosen.iter_rows()
    header: list[str] = []
    index = -1
    for index, values in enumerate(iterator):  # noqa: B007 - index is used after the loop
        if any(str(v).strip() for v in values):
            header = [_header_text(v) for v in values]
            break
    if not header:
        raise ImportFileError(f"{path}: the sheet {chosen.name!r} is empty (no header row)")
    first = index
    done = [first + 1]

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for offset, values in enumerate(iterator, first + 1):
            done[0] = offset + 1
            if any(v != "" for v in values):
                yield start_row + offset + 1, values

    return Table(header, rows(), lambda: (done[0], total), "rows")


def _header_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _open_ndjson(path: Path, encoding: str | None) -> Table:
    raw = open(path, "rb")  # noqa: SIM115 - closed by Table.close
    total = path.stat().st_size
    text = io.TextIOWrapper(raw, encoding=encoding or "utf-8-sig")
    decode = json.JSONDecoder().decode

    def lines() -> Iterator[tuple[int, Any]]:
        number = 0
        try:
            for line in text:
                number += 1
                if not line.strip():
                    continue
                try:
                    value = decode(line)
                except ValueError:
                    yield number, _Unreadable("not a JSON value")
                    continue
                if not isinstance(value, dict):
                    yield number, _Unreadable("not a JSON object")
                    continue
                yield number, value
        except UnicodeDecodeError:
            raise ImportFileError(f"{path}: line {number + 1} is not UTF-8 text") from None

    header, rows = _read_ahead(lines())
    return Table(header, rows, _progress_of(raw, total), "bytes", True, [text.close])


class _Unreadable:
    """A row that could not be decoded at all; ``reason`` says why (never its text)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _read_ahead(
    source: Iterator[tuple[int, Any]],
) -> tuple[list[str], Iterator[tuple[int, Any]]]:
    """The columns of JSON objects (the keys of the first :data:`JSON_HEADER_ROWS` objects,
    in first-seen order) and all the rows, those read ahead included."""
    ahead: list[tuple[int, Any]] = []
    for item in source:
        ahead.append(item)
        if len(ahead) >= JSON_HEADER_ROWS:
            break
    header = _keys_of(row for _, row in ahead)

    def rows() -> Iterator[tuple[int, Any]]:
        yield from ahead
        ahead.clear()
        yield from source

    return header, rows()


def _keys_of(rows: Any) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            keys.update(dict.fromkeys(row))
    return list(keys)


def _first_char(raw: IO[bytes]) -> bytes:
    head = raw.read(4096)
    raw.seek(0)
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]


def _top_level_key(path: Path) -> str | None:
    """Which of ``features`` (GeoJSON), ``data`` (Socrata rows.json) a JSON object holds."""
    import ijson

    with open(path, "rb") as handle:
        for prefix, event, value in ijson.parse(handle):
            if prefix == "" and event == "map_key" and value in ("features", "data"):
                return str(value)
    return None


def _open_json(path: Path) -> Table:
    import ijson

    total = path.stat().st_size
    raw = open(path, "rb")  # noqa: SIM115 - closed by Table.close
    first = _first_char(raw)
    try:
        if first == b"[":
            items = ijson.items(raw, "item", use_float=False)
            return _json_objects(path, raw, items, total, lambda row: row)
        if first != b"{":
            raise ImportFileError(f"{path}: not JSON (an array of objects or an object)")
        key = _top_level_key(path)
        if key == "features":
            items = ijson.items(raw, "features.item")
            return _json_objects(path, raw, items, total, _feature_row)
        if key == "data":
            return _socrata_rows(path, raw, total)
        raise ImportFileError(
            f"{path}: a JSON object without 'features' (GeoJSON) or 'data' (Socrata export)"
        )
    except BaseException:
        raw.close()
        raise


def _feature_row(feature: Any) -> Any:
    if not isinstance(feature, dict):
        return _Unreadable("not a GeoJSON feature")
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        return _Unreadable("feature properties are not an object")
    return {**properties, "geometry": feature.get("geometry")}


def _json_objects(
    path: Path, raw: IO[bytes], items: Iterator[Any], total: int, convert: Callable[[Any], Any]
) -> Table:
    import ijson

    def numbered() -> Iterator[tuple[int, Any]]:
        number = 0
        try:
            for item in items:
                number += 1
                row = convert(item)
                yield (
                    number,
                    row
                    if isinstance(row, dict | _Unreadable)
                    else _Unreadable("not a JSON object"),
                )
        except ijson.JSONError:
            raise ImportFileError(f"{path}: invalid JSON after object {number}") from None

    header, rows = _read_ahead(numbered())
    return Table(header, rows, _progress_of(raw, total), "bytes", True, [raw.close])


def _socrata_rows(path: Path, raw: IO[bytes], total: int) -> Table:
    """A Socrata ``rows.json`` export: ``meta.view.columns`` names the columns of each array
    in ``data``. Socrata's own bookkeeping columns (``:sid``, ``:created_at`` ...) are left out.
    """
    import ijson

    columns: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        builder = None
        for prefix, event, value in ijson.parse(handle):
            if prefix == "meta.view.columns.item" and event == "start_map":
                builder = ijson.ObjectBuilder()
            if builder is not None:
                builder.event(event, value)
                if prefix == "meta.view.columns.item" and event == "end_map":
                    columns.append(builder.value)
                    builder = None
            if prefix == "meta.view.columns" and event == "end_array":
                break
            if prefix == "" and event == "map_key" and value == "data" and not columns:
                break
    if not columns:
        raise ImportFileError(f"{path}: a Socrata export without meta.view.columns")
    keep = [
        (i, str(c.get("name") or c.get("fieldName")))
        for i, c in enumerate(columns)
        if not str(c.get("fieldName", "")).startswith(":")
    ]
    header = [name for _, name in keep]
    items = ijson.items(raw, "data.item")

    def rows() -> Iterator[tuple[int, Any]]:
        number = 0
        try:
            for item in items:
                number += 1
                if not isinstance(item, list) or len(item) != len(columns):
                    yield number, _Unreadable(f"a data row without {len(columns)} values")
                    continue
                yield number, [item[i] for i, _ in keep]
        except ijson.JSONError:
            raise ImportFileError(f"{path}: invalid JSON after row {number}") from None

    return Table(header, rows(), _progress_of(raw, total), "bytes", False, [raw.close])
