"""An import's reading, mapping and normalization run one batch ahead, in a child process.

``dispatchwatch import`` spends its time in two stages that do not depend on each other: making
a batch (the file's rows read, mapped and normalized: a pure function of the file) and
archiving it (one transaction a batch, in order). :func:`pieces_ahead` runs the first stage in
a forked child process that makes batch *n + 1* while this process archives batch *n*, as
:mod:`dispatchwatch.parseahead` does for ``ingest``; on two cores an import then takes about
as long as the slower stage instead of both. The two are kept even piece by piece: the
child normalizes a batch (``finish``) unless this process is waiting for one at that moment
(:func:`_offload`); then it sends the batch as mapped rows, and this process, idle,
normalizes it (or, for a batch of :class:`Records`, reads it in one pass). (A stopping
import that spools its batches writes nothing before the whole
file is read: there the child reads and maps, and this process normalizes and spools; see
:mod:`.run`.)

Nothing about the result changes: the child runs the same producer (the caller's ``produce``)
and sends its :class:`Piece` objects, in order, through a pipe (rows and incidents as plain
tuples, serialized by :func:`.spool.dumps`: marshal, else pickle); every archive write stays
in this process.

Fallbacks, as ``ingest``'s: where fork is not safe (not Linux, other threads running: a fork
copies only the calling thread), the file is small, or no core is spare (:func:`spare_core`),
everything runs here. If the child dies (or fails in a way that is not an expected
:class:`~dispatchwatch.errors.DispatchwatchError`), the rest is produced here, from the first
row no piece received so far accounts for (so no row is read into two batches and no bad row
is counted twice). An expected error (a file unreadable past some row, a batch that cannot be
normalized) is raised here, at the point of the stream where producing it here would have
raised it. The pipe holds one message, so at
most about two batches are in memory.
"""

from __future__ import annotations

import logging
import multiprocessing
import operator
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..archive import StoredIncidents
from ..errors import DispatchwatchError
from ..incident import Incident
from ..parseahead import end_child
from ..scraper import RawRow
from .spool import dumps, loads

__all__ = [
    "MIN_BYTES", "Finish", "Piece", "Produce", "Records", "can_fork", "pieces_ahead", "spare_core",
]  # fmt: skip

log = logging.getLogger(__name__)

#: Files smaller than this (bytes) are read here: a fork is not worth it.
MIN_BYTES = 1 << 20


@dataclass(slots=True)
class Piece:
    """One step of a producer: a batch (``data``: mapped ``(RawRow, city)`` pairs, or the
    normalized incidents, a list or :class:`~dispatchwatch.archive.StoredIncidents`; None
    for the last piece, or when the batch is not wanted) of the rows ``first``..``last``
    (``rows`` of them), the unreadable rows found since the previous piece (``problems``:
    ``(row, reason)``, at most as many as a report lists; ``bad``: how many in all),
    ``resume``: the first row number this piece and those before it do not
    account for (where a producer takes over), ``done``: the last piece; ``progress``:
    ``(done, total)`` of the file."""

    data: Any
    first: int
    last: int
    rows: int
    problems: list[tuple[int, str]] = field(default_factory=list)
    bad: int = 0
    resume: int = 0
    done: bool = False
    progress: tuple[int, int] = (0, 0)


class Records(list):  # type: ignore[type-arg]
    """A batch as the file's records (lists of cells), checked readable, to be read in one
    pass by whichever process finishes it (``run._stored_batches``); a plain list through
    the pipe."""

    __slots__ = ()


#: A producer: the pieces of the table as it was opened (``None``), or of the file opened
#: again, from row number ``resume`` on.
Produce = Callable[[int | None], Iterator[Piece]]
#: The last step of a piece (normalizing its batch), a pure function: done in the child, or
#: here when this process is the one waiting (see :func:`pieces_ahead`).
Finish = Callable[[Piece], Piece]

_raw_tuple = operator.attrgetter(*RawRow.__dataclass_fields__)
_incident_tuple = operator.attrgetter(*Incident.__dataclass_fields__)


def _flat(piece: Piece) -> tuple[Any, ...]:
    data = piece.data
    if data:
        if data.__class__ is StoredIncidents:  # finished: the columns as they are
            data = ("stored", data.columns)
        elif data.__class__ is Records:
            data = ("records", list(data))
        elif data[0].__class__ is Incident:
            data = ("incidents", [_incident_tuple(i) for i in data])
        else:
            data = ("rows", [(_raw_tuple(raw), city) for raw, city in data])
    return (data, piece.first, piece.last, piece.rows, piece.problems, piece.bad,
            piece.resume, piece.done, piece.progress)  # fmt: skip


def _rebuilt(flat: tuple[Any, ...]) -> Piece:
    data, *rest = flat
    if data:
        what, items = data
        if what == "stored":
            data = StoredIncidents(items)
        elif what == "records":
            data = Records(items)
        elif what == "incidents":
            data = [Incident(*values) for values in items]
        else:
            data = [(RawRow(*values), city) for values, city in items]
    return Piece(data, *rest)


def spare_core() -> bool:
    """Whether a core is left for the child: the 1-minute load average is below the number of
    cores less one half. On a machine busy with other work the child only adds its own cost
    (sending each batch through the pipe: about a fifth more CPU time in all) and takes no
    time off; the import then runs in this process, with the same result."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return True
    return load < (os.cpu_count() or 1) - 0.5


def can_fork(size: int) -> bool:
    """Whether a file of ``size`` bytes is made in a child process (see the module
    docstring)."""
    return (
        size >= MIN_BYTES
        and sys.platform.startswith("linux")
        and threading.active_count() == 1
        and "fork" in multiprocessing.get_all_start_methods()
        and spare_core()
    )


def pieces_ahead(
    produce: Produce,
    *,
    fork: bool,
    finish: Finish | None = None,
    forked: Callable[[], None] | None = None,
) -> Iterator[Piece]:
    """The pieces ``produce(None)`` gives, in order, each passed through ``finish`` (when
    given) if it has a batch; made one ahead in a forked child when ``fork`` (see the module
    docstring). Raises what the producer (or ``finish``) raises. Close the iterator (or run it
    to its end) to end the child. ``forked`` is called once the child has started, before
    the first piece is awaited: work of this process's own that the child's first piece
    would otherwise leave it idle for (not called without a child).

    Who finishes a piece is decided piece by piece, so that neither process waits for the
    other: the child finishes it unless this process is the one waiting (:func:`_offload`);
    then the child sends it as it is, and this process finishes it while the child reads the
    next one."""
    resume: int | None = None
    if fork:
        resume = 0  # (the child reads the table as opened: the rest is read from a new one)
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        waiting = context.RawValue("b", 0)  # this process waits in recv (shared memory)
        child = context.Process(
            target=_child, args=(produce, finish, receiver, sender, waiting), daemon=True
        )
        child.start()
        sender.close()
        try:
            if forked is not None:
                forked()
            while True:
                waiting.value = 1
                try:
                    message = loads(receiver.recv_bytes())
                except (EOFError, OSError):  # the child died: the rest is made here
                    log.debug("the import read-ahead process stopped; reading on here")
                    break
                finally:
                    waiting.value = 0
                if message[0] == "error":
                    _, kind, args = message
                    raise kind(*args)
                if message[0] == "crash":
                    log.debug("the import read-ahead process failed; reading on here")
                    break
                _, flat, finished = message
                piece = _rebuilt(flat)
                if not finished:
                    piece = _finished(piece, finish)
                yield piece
                if piece.done:
                    return
                resume = piece.resume
        finally:
            end_child(receiver, child)
    for piece in produce(resume):
        yield _finished(piece, finish)


def _finished(piece: Piece, finish: Finish | None) -> Piece:
    return piece if finish is None or piece.data is None else finish(piece)


def _offload(waiting: Any) -> bool:
    """Whether the child leaves a piece for the parent to finish: the parent is waiting for
    one right now (``waiting``: the flag it sets around each receive). Measured on 200,000
    New Orleans rows, the parent normalizes a batch at a higher cost than the child saves
    (its rows cross the pipe as mapped rows, its caches are the archive's): leaving it only
    the pieces it is idle for kept the two processes even (parent + child CPU about 8.7 +
    7.6 s, against 7.8 + 8.4 s with none left and 10.3 + 6.8 s when its total waiting
    counted too). A batch read in one pass (:class:`Records`) is left as its records: the
    child has only read and checked them, the parent reads them into the archive's columns
    (on 1,000,000 New Orleans rows the child would otherwise be the slower of the two by
    more than half)."""
    return bool(waiting.value)


def _child(
    produce: Produce,
    finish: Finish | None,
    receiver: Connection,
    sender: Connection,
    waiting: Any,
) -> None:
    """The forked child: every piece of ``produce(None)``, finished here unless the parent is
    the one waiting (:func:`_offload`), flattened, sent in order with whether it was finished; an
    expected error as its type and arguments (raised again by the parent), anything else as a
    crash (the parent then produces the rest itself, and meets the error itself). Ctrl-C is
    the parent's to handle: it stops reading, and the child stops at its next send. The
    child closes its copy of the parent's end first: else, the parent killed (``kill -9``),
    the pipe would still have a reader and the child would block on it forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    receiver.close()
    try:
        try:
            for piece in produce(None):
                finished = finish is None or piece.data is None or not _offload(waiting)
                if finished and finish is not None and piece.data is not None:
                    piece = finish(piece)
                sender.send_bytes(dumps(("piece", _flat(piece), finished)))
        except DispatchwatchError as exc:
            sender.send_bytes(dumps(("error", type(exc), exc.args)))
        except Exception:  # noqa: BLE001 - the parent reads on and meets it itself
            log.debug("import read-ahead failed", exc_info=True)
            sender.send_bytes(dumps(("crash",)))
    except (BrokenPipeError, EOFError, OSError):  # the parent stopped reading
        pass
    finally:
        sender.close()
