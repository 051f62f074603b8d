"""Importing releases that hold counts of calls into ``call_counts``.

A ``kind: counts`` mapping names the columns of the period, the labels (district, call type,
day of week) and the count, in the long shape (one count per row)::

    kind: counts
    fields: {call_type: Event Type, district: District, count: Calls}
    constants: {year: 2011}           # or fields/constants period_start + period_end

or in the wide shape, where each column beyond the labels holds the count of one district
(or one day of the week), named by its header::

    kind: counts
    fields: {call_type: Event Type}
    wide: {field: district}           # columns: [...] to name them; default: every other one
    skip_labels: [Total, Grand Total] # rows and columns that are sums, not categories

Periods are local dates, both ends included (a year is ``YYYY-01-01`` .. ``YYYY-12-31``).
The counts of one key (feed, period, district, call type, day) found on several rows of a file
are added up; importing a file again replaces the counts it stored (a corrected release
overwrites the old numbers, and nothing is counted twice). A counts file is small (a count
per category), so it is read whole and written in one transaction: with ``--on-error stop``
nothing of a file with an unreadable row is written.
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..archive import Archive, utc_now
from ..config import Feed
from ..errors import ConfigError
from .mapping import ImportMapping, canonical, resolve_columns
from .readers import _Unreadable
from .rows import RowError, _joined, cell_text
from .run import FileReport, RowProblem, file_sha256, insert_import, open_for, previous_import

__all__ = ["import_counts", "parse_count", "parse_day", "parse_period_date"]

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_NAMES = {canonical(d): d for d in _DAYS} | {canonical(d[:3]): d for d in _DAYS}
_DAY_NAMES |= {"tues": "Tuesday", "thur": "Thursday", "thurs": "Thursday", "weds": "Wednesday"}
_LABELS = ("district", "call_type", "day_of_week")
_NUMBER = re.compile(r"[0-9]+(?:\.0+)?")


def parse_day(value: str) -> str:
    """``MON``/``Monday``/``mon.`` -> ``Monday``; anything else is kept as given."""
    return _DAY_NAMES.get(canonical(value), value)


def parse_count(value: Any) -> int | None:
    """A count cell: ``1,234`` -> 1234, ``12.0`` -> 12; empty -> ``None``.
    Raises :class:`RowError` for anything that is not a whole, non-negative number."""
    if isinstance(value, bool):
        raise RowError("not a whole number")
    if isinstance(value, int):
        if value < 0:
            raise RowError("a negative count")
        return value
    if isinstance(value, float):
        if not value.is_integer() or value < 0:
            raise RowError("not a whole, non-negative number")
        return int(value)
    text = cell_text(value)
    if text is None or text in ("-", "--"):
        return None
    text = text.replace(",", "").replace(" ", "").replace("\u00a0", "")
    if not _NUMBER.fullmatch(text):
        raise RowError("not a whole, non-negative number")
    return int(float(text))


_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%Y/%m/%d")


def parse_period_date(value: Any, formats: tuple[str, ...] = ("auto",)) -> str:
    """A local date ``YYYY-MM-DD`` from a date cell or text (ISO, ``M/D/YYYY``, or one of
    ``formats``; a time after the date is ignored). Raises :class:`RowError`."""
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    text = cell_text(value)
    if text is None:
        raise RowError("no date")
    head = text.split("T")[0].split(" ")[0]
    tried = [f for f in formats if f != "auto"] + (list(_DATE_FORMATS) if "auto" in formats else [])
    for fmt in tried:
        for candidate in (text, head):
            try:
                return datetime.strptime(candidate, fmt).strftime("%Y-%m-%d")
            except ValueError:
                continue
    raise RowError("not a date")


def import_counts(
    archive: Archive,
    feed: Feed,
    path: Path,
    mapping: ImportMapping,
    *,
    on_error: str = "stop",
    force: bool = False,
) -> FileReport:
    """Import one counts file into ``call_counts`` (see the module docstring)."""
    clock = time.perf_counter()
    report = FileReport(path, feed.slug, kind="counts", sha256=file_sha256(path))
    if not force:
        report.previous = previous_import(archive, feed.slug, report.sha256, mapping)
        if report.previous is not None:
            report.outcome = "already_imported"
            return report
    fields, constants = mapping.fields, mapping.constants
    has_period = ("period_start" in fields or "period_start" in constants) and (
        "period_end" in fields or "period_end" in constants
    )
    if not has_period and "year" not in fields and "year" not in constants:
        raise ConfigError(
            f"mapping {mapping.name}: a counts mapping needs a year or period_start and "
            "period_end (as fields, as constants, or --set year=2011)"
        )
    skip = {canonical(label) for label in mapping.skip_labels}
    totals: dict[tuple[str, str, str | None, str | None, str | None], int] = {}
    started_at = utc_now()
    with open_for(path, mapping) as table:
        header = table.header
        wanted = [(c, name, spec.optional) for name, spec in fields.items() for c in spec.columns]
        found = resolve_columns(header, wanted, str(path))
        wide_columns: list[tuple[str, Any]] = []
        if mapping.wide is not None:
            if "columns" in mapping.wide:
                named = resolve_columns(
                    header, [(c, "wide", False) for c in mapping.wide["columns"]], str(path)
                )
                wide_columns = [
                    (c, named[c] if not table.keyed else c) for c in mapping.wide["columns"]
                ]
            else:
                used = {found[c] for spec in fields.values() for c in spec.columns}
                wide_columns = [
                    (name, i if not table.keyed else name)
                    for i, name in enumerate(header)
                    if i not in used and canonical(name) not in skip and name
                ]
        for number, row in table.rows:
            report.rows += 1
            if isinstance(row, _Unreadable):
                report.add_problem(RowProblem(number, row.reason))
                continue
            try:
                for key, count in _row_counts(row, table.keyed, found, mapping, wide_columns, skip):
                    totals[key] = totals.get(key, 0) + count
            except RowError as exc:
                report.add_problem(RowProblem(number, str(exc)))
    if report.bad and on_error == "stop":
        report.outcome = "failed"
        report.error = (
            f"{report.bad} unreadable rows (first: {report.problems[0]}); nothing of this "
            "file was imported (--on-error skip imports the readable rows)"
        )
        return report
    archive.register_feed(feed.record())
    report.imported = report.rows - report.bad
    with archive.transaction() as conn:
        import_id = insert_import(
            conn, report, mapping, started_at=started_at, completed_at=utc_now()
        )
        conn.executemany(
            "INSERT INTO call_counts (feed, period_start, period_end, district, call_type, "
            "day_of_week, count, source_file, import_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (feed, period_start, period_end, coalesce(district, ''), "
            "coalesce(call_type, ''), coalesce(day_of_week, '')) DO UPDATE SET "
            "count = excluded.count, source_file = excluded.source_file, "
            "import_id = excluded.import_id",
            [(feed.slug, *key, count, str(path), import_id) for key, count in totals.items()],
        )
    report.counts = len(totals)
    report.seconds = time.perf_counter() - clock
    return report


def _row_counts(
    row: Any,
    keyed: bool,
    found: dict[str, Any],
    mapping: ImportMapping,
    wide_columns: list[tuple[str, Any]],
    skip: set[str],
) -> list[tuple[tuple[str, str, str | None, str | None, str | None], int]]:
    fields, constants = mapping.fields, mapping.constants
    lookup = {canonical(str(k)): v for k, v in row.items()} if keyed else None

    def cell(column: str) -> Any:
        if lookup is not None:
            return lookup.get(canonical(column))
        index = found.get(column)
        return row[index] if index is not None and index < len(row) else None

    def value(name: str) -> Any:
        found_value = None
        if name in fields:
            spec = fields[name]
            if len(spec.columns) == 1:
                found_value = cell(spec.columns[0])
            else:
                found_value = _joined([cell(c) for c in spec.columns], spec.join)
        if cell_text(found_value) is None:  # an optional column absent or empty
            return constants.get(name)
        return found_value

    labels: dict[str, str | None] = {name: cell_text(value(name)) for name in _LABELS}
    if any(text is not None and canonical(text) in skip for text in labels.values()):
        return []  # a total row
    blank = all(text is None for text in labels.values())
    if blank and "count" in fields and cell_text(value("count")) is None:
        return []  # a blank separator row
    if labels["day_of_week"] is not None:
        labels["day_of_week"] = parse_day(labels["day_of_week"])
    if "year" in fields or "year" in constants:
        year = cell_text(value("year"))
        if year is None or not re.fullmatch(r"(19|20)[0-9]{2}(\.0)?", year):
            raise RowError("no year (a 4-digit year)")
        start, end = f"{year[:4]}-01-01", f"{year[:4]}-12-31"
    else:
        start_spec = fields.get("period_start")
        end_spec = fields.get("period_end")
        try:
            start = parse_period_date(
                value("period_start"), start_spec.formats if start_spec else ("auto",)
            )
        except RowError as exc:
            raise RowError(f"period_start: {exc}") from None
        try:
            end = parse_period_date(
                value("period_end"), end_spec.formats if end_spec else ("auto",)
            )
        except RowError as exc:
            raise RowError(f"period_end: {exc}") from None
        if end < start:
            raise RowError("period_end is before period_start")
    base = (start, end)
    if not wide_columns:
        try:
            count = parse_count(value("count"))
        except RowError as exc:
            raise RowError(f"count: {exc}") from None
        if count is None:
            return []
        return [((*base, labels["district"], labels["call_type"], labels["day_of_week"]), count)]
    out = []
    target = mapping.wide["field"] if mapping.wide else "district"
    for name, where in wide_columns:
        raw = (
            lookup.get(canonical(where))
            if lookup is not None
            else (row[where] if where is not None and where < len(row) else None)
        )
        try:
            count = parse_count(raw)
        except RowError as exc:
            raise RowError(f"column {name!r}: {exc}") from None
        if count is None:
            continue
        key_labels = dict(labels)
        key_labels[target] = parse_day(name) if target == "day_of_week" else name
        out.append(
            (
                (*base, key_labels["district"], key_labels["call_type"], key_labels["day_of_week"]),
                count,
            )
        )
    return out
