"""``merge``: archives of disjoint feeds (one per daemon) merge into one equal to the archive
a single daemon polling every feed writes. The daemons poll the loopback simulation over
real HTTP."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dispatchwatch.archive import Archive
from dispatchwatch.cli import cli
from dispatchwatch.config import Feed, default_feed
from dispatchwatch.daemon import Daemon
from dispatchwatch.fetch import Fetcher
from dispatchwatch.pagestore import poll_responses
from dispatchwatch.simulate import Simulation

START = datetime(2024, 3, 31, 20, 0, tzinfo=UTC)


@pytest.fixture
def sim() -> Iterator[Simulation]:
    with Simulation(seed=9, speed=0, start=START) as simulation:
        yield simulation


def _feeds(sim: Simulation) -> list[Feed]:
    # Milwaukee pages carry their own time, so every archive dates them alike.
    base = default_feed("milwaukee-police")
    return [
        dataclasses.replace(
            base,
            slug=f"mke-{name}",
            url=sim.url("milwaukee", name),
            interval=5.0,
            connect_timeout=2.0,
            read_timeout=2.0,
        )  # fmt: skip
        for name in ("a", "b", "c", "d")
    ]


def _content(path: Path) -> dict[str, Any]:
    """Every row, with poll ids replaced by (feed, n-th poll of the feed)."""
    conn = sqlite3.connect(path)
    try:
        polls = conn.execute("SELECT id, feed FROM polls ORDER BY id").fetchall()
        rank: dict[int, tuple[str, int]] = {}
        seen: dict[str, int] = {}
        for poll_id, feed in polls:
            seen[feed] = seen.get(feed, 0) + 1
            rank[poll_id] = (feed, seen[feed])

        def rows(sql: str, drop: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql)
            names = [c[0] for c in cursor.description]
            out = []
            for row in cursor:
                record = dict(zip(names, row, strict=True))
                for name in drop:
                    record.pop(name, None)
                if "poll_id" in record:
                    record["poll_id"] = rank.get(record["poll_id"])
                out.append(tuple(sorted(record.items(), key=lambda kv: kv[0])))
            return sorted(out, key=repr)

        return {
            "feeds": rows("SELECT * FROM feeds", ("added_at", "updated_at")),
            "incidents": rows("SELECT * FROM incidents"),
            "versions": rows("SELECT * FROM incident_versions", ("id",)),
            "polls": rows(
                "SELECT feed, observed_at, outcome, http_status, bytes, sha256, incidents, new, "
                "changed, gone, returned, error_kind, scraper_version FROM polls"
            ),
            "pages": rows("SELECT feed, sha256, size, depth FROM pages"),
            "search": conn.execute(
                "SELECT count(*) FROM incidents_fts WHERE incidents_fts MATCH 'STOP'"
            ).fetchone(),
        }
    finally:
        conn.close()


def test_two_daemons_merged_equal_one_daemon(tmp_path: Path, sim: Simulation) -> None:
    feeds = _feeds(sim)
    halves = {"one.db": feeds[:2], "two.db": feeds[2:], "all.db": feeds}
    with Fetcher("dispatchwatch-tests") as fetcher:
        archives = {name: Archive(tmp_path / name) for name in halves}
        try:
            daemons = {n: Daemon(f, archives[n], fetcher) for n, f in halves.items()}
            for _ in range(8):
                for name, daemon in daemons.items():
                    for feed in halves[name]:
                        report = daemon.poll(feed)
                        assert report is not None and report.outcome != "error"
                sim.advance(300)
        finally:
            for archive in archives.values():
                archive.close()
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["merge", str(tmp_path / "merged.db"), str(tmp_path / "one.db"), str(tmp_path / "two.db")],
    )
    assert result.exit_code == 0, result.output
    assert "feeds mke-a, mke-b, mke-c, mke-d" in result.output
    merged, single = _content(tmp_path / "merged.db"), _content(tmp_path / "all.db")
    assert merged["incidents"] and merged["versions"] and merged["pages"]
    for part in single:
        assert merged[part] == single[part], part
    # Raw pages still read back (their chains were renumbered together).
    with Archive(tmp_path / "merged.db") as archive:
        last = archive.conn.execute("SELECT max(poll_id) FROM poll_pages").fetchone()[0]
        assert poll_responses(archive.conn, last)

    # Overlapping feeds: one line, nothing written.
    before = (tmp_path / "merged.db").read_bytes()
    again = runner.invoke(cli, ["merge", str(tmp_path / "merged.db"), str(tmp_path / "one.db")])
    assert again.exit_code == 1
    assert again.output.strip().count("\n") == 0
    assert "feed mke-a is in both" in again.output and "disjoint" in again.output
    assert (tmp_path / "merged.db").read_bytes() == before
