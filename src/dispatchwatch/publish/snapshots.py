"""Consistent, optionally limited copies of a live archive, ready for ``datasette publish``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .feeds import _connect_readonly, _feed_rows
from .views import install_views, views_outdated
from .zones import ensure_zone_offsets


@dataclass(slots=True)
class SnapshotResult:
    path: Path
    counts: dict[str, int]
    size: int
    first_received: str | None
    last_received: str | None
    feeds: list[str] = field(default_factory=list)


def parse_bound(text: str, *, end: bool = False) -> str:
    """A ``--since``/``--until`` value as stored time text (UTC, ``Z``).

    A date means the start of that UTC day, or for ``end`` the start of the next one, so
    ``--until 2024-04-01`` includes all of April 1st. A time without a zone is UTC.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"not a date or time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
        ) from None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_SNAPSHOT_TABLES = ("feeds", "incidents", "incident_versions", "polls")


def snapshot(
    source: str | Path,
    out: str | Path,
    *,
    feeds: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    replace: bool = False,
    with_pages: bool = False,
) -> SnapshotResult:
    """Copy the archive at ``source`` to ``out``, consistently, while the daemon writes.

    SQLite's backup API copies every page under one read transaction, so the copy is the
    archive as of one commit. It is then limited to ``feeds`` and to incidents received in
    [``since``, ``until``) (stored time text, see :func:`parse_bound`) together with their
    versions, the polls of the kept feeds in that range and every poll a kept version
    refers to. The copy is brought to the current schema, switched out of WAL (one
    self-contained file for ``datasette publish``), its search index rebuilt and, when
    rows were removed, vacuumed. The raw page store (``pages``, ``poll_pages``) is emptied
    unless ``with_pages``. The copy is written beside ``out`` and renamed into place.
    """
    import sqlite_utils

    from ..archive import migrate

    source, out = Path(source), Path(out)
    if not source.is_file():
        raise FileNotFoundError(f"no archive at {source}")
    if out.exists():
        if out.resolve() == source.resolve():
            raise ValueError("the snapshot cannot overwrite the archive it copies")
        if not replace:
            raise FileExistsError(f"{out} exists (use --replace to overwrite it)")
    if since and until and since >= until:
        raise ValueError("--since must be before --until")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    src = _connect_readonly(source)
    dst = sqlite3.connect(str(partial), isolation_level=None)
    try:
        known = [feed["slug"] for feed in _feed_rows(src)]
        unknown = [slug for slug in feeds if slug not in known]
        if unknown:
            raise ValueError(
                f"no feed {', '.join(unknown)} in {source} (feeds: {', '.join(known) or 'none'})"
            )
        src.backup(dst)
        src.close()
        # One self-contained file: a published database is opened immutable, without WAL.
        dst.execute("PRAGMA journal_mode = DELETE")
        migrate(sqlite_utils.Database(dst))
        removed = _limit(dst, feeds, since, until)
        removed += _limit_pages(dst, with_pages)
        dst.execute("BEGIN")
        ensure_zone_offsets(dst, refresh=True)
        if views_outdated(dst):
            install_views(dst)
        kept_zones = [row[0] for row in dst.execute("SELECT DISTINCT timezone FROM feeds")]
        dst.execute(
            f"DELETE FROM zone_offsets WHERE zone NOT IN ({', '.join('?' * len(kept_zones))})",
            kept_zones,
        )
        dst.execute("INSERT INTO incidents_fts (incidents_fts) VALUES ('rebuild')")
        dst.execute("COMMIT")
        problems = dst.execute("PRAGMA foreign_key_check").fetchall()
        if problems:  # would mean a bug in _limit: never publish a broken copy
            raise RuntimeError(f"snapshot left dangling references: {problems[:5]}")
        dst.execute("ANALYZE")
        if removed:
            dst.execute("VACUUM")
        counts = {
            table: dst.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]
            for table in _SNAPSHOT_TABLES
        }
        first, last = dst.execute(
            "SELECT min(received_at), max(received_at) FROM incidents"
        ).fetchone()
        kept_feeds = [row[0] for row in dst.execute("SELECT slug FROM feeds ORDER BY slug")]
        dst.close()
        os.replace(partial, out)
    except BaseException:
        src.close()
        dst.close()
        partial.unlink(missing_ok=True)
        raise
    return SnapshotResult(out, counts, out.stat().st_size, first, last, kept_feeds)


def _limit_pages(conn: sqlite3.Connection, with_pages: bool) -> int:
    """Empty the raw page store, or (``with_pages``) keep the pages of the kept feeds whole
    (a delta needs its chain) and the links of the kept polls. Returns the rows deleted."""
    before = conn.total_changes
    conn.execute("BEGIN")
    if with_pages:
        conn.execute("DELETE FROM poll_pages WHERE poll_id NOT IN (SELECT id FROM polls)")
        conn.execute("DELETE FROM pages WHERE feed NOT IN (SELECT slug FROM feeds)")
    else:
        conn.execute("DELETE FROM poll_pages")
        conn.execute("DELETE FROM pages")
    conn.execute("COMMIT")
    return conn.total_changes - before


def _limit(
    conn: sqlite3.Connection, feeds: Sequence[str], since: str | None, until: str | None
) -> int:
    """Delete what is outside the feeds and date range; returns the rows deleted."""
    if not feeds and not since and not until:
        return 0
    keep_incident = ["1"]
    keep_poll = ["1"]
    params: list[Any] = []
    poll_params: list[Any] = []
    if feeds:
        marks = ", ".join("?" * len(feeds))
        keep_incident.append(f"feed IN ({marks})")
        keep_poll.append(f"feed IN ({marks})")
        params += feeds
        poll_params += feeds
    # An incident without a received time is dated by when it was first seen.
    when = "coalesce(received_at, first_seen_at)"
    if since:
        keep_incident.append(f"{when} >= ?")
        keep_poll.append("started_at >= ?")
        params.append(since)
        poll_params.append(since)
    if until:
        keep_incident.append(f"{when} < ?")
        keep_poll.append("started_at < ?")
        params.append(until)
        poll_params.append(until)
    before = conn.total_changes
    conn.execute("BEGIN")
    conn.execute(f"DELETE FROM incidents WHERE NOT ({' AND '.join(keep_incident)})", params)
    # The versions of the incidents removed (stored in version_log, keyed by their rowid).
    for table in ("version_values", "version_times"):
        conn.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT l.id FROM version_log l "
            "WHERE NOT EXISTS (SELECT 1 FROM incidents i WHERE i.rowid = l.incident))"
        )
    conn.execute(
        "DELETE FROM version_log WHERE NOT EXISTS (SELECT 1 FROM incidents i "
        "WHERE i.rowid = version_log.incident)"
    )
    # A kept version keeps its poll, even one just outside the range.
    conn.execute(
        f"DELETE FROM polls WHERE NOT ({' AND '.join(keep_poll)}) "
        "AND id NOT IN (SELECT poll_id FROM version_log WHERE poll_id IS NOT NULL)",
        poll_params,
    )
    if feeds:
        conn.execute(f"DELETE FROM feeds WHERE slug NOT IN ({', '.join('?' * len(feeds))})", feeds)
    conn.execute("COMMIT")
    return conn.total_changes - before
