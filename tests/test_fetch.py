"""The Fetcher against a real HTTP server on 127.0.0.1 (no mocks, nothing leaves the host)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dispatchwatch.config import Config, Feed, default_feed
from dispatchwatch.errors import FetchError
from dispatchwatch.fetch import Fetcher, parse_retry_after

LAST_MODIFIED = "Sat, 21 Jan 2023 22:54:13 GMT"
Handler = Callable[["_Handler", int], None]  # (request handler, nth request to this path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Handler]
    hits: defaultdict[str, list[tuple[float, dict[str, str]]]]
    active: int
    max_active: int
    lock: threading.Lock
    events: dict[str, object]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up mid-response is what several tests do on purpose


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked: like a real server
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            nth = len(srv.hits[self.path])
            srv.hits[self.path].append((time.monotonic(), dict(self.headers.items())))
            srv.active += 1
            srv.max_active = max(srv.max_active, srv.active)
        try:
            srv.routes[self.path](self, nth)
        except (BrokenPipeError, ConnectionResetError):
            srv.events[self.path + ":aborted"] = True
        finally:
            with srv.lock:
                srv.active -= 1

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes, srv.hits, srv.active, srv.max_active = {}, defaultdict(list), 0, 0
    srv.lock, srv.events = threading.Lock(), {}
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    # Short backoff so retries in tests are quick; behaviour is the same as in production.
    with Fetcher(
        Config(contact="ops@example.org").user_agent, backoff_initial=0.05, backoff_max=0.2
    ) as f:
        yield f


def feed_for(srv: _Server, path: str, **options: object) -> Feed:
    values: dict[str, object] = {
        "interval": 10.0,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "max_bytes": 1_000_000,
    }
    values.update(options)
    base = default_feed("milwaukee-police")
    return dataclasses.replace(base, url=f"http://127.0.0.1:{srv.server_port}{path}", **values)


def page(handler: _Handler, nth: int) -> None:
    if handler.headers.get("If-None-Match") == '"v1"':
        handler.send(304, headers={"ETag": '"v1"'})
        return
    handler.send(
        200,
        b"<html>hello</html>",
        {"ETag": '"v1"', "Last-Modified": LAST_MODIFIED, "Content-Type": "text/html"},
    )


def test_success_sends_user_agent_and_returns_validators(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/ok"] = page
    result = fetcher.fetch(feed_for(server, "/ok"))
    assert (result.status, result.body, result.attempts) == (200, b"<html>hello</html>", 1)
    assert result.etag == '"v1"' and result.last_modified == LAST_MODIFIED
    assert result.headers["content-type"] == "text/html" and not result.not_modified
    agent = server.hits["/ok"][0][1]["User-Agent"]
    assert agent.startswith("dispatchwatch/") and "ops@example.org" in agent


def test_conditional_get_304(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/ok"] = page
    result = fetcher.fetch(feed_for(server, "/ok"), etag='"v1"', last_modified=LAST_MODIFIED)
    assert result.not_modified and result.status == 304 and result.body == b""
    sent = server.hits["/ok"][0][1]
    assert sent["If-None-Match"] == '"v1"' and sent["If-Modified-Since"] == LAST_MODIFIED


def test_304s_keep_their_connection(server: _Server, fetcher: Fetcher) -> None:
    """Most of a daemon's polls are 304s: each must leave its connection open for the next
    (a 304 closed unread used to take its connection with it: a TCP connect per poll)."""
    ports: list[int] = []

    def not_modified(handler: _Handler, nth: int) -> None:
        ports.append(handler.client_address[1])
        handler.send(304, b"", {"ETag": '"v1"'})

    server.routes["/nm"] = not_modified
    for _ in range(5):
        assert fetcher.fetch(feed_for(server, "/nm"), etag='"v1"').not_modified
    assert len(ports) == 5 and len(set(ports)) == 1


def test_timeout(server: _Server, fetcher: Fetcher) -> None:
    release = threading.Event()

    def slow(handler: _Handler, nth: int) -> None:
        release.wait(5)
        handler.send(200, b"late")

    server.routes["/slow"] = slow
    try:
        with pytest.raises(FetchError) as info:
            fetcher.fetch(feed_for(server, "/slow", read_timeout=0.2, interval=0.5))
    finally:
        release.set()
    assert info.value.kind == "timeout"


def test_503_then_200_is_retried(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/flaky"] = lambda h, nth: h.send(503) if nth == 0 else h.send(200, b"ok")
    result = fetcher.fetch(feed_for(server, "/flaky"))
    assert (result.status, result.body, result.attempts) == (200, b"ok", 2)


def test_persistent_500_gives_up_within_the_interval(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/down"] = lambda h, nth: h.send(500)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed_for(server, "/down", interval=1.0))
    assert (info.value.kind, info.value.status) == ("http_status", 500)
    assert len(server.hits["/down"]) >= 2  # it did retry


def test_429_retry_after_is_honoured(server: _Server, fetcher: Fetcher) -> None:
    def limited(handler: _Handler, nth: int) -> None:
        if nth == 0:
            handler.send(429, headers={"Retry-After": "1"})
        else:
            handler.send(200, b"ok")

    server.routes["/limited"] = limited
    result = fetcher.fetch(feed_for(server, "/limited"))
    assert result.attempts == 2
    (first, _), (second, _) = server.hits["/limited"]
    assert second - first >= 0.95  # the server's wish, not our speed


def test_429_asking_past_the_budget_gives_up(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/limited"] = lambda h, nth: h.send(429, headers={"Retry-After": "30"})
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed_for(server, "/limited", interval=5.0))
    assert (info.value.kind, info.value.status) == ("too_many_requests", 429)
    assert len(server.hits["/limited"]) == 1


def test_404_is_not_retried(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/missing"] = lambda h, nth: h.send(404, b"no")
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed_for(server, "/missing"))
    assert (info.value.kind, info.value.status) == ("http_status", 404)
    assert len(server.hits["/missing"]) == 1


def _stream(handler: _Handler, total: int, declare: bool) -> None:
    handler.send_response(200)
    if declare:
        handler.send_header("Content-Length", str(total))
    else:
        handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"x" * 65536
    for _ in range(total // len(chunk)):
        if declare:
            handler.wfile.write(chunk)
        else:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.server.events[handler.path + ":finished"] = True


@pytest.mark.parametrize("declare", [False, True], ids=["chunked", "content-length"])
def test_oversize_body_is_refused_without_reading_it(
    server: _Server, fetcher: Fetcher, declare: bool
) -> None:
    server.routes["/big"] = lambda h, nth: _stream(h, 200 * 1024 * 1024, declare)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed_for(server, "/big", max_bytes=100_000))
    assert info.value.kind == "too_large"
    assert len(server.hits["/big"]) == 1  # never retried
    deadline = time.monotonic() + 5
    while "/big:aborted" not in server.events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.events.get("/big:aborted") and "/big:finished" not in server.events


def test_truncated_body(server: _Server, fetcher: Fetcher) -> None:
    def short(handler: _Handler, nth: int) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "5000")
        handler.end_headers()
        handler.wfile.write(b"x" * 100)
        handler.close_connection = True

    server.routes["/short"] = short
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed_for(server, "/short", interval=0.5))
    assert info.value.kind == "truncated"


def test_connection_dropped_without_response(server: _Server, fetcher: Fetcher) -> None:
    def drop(handler: _Handler, nth: int) -> None:
        handler.close_connection = True

    server.routes["/drop"] = drop
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed_for(server, "/drop", interval=0.5))
    assert info.value.kind == "connection"


def test_connection_refused(server: _Server, fetcher: Fetcher) -> None:
    feed = feed_for(server, "/x", interval=0.5)
    server.shutdown()
    server.server_close()
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed)
    assert info.value.kind == "connection"


def test_deadline_bounds_the_whole_fetch(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/down"] = lambda h, nth: h.send(503)
    with pytest.raises(FetchError):
        fetcher.fetch(feed_for(server, "/down", interval=60), deadline=time.monotonic() + 0.3)
    # A past deadline means no request at all.
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed_for(server, "/down"), deadline=time.monotonic() - 1)
    assert info.value.kind == "timeout"


def test_one_request_at_a_time_per_host(server: _Server, fetcher: Fetcher) -> None:
    def busy(handler: _Handler, nth: int) -> None:
        time.sleep(0.05)  # keep each request in flight long enough to overlap if allowed
        handler.send(200, b"ok")

    for name in "abcde":
        server.routes[f"/{name}"] = busy
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda n=name: results.append(fetcher.fetch(feed_for(server, f"/{n}")).status)
        )
        for name in "abcde"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 5
    assert server.max_active == 1


def test_other_hosts_are_not_blocked(server: _Server, fetcher: Fetcher) -> None:
    other = _Server(("127.0.0.1", 0), _Handler)
    other.routes, other.hits, other.active, other.max_active = (
        {"/ok": page},
        defaultdict(list),
        0,
        0,
    )
    other.lock, other.events = threading.Lock(), {}
    threading.Thread(target=other.serve_forever, args=(0.05,), daemon=True).start()
    release = threading.Event()

    def held(handler: _Handler, nth: int) -> None:
        release.wait(5)
        handler.send(200, b"held")

    server.routes["/held"] = held
    try:
        slow = threading.Thread(target=fetcher.fetch, args=(feed_for(server, "/held"),))
        slow.start()
        while server.active == 0:
            time.sleep(0.005)
        result = fetcher.fetch(feed_for(other, "/ok"))
        assert result.status == 200
        assert server.active == 1  # the first host's request was still in flight
    finally:
        release.set()
        other.shutdown()
        other.server_close()


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# --- closing under a fetch (the daemon gave up waiting for a poll) ------------------------------


def test_a_fetch_after_close_is_cancelled_not_a_crash(server: _Server) -> None:
    server.routes["/ok"] = page
    fetcher = Fetcher(Config(contact="ops@example.org").user_agent)
    fetcher.close()
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed_for(server, "/ok"))
    assert info.value.kind == "cancelled" and "stopping" in str(info.value)
    assert server.hits["/ok"] == []  # nothing was sent


def test_a_fetch_in_flight_when_closed_ends_cancelled(server: _Server) -> None:
    """An unclean stop closes the client while a poll thread still waits on the server (or is
    about to send the next page's request): that thread gets a ``cancelled`` FetchError, which a
    poll records as abandoned, not httpx's RuntimeError about a closed client."""
    arrived, release = threading.Event(), threading.Event()

    def held(handler: _Handler, nth: int) -> None:
        arrived.set()
        release.wait(5)
        handler.send(200, b"late")

    server.routes["/held"] = held
    fetcher = Fetcher(
        Config(contact="ops@example.org").user_agent, backoff_initial=0.05, backoff_max=0.2
    )
    outcome: list[BaseException | object] = []

    def poll() -> None:
        try:
            outcome.append(fetcher.fetch(feed_for(server, "/held", interval=30.0)))
        except BaseException as exc:  # noqa: BLE001 - the test inspects whatever it was
            outcome.append(exc)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        assert arrived.wait(5)
        fetcher.close()
        release.set()
        thread.join(10)
    finally:
        release.set()
    assert not thread.is_alive()
    [result] = outcome
    # Either the response made it before the pool was torn down (a whole page, fine), or the
    # fetch ends as cancelled: never a RuntimeError or a retry against a closed client.
    if isinstance(result, BaseException):
        assert isinstance(result, FetchError) and result.kind == "cancelled", repr(result)
    else:
        assert result.body == b"late"  # type: ignore[attr-defined]
    assert len(server.hits["/held"]) == 1
