"""Saved pages read and parsed pages ahead, in a child process, while the archive writes.

``dispatchwatch ingest`` spends its time in two stages that do not depend on each other: the
parse and normalization of a page (a pure function of its bytes) and the archive's writes (one
transaction a page, in order). :func:`read_ahead` runs the first stage in a forked child
process that reads, hashes, parses and normalizes page *n + 1* while this process archives page
*n*, so on two cores the ingest takes about as long as the slower stage instead of both.

Nothing about the result changes: the child runs the same :func:`~.pipeline.parse_page`, pages
come back in the given order, and every archive write (and its one transaction a page) stays
in this process. A child process, not a thread: SQLite hands the GIL back after every row it
steps, and a thread busy parsing would make each of those hand-backs wait for the
interpreter's switch interval.

The child is forked, so it starts at once with everything imported and its memory shared
copy-on-write (the first page is parsed here before the fork, which this process would wait
for anyway: the child starts with the lazy imports and caches that warmed up); where fork
is not safe (not Linux, or other threads are running: a fork copies only the calling thread)
the pages are read here, one by one, and parsed by the caller (:func:`read_ahead` yields
``None`` for the parse). If the child dies, the rest of the pages are read here too. The
pipe is widened to hold several pages' messages (:data:`PIPE_BYTES`): the child runs a few
pages ahead instead of blocking in every send until this process reads (a message of 1,000
rows is larger than a default pipe), and memory stays bounded whatever the number of files.

What goes through the pipe is what the child computed (the body's SHA-256, the incidents
serialized by marshal, and a compressed-ahead page), not the body: this process reads
the file again (from the page cache, cheaper than the pipe) and uses the child's work only
when the SHA-256 of what it read is the one the child parsed. Incidents the child normalized
come as the archive stores them (:class:`~.archive.StoredIncidents`: their columns, ``extra``
as its JSON text), so this process neither builds an object per incident nor encodes their
extras; the rows it is left to normalize come as tuples. A page its scraper can read in
one pass (:func:`~.pipeline.stored_page`: Socrata's field mappings) the child always reads
and normalizes so, for less than the scraper's parse alone. Otherwise the split follows a
flag this process sets while it waits for a page: when it is busy archiving, the child
normalizes and compresses too; when it waits, the child leaves that to it; and once it has
waited, in all, as long as a page takes the child, it takes the next page whole (the child
sends it unparsed, :func:`process_page <.pipeline.process_page>` parses it here).
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import multiprocessing
import operator
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from . import pagestore
from .archive import StoredIncidents
from .config import Feed
from .errors import DispatchwatchError, PageError
from .incident import Incident
from .normalize.pagememo import PageMemo
from .scraper import Page, ParseResult, RawRow

__all__ = ["MIN_PAGES", "ParseFailure", "SavedPage", "read_ahead"]

log = logging.getLogger(__name__)

#: Fewer pages than this are read and parsed in this process (a fork is not worth it).
MIN_PAGES = 3


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """A page that did not parse: the poll's ``error_kind`` and one-line ``error``."""

    kind: str
    error: str


@dataclass(slots=True)
class SavedPage:
    """One saved page, read and hashed; ``parsed`` is what parsing it gave (a
    :class:`~.pipeline.ParsedPage` or a :class:`ParseFailure`), or None when the caller must
    parse it (read here, or already archived: the child does not parse what was archived
    before the run)."""

    path: Path
    body: bytes
    sha256: str
    parsed: Any = None


def parse_outcome(
    feed: Feed, body: bytes, memo: PageMemo | None = None, *, normalized: bool = True
) -> Any:
    """:func:`~.pipeline.parse_page` of a saved page, or the :class:`ParseFailure` its error
    makes (the one ``process_page`` records). ``memo``: the pages before, of this feed.
    ``normalized=False`` stops after the scraper's parse: its :class:`~.scraper.ParseResult`,
    for :func:`normalized_outcome` to finish."""
    from .pipeline import parse_page, stored_page

    if normalized:
        stored = stored_page(feed, body, url=feed.url)
        if stored is not None:
            return stored
    try:
        if not normalized:
            return feed.scraper.parse(Page(body, feed.url))
        return parse_page(feed, body, url=feed.url, memo=memo)
    except Exception as exc:  # noqa: BLE001 - any failure is the page's error poll
        return _failure(feed, exc)


def normalized_outcome(feed: Feed, result: ParseResult, memo: PageMemo | None = None) -> Any:
    """What :func:`parse_outcome` gives for the page that the scraper parsed as ``result``."""
    from .pipeline import normalized_page

    try:
        return normalized_page(feed, result, memo)
    except Exception as exc:  # noqa: BLE001 - any failure is the page's error poll
        return _failure(feed, exc)


def _failure(feed: Feed, exc: Exception) -> ParseFailure:
    from .pipeline import _error_text

    log.debug("parse of %s failed", feed.slug, exc_info=True)
    kind = exc.kind if isinstance(exc, PageError) else "parse_error"
    return ParseFailure(kind, _error_text(exc))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DispatchwatchError(f"cannot read {path}: {exc.strerror or exc}") from None


def _can_fork(count: int) -> bool:
    return (
        count >= MIN_PAGES
        and sys.platform.startswith("linux")
        and threading.active_count() == 1
        and "fork" in multiprocessing.get_all_start_methods()
    )


def read_ahead(feed: Feed, files: Sequence[Path], archived: set[str]) -> Iterator[SavedPage]:
    """The saved pages ``files``, in order, each read, hashed and (in a child process, one
    page ahead, when it can: see the module docstring) parsed. ``archived`` holds the
    SHA-256 of bodies the archive has: those are not parsed. Raises
    :class:`DispatchwatchError` naming a file that cannot be read, when its turn comes."""
    done = 0
    if _can_fork(len(files)):
        memo = PageMemo()  # for the pages parsed or normalized here
        # The first page is parsed here, before the fork: this process would wait for it
        # anyway, and the child starts with what it warmed up (lazy imports, caches).
        body = _read(files[0])
        sha256 = hashlib.sha256(body).hexdigest()
        parsed = None if sha256 in archived else parse_outcome(feed, body, memo)
        base = None if parsed is None or isinstance(parsed, ParseFailure) else (sha256, body)
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        _widen(sender)
        waiting = context.RawValue("b", 0)  # 1 while this process waits for a page
        idle = context.RawValue("d", 0.0)  # seconds it waited, in all
        child = context.Process(
            target=_run_child,
            args=(receiver, feed, files[1:], frozenset(archived), sender, waiting, idle, base),
            daemon=True,
        )
        child.start()
        sender.close()
        try:
            yield SavedPage(files[0], body, sha256, parsed)
            done = 1
            while done < len(files):
                waiting.value = 1
                since = time.perf_counter()
                try:
                    message = _unpack(receiver.recv_bytes())
                except (EOFError, OSError):  # the child died: the rest is read here
                    log.debug("the parse-ahead process stopped; reading on here")
                    break
                finally:
                    waiting.value = 0
                    idle.value += time.perf_counter() - since
                if message[0] == "unreadable":
                    raise DispatchwatchError(f"cannot read {files[done]}: {message[1]}")
                _, read_sha256, parsed, ahead = message
                # The body is read here again (from the page cache: cheaper than the pipe);
                # what the child made of it holds only for the same bytes.
                body = _read(files[done])
                sha256 = hashlib.sha256(body).hexdigest()
                if sha256 != read_sha256:  # the file changed in between: parsed here
                    parsed = ahead = None
                if ahead is not None:
                    pagestore.offer_compressed(sha256, *ahead)
                parsed = _rebuilt(parsed)
                if isinstance(parsed, ParseResult):  # the child was the slower: normalized here
                    parsed = normalized_outcome(feed, parsed, memo)
                yield SavedPage(files[done], body, sha256, parsed)
                done += 1
        finally:
            end_child(receiver, child)
    for path in files[done:]:
        body = _read(path)
        yield SavedPage(path, body, hashlib.sha256(body).hexdigest())


#: Bytes the pipe to the child should hold (Linux's default limit for an unprivileged
#: process, ``/proc/sys/fs/pipe-max-size``): several pages' messages (~100-120 kB each for
#: 1,000 Socrata rows), so the child runs pages ahead instead of blocking in each send.
PIPE_BYTES = 1 << 20


def _widen(connection: Connection) -> None:
    """Make the pipe of ``connection`` hold :data:`PIPE_BYTES` (Linux), else as much as it
    may; left as it is where the system refuses (the child then waits more in its sends)."""
    import fcntl

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is None:
        return
    for size in (PIPE_BYTES, PIPE_BYTES // 4):
        try:
            fcntl.fcntl(connection.fileno(), setsize, size)
            return
        except OSError:  # above the system's limit (EPERM) or out of pipe memory
            continue


def end_child(receiver: Connection, child: Any) -> None:
    """Stop reading from a read-ahead ``child`` process and reap it: closing ``receiver``
    gives a child still sending a broken pipe, so it stops; one that does not within 5 s is
    killed."""
    receiver.close()
    child.join(timeout=5)
    if child.is_alive():
        child.kill()
        child.join()


def _run_child(receiver: Connection, *args: Any) -> None:
    """The child's entry: it closes its copy of the parent's end of the pipe first. Else, when
    the parent is killed (``kill -9``), the pipe still has a reader (the child itself) and the
    child blocks on the full pipe forever instead of getting a broken pipe and stopping.
    Ctrl-C (SIGINT to the whole process group) is the parent's to handle: it stops reading,
    and the child stops on the broken pipe, without a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    receiver.close()
    _child(*args)


def _parent_busy(waiting: Any) -> bool:
    """Whether the parent is busy (archiving), not waiting for a page (``waiting``, the flag
    it sets around each receive): then the child has time to spare."""
    return not waiting.value


def _hand_over(idle: float, cost: float | None) -> bool:
    """Whether the parent, which has waited ``idle`` seconds for pages not yet answered by
    a page handed over, takes the next page whole (reads, parses and normalizes it): when
    it has waited as long as a page takes the child (``cost`` seconds: its last parse and
    normalization; None: no page parsed yet)."""
    return cost is not None and idle >= cost


def _child(
    feed: Feed,
    files: Sequence[Path],
    archived: frozenset[str],
    sender: Connection,
    waiting: Any = None,
    idle: Any = None,
    previous: tuple[str, bytes] | None = None,
) -> None:
    """The forked child: each page read, hashed, parsed, and sent (its SHA-256 and what it
    parsed to, as marshal: incidents as stored columns, rows as tuples; not the body: the
    parent reads the file again). With the page store on, a page that parsed also comes
    compressed against the one that parsed before it (the base
    :func:`~.pagestore.store_pages` will most likely pick; the parent compresses itself
    when it picks another), when this process has time to spare: the parent is busy
    archiving (``waiting``, the flag it sets while it waits for a page, is clear). When the
    parent is waiting for pages, it normalizes and compresses them itself: the slower stage
    does less. And when the parent has waited, in all, as long as a page takes this process
    (parsed and normalized), it takes the next page whole (sent unparsed:
    :func:`_hand_over`), so time it would spend waiting goes to a page, not only to the
    normalizations left to it. ``previous`` is the page before ``files[0]`` that parsed, as
    ``(sha256, body)``, when there is one."""
    from .pipeline import stored_page

    keeps = feed.keep_pages.keeps
    memo = PageMemo()  # consecutive pages repeat most rows: normalized once each
    answered = 0.0  # of the parent's waiting (idle), what pages handed over answered
    # Seconds the last parse here took (None: none yet), and the last normalization.
    parse_cost: float | None = None
    normalize_cost = 0.0
    try:
        for path in files:
            try:
                body = path.read_bytes()
            except OSError as exc:
                sender.send_bytes(_pack(("unreadable", exc.strerror or str(exc))))
                return
            sha256 = hashlib.sha256(body).hexdigest()
            parsed = ahead = None
            cost = None if parse_cost is None else parse_cost + normalize_cost
            if idle is not None and _hand_over(idle.value - answered, cost):
                answered += cost or 0.0
                # Most likely the base of the next page's compression (unless it does not
                # parse there: then the parent, finding no blob for its own base, compresses).
                previous = None if sha256 in archived else (sha256, body)
            elif sha256 not in archived:
                started = time.perf_counter()
                # Read and normalized in one pass when the scraper can (cheaper than its
                # parse alone), else parsed here and maybe normalized by the parent.
                parsed = stored_page(feed, body, url=feed.url)
                if parsed is None:
                    parsed = parse_outcome(feed, body, normalized=False)
                parsed_at = time.perf_counter()
                parse_cost = parsed_at - started
                # With time to spare (the parent is busy, after this parse) all of the work
                # here, else the parent normalizes and compresses: the slower stage does less.
                spare = waiting is None or _parent_busy(waiting)
                if spare and isinstance(parsed, ParseResult):
                    parsed = normalized_outcome(feed, parsed, memo)
                    normalize_cost = time.perf_counter() - parsed_at
                elif not isinstance(parsed, ParseResult):
                    normalize_cost = 0.0
                if not isinstance(parsed, ParseFailure):
                    if keeps and previous is not None and spare and previous[0] != sha256:
                        ahead = (previous[0], pagestore.compress_ahead(body, previous[1]))
                    previous = (sha256, body)
            sender.send_bytes(_pack(("page", sha256, _flat(parsed), ahead)))
    except (BrokenPipeError, EOFError, OSError):  # the parent stopped reading
        pass
    finally:
        sender.close()


def _pack(message: Any) -> bytes:
    """A message for the pipe: marshal (version 4: a page's rows repeat the same strings,
    which it sends once; about a third less to send and read than version 2), else pickle
    (a value marshal does not know, such as a plugin's ``Request`` to follow)."""
    try:
        return b"m" + marshal.dumps(message, 4)
    except ValueError:
        return b"p" + pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(data: bytes) -> Any:
    body = memoryview(data)[1:]
    return marshal.loads(body) if data[:1] == b"m" else pickle.loads(body)


#: An incident's fields in the constructor's order, as one tuple.
_as_tuple = operator.attrgetter(*Incident.__dataclass_fields__)


#: A raw row's fields in the constructor's order, as one tuple.
_raw_tuple = operator.attrgetter(*RawRow.__dataclass_fields__)


def _flat(parsed: Any) -> Any:
    """A parse outcome as plain data for the pipe."""
    if parsed is None:
        return None
    if isinstance(parsed, ParseFailure):
        return ("failure", parsed.kind, parsed.error)
    if isinstance(parsed, ParseResult):  # rows for the parent to normalize
        return (
            "raw", [_raw_tuple(row) for row in parsed.rows], parsed.as_of, parsed.complete,
            parsed.reason, parsed.follow, parsed.state, parsed.unchanged, parsed.completed_days,
        )  # fmt: skip
    page = (parsed.as_of, parsed.complete, parsed.reason, parsed.state, parsed.unchanged)
    if isinstance(parsed.incidents, StoredIncidents):  # (read in one pass: stored_page)
        return ("stored", parsed.incidents.columns, *page)
    try:
        # As the archive stores them (extra as its JSON text): the parent neither builds an
        # incident per row nor encodes their extras (see archive.StoredIncidents).
        return ("stored", StoredIncidents.of(parsed.incidents).columns, *page)
    except Exception:  # noqa: BLE001 - sent as incidents: raised where the archive encodes
        return ([_as_tuple(incident) for incident in parsed.incidents], *page)


def _rebuilt(flat: Any) -> Any:
    if flat is None:
        return None
    if flat[0] == "failure":
        return ParseFailure(flat[1], flat[2])
    if flat[0] == "raw":
        _, rows, *rest = flat
        return ParseResult([RawRow(*row) for row in rows], *rest)
    from .pipeline import ParsedPage

    if flat[0] == "stored":
        _, columns, as_of, complete, reason, state, unchanged = flat
        return ParsedPage(
            StoredIncidents(list(columns)), as_of, complete, reason, [], state, unchanged
        )
    rows, as_of, complete, reason, state, unchanged = flat
    return ParsedPage(
        [Incident(*row) for row in rows], as_of, complete, reason, [], state, unchanged
    )
