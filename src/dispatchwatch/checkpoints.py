"""A bulk ingest's WAL checkpoints run beside it, in a thread, not inside its commits.

In WAL mode the commit that takes the write-ahead log past ``wal_autocheckpoint`` pages
copies the log back into the database file and syncs it before it returns: a few times
in an ingest of 100,000 rows, each about 0.1 s during which the ingest waits (most of it
for the disk). :func:`checkpoints_aside` turns that off on the archive's connection for
the time of the run and has a thread with a connection of its own run a ``PASSIVE``
checkpoint instead, about as often (every :data:`EVERY` rows written, counting each poll as
:data:`POLL_ROWS` more): the copy and the sync overlap the next polls (SQLite lets a
checkpoint run beside a writer; the thread spends it in SQLite, without the interpreter's
lock). What the polls wrote meanwhile is checkpointed at the next poll's end, here (a
tenth or so of the log): then the next commit starts the log over, as it does after an
automatic checkpoint. Measured on 100,000 Socrata rows (bench/socrata.py): the ingest's
time in commits 1.16-1.35 s -> 0.86-0.91 s.

Nothing else changes: the same rows, written by the same commits; a checkpoint only moves
committed pages from the log into the file, and a crash in the middle of one loses
nothing (the log still holds them). The log grows no larger than with the automatic
checkpoints (a checkpoint that cannot run now, behind a reader, waits for the next turn,
as the automatic one does); when the run ends the automatic checkpoints come back.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .archive import Archive

__all__ = [
    "EVERY",
    "POLL_ROWS",
    "WriteBehind",
    "checkpoint_once",
    "checkpoints_aside",
    "connect",
    "passive",
]

log = logging.getLogger(__name__)

#: Rows written between two checkpoints: a Socrata row adds ~0.1 page to the log (100 a
#: page of 1,000), so about the 4,000 pages of the archive's ``wal_autocheckpoint``.
EVERY = 40_000
#: What a poll counts for besides its rows (its poll row, raw page, state: a few pages).
POLL_ROWS = 50


@contextmanager
def checkpoints_aside(
    archive: Archive, every: int | None = None
) -> Iterator[Callable[[int], None]]:
    """For the time of the block, the archive's WAL checkpoints run in a thread (see the
    module docstring). Yields the function to call after each poll committed, with the rows
    it wrote; every ``every`` rows (default :data:`EVERY`; each poll counts
    :data:`POLL_ROWS` more) the thread checkpoints (it starts then: a block that forks a
    child first, see :mod:`.parseahead`, has forked before it). On leaving (also on an
    exception) the thread is stopped and the automatic checkpoints are back."""
    if str(archive.path) == ":memory:":
        yield lambda rows: None
        return
    every = EVERY if every is None else every
    conn = archive.conn
    with archive._lock:
        automatic = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    due = threading.Event()
    stop = threading.Event()
    thread: threading.Thread | None = None
    done = threading.Event()
    written = 0

    def committed(rows: int) -> None:
        nonlocal written, thread
        if done.is_set():
            # What was written while the thread checkpointed, here (a few polls' pages):
            # with the whole log in the file, the next commit starts it over; else a
            # writer that never pauses would grow it forever.
            done.clear()
            with archive._lock, suppress(sqlite3.Error):  # (else at the next turn)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        written += rows + POLL_ROWS
        if written < every:
            return
        written = 0
        if thread is None:
            thread = threading.Thread(
                target=_checkpointer, args=(str(archive.path), due, done, stop),
                name="dispatchwatch-checkpoints", daemon=True,
            )  # fmt: skip
            thread.start()
        due.set()  # (still set: the last one is not done, this turn is skipped)

    try:
        yield committed
    finally:
        stop.set()
        due.set()
        if thread is not None:
            thread.join()
        with archive._lock, suppress(sqlite3.Error):  # (never hide what ended the run)
            conn.execute(f"PRAGMA wal_autocheckpoint = {int(automatic)}")


def _checkpointer(
    path: str, due: threading.Event, done: threading.Event, stop: threading.Event
) -> None:
    """The thread: a ``PASSIVE`` checkpoint each time ``due`` is set (then ``done``), until
    ``stop``."""
    conn = connect(path)
    if conn is None:  # the automatic checkpoints come back at the end
        return
    try:
        while True:
            due.wait()
            due.clear()
            if stop.is_set():
                return
            if passive(conn):  # (else the next turn, or the end of the run, does it)
                done.set()
    finally:
        conn.close()


def connect(path: str) -> sqlite3.Connection | None:
    """A connection of its own to the archive at ``path``, for a thread that checkpoints;
    None when it cannot be opened (logged: a later checkpoint does the work)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        log.debug("no checkpoint connection: %s", exc)
        return None
    conn.execute("PRAGMA synchronous = NORMAL")  # (as the archive's own connection)
    return conn


def passive(conn: sqlite3.Connection) -> bool:
    """One ``PASSIVE`` checkpoint on ``conn`` (never waits for a reader or a writer);
    whether it ran. An error is logged only: the archive is consistent either way, and a
    later checkpoint copies what this one did not."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error as exc:
        log.debug("checkpoint skipped: %s", exc)
        return False
    return True


def checkpoint_once(path: str) -> None:
    """One ``PASSIVE`` checkpoint of the archive at ``path`` on a connection of its own: the
    thread an import's outer transaction leaves running (``Archive.outer_transaction``)."""
    conn = connect(path)
    if conn is not None:
        try:
            passive(conn)
        finally:
            conn.close()


#: Bytes the WAL grows by between two hand-overs to the disk (:class:`WriteBehind`).
WRITE_BEHIND_BYTES = 8 << 20
#: ``SYNC_FILE_RANGE_WRITE`` (``<linux/fs.h>``): start writing the range's dirty pages, no wait.
_SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range(2)`` (not in :mod:`os`), or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


class WriteBehind:
    """The write-ahead log of one long transaction (an import's outer transaction, see
    ``Archive.outer_transaction``) handed to the disk as it grows, not all at its end.

    Its pages sit in the page cache until something syncs them: the checkpoint after the
    commit, which syncs the WAL before copying it (at 1,000,000 imported rows about 600 MB:
    2-3 s of a disk's writing, after the job, in its last serial seconds). Called after each
    poll of the transaction, this starts the writing of what the WAL gained since the last
    call, once :data:`WRITE_BEHIND_BYTES` or more (``sync_file_range(2)``, asynchronous: it
    waits for nothing), so the disk writes while the job computes and the checkpoint's sync
    finds little left. Nothing changes in what is written or when it is durable (a commit
    under ``synchronous = NORMAL`` never waited for the disk; the checkpoint still syncs).
    Linux only (elsewhere a no-op); an error only stops it."""

    def __init__(self, database: str, step: int | None = None) -> None:
        self._wal = database + "-wal"
        self._step = WRITE_BEHIND_BYTES if step is None else step
        self._fd: int | None = None
        self._done = 0  # bytes of the WAL handed over
        self._sync = _sync_file_range() if database else None

    def __call__(self) -> None:
        if self._sync is None:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self._wal, os.O_RDONLY | os.O_CLOEXEC)
            size = os.fstat(self._fd).st_size
            if size - self._done < self._step:
                return
            if self._sync(self._fd, self._done, size - self._done, _SYNC_FILE_RANGE_WRITE):
                raise OSError(ctypes.get_errno(), "sync_file_range")
            self._done = size
        except OSError as exc:
            log.debug("no write-behind of %s: %s", self._wal, exc)
            self._sync = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
