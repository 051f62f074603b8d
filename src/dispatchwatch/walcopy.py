"""A bulk job's WAL copied back into the database file by a thread, not by the writer.

In WAL mode every page a transaction writes goes to the ``-wal`` file first and is copied
into the database file later, by a checkpoint. The archive's connection runs one itself at
the commit that takes the WAL past ``wal_autocheckpoint`` pages: the poll that commits waits
while the WAL is read back and written into the file (for ``ingest`` of 100,000 Socrata rows,
about a sixth of the archiving process's time, nearly all of it in ``pread``/``pwrite``
system calls, which the GIL does not hold up).

:func:`background_checkpoints` turns the writer's automatic checkpoints off for a job and
runs them instead in a thread with a connection of its own: ``PRAGMA wal_checkpoint(PASSIVE)``
every :data:`INTERVAL` seconds, which copies what is committed while the writer goes on
(SQLite lets one checkpoint run beside one writer). The archive ends the same: a checkpoint
moves bytes between two files and is crash-safe at every point (a ``kill -9`` midway leaves
the WAL, whose frames the next open reads or copies). Once the WAL is all copied and no
reader is behind, the writer starts it again from the beginning, so it stays small.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .archive import Archive

__all__ = ["INTERVAL", "background_checkpoints"]

log = logging.getLogger(__name__)

#: Seconds between two checkpoints of the thread (each copies what was committed since).
INTERVAL = 0.05


@contextmanager
def background_checkpoints(archive: Archive, interval: float = INTERVAL) -> Iterator[bool]:
    """For the block, the WAL of ``archive`` is checkpointed by a thread (see the module
    docstring) instead of at the commits of its connection; yields whether it is (not for an
    in-memory archive). On leaving (an exception and Ctrl-C included) the thread finishes
    the checkpoint it is in, stops, and the connection's ``wal_autocheckpoint`` is set back.
    Start it after any ``fork`` (a fork copies only the calling thread)."""
    path = str(archive.path)
    if path == ":memory:" or not archive.path.exists():
        yield False
        return
    with archive._lock:
        pages = archive.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    stop = threading.Event()
    ready = threading.Event()
    thread = threading.Thread(
        target=_checkpoints,
        args=(archive.path, stop, ready, interval),
        name="dispatchwatch-checkpoints",
        daemon=True,
    )
    try:
        thread.start()
        ready.wait()
        with archive._lock:
            archive.conn.execute("PRAGMA wal_autocheckpoint = 0")
        yield True
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        with archive._lock:
            archive.conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")


def _checkpoints(
    path: Path, stop: threading.Event, ready: threading.Event, interval: float
) -> None:
    """The thread: a passive checkpoint every ``interval`` seconds until ``stop`` is set.
    A checkpoint that cannot run (busy, locked) or fails is left to the next one, and to
    the writer's own once the block ends."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        log.debug("no background checkpoints: %s", exc)
        ready.set()
        return
    try:
        # As the archive's own connection: the WAL is synced before each checkpoint, the
        # file after it; no sync at the commits.
        conn.execute("PRAGMA synchronous = NORMAL")
        ready.set()
        while not stop.wait(interval):
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                log.debug("background checkpoint: %s", exc)
    finally:
        ready.set()
        conn.close()
