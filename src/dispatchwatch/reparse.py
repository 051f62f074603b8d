"""Rebuild a feed's incidents and versions from its stored raw pages with the current scraper.

:func:`reparse` replays the feed's stored polls in order (each poll's responses from the raw
page store, parsed by the scraper as it is now, normalized and archived by the same
:meth:`Archive.record_success` as a live poll) into a scratch archive in memory, starting
from the feed's state just before the first replayed poll. It then compares the result with
what the archive holds for those polls and writes only the differences, in one transaction:
with an unchanged scraper nothing is written at all.

Later history depends on earlier state: a rebuild that ends before the feed's last poll
(``until``) is refused when it changes the state those later polls started from.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .archive import INCIDENT_COLUMNS, Archive, ArchiveError, insert_incidents
from .config import Feed
from .errors import DispatchwatchError, PageError
from .pagestore import StoredResponse, poll_responses
from .pipeline import _error_text, normalize
from .scraper import Page, RawRow
from .versions import COMPACT_VALUES, STORE_CURRENT, whole_versions

_INCIDENT_KEYS = ["incident_id"]
_VERSION_KEYS = ["incident_id", "version"]
_POLL_FIELDS = [
    "outcome", "incidents", "new", "changed", "gone", "returned", "error_kind", "error",
    "scraper_version",
]  # fmt: skip


class ReparseError(DispatchwatchError):
    kind = "reparse"


@dataclass(slots=True)
class ReparseResult:
    """What a reparse found (and, unless ``dry_run``, wrote)."""

    feed: str
    polls: int = 0
    first: str | None = None
    last: str | None = None
    incidents: dict[str, int] = field(default_factory=lambda: Counter())
    versions: dict[str, int] = field(default_factory=lambda: Counter())
    polls_changed: int = 0
    fields: dict[str, int] = field(default_factory=lambda: Counter())
    written: bool = False

    @property
    def changed(self) -> bool:
        return bool(sum(self.incidents.values()) or sum(self.versions.values()))

    def describe(self) -> str:
        def counts(c: dict[str, int]) -> str:
            return f"+{c['added']} -{c['removed']} ~{c['changed']}"

        span = f" ({self.first} to {self.last})" if self.first else ""
        lines = [
            f"{self.feed}: replayed {self.polls} poll{'s' if self.polls != 1 else ''}{span}",
            f"  incidents {counts(self.incidents)}, versions {counts(self.versions)}, "
            f"polls re-counted {self.polls_changed}",
        ]
        if self.fields:
            lines.append(
                "  fields: " + ", ".join(f"{k} {v}" for k, v in sorted(self.fields.items()))
            )
        if not self.changed and not self.polls_changed:
            lines.append("  no change")
        elif not self.written:
            lines.append("  (dry run: nothing written)")
        return "\n".join(lines)


def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _replay_parse(
    feed: Feed, responses: list[StoredResponse]
) -> tuple[list[RawRow], object, bool, str | None]:
    """Parse a poll's stored responses like :func:`run_poll` did: rows, the first response's
    "as of", and whether the list is whole. Raises on the first response's parse error."""
    rows: list[RawRow] = []
    as_of: object = None
    complete, reason = True, None
    for index, response in enumerate(responses):
        try:
            parsed = feed.scraper.parse(
                Page(response.body, response.url, response.headers, response.request)
            )
        except Exception as exc:
            if index == 0:
                raise
            kind = exc.kind if isinstance(exc, PageError) else "parse_error"
            return rows, as_of, False, f"request {index + 1}: {kind}: {_error_text(exc)}"
        rows.extend(parsed.rows)
        if index == 0:
            as_of = parsed.as_of
        if not parsed.complete:
            return rows, as_of, False, parsed.reason or f"request {index + 1} is incomplete"
    return rows, as_of, complete, reason


def _seed(scratch: Archive, conn: sqlite3.Connection, feed: str, first_poll: int) -> None:
    """The feed's incidents as they stood before poll ``first_poll``, from its versions."""
    columns = list(INCIDENT_COLUMNS)
    rows = conn.execute(
        f"""SELECT v.incident_id, {", ".join("v." + c for c in columns)},
  (SELECT observed_at FROM incident_versions f WHERE f.feed = v.feed
     AND f.incident_id = v.incident_id AND f.version = 1),
  min(i.last_seen_at, (SELECT max(observed_at) FROM incident_versions l WHERE l.feed = v.feed
     AND l.incident_id = v.incident_id AND l.poll_id < ?)) ,
  i.last_seen_at, v.gone_at, v.version
FROM {whole_versions()} v JOIN incidents i USING (feed, incident_id)
WHERE v.feed = ? AND v.id = (SELECT id FROM incident_versions w WHERE w.feed = v.feed
  AND w.incident_id = v.incident_id AND w.poll_id < ? ORDER BY version DESC LIMIT 1)""",
        [first_poll, feed, first_poll],
    ).fetchall()
    start = conn.execute("SELECT observed_at FROM polls WHERE id = ?", [first_poll]).fetchone()[0]
    seeded = []
    width = len(columns)
    for row in rows:
        incident_id, values = row[0], row[1 : width + 1]
        first_seen, fallback, last_seen, gone_at, version = row[width + 1 :]
        # last_seen_at is exact when the incident was not seen since; else its last version
        # before the replay is the best bound (the replay moves it again if it is listed).
        if last_seen is None or (start is not None and last_seen >= start):
            last_seen = fallback
        seeded.append((feed, incident_id, *values, first_seen, last_seen, gone_at, version))
    with scratch.transaction() as sconn:
        insert_incidents(sconn, seeded)  # one statement: the FTS trigger is cheap there


def reparse(
    archive: Archive,
    feed: Feed,
    *,
    since: str | None = None,
    until: str | None = None,
    dry_run: bool = False,
) -> ReparseResult:
    """Re-parse ``feed``'s stored polls with ``started_at`` in [``since``, ``until``) (UTC
    text; default: every poll whose pages are still stored) and write what changed.

    Raises :class:`ReparseError` when a poll in the range has no stored page (pruned, or
    ``keep_pages: 0``), when nothing is stored, or when ``until`` stops before later polls
    that depended on the state the rebuild changed.
    """
    conn = archive.conn
    slug = feed.slug
    result = ReparseResult(slug)
    where, params = "feed = ? AND outcome IN ('new', 'partial')", [slug]
    if since:
        where += " AND started_at >= ?"
        params.append(since)
    if until:
        where += " AND started_at < ?"
        params.append(until)
    with archive._lock:
        polls = _rows(
            conn,
            f"SELECT id, started_at, observed_at, outcome, kind, error_kind, error, "
            f"EXISTS (SELECT 1 FROM poll_pages p WHERE p.poll_id = polls.id) AS stored "
            f"FROM polls WHERE {where} ORDER BY id",
            params,
        )
    if not since:  # from the first poll after the last one whose pages are gone
        missing = [i for i, poll in enumerate(polls) if not poll["stored"]]
        if missing:
            polls = polls[missing[-1] + 1 :]
    missing_polls = [poll for poll in polls if not poll["stored"]]
    if missing_polls:
        later = next((p for p in polls if p["id"] > missing_polls[-1]["id"]), None)
        hint = f"; pages are stored from {later['started_at']} on" if later else ""
        raise ReparseError(
            f"{len(missing_polls)} poll(s) of {slug} in the range have no stored page "
            f"(first at {missing_polls[0]['started_at']}){hint}"
        )
    if not polls:
        raise ReparseError(f"no stored pages of {slug} to reparse in that range")
    first_id, last_id = polls[0]["id"], polls[-1]["id"]
    result.polls, result.first, result.last = (
        len(polls),
        polls[0]["started_at"],
        polls[-1]["started_at"],
    )

    with Archive(":memory:") as scratch:
        scratch.register_feed(feed.record())
        with archive._lock:
            _seed(scratch, conn, slug, first_id)
        replayed: dict[int, dict[str, Any]] = {}
        for poll in polls:
            with archive._lock:
                responses = poll_responses(conn, poll["id"])
            if responses is None:
                raise ReparseError(f"the pages of poll {poll['id']} of {slug} were pruned")
            # Replay under the poll's own id, so versions refer to it.
            # (a placeholder row just below it: SQLite gives the next row max(id) + 1).
            with scratch.transaction() as sconn:
                sconn.execute(
                    "INSERT INTO polls (id, feed, outcome) SELECT ?, ?, 'placeholder' "
                    "WHERE (SELECT coalesce(max(id), 0) FROM polls) < ?",
                    [poll["id"] - 1, slug, poll["id"] - 1],
                )
            replayed[poll["id"]] = _replay_one(scratch, feed, poll, responses)
        old = _snapshot_rows(conn, archive, slug, first_id, last_id)
        new = _snapshot_rows(scratch.conn, scratch, slug, first_id, last_id)
    return _apply(archive, result, slug, polls, replayed, old, new, until, dry_run)


def _replay_one(
    scratch: Archive, feed: Feed, poll: dict[str, Any], responses: list[StoredResponse]
) -> dict[str, Any]:
    """Archive one stored poll into ``scratch``; returns its polls-row fields."""
    version = feed.scraper.version
    try:
        rows, as_of, complete, reason = _replay_parse(feed, responses)
        incidents, utc_as_of = normalize(feed, rows, as_of)
    except Exception as exc:
        kind = exc.kind if isinstance(exc, PageError) else "parse_error"
        summary = scratch.record_error(
            feed.slug, error_kind=kind, error=_error_text(exc), scraper_version=version
        )
        assert summary.poll_id == poll["id"]
        return {
            **dict.fromkeys(_POLL_FIELDS[1:6], 0), "outcome": "error", "error_kind": kind,
            "error": _error_text(exc), "scraper_version": version,
        }  # fmt: skip
    history_only = None
    if poll["error_kind"] == "incomplete":  # a request that failed then is still missing
        complete, reason = False, reason or poll["error"]
    elif poll["error_kind"] == "history":  # an old page: it only added unseen incidents
        history_only = poll["error"]
    snapshot = feed.scraper.snapshot and poll["kind"] != "backfill"
    summary = scratch.record_success(
        feed.slug,
        incidents,
        observed_at=utc_as_of or poll["observed_at"],
        snapshot=snapshot,
        complete=complete,
        reason=reason,
        mass_gone_share=feed.mass_gone_share,
        history_only=history_only,
        scraper_version=version,
    )
    assert summary.poll_id == poll["id"], (summary.poll_id, poll["id"])
    return {
        "outcome": summary.outcome, "incidents": summary.incidents, "new": summary.new,
        "changed": summary.changed, "gone": summary.gone, "returned": summary.returned,
        "error_kind": summary.error_kind, "error": summary.error, "scraper_version": version,
    }  # fmt: skip


def _snapshot_rows(
    conn: sqlite3.Connection, archive: Archive, feed: str, first: int, last: int
) -> tuple[dict[tuple[Any, ...], dict[str, Any]], dict[tuple[Any, ...], dict[str, Any]]]:
    """The feed's incidents, and its versions of polls ``first``..``last``, keyed."""
    with archive._lock:
        incidents = _rows(conn, "SELECT * FROM incidents WHERE feed = ?", [feed])
        versions = _rows(
            conn,
            "SELECT * FROM incident_versions WHERE feed = ? AND poll_id BETWEEN ? AND ?",
            [feed, first, last],
        )
    for version in versions:
        version.pop("id")
    return (
        {tuple(r[k] for k in _INCIDENT_KEYS): r for r in incidents},
        {tuple(r[k] for k in _VERSION_KEYS): r for r in versions},
    )


def _diff(
    old: dict[tuple[Any, ...], dict[str, Any]],
    new: dict[tuple[Any, ...], dict[str, Any]],
    counts: dict[str, int],
    fields: dict[str, int] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    added = [new[k] for k in new.keys() - old.keys()]
    removed = [old[k] for k in old.keys() - new.keys()]
    changed = []
    for key in old.keys() & new.keys():
        if old[key] != new[key]:
            changed.append(new[key])
            if fields is not None:
                for name, value in new[key].items():
                    if old[key].get(name) != value and name in INCIDENT_COLUMNS:
                        fields[name] += 1
    counts["added"], counts["removed"], counts["changed"] = len(added), len(removed), len(changed)
    return added, removed, changed


def _apply(
    archive: Archive,
    result: ReparseResult,
    feed: str,
    polls: list[dict[str, Any]],
    replayed: dict[int, dict[str, Any]],
    old: tuple[dict[Any, Any], dict[Any, Any]],
    new: tuple[dict[Any, Any], dict[Any, Any]],
    until: str | None,
    dry_run: bool,
) -> ReparseResult:
    old_incidents, old_versions = old
    new_incidents, new_versions = new
    v_added, v_removed, v_changed = _diff(
        old_versions, new_versions, result.versions, result.fields
    )
    last_id = polls[-1]["id"]
    conn = archive.conn
    later = _later_versions(archive, feed, last_id)
    if later:
        # The incidents hold the state after later polls: with the window's versions
        # unchanged they are right as they are (and with them changed, refused below).
        old_incidents = new_incidents = {}
    i_added, i_removed, i_changed = _diff(old_incidents, new_incidents, result.incidents, None)
    with archive._lock:
        current = _rows(
            conn,
            f"SELECT id, {', '.join(_POLL_FIELDS)} FROM polls WHERE id IN "
            f"({', '.join(str(p['id']) for p in polls)})",
            [],
        )
    poll_updates = [
        (poll_id, replayed[poll_id])
        for poll_id, fields in ((row.pop("id"), row) for row in current)
        if replayed[poll_id] != fields
    ]
    result.polls_changed = len(poll_updates)
    if dry_run or not (result.changed or poll_updates):
        return result
    with archive.transaction() as conn:
        later = _later_versions(archive, feed, last_id)
        if result.changed and later:
            why = "--until stops" if until else "the feed was polled during the reparse,"
            raise ReparseError(
                f"{why} before {later} later version(s) of {feed} that depend on the "
                f"state this reparse changes; reparse up to the feed's last poll"
            )
        # Versions go through the incident_versions view (versions.py). The feed's versions
        # that read their incident's current fields get them stored first (the incidents are
        # about to change); removed versions go while their incidents are still there to find
        # them by; added ones last, once their incidents are; then the stored fields that are
        # their incidents' current ones are dropped again.
        conn.execute(STORE_CURRENT, [feed])
        key_sql = " AND ".join(f"{k} = ?" for k in _VERSION_KEYS)
        conn.executemany(
            f"DELETE FROM incident_versions WHERE feed = ? AND {key_sql}",
            [(feed, *(r[k] for k in _VERSION_KEYS)) for r in v_removed + v_changed],
        )
        conn.executemany(
            "DELETE FROM incidents WHERE feed = ? AND incident_id = ?",
            [(feed, r["incident_id"]) for r in i_removed],
        )
        if i_changed:
            names = [k for k in i_changed[0] if k not in ("feed", "incident_id")]
            conn.executemany(
                f"UPDATE incidents SET {', '.join(f'{n} = ?' for n in names)} "
                "WHERE feed = ? AND incident_id = ?",
                [(*(r[n] for n in names), feed, r["incident_id"]) for r in i_changed],
            )
        _insert(conn, "incidents", i_added)
        _insert(conn, "incident_versions", v_added + v_changed)
        conn.execute(COMPACT_VALUES)
        conn.executemany(
            f"UPDATE polls SET {', '.join(f'{n} = ?' for n in _POLL_FIELDS)} WHERE id = ?",
            [(*(fields[n] for n in _POLL_FIELDS), poll_id) for poll_id, fields in poll_updates],
        )
    result.written = True
    return result


def _later_versions(archive: Archive, feed: str, last_id: int) -> int:
    """Versions of ``feed`` written by polls after ``last_id``."""
    with archive._lock:
        return int(
            archive.conn.execute(
                "SELECT count(*) FROM incident_versions WHERE feed = ? AND poll_id > ?",
                [feed, last_id],
            ).fetchone()[0]
        )


def _insert(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = list(rows[0])
    conn.executemany(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [[r[n] for n in names] for r in rows],
    )


def reparse_json(result: ReparseResult) -> str:
    return json.dumps(
        {
            "feed": result.feed, "polls": result.polls, "first": result.first,
            "last": result.last, "incidents": dict(result.incidents),
            "versions": dict(result.versions), "polls_changed": result.polls_changed,
            "fields": dict(result.fields), "written": result.written,
        }
    )  # fmt: skip


__all__ = ["ArchiveError", "ReparseError", "ReparseResult", "reparse"]
