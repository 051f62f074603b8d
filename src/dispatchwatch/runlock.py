"""One daemon per archive: an exclusive lock beside the archive file.

Two ``dispatchwatch run`` processes on one archive would both poll every feed (each poll
twice, twice the load on the sources) and race each other's writes. ``run`` (and ``run
--once``) hold an ``flock`` on ``<archive>.lock`` for as long as they run; the file holds the
holder's PID so the second one can name it. The lock dies with its process (``kill -9``
included), so a stale file never blocks a restart.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from .errors import DispatchwatchError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; one daemon is up to the user
    fcntl = None  # type: ignore[assignment]


class AlreadyRunningError(DispatchwatchError):
    """Another process is archiving into the same archive."""

    kind = "already_running"


class RunLock:
    """``with RunLock("dispatch.db"):`` ... raises :class:`AlreadyRunningError` naming the
    other process's PID when it is held."""

    def __init__(self, database: str | Path) -> None:
        self.database = Path(database)
        self.path = self.database.with_name(self.database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            # A folder we cannot write: the archive cannot be written either; let opening it
            # say so in its own words.
            if exc.errno in (13, 30):  # EACCES, EROFS
                return
            raise DispatchwatchError(
                f"cannot create the lock {self.path}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunningError(
                f"another dispatchwatch run (PID {holder}) is already archiving into "
                f"{self.database}; one daemon per archive: stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
