"""A live feed's health is judged by live polls only (issue 9).

An import, a backfill or an ingest of saved pages says nothing about whether the daemon is
polling a feed: ``status``, the daemon's failure streaks, ``coverage``, the ``feed_health``
canned query and the dashboard's feed-health chart must all ignore them. Every archive is a
real SQLite file; the canned query and the chart's SQL run on it as Datasette would.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatchwatch import exitcodes
from dispatchwatch.archive import Archive, FeedRecord, format_time
from dispatchwatch.cli import cli
from dispatchwatch.coverage import coverage
from dispatchwatch.publish.dashboards import POLLS_BY_OUTCOME_SQL
from dispatchwatch.publish.queries import CANNED_QUERIES
from dispatchwatch.status import HISTORY_ONLY, STALE, archive_status, failure_streaks

NOW = datetime.now(UTC).replace(microsecond=0)


def ago(minutes: float) -> str:
    return format_time(NOW - timedelta(minutes=minutes))


def record(slug: str) -> FeedRecord:
    return FeedRecord(
        slug=slug, name=slug, agency="", city="", scraper=slug, url="http://127.0.0.1:9/",
        timezone="America/Los_Angeles", snapshot=False, interval_seconds=60,
    )  # fmt: skip


def build(path: Path) -> None:
    """seattle-fire: its last live success 2 hours ago, then two live timeouts; since then
    only history: an import and a backfill that succeeded a minute ago, a backfill error.
    chicago-police: only ever imported."""
    with Archive(path) as archive:
        archive.register_feed(record("seattle-fire"))
        archive.register_feed(record("chicago-police"))
        archive.record_unchanged("seattle-fire", started_at=ago(120), observed_at=ago(120))
        for minutes in (119, 118):
            archive.record_error(
                "seattle-fire", error_kind="timeout", error="live", started_at=ago(minutes)
            )
        archive.record_success(
            "seattle-fire", [], observed_at=ago(2), started_at=ago(2), kind="import"
        )
        archive.record_success(
            "seattle-fire", [], observed_at=ago(1), started_at=ago(1), kind="backfill"
        )
        archive.record_error(
            "seattle-fire", error_kind="http_status", error="backfill", started_at=ago(0.5),
            kind="backfill",
        )  # fmt: skip
        archive.record_success(
            "chicago-police", [], observed_at=ago(3), started_at=ago(3), kind="import"
        )


def test_status_counts_live_polls_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "a.db"
    build(db)
    statuses = {s.feed: s for s in archive_status(db, now=NOW)}
    sea = statuses["seattle-fire"]
    assert sea.state == STALE
    assert sea.last_success_at == ago(120)
    assert (sea.last_error_at, sea.last_error) == (ago(118), "live")
    assert sea.consecutive_failures == 2  # the backfill's error is no failure of the feed ...
    assert sea.polls_24h == 3 and sea.errors_24h == 2  # ... nor are its polls counted
    assert statuses["chicago-police"].state == HISTORY_ONLY
    assert statuses["chicago-police"].healthy

    monkeypatch.chdir(tmp_path)  # no ./config.yaml: every feed of the archive is checked
    result = CliRunner().invoke(cli, ["status", "--db", str(db), "--json"])
    assert result.exit_code == exitcodes.UNHEALTHY, result.output
    by_feed = {item["feed"]: item for item in json.loads(result.output)}
    assert by_feed["seattle-fire"]["state"] == "stale"
    assert by_feed["chicago-police"]["state"] == "history only"


def test_a_configured_feed_with_only_history_never_succeeded(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    build(db)
    status = archive_status(db, intervals={"chicago-police": 60.0}, now=NOW)
    assert [(s.feed, s.state) for s in status if s.configured] == [
        ("chicago-police", "never succeeded")
    ]


def test_the_daemon_backoff_streak_ignores_history(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    build(db)
    with closing(sqlite3.connect(db)) as conn:
        assert failure_streaks(conn) == {"seattle-fire": (2, ago(118))}


def test_coverage_is_blind_since_the_last_live_success(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    build(db)
    (sea,) = coverage(db, feed="seattle-fire")
    blind = [w for w in sea.windows if w.kind == "blind"]
    assert [(w.starts_at, w.ends_at) for w in blind] == [(ago(120), None)]


def _canned(db: Path, sql: str) -> list[dict[str, object]]:
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql)]


def test_the_feed_health_query_and_chart_count_live_polls_only(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    build(db)
    rows = {r["feed"]: r for r in _canned(db, CANNED_QUERIES["feed_health"]["sql"])}
    sea = rows["seattle-fire"]
    assert sea["health"] == "failing"
    assert (sea["last_success"], sea["consecutive_failures"]) == (ago(120), 2)
    assert (sea["polls_24h"], sea["errors_24h"]) == (3, 2)
    assert sea["last_error_message"] == "timeout: live"
    assert rows["chicago-police"]["health"] == "history only"

    chart = re.sub(r"\[\[.*?\]\]", "", POLLS_BY_OUTCOME_SQL, flags=re.S)
    counts = {(r["feed"], r["outcome"]): r["polls"] for r in _canned(db, chart)}
    assert counts == {("seattle-fire", "unchanged"): 1, ("seattle-fire", "error"): 2}
