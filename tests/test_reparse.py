"""``reparse``: rebuild a feed's incidents and versions from its stored raw pages.

With an unchanged scraper a reparse of what the real daemon wrote (polling the loopback
simulation over real HTTP) changes nothing; after a deliberate scraper change it gives exactly
what a fresh archive parsed by the changed scraper holds, touching only the affected fields."""

from __future__ import annotations

import dataclasses
import sqlite3
import textwrap
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
from dispatchwatch.pipeline import process_page
from dispatchwatch.reparse import ReparseError, reparse
from dispatchwatch.simulate import Simulation
from dispatchwatch.synthetic import milwaukee_pages

START = datetime(2024, 3, 31, 20, 0, tzinfo=UTC)

PLUGIN = """
import dataclasses

from dispatchwatch.scrapers.milwaukee_police import scraper as base


def parse(page):
    result = base.parse(page)
    for row in result.rows:  # the "fix": traffic calls title-cased
        if row.call_type and row.call_type.startswith("TRAFFIC"):
            row.call_type = row.call_type.title()
    return result


scraper = dataclasses.replace(base, slug="mke-fixed", parse=parse, version="2")
"""


def _dump(path: Path, *, version_ids: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        versions = "*" if version_ids else "feed, incident_id, version, poll_id, observed_at, "
        if not version_ids:
            names = [r[1] for r in conn.execute("PRAGMA table_info(incident_versions)")]
            versions = ", ".join(n for n in names if n != "id")
        return {
            "incidents": conn.execute(
                "SELECT * FROM incidents ORDER BY feed, incident_id"
            ).fetchall(),
            "versions": conn.execute(
                f"SELECT {versions} FROM incident_versions ORDER BY feed, incident_id, version"
            ).fetchall(),
            "polls": conn.execute(
                "SELECT id, outcome, incidents, new, changed, gone, returned, error_kind, "
                "scraper_version FROM polls ORDER BY id"
            ).fetchall(),
        }
    finally:
        conn.close()


@pytest.fixture
def sim() -> Iterator[Simulation]:
    with Simulation(seed=4, speed=0, start=START) as simulation:
        yield simulation


def _sim_feed(sim: Simulation, kind: str) -> Feed:
    slug = "milwaukee-police" if kind == "milwaukee" else "seattle-fire"
    return dataclasses.replace(
        default_feed(slug), url=sim.url(kind, "a"), interval=5.0, connect_timeout=2.0,
        read_timeout=2.0, max_bytes=2_000_000,
    )  # fmt: skip


def test_reparse_of_what_the_daemon_wrote_changes_nothing(tmp_path: Path, sim: Simulation) -> None:
    feeds = [_sim_feed(sim, "milwaukee"), _sim_feed(sim, "seattle")]
    path = tmp_path / "a.db"
    with Fetcher("dispatchwatch-tests") as fetcher, Archive(path) as archive:
        daemon = Daemon(feeds, archive, fetcher)
        for step in range(30):
            for feed in feeds:
                report = daemon.poll(feed)
                assert report is not None and report.outcome != "error"
            sim.advance(300 if step % 3 else 60)
    before = _dump(path)
    outcomes = {row[1] for row in before["polls"]}
    assert "new" in outcomes and len(before["versions"]) > len(before["incidents"])
    with Archive(path) as archive:
        for feed in feeds:
            result = reparse(archive, feed)
            assert result.polls > 5
            assert not result.changed and not result.polls_changed and not result.written
            assert "no change" in result.describe()
        # A window starting mid-history (its start state rebuilt from the versions) too.
        middle = archive.conn.execute(
            "SELECT started_at FROM polls WHERE feed = 'milwaukee-police' AND outcome = 'new' "
            "ORDER BY id LIMIT 1 OFFSET 4"
        ).fetchone()[0]
        result = reparse(archive, feeds[0], since=middle)
        assert result.first == middle and not result.changed and not result.polls_changed
    assert _dump(path) == before  # the very same rows, ids included


def _ingest(path: Path, feed: Feed, pages: list[bytes]) -> None:
    with Archive(path) as archive:
        archive.register_feed(feed.record())
        for body in pages:
            process_page(archive, feed, body, url=feed.url)


def test_a_scraper_change_rewrites_exactly_the_affected_fields(tmp_path: Path) -> None:
    pages = list(milwaukee_pages(60, seed=7))
    builtin = default_feed("milwaukee-police")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "mke_fixed.py").write_text(textwrap.dedent(PLUGIN))
    fixed = dataclasses.replace(builtin, scraper=default_feed("mke-fixed", plugins).scraper)
    _ingest(tmp_path / "old.db", builtin, pages)
    # What the fixed scraper would have archived from the start (the expected result).
    _ingest(tmp_path / "fresh.db", fixed, pages)
    old = _dump(tmp_path / "old.db", version_ids=False)
    fresh = _dump(tmp_path / "fresh.db", version_ids=False)
    assert old != fresh

    config = tmp_path / "config.yaml"
    config.write_text(f"database: old.db\nplugins_dir: {plugins}\nfeeds:\n"
                      "  milwaukee-police:\n    scraper: mke-fixed\n")  # fmt: skip
    runner = CliRunner()
    dry = runner.invoke(cli, ["reparse", "milwaukee-police", "-c", str(config), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output
    assert _dump(tmp_path / "old.db", version_ids=False) == old
    done = runner.invoke(cli, ["reparse", "milwaukee-police", "-c", str(config)])
    assert done.exit_code == 0, done.output
    assert "replayed 60 polls" in done.output
    # Only call types changed: no other field is named.
    (fields_line,) = [line for line in done.output.splitlines() if "fields:" in line]
    assert fields_line.split("fields:")[1].split()[0] == "call_type"
    assert fields_line.count(",") == 0
    assert _dump(tmp_path / "old.db", version_ids=False) == fresh
    # A second run finds nothing left to do.
    again = runner.invoke(cli, ["reparse", "milwaukee-police", "-c", str(config)])
    assert "no change" in again.output

    # And back with the built-in scraper: the archive is what it was.
    with Archive(tmp_path / "old.db") as archive:
        back = reparse(archive, builtin)
    assert back.fields == {"call_type": back.fields["call_type"]} and back.fields["call_type"]
    assert _dump(tmp_path / "old.db", version_ids=False) == old


def test_a_window_that_stops_early_may_not_change_later_history(tmp_path: Path) -> None:
    pages = list(milwaukee_pages(30, seed=7))
    builtin = default_feed("milwaukee-police")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "mke_fixed.py").write_text(textwrap.dedent(PLUGIN))
    fixed = dataclasses.replace(builtin, scraper=default_feed("mke-fixed", plugins).scraper)
    _ingest(tmp_path / "a.db", builtin, pages)
    before = _dump(tmp_path / "a.db")
    with Archive(tmp_path / "a.db") as archive:
        middle = archive.conn.execute(
            "SELECT started_at FROM polls ORDER BY id LIMIT 1 OFFSET 15"
        ).fetchone()[0]
        with pytest.raises(ReparseError, match="--until stops before .* later version"):
            reparse(archive, fixed, until=middle)
        # Unchanged scraper: nothing changes, so an early stop is fine.
        assert not reparse(archive, builtin, until=middle).changed
        # Pages pruned: a reparse starts after them, or says which polls lack pages.
        archive.conn.execute(
            "DELETE FROM poll_pages WHERE poll_id IN (SELECT id FROM polls ORDER BY id LIMIT 3)"
        )
        result = reparse(archive, builtin)
        assert result.polls == 27 and not result.changed
        with pytest.raises(ReparseError, match="3 poll.* have no stored page"):
            reparse(archive, builtin, since="2000-01-01T00:00:00.000Z")
    after = _dump(tmp_path / "a.db")
    assert after == before
