"""Watch rules: notify on NEW incidents that match, through apprise, at most once per rule.

A rule in config.yaml (see the README's "Alerts" section)::

    alerts:
      shots-downtown:
        feeds: [milwaukee-police]          # default: every feed
        call_types: ["SHOTS FIRED"]        # case-insensitive substring of call_type
        districts: ["1", "2"]              # exact (case-insensitive)
        beats: ["1A"]                      # exact (case-insensitive)
        address_prefix: "15XX N SUMMIT"    # case-insensitive prefix of the address
        bbox: [-87.95, 43.02, -87.89, 43.07]   # west, south, east, north (degrees)
        notify: ["json://127.0.0.1:8080/hook", "mailto://user:${SMTP_PASS}@example.org"]

Every given condition must hold (AND); inside a list any value may match (OR).

Bookkeeping is the ``alerts_sent`` table (one row per rule, feed and incident: the row is
inserted when the incident first matches, ``sent_at`` set (UTC) when apprise delivered it),
so an incident is notified at most once per rule across restarts. A failed delivery is
retried with exponential backoff (:data:`RETRY_BASE` seconds doubling, capped at
:data:`RETRY_MAX`) up to :data:`MAX_ATTEMPTS` attempts. Sending happens on a background
thread (:class:`AlertWorker`), fed the poll ids of committed polls: it never blocks polling.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .versions import NEW_IN_POLL

if TYPE_CHECKING:
    import yaml  # imported where a config is parsed (a new archive imports this module)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
RETRY_BASE = 2.0  # seconds
RETRY_MAX = 3600.0  # seconds
RULE_KEYS = {"feeds", "call_types", "districts", "beats", "address_prefix", "bbox", "notify"}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

ALERTS_SENT_SQL = """
CREATE TABLE IF NOT EXISTS alerts_sent (
  rule TEXT NOT NULL,
  feed TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  sent_at TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  next_at TEXT,
  matched_at TEXT NOT NULL,
  PRIMARY KEY (rule, feed, incident_id)
)
"""


@dataclass(frozen=True)
class AlertRule:
    name: str
    notify: tuple[str, ...]
    feeds: tuple[str, ...] | None = None
    call_types: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    beats: tuple[str, ...] = ()
    address_prefix: str | None = None
    #: (west, south, east, north) in degrees.
    bbox: tuple[float, float, float, float] | None = None

    def matches(self, feed: str, row: dict[str, Any]) -> bool:
        """Whether an incident (a row with the archive's columns) of ``feed`` matches."""
        if self.feeds is not None and feed not in self.feeds:
            return False
        if self.call_types:
            call = (row.get("call_type") or "").casefold()
            if not any(c.casefold() in call for c in self.call_types):
                return False
        if self.districts and (row.get("district") or "").strip().casefold() not in {
            d.casefold() for d in self.districts
        }:
            return False
        if self.beats and (row.get("beat") or "").strip().casefold() not in {
            b.casefold() for b in self.beats
        }:
            return False
        if self.address_prefix and not (row.get("address") or "").casefold().startswith(
            self.address_prefix.casefold()
        ):
            return False
        if self.bbox is not None:
            lat, lon = row.get("latitude"), row.get("longitude")
            if lat is None or lon is None:
                return False
            west, south, east, north = self.bbox
            if not (west <= lon <= east and south <= lat <= north):
                return False
        return True


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create ``alerts_sent`` if missing (called by migration 6, and by the worker for
    archives migrated before the table existed)."""
    conn.execute(ALERTS_SENT_SQL)


# --- config ----------------------------------------------------------------------------------


def parse_alerts(
    data: Any, node: yaml.Node | None, path: Path | None, feeds: set[str]
) -> dict[str, AlertRule]:
    """The ``alerts:`` mapping of config.yaml -> rules by name. Raises
    :class:`ConfigError` naming the key and line."""
    import yaml

    from .config import _mapping, _where

    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{_where(node, path)}: alerts must be a mapping of rule name to rule")
    nodes = _mapping(node)
    rules: dict[str, AlertRule] = {}
    for name, options in data.items():
        key_node, value_node = nodes[name]
        where = _where(key_node, path)
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            raise ConfigError(
                f"{where}: alert rule name {key_node.value!r} must be lower-case letters, "
                "digits, - or _"
            )
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: alerts.{name} must be a mapping")
        opt_nodes = _mapping(value_node)

        def at(key: str, _nodes: Any = opt_nodes, _where_rule: str = where) -> str:
            return _where(_nodes[key][0], path) if key in _nodes else _where_rule

        for key in options:
            if key not in RULE_KEYS:
                raise ConfigError(
                    f"{at(key)}: alerts.{name}: unknown key {key!r} "
                    f"(expected one of: {', '.join(sorted(RULE_KEYS))})"
                )

        def texts(key: str, _options: dict[str, Any] = options, _name: str = name) -> tuple:
            value = _options.get(key)
            if value is None:
                return ()
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                value = [value]
            if (
                not isinstance(value, list)
                or not value
                or not all(
                    isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip()
                    for v in value
                )
            ):
                raise ConfigError(f"{at(key)}: alerts.{_name}.{key} must be a list of texts")
            return tuple(str(v).strip() for v in value)

        rule_feeds = texts("feeds") or None
        for slug in rule_feeds or ():
            if slug not in feeds:
                raise ConfigError(f"{at('feeds')}: alerts.{name}.feeds: unknown feed {slug!r}")
        prefix = options.get("address_prefix")
        if prefix is not None and (not isinstance(prefix, str) or not prefix.strip()):
            raise ConfigError(f"{at('address_prefix')}: alerts.{name}.address_prefix must be text")
        bbox = options.get("bbox")
        if bbox is not None:
            if (
                not isinstance(bbox, list)
                or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
                or not (-180 <= bbox[0] < bbox[2] <= 180 and -90 <= bbox[1] < bbox[3] <= 90)
            ):
                raise ConfigError(
                    f"{at('bbox')}: alerts.{name}.bbox must be [west, south, east, north] in "
                    "degrees (west < east, south < north)"
                )
            bbox = tuple(float(v) for v in bbox)
        if "notify" not in options:
            raise ConfigError(f"{where}: alerts.{name}: missing key 'notify' (apprise URLs)")
        urls = texts("notify")
        rules[name] = AlertRule(
            name=name,
            notify=tuple(_checked_url(u, f"{at('notify')}: alerts.{name}.notify") for u in urls),
            feeds=rule_feeds,
            call_types=texts("call_types"),
            districts=texts("districts"),
            beats=texts("beats"),
            address_prefix=prefix.strip() if prefix else None,
            bbox=bbox,
        )
    return rules


def _checked_url(url: str, where: str) -> str:
    """``${VAR}`` checked against the environment; the URL is kept with its references (so
    secrets are expanded only when sending) and checked with apprise."""
    for var in _ENV.findall(url):
        if var not in os.environ:
            raise ConfigError(f"{where}: environment variable {var} is not set")
    try:
        import apprise
    except ImportError:
        raise ConfigError(
            f"{where}: alerts need apprise: pip install 'dispatchwatch[alerts]'"
        ) from None
    if not apprise.Apprise().add(_expand(url)):
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        raise ConfigError(f"{where}: apprise does not accept this URL (scheme {scheme!r})")
    return url


def _expand(url: str) -> str:
    return _ENV.sub(lambda m: os.environ.get(m.group(1), ""), url)


# --- matching and sending --------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _fmt(moment: datetime) -> str:
    from .archive import format_time

    return format_time(moment)


def record_matches(conn: sqlite3.Connection, rules: dict[str, AlertRule], poll_id: int) -> int:
    """Insert an ``alerts_sent`` row (not yet sent) for each rule matching an incident that
    poll ``poll_id`` saw for the first time. Returns how many rows were new."""
    conn.row_factory = sqlite3.Row
    rows = conn.execute(
        f"SELECT * FROM incident_versions WHERE id IN ({NEW_IN_POLL}) ORDER BY id",
        (poll_id,),
    ).fetchall()
    now = _fmt(_now())
    added = 0
    with conn:
        for row in rows:
            data = dict(row)
            for rule in rules.values():
                if rule.matches(data["feed"], data):
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO alerts_sent (rule, feed, incident_id, attempts, "
                        "matched_at) VALUES (?, ?, ?, 0, ?)",
                        (rule.name, data["feed"], data["incident_id"], now),
                    )
                    added += cur.rowcount
    return added


def _message(row: dict[str, Any], rule: str) -> tuple[str, str]:
    title = f"[{rule}] {row.get('call_type') or 'call'}: {row.get('address') or ''}".strip()
    lines = [
        f"{key}: {row[key]}"
        for key in ("feed", "incident_id", "received_at", "call_type", "address", "district")
        if row.get(key) not in (None, "")
    ]
    return title, "\n".join(lines)


def send_due(
    conn: sqlite3.Connection, rules: dict[str, AlertRule], *, now: datetime | None = None
) -> int:
    """Try every unsent, due ``alerts_sent`` row of a configured rule once. Returns how many
    were delivered."""
    import apprise

    now = now or _now()
    conn.row_factory = sqlite3.Row
    due = conn.execute(
        "SELECT a.rule, a.feed, a.incident_id, a.attempts, i.call_type, i.address, "
        "i.received_at, i.district FROM alerts_sent a LEFT JOIN incidents i "
        "ON i.feed = a.feed AND i.incident_id = a.incident_id "
        "WHERE a.sent_at IS NULL AND a.attempts < ? AND (a.next_at IS NULL OR a.next_at <= ?) "
        "ORDER BY a.matched_at",
        (MAX_ATTEMPTS, _fmt(now)),
    ).fetchall()
    delivered = 0
    for row in due:
        rule = rules.get(row["rule"])
        if rule is None:
            continue
        title, body = _message(dict(row), rule.name)
        notifier = apprise.Apprise()
        for url in rule.notify:
            notifier.add(_expand(url))
        try:
            ok = bool(notifier.notify(title=title, body=body))
            error = None if ok else "apprise reported a failed delivery"
        except Exception as exc:  # a plugin bug must not kill the worker
            ok, error = False, f"{type(exc).__name__}"
        attempts = row["attempts"] + 1
        key = (row["rule"], row["feed"], row["incident_id"])
        with conn:
            if ok:
                conn.execute(
                    "UPDATE alerts_sent SET sent_at = ?, attempts = ?, last_error = NULL, "
                    "next_at = NULL WHERE rule = ? AND feed = ? AND incident_id = ?",
                    (_fmt(_now()), attempts, *key),
                )
                delivered += 1
            else:
                delay = min(RETRY_BASE * 2 ** (attempts - 1), RETRY_MAX)
                conn.execute(
                    "UPDATE alerts_sent SET attempts = ?, last_error = ?, next_at = ? "
                    "WHERE rule = ? AND feed = ? AND incident_id = ?",
                    (attempts, error, _fmt(_now() + timedelta(seconds=delay)), *key),
                )
                log.warning(
                    "alert %s for %s/%s: attempt %d failed (%s)",
                    rule.name, row["feed"], row["incident_id"], attempts, error,
                )  # fmt: skip
    return delivered


class AlertWorker:
    """A background thread that records matches of committed polls and sends them.

    :meth:`submit` (called from the daemon's ``on_poll``) only queues the poll id; the worker
    has its own SQLite connection to ``database``. Due retries are tried every ``tick``
    seconds."""

    def __init__(self, database: Path, rules: dict[str, AlertRule], *, tick: float = 1.0) -> None:
        self.database = database
        self.rules = rules
        self.tick = tick
        self._queue: queue.Queue[int] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatchwatch-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, poll_id: int) -> None:
        self._queue.put(poll_id)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        conn = sqlite3.connect(self.database, timeout=30, isolation_level=None,
                               check_same_thread=False)  # fmt: skip
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            with conn:
                ensure_tables(conn)
            while True:
                try:
                    poll_id: int | None = self._queue.get(timeout=self.tick)
                except queue.Empty:
                    poll_id = None
                try:
                    if poll_id is not None:
                        record_matches(conn, self.rules, poll_id)
                    send_due(conn, self.rules)
                except Exception:
                    log.exception("alerts: a pass failed (will retry)")
                if self._stop.is_set() and self._queue.empty():
                    break
        finally:
            conn.close()


def atom_query_name(rule: str) -> str:
    """The Datasette canned query of a rule's Atom feed: ``alerts_<rule>`` with ``-`` as
    ``_`` (``shots-fired`` -> ``alerts_shots_fired``; the feed is its ``.atom``)."""
    return f"alerts_{rule.replace('-', '_')}"


def rule_names(conn: sqlite3.Connection, rules: Iterable[str] = ()) -> list[str]:
    """Sorted: the names in ``rules`` (the configured ones) and every rule that ever matched
    in this archive (``alerts_sent``), so a rule removed from the config keeps its feed."""
    names = set(rules)
    # An archive from before alerts has no table: only the configured rules (empty feeds).
    with contextlib.suppress(sqlite3.Error):
        names.update(r[0] for r in conn.execute("SELECT DISTINCT rule FROM alerts_sent"))
    return sorted(names)


def atom_queries(
    conn: sqlite3.Connection, rules: Iterable[str] = (), *, simulated: bool = False
) -> dict[str, dict[str, Any]]:
    """Datasette canned queries, one per watch rule of :func:`rule_names`, each an Atom
    feed through datasette-atom (``/<db>/alerts_<rule>.atom``). A configured rule that has
    not fired yet has a valid, empty feed. ``simulated`` (a demo archive): the feed's title
    and every entry's title say so, as a feed reader shows them away from the site."""
    queries = {}
    for name in rule_names(conn, rules):
        sql = ATOM_SQL.replace(":rule_name", _sql_text(name))
        queries[atom_query_name(name)] = {
            "title": f"SIMULATED Alert: {name} (dispatchwatch demo)"
            if simulated
            else f"Alert: {name}",
            "description": f"New calls that matched the watch rule {name!r}, newest first "
            "(Atom feed: add .atom to this page's address)."
            + (" Invented by the demo: not real calls." if simulated else ""),
            "sql": sql.replace(":title_prefix", _sql_text("SIMULATED: " if simulated else "")),
            "hide_sql": True,
        }
    return queries


def _sql_text(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


#: The call first (what a person reads on the page), then the columns datasette-atom reads
#: by name for each entry.
ATOM_SQL = """
SELECT
  i.received_at, i.call_type, i.address, a.feed, a.incident_id, a.sent_at, a.attempts,
  'tag:dispatchwatch,2026:' || a.rule || '/' || a.feed || '/' || a.incident_id AS atom_id,
  :title_prefix || coalesce(i.call_type, 'call') || ': ' || coalesce(i.address, '')
    AS atom_title,
  a.matched_at AS atom_updated,
  'Feed ' || a.feed || ', call ' || a.incident_id || ', received '
    || coalesce(i.received_at, '?') || coalesce(', district ' || i.district, '')
    AS atom_content
FROM alerts_sent a
LEFT JOIN incidents i ON i.feed = a.feed AND i.incident_id = a.incident_id
WHERE a.rule = :rule_name
ORDER BY a.matched_at DESC
LIMIT 200
"""
