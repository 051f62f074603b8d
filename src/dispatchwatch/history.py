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
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
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


def replay(
    archive: Archive,
    feed: Feed,
    snapshots: Iterator[Snapshot],
    *,
    force: bool = False,
    on_snapshot: Callable[[Snapshot, PollSummary], None] | None = None,
) -> HistorySummary:
    """Archive ``snapshots`` (in the order given: oldest first) as polls of ``feed``."""
    archive.register_feed(feed.record())
    seen = archive.parsed_sha256s(feed.slug)
    summary = HistorySummary()
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
    return summary


# --- git-scraping repositories ---------------------------------------------------------------


def _git(repo: Path, *args: str) -> list[str]:
    return ["git", "-C", str(repo), *args]


def git_snapshots(repo: str | Path, path: str, *, after: str | None = None) -> Iterator[Snapshot]:
    """Every commit of ``repo`` that changed ``path``, oldest first, as snapshots dated by the
    commit time; ``after`` (a commit) skips it and everything before it. Streams: one
    ``git log`` and one ``git cat-file --batch`` process, whatever the number of commits.
    Raises :class:`HistoryImportError` for a folder that is not a git repository."""
    repo = Path(repo)
    check = subprocess.run(
        _git(repo, "rev-parse", "--git-dir"), capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise HistoryImportError(f"{repo} is not a git repository")
    log = subprocess.Popen(
        _git(repo, "log", "--reverse", "--format=%H %ct", "--", path),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    blobs = subprocess.Popen(
        _git(repo, "cat-file", "--batch"), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert log.stdout is not None and blobs.stdin is not None and blobs.stdout is not None
    skipping = after is not None
    try:
        for line in log.stdout:
            sha, _, seconds = line.strip().partition(" ")
            if skipping:
                skipping = sha != after
                continue
            blobs.stdin.write(f"{sha}:{path}\n".encode())
            blobs.stdin.flush()
            header = blobs.stdout.readline().decode().split()
            if len(header) < 3 or header[1] != "blob":
                continue  # the file was deleted in this commit
            body = blobs.stdout.read(int(header[2]))
            blobs.stdout.read(1)  # the newline after each object
            yield Snapshot(
                datetime.fromtimestamp(int(seconds), UTC),
                f"git:{repo}@{sha}:{path}",
                lambda body=body: body,  # type: ignore[misc]
            )
    finally:
        blobs.stdin.close()
        blobs.wait()
        log.stdout.close()
        log.wait()


def import_git(
    archive: Archive,
    feed: Feed,
    repo: str | Path,
    path: str,
    *,
    force: bool = False,
    on_snapshot: Callable[[Snapshot, PollSummary], None] | None = None,
) -> HistorySummary:
    """Replay the history of ``path`` in ``repo`` into ``feed``. Re-running after new commits
    imports only those: the last commit imported is kept in ``feed_state``."""
    key = f"import-git:{Path(repo).resolve()}:{path}"
    after = archive.feed_state(feed.slug).get(key)
    last: list[str] = []

    def remember(snapshot: Snapshot, result: PollSummary) -> None:
        if result.outcome != "error":
            last[:] = [snapshot.name.rsplit("@", 1)[1].split(":", 1)[0]]
            archive.set_feed_state(feed.slug, {key: last[0]})
        if on_snapshot is not None:
            on_snapshot(snapshot, result)

    return replay(
        archive, feed, git_snapshots(repo, path, after=after), force=force, on_snapshot=remember
    )


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
