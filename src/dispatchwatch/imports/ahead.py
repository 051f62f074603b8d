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
raised it. The child sends from a thread of its own (:class:`_Sending`), one message
waiting at most, so at most about three batches are in memory.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import operator
import os
import queue
import signal
import sys
import threading
import time
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
        waited = context.RawValue("d", 0.0)  # ... and has waited so long in all (seconds)
        child = context.Process(
            target=_child,
            args=(produce, finish, receiver, sender, _Balance(waiting, waited)),
            daemon=True,
        )
        child.start()
        sender.close()
        try:
            if forked is not None:
                forked()
            while True:
                waiting.value = 1
                try:
                    if not receiver.poll():  # (the time until it comes, not its reading)
                        clock = time.monotonic()
                        receiver.poll(None)
                        waited.value += time.monotonic() - clock
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


class _Balance:
    """What the child knows of the parent's waiting (:func:`_offload`): ``waiting``, the
    flag the parent sets around each receive, and ``waited``, how long it has waited in all
    (seconds); ``cost``: what finishing a piece took the child lately (seconds), None
    before the first."""

    def __init__(self, waiting: Any, waited: Any) -> None:
        self.waiting = waiting
        self.waited = waited
        self.cost: float | None = None
        self._since = 0.0  # ``waited`` when a piece was last left to the parent

    def offload(self) -> bool:
        waited = self.waited.value
        if self.waiting.value or (self.cost is not None and waited - self._since >= self.cost / 2):
            self._since = waited
            return True
        return False

    def finished(self, seconds: float) -> None:
        self.cost = seconds if self.cost is None else 0.7 * self.cost + 0.3 * seconds


def _offload(balance: _Balance) -> bool:
    """Whether the child leaves a piece for the parent to finish: the parent is waiting for
    one right now, or has waited, since the last piece left to it, half as long as the
    child takes to finish one (``balance``). The child decides as soon as it has read a
    piece, and the parent, archiving the piece before, is rarely waiting just then: with
    only the first rule, on 200,000 New Orleans rows read in one pass, 1 piece of 20 was
    left to it and it waited a quarter of the time (parent + child CPU 3.5 + 5.3 s); with
    both, 6 of 20, 0.8-1.5 s of waiting, 4.5 + 4.6 s (a loaded machine: wall times too
    noisy to tell). (Half: a whole finish's worth left it waiting twice as long; leaving
    it too much only makes it the one not waiting, and then nothing more is left to it.)
    Measured on 200,000
    New Orleans rows, the parent normalizes a batch at a higher cost than the child saves
    (its rows cross the pipe as mapped rows, its caches are the archive's): leaving it only
    the pieces it is idle for kept the two processes even (parent + child CPU about 8.7 +
    7.6 s, against 7.8 + 8.4 s with none left and 10.3 + 6.8 s when its total waiting
    counted too). A batch read in one pass (:class:`Records`) is left as its records: the
    child has only read and checked them, the parent reads them into the archive's columns
    (on 1,000,000 New Orleans rows the child would otherwise be the slower of the two by
    more than half)."""
    return balance.offload()


def _child(
    produce: Produce,
    finish: Finish | None,
    receiver: Connection,
    sender: Connection,
    balance: _Balance,
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
    send = _Sending(sender)
    try:
        try:
            for piece in produce(None):
                finished = finish is None or piece.data is None or not _offload(balance)
                if finished and finish is not None and piece.data is not None:
                    clock = time.monotonic()
                    piece = finish(piece)
                    balance.finished(time.monotonic() - clock)
                send(dumps(("piece", _flat(piece), finished)))
        except (BrokenPipeError, EOFError, OSError):
            raise
        except DispatchwatchError as exc:
            send(dumps(("error", type(exc), exc.args)))
        except Exception:  # noqa: BLE001 - the parent reads on and meets it itself
            log.debug("import read-ahead failed", exc_info=True)
            send(dumps(("crash",)))
        send.close()
    except (BrokenPipeError, EOFError, OSError):  # the parent stopped reading
        pass
    finally:
        if send.stop():  # (else the process's end closes it: the thread may still write)
            sender.close()


class _Sending:
    """The child's sends, made by a thread of its own: the child goes on with the next piece
    while the parent has yet to read the one before (it archives, or finishes a piece left
    to it); at most one more message waits. Without it, the child blocked in each send
    until the parent read it, and decided whether to leave the next piece to the parent
    (:func:`_offload`) while the parent was still busy with that one: a piece was almost
    never left to it, and it idled. ``send(data)`` raises the error a send met (the parent
    stopped reading: ``BrokenPipeError``...); ``close()`` waits for every message to be
    sent, and raises likewise; ``stop()`` drops what is unsent."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="import-send", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                self._connection.send_bytes(data)
            except BaseException as exc:  # noqa: BLE001 - raised in the child's own thread
                self._error = exc
                return

    def _put(self, data: bytes | None) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(data, timeout=0.2)
                return
            except queue.Full:
                if not self._thread.is_alive() and self._error is None:
                    raise BrokenPipeError("the import read-ahead sender stopped") from None

    def __call__(self, data: bytes) -> None:
        self._put(data)

    def close(self) -> None:
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> bool:
        """Let the thread end (once its send in progress, if any, returns or fails); whether
        it has ended."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=0.5)
        return not self._thread.is_alive()
