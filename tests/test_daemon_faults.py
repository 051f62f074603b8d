"""Faults of the running daemon: one daemon per archive, redirects that leave the feed's host,
a scraper that never returns, and an offline first run. Real HTTP on 127.0.0.1, real SQLite,
real subprocesses; a mock transport only where the fault (a name that does not resolve) must
not leave the machine."""

from __future__ import annotations

import dataclasses
import logging
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from dispatchwatch.archive import Archive
from dispatchwatch.config import Config, Feed, default_feed, parse_config
from dispatchwatch.daemon import Daemon, DaemonSettings
from dispatchwatch.errors import FetchError
from dispatchwatch.fetch import Fetcher
from dispatchwatch.scraper import Page, ParseResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PAGE = (FIXTURES / "milwaukee" / "seq_01.html").read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hits: list[str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        port = self.server.server_port
        if self.path.startswith("/moved-here"):
            self._send(302, b"", {"Location": f"http://127.0.0.1:{port}/page"})
        elif self.path.startswith("/moved-away"):
            # "localhost" is another host name than the feed's 127.0.0.1 (same machine).
            self._send(302, b"", {"Location": f"http://localhost:{port}/page"})
        elif self.path.startswith("/error"):
            self._send(500, b"")
        else:
            self._send(200, PAGE, {"Content-Type": "text/html"})

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.hits = []
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _feed(srv: _Server, path: str, **changes: object) -> Feed:
    base = default_feed("milwaukee-police")
    values: dict[str, object] = {
        "url": f"http://127.0.0.1:{srv.server_port}{path}",
        "interval": 10.0,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
    }
    values.update(changes)
    return dataclasses.replace(base, **values)


USER_AGENT = Config(contact="tests@example.org").user_agent


# --- 11. redirects stay on the feed's host -----------------------------------------------------


def test_a_redirect_on_the_feeds_host_is_followed(server: _Server) -> None:
    with Fetcher(USER_AGENT) as fetcher:
        result = fetcher.fetch(_feed(server, "/moved-here"))
    assert result.body == PAGE
    assert server.hits == ["/moved-here", "/page"]


def test_an_off_host_redirect_is_an_error_that_archives_nothing(
    tmp_path: Path, server: _Server
) -> None:
    feed = _feed(server, "/moved-away")
    with Fetcher(USER_AGENT) as fetcher:
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(feed)
        assert caught.value.kind == "redirect_off_host"
        assert "localhost" in str(caught.value)
        assert server.hits == ["/moved-away"]  # the other host was never asked
        with Archive(tmp_path / "a.db") as archive:
            report = Daemon([feed], archive, fetcher).poll(feed)
    assert report is not None and report.error_kind == "redirect_off_host"
    with closing(sqlite3.connect(tmp_path / "a.db")) as conn:
        assert conn.execute("SELECT count(*) FROM incidents").fetchone() == (0,)


def test_a_feed_may_allow_the_host_it_redirects_to(server: _Server) -> None:
    text = (
        "feeds:\n  milwaukee-police:\n"
        f"    url: http://127.0.0.1:{server.server_port}/moved-away\n"
        "    redirect_hosts: [localhost]\n"
    )
    feed = parse_config(text).feeds["milwaukee-police"]
    with Fetcher(USER_AGENT) as fetcher:
        assert fetcher.fetch(feed).body == PAGE


# --- 14. offline first run ---------------------------------------------------------------------


class _NoDNS(httpx.BaseTransport):
    """What httpx raises when getaddrinfo fails; no lookup leaves the machine."""

    def __init__(self) -> None:
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        cause = socket.gaierror(-2, "Name or service not known")
        raise httpx.ConnectError("[Errno -2] Name or service not known") from cause


def test_a_name_that_does_not_resolve_is_not_retried_and_says_what_to_check() -> None:
    transport = _NoDNS()
    feed = dataclasses.replace(
        default_feed("milwaukee-police"), url="http://calls.example.invalid/", interval=60.0
    )
    with Fetcher(USER_AGENT, transport=transport) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(feed)
    assert caught.value.kind == "dns"
    assert transport.calls == 1
    assert "calls.example.invalid" in str(caught.value) and "nslookup" in str(caught.value)
    assert time.monotonic() - started < 5  # not a timing claim: a retry would wait >= 1 s


def test_stopping_never_waits_for_a_backoff_sleep(server: _Server) -> None:
    feed = _feed(server, "/error", interval=600.0)
    with Fetcher(USER_AGENT, backoff_initial=30.0, backoff_max=30.0) as fetcher:
        caught: list[BaseException] = []

        def fetch() -> None:
            try:
                fetcher.fetch(feed)
            except FetchError as exc:
                caught.append(exc)

        thread = threading.Thread(target=fetch)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.hits and time.monotonic() < deadline:
            time.sleep(0.01)
        fetcher.cancel()
        thread.join(10)
        assert not thread.is_alive()
    assert len(server.hits) == 1  # the 30 s backoff was cut short, no second attempt
    assert isinstance(caught[0], FetchError) and caught[0].kind == "cancelled"


# --- 13. a hung scraper is visible -------------------------------------------------------------


def test_a_poll_past_its_deadline_is_reported_and_does_not_hold_up_the_others(
    tmp_path: Path, server: _Server, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def hang(page: Page) -> ParseResult:
        release.wait(60)  # a scraper stuck in a loop
        return ParseResult(rows=[])

    stuck = _feed(server, "/page", interval=0.5, connect_timeout=0.2, read_timeout=0.2)
    stuck = dataclasses.replace(
        stuck, slug="stuck", scraper=dataclasses.replace(stuck.scraper, parse=hang)
    )
    healthy = dataclasses.replace(_feed(server, "/page?healthy", interval=0.5), slug="healthy")
    caplog.set_level(logging.WARNING, logger="dispatchwatch.daemon")
    with Archive(tmp_path / "a.db") as archive, Fetcher(USER_AGENT) as fetcher:
        daemon = Daemon(
            [stuck, healthy], archive, fetcher, settings=DaemonSettings(max_workers=4, jitter=0)
        )
        daemon.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                rows = archive.conn.execute(
                    "SELECT feed, error_kind FROM polls WHERE error_kind = 'deadline_exceeded'"
                ).fetchall()
                if rows:
                    break
                time.sleep(0.1)
            assert rows == [("stuck", "deadline_exceeded")]
            healthy_polls = archive.conn.execute(
                "SELECT count(*) FROM polls WHERE feed = 'healthy'"
            ).fetchone()[0]
            assert healthy_polls >= 2
        finally:
            started = time.monotonic()
            daemon.stop(timeout=0.5)
            stopped_in = time.monotonic() - started
            release.set()
    assert stopped_in < 5  # the stuck poll is abandoned, not waited for
    assert any("past its" in r.getMessage() and "stuck" in r.getMessage() for r in caplog.records)
    with closing(sqlite3.connect(tmp_path / "a.db")) as conn:
        status = subprocess.run(
            [sys.executable, "-m", "dispatchwatch", "status", "--db", str(tmp_path / "a.db")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert conn.execute("SELECT count(*) FROM feeds").fetchone() == (2,)
    assert "deadline_exceeded" in status.stdout or "past its" in status.stdout


# --- 10. one daemon per archive ----------------------------------------------------------------


def test_a_second_daemon_on_the_same_archive_is_refused_naming_the_first(
    tmp_path: Path, server: _Server
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "database: dispatch.db\ncontact: dispatchwatch-tests@localhost\nfeeds:\n  milwaukee-police:\n"
        f"    url: http://127.0.0.1:{server.server_port}/page\n    interval: 30s\n"
    )
    first = subprocess.Popen(
        [sys.executable, "-m", "dispatchwatch", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not server.hits and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.hits, "the first daemon never polled"
        second = subprocess.run(
            [sys.executable, "-m", "dispatchwatch", "run", "--once", "-c", str(config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert second.returncode != 0
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"PID {first.pid}" in lines[0], second.stderr
        assert "Traceback" not in second.stderr
        assert len(server.hits) == 1  # the second one polled nothing
    finally:
        first.terminate()
        first.wait(30)
    # Once the first has stopped, the archive is free again.
    again = subprocess.run(
        [sys.executable, "-m", "dispatchwatch", "run", "--once", "-c", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
