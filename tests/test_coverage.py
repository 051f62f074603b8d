"""``dispatchwatch coverage`` and the ``coverage`` views: blind windows, days, day logs.

Outages are injected through the Archive API (error polls and gaps with no poll at all) into
a real SQLite file, at times relative to the real clock (the report runs up to now), and the
report must give them exactly: start and end in local time, failed polls and their kinds.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from dispatchwatch.archive import Archive, FeedRecord, format_time
from dispatchwatch.cli import cli
from dispatchwatch.coverage import allowed_gap, coverage

LA = ZoneInfo("America/Los_Angeles")


def feed(slug: str, *, snapshot: bool = False, interval: float = 60) -> FeedRecord:
    return FeedRecord(
        slug=slug, name=slug, agency="", city="", scraper=slug, url="http://127.0.0.1:9/",
        timezone="America/Los_Angeles", snapshot=snapshot, interval_seconds=interval,
    )  # fmt: skip


def ok(archive: Archive, slug: str, at: datetime) -> None:
    archive.record_unchanged(slug, started_at=format_time(at), observed_at=format_time(at))


def failed(archive: Archive, slug: str, at: datetime, kind: str = "timeout") -> None:
    archive.record_error(slug, error_kind=kind, error="made up", started_at=format_time(at))


def local_span(start: datetime, end: datetime) -> str:
    """How the report writes a window: local clock times, with dates when it spans days."""
    a, b = start.astimezone(LA), end.astimezone(LA)
    if a.date() == b.date():
        return f"{a:%Y-%m-%d %H:%M:%S}-{b:%H:%M:%S} local"
    return f"{a:%Y-%m-%d %H:%M:%S}-{b:%Y-%m-%d %H:%M:%S} local"


class Outage:
    """seattle-fire polled every 60 s for three hours up to now, with a 10-minute outage:
    the last success at ``start``, five timeouts, then no poll at all (the daemon was
    down) until the next success at ``end`` = ``start`` + 10 min."""

    def __init__(self, path: Path) -> None:
        self.path = path
        now = self.now = datetime.now(UTC).replace(microsecond=0)
        self.first = now - timedelta(hours=3)
        self.start = now - timedelta(hours=2)
        self.end = self.start + timedelta(minutes=10)
        self.polls = self.failures = 0
        with Archive(path) as archive:
            archive.register_feed(feed("seattle-fire"))
            at = self.first
            while at <= now - timedelta(seconds=30):
                if self.start < at < self.end:
                    if at <= self.start + timedelta(minutes=5):
                        failed(archive, "seattle-fire", at)
                        self.failures += 1
                        self.polls += 1
                else:
                    ok(archive, "seattle-fire", at)
                    self.polls += 1
                at += timedelta(seconds=60)


@pytest.fixture
def outage(tmp_path: Path) -> Outage:
    return Outage(tmp_path / "dispatch.db")


def test_cli_reports_an_injected_ten_minute_outage_exactly(outage: Outage) -> None:
    before = hashlib.sha256(outage.path.read_bytes()).hexdigest()
    result = CliRunner().invoke(cli, ["coverage", "--db", str(outage.path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "seattle-fire (America/Los_Angeles; every 60s; blind after 90s without a successful "
        "or partial poll)"
    )
    assert lines[1:3] == [
        "  blind windows: 1",
        f"    {local_span(outage.start, outage.end)}, 5 polls failed: timeout (10 min)",
    ]
    assert outage.failures == 5
    # Days: the outage's ten minutes are the only blind time; every poll is counted.
    days = coverage(outage.path)[0].days
    assert sum(day.blind_minutes for day in days) == 10.0
    assert sum(day.polls for day in days) == outage.polls
    assert sum(day.failed_polls for day in days) == 5
    observed = sum(day.observed_minutes for day in days)
    assert 180 <= observed < 181
    if len(days) == 1:
        assert days[0].covered == pytest.approx(1 - 10 / observed, abs=2e-4)
    # Reading wrote nothing.
    assert hashlib.sha256(outage.path.read_bytes()).hexdigest() == before


def test_json_and_the_view_say_the_same(outage: Outage) -> None:
    result = CliRunner().invoke(
        cli, ["coverage", "seattle-fire", "--json", "--db", str(outage.path)]
    )
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.output)
    [window] = item["windows"]
    assert window["starts_at"] == format_time(outage.start)
    assert window["ends_at"] == format_time(outage.end)
    assert window["starts_local"] == outage.start.astimezone(LA).isoformat()
    assert window["ends_local"] == outage.end.astimezone(LA).isoformat()
    assert (window["failed_polls"], window["errors"], window["minutes"]) == (5, "timeout", 10.0)
    assert item["allowed_gap_seconds"] == allowed_gap(60) == 90
    # The view Datasette shows (installed by the migration) holds the same window.
    with closing(sqlite3.connect(outage.path)) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute("SELECT * FROM coverage")]
        days = [dict(row) for row in conn.execute("SELECT * FROM coverage_days")]
    assert len(rows) == 1 and {k: rows[0][k] for k in window} == window
    assert [d["day"] for d in days] == [d["day"] for d in item["days"]]
    assert sum(d["blind_minutes"] for d in days) == 10.0


def test_mixed_errors_gaps_without_polls_partial_polls_and_an_ongoing_outage(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dispatch.db"
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(hours=2)
    m = lambda minutes: t0 + timedelta(minutes=minutes)  # noqa: E731
    with Archive(path) as archive:
        archive.register_feed(feed("mke", snapshot=True, interval=300))
        failed(archive, "mke", m(0), "connection")  # the very first polls failed
        ok(archive, "mke", m(10))
        ok(archive, "mke", m(15))
        failed(archive, "mke", m(20), "timeout")
        failed(archive, "mke", m(25), "connection")
        failed(archive, "mke", m(30), "connection")
        ok(archive, "mke", m(35))
        ok(archive, "mke", m(40))  # then an hour with no poll at all
        ok(archive, "mke", m(95))
        for minutes in (100, 105):  # partial polls: seen, maybe incomplete
            at = format_time(m(minutes))
            archive.record_success("mke", [], observed_at=at, started_at=at, complete=False,
                                   reason="no end marker")  # fmt: skip
        # An ingested page is not the daemon watching: it ends no window.
        archive.record_unchanged("mke", started_at=format_time(m(60)), kind="ingest")
        ok(archive, "mke", m(110))  # then nothing up to now (2 h after t0): blind since
    [item] = coverage(path)
    assert item.allowed_gap_seconds == 450
    described = [(w.kind, w.description, w.minutes) for w in item.windows]
    assert described == [
        ("blind", f"{local_span(m(0), m(10))[11:]}, 1 poll failed: connection", 10.0),
        (
            "blind",
            f"{local_span(m(15), m(35))[11:]}, 3 polls failed: connection (2), timeout (1)",
            20.0,
        ),
        ("blind", f"{local_span(m(40), m(95))[11:]}, no polls", 55.0),
        (
            "incomplete",
            f"{local_span(m(100), m(110))[11:]}, 2 polls partial (seen, maybe incomplete): incomplete",
            10.0,
        ),
        (
            "blind",
            f"{m(110).astimezone(LA):%Y-%m-%d %H:%M:%S}-now local, no polls",
            pytest.approx(10, abs=0.2),
        ),
    ]
    assert item.windows[-1].ends_at is None
    # --since keeps what ends after it.
    later = coverage(path, since=format_time(m(50)))[0]
    assert [w.starts_at for w in later.windows] == [format_time(m(x)) for x in (40, 100, 110)]


def test_day_bounds_follow_daylight_saving_time(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.db"
    with Archive(path) as archive:
        archive.register_feed(feed("sea"))
        ok(archive, "sea", datetime(2024, 3, 9, 12, tzinfo=UTC))
    days = {d.day: d for d in coverage(path, since="2024-03-09")[0].days}
    with closing(sqlite3.connect(path)) as conn:
        bounds = dict(
            ((row[0]), (row[1], row[2]))
            for row in conn.execute(
                "SELECT day, day_start, day_end FROM coverage_days "
                "WHERE day IN ('2024-03-10', '2024-11-03', '2024-11-04')"
            )
        )
    assert bounds == {
        "2024-03-10": ("2024-03-10T08:00:00.000Z", "2024-03-11T07:00:00.000Z"),  # 23 hours
        "2024-11-03": ("2024-11-03T07:00:00.000Z", "2024-11-04T08:00:00.000Z"),  # 25 hours
        "2024-11-04": ("2024-11-04T08:00:00.000Z", "2024-11-05T08:00:00.000Z"),
    }
    # One poll, then blind ever since (from that poll on).
    first = days["2024-03-09"]
    assert first.observed_minutes == 20 * 60  # from the poll (04:00 local) to midnight
    assert first.blind_minutes == 20 * 60 and first.covered == 0
    assert days["2024-03-10"].observed_minutes == 23 * 60 and days["2024-03-10"].covered == 0


def test_days_whose_day_log_was_never_completed(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.db"
    now = datetime.now(UTC)
    today = now.astimezone(LA).date()
    d = [today - timedelta(days=n) for n in (3, 2, 1)]
    with Archive(path) as archive:
        archive.register_feed(feed("day-log"))
        archive.register_feed(feed("snap", snapshot=True))
        for slug in ("day-log", "snap"):
            ok(archive, slug, now - timedelta(days=3))
        for day in (d[0], d[2]):  # recorded complete by a later poll of that feed
            archive.record_success("day-log", [], observed_at=format_time(now),
                                   completed_days=[day.isoformat()])  # fmt: skip
    items = {item.feed: item for item in coverage(path)}
    log = {day.day: day.day_log for day in items["day-log"].days}
    assert log[d[0].isoformat()] == "complete" and log[d[2].isoformat()] == "complete"
    assert log[d[1].isoformat()] == "never completed"
    assert log[today.isoformat()] == "in progress"
    assert items["day-log"].never_completed == [d[1].isoformat()]
    assert all(day.day_log is None for day in items["snap"].days)  # not a day-log feed
    result = CliRunner().invoke(cli, ["coverage", "day-log", "--db", str(path)])
    assert f"  day logs never completed: {d[1].isoformat()}" in result.output.splitlines()


def test_errors_are_one_line(outage: Outage, tmp_path: Path) -> None:
    runner = CliRunner()
    for args, message in [
        (["coverage", "nope", "--db", str(outage.path)], "no feed nope in"),
        (["coverage", "--db", str(tmp_path / "none.db")], "no archive at"),
        (["coverage", "--since", "last week", "--db", str(outage.path)], "not a date or time"),
    ]:
        result = runner.invoke(cli, args)
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
