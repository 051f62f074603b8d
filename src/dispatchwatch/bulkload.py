"""Deferred indexes and full-text index for large bulk jobs (ingest, import).

A new incident costs its row, and about as much again to keep the secondary indexes of
``incidents`` and ``version_log`` and the full-text index (``incidents_fts``, kept by the
triggers ``incidents_ai`` / ``incidents_ad`` / ``incidents_au``) in step, row by row. When a
job writes many rows compared with what the archive holds (into an empty or small archive),
building those once at the end is cheaper: :func:`deferred_indexes` drops them for the job
and puts them back when it ends (``CREATE INDEX``; the full-text index built from
``incidents`` beside them, see :class:`_FtsBeside`; the triggers), so the archive ends
exactly as the row-by-row path leaves it:
same rows, same versions, same search results (``tests/test_bulkload.py`` compares both).
Each poll is still one transaction; only the indexes are late.

**Crash safety.** The SQL of every object dropped is written to ``deferred_schema``
(migration 10) in the same transaction as the drop, and removed in the same transaction that
recreates them. A job killed in between (``kill -9``, power loss) leaves those rows behind:
the next :class:`~dispatchwatch.archive.Archive` to open the file recreates the objects and
rebuilds the full-text index (:func:`repair`, with a log line) unless the job is still
running. Ctrl-C restores them before the command exits, also when it comes during the
rebuild itself (held back until the rebuild has committed).

**Never beside a live writer.** The job holds the archive's run lock (:mod:`.runlock`) while
the indexes are deferred, so ``dispatchwatch run`` cannot start meanwhile, and a job that
cannot take it (a daemon is running) takes the normal path. While a job runs, other readers
see its committed polls, without the full-text index of the new rows and with slower
queries; other writers (a second ingest) write between its polls and their rows are indexed
at the end too (``rebuild`` reads the whole table). Not beside a stopping import
(``--on-error stop``): it holds the write lock for each whole file (one transaction), so
another writer waits its busy timeout (30 s) and then fails with "database is locked".

What stays: the primary keys, ``idx_version_log_incident`` (read by the writer for changed
incidents), and the indexes whose keys a bulk job writes in key order (:data:`_IN_KEY_ORDER`:
received time, the feed, the poll), each new entry landing on the index's last page, cheaper
row by row than a ``CREATE INDEX`` at the end. Deferred: ``idx_incidents_call_type`` and
``idx_incidents_district`` (a handful of values in no order: each insert searches the tree)
and the full-text triggers (tokenizing row by row, the dearest of all).
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .runlock import AlreadyRunningError, RunLock

if TYPE_CHECKING:
    from .archive import Archive

log = logging.getLogger(__name__)

__all__ = ["deferred_indexes", "estimated_rows", "pending", "repair"]

#: The table of migration 10: the objects a running (or killed) bulk job dropped.
CREATE_TABLE = """CREATE TABLE deferred_schema (
  name TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  sql TEXT NOT NULL,
  job TEXT,
  pid INTEGER,
  started_at TEXT
)"""

#: Deferred only when the job is expected to write at least this many rows...
MIN_ROWS = 20_000
#: ... and the archive holds at most this many incidents per expected row: the rebuild at
#: the end reads the whole table, so it pays only when the job's rows are most of it.
MAX_EXISTING_SHARE = 1.0
#: Bytes of input per row assumed when a job knows only its files' sizes (a Socrata JSON row
#: is ~300 bytes, a CSV row 100-200): on the high side, so a job is deferred rather too
#: rarely than too often.
BYTES_PER_ROW = 400

#: Indexes that stay: read by the writer itself.
_KEEP = {"idx_version_log_incident"}
#: Kept as well: a bulk job writes their keys in order (pages come oldest first; one feed; poll
#: ids and rowids rise), so each row appends to the last leaf. Measured on 100,000 Socrata rows
#: (valgrind, the ingest process's instructions inside SQLite): keeping them costs less than
#: their CREATE INDEX at the end; see the README ("Deferred indexes for large bulk jobs").
_IN_KEY_ORDER = {
    "idx_incidents_received_at",
    "idx_incidents_feed_received_at",
    "idx_incidents_listed",
    "idx_version_log_new",
}

#: Page cache while the indexes are rebuilt (KiB).
REBUILD_CACHE_KIB = 65_536

_FTS_REBUILD = "INSERT INTO incidents_fts (incidents_fts) VALUES ('rebuild')"

#: Archives (resolved paths) whose indexes a job of this process has deferred right now.
_ACTIVE: set[Path] = set()


def estimated_rows(paths: Iterable[str | Path]) -> int:
    """Rows a job over ``paths`` will write at most roughly: their bytes / :data:`BYTES_PER_ROW`."""
    total = 0
    for path in paths:
        try:
            total += os.stat(path).st_size
        except OSError:
            continue
    return total // BYTES_PER_ROW


def _deferrable(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """``(type, name, sql)`` of the secondary indexes of ``incidents`` and ``version_log``
    and the triggers of ``incidents`` (the full-text index's), as they are now."""
    keep = _KEEP | _IN_KEY_ORDER
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND ("
        "(type = 'index' AND tbl_name IN ('incidents', 'version_log')) OR "
        "(type = 'trigger' AND tbl_name = 'incidents')) ORDER BY type, name"
    ).fetchall()
    return [(kind, name, sql) for kind, name, sql in rows if name not in keep]


def pending(conn: sqlite3.Connection) -> tuple[int, str | None, int | None, str | None]:
    """What a bulk job left deferred: ``(objects, job, pid, started_at)``; 0 objects when none."""
    row = conn.execute(
        "SELECT count(*), max(job), max(pid), max(started_at) FROM deferred_schema"
    ).fetchone()
    return row[0], row[1], row[2], row[3]


def _restore(conn: sqlite3.Connection) -> int:
    """Recreate what ``deferred_schema`` lists, in one transaction: the indexes, then the
    full-text index rebuilt from ``incidents`` (when its triggers were dropped), then the
    triggers. Returns how many objects were recreated."""
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    # Each CREATE INDEX reads the whole table: a larger cache keeps it between them (and
    # the sorts in memory). 2 MB again afterwards: a daemon's memory stays flat.
    conn.execute(f"PRAGMA cache_size = {-REBUILD_CACHE_KIB}")
    try:
        with _interrupts_held():
            return _recreate(conn)
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Ctrl-C (SIGINT) held back until the block has run, then delivered as it would have
    been (``KeyboardInterrupt`` in a terminal). The rebuild is one transaction: an interrupt
    raised when one of its statements returns would roll all of it back and leave the
    indexes dropped (and search missing the job's rows) until a writer next opens the
    archive. Only in the main thread (the only one Python delivers signals to) and when the
    current handler was set from Python; else the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # set outside Python: it could not be put back
        yield
        return
    signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        signal.raise_signal(signal.SIGINT)


def _recreate(conn: sqlite3.Connection) -> int:
    from .archive import write_transaction  # lazy: archive imports this module

    beside: _FtsBeside | None = None
    try:
        with write_transaction(conn):
            rows = conn.execute("SELECT type, name, sql FROM deferred_schema").fetchall()
            existing = {
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE sql IS NOT NULL")
            }
            missing = [(kind, name, sql) for kind, name, sql in rows if name not in existing]
            if any(kind == "trigger" for kind, _, _ in rows):
                # Started under the write lock: the rows it reads are the rows here.
                beside = _FtsBeside.start(conn)
            for kind, _, sql in missing:
                if kind == "index":
                    conn.execute(sql)
            if beside is not None and not beside.copy_into(conn):
                conn.execute(_FTS_REBUILD)
            for kind, _, sql in missing:
                if kind == "trigger":
                    conn.execute(sql)
            conn.execute("DELETE FROM deferred_schema")
    finally:
        if beside is not None:
            beside.close()
    return len(missing)


class _FtsBeside:
    """The full-text index rebuilt beside the ``CREATE INDEX`` statements, on another core: a
    thread builds a contentless twin of ``incidents_fts`` in a database in memory of its own
    from the archive's rows (read on a connection of its own, as they are under the
    rebuild's write lock), and :meth:`copy_into` puts the twin's shadow tables in place of
    the archive's. The same rows in the same order through the same tokenizer: the same
    shadow tables, byte for byte, as ``'rebuild'`` writes (checked at 1,000,000 rows), in
    about the time of the first ``CREATE INDEX``. On any error the rebuild runs as before."""

    _TABLES = ("incidents_fts_data", "incidents_fts_idx", "incidents_fts_config")

    def __init__(self, archive_file: str, table_sql: str, columns: list[str]) -> None:
        self.archive_file = archive_file
        self.table_sql = table_sql
        self.columns = columns
        self.error: BaseException | None = None
        self.twin: sqlite3.Connection | None = None  # (built: the index to copy)
        self.thread = threading.Thread(target=self._build, name="dispatchwatch-fts", daemon=True)

    @classmethod
    def start(cls, conn: sqlite3.Connection) -> _FtsBeside | None:
        """The twin being built, or None when the archive is in memory or its full-text
        table is not the one expected (then the rebuild runs as before)."""
        archive_file = conn.execute("PRAGMA database_list").fetchone()[2]
        row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'incidents_fts'").fetchone()
        if not archive_file or row is None or _CONTENT not in row[0]:
            return None
        columns = [name for _, name, *_ in conn.execute("PRAGMA table_info(incidents_fts)")]
        beside = cls(archive_file, row[0], columns)
        beside.thread.start()
        return beside

    def _build(self) -> None:
        try:
            twin = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            try:
                twin.execute(self.table_sql.replace(_CONTENT, "content=''"))
                twin.execute("ATTACH ? AS archive", [self.archive_file])
                names = ", ".join(self.columns)
                twin.execute("BEGIN")
                twin.execute(
                    f"INSERT INTO incidents_fts (rowid, {names}) "
                    f"SELECT rowid, {names} FROM archive.incidents ORDER BY rowid"
                )
                twin.execute("COMMIT")
                twin.execute("DETACH archive")
            except BaseException:
                twin.close()
                raise
            self.twin = twin
        except BaseException as exc:  # (the rebuild then runs in the rebuild's transaction)
            self.error = exc

    def copy_into(self, conn: sqlite3.Connection) -> bool:
        """Put the twin's index in place of the archive's (inside the rebuild's
        transaction); False when the twin could not be built (nothing changed then). The
        table is made anew first: this connection may hold its old index's structure in
        memory (FTS5 keeps it between transactions), which must not outlive its rows."""
        self.join()
        if self.twin is None:
            log.debug("full-text index not built beside: %s", self.error)
            return False
        conn.execute("DROP TABLE main.incidents_fts")
        conn.execute(self.table_sql)
        for table in self._TABLES:
            conn.execute(f"DELETE FROM main.{table}")
            rows = self.twin.execute(f"SELECT * FROM {table}")  # (streamed: no copy held)
            marks = ", ".join("?" * len(rows.description))
            conn.executemany(f"INSERT INTO main.{table} VALUES ({marks})", rows)
        return True

    def join(self) -> None:
        """Wait for the thread."""
        if self.thread.is_alive():
            self.thread.join()

    def close(self) -> None:
        self.join()
        if self.twin is not None:
            self.twin.close()
            self.twin = None


#: How the full-text table names its content table (migration 1); its twin has none.
_CONTENT = 'content="incidents"'


def _try_lock(path: Path) -> RunLock | None:
    """The archive's run lock when nobody holds it (None when another process does, or when
    it cannot be taken at all: then nobody may defer)."""
    lock = RunLock(path)
    try:
        lock.acquire()
    except AlreadyRunningError:
        return None
    if lock._fd is None:  # the folder is not writable: no lock, no certainty
        return None
    return lock


def repair(archive: Archive) -> bool:
    """Recreate the indexes and triggers a killed bulk job left dropped (see the module
    docs); called when an archive is opened. Does nothing while the job is still running
    (it holds the run lock) or when nothing is pending. Returns whether it repaired."""
    conn = archive.conn
    count, job, pid, started_at = pending(conn)
    if not count:
        return False
    path = archive.path.resolve()
    if path in _ACTIVE:  # this process's own job: it restores them itself
        return False
    lock = _try_lock(path)
    if lock is None:
        return False  # the job is running (or a daemon that repaired before it started)
    try:
        log.warning(
            "%s: a bulk %s (PID %s, started %s) ended before rebuilding its indexes; "
            "rebuilding them now",
            archive.path,
            job or "job",
            pid,
            started_at,
        )
        _restore(conn)
    finally:
        lock.release()
    return True


@contextmanager
def deferred_indexes(
    archive: Archive,
    *,
    job: str,
    rows: int,
) -> Iterator[bool]:
    """Defer the archive's secondary indexes and full-text index for a bulk ``job``
    (``"ingest"``, ``"import"``) expected to write about ``rows`` incidents, when it pays:
    ``rows`` >= :data:`MIN_ROWS`, the archive holds at most ``rows`` *
    :data:`MAX_EXISTING_SHARE` incidents, and no other process holds the run lock. Yields
    whether they are deferred; on leaving (normally, on an exception, on Ctrl-C) they are
    rebuilt, in one transaction."""
    path = archive.path.resolve()
    if rows < MIN_ROWS or path in _ACTIVE or str(archive.path) == ":memory:":
        yield False
        return
    conn = archive.conn
    with archive._lock:
        existing = conn.execute("SELECT max(rowid) FROM incidents").fetchone()[0] or 0
    if existing > rows * MAX_EXISTING_SHARE:
        yield False
        return
    lock = _try_lock(path)
    if lock is None:
        yield False
        return
    if lock._fd is not None:  # what `dispatchwatch run` says when it finds the lock taken
        os.ftruncate(lock._fd, 0)
        os.pwrite(lock._fd, f"{os.getpid()}, a bulk {job}\n".encode(), 0)
    try:
        with archive._lock:
            if pending(conn)[0]:  # left by a job that died: we hold the lock, put it back
                _restore(conn)
        _defer(archive, job)
        _ACTIVE.add(path)
        try:
            yield True
        finally:
            _ACTIVE.discard(path)
            with archive._lock:
                _restore(conn)
    finally:
        lock.release()


def _defer(archive: Archive, job: str) -> None:
    """Drop the deferrable objects, recording their SQL, in one transaction."""
    from .archive import utc_now  # lazy: archive imports this module

    with archive.transaction() as conn:
        objects = _deferrable(conn)
        conn.executemany(
            "INSERT INTO deferred_schema (name, type, sql, job, pid, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(name, kind, sql, job, os.getpid(), utc_now()) for kind, name, sql in objects],
        )
        for kind, name, _ in objects:
            conn.execute(f"DROP {kind.upper()} [{name}]")
