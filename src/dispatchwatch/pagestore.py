"""The raw page store: every parsed response body, compressed, so history can be re-parsed.

Tables (created by migration 4):

- ``pages``: one row per distinct body of a feed (``UNIQUE (feed, sha256)``), compressed with
  zstandard. A body is stored as a *delta* against the feed's previous body of the same
  request slot (zstd with that body as a raw-content dictionary, like ``zstd --patch-from``),
  in chains of at most :data:`CHAIN` pages that start with a self-contained page. Consecutive
  pages of a feed share most of their bytes, so this beats both plain zstd (~10-19x) and a
  trained dictionary (~12x) by an order of magnitude (see ``bench/pages.py``).
- ``poll_pages``: which bodies each poll parsed, in order (``seq``), with what ``parse`` needs
  to run again: the URL, the status, a few response headers, and the request (URL, params,
  label and ``meta``; never the request's headers, which may hold an app token).

Retention per feed (``keep_pages:`` in config.yaml, :func:`parse_retention`): an age, a size,
or both; ``0`` stores nothing and lets :func:`prune` delete what was stored. Pruning deletes
whole chains (a delta is useless without its base), each in its own short transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import zstandard

if TYPE_CHECKING:
    import sqlite_utils

    from .archive import Archive
    from .scraper import Request

T = TypeVar("T")

#: Longest delta chain: reading a page decompresses at most this many bodies.
CHAIN = 32
#: zstd level: 3 compresses ~100 MB/s; level 19 gains ~10% more for ~50x the time.
LEVEL = 3
#: Response headers kept with a page (what a parse may look at; never cookies).
KEPT_HEADERS = ("content-type", "last-modified", "etag", "date")
KEPT_HEADER_PREFIXES = ("x-soda2-",)
#: Decompressed bodies kept in memory (bytes), so the next delta of a feed and a reparse
#: do not rebuild chains; keyed by SHA-256, so any archive may share it.
CACHE_BYTES = 8 * 1024 * 1024
#: Default retention of a feed's pages.
DEFAULT_AGE = 90 * 86400.0


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of a feed's raw pages to keep: pages last used within ``age`` seconds and/or
    the newest ``size`` bytes (compressed). Neither set: keep nothing (``keep_pages: 0``)."""

    age: float | None = None
    size: int | None = None

    @property
    def keeps(self) -> bool:
        return self.age is not None or self.size is not None

    def describe(self) -> str:
        if not self.keeps:
            return "0"
        parts = []
        if self.age is not None:
            parts.append(f"{self.age / 86400:g}d")
        if self.size is not None:
            parts.append(f"{self.size / 1024**2:g}MB")
        return " ".join(parts)


DEFAULT_RETENTION = Retention(age=DEFAULT_AGE)
OFF = Retention()

_SIZE_WORD = re.compile(r"^\d+(\.\d+)?\s*[kmg]?b$", re.I)


def parse_retention(value: Any) -> Retention:
    """``keep_pages`` -> :class:`Retention`. ``0`` (or ``false``): keep none; an age
    (``90d``, ``12h``); a size with a ``B`` unit (``500MB``, ``2GB``); or both, separated by
    a space or comma (``30d 1GB``: whichever prunes more). Raises ValueError otherwise."""
    from .config import parse_duration, parse_size

    if value is False or value == 0 or (isinstance(value, str) and value.strip() == "0"):
        return OFF
    if value is True or not isinstance(value, str | int | float):
        raise ValueError(f"not a retention: {value!r} (use e.g. 90d, 500MB, '30d 1GB' or 0)")
    age: float | None = None
    size: int | None = None
    for word in str(value).replace(",", " ").split():
        if _SIZE_WORD.match(word):
            if size is not None:
                raise ValueError(f"two sizes in {value!r}")
            size = parse_size(word, maximum=1024**5)
        else:
            if age is not None:
                raise ValueError(f"two ages in {value!r}")
            try:
                age = parse_duration(word)
            except ValueError:
                raise ValueError(
                    f"not a retention: {value!r} (use e.g. 90d, 500MB, '30d 1GB' or 0)"
                ) from None
    return Retention(age, size)


@dataclass(slots=True)
class Response:
    """One response a poll parsed, as the page store keeps it."""

    body: bytes
    url: str
    status: int | None = None
    headers: Mapping[str, str] | None = None
    request: Request | None = None
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.body).hexdigest()


def _migration(db: sqlite_utils.Database) -> None:
    """Migration 4: ``pages``, ``poll_pages`` and ``polls.scraper_version``."""
    db.execute(
        """CREATE TABLE pages (
  id INTEGER PRIMARY KEY,
  feed TEXT NOT NULL REFERENCES feeds(slug),
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  slot INTEGER NOT NULL DEFAULT 0,
  base INTEGER REFERENCES pages(id),
  chain INTEGER NOT NULL,
  depth INTEGER NOT NULL,
  first_at TEXT NOT NULL,
  last_at TEXT NOT NULL,
  body BLOB NOT NULL
)"""
    )
    db.execute("CREATE UNIQUE INDEX pages_feed_sha256 ON pages (feed, sha256)")
    # The previous page of a feed's request slot (the base of the next delta).
    db.execute("CREATE INDEX pages_feed_slot ON pages (feed, slot, id)")
    db.execute("CREATE INDEX pages_chain ON pages (chain)")
    db.execute(
        """CREATE TABLE poll_pages (
  poll_id INTEGER NOT NULL REFERENCES polls(id),
  seq INTEGER NOT NULL,
  page_id INTEGER NOT NULL REFERENCES pages(id),
  url TEXT,
  status INTEGER,
  headers TEXT,
  request TEXT,
  PRIMARY KEY (poll_id, seq)
) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX poll_pages_page ON poll_pages (page_id)")
    db.execute("ALTER TABLE polls ADD COLUMN scraper_version TEXT")


# --- the body cache --------------------------------------------------------------------------


class _Cache:
    """Decompressed bodies by SHA-256, least recently used first out, bounded in bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, sha256: str) -> bytes | None:
        with self._lock:
            body = self._items.get(sha256)
            if body is not None:
                self._items.move_to_end(sha256)
            return body

    def put(self, sha256: str, body: bytes) -> None:
        if len(body) > self.limit // 4:
            return
        with self._lock:
            if sha256 in self._items:
                self._items.move_to_end(sha256)
                return
            self._items[sha256] = body
            self._bytes += len(body)
            while self._bytes > self.limit:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old)


_cache = _Cache(CACHE_BYTES)

# --- bodies compressed ahead -----------------------------------------------------------------

#: Blobs compressed before their poll is archived (by ``ingest``'s parse-ahead process), by
#: (SHA-256 of the body, SHA-256 of the base body or ""): :func:`store_pages` takes one
#: instead of compressing again when its own base is that one (zstd gives the same bytes
#: for the same body, base and level). Bounded: a few pages ahead at most.
_AHEAD = 4
_ahead: OrderedDict[tuple[str, str], bytes] = OrderedDict()
_ahead_lock = threading.Lock()


def compress_ahead(body: bytes, base: bytes | None) -> bytes:
    """``body`` compressed as :func:`store_pages` would with ``base`` as its base."""
    return _compress(body, base)


def offer_compressed(sha256: str, base_sha256: str | None, blob: bytes) -> None:
    """Offer :func:`store_pages` the blob :func:`compress_ahead` made of the body ``sha256``
    with the body ``base_sha256`` (None: no base) as its base."""
    with _ahead_lock:
        _ahead[(sha256, base_sha256 or "")] = blob
        while len(_ahead) > _AHEAD:
            _ahead.popitem(last=False)


def _compressed(body: bytes, sha256: str, base: bytes | None, base_sha256: str | None) -> bytes:
    with _ahead_lock:
        blob = _ahead.pop((sha256, base_sha256 or ""), None)
    return _compress(body, base) if blob is None else blob


def _compress(body: bytes, base: bytes | None) -> bytes:
    if base is None:
        return zstandard.ZstdCompressor(level=LEVEL).compress(body)
    dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary).compress(body)


def _decompress(blob: bytes, base: bytes | None) -> bytes:
    if base is None:
        return zstandard.ZstdDecompressor().decompress(blob)
    dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdDecompressor(dict_data=dictionary).decompress(blob)


def load_page(conn: sqlite3.Connection, page_id: int) -> bytes:
    """The body of ``pages.id = page_id``, rebuilt through its delta chain. Raises KeyError
    when the page (or a page of its chain) is not stored."""
    pending: list[tuple[str, bytes]] = []  # (sha256, compressed) from the page back
    body: bytes | None = None
    current: int | None = page_id
    while current is not None:
        row = conn.execute("SELECT sha256, base FROM pages WHERE id = ?", [current]).fetchone()
        if row is None:
            raise KeyError(f"page {current} is not stored")
        sha256, base = row
        body = _cache.get(sha256)
        if body is not None:
            break
        blob = conn.execute("SELECT body FROM pages WHERE id = ?", [current]).fetchone()[0]
        pending.append((sha256, blob))
        current = base
    for sha256, blob in reversed(pending):
        body = _decompress(blob, body)
        _cache.put(sha256, body)
    assert body is not None
    return body


# --- storing ---------------------------------------------------------------------------------


def _kept_headers(headers: Mapping[str, str] | None) -> str | None:
    if not headers:
        return None
    kept = {
        k.lower(): v
        for k, v in headers.items()
        if k.lower() in KEPT_HEADERS or k.lower().startswith(KEPT_HEADER_PREFIXES)
    }
    return json.dumps(kept, sort_keys=True) if kept else None


def request_json(request: Request | None) -> str | None:
    """What a re-parse needs of a request: URL, params, label, meta (never its headers, nor
    any meta value that holds one)."""
    if request is None:
        return None

    def dumps(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)

    # A scraper may carry its request headers (an app token) in meta for the next page:
    # whatever holds a header's value is left out.
    secrets = [value for _, value in request.headers if value]
    meta = {
        key: value
        for key, value in request.meta.items()
        if not any(secret in dumps(value) for secret in secrets)
    }
    return dumps(
        {
            "url": request.url,
            "params": [list(pair) for pair in request.params],
            "label": request.label,
            "conditional": request.conditional,
            "meta": meta,
        }
    )


def request_from_json(text: str | None) -> Request | None:
    from .scraper import Request

    if not text:
        return None
    data = json.loads(text)
    return Request(
        data["url"],
        params=tuple((str(k), str(v)) for k, v in data.get("params", ())),
        meta=data.get("meta") or {},
        conditional=bool(data.get("conditional")),
        label=data.get("label") or "",
    )


def store_pages(
    conn: sqlite3.Connection,
    feed: str,
    poll_id: int,
    responses: Sequence[Response],
    at: str,
) -> int:
    """Store the responses of poll ``poll_id`` (inside the caller's transaction) and link
    them to it in order. ``at`` is the time (UTC text) retention counts from. Returns the
    compressed bytes added (0 when every body was already stored)."""
    added = 0
    for seq, response in enumerate(responses):
        row = conn.execute(
            "SELECT id FROM pages WHERE feed = ? AND sha256 = ?", [feed, response.sha256]
        ).fetchone()
        if row is not None:
            page_id = row[0]
            conn.execute("UPDATE pages SET last_at = ? WHERE id = ?", [at, page_id])
        else:
            slot = min(seq, 1000)
            previous = conn.execute(
                "SELECT id, sha256, chain, depth FROM pages WHERE feed = ? AND slot = ? "
                "ORDER BY id DESC LIMIT 1",
                [feed, slot],
            ).fetchone()
            base_id: int | None = None
            base_body: bytes | None = None
            depth = 0
            if previous is not None and previous[3] + 1 < CHAIN:
                base_id, depth = previous[0], previous[3] + 1
                try:
                    base_body = load_page(conn, base_id)
                except KeyError:  # its chain was pruned under it: start a new one
                    base_id, depth = None, 0
            base_sha256 = previous[1] if base_id is not None and previous is not None else None
            blob = _compressed(response.body, response.sha256, base_body, base_sha256)
            cursor = conn.execute(
                "INSERT INTO pages (feed, sha256, size, slot, base, chain, depth, first_at, "
                "last_at, body) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                [feed, response.sha256, len(response.body), slot, base_id, depth, at, at, blob],
            )
            page_id = cursor.lastrowid
            chain = previous[2] if base_id is not None and previous is not None else page_id
            conn.execute("UPDATE pages SET chain = ? WHERE id = ?", [chain, page_id])
            _cache.put(response.sha256, response.body)
            added += len(blob)
        conn.execute(
            "INSERT INTO poll_pages (poll_id, seq, page_id, url, status, headers, request) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                poll_id,
                seq,
                page_id,
                response.url,
                response.status,
                _kept_headers(response.headers),
                request_json(response.request),
            ],
        )
    return added


@dataclass(slots=True)
class StoredResponse:
    """A stored response of a poll, ready to be parsed again."""

    seq: int
    body: bytes
    url: str
    status: int | None
    headers: dict[str, str]
    request: Request | None


def poll_responses(conn: sqlite3.Connection, poll_id: int) -> list[StoredResponse] | None:
    """The responses poll ``poll_id`` parsed, in order; None when none are stored (or one of
    them was pruned)."""
    rows = conn.execute(
        "SELECT seq, page_id, url, status, headers, request FROM poll_pages "
        "WHERE poll_id = ? ORDER BY seq",
        [poll_id],
    ).fetchall()
    if not rows:
        return None
    out = []
    for seq, page_id, url, status, headers, request in rows:
        try:
            body = load_page(conn, page_id)
        except KeyError:
            return None
        out.append(
            StoredResponse(
                seq, body, url or "", status, json.loads(headers) if headers else {},
                request_from_json(request),
            )
        )  # fmt: skip
    return out


# --- retention -------------------------------------------------------------------------------


@dataclass(slots=True)
class PruneResult:
    feeds: int = 0
    chains: int = 0
    pages: int = 0
    bytes: int = 0


def _cutoff(now: datetime, age: float) -> str:
    from .archive import format_time

    return format_time(now - timedelta(seconds=age))


def _chains_to_prune(
    conn: sqlite3.Connection, feed: str, retention: Retention, cut: str | None
) -> list[int]:
    """Chains of ``feed`` that retention lets go, oldest first."""
    rows = conn.execute(
        "SELECT chain, max(last_at), sum(length(body)) FROM pages WHERE feed = ? "
        "GROUP BY chain ORDER BY chain",
        [feed],
    ).fetchall()
    if not retention.keeps:
        return [row[0] for row in rows]
    doomed: set[int] = set()
    if cut is not None:
        doomed |= {chain for chain, last_at, _ in rows if last_at < cut}
    if retention.size is not None:
        total = sum(size for chain, _, size in rows if chain not in doomed)
        for chain, _, size in rows:  # oldest first
            if total <= retention.size:
                break
            if chain not in doomed:
                doomed.add(chain)
                total -= size
    return sorted(doomed)


def prune(
    archive: Archive,
    retention: Mapping[str, Retention],
    *,
    now: datetime | None = None,
    use: Callable[[Callable[[], T]], T] | None = None,
    stop: threading.Event | None = None,
) -> PruneResult:
    """Delete the pages of each feed that its retention lets go: whole chains, one short
    transaction per chain (so polls interleave). Feeds not in ``retention`` keep their pages.
    ``use`` wraps each archive access (the daemon's guard); ``stop`` ends early."""
    now = now or datetime.now(UTC)
    run: Callable[[Callable[[], Any]], Any] = use or (lambda action: action())
    result = PruneResult()
    for feed, policy in retention.items():
        if stop is not None and stop.is_set():
            break
        cut = _cutoff(now, policy.age) if policy.age is not None else None

        def plan(feed: str = feed, policy: Retention = policy, cut: str | None = cut) -> list[int]:
            with archive._lock:
                return _chains_to_prune(archive.conn, feed, policy, cut)

        chains = run(plan)
        if chains:
            result.feeds += 1
        for chain in chains:
            if stop is not None and stop.is_set():
                break

            def delete(chain: int = chain) -> tuple[int, int]:
                with archive.transaction() as conn:
                    pages, size = conn.execute(
                        "SELECT count(*), coalesce(sum(length(body)), 0) FROM pages "
                        "WHERE chain = ?",
                        [chain],
                    ).fetchone()
                    conn.execute(
                        "DELETE FROM poll_pages WHERE page_id IN "
                        "(SELECT id FROM pages WHERE chain = ?)",
                        [chain],
                    )
                    # One statement: foreign keys (base) are checked at its end.
                    conn.execute("DELETE FROM pages WHERE chain = ?", [chain])
                return pages, size

            pages, size = run(delete)
            result.chains += 1
            result.pages += pages
            result.bytes += size
    return result


def page_stats(conn: sqlite3.Connection, feeds: Iterable[str] | None = None) -> dict[str, Any]:
    """Stored pages: count, raw and compressed bytes, and their ratio."""
    where, params = "", []
    if feeds is not None:
        feeds = list(feeds)
        where = f"WHERE feed IN ({', '.join('?' * len(feeds))})"
        params = feeds
    count, raw, packed = conn.execute(
        f"SELECT count(*), coalesce(sum(size), 0), coalesce(sum(length(body)), 0) "
        f"FROM pages {where}",
        params,
    ).fetchone()
    return {
        "pages": count,
        "raw_bytes": raw,
        "stored_bytes": packed,
        "ratio": round(raw / packed, 1) if packed else None,
    }
