"""Imports of other archives: git-scraping repositories and folders (or zips) of timestamped
snapshot files, replayed in time order as polls of a feed.

Each snapshot goes through the feed's own scraper and the same normalization and archive
writes as a live poll (:func:`~dispatchwatch.pipeline.process_page`), so gone-tracking and
versions come out as if dispatchwatch had polled at those times. Snapshots whose bytes the
archive already holds are skipped; a snapshot dated before what the archive holds for the
feed stops the import (``force``: it is added as history only).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from .archive import Archive, PollSummary, format_time
from .config import Feed
from .errors import DispatchwatchError
from .pipeline import process_page


class HistoryImportError(DispatchwatchError):
    """A repository, folder or file that cannot be imported as snapshots."""

    kind = "import"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One snapshot to replay: when it was taken (UTC), what it is called, and how to read it."""

    taken_at: datetime
    name: str
    read: Callable[[], bytes]


@dataclass(slots=True)
class HistorySummary:
    polls: int = 0
    skipped: int = 0
    new: int = 0
    changed: int = 0
    gone: int = 0
    errors: int = 0

    def add(self, summary: PollSummary) -> None:
        if summary.outcome == "already_archived":
            self.skipped += 1
            return
        self.polls += 1
        self.errors += summary.outcome == "error"
        self.new += summary.new
        self.changed += summary.changed
        self.gone += summary.gone

    def describe(self) -> str:
        return (
            f"{self.polls} snapshots archived ({self.new} new, {self.changed} changed, "
            f"{self.gone} gone), {self.skipped} already archived, {self.errors} errors"
        )


class SeenBodies:
    """The SHA-256 of every body of a feed already archived (parsed whole or in part), in a
    temporary SQLite file rather than a set: a replay of 100,000 snapshots adds 100,000
    digests, and memory stays at SQLite's page cache (1 MiB) whatever their number."""

    def __init__(self, archive: Archive, feed: str) -> None:
        self._db = sqlite3.connect("", isolation_level=None)  # a temporary file
        self._db.execute("PRAGMA cache_size = -1024")
        self._db.execute("CREATE TABLE seen (digest BLOB PRIMARY KEY) WITHOUT ROWID")
        # The digests Archive.parsed_sha256s gives, streamed (one statement: one read).
        rows = archive.conn.execute(
            "SELECT DISTINCT sha256 FROM polls WHERE feed = ? AND sha256 IS NOT NULL "
            "AND outcome IN ('new', 'partial', 'unchanged', 'not_modified')",
            [feed],
        )
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((_key(d),) for (d,) in rows))
        self._db.execute("COMMIT")

    def __contains__(self, digest: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM seen WHERE digest = ?", [_key(digest)]).fetchone()
            is not None
        )

    def add(self, digest: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", [_key(digest)])

    def close(self) -> None:
        self._db.close()


def _key(digest: str) -> bytes:
    try:
        return bytes.fromhex(digest)
    except ValueError:  # not hex: kept as its text
        return digest.encode()


def replay(
    archive: Archive,
    feed: Feed,
    snapshots: Iterable[Snapshot],
    *,
    force: bool = False,
    on_snapshot: Callable[[Snapshot, PollSummary], None] | None = None,
) -> HistorySummary:
    """Archive ``snapshots`` (in the order given: oldest first) as polls of ``feed``.
    Memory does not grow with their number (see :class:`SeenBodies`)."""
    archive.register_feed(feed.record())
    seen = SeenBodies(archive, feed.slug)
    summary = HistorySummary()
    try:
        for snapshot in snapshots:
            body = snapshot.read()
            digest = hashlib.sha256(body).hexdigest()
            if digest in seen:
                result = PollSummary(0, feed.slug, "already_archived")
            else:
                taken = format_time(snapshot.taken_at)
                result = process_page(
                    archive, feed, body, url=feed.url, source=snapshot.name, fetched_at=taken,
                    started_at=taken, kind="ingest", older="history" if force else "refuse",
                )  # fmt: skip
                if result.outcome != "error":
                    seen.add(digest)
            summary.add(result)
            if on_snapshot is not None:
                on_snapshot(snapshot, result)
    finally:
        seen.close()
    return summary


# --- git-scraping repositories ---------------------------------------------------------------

#: Bounds on what ``git`` keeps in memory while reading a long history: the cache of delta
#: bases (default 96 MiB, which a replay of 10,000 commits fills) and the mapped windows of
#: the pack files (default: the whole pack). Reading stays as fast (measured in
#: ``bench/import_git.py``); memory stays flat whatever the number of commits.
GIT_MEMORY = (
    "-c", "core.deltaBaseCacheLimit=4m",
    "-c", "core.packedGitWindowSize=2m",
    "-c", "core.packedGitLimit=8m",
)  # fmt: skip

#: One commit in the temporary list: the object name (SHA-1 or SHA-256, padded) and the
#: commit time (seconds, padded), fixed width so the list can be read backwards.
_RECORD = 64 + 1 + 14 + 1
#: How many records are read back at a time.
_CHUNK = 4096


def _git(repo: Path, *args: str) -> list[str]:
    return ["git", "-C", str(repo), *GIT_MEMORY, *args]


def _backwards(records: IO[bytes], count: int) -> Iterator[tuple[str, int]]:
    """``(commit, seconds)`` of the fixed-width ``records``, last written first."""
    end = count
    while end > 0:
        start = max(0, end - _CHUNK)
        records.seek(start * _RECORD)
        block = records.read((end - start) * _RECORD)
        for offset in range((end - start - 1) * _RECORD, -1, -_RECORD):
            sha = block[offset : offset + 64].rstrip().decode("ascii")
            yield sha, int(block[offset + 65 : offset + _RECORD - 1])
        end = start


class GitSnapshots:
    """Every commit of ``repo`` that changed ``path``, oldest first, as snapshots dated by
    the commit time; ``after`` (a commit) skips it and everything before it (and everything,
    when the history does not hold it).

    Streams with constant memory whatever the number of commits: one ``git log`` (newest
    first, as git walks) writes the list of commits to a temporary file of fixed-width
    records (80 bytes a commit), which is read back oldest first into one
    ``git cat-file --batch`` reading every snapshot; ``git`` itself runs with bounded caches
    (:data:`GIT_MEMORY`). ``len()`` is the number of commits to replay (known once the list
    is written, before the first snapshot is read). Raises :class:`HistoryImportError` for a
    folder that is not a git repository.
    """

    def __init__(self, repo: str | Path, path: str, *, after: str | None = None) -> None:
        self.repo = Path(repo)
        self.path = path
        check = subprocess.run(
            _git(self.repo, "rev-parse", "--git-dir"), capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise HistoryImportError(f"{self.repo} is not a git repository")
        self._records = tempfile.TemporaryFile(prefix="dispatchwatch-git-")  # noqa: SIM115
        try:
            self._count = self._list(after)
        except BaseException:
            self._records.close()
            raise

    def _list(self, after: str | None) -> int:
        log = subprocess.Popen(
            _git(self.repo, "log", "--format=%H %ct", "--", self.path), stdout=subprocess.PIPE
        )
        assert log.stdout is not None
        count, found = 0, after is None
        stop = after.encode() if after is not None else None
        write = self._records.write
        try:
            for line in log.stdout:
                sha, _, seconds = line.strip().partition(b" ")
                if sha == stop:
                    found = True
                    break
                write(sha.ljust(64) + b" " + seconds.rjust(14) + b"\n")
                count += 1
        finally:
            log.stdout.close()
            if log.poll() is None:
                log.terminate()
            log.wait()
        return count if found else 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Snapshot]:
        try:
            yield from self._read()
        finally:
            self._records.close()

    def _read(self) -> Iterator[Snapshot]:
        if not self._count:
            return
        with tempfile.TemporaryFile(prefix="dispatchwatch-git-") as requests:
            suffix = f":{self.path}\n".encode()
            for sha, _ in _backwards(self._records, self._count):
                requests.write(sha.encode() + suffix)
            requests.seek(0)
            # stdin is a file: git answers at its own pace, with no round trip per commit.
            blobs = subprocess.Popen(
                _git(self.repo, "cat-file", "--batch", "--buffer"),
                stdin=requests, stdout=subprocess.PIPE,
            )  # fmt: skip
        assert blobs.stdout is not None
        out = blobs.stdout
        prefix = f"git:{self.repo}@"
        try:
            for sha, seconds in _backwards(self._records, self._count):
                header = out.readline().split()
                if not header:
                    raise HistoryImportError(f"{self.repo}: git cat-file stopped at {sha}")
                if len(header) < 3:
                    continue  # "missing": the file was deleted in this commit
                body = out.read(int(header[2]))
                out.read(1)  # the newline after each object
                if header[1] != b"blob":
                    continue  # PATH is a folder in this commit
                yield Snapshot(
                    datetime.fromtimestamp(seconds, UTC),
                    f"{prefix}{sha}:{self.path}",
                    lambda body=body: body,  # type: ignore[misc]
                )
        finally:
            out.close()
            if blobs.poll() is None:
                blobs.terminate()
            blobs.wait()


def git_snapshots(repo: str | Path, path: str, *, after: str | None = None) -> GitSnapshots:
    """The snapshots of ``path`` in ``repo``, oldest first: see :class:`GitSnapshots`."""
    return GitSnapshots(repo, path, after=after)


#: How often (seconds) ``import_git`` records the last commit imported while it runs (and
#: always at the end): a run stopped in between re-reads at most that much, skipped as
#: already archived.
REMEMBER_EVERY = 2.0


def import_git(
    archive: Archive,
    feed: Feed,
    repo: str | Path,
    path: str,
    *,
    force: bool = False,
    on_snapshot: Callable[[Snapshot, PollSummary], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> HistorySummary:
    """Replay the history of ``path`` in ``repo`` into ``feed``. Re-running after new commits
    imports only those: the last commit imported is kept in ``feed_state``. ``on_total`` is
    told the number of commits to replay before the first one is read (for a progress bar).
    """
    key = f"import-git:{Path(repo).resolve()}:{path}"
    after = archive.feed_state(feed.slug).get(key)
    snapshots = git_snapshots(repo, path, after=after)
    if on_total is not None:
        on_total(len(snapshots))
    last: list[str] = []  # the last commit imported, not yet recorded
    recorded = [time.monotonic()]

    def remember() -> None:
        if last:
            archive.set_feed_state(feed.slug, {key: last.pop()})
        recorded[0] = time.monotonic()

    def on_each(snapshot: Snapshot, result: PollSummary) -> None:
        if result.outcome != "error":
            last[:] = [snapshot.name.rsplit("@", 1)[1].split(":", 1)[0]]
            if time.monotonic() - recorded[0] >= REMEMBER_EVERY:
                remember()
        if on_snapshot is not None:
            on_snapshot(snapshot, result)

    try:
        summary = replay(archive, feed, snapshots, force=force, on_snapshot=on_each)
    except BaseException:
        with suppress(Exception):  # keep what was imported; the first error is the one told
            remember()
        raise
    remember()
    return summary


# --- folders and zips of snapshot files ---------------------------------------------------------

#: Timestamps in file names: 2024-03-31T18-30-18Z, 20240331T183018Z, 2024-03-31_18-30-18,
#: 20240331183018 (UTC unless a zone is given).
DEFAULT_PATTERN = (
    r"(?P<Y>\d{4})-?(?P<m>\d{2})-?(?P<d>\d{2})[T_ -]?(?P<H>\d{2})[:-]?(?P<M>\d{2})[:-]?(?P<S>\d{2})"
)


def _taken_at(name: str, pattern: re.Pattern[str], zone: str) -> datetime | None:
    found = pattern.search(Path(name).name)
    if found is None:
        return None
    parts = {k: int(v) for k, v in found.groupdict().items() if v is not None}
    try:
        moment = datetime(
            parts["Y"], parts["m"], parts["d"], parts.get("H", 0), parts.get("M", 0),
            parts.get("S", 0), tzinfo=ZoneInfo(zone),
        )  # fmt: skip
    except (KeyError, ValueError):
        return None
    return moment.astimezone(UTC)


def file_snapshots(
    source: str | Path, *, pattern: str = DEFAULT_PATTERN, zone: str = "UTC"
) -> list[Snapshot]:
    """The snapshot files of a folder (recursively) or a zip, in time order, dated by the
    timestamp in each file name (``pattern``: a regex with named groups ``Y m d`` and
    optionally ``H M S``; ``zone``: the zone of those times). Files whose name has no
    timestamp are an error naming the first one. Bodies are read one at a time, when used."""
    source = Path(source)
    regex = re.compile(pattern)
    found: list[Snapshot] = []
    if source.is_dir():
        names: list[tuple[str, Callable[[], bytes]]] = [
            (str(p), p.read_bytes) for p in sorted(source.rglob("*")) if p.is_file()
        ]
    elif zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        names = [
            (f"{source}!{info.filename}", lambda info=info: archive.read(info))  # type: ignore[misc]
            for info in archive.infolist()
            if not info.is_dir()
        ]
    else:
        raise HistoryImportError(f"{source} is neither a folder nor a zip file")
    for name, read in names:
        taken = _taken_at(name, regex, zone)
        if taken is None:
            raise HistoryImportError(
                f"{name}: no timestamp in the file name (pattern {pattern!r}); use --pattern"
            )
        found.append(Snapshot(taken, name, read))
    return sorted(found, key=lambda s: (s.taken_at, s.name))
