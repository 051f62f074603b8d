"""Archive size for N Milwaukee-like snapshots, beside git-history and a packed git repository.

    python bench/size.py                       # 1,000 snapshots
    python bench/size.py --pages 300 --git-history /path/to/venv/bin/git-history --levers

The snapshots are the seeded synthetic Milwaukee sequence (dispatchwatch.synthetic, one page
per 5 minutes, in the real markup). Reported, in one run:

- dispatchwatch: ``dispatchwatch ingest`` of every page into a fresh archive (raw pages
  kept), its size after VACUUM; the same archive without the raw page store; the store alone;
  and where the bytes go (SQLite's ``dbstat``: each table and index);
- git: a repository with one commit per snapshot of the page, after ``git gc --aggressive``
  (the anchor for the raw page store);
- git-history: the same snapshots as JSON (the rows the scraper reads, one file committed per
  snapshot, as a git scraper does) turned into git-history's database with ``git-history
  file --id`` (the anchor for the archive without pages); skipped when git-history is not
  installed (``pip install git-history``), then the issue's figure (4.3 MB for 1,000 real
  snapshots) is printed as the anchor.

``--levers`` also measures what each size lever would save, one at a time, on a copy of the
archive without pages (an index, the full-text index's ``detail``, the page size, and
versions stored as schema 8 stored them), with why it is kept or applied.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from dispatchwatch.config import default_feed
from dispatchwatch.scraper import Page
from dispatchwatch.synthetic import milwaukee_pages
from dispatchwatch.versions import EMPTY_GONE_VERSIONS

ISSUE_GIT_HISTORY_MB = 4.3


def run(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def size_of(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else (path.stat().st_size)
    )


def vacuumed(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("VACUUM")
    conn.close()
    return path.stat().st_size


def breakdown(path: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
    except sqlite3.OperationalError:  # SQLite built without dbstat
        return []
    finally:
        conn.close()


_FTS = (
    "DROP TABLE incidents_fts",
    "CREATE VIRTUAL TABLE incidents_fts USING fts5(call_type, address, content='incidents', "
    "columnsize=0, detail={})",
    "INSERT INTO incidents_fts (incidents_fts) VALUES ('rebuild')",
)
_SCHEMA_8_VERSIONS = (
    # The table of schema 8: whole rows keyed by feed and incident id text, observed_at
    # repeated, gone versions empty; its two indexes.
    "CREATE TABLE v8 AS SELECT * FROM incident_versions ORDER BY id",
    EMPTY_GONE_VERSIONS.replace("incident_versions", "v8"),
    "CREATE UNIQUE INDEX v8_key ON v8 (feed, incident_id, version)",
    "CREATE INDEX v8_poll_id ON v8 (poll_id)",
    "DROP VIEW incident_versions",
    "DROP TABLE version_values",
    "DROP TABLE version_times",
    "DROP TABLE version_log",
)
#: Each lever measured on a copy of the archive without pages: (what, SQL, applied?).
LEVERS: list[tuple[str, tuple[str, ...], str]] = [
    ("versions as schema 8 stored them", _SCHEMA_8_VERSIONS,
     "undone: schema 9 (versions.py)"),
    ("index of every version by poll", ("CREATE INDEX x ON version_log (poll_id)",),
     "not kept: reparse finds a feed's versions by its incidents"),
    ("no index of new versions by poll", ("DROP INDEX idx_version_log_new",),
     "kept: alerts, after every poll"),
    ("version_log(incident, version) unique",
     ("DROP INDEX idx_version_log_incident",
      "CREATE UNIQUE INDEX x ON version_log (incident, version)"),
     "not kept: the writer numbers versions"),
    ("no index version_log(incident)", ("DROP INDEX idx_version_log_incident",),
     "kept: an incident's history, the previous version"),
    ("no index incidents(received_at)", ("DROP INDEX idx_incidents_received_at",),
     "kept: Datasette's default sort, last 24 hours"),
    ("no index incidents(feed, received_at)", ("DROP INDEX idx_incidents_feed_received_at",),
     "kept: status, one feed's newest calls"),
    ("full-text index rebuilt, detail=full", tuple(q.format("full") for q in _FTS),
     "(the two below are rebuilt too)"),
    ("full-text index detail=column", tuple(q.format("column") for q in _FTS),
     "kept full: phrase queries"),
    ("full-text index detail=none", tuple(q.format("none") for q in _FTS),
     "kept full: phrase and column queries"),
    # The polls row: its two largest texts (a 32-character text stands in for a 32-byte blob).
    ("polls.sha256 as 32 bytes, not hex", ("UPDATE polls SET sha256 = substr(sha256, 1, 32)",),
     "kept hex: the fetcher's and users' key"),
    ("polls.source empty", ("UPDATE polls SET source = NULL",),
     "kept: the file or URL a poll read"),
    ("page_size 2048", ("PRAGMA page_size = 2048",), "kept 4096"),
    ("page_size 8192", ("PRAGMA page_size = 8192",), "kept 4096"),
    ("no versions at all (bound)",
     ("DROP VIEW incident_versions", "DROP TABLE version_values", "DROP TABLE version_times",
      "DROP TABLE version_log"),
     "-"),
]  # fmt: skip


def levers(bare: Path, work: Path) -> list[tuple[str, int, str]]:
    """The size of ``bare`` with each of :data:`LEVERS` applied to a copy, after VACUUM."""
    measured = []
    for what, statements, verdict in LEVERS:
        copy = work / "lever.db"
        shutil.copy(bare, copy)
        conn = sqlite3.connect(copy, isolation_level=None)  # not WAL: see vacuumed()
        for statement in statements:
            conn.execute(statement)
        conn.execute("VACUUM")  # on this connection: a new page_size applies here
        conn.close()
        measured.append((what, copy.stat().st_size, verdict))
        copy.unlink()
    return measured


def git_repo(folder: Path, name: str, snapshots: list[bytes]) -> Path:
    folder.mkdir()
    run("git", "init", "-q", "-b", "main", cwd=folder)
    run("git", "config", "user.email", "bench@localhost", cwd=folder)
    run("git", "config", "user.name", "bench", cwd=folder)
    for number, body in enumerate(snapshots):
        (folder / name).write_bytes(body)
        run("git", "add", name, cwd=folder)
        # An unchanged snapshot makes no commit, as a git scraper's "commit if changed".
        done = subprocess.run(
            ["git", "commit", "-q", "-m", f"snapshot {number}"], cwd=folder, capture_output=True
        )
        del done
    run("git", "gc", "-q", "--aggressive", "--prune=now", cwd=folder)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--git-history", default=shutil.which("git-history"))
    parser.add_argument("--levers", action="store_true", help="measure each size lever too")
    args = parser.parse_args()
    pages = list(milwaukee_pages(args.pages, seed=args.seed))
    command = shutil.which("dispatchwatch", path=str(Path(sys.executable).parent))
    feed = default_feed("milwaukee-police")
    with tempfile.TemporaryDirectory(prefix="dispatchwatch-size-") as tmp:
        work = Path(tmp)
        folder = work / "pages"
        folder.mkdir()
        files = []
        for number, body in enumerate(pages):
            path = folder / f"page_{number:05d}.html"
            path.write_bytes(body)
            files.append(str(path))
        raw = sum(map(len, pages))
        print(f"{len(pages)} Milwaukee snapshots, {raw / 1e6:.1f} MB raw")

        ours = work / "ours.db"
        run(command or "dispatchwatch", "ingest", "milwaukee-police", "--db", str(ours), *files)
        total = vacuumed(ours)
        parts = breakdown(ours)
        bare = work / "bare.db"
        shutil.copy(ours, bare)
        conn = sqlite3.connect(bare)
        conn.execute("DELETE FROM poll_pages")
        conn.execute("DELETE FROM pages")
        conn.commit()
        conn.close()
        without = vacuumed(bare)

        repo = git_repo(work / "html", "calls.html", pages)
        packed = size_of(repo / ".git" / "objects")

        rows_repo = None
        if args.git_history:
            snapshots = []
            for body in pages:
                rows = feed.scraper.parse(Page(body, feed.url)).rows
                data = [
                    {
                        "call_number": r.incident_id,
                        "date_time": r.received,
                        "location": r.address,
                        "police_district": r.district,
                        "nature_of_call": r.call_type,
                        "status": r.status,
                    }  # fmt: skip
                    for r in rows
                ]
                snapshots.append(json.dumps(data, indent=2).encode())
            rows_repo = git_repo(work / "json", "calls.json", snapshots)
            history = work / "git-history.db"
            run(args.git_history, "file", str(history), "calls.json", "--id", "call_number",
                "--repo", str(rows_repo))  # fmt: skip
            anchor, anchor_name = history.stat().st_size, "git-history database (this run)"
        else:
            anchor = int(ISSUE_GIT_HISTORY_MB * 1e6)
            anchor_name = "git-history database (issue's figure, 1,000 real snapshots)"

        def mb(n: int) -> str:
            return f"{n / 1e6:8.3f} MB"

        print(f"  dispatchwatch archive, with raw pages   {mb(total)}")
        print(f"  dispatchwatch archive without pages     {mb(without)}")
        print(f"  {anchor_name:<40}{mb(anchor)}  ratio {without / anchor:.3f} (target <= 1)")
        store = sum(size for name, size in parts if name in ("pages", "poll_pages"))
        store += sum(size for name, size in parts if name.startswith(("pages_", "poll_pages_")))
        print(f"  raw page store (tables + indexes)       {mb(store)}")
        print(f"  git repository, one commit a snapshot,  {mb(packed)}  ratio "
              f"{store / packed:.3f} (target <= 1)\n    after git gc --aggressive")  # fmt: skip
        if args.levers:
            print("  levers, each alone on the archive without pages (after VACUUM):")
            for what, size, verdict in levers(bare, work):
                print(f"    {what:<40}{mb(size)}  {(size - without) / 1e6:+6.3f} MB  {verdict}")
        if parts:
            print("  where the bytes go (dbstat, with pages):")
            for name, size in parts:
                if size >= 20_000:
                    print(f"    {name:<38}{mb(size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
