"""Imports of other archives: a git-scraping repository built here (one commit per Milwaukee
snapshot) and a folder / zip of timestamped snapshot files, through the real CLI."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEQUENCE = sorted((FIXTURES / "milwaukee").glob("seq_0*.html"))

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def dw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatchwatch", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def git(repo: Path, *args: str, when: int = 0) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "scraper", "GIT_AUTHOR_EMAIL": "scraper@example.org",
        "GIT_COMMITTER_NAME": "scraper", "GIT_COMMITTER_EMAIL": "scraper@example.org",
        "GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000",
    }  # fmt: skip
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def commit_snapshots(repo: Path, pages: list[Path], start: int) -> None:
    for n, page in enumerate(pages):
        (repo / "calls.html").write_bytes(page.read_bytes())
        (repo / "README.md").write_text(f"update {start + n}\n")  # commits that skip the file
        git(repo, "add", "-A", when=1710457207 + 300 * (start + n))
        git(
            repo, "commit", "-q", "-m", f"snapshot {start + n}", when=1710457207 + 300 * (start + n)
        )
        (repo / "README.md").write_text(f"note {start + n}\n")
        git(repo, "commit", "-q", "-am", "docs", when=1710457207 + 300 * (start + n) + 10)


def table(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


INCIDENTS = "SELECT * FROM incidents ORDER BY incident_id"
VERSIONS = (
    "SELECT incident_id, version, observed_at, changed, status, call_type, address, gone_at "
    "FROM incident_versions ORDER BY incident_id, version"
)


def test_import_git_equals_ingest_of_the_same_snapshots(tmp_path: Path) -> None:
    repo = tmp_path / "mke-calls"
    repo.mkdir()
    git(repo, "init", "-q")
    commit_snapshots(repo, SEQUENCE[:3], 0)
    git_db, ingest_db = tmp_path / "git.db", tmp_path / "ingest.db"

    first = dw("import-git", str(repo), "calls.html", "--feed", "milwaukee-police",
               "--db", str(git_db))  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "3 snapshots archived" in first.stdout  # the "docs" commits don't touch the file

    # New commits arrive; running it again imports only those.
    commit_snapshots(repo, SEQUENCE[3:], 3)
    again = dw("import-git", str(repo), "calls.html", "--feed", "milwaukee-police",
               "--db", str(git_db))  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "2 snapshots archived" in again.stdout and "0 already archived" in again.stdout

    ingest = dw("ingest", "milwaukee-police", *map(str, SEQUENCE), "--db", str(ingest_db))
    assert ingest.returncode == 0, ingest.stderr
    assert table(git_db, INCIDENTS) == table(ingest_db, INCIDENTS)
    assert table(git_db, VERSIONS) == table(ingest_db, VERSIONS)
    sources = [s for (s,) in table(git_db, "SELECT source FROM polls ORDER BY id")]
    assert all(s.startswith(f"git:{repo}@") and s.endswith(":calls.html") for s in sources)


def test_import_git_of_a_folder_that_is_not_a_repository_is_one_line(tmp_path: Path) -> None:
    result = dw("import-git", str(tmp_path), "calls.html", "--feed", "milwaukee-police",
                "--db", str(tmp_path / "a.db"))  # fmt: skip
    assert result.returncode != 0
    assert "is not a git repository" in result.stderr and "Traceback" not in result.stderr


def test_a_folder_and_a_zip_of_timestamped_snapshots(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    # Written out of order: the time in the name decides.
    stamps = ["2024-03-14T23-00-07Z", "2024-03-14T23-05-09Z", "2024-03-14T23-10-08Z",
              "2024-03-14T23-15-11Z", "2024-03-14T23-20-10Z"]  # fmt: skip
    for page, stamp in reversed(list(zip(SEQUENCE, stamps, strict=True))):
        (folder / f"mke_{stamp}.html").write_bytes(page.read_bytes())
    zipped = tmp_path / "captures.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for page, stamp in zip(SEQUENCE, stamps, strict=True):
            archive.writestr(f"snaps/{stamp.replace('-', '')}.html", page.read_bytes())
    folder_db, zip_db, ingest_db = tmp_path / "f.db", tmp_path / "z.db", tmp_path / "i.db"
    for source, db in ((folder, folder_db), (zipped, zip_db)):
        result = dw("import-snapshots", str(source), "--feed", "milwaukee-police",
                    "--db", str(db))  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "5 snapshots archived" in result.stdout
    dw("ingest", "milwaukee-police", *map(str, SEQUENCE), "--db", str(ingest_db))
    assert table(folder_db, VERSIONS) == table(ingest_db, VERSIONS) == table(zip_db, VERSIONS)
    # The same snapshots again: every body is found among those archived, nothing is added.
    again = dw("import-snapshots", str(zipped), "--feed", "milwaukee-police",
               "--db", str(folder_db))  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "0 snapshots archived" in again.stdout and "5 already archived" in again.stdout
    assert table(folder_db, VERSIONS) == table(ingest_db, VERSIONS)

    (folder / "notes.txt").write_text("no time here")
    bad = dw("import-snapshots", str(folder), "--feed", "milwaukee-police",
             "--db", str(tmp_path / "x.db"))  # fmt: skip
    assert bad.returncode != 0 and "notes.txt: no timestamp" in bad.stderr


def test_git_snapshots_stream_oldest_first_past_deletions(tmp_path: Path) -> None:
    """The list of commits is read backwards from a temporary file: order, times, a commit
    that deleted the file, a commit where the path is a folder, and ``after``."""
    from dispatchwatch.history import git_snapshots

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    steps: list[tuple[int, bytes | None]] = [
        (1710457207, b"one"), (1710457507, b"two"), (1710457807, None),
        (1710458107, b"three"), (1710458407, "folder"), (1710458707, b"four"),  # type: ignore[list-item]
    ]  # fmt: skip
    target = repo / "calls.html"
    for when, body in steps:
        if body is None:
            target.unlink()
        elif body == "folder":
            target.unlink()
            target.mkdir()
            (target / "inner.txt").write_bytes(b"not a snapshot")
        else:
            if target.is_dir():
                shutil.rmtree(target)
            target.write_bytes(body)
        git(repo, "add", "-A", when=when)
        git(repo, "commit", "-q", "-m", str(when), when=when)
    snapshots = git_snapshots(repo, "calls.html")
    assert len(snapshots) == 6  # every commit that touched the path
    got = [(int(s.taken_at.timestamp()), s.read()) for s in snapshots]
    assert got == [
        (1710457207, b"one"), (1710457507, b"two"), (1710458107, b"three"),
        (1710458707, b"four"),
    ]  # fmt: skip
    first = next(iter(git_snapshots(repo, "calls.html")))
    sha = first.name.rsplit("@", 1)[1].split(":", 1)[0]
    after = [s.read() for s in git_snapshots(repo, "calls.html", after=sha)]
    assert after == [b"two", b"three", b"four"]
    assert len(git_snapshots(repo, "calls.html", after="0" * 40)) == 0  # not in this history
    assert list(git_snapshots(repo, "calls.html", after="0" * 40)) == []
