"""Nothing false in the archive: incomplete pages are partial lists, a list that suddenly
empties waits for confirmation, and saved pages never rewrite history backwards.

Every input is built here from the fixtures (and from the real Milwaukee page when
``../shared/real-pages`` exists); every archive is a real SQLite file."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from dispatchwatch.archive import Archive
from dispatchwatch.config import default_feed
from dispatchwatch.errors import DispatchwatchError
from dispatchwatch.pipeline import ingest_files, process_page
from dispatchwatch.scraper import Page
from dispatchwatch.scrapers import milwaukee_police

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
SEQUENCE = sorted((FIXTURES / "milwaukee").glob("seq_0*.html"))
REAL_MKE = REPO.parent / "shared" / "real-pages" / "milwaukee" / "mpd_calls_2023-01-21.html"
DISPATCHWATCH = [sys.executable, "-m", "dispatchwatch"]


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, args).fetchall()


def _real_milwaukee() -> str:
    if not REAL_MKE.exists():
        pytest.skip("../shared/real-pages is not available")
    return REAL_MKE.read_bytes().decode()


def _rows(text: str) -> list[str]:
    return re.findall(r"<tr[ >].*?</tr>", text, flags=re.S)


def _deep_cell(text: str, row: int) -> str:
    """The page with a cell of data row ``row`` nested 300 tags deep (libxml2 stops at 256)."""
    target = _rows(text)[row]
    cell = re.search(r"<td[^>]*>", target)
    assert cell is not None
    broken = target.replace(cell.group(0), cell.group(0) + "<span>" * 300, 1)
    return text.replace(target, broken, 1)


def _huge_cell(text: str, row: int) -> str:
    target = _rows(text)[row]
    cell = re.search(r"<td[^>]*>", target)
    assert cell is not None
    broken = target.replace(cell.group(0), cell.group(0) + "A" * 10_000_000, 1)
    return text.replace(target, broken, 1)


# --- 1. incomplete pages are not complete lists ------------------------------------------------


# (page, the data row damaged or cut at, rows kept: cut / parser stopped, rows of the page).
# When libxml2 stops early the last row it kept may be truncated, so it goes too.
DAMAGED = {"fixture": (6, 4, 3, 11), "real": (31, 29, 28, 58)}


@pytest.mark.parametrize("source", ["fixture", "real"])
@pytest.mark.parametrize("damage", ["cut", "deep", "huge"])
def test_a_milwaukee_page_that_stops_early_is_partial_and_marks_nothing_gone(
    tmp_path: Path, damage: str, source: str
) -> None:
    """The fixture runs everywhere; the real page (58 calls, 28 of them once marked gone)
    where ../shared exists."""
    text = _real_milwaukee() if source == "real" else SEQUENCE[0].read_bytes().decode()
    at, kept_when_cut, kept_when_stopped, listed = DAMAGED[source]
    rows = _rows(text)
    assert len([r for r in rows if "<td" in r]) == listed
    if damage == "cut":  # cut off at a row boundary: no closing tags, legend or footer
        broken = text[: text.index(rows[at])]
    elif damage == "deep":
        broken = _deep_cell(text, at)
    else:
        broken = _huge_cell(text, at)
    whole = [row.incident_id for row in milwaukee_police.parse(Page(text.encode())).rows]
    result = milwaukee_police.parse(Page(broken.encode()))
    assert not result.complete
    kept = kept_when_cut if damage == "cut" else kept_when_stopped
    assert [row.incident_id for row in result.rows] == whole[:kept]  # the rows before, intact
    if damage != "cut":
        assert "parser stopped early" in (result.reason or "")

    feed = default_feed("milwaukee-police")
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        archive.register_feed(feed.record())
        first = process_page(archive, feed, text.encode())
        assert (first.outcome, first.incidents) == ("new", len(set(whole)))
        # The damaged page claims the same "Updated:" time; it is a later fetch of it.
        summary = process_page(archive, feed, broken.encode(), fetched_at="2024-03-15T00:00:00Z")
    assert (summary.outcome, summary.incidents) == ("partial", len(set(whole[:kept])))
    assert (summary.new, summary.changed, summary.gone) == (0, 0, 0)
    assert query(db, "SELECT count(*) FROM incidents WHERE gone_at IS NOT NULL") == [(0,)]
    assert query(db, "SELECT outcome, error_kind FROM polls ORDER BY id")[-1] == (
        "partial",
        "incomplete",
    )


def test_parse_prints_the_rows_of_an_incomplete_page_with_a_warning(tmp_path: Path) -> None:
    text = SEQUENCE[0].read_bytes().decode()
    cut = tmp_path / "cut.html"
    cut.write_text(text[: text.index(_rows(text)[-1])])
    result = subprocess.run(
        [*DISPATCHWATCH, "parse", "milwaukee-police", str(cut)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    # seq_01 lists 10 calls on 11 rows (H twice); the cut drops the last row, call A.
    printed = [json.loads(line)["incident_id"] for line in result.stdout.splitlines()]
    assert len(printed) == 9 and "240740488" not in printed
    assert result.stderr.startswith("warning: incomplete list:")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


# --- 2. a list that suddenly empties is not believed at once ---------------------------------


def _empty_page(text: str) -> str:
    """The same page, every row removed: a valid, empty list."""
    for row in _rows(text)[1:]:  # keep the header row
        if "<td" in row:
            text = text.replace(row, "", 1)
    return text


def test_an_emptied_snapshot_waits_for_the_next_poll_to_confirm(tmp_path: Path) -> None:
    feed = default_feed("milwaukee-police")
    full = SEQUENCE[0].read_bytes().decode()
    empty = _empty_page(full)
    assert milwaukee_police.parse(Page(empty.encode())).rows == []
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        archive.register_feed(feed.record())
        assert process_page(archive, feed, full.encode()).incidents == 10
        held = process_page(archive, feed, empty.encode(), fetched_at="2024-03-14T20:00:00Z")
        assert (held.outcome, held.gone, held.error_kind) == ("partial", 0, "gone_unconfirmed")
        assert "10 of 10 listed calls vanished at once" in (held.error or "")
        assert query(db, "SELECT count(*) FROM incidents WHERE gone_at IS NULL") == [(10,)]
        # The next poll still lists nothing: now it is believed.
        confirmed = process_page(
            archive, feed, empty.encode() + b"\n", fetched_at="2024-03-14T20:05:00Z"
        )
    assert (confirmed.outcome, confirmed.gone) == ("new", 10)
    assert query(db, "SELECT count(*) FROM feed_state") == [(0,)]


def test_a_glitch_that_recovers_marks_nothing_gone(tmp_path: Path) -> None:
    feed = default_feed("milwaukee-police")
    full = SEQUENCE[0].read_bytes()
    empty = _empty_page(full.decode()).encode()
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        archive.register_feed(feed.record())
        process_page(archive, feed, full)
        process_page(archive, feed, empty, fetched_at="2024-03-14T20:00:00Z")
        back = process_page(archive, feed, full + b"\n", fetched_at="2024-03-14T20:05:00Z")
    assert (back.outcome, back.gone) == ("new", 0)
    assert query(db, "SELECT count(*) FROM incident_versions WHERE gone_at IS NOT NULL") == [(0,)]
    assert query(db, "SELECT count(*) FROM feed_state") == [(0,)]


def test_the_hold_is_configurable_per_feed(tmp_path: Path) -> None:
    from dispatchwatch.config import parse_config

    config = parse_config("feeds:\n  milwaukee-police:\n    mass_gone: off\n")
    feed = config.feeds["milwaukee-police"]
    assert feed.mass_gone_share is None
    full = SEQUENCE[0].read_bytes()
    with Archive(tmp_path / "a.db") as archive:
        archive.register_feed(feed.record())
        process_page(archive, feed, full)
        gone = process_page(
            archive, feed, _empty_page(full.decode()).encode(), fetched_at="2024-03-14T20:00:00Z"
        )
    assert (gone.outcome, gone.gone) == ("new", 10)
    assert parse_config("feeds:\n  milwaukee-police:\n    mass_gone: 80%\n").feeds[
        "milwaukee-police"
    ].mass_gone_share == pytest.approx(0.8)
    with pytest.raises(DispatchwatchError, match=r"line 3.*mass_gone.*at most 100%"):
        parse_config("feeds:\n  milwaukee-police:\n    mass_gone: 150%\n")


# --- 4. ingest never rewrites history backwards ------------------------------------------------


def _invariants(db: Path) -> None:
    """gone_at never before first_seen_at; each incident's versions in observed_at order."""
    assert query(db, "SELECT count(*) FROM incidents WHERE gone_at < first_seen_at") == [(0,)]
    backwards = query(
        db,
        "SELECT count(*) FROM incident_versions a JOIN incident_versions b "
        "ON a.feed = b.feed AND a.incident_id = b.incident_id AND b.version = a.version + 1 "
        "WHERE b.observed_at < a.observed_at",
    )
    assert backwards == [(0,)]
    assert query(db, "SELECT count(*) FROM incidents WHERE gone_at < received_at") == [(0,)]


def test_ingesting_the_same_pages_again_adds_nothing(tmp_path: Path) -> None:
    feed = default_feed("milwaukee-police")
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        ingest_files(archive, feed, SEQUENCE)
        before = query(db, "SELECT * FROM incident_versions ORDER BY id")
        polls = query(db, "SELECT count(*) FROM polls")
        again = ingest_files(archive, feed, SEQUENCE)
    assert {s.outcome for s in again} == {"already_archived"}
    assert query(db, "SELECT * FROM incident_versions ORDER BY id") == before
    assert query(db, "SELECT count(*) FROM polls") == polls
    _invariants(db)


def test_an_older_page_is_refused_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    newest, oldest = SEQUENCE[-1], SEQUENCE[0]
    first = subprocess.run(
        [*DISPATCHWATCH, "ingest", "milwaukee-police", str(newest), "--db", str(db)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    incidents = query(db, "SELECT * FROM incidents ORDER BY incident_id")
    result = subprocess.run(
        [*DISPATCHWATCH, "ingest", "milwaukee-police", str(oldest), "--db", str(db)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "oldest first" in result.stderr and "--force" in result.stderr
    assert query(db, "SELECT * FROM incidents ORDER BY incident_id") == incidents
    assert query(db, "SELECT count(*) FROM polls") == [(1,)]


def test_force_adds_an_older_page_as_history_only(tmp_path: Path) -> None:
    feed = default_feed("milwaukee-police")
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        ingest_files(archive, feed, [SEQUENCE[-1]])
        listed = query(db, "SELECT incident_id, version FROM incidents ORDER BY incident_id")
        summaries = ingest_files(archive, feed, [SEQUENCE[0]], force=True)
    assert summaries[0].outcome == "partial" and summaries[0].gone == 0
    assert summaries[0].error_kind == "history"
    after = dict(query(db, "SELECT incident_id, version FROM incidents"))
    # Known incidents are untouched; only calls the archive never saw were added.
    assert all(after[i] == v for i, v in listed)
    assert len(after) == len(listed) + summaries[0].new
    _invariants(db)


def test_a_live_archive_is_never_marked_gone_by_an_old_page(tmp_path: Path) -> None:
    """The issue's case: an old page ingested into a live archive marked 63 live calls gone
    before they were received."""
    feed = default_feed("milwaukee-police")
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        ingest_files(archive, feed, SEQUENCE[2:])
        with pytest.raises(DispatchwatchError, match="oldest first"):
            ingest_files(archive, feed, SEQUENCE[:1])
        ingest_files(archive, feed, SEQUENCE[:2], force=True)
    _invariants(db)
