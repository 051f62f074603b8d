"""Running Datasette on a live archive: the command line, preparing the file, the process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .views import install_views, views_outdated
from .zones import _known_zone, ensure_zone_offsets


def datasette_command(
    db_path: str | Path,
    metadata_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``datasette serve`` command line for a live archive.

    The file is passed as a plain (mutable) database, never ``-i``: immutable mode assumes
    the file never changes and would serve stale or torn pages while the daemon writes.
    Datasette then opens it with ``?mode=ro``, so its reads cannot write, and in WAL mode
    readers never wait for the writer. Nothing that writes is enabled (no ``--crossdb``,
    no ``--nolock``, no write plugins).

    Facet suggestions are off: on every page they try a query per column, each cut off at
    its time limit, which on a large, growing archive adds a second or more per page for
    suggestions that never arrive. The configured facets stay, and any column can still be
    faceted from its menu.
    """
    return [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        str(db_path),
        "--metadata",
        str(metadata_path),
        "--host",
        host,
        "--port",
        str(port),
        "--setting",
        "suggest_facets",
        "off",
        *extra,
    ]


def prepare_live_archive(db_path: str | Path) -> None:
    """Make sure an archive has what the metadata refers to: the current schema, the current
    views (an archive made by an older dispatchwatch keeps the views it was made with) and
    offsets for every feed's time zone.

    Writes only when something is missing, in one short transaction by dispatchwatch before
    Datasette starts (so serving a current archive, even a read-only file, writes nothing).
    Deliberately not :class:`Archive`: closing that checkpoints the WAL, which waits for
    the daemon.
    """
    import sqlite_utils

    from ..archive import SCHEMA_VERSION, migrate
    from ..database import ArchiveError, live_read_problem, require_archive

    path = Path(db_path)
    require_archive(path)  # never migrate another application's file
    problem = live_read_problem(path)
    if problem:
        raise ArchiveError(problem)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            migrate(sqlite_utils.Database(conn))
        present = {row[0] for row in conn.execute("SELECT DISTINCT zone FROM zone_offsets")}
        wanted = {row[0] for row in conn.execute("SELECT DISTINCT timezone FROM feeds")}
        stale_views = views_outdated(conn)
        if stale_views or any(_known_zone(zone) for zone in wanted - present):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if stale_views:
                    install_views(conn)  # fills zone_offsets too
                else:
                    ensure_zone_offsets(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise ValueError(f"cannot prepare {path} for serving: {exc}") from exc
    finally:
        conn.close()


def run_datasette(command: Sequence[str]) -> int:
    """Run ``command`` in the foreground; stop it with us (Ctrl+C, SIGTERM)."""
    import signal

    process = subprocess.Popen(list(command))

    def stop(signum: int, frame: object) -> None:
        process.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            process.kill()
