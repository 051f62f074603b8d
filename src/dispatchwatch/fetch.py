"""Fetching feed pages politely: one shared client, timeouts, a size cap, conditional GET,
retries only on transient failures, and at most one request at a time per host.

Error kinds (``FetchError.kind``):

- ``timeout``: connect/read timeout, the deadline passed, or the host stayed busy too long.
- ``connection``: no response at all (refused, reset, closed before any response).
- ``truncated``: the response started but the body ended early (shorter than its
  Content-Length, or the connection dropped mid-body). Retried like a connection error.
- ``http_status``: a 4xx (not retried) or a 5xx that persisted; ``.status`` holds the code.
- ``too_many_requests``: a 429 that persisted (``.status`` 429).
- ``too_large``: the body is larger than the feed's ``max_bytes`` (announced or streamed).
- ``decoding``: a corrupt compressed body (bad gzip/deflate).
- ``dns``: the host name does not resolve (offline, a typo in the URL). Not retried: waiting
  does not make a name resolve, and a first run with no network should say so at once.
- ``redirect_off_host``: the server redirected to another host, which the feed does not allow
  (``redirect_hosts:``): its page is not the feed's page.
- ``cancelled``: the daemon is stopping: a retry's backoff sleep is cut short, or the fetcher
  was closed under a request the daemon stopped waiting for.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
import tenacity

from .config import Feed
from .errors import FetchError
from .scraper import Request

#: Longest Retry-After we honour; a server asking for more is not worth waiting for.
MAX_RETRY_AFTER = 60.0
#: Share of the feed's interval that retries may use, so a poll ends before the next is due.
INTERVAL_SHARE = 0.8
#: Redirects followed per request (all on the feed's host, or hosts it allows).
MAX_REDIRECTS = 10


@dataclass(slots=True)
class FetchResult:
    url: str
    status: int
    body: bytes
    headers: dict[str, str]
    etag: str | None
    last_modified: str | None
    not_modified: bool
    elapsed_ms: float
    attempts: int


class _Retryable(FetchError):
    """A transient failure of one attempt (timeouts, connection trouble, 429, 5xx)."""

    def __init__(
        self, message: str, kind: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, kind, status)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent or
    unreadable (then ordinary backoff applies)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Fetcher:
    """Fetches feeds over ONE shared ``httpx.Client``; safe to call from several threads."""

    def __init__(
        self,
        user_agent: str,
        *,
        max_retry_seconds: float | None = None,
        transport: httpx.BaseTransport | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self.user_agent = user_agent
        self.max_retry_seconds = max_retry_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # httpx.Client is thread-safe; its pool keeps connections alive between polls.
        self._cancelled = threading.Event()
        self._closed = False
        self._client = httpx.Client(
            headers={"User-Agent": user_agent},
            transport=transport,
            # Redirects are followed by hand, so each hop's host can be checked.
            follow_redirects=False,
            # Idle connections kept for reuse: enough for one per host of a large config
            # (a request at a time per host); servers drop idle ones after a few seconds.
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )
        self._host_locks: dict[str, threading.Lock] = {}
        self._host_locks_guard = threading.Lock()

    def close(self) -> None:
        """Close the client. A fetch still running in another thread (a poll the daemon gave
        up waiting for) then ends with a :class:`FetchError` of kind ``cancelled``, never
        httpx's error about a closed client."""
        self._closed = True
        self._cancelled.set()  # a retry waiting out its backoff gives up at once
        self._client.close()

    def _check_open(self, url: str) -> None:
        if self._closed:
            raise FetchError(f"{url}: the daemon is stopping: request abandoned", "cancelled")

    def cancel(self) -> None:
        """Cut every retry's backoff sleep short from now on (the daemon is stopping): a
        fetch waiting to retry gives up at once with kind ``cancelled``."""
        self._cancelled.set()

    def _sleep(self, seconds: float) -> None:
        if self._cancelled.wait(seconds):
            raise FetchError("the daemon is stopping: retry abandoned", "cancelled")

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- politeness ---------------------------------------------------------------------------

    def _host_lock(self, url: str) -> threading.Lock:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{(parts.netloc or '').lower()}"
        with self._host_locks_guard:
            return self._host_locks.setdefault(key, threading.Lock())

    @contextmanager
    def _one_per_host(self, url: str, deadline: float) -> Iterator[None]:
        lock = self._host_lock(url)
        wait = deadline - time.monotonic()
        # No deadline: the holder's own timeouts bound the wait.
        acquired = lock.acquire() if wait == float("inf") else lock.acquire(timeout=max(0.0, wait))
        if not acquired:
            raise FetchError(f"{url}: timed out waiting for other requests to the host", "timeout")
        try:
            yield
        finally:
            lock.release()

    # --- fetching -----------------------------------------------------------------------------

    def fetch(
        self,
        feed: Feed,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        deadline: float | None = None,
        request: Request | None = None,
    ) -> FetchResult:
        """GET ``request`` (default: ``feed.url``) with the feed's timeouts and size cap;
        raises :class:`FetchError` (see the module doc for its kinds).

        ``deadline`` is a ``time.monotonic()`` value by which the whole fetch, retries
        included, must be over. Retries also stop within ``INTERVAL_SHARE`` of the feed's
        interval (and ``max_retry_seconds``), so a failing feed never overlaps its next poll.
        """
        started = time.monotonic()
        budget = feed.interval * INTERVAL_SHARE
        if self.max_retry_seconds is not None:
            budget = min(budget, self.max_retry_seconds)
        retry_until = started + budget
        hard_deadline = deadline if deadline is not None else float("inf")
        retry_until = min(retry_until, hard_deadline)
        attempts = 0

        def attempt() -> FetchResult:
            nonlocal attempts
            attempts += 1
            result = self._attempt(feed, request, etag, last_modified, hard_deadline)
            result.attempts = attempts
            result.elapsed_ms = round((time.monotonic() - started) * 1000, 3)
            return result

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=self._wait,
            sleep=self._sleep,
            stop=lambda state: time.monotonic() + (state.upcoming_sleep or 0.0) >= retry_until,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except (_Retryable, RuntimeError) as exc:
            if self._closed:
                # close() came while this fetch ran (httpx: "the client has been closed", or
                # the connection cut under a read): the daemon stopped waiting for it.
                raise FetchError(
                    f"{feed.slug}: the daemon is stopping: request abandoned", "cancelled"
                ) from exc
            if not isinstance(exc, _Retryable):
                raise
            raise FetchError(
                f"{exc} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})",
                exc.kind,
                exc.status,
            ) from exc

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            # The server said when; a wait past the budget makes the stop condition give up
            # rather than knock early.
            return exc.retry_after if exc.retry_after <= MAX_RETRY_AFTER else float("inf")
        # Exponential backoff with full jitter, so many feeds do not retry in lockstep.
        step = min(self.backoff_max, self.backoff_initial * 2 ** (state.attempt_number - 1))
        return step / 2 + random.uniform(0, step / 2)

    def _attempt(
        self,
        feed: Feed,
        request: Request | None,
        etag: str | None,
        last_modified: str | None,
        deadline: float,
    ) -> FetchResult:
        url = request.full_url if request is not None else feed.url
        headers: dict[str, str] = dict(request.headers) if request is not None else {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        with self._one_per_host(url, deadline):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError(f"{url}: deadline passed before the request", "timeout")
            self._check_open(url)
            connect = min(feed.connect_timeout, remaining)
            read = min(feed.read_timeout, remaining)
            timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
            stage = "request"
            try:
                for _hop in range(MAX_REDIRECTS + 1):
                    with self._client.stream("GET", url, headers=headers, timeout=timeout) as resp:
                        if resp.is_redirect and resp.next_request is not None:
                            url = self._redirect(feed, url, str(resp.next_request.url))
                            continue
                        stage = "body"
                        return self._read(feed, url, resp, deadline)
                raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects", "http_status")
            except httpx.ConnectError as exc:
                host = _unresolved_host(exc, url)
                if host is not None:
                    raise FetchError(
                        f"{url}: cannot resolve the host name {host!r} (no network, DNS down, "
                        "or a typo in the feed's url: check `ping` / `nslookup` on this "
                        "machine and the url in config.yaml)",
                        "dns",
                    ) from exc
                kind = "connection"
                raise _Retryable(f"{url}: {kind}: {exc}", kind) from exc
            except httpx.TimeoutException as exc:
                raise _Retryable(f"{url}: timed out ({type(exc).__name__})", "timeout") from exc
            except httpx.RemoteProtocolError as exc:
                kind = "truncated" if stage == "body" else "connection"
                raise _Retryable(f"{url}: {kind}: {exc}", kind) from exc
            except httpx.NetworkError as exc:
                kind = "truncated" if stage == "body" else "connection"
                raise _Retryable(f"{url}: {kind}: {exc}", kind) from exc
            except httpx.DecodingError as exc:  # a corrupt gzip/deflate body
                raise FetchError(f"{url}: cannot decode the body: {exc}", "decoding") from exc
            except httpx.TooManyRedirects as exc:
                raise FetchError(f"{url}: {exc}", "http_status") from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # e.g. a bad URL: no retry
                raise FetchError(f"{url}: {exc}", "connection") from exc

    def _redirect(self, feed: Feed, url: str, target: str) -> str:
        """The next hop of a redirect, if it stays on the feed's host (or one it allows)."""
        here, there = _host(url), _host(target)
        allowed = {here, _host(feed.url), *(h.lower() for h in feed.redirect_hosts)}
        if there not in allowed:
            raise FetchError(
                f"{url}: redirected to another host, {there} (not the feed's page; add it to "
                "the feed's redirect_hosts if it is)",
                "redirect_off_host",
            )
        return target

    def _read(self, feed: Feed, url: str, resp: httpx.Response, deadline: float) -> FetchResult:
        status = resp.status_code
        headers = dict(resp.headers.items())
        if status == 429:
            raise _Retryable(
                f"{url}: HTTP 429 Too Many Requests",
                "too_many_requests",
                429,
                parse_retry_after(resp.headers.get("retry-after")),
            )
        if status >= 500:
            raise _Retryable(
                f"{url}: HTTP {status}",
                "http_status",
                status,
                parse_retry_after(resp.headers.get("retry-after")),
            )
        if status >= 400:
            raise FetchError(f"{url}: HTTP {status}", "http_status", status)
        etag = resp.headers.get("etag")
        modified = resp.headers.get("last-modified")
        if status == 304:
            # Read the (empty) body to its end: a response closed unread takes its
            # connection with it, and most polls are 304s.
            resp.read()
            return FetchResult(url, status, b"", headers, etag, modified, True, 0.0, 0)
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > feed.max_bytes:
            raise FetchError(
                f"{url}: the page is {int(declared):,} bytes, over the "
                f"{feed.max_bytes:,}-byte limit",
                "too_large",
                status,
            )
        body = bytearray()
        # Count while streaming: a lying or absent Content-Length cannot make us buffer more.
        for chunk in resp.iter_bytes():
            body += chunk
            if len(body) > feed.max_bytes:
                raise FetchError(
                    f"{url}: the page exceeds the {feed.max_bytes:,}-byte limit",
                    "too_large",
                    status,
                )
            if time.monotonic() > deadline:
                raise FetchError(f"{url}: deadline passed while reading the body", "timeout")
        return FetchResult(url, status, bytes(body), headers, etag, modified, False, 0.0, 0)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _unresolved_host(exc: BaseException, url: str) -> str | None:
    """The host name, when ``exc`` is a failed name lookup (``socket.gaierror`` somewhere in
    its chain, or the resolver's messages as httpcore words them)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return _host(url)
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    if any(
        marker in text
        for marker in (
            "name or service not known",
            "temporary failure in name resolution",
            "nodename nor servname",
            "no address associated",
            "getaddrinfo failed",
        )
    ):
        return _host(url)
    return None
