"""``status``: per-feed health from the polls table, staleness and its exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatchwatch.archive import Archive
from dispatchwatch.cli_daemon import status as status_command
from dispatchwatch.config import parse_config
from dispatchwatch.incident import Incident
from dispatchwatch.status import (
    EXIT_OK,
    EXIT_UNHEALTHY,
    archive_status,
    exit_code,
    failure_streaks,
    format_table,
    format_time,
    human_duration,
)

CONFIG = """
database: {db}
feeds:
  seattle-fire:
    interval: 60s
    url: http://127.0.0.1:9/seattle
  milwaukee-police:
    interval: 5m
    url: http://127.0.0.1:9/milwaukee
"""

NOW = datetime.now(UTC)


def at(minutes_ago: float) -> str:
    return format_time(NOW - timedelta(minutes=minutes_ago))


def incident(feed: str, number: int) -> Incident:
    return Incident(
        feed=feed,
        incident_id=str(number),
        received_at="2024-04-01T01:00:00Z",
        call_type="Aid Response",
        address="15XX SUMMIT AVE",
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Seattle: healthy, with an old and a recent error. Milwaukee: three failures in a row
    after a success 2 h ago (stale under the default threshold of 15 m)."""
    path = tmp_path / "dispatch.db"
    config = parse_config(CONFIG.format(db=path), tmp_path / "config.yaml")
    with Archive(path) as archive:
        for feed in config.feeds.values():
            archive.register_feed(feed.record())
        sea, mke = "seattle-fire", "milwaukee-police"
        # 25 h ago: outside the 24 h window.
        archive.record_success(
            sea, [incident(sea, n) for n in range(5)], observed_at=at(1500), started_at=at(1500)
        )
        archive.record_error(sea, error_kind="timeout", error="old", started_at=at(1490))
        archive.record_success(
            sea, [incident(sea, n) for n in range(7)], observed_at=at(30), started_at=at(30)
        )
        archive.record_error(
            sea, error_kind="http_status", error="HTTP 503", http_status=503, started_at=at(20)
        )
        archive.record_unchanged(sea, outcome="not_modified", started_at=at(1))
        archive.record_success(
            mke, [incident(mke, n) for n in range(4)], observed_at=at(120), started_at=at(120)
        )
        for minutes, kind in ((90, "timeout"), (60, "layout_changed"), (30, "connection")):
            archive.record_error(
                mke, error_kind=kind, error=f"{kind} at -{minutes}m", started_at=at(minutes)
            )
    return path


def test_per_feed_status(db: Path) -> None:
    statuses = {s.feed: s for s in archive_status(db, now=NOW)}
    sea, mke = statuses["seattle-fire"], statuses["milwaukee-police"]

    assert sea.last_success_at == at(1)
    assert (sea.last_error_at, sea.last_error_kind, sea.last_error) == (
        at(20),
        "http_status",
        "HTTP 503",
    )
    assert sea.consecutive_failures == 0
    assert sea.polls_24h == 3 and sea.errors_24h == 1
    assert sea.new_incidents_24h == 2  # the 5 incidents of 25 h ago are old news
    assert sea.incidents_total == 7
    assert sea.stale is False

    assert mke.last_success_at == at(120)
    assert mke.last_error_kind == "connection"
    assert mke.consecutive_failures == 3
    assert mke.polls_24h == 4 and mke.errors_24h == 3
    assert mke.new_incidents_24h == 4
    assert mke.stale_after_seconds == 15 * 60  # max(3 x 5m, 15m)
    assert mke.stale is True
    assert exit_code(statuses.values()) == EXIT_UNHEALTHY


def test_threshold_override_and_intervals_from_config(db: Path) -> None:
    assert exit_code(archive_status(db, stale_after=3 * 3600, now=NOW)) == EXIT_OK
    # 3 x interval when that is above 15 minutes.
    statuses = archive_status(db, intervals={"milwaukee-police": 3600.0}, now=NOW)
    (mke,) = [s for s in statuses if s.feed == "milwaukee-police"]
    assert mke.stale_after_seconds == 3 * 3600 and not mke.stale
    # Only configured feeds are checked; the others are listed, never alerting.
    (sea,) = [s for s in statuses if s.feed == "seattle-fire"]
    assert not sea.configured and not sea.stale
    assert exit_code(statuses) == EXIT_OK


def test_a_configured_feed_the_archive_never_saw_is_stale(db: Path) -> None:
    statuses = archive_status(db, intervals={"elsewhere": 60.0}, now=NOW)
    (other,) = [s for s in statuses if s.feed == "elsewhere"]
    assert other.stale and other.last_poll_at is None and other.polls_24h == 0


def test_a_feed_that_never_succeeded_is_not_ok(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    config = parse_config(CONFIG.format(db=path), tmp_path / "config.yaml")
    with Archive(path) as archive:
        archive.register_feed(config.feeds["seattle-fire"].record())
        archive.record_error("seattle-fire", error_kind="timeout", error="slow")
    (sea,) = archive_status(path)
    assert sea.last_success_at is None and sea.consecutive_failures == 1
    assert not sea.stale  # added a moment ago: not stale yet, but...
    assert sea.state == "never succeeded" and not sea.healthy  # ...not ok either
    assert exit_code([sea]) == EXIT_UNHEALTHY
    assert "NEVER SUCCEEDED" in format_table([sea])[1]
    (later,) = archive_status(path, now=datetime.now(UTC) + timedelta(hours=1))
    assert later.stale and later.state == "never succeeded"


def test_failure_streaks(db: Path) -> None:
    with Archive(db) as archive:
        assert failure_streaks(archive.conn) == {"milwaukee-police": (3, at(30))}


def test_cli_exit_codes_table_and_json(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(db.parent)  # no ./config.yaml to pick up
    runner = CliRunner()
    result = runner.invoke(status_command, ["--db", str(db)])
    assert result.exit_code == EXIT_UNHEALTHY, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["feed", "state"]
    mke_line = next(line for line in lines if line.startswith("milwaukee-police"))
    assert "STALE" in mke_line and "connection" in mke_line

    result = runner.invoke(status_command, ["--db", str(db), "--stale", "3h", "--json"])
    assert result.exit_code == EXIT_OK, result.output
    rows = {row["feed"]: row for row in json.loads(result.output)}
    assert rows["milwaukee-police"]["consecutive_failures"] == 3
    assert rows["seattle-fire"]["stale"] is False


def test_cli_missing_archive_is_an_error_not_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(status_command, ["--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert "no archive" in result.output


def test_human_duration() -> None:
    assert [human_duration(s) for s in (None, 5, 125, 900, 3700, 200000)] == [
        "-",
        "5s",
        "2m05s",
        "15m",
        "1h01m",
        "2d7h",
    ]
