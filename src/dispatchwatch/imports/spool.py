"""A temporary file of normalized batches: ``import --on-error stop`` reads its file once.

Before writing anything, a stopping import must know that every row of the file is readable.
Rather than reading (and mapping) the file twice, the checking pass maps and normalizes each
batch as the writing pass would, and keeps it here, compressed (zstandard, level 1: about 50
bytes an incident), until the whole file is known good; the writing pass then only reads the
batches back. Memory stays at one batch whatever the size of the file; the file is removed
when the spool is closed (or the process ends).

A batch is kept as its incidents' stored columns
(:class:`~dispatchwatch.archive.StoredIncidents`: what the archive writes, ``extra`` already
JSON text), plain lists serialized by :func:`dumps` (also what :mod:`.ahead` sends through
its pipe): :mod:`marshal` when every value is a plain str/int/float/None/bool/list/dict/tuple
(about six times cheaper to write than a pickle: no memo), else :mod:`pickle` (a JSON export's
``Decimal``, a spreadsheet's ``datetime`` in ``extra``). Both give back equal values, dict
order included.
"""

from __future__ import annotations

import marshal
import pickle
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import zstandard

from ..archive import StoredIncidents
from ..incident import Incident

__all__ = ["Batch", "Spool", "dumps", "loads"]

_LENGTH = struct.Struct("<Q")
#: Version 4: a string (or other object) held more than once is sent once, then referred to
#: (a batch's call types, districts, addresses come from the normalizer's memos; a mapped
#: row's ``extra`` keys are the reader's own), and short ASCII text has a one-byte length.
#: Against version 2, callgrind on New Orleans batches of 10,000 rows, dumps + loads: a
#: normalized batch 106M -> 51M instructions, a mapped one 341M -> 225M (dumps alone, the
#: read-ahead child's part: 55M -> 22M and 142M -> 81M). Equal values come back either way
#: (equal objects held once come back as one object).
_MARSHAL_VERSION = 4


def dumps(value: Any) -> bytes:
    """``value`` (plain data) as bytes for :func:`loads`: marshal when it can, else pickle
    (see the module docstring)."""
    try:
        return b"m" + marshal.dumps(value, _MARSHAL_VERSION)
    except ValueError:  # an object marshal does not know (or a subclass of one)
        return b"p" + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    """What :func:`dumps` was given."""
    body = memoryview(data)[1:]
    return marshal.loads(body) if data[:1] == b"m" else pickle.loads(body)


@dataclass(slots=True)
class Batch:
    """The normalized incidents of the rows ``first``..``last`` (row numbers) of a file, as
    a list or as their stored columns; ``rows`` is how many rows they came from."""

    incidents: list[Incident] | StoredIncidents
    first: int
    last: int
    rows: int

    def stored(self) -> StoredIncidents:
        """The incidents as :class:`~dispatchwatch.archive.StoredIncidents`."""
        incidents = self.incidents
        if isinstance(incidents, StoredIncidents):
            return incidents
        return StoredIncidents.of(incidents)


class Spool:
    """Batches written in order, then read back in the same order (once)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="dispatchwatch-import-")  # noqa: SIM115
        self._compress = zstandard.ZstdCompressor(level=1).compress
        self.batches = 0

    def add(self, batch: Batch) -> None:
        data = self._compress(dumps((batch.first, batch.last, batch.rows, batch.stored().columns)))
        self._file.write(_LENGTH.pack(len(data)))
        self._file.write(data)
        self.batches += 1

    def __iter__(self) -> Iterator[Batch]:
        self._file.flush()
        self._file.seek(0)
        decompress = zstandard.ZstdDecompressor().decompress
        for _ in range(self.batches):
            (length,) = _LENGTH.unpack(self._file.read(_LENGTH.size))
            first, last, rows, columns = loads(decompress(self._file.read(length)))
            yield Batch(StoredIncidents(columns), first, last, rows)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
