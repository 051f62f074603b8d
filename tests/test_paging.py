"""Polls that are more than one request: paging, a watermark kept between polls, and honest
``partial`` outcomes. A small JSON feed is served over real HTTP on 127.0.0.1 and polled by the
real Fetcher and the real Daemon; its scraper plans and parses like the feed-family adapters."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dispatchwatch.archive import Archive
from dispatchwatch.config import Config, Feed, parse_duration
from dispatchwatch.daemon import Daemon
from dispatchwatch.fetch import Fetcher
from dispatchwatch.pipeline import parse_page
from dispatchwatch.scraper import Page, ParseResult, PlanContext, RawRow, Request, Scraper

PAGE_SIZE = 3


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    #: The dataset: rows with an "id", a "t" (floating local time) and a "type".
    rows: list[dict[str, str]]
    #: Paths (with query) of every request, in order.
    seen: list[str]
    #: Offsets whose request answers 500 (the next fetch of that page fails).
    broken_offsets: set[int]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        srv.seen.append(self.path)
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 1000))
        if offset in srv.broken_offsets:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        after = query.get("after", "")
        rows = sorted((r for r in srv.rows if r["t"] > after), key=lambda r: (r["t"], r["id"]))
        body = json.dumps(rows[offset : offset + limit]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def plan(context: PlanContext) -> list[Request]:
    after = context.state.get("watermark", "") if context.options.get("incremental") else ""
    return [_page(context.url, after, 0)]


def _page(url: str, after: str, offset: int) -> Request:
    params = (("limit", str(PAGE_SIZE)), ("offset", str(offset)))
    if after:
        params = (("after", after), *params)
    return Request(
        url, params=params, meta={"after": after, "offset": offset, "url": url},
        label=f"page {offset // PAGE_SIZE + 1}",
    )  # fmt: skip


def parse(page: Page) -> ParseResult:
    data = page.json()
    rows = [RawRow(r["id"], r["t"], call_type=r["type"]) for r in data]
    meta = page.meta
    follow = []
    if meta and len(data) == PAGE_SIZE:  # a full page: there may be more
        follow = [_page(meta["url"], meta["after"], meta["offset"] + PAGE_SIZE)]
    state = {"watermark": max(r["t"] for r in data)} if data else {}
    return ParseResult(rows, follow=follow, state=state)


def _scraper(snapshot: bool) -> Scraper:
    return Scraper(
        slug="paged", name="Paged test feed", agency="Test", city="Testville",
        url="http://127.0.0.1/", timezone="America/Chicago", parse=parse, plan=plan,
        snapshot=snapshot, interval="10s",
    )  # fmt: skip


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.rows, srv.seen, srv.broken_offsets = [], [], set()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _feed(srv: _Server, *, snapshot: bool = True, incremental: bool = False) -> Feed:
    return Feed(
        slug="paged",
        scraper=_scraper(snapshot),
        url=f"http://127.0.0.1:{srv.server_port}/rows.json",
        interval=parse_duration("10s"),
        connect_timeout=2.0,
        read_timeout=2.0,
        options={"incremental": incremental},
    )


def _rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {"id": f"C{i:03d}", "t": f"2024-03-31T10:{i:02d}:00", "type": "Medical"}
        for i in range(start, start + n)
    ]


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(
        Config(contact="ops@example.org").user_agent, backoff_initial=0.01, backoff_max=0.02,
        max_retry_seconds=0.0,
    ) as f:  # fmt: skip
        yield f


def _poll(tmp_path: Path, feed: Feed, fetcher: Fetcher) -> Any:
    with Archive(tmp_path / "a.db") as archive:
        daemon = Daemon([feed], archive, fetcher)
        return daemon.poll(feed)


def _query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(tmp_path / "a.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_snapshot_is_every_page_and_gone_only_after_a_whole_list(
    tmp_path: Path, server: _Server, fetcher: Fetcher
) -> None:
    feed = _feed(server)
    server.rows = _rows(7)
    report = _poll(tmp_path, feed, fetcher)
    assert (report.outcome, report.incidents, report.new) == ("new", 7, 7)
    # 7 rows at 3 a page: pages at offsets 0, 3, 6 (the last one short, so no 4th request).
    assert [p.split("offset=")[1] for p in server.seen] == ["0", "3", "6"]
    assert _query(tmp_path, "SELECT requests, outcome FROM polls") == [(3, "new")]

    # Two calls leave the list, but page 2 fails: rows of page 1 are kept, nothing is gone.
    server.rows = _rows(5)
    server.broken_offsets = {3}
    report = _poll(tmp_path, feed, fetcher)
    assert report.outcome == "partial"
    assert report.gone == 0
    assert "page 2" in (report.error or "") and "500" in (report.error or "")
    assert _query(tmp_path, "SELECT count(*) FROM incidents WHERE gone_at IS NULL") == [(7,)]
    polls = _query(tmp_path, "SELECT outcome, error_kind, incidents FROM polls ORDER BY id")
    assert polls[-1] == ("partial", "incomplete", 3)

    # The next whole list marks exactly the two missing calls gone.
    server.broken_offsets = set()
    report = _poll(tmp_path, feed, fetcher)
    assert (report.outcome, report.gone) == ("new", 2)
    gone = _query(tmp_path, "SELECT incident_id FROM incidents WHERE gone_at IS NOT NULL")
    assert sorted(g[0] for g in gone) == ["C005", "C006"]


def test_the_watermark_moves_with_the_rows_and_never_on_a_broken_poll(
    tmp_path: Path, server: _Server, fetcher: Fetcher
) -> None:
    feed = _feed(server, snapshot=False, incremental=True)
    server.rows = _rows(4)
    assert _poll(tmp_path, feed, fetcher).new == 4
    state = _query(tmp_path, "SELECT key, value, poll_id FROM feed_state")
    assert state == [("watermark", "2024-03-31T10:03:00", 1)]

    # The next poll asks only for rows after the watermark.
    server.seen.clear()
    server.rows = _rows(8)
    server.broken_offsets = {3}  # crash between pages: page 1 fetched, page 2 fails
    report = _poll(tmp_path, feed, fetcher)
    assert report.outcome == "partial" and report.new == 3
    assert "after=2024-03-31T10%3A03%3A00" in server.seen[0]
    # Not advanced: the rows of page 2 were never read.
    assert _query(tmp_path, "SELECT value FROM feed_state") == [("2024-03-31T10:03:00",)]

    server.broken_offsets = set()
    report = _poll(tmp_path, feed, fetcher)
    assert report.outcome == "new"
    assert (report.new, report.changed) == (1, 0)  # page 1's three rows are known, unchanged
    assert _query(tmp_path, "SELECT value, poll_id FROM feed_state") == [("2024-03-31T10:07:00", 3)]
    versions = _query(tmp_path, "SELECT count(*) FROM incident_versions")
    assert versions == [(8,)]


def test_a_saved_page_that_asks_for_more_is_not_a_whole_list(server: _Server) -> None:
    feed = _feed(server)
    body = json.dumps(_rows(3)).encode()
    request = plan(
        PlanContext(feed="paged", url=feed.url, zone=feed.zone, now=dataclasses.MISSING)  # type: ignore[arg-type]
    )[0]
    parsed = parse_page(feed, body, request=request)
    assert not parsed.complete
    assert "page 2" in (parsed.reason or "")
    # Without a request (a saved file), the page stands alone and is whole.
    assert parse_page(feed, body).complete
