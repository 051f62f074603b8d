"""Day logs roll over: after midnight the Seattle feed also reads the previous day's page
until its calls are closed (or a bounded time has passed), then records the day complete.

A loopback server serves the day pages by ``incDate`` like the real site; polls go through
the real Fetcher and ``run_poll``, into a real SQLite archive."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dispatchwatch.archive import Archive
from dispatchwatch.config import Config, Feed, default_feed
from dispatchwatch.fetch import Fetcher
from dispatchwatch.pipeline import run_poll
from dispatchwatch.scraper import Request

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DAY = (FIXTURES / "seattle" / "day_2024-07-04.html").read_bytes().decode("utf-8")


def _closed(text: str) -> str:
    return text.replace('class="active"', 'class="closed"')


def _next_day(text: str) -> str:
    """A 7/5/2024 page: the 7/4 rows re-dated and renumbered (made-up calls)."""
    text = text.replace("7/4/2024", "7/5/2024")
    return re.sub(r"\b([FVBM])24(\d{7})\b", r"\g<1>25\2", text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    pages: dict[str, str]  # "today" or "M/D/YYYY" -> page
    seen: list[str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        key = query.get("incDate", ["today"])[0] or "today"
        if query.get("action") == ["Today"]:
            key = "today"
        self.server.seen.append(key)
        body = self.server.pages[key].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.pages, srv.seen = {}, []
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _poll(archive: Archive, feed: Feed, fetcher: Fetcher, now: datetime) -> Any:
    def fetch(request: Request, etag: str | None, last_modified: str | None) -> Any:
        return fetcher.fetch(feed, request=request, etag=etag, last_modified=last_modified)

    return run_poll(archive, feed, fetch, now=now)


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def setup(tmp_path: Path, server: _Server) -> Iterator[tuple[Archive, Feed, Fetcher, Path]]:
    base = f"http://127.0.0.1:{server.server_port}/sfd/realtime911/getRecsForDatePub.asp"
    feed = dataclasses.replace(
        default_feed("seattle-fire"), url=f"{base}?action=Today&incDate=&rad1=des"
    )
    db = tmp_path / "a.db"
    with Archive(db) as archive, Fetcher(Config(contact="t@example.org").user_agent) as fetcher:
        archive.register_feed(feed.record())
        yield archive, feed, fetcher, db


# Wall-clock times of the polls (UTC): 23:50 PDT on 7/4, then 00:05 and 00:10 on 7/5.
BEFORE_MIDNIGHT = datetime(2024, 7, 5, 6, 50, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2024, 7, 5, 7, 5, tzinfo=UTC)
LATER = datetime(2024, 7, 5, 7, 10, tzinfo=UTC)
PAST_BOUND = datetime(2024, 7, 5, 13, 30, tzinfo=UTC)  # 06:30 PDT


def test_calls_active_at_midnight_are_closed_from_the_previous_days_page(
    setup: tuple[Archive, Feed, Fetcher, Path], server: _Server
) -> None:
    archive, feed, fetcher, db = setup
    server.pages["today"] = DAY
    assert _poll(archive, feed, fetcher, BEFORE_MIDNIGHT).outcome == "new"
    active = "SELECT count(*) FROM incidents WHERE status = 'active'"
    assert _query(db, active) == [(3,)]

    # Midnight: today's page is now 7/5; meanwhile the 7/4 calls were closed.
    server.pages["today"] = _next_day(DAY)
    server.pages["7/4/2024"] = _closed(DAY)
    assert _poll(archive, feed, fetcher, AFTER_MIDNIGHT).outcome == "new"
    assert server.seen == ["today", "today"]  # the rollover is seen on today's page...
    assert archive.feed_state(feed.slug)["open_day"] == "2024-07-04"

    report = _poll(archive, feed, fetcher, LATER)
    assert server.seen[2:] == ["today", "7/4/2024"]  # ...and the old day is read next
    assert report.outcome == "new" and report.changed == 3
    stuck = "SELECT count(*) FROM incidents WHERE status = 'active' AND incident_id LIKE '_24%'"
    assert _query(db, stuck) == [(0,)]
    assert archive.completed_days(feed.slug) == {"2024-07-04"}
    assert archive.feed_state(feed.slug)["open_day"] == ""

    # Done: the old day is not read again.
    _poll(archive, feed, fetcher, LATER)
    assert server.seen[4:] == ["today"]


def test_a_day_whose_calls_stay_active_is_completed_after_the_bound(
    setup: tuple[Archive, Feed, Fetcher, Path], server: _Server
) -> None:
    archive, feed, fetcher, _db = setup
    server.pages["today"] = DAY
    _poll(archive, feed, fetcher, BEFORE_MIDNIGHT)
    server.pages["today"] = _next_day(DAY)
    server.pages["7/4/2024"] = DAY  # still 3 active incidents, forever
    _poll(archive, feed, fetcher, AFTER_MIDNIGHT)
    _poll(archive, feed, fetcher, LATER)
    assert archive.completed_days(feed.slug) == set()
    _poll(archive, feed, fetcher, PAST_BOUND)
    assert archive.completed_days(feed.slug) == {"2024-07-04"}
    assert server.seen.count("7/4/2024") == 2


def test_a_day_page_for_the_wrong_day_is_not_taken_for_it(
    setup: tuple[Archive, Feed, Fetcher, Path], server: _Server
) -> None:
    archive, feed, fetcher, db = setup
    server.pages["today"] = DAY
    _poll(archive, feed, fetcher, BEFORE_MIDNIGHT)
    server.pages["today"] = _next_day(DAY)
    server.pages["7/4/2024"] = _next_day(DAY)  # a server that ignores incDate
    _poll(archive, feed, fetcher, AFTER_MIDNIGHT)
    report = _poll(archive, feed, fetcher, LATER)
    assert report.outcome == "partial"
    assert "asked for the day log of 2024-07-04, got 2024-07-05" in (report.error or "")
    assert archive.completed_days(feed.slug) == set()
    assert _query(db, "SELECT count(*) FROM day_logs") == [(0,)]


def test_the_simulation_serves_the_previous_day_and_the_day_completes(tmp_path: Path) -> None:
    from datetime import timedelta

    from dispatchwatch.simulate import Simulation

    start = datetime(2024, 4, 1, 6, 40, tzinfo=UTC)  # 23:40 PDT on 3/31
    with Simulation(seed=3, speed=0, start=start) as sim:
        feed = dataclasses.replace(default_feed("seattle-fire"), url=sim.url("seattle", "sfd"))
        db = tmp_path / "sim.db"
        with Archive(db) as archive, Fetcher(Config(contact="t@example.org").user_agent) as f:
            archive.register_feed(feed.record())
            clock = start
            outcomes = []
            for _ in range(40):  # 23:40 PDT to 06:20 PDT, every 10 minutes
                outcomes.append(_poll(archive, feed, f, clock).outcome)
                sim.advance(600)
                clock += timedelta(minutes=10)
            assert "partial" not in outcomes and "error" not in outcomes
            assert archive.completed_days(feed.slug) == {"2024-03-31"}
        stuck = _query(
            db,
            "SELECT count(*) FROM incidents WHERE status = 'active' "
            "AND received_at < '2024-04-01T07:00:00Z'",
        )
        assert stuck == [(0,)]
