"""Parse processes: changed pages parsed and normalized on the machine's other cores.

One process runs Python on one core at a time (the GIL), and parsing and normalizing a changed
page is most of a first poll's CPU (a Seattle day log of ~260 rows: ~20 ms of lxml tree and cell
texts, then normalization; the poll's fetch, its one write and its report are the rest). Both
are a pure function of the body and the feed's config, so the daemon hands them to child
processes: a poll holding a parse slot sends ``(feed, body, url, headers, request)`` to an idle
child, which runs the feed's scraper and :func:`~dispatchwatch.pipeline.normalize` exactly as the
poll would and sends back the raw rows and the normalized incidents (as tuples: they pickle and
unpickle in C); with a feed's first page it also sends that page compressed for the raw page
store (a first page has no base: the same bytes :func:`~dispatchwatch.pagestore.store_pages`
would make). Everything else (the plan, the fetch, the diff, the one transaction a poll, the
report) stays in the daemon. When no child is left, none is idle or answers by the poll's
deadline, the child died, the page did not parse there (its error is recorded by parsing it
again here, so the poll's error is the same), or the feed does not pickle (a plugin loaded from
a file the child cannot import), the poll parses here as it always did (``None`` from
:meth:`parse`).

The children are forked when the daemon starts, before its first thread (a fork copies only the
calling thread: forking later could copy a lock another thread holds), so they start at once
with everything imported, the plugins included, and share the daemon's memory copy-on-write. A
daemon started in a process that already runs threads starts none (:attr:`count` is 0). The
children ignore Ctrl-C (the daemon stops them) and exit when the daemon's end of their pipe
closes, also when the daemon is killed.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import operator
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from .. import pagestore
from ..incident import Incident
from ..scraper import Page, ParseResult, RawRow
from . import memory

if TYPE_CHECKING:
    from ..config import Feed

__all__ = ["ParseProcesses", "default_count"]

log = logging.getLogger("dispatchwatch.daemon")

#: An incident's / a raw row's fields in the constructor's order, as one tuple.
_incident_tuple = operator.attrgetter(*Incident.__dataclass_fields__)
_row_tuple = operator.attrgetter(*RawRow.__dataclass_fields__)

#: What a child sends back: the scraper's result, the normalized incidents, their "as of" (UTC).
Parsed = tuple[ParseResult, list[Incident], "str | None"]


def default_count() -> int:
    """Parse processes by default: one per CPU beyond the daemon's own, at least one."""
    return max(1, (os.cpu_count() or 1) - 1)


def _can_fork() -> bool:
    return (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and "fork" in multiprocessing.get_all_start_methods()
    )


class _Child:
    __slots__ = ("process", "conn")

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn


class ParseProcesses:
    """Up to ``count`` forked parse processes (thread-safe; see the module docstring)."""

    def __init__(self, count: int) -> None:
        self._lock = threading.Condition()
        self._idle: list[_Child] = []
        self._all: list[_Child] = []
        #: Feeds whose first page went to a child: it also compresses that one for the raw
        #: page store (a feed's first stored page has no base; later ones are compressed
        #: against the page before, which only this process has).
        self._sent: set[str] = set()
        if count <= 0 or not _can_fork():
            return
        context = multiprocessing.get_context("fork")
        # What exists now (modules, config) lives as long as the daemon: out of the
        # collector's sight, in the daemon and in the children, whose copy-on-write pages a
        # collection would otherwise touch and copy.
        gc.freeze()
        for _ in range(count):
            mine, theirs = context.Pipe(duplex=True)
            # The child closes the daemon's ends of the pipes forked before it, so that each
            # sees EOF when the daemon goes.
            others = [child.conn for child in self._all] + [mine]
            process = context.Process(
                target=_serve, args=(theirs, others), name="dispatchwatch-parse", daemon=True
            )
            process.start()
            theirs.close()
            child = _Child(process, mine)
            self._all.append(child)
            self._idle.append(child)

    @property
    def count(self) -> int:
        """Children alive (or not yet known dead)."""
        with self._lock:
            return len(self._all)

    def pids(self) -> list[int]:
        with self._lock:
            return [child.process.pid for child in self._all]

    def parse(self, feed: Feed, page: Page, deadline: float | None = None) -> Parsed | None:
        """``feed``'s scraper's result for ``page`` and :func:`~dispatchwatch.pipeline.normalize`
        of its rows, computed by a child (waiting for one to be idle: this process has the
        archive's writes to do meanwhile); None when the caller must do it (no child left,
        none idle or the child's answer not there by ``deadline`` (:func:`time.monotonic`),
        the child died, or the page did not parse there)."""
        with self._lock:
            while self._all and not self._idle:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return None
                self._lock.wait(wait if wait is None else min(wait, 1.0))
            if not self._idle:
                return None
            child = self._idle.pop()
            compress = feed.slug not in self._sent and feed.keep_pages.keeps
            self._sent.add(feed.slug)
        answer = None
        try:
            message = (feed, page.body, page.url, dict(page.headers), page.request, compress)
            child.conn.send(message)
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if child.conn.poll(wait):
                answer = child.conn.recv()
            else:
                self._drop(child, "took past the poll's deadline")
                return None
        except Exception as exc:  # noqa: BLE001 - a feed that does not pickle, a child that died
            if isinstance(exc, OSError | EOFError):
                self._drop(child, f"stopped ({type(exc).__name__})")
                return None
            log.debug("%s: parsed in the daemon (%s)", feed.slug, exc)
        with self._lock:
            if child in self._all:
                self._idle.append(child)
                self._lock.notify()
        if answer is None:
            return None
        rows, result, incidents, as_of, ahead = answer
        if ahead is not None:
            pagestore.offer_compressed(ahead[0], None, ahead[1])
        return (
            replace(result, rows=[RawRow(*row) for row in rows]),
            [Incident(*incident) for incident in incidents],
            as_of,
        )

    def _drop(self, child: _Child, why: str) -> None:
        with self._lock:
            if child not in self._all:
                return
            self._all.remove(child)
            self._lock.notify_all()  # with no child left, the waiting polls parse here
        log.warning(
            "a parse process %s; %d left (pages parse in the daemon when none is idle)",
            why,
            len(self._all),
        )
        child.conn.close()
        child.process.kill()
        child.process.join(timeout=5)

    def close(self) -> None:
        """Stop the children (each exits when its pipe closes; killed after 5 s)."""
        with self._lock:
            children, self._all, self._idle = self._all, [], []
            self._lock.notify_all()
        for child in children:
            child.conn.close()
        for child in children:
            child.process.join(timeout=5)
            if child.process.is_alive():
                child.process.kill()
                child.process.join()


#: A child trims its allocator's free memory at most this often (seconds), after a parse.
_TRIM_EVERY = memory.TRIM_EVERY


def _serve(conn: Connection, others: list[Connection]) -> None:
    """A child: parse and normalize each page sent until the pipe closes."""
    from ..pipeline import normalize

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for other in others:
        other.close()
    trimmed = time.monotonic()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        except Exception:  # noqa: BLE001 - a feed this process cannot unpickle
            conn.send(None)
            continue
        try:
            conn.send(_parsed(normalize, *message))
        except (EOFError, OSError):
            return
        except Exception:  # noqa: BLE001 - a result that does not pickle
            conn.send(None)
        del message
        if time.monotonic() - trimmed > _TRIM_EVERY:
            memory.trim()
            trimmed = time.monotonic()


def _parsed(
    normalize: Any,
    feed: Feed,
    body: bytes,
    url: str,
    headers: Any,
    request: Any,
    compress: bool,
) -> Any:
    """What a child sends back for one page: plain data, or None when it did not parse; with
    ``compress``, also ``(sha256, blob)``: the body compressed with no base, as
    :func:`~dispatchwatch.pagestore.store_pages` stores a feed's first page."""
    try:
        result = feed.scraper.parse(Page(body, url, headers, request))
        incidents, as_of = normalize(feed, result.rows, result.as_of)
    except Exception:  # noqa: BLE001 - parsed again by the poll, which records the error
        return None
    ahead = None
    if compress:
        ahead = (hashlib.sha256(body).hexdigest(), pagestore.compress_ahead(body, None))
    return (
        [_row_tuple(row) for row in result.rows],
        replace(result, rows=[]),
        [_incident_tuple(incident) for incident in incidents],
        as_of,
        ahead,
    )
