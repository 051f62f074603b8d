"""``dispatchwatch import``: archive exported files through a mapping.

Each row becomes a :class:`~dispatchwatch.scraper.RawRow` and goes through the same
normalization (:func:`~dispatchwatch.normalize.normalize_rows`: UTC, block level) and the same
archive write (:meth:`~dispatchwatch.archive.Archive.record_success`, never a snapshot, so an
import never marks anything gone) as a polled page. Rows are archived in batches
(``batch_size`` rows, one transaction and one poll of kind ``import`` each), so memory stays
constant whatever the size of the file.

``on_error="stop"`` (the default) writes nothing of a file when any row cannot be read, and
reads the file once: when the job holds the archive's run lock (``single_transaction``: no
daemon writes beside it) it archives the batches as they come, each poll a savepoint of ONE
transaction that a bad row (or any error, or Ctrl-C) rolls back; otherwise it keeps the
normalized batches in a temporary file (:mod:`.spool`) until the last row is read, and
archives them then. ``"skip"`` archives the readable rows as it reads them (one transaction
a batch) and reports the others. A large file is read, mapped and (when its batches are
archived as they come) normalized one batch ahead in a forked child process while this one
normalizes and spools, or archives (:mod:`.ahead`); the result is the same. Either
way a row is reported by its number and the reason, never by its content. A file whose
SHA-256 (under the same mapping) was imported completely before is skipped at once.
"""

from __future__ import annotations

import hashlib
import operator
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from ..archive import Archive, StoredIncidents, utc_now
from ..bulkgc import fewer_collections
from ..bulkload import deferred_indexes, estimated_rows
from ..config import Feed
from ..errors import DispatchwatchError, PageError
from ..incident import Incident
from ..normalize import normalize_rows
from ..normalize.rows import PageNormalizer, stored_columns
from ..runlock import AlreadyRunningError, RunLock
from ..scraper import RawRow
from .ahead import Finish, Piece, Produce, can_fork, pieces_ahead
from .mapping import ImportMapping
from .readers import Table, _Unreadable, open_table
from .rows import RowError, compile_calls
from .spool import Batch, Spool

__all__ = [
    "BATCH_SIZE",
    "FileReport",
    "ImportError_",
    "RowProblem",
    "file_sha256",
    "import_file",
    "import_files",
]

BATCH_SIZE = 10_000
#: How many bad rows a report lists one by one (the rest are counted).
SHOWN_PROBLEMS = 20


class ImportError_(DispatchwatchError):  # noqa: N801 - ImportError is a builtin
    """An import that stopped (a bad row with ``--on-error stop``, an unreadable file)."""

    kind = "import"


@dataclass(slots=True)
class RowProblem:
    """A row that could not be read: its number as a person sees it, and why."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass
class FileReport:
    """What importing one file did.

    ``outcome`` is ``imported``, ``already_imported`` (same SHA-256 and mapping as a complete
    earlier import: nothing read) or ``failed`` (nothing of the file written).
    """

    path: Path
    feed: str
    outcome: str = "imported"
    kind: str = "calls"
    sha256: str = ""
    rows: int = 0
    imported: int = 0
    bad: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    incidents: int = 0
    new: int = 0
    changed: int = 0
    polls: int = 0
    counts: int = 0
    error: str | None = None
    previous: str | None = None
    seconds: float = 0.0
    #: Whether the file was read, mapped and normalized in a child process (:mod:`.ahead`).
    ahead: bool = False

    def add_problem(self, problem: RowProblem) -> None:
        self.bad += 1
        if len(self.problems) < SHOWN_PROBLEMS:
            self.problems.append(problem)

    def summary(self) -> str:
        """One line for the command line."""
        if self.outcome == "already_imported":
            return (
                f"{self.path}: already imported ({self.previous}, same SHA-256 and mapping); "
                "nothing to do (--force imports it again)"
            )
        if self.outcome == "failed":
            return f"{self.path}: {self.error}"
        bad = f", {self.bad} unreadable rows skipped" if self.bad else ""
        if self.kind == "counts":
            return f"{self.path}: {self.rows} rows, {self.counts} counts stored{bad}"
        return (
            f"{self.path}: {self.rows} rows, {self.imported} archived as {self.incidents} "
            f"incidents: {self.new} new, {self.changed} changed{bad} ({self.polls} polls)"
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _imported_size(archive: Archive, feed: str, path: Path, mapping: ImportMapping) -> bool:
    """Whether a complete earlier import into ``feed`` with ``mapping`` read as many bytes
    as ``path`` holds (or did not record how many): only then can it be the same file."""
    row = archive.conn.execute(
        "SELECT 1 FROM imports WHERE feed = ? AND mapping_sha256 = ? AND completed_at IS NOT "
        "NULL AND (bytes = ? OR bytes IS NULL) LIMIT 1",
        [feed, mapping.sha256, path.stat().st_size],
    ).fetchone()
    return row is not None


def previous_import(archive: Archive, feed: str, sha256: str, mapping: ImportMapping) -> str | None:
    """``completed_at`` of an earlier complete import of the same bytes with the same mapping."""
    row = archive.conn.execute(
        "SELECT completed_at FROM imports WHERE feed = ? AND sha256 = ? AND mapping_sha256 = ? "
        "AND completed_at IS NOT NULL ORDER BY id DESC LIMIT 1",
        [feed, sha256, mapping.sha256],
    ).fetchone()
    return row[0] if row else None


def insert_import(
    conn: sqlite3.Connection, report: FileReport, mapping: ImportMapping, **values: Any
) -> int:
    """Insert the ``imports`` row of a completed import (inside the caller's transaction);
    returns its id."""
    row = {
        "feed": report.feed,
        "kind": report.kind,
        "file": str(report.path),
        "sha256": report.sha256,
        "bytes": report.path.stat().st_size,
        "mapping": mapping.name,
        "mapping_sha256": mapping.sha256,
        "rows": report.rows,
        "imported": report.imported,
        "skipped": report.bad,
        "new": report.new,
        "changed": report.changed,
        **values,
    }
    cursor = conn.execute(
        f"INSERT INTO imports ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        list(row.values()),
    )
    return cursor.lastrowid or 0


def open_for(path: Path, mapping: ImportMapping) -> Table:
    return open_table(
        path,
        mapping.format,
        sheet=mapping.sheet,
        encoding=mapping.encoding,
        delimiter=mapping.delimiter,
    )


#: Rows read at a time by a mapper with a ``many`` form (see ``rows._function_mapper``).
MANY = 1000


def _mapped_rows(
    table: Table, mapper: Callable[[Any], tuple[RawRow, Any]]
) -> Iterator[tuple[int, tuple[RawRow, Any] | RowProblem]]:
    many = getattr(mapper, "many", None)
    if many is not None:
        yield from _mapped_chunks(table, many)
        return
    for number, row in table.rows:
        if isinstance(row, _Unreadable):
            yield number, RowProblem(number, row.reason)
            continue
        try:
            yield number, mapper(row)
        except RowError as exc:
            yield number, RowProblem(number, str(exc))


def _mapped_chunks(
    table: Table, many: Callable[[list[Any]], list[Any]]
) -> Iterator[tuple[int, tuple[RawRow, Any] | RowProblem]]:
    """What :func:`_mapped_rows` gives, the rows mapped :data:`MANY` at a time."""
    numbers: list[int] = []
    chunk: list[Any] = []

    def flush() -> Iterator[tuple[int, tuple[RawRow, Any] | RowProblem]]:
        for number, result in zip(numbers, many(chunk), strict=True):
            if isinstance(result, RowError):
                yield number, RowProblem(number, str(result))
            else:
                yield number, result
        numbers.clear()
        chunk.clear()

    for number, row in table.rows:
        if isinstance(row, _Unreadable):
            yield from flush()
            yield number, RowProblem(number, row.reason)
            continue
        numbers.append(number)
        chunk.append(row)
        if len(chunk) >= MANY:
            yield from flush()
    yield from flush()


def import_file(
    archive: Archive,
    feed: Feed,
    path: Path,
    mapping: ImportMapping,
    *,
    on_error: str = "stop",
    batch_size: int = BATCH_SIZE,
    force: bool = False,
    on_progress: Callable[[float], None] | None = None,
    single_transaction: bool = False,
) -> FileReport:
    """Import one file into ``feed``; see the module docstring.

    Returns a :class:`FileReport` (``failed`` when ``on_error="stop"`` found bad rows: then
    nothing of the file was written). ``single_transaction``: the caller holds the archive's
    run lock, so a stopping import may write the whole file in one transaction (see the
    module docstring). Raises :class:`ImportError_` or
    :class:`~dispatchwatch.errors.ConfigError` when the file as a whole cannot be read or
    lacks a mapped column (before anything is written).
    """
    if on_error not in ("stop", "skip"):
        raise ValueError("on_error must be 'stop' or 'skip'")
    if mapping.kind == "counts":
        from .counts import import_counts

        return import_counts(archive, feed, path, mapping, on_error=on_error, force=force)
    clock = time.perf_counter()
    report = FileReport(path, feed.slug)
    # The SHA-256 (about half a second a 200 MB file) is wanted first only when an earlier
    # import of as many bytes might be this one; else it is computed while the read-ahead
    # child reads the first batch (see below), or at the latest for the ``imports`` row.
    if not force and _imported_size(archive, feed.slug, path, mapping):
        report.sha256 = file_sha256(path)
        report.previous = previous_import(archive, feed.slug, report.sha256, mapping)
        if report.previous is not None:
            report.outcome = "already_imported"
            return report
    zone = mapping.timezone or feed.zone
    stop = on_error == "stop"
    # Archived as the batches come (normalized ahead with them): --on-error skip, or a
    # stopping import in one transaction; else read once into the spool first.
    direct = not stop or single_transaction
    # --on-error stop into the spool: reading is the first half of the work, writing the
    # spool the second.
    share = 1.0 if direct else 0.5
    poll_ids: list[int] = []
    with open_for(path, mapping) as table:
        mapper = compile_calls(mapping, table.header, keyed=table.keyed, zone=zone, where=str(path))
        # Into the spool: this process normalizes (and spools) while the child reads and
        # maps; archived as they come: the child also normalizes, this process archives.
        produce = _producer(feed, mapping, path, table, mapper, batch_size, stop=stop)
        # The checkpoint the file before left running (Archive.outer_transaction) is a thread:
        # with it alive, no child would be forked.
        archive.wait_for_checkpoint()
        report.ahead = can_fork(path.stat().st_size)
        if not report.sha256 and not report.ahead:  # (else while this process would wait)
            report.sha256 = file_sha256(path)

        def hash_file() -> None:
            if not report.sha256:
                report.sha256 = file_sha256(path)

        finish = _normalizer(feed, mapping, path) if direct else None
        pieces = pieces_ahead(produce, fork=report.ahead, finish=finish, forked=hash_file)
        with closing(pieces):
            if not direct:
                # One read: every batch is mapped and normalized as it would be written, and
                # kept in a spool until the whole file is known good; nothing is written
                # before.
                with Spool() as spool:
                    for piece in pieces:
                        _add_problems(report, piece)
                        if piece.data is not None and not report.bad:
                            spool.add(
                                _normalized(
                                    feed, mapping, path, piece.data, piece.first, piece.last
                                )
                            )
                        _progress(on_progress, piece, share)
                    if report.bad:
                        return _failed(report, clock)
                    archive.register_feed(feed.record())
                    started_at = utc_now()
                    for number, prepared in enumerate(spool, 1):
                        summary = _record_batch(archive, feed, path, prepared)
                        _add_poll(report, poll_ids, prepared, summary)
                        if on_progress is not None:
                            on_progress((1 + number / spool.batches) / 2)
                    _record_import(archive, report, mapping, poll_ids, started_at)
            elif stop:
                # Every batch archived as it comes (a savepoint each), all in one
                # transaction: a bad row, an error or Ctrl-C rolls the whole file back.
                try:
                    with archive.outer_transaction():
                        _archive_pieces(
                            archive, feed, path, mapping, pieces, report, poll_ids, on_progress
                        )
                        if report.bad:
                            raise _RolledBack
                except _RolledBack:
                    return _failed(report, clock)
            else:
                _archive_pieces(archive, feed, path, mapping, pieces, report, poll_ids, on_progress)
    report.seconds = time.perf_counter() - clock
    return report


class _RolledBack(Exception):  # noqa: N818 - not an error: the outer transaction's undo
    """Rolls back a stopping import's one transaction (a bad row was found)."""


def _failed(report: FileReport, clock: float) -> FileReport:
    """``report`` as a stopping import that found unreadable rows (nothing written)."""
    report.outcome = "failed"
    report.rows = report.imported = report.incidents = report.new = report.changed = 0
    report.polls = 0
    first_problem = report.problems[0]
    report.error = (
        f"{report.bad} unreadable rows (first: {first_problem}); nothing of this file was "
        "imported (--on-error skip imports the readable rows)"
    )
    report.seconds = time.perf_counter() - clock
    return report


def _archive_pieces(
    archive: Archive,
    feed: Feed,
    path: Path,
    mapping: ImportMapping,
    pieces: Iterable[Piece],
    report: FileReport,
    poll_ids: list[int],
    on_progress: Callable[[float], None] | None,
) -> None:
    """Archive normalized pieces as they come (one poll each), then the ``imports`` row;
    after an unreadable row, a stopping import (``report.bad`` and no normalized data) only
    counts the rest."""
    archive.register_feed(feed.record())
    started_at = utc_now()
    for piece in pieces:
        _add_problems(report, piece)
        if piece.data is not None:
            prepared = Batch(piece.data, piece.first, piece.last, piece.rows)
            summary = _record_batch(archive, feed, path, prepared)
            _add_poll(report, poll_ids, prepared, summary)
        _progress(on_progress, piece, 1.0)
    _record_import(archive, report, mapping, poll_ids, started_at)


def _record_import(
    archive: Archive,
    report: FileReport,
    mapping: ImportMapping,
    poll_ids: list[int],
    started_at: str,
) -> None:
    report.rows = report.imported + report.bad
    if not report.sha256:  # (computed beside the read-ahead child as a rule)
        report.sha256 = file_sha256(report.path)
    with archive.transaction() as conn:
        insert_import(
            conn,
            report,
            mapping,
            first_poll_id=poll_ids[0] if poll_ids else None,
            last_poll_id=poll_ids[-1] if poll_ids else None,
            started_at=started_at,
            completed_at=utc_now(),
        )


def _batches(
    results: Iterable[tuple[int, tuple[RawRow, Any] | RowProblem]],
    size: int,
    report: FileReport,
    position: list[int],
) -> Iterator[tuple[list[tuple[RawRow, Any]], int, int]]:
    """Batches of mapped rows with their first and last row numbers; unreadable rows go to
    ``report``. A batch is cut only between two incident IDs, so the rows of one incident
    listed together stay together. Before a batch is yielded, ``position[0]`` is set to the
    first row number neither that batch (nor those before) nor ``report`` accounts for."""
    batch: list[tuple[RawRow, Any]] = []
    first = last = number = 0
    for number, result in results:
        if isinstance(result, RowProblem):
            report.add_problem(result)
            continue
        if len(batch) >= size and result[0].incident_id != batch[-1][0].incident_id:
            position[0] = number
            yield batch, first, last
            batch = []
        if not batch:
            first = number
        batch.append(result)
        last = number
    position[0] = number + 1  # every row read
    if batch:
        yield batch, first, last


def _chunk_batches(
    chunks: Iterable[tuple[Sequence[int], list[Any]]],
    many: Callable[[list[Any]], list[Any]],
    size: int,
    report: FileReport,
    position: list[int],
) -> Iterator[tuple[list[tuple[RawRow, Any]], int, int]]:
    """What :func:`_batches` gives for the rows of ``chunks`` (a table's, see
    :attr:`~.readers.Table.chunks`) mapped a chunk at a time by ``many``: the same batches,
    cut at the same rows, and ``report`` and ``position`` as it keeps them, with list slices
    rather than steps a row (the readable rows between two unreadable ones are one slice)."""
    batch: list[tuple[RawRow, Any]] = []
    first = last = 0

    def cut(numbers: Sequence[int], results: list[Any], at: int, count: int) -> Iterator[Any]:
        """The batches completed by the readable rows ``results[at:count]``."""
        nonlocal batch, first, last
        while at < count:
            if not batch:
                first = numbers[at]
            room = size - len(batch)
            if room > 0:  # no cut before the batch is full
                taken = min(room, count - at)
            else:  # full: the rows of its last incident still join it, then a cut
                incident_id = batch[-1][0].incident_id
                taken = 0
                while at + taken < count and results[at + taken][0].incident_id == incident_id:
                    taken += 1
                if at + taken < count:
                    batch += results[at : at + taken]
                    at += taken
                    if taken:
                        last = numbers[at - 1]
                    position[0] = numbers[at]
                    yield batch, first, last
                    batch = []
                    continue
            batch += results[at : at + taken]
            at += taken
            last = numbers[at - 1]

    end = 0  # the number of the last row read
    for numbers, rows in chunks:
        results = many(rows)
        end = numbers[-1]
        at = 0
        for bad in [k for k, result in enumerate(results) if result.__class__ is RowError]:
            yield from cut(numbers, results, at, bad)
            report.add_problem(RowProblem(numbers[bad], str(results[bad])))
            at = bad + 1
        yield from cut(numbers, results, at, len(results))
    position[0] = end + 1  # every row read
    if batch:
        yield batch, first, last


#: One segment of a batch in :func:`_stored_batches`: its rows' incident IDs, and either
#: their stored columns and records (``(ids, columns, records)``) or their mapped rows
#: (``(ids, pairs, None)``).
_Segment = tuple[Sequence[str], Any, Sequence[Any] | None]


def _stored_batches(
    chunks: Iterable[tuple[Sequence[int], list[Any]]],
    many: Callable[[list[Any]], list[Any]],
    stored: Callable[[list[Any]], list[list[Any]] | None],
    size: int,
    report: FileReport,
    position: list[int],
) -> Iterator[tuple[StoredIncidents | list[tuple[RawRow, Any]], int, int]]:
    """What :func:`_chunk_batches` gives, cut at the same rows, with ``report`` and
    ``position`` as it keeps them, but a batch normalized already where it can be: each
    chunk is read by ``stored`` (records -> the archive's columns in one pass, or None when
    it gives up: a bad row, a repeated or unclean ID...) and else by ``many``; a batch
    whose chunks all read in one pass and whose IDs are all different is yielded as
    :class:`~dispatchwatch.archive.StoredIncidents` (what normalizing its mapped rows
    gives), any other as its mapped rows (its one-pass chunks mapped again by ``many``)."""
    segments: list[_Segment] = []
    held = 0  # rows in the batch
    first = last = 0

    def batch() -> StoredIncidents | list[tuple[RawRow, Any]]:
        if all(records is not None for _, _, records in segments):
            if len(segments) == 1:
                columns = segments[0][1]
            else:
                columns = [
                    list(chain.from_iterable(part[k] for _, part, _ in segments))
                    for k in range(len(segments[0][1]))
                ]
            if len(set(columns[0])) == len(columns[0]):  # else: the rows of one incident
                return StoredIncidents(columns)
        pairs: list[tuple[RawRow, Any]] = []
        for _, part, records in segments:
            if records is None:
                pairs += part
                continue
            again = many(list(records))
            if any(result.__class__ is RowError for result in again):
                raise RuntimeError("the one-pass reader kept a row the row function refuses")
            pairs += again
        return pairs

    def cut(
        numbers: Sequence[int],
        ids: Sequence[Any],
        take: Callable[[int, int], _Segment],
        at: int,
        count: int,
    ) -> Iterator[Any]:
        """The batches completed by the readable rows ``at``..``count - 1`` of a chunk
        (``take(a, b)``: the segment of its rows ``a``..``b - 1``): as in
        :func:`_chunk_batches`."""
        nonlocal segments, held, first, last
        while at < count:
            if not held:
                first = numbers[at]
            room = size - held
            if room > 0:  # no cut before the batch is full
                taken = min(room, count - at)
            else:  # full: the rows of its last incident still join it, then a cut
                incident_id = segments[-1][0][-1]
                taken = 0
                while at + taken < count and ids[at + taken] == incident_id:
                    taken += 1
                if at + taken < count:
                    if taken:
                        segments.append(take(at, at + taken))
                        held += taken
                        last = numbers[at + taken - 1]
                    at += taken
                    position[0] = numbers[at]
                    yield batch(), first, last
                    segments, held = [], 0
                    continue
            segments.append(take(at, at + taken))
            held += taken
            at += taken
            last = numbers[at - 1]

    end = 0  # the number of the last row read
    for numbers, rows in chunks:
        end = numbers[-1]
        try:
            columns = stored(rows)
        except Exception:  # noqa: BLE001 - the general way reads them (and says what is wrong)
            columns = None
        if columns is not None:
            ids = columns[0]

            def take(
                a: int, b: int, columns: list[list[Any]] = columns, rows: list[Any] = rows
            ) -> _Segment:
                if a == 0 and b == len(rows):
                    return columns[0], columns, rows
                return columns[0][a:b], [column[a:b] for column in columns], rows[a:b]

            yield from cut(numbers, ids, take, 0, len(rows))
            continue
        results = many(rows)
        ids = [None if r.__class__ is RowError else r[0].incident_id for r in results]

        def take_mapped(
            a: int, b: int, results: list[Any] = results, ids: list[Any] = ids
        ) -> _Segment:
            return ids[a:b], results[a:b], None

        at = 0
        for bad in [k for k, result in enumerate(results) if result.__class__ is RowError]:
            yield from cut(numbers, ids, take_mapped, at, bad)
            report.add_problem(RowProblem(numbers[bad], str(results[bad])))
            at = bad + 1
        yield from cut(numbers, ids, take_mapped, at, len(results))
    position[0] = end + 1  # every row read
    if held:
        yield batch(), first, last


def _producer(
    feed: Feed,
    mapping: ImportMapping,
    path: Path,
    table: Table,
    mapper: Callable[[Any], tuple[RawRow, Any]],
    batch_size: int,
    *,
    stop: bool = True,
) -> Produce:
    """The :class:`~.ahead.Piece` producer of a file (see :mod:`.ahead`): its batches of
    mapped rows, with the unreadable rows found on the way. After an
    unreadable row, a ``stop`` producer's batches come without their rows (a stopping import
    wants only the count of the problems then)."""

    def produce(resume: int | None) -> Iterator[Piece]:
        if resume is None:
            yield from _pieces(table, mapper)
            return
        with open_for(path, mapping) as again:
            rows = again.rows
            again.rows = ((n, row) for n, row in rows if n >= resume)
            again.chunks = None  # (the rows from resume on only)
            yield from _pieces(again, mapper)

    def _pieces(source: Table, map_row: Callable[[Any], Any]) -> Iterator[Piece]:
        found = FileReport(path, feed.slug)
        position = [0]
        shown = bad = 0
        many = getattr(map_row, "many", None)
        normalizer = getattr(map_row, "stored", None)
        batches: Iterator[tuple[Any, int, int]]
        if many is not None and normalizer is not None and source.chunks is not None:
            batches = _stored_batches(
                source.chunks(MANY), many, _stored_reader(feed, mapping, normalizer),
                batch_size, found, position,
            )  # fmt: skip
        elif many is not None and source.chunks is not None:
            batches = _chunk_batches(source.chunks(MANY), many, batch_size, found, position)
        else:
            batches = _batches(_mapped_rows(source, map_row), batch_size, found, position)
        for batch, first, last in batches:
            data: Any = None if stop and found.bad else batch
            yield Piece(
                data, first, last, len(batch),
                [(p.row, p.reason) for p in found.problems[shown:]], found.bad - bad,
                position[0], False, source.progress(),
            )  # fmt: skip
            shown, bad = len(found.problems), found.bad
        problems = [(p.row, p.reason) for p in found.problems[shown:]]
        done = Piece(None, 0, 0, 0, problems, found.bad - bad, position[0], True)
        done.progress = source.progress()
        yield done

    return produce


def _normalizer(feed: Feed, mapping: ImportMapping, path: Path) -> Finish:
    """The :data:`~.ahead.Finish` step of an import's pieces: their batch normalized, as
    the archive stores it (:class:`~dispatchwatch.archive.StoredIncidents`: made where the
    batch is normalized, the read-ahead child as a rule; plain lists through the pipe)."""

    def finish(piece: Piece) -> Piece:
        piece.data = _normalized(feed, mapping, path, piece.data, piece.first, piece.last).incidents
        return piece

    return finish


def _stored_reader(
    feed: Feed, mapping: ImportMapping, normalizer: PageNormalizer
) -> Callable[[list[Any]], list[list[Any]] | None]:
    """Records -> their stored columns by ``normalizer`` (a mapper's one-pass form) with the
    feed's and mapping's settings, as :func:`_normalized` passes them; None when it gives
    up (see :func:`_stored_batches`)."""
    scraper = feed.scraper
    city_codes = {**scraper.city_codes, **mapping.city_codes}
    default_city = mapping.constants.get("city", scraper.default_city)
    timezone = mapping.timezone or feed.zone
    precision = mapping.precision or feed.precision

    def stored(records: list[Any]) -> list[list[Any]] | None:
        return stored_columns(
            normalizer, records, timezone=timezone, city_codes=city_codes,
            default_city=default_city, precision=precision,
        )  # fmt: skip

    return stored


def _add_problems(report: FileReport, piece: Piece) -> None:
    for row, reason in piece.problems:
        report.add_problem(RowProblem(row, reason))
    report.bad += piece.bad - len(piece.problems)


def _progress(on_progress: Callable[[float], None] | None, piece: Piece, share: float) -> None:
    if on_progress is not None:
        done, total = piece.progress
        on_progress((done / total if total else 1.0) * share)


def _normalized(
    feed: Feed,
    mapping: ImportMapping,
    path: Path,
    batch: list[tuple[RawRow, Any]],
    first: int,
    last: int,
) -> Batch:
    """A batch of mapped rows, normalized (per city column value), as stored. Raises
    :class:`ImportError_` naming the rows when they cannot be normalized. A batch read in
    one pass (:func:`_stored_batches`) is normalized already: its incidents are its rows."""
    if batch.__class__ is StoredIncidents:
        return Batch(batch, first, last, len(batch))  # type: ignore[arg-type]
    scraper = feed.scraper
    city_codes = {**scraper.city_codes, **mapping.city_codes}
    default_city = mapping.constants.get("city", scraper.default_city)
    by_city: dict[Any, list[RawRow]] = {}
    cities = list(map(_second, batch))
    if cities.count(cities[0] if cities else None) == len(cities):  # one city (no city column)
        by_city[cities[0] if cities else None] = list(map(_first, batch))
    else:
        for raw, city in batch:
            by_city.setdefault(city, []).append(raw)
    incidents: list[Incident] = []
    try:
        for city, raws in by_city.items():
            incidents += normalize_rows(
                raws,
                feed=feed.slug,
                timezone=mapping.timezone or feed.zone,
                city_codes=city_codes,
                default_city=city or default_city,
                precision=mapping.precision or feed.precision,
            )
    except PageError as exc:  # its message may quote a cell: never pass it on
        raise ImportError_(
            f"{path}: rows {first}-{last} could not be normalized ({exc.kind})"
        ) from None
    return Batch(StoredIncidents.of(incidents), first, last, len(batch))


_first, _second = operator.itemgetter(0), operator.itemgetter(1)


def _record_batch(archive: Archive, feed: Feed, path: Path, batch: Batch) -> Any:
    """Archive one normalized batch as one poll of kind ``import``."""
    clock = time.perf_counter()
    started_at = utc_now()
    incidents = batch.stored()
    observed_at = incidents.latest_received_at() or started_at
    summary = archive.record_success(
        feed.slug,
        incidents,
        observed_at=observed_at,
        snapshot=False,
        started_at=started_at,
        duration_ms=round((time.perf_counter() - clock) * 1000, 3),
        source=f"import {path} rows {batch.first}-{batch.last}",
        kind="import",
    )
    return summary


def _add_poll(report: FileReport, poll_ids: list[int], batch: Batch, summary: Any) -> None:
    poll_ids.append(summary.poll_id)
    report.imported += batch.rows
    report.incidents += summary.incidents
    report.new += summary.new
    report.changed += summary.changed
    report.polls += 1


def import_files(
    archive: Archive,
    feed: Feed,
    paths: Iterable[Path],
    mapping: ImportMapping,
    *,
    on_error: str = "stop",
    batch_size: int = BATCH_SIZE,
    force: bool = False,
    on_file: Callable[[FileReport], None] | None = None,
    on_progress: Callable[[Path, float], None] | None = None,
) -> list[FileReport]:
    """Import files in order. With ``on_error="stop"`` the run stops at the first file that
    has unreadable rows (nothing of that file is written; files before it stay imported)."""
    paths = list(paths)
    # Many rows into a small archive: indexes built once at the end (see bulkload.py).
    rows = estimated_rows(paths) if mapping.kind != "counts" else 0
    with (
        fewer_collections(),
        deferred_indexes(archive, job="import", rows=rows) as deferred,
        _run_lock(archive, held=deferred) as locked,
    ):
        # This process holds the run lock (no daemon writes beside it), so a stopping
        # import may hold the write lock for a whole file.
        return _import_files(
            archive, feed, paths, mapping, on_error, batch_size, force, on_file, on_progress,
            single_transaction=locked,
        )  # fmt: skip


@contextmanager
def _run_lock(archive: Archive, *, held: bool) -> Iterator[bool]:
    """Hold the archive's run lock (:mod:`..runlock`) for the block when nobody does: yields
    whether this process holds it (``held``: it does already, for the deferred indexes).
    Meanwhile ``dispatchwatch run`` cannot start, and says why; with a daemon running, the
    lock is not taken and False is yielded. (An archive in memory is this process's alone.)"""
    if held or str(archive.path) == ":memory:":
        yield True
        return
    lock = RunLock(archive.path)
    try:
        lock.acquire()
    except AlreadyRunningError:
        yield False
        return
    try:
        if lock._fd is None:  # no lock here (a folder not writable, no flock): no certainty
            yield False
            return
        os.ftruncate(lock._fd, 0)
        os.pwrite(lock._fd, f"{os.getpid()}, a bulk import\n".encode(), 0)
        yield True
    finally:
        lock.release()


def _import_files(
    archive: Archive,
    feed: Feed,
    paths: Iterable[Path],
    mapping: ImportMapping,
    on_error: str,
    batch_size: int,
    force: bool,
    on_file: Callable[[FileReport], None] | None,
    on_progress: Callable[[Path, float], None] | None,
    *,
    single_transaction: bool = False,
) -> list[FileReport]:
    reports = []
    for path in paths:
        report = import_file(
            archive,
            feed,
            path,
            mapping,
            on_error=on_error,
            batch_size=batch_size,
            force=force,
            on_progress=(lambda f, p=path: on_progress(p, f)) if on_progress else None,
            single_transaction=single_transaction,
        )
        reports.append(report)
        if on_file is not None:
            on_file(report)
        if report.outcome == "failed":
            break
    return reports
