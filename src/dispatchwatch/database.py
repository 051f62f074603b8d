"""Opening an archive safely: recognise it, never write anyone else's file, and read it as a
user who may not write its folder.

**Recognition.** An archive carries dispatchwatch's ``PRAGMA application_id``
(:data:`APPLICATION_ID`, set by the schema migrations in the same transaction as the tables).
An archive made before the id existed is recognised by its schema version and its four tables
with the columns dispatchwatch gives them, and gets the id on its next write.

**Writing** (:func:`check_writable`, called by ``Archive`` before it connects): only a file
that does not exist, an empty one (zero bytes, or a SQLite database with no schema at all, as
an interrupted first run leaves it) or an archive is ever written. Anything else (another
application's SQLite database, a text file, any other binary) raises :class:`ArchiveError`
with one line, and the file is left byte for byte as it was: not switched to WAL, no
``-wal``/``-shm`` beside it. Recognising a file reads its 100-byte header, and only when
that is not conclusive (an id of 0) its schema, through an ``immutable`` connection that
creates nothing (or a read-only one when a ``-wal`` is already there).

**Reading** (:func:`connect_read_only`, for ``stats``, ``status``, ``metadata``,
``snapshot``, ``export``): ``mode=ro``, which can never write the archive. A WAL archive is
read through its index (``-shm``), which SQLite creates beside the file when it is missing;
a user who may read the archive but not write its folder cannot, once the daemon has stopped
and removed it. Then the file holds every commit, and it is read ``immutable`` (without
locks or index), which is safe only while nothing writes: so only when there is no ``-wal``
with content (a WAL that no process has merged back: the daemon is running, or stopped
uncleanly), and the read is checked afterwards: if the file or its ``-wal`` changed meanwhile
(a writer started), closing the connection raises :class:`ArchiveError` rather than let a
torn read pass. When it is not safe, the error says exactly why and what to do.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from .errors import DispatchwatchError
from .sqlitebind import bind_none_fast

bind_none_fast()  # every archive write binds many None: see sqlitebind.py

#: ``PRAGMA application_id`` of every archive: "DWar" in ASCII.
APPLICATION_ID = int.from_bytes(b"DWar", "big")

SQLITE_MAGIC = b"SQLite format 3\x00"

#: What identifies an archive made before :data:`APPLICATION_ID` existed (schema 1 or later).
LEGACY_SIGNATURE = {
    "feeds": {"slug", "scraper", "timezone", "interval_seconds"},
    "polls": {"feed", "started_at", "outcome", "sha256", "error_kind"},
    "incidents": {"feed", "incident_id", "first_seen_at", "last_seen_at", "gone_at"},
    "incident_versions": {"feed", "incident_id", "version", "poll_id", "changed"},
}

# What a file is (see :func:`identify`).
MISSING = "missing"
EMPTY = "empty"
ARCHIVE = "archive"
FOREIGN = "foreign"


class ArchiveError(DispatchwatchError):
    """The file is not an archive this dispatchwatch can use."""

    kind = "archive"


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _unreadable(path: Path, exc: OSError) -> ArchiveError:
    try:
        st = path.stat()
        owner = (
            f" (owner uid {st.st_uid}, mode {st.st_mode & 0o777:04o}, you are uid {os.getuid()})"
        )
    except OSError:
        owner = ""
    return ArchiveError(f"cannot read {path}: {exc.strerror or exc}{owner}")


def _header(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(100)
    except IsADirectoryError:
        raise ArchiveError(f"{path} is a folder, not an archive") from None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def identify(path: str | Path) -> tuple[str, str]:
    """What ``path`` is, without changing it or creating anything beside it:
    ``(MISSING | EMPTY | ARCHIVE | FOREIGN, a one-line description)``.

    Raises :class:`ArchiveError` when the file cannot be read at all."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return MISSING, f"no archive at {path}"
    except OSError as exc:
        raise _unreadable(path, exc) from None
    wal = _sidecar(path, "-wal")
    if size == 0 and not _has_content(wal):
        return EMPTY, f"{path} is empty"
    header = _header(path)
    if size > 0 and not header.startswith(SQLITE_MAGIC):
        return FOREIGN, f"{path} is not a dispatchwatch archive (not a SQLite database)"
    application_id = int.from_bytes(header[68:72], "big") if len(header) >= 72 else 0
    if application_id == APPLICATION_ID:
        return ARCHIVE, f"{path} is a dispatchwatch archive"
    if application_id:  # only the migrations set it, and only where it was 0
        return FOREIGN, (
            f"{path} is not a dispatchwatch archive (a SQLite database of another "
            f"application, application_id {application_id:#010x})"
        )
    # Not conclusive: read the schema. Without a -wal, immutable reads the file as it is and
    # creates nothing; with one, a read-only connection uses the -wal and -shm already there.
    mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise ArchiveError(f"cannot open {path}: {exc}") from None
    try:
        return _identify_schema(conn, path)
    except sqlite3.DatabaseError as exc:
        if mode == "mode=ro":
            raise ArchiveError(_read_only_problem(path, exc)) from None
        return FOREIGN, f"{path} is not a dispatchwatch archive ({exc})"
    finally:
        conn.close()


def _identify_schema(conn: sqlite3.Connection, path: Path) -> tuple[str, str]:
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if application_id == APPLICATION_ID:
        return ARCHIVE, f"{path} is a dispatchwatch archive"
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]
    if application_id == 0 and version == 0 and not names:
        return EMPTY, f"{path} is an empty SQLite database"
    if application_id == 0 and version >= 1 and _legacy_signature(conn):
        return ARCHIVE, f"{path} is a dispatchwatch archive (made before application_id)"
    what = f"application_id {application_id:#010x}" if application_id else "no application_id"
    tables = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "") or "no tables"
    return FOREIGN, (
        f"{path} is not a dispatchwatch archive (a SQLite database with {what}; {tables})"
    )


def _legacy_signature(conn: sqlite3.Connection) -> bool:
    for table, wanted in LEGACY_SIGNATURE.items():
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info([{table}])")}
        if not wanted <= columns:
            return False
    return True


def check_writable(path: str | Path) -> str:
    """Raise :class:`ArchiveError` unless dispatchwatch may write ``path``: it does not
    exist, is empty, or is an archive. Returns what it is (:data:`MISSING`, :data:`EMPTY`
    or :data:`ARCHIVE`). Changes nothing."""
    path = Path(path)
    kind, description = identify(path)
    if kind == FOREIGN:
        raise ArchiveError(
            f"{description}; dispatchwatch writes only to a new or empty file or one of its "
            "own archives, and left this one unchanged"
        )
    return kind


def require_archive(path: str | Path) -> None:
    """Raise :class:`ArchiveError` (one line) unless ``path`` is an archive."""
    path = Path(path)
    kind, description = identify(path)
    if kind == EMPTY:
        raise ArchiveError(
            f"{path} is not a dispatchwatch archive yet (the file is empty; "
            "`dispatchwatch run` or `ingest` starts one)"
        )
    if kind != ARCHIVE:
        raise ArchiveError(description)


def _fingerprint(path: Path) -> tuple[Any, ...]:
    """What changes when anything writes the archive: the file, and whether a -wal exists."""
    st = path.stat()
    wal = _sidecar(path, "-wal")
    return (st.st_ino, st.st_size, st.st_mtime_ns, wal.exists() and wal.stat().st_size)


class _ImmutableConnection(sqlite3.Connection):
    """A connection opened ``immutable``: closing it checks that nothing wrote meanwhile."""

    path: Path
    fingerprint: tuple[Any, ...] | None = None

    def close(self) -> None:
        super().close()
        expected, self.fingerprint = self.fingerprint, None
        if expected is not None and _fingerprint(self.path) != expected:
            raise ArchiveError(
                f"{self.path} was written while it was read without locks (its folder is "
                "not writable for this user, so the read could not take SQLite's locks); "
                "run the command again"
            )


def _read_only_problem(path: Path, exc: sqlite3.Error) -> str:
    """Why a read-only user cannot read ``path`` consistently, and what to do."""
    folder = path.resolve().parent
    shm = _sidecar(path, "-shm")
    if _has_content(_sidecar(path, "-wal")):
        return (
            f"cannot read {path} read-only: its write-ahead log {path.name}-wal holds commits "
            f"not yet merged into the file (a daemon is running, or stopped uncleanly), and "
            f"its index {shm.name} is missing and cannot be created in {folder} by uid "
            f"{os.getuid()}; run the command as the archive's owner, or once the daemon "
            f"has stopped cleanly ({exc})"
        )
    if _sidecar(path, "-journal").exists():
        return (
            f"cannot read {path} read-only: {path.name}-journal is left from an interrupted "
            f"write that only a user who may write {folder} can roll back ({exc})"
        )
    return f"cannot read {path} read-only: {exc}"


def connect_read_only(path: str | Path, **kwargs: Any) -> sqlite3.Connection:
    """A connection to the archive at ``path`` that can never write it, for a user who may
    only read it (see the module docs for when it is opened ``immutable``).

    ``kwargs`` go to :func:`sqlite3.connect` (``timeout`` defaults to 30 s). Raises
    :class:`ArchiveError` (one line) when ``path`` is missing, not an archive, or cannot
    be read consistently by this user, saying why."""
    path = Path(path)
    require_archive(path)
    kwargs.setdefault("timeout", 30.0)
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, **kwargs)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the index
            return conn
        except BaseException:
            conn.close()
            raise
    except sqlite3.OperationalError as exc:
        first = exc
    # mode=ro could not open or create the WAL index (or roll back a journal): this user may
    # not write the folder. Immutable is safe only when the file holds every commit.
    if _has_content(_sidecar(path, "-wal")) or _sidecar(path, "-journal").exists():
        raise ArchiveError(_read_only_problem(path, first)) from None
    fingerprint = _fingerprint(path)
    conn = sqlite3.connect(
        f"{uri}?mode=ro&immutable=1", uri=True, factory=_ImmutableConnection, **kwargs
    )
    assert isinstance(conn, _ImmutableConnection)
    conn.path, conn.fingerprint = path, fingerprint
    return conn


def live_read_problem(path: str | Path) -> str | None:
    """Why a reader that takes SQLite's locks (Datasette, for ``serve``) cannot open the live
    archive at ``path`` as this user, or None. A WAL archive is read through its index
    (``-shm``), which must exist already or be creatable in the archive's folder."""
    path = Path(path)
    header = _header(path)
    if len(header) < 20 or header[18] != 2:  # not in WAL mode: plain read locks suffice
        return None
    shm = _sidecar(path, "-shm")
    folder = path.resolve().parent
    if os.access(shm, os.R_OK) or (not shm.exists() and os.access(folder, os.W_OK | os.X_OK)):
        return None
    return (
        f"cannot serve {path} live as uid {os.getuid()}: a live archive is read through its "
        f"index {shm.name}, which is missing and cannot be created in {folder} (not writable "
        f"for this user); serve a copy instead: dispatchwatch snapshot COPY.db --db {path} "
        "&& datasette -i COPY.db"
    )
