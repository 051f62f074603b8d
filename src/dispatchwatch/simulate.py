"""A loopback simulation of live dispatch feeds, with faults on demand.

An HTTP server on 127.0.0.1 serves evolving Milwaukee- and Seattle-format pages from the
models in :mod:`dispatchwatch.synthetic`:

- ``GET /milwaukee/<name>`` and ``GET /seattle/<name>``: any name, each path its own seeded
  model (created on first request), so a bench can point 1,000 feeds at distinct paths. Pages
  carry ``ETag`` and ``Last-Modified`` and answer conditional GETs with 304.
- Simulated time runs at ``speed`` times the wall clock from ``start`` (``advance()`` jumps).
  Milwaukee pages are rebuilt every 5 simulated minutes, as MPD's are; Seattle pages change
  whenever a dispatch or a closure happens.
- ``GET /resource/<id>.json``: a Socrata SODA dataset (any id; Cincinnati's columns), growing
  and rewriting rows as calls progress (:class:`~dispatchwatch.synthetic.SocrataModel`);
  ``$where``/``$order``/``$limit``/``$offset``/``$select`` as in
  :func:`~dispatchwatch.simulate_portals.soda_answer`.
- ``GET /arcgis/rest/services/<name>/MapServer/0/query`` (or ``FeatureServer``): an ArcGIS
  layer of Houston's active incidents (:class:`~dispatchwatch.synthetic.ArcGISModel`), with
  ``where``/``orderByFields``/``resultOffset``/``resultRecordCount``/``exceededTransferLimit``
  as in :func:`~dispatchwatch.simulate_portals.arcgis_answer` (``arcgis_max_records`` a page).
- ``POST /_faults`` ``{"path": "/milwaukee/a", "fault": "http500", "count": 2, ...options}``
  queues faults for a path (Python: :meth:`Simulation.inject`); each request to the path
  consumes one. The option ``match`` limits a fault to requests whose query string contains
  it (``"match": "resultOffset=100"``: only page 2 of a paged query fails).
  ``GET /_stats`` returns per-path counters; ``GET /`` lists example URLs.

Faults and what the :class:`~dispatchwatch.fetch.Fetcher` makes of them:

============  =========================================================  ======================
fault         served                                                     Fetcher / parser
============  =========================================================  ======================
http500       HTTP 500 (``status`` option: any 5xx)                      ``http_status`` (500)
http429       HTTP 429 with ``Retry-After`` (``retry_after``, 1 s)       ``too_many_requests``
slow          waits ``seconds`` (default 5) before answering             ``timeout``
truncated     Content-Length of the full page, half the body, close      ``truncated``
garbage       200 OK with random bytes                                   LayoutError on parse
oversize      200 OK streaming ``size`` bytes (20 MB), chunked           ``too_large``
layout        200 OK, a redesigned page with other headers               LayoutError on parse
drop          closes the connection without a response                   ``connection``
============  =========================================================  ======================

The Fetcher retries the transient ones (5xx, 429, timeouts, connection, truncated), so a fault
observed as a final error needs ``count`` at least the number of attempts.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from .simulate_portals import arcgis_answer, soda_answer
from .synthetic import ArcGISModel, MilwaukeeModel, SeattleModel, SocrataModel
from .synthetic.arcgis import FIELDS as ARCGIS_FIELDS

FAULTS = ("http500", "http429", "slow", "truncated", "garbage", "oversize", "layout", "drop")
KINDS = ("milwaukee", "seattle")
#: Query endpoints of the portal families (answers depend on the query, not only the path).
PORTALS = ("socrata", "arcgis")
_RESOURCE = re.compile(r"^/resource/([a-z0-9]{4}-[a-z0-9]{4})\.json$")
_LAYER_QUERY = re.compile(
    r"^/arcgis/rest/services/([A-Za-z0-9_]+)/(?:MapServer|FeatureServer)/0/query$"
)
#: MPD rebuilds its page every 5 minutes.
MILWAUKEE_REFRESH = 300.0


# --- redesigned pages (the "layout" fault) -----------------------------------------------------


def redesigned_page(kind: str, seed: int = 0) -> bytes:
    """A plausible redesign of the feed: same data, new markup and header names."""
    rows = "".join(
        f"<div class='call'><span class='ref'>{seed}{n:04d}</span><span class='when'>"
        f"2024-04-01T12:{n:02d}:00</span><span class='where'>{100 + n} Main St</span></div>\n"
        for n in range(5)
    )
    title = "Milwaukee Police Calls" if kind == "milwaukee" else "Seattle Fire Incidents"
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"</head>\n<body><main><h1>{title}</h1>\n<table class='calls'><thead><tr>"
        "<th>Reference</th><th>Reported</th><th>Address</th><th>Area</th><th>Category</th>"
        f"<th>State</th></tr></thead><tbody></tbody></table>\n{rows}</main></body></html>\n"
    ).encode()


# --- state -------------------------------------------------------------------------------------


@dataclass
class _Fault:
    name: str
    options: dict[str, Any]


@dataclass
class _Cached:
    body: bytes
    etag: str
    last_modified: float  # epoch seconds, strictly increasing per path


@dataclass
class _Feed:
    kind: str
    model: MilwaukeeModel | SeattleModel | SocrataModel | ArcGISModel
    lock: threading.Lock = field(default_factory=threading.Lock)
    cached: _Cached | None = None


@dataclass
class _Stats:
    requests: int = 0
    ok: int = 0
    not_modified: int = 0
    faults: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "not_modified": self.not_modified,
            "faults": dict(self.faults),
            "faults_served": sum(self.faults.values()),
        }


class Simulation:
    """The loopback server. ``start()`` returns its base URL; ``stop()`` shuts it down."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        speed: float = 1.0,
        start: datetime | None = None,
        milwaukee_rate: float = 60.0,
        seattle_rate: float = 30.0,
        seattle_extra_dispatches: Sequence[tuple[int, float]] | None = None,
        socrata_rate: float = 40.0,
        arcgis_rate: float = 60.0,
        arcgis_max_records: int = 1000,
        not_after_real_time: bool = False,
        change_every: float | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must not be negative")
        self.host, self.port, self.seed, self.speed = host, port, seed, speed
        self.start_time = (start or datetime.now(UTC)).astimezone(UTC)
        self.milwaukee_rate, self.seattle_rate = milwaukee_rate, seattle_rate
        #: Dispatch rows a Seattle incident gets after its first (SeattleModel's option).
        self.seattle_extra_dispatches = seattle_extra_dispatches
        self.socrata_rate, self.arcgis_rate = socrata_rate, arcgis_rate
        self.arcgis_max_records = arcgis_max_records
        #: The simulated clock never passes the real one (the demo: no call in the future).
        self.not_after_real_time = not_after_real_time
        #: With ``change_every`` (simulated seconds), each Milwaukee/Seattle page moves on
        #: only once every ``change_every`` seconds, each path at a phase of its own: polled
        #: every ``interval`` seconds, a share ``interval / change_every`` of polls see a
        #: change (benches set the change rate this way; the page still changes as the model
        #: says: new calls, closures).
        if change_every is not None and not change_every > 0:
            raise ValueError("change_every must be positive")
        self.change_every = change_every
        self._t0 = time.monotonic()
        self._offset = 0.0  # simulated seconds added by advance()
        self._lock = threading.Lock()
        self._feeds: dict[str, _Feed] = {}
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._stats: dict[str, _Stats] = defaultdict(_Stats)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        server = _Server((self.host, self.port), _Handler)
        server.sim = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.1,), name="dispatchwatch-simulation", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()  # wakes "slow" faults
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulation:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, kind: str, name: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown feed kind {kind!r} (expected one of {', '.join(KINDS)})")
        return f"{self.base_url}/{kind}/{name}"

    def socrata_url(self, dataset: str = "gexm-h6bt") -> str:
        """A simulated Socrata dataset (``/resource/<dataset>.json``)."""
        return f"{self.base_url}/resource/{dataset}.json"

    def arcgis_url(self, name: str = "HEC_Active_Incidents") -> str:
        """A simulated ArcGIS layer (``…/MapServer/0``; queries go to ``…/0/query``)."""
        return f"{self.base_url}/arcgis/rest/services/{name}/MapServer/0"

    # --- time ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The simulated time (UTC)."""
        elapsed = (time.monotonic() - self._t0) * self.speed + self._offset
        simulated = self.start_time + timedelta(seconds=elapsed)
        if self.not_after_real_time:
            return min(simulated, datetime.now(UTC))
        return simulated

    def _page_time(self, path: str) -> datetime:
        """The simulated time a page of ``path`` shows: :meth:`now`, or with
        ``change_every`` the last of ``path``'s own change times (its phase from the path)."""
        now = self.now()
        period = self.change_every
        if period is None:
            return now
        phase = zlib.crc32(path.encode()) / 2**32 * period
        elapsed = (now - self.start_time).total_seconds()
        ticks = (elapsed - phase) // period
        return self.start_time + timedelta(seconds=max(0.0, ticks * period + phase))

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward (tests use this with ``speed=0``)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += seconds

    # --- faults and stats ---------------------------------------------------------------------

    def inject(self, path: str, fault: str, count: int = 1, **options: Any) -> None:
        """Serve ``fault`` to the next ``count`` requests for ``path`` (e.g. ``/milwaukee/a``
        or a full URL); with ``match="text"``, only to requests whose query contains it."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (expected one of {', '.join(FAULTS)})")
        if count < 1:
            raise ValueError("count must be at least 1")
        path = urlsplit(path).path or "/"
        with self._lock:
            self._faults[path].extend(_Fault(fault, dict(options)) for _ in range(count))

    def clear_faults(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._faults.clear()
            else:
                self._faults.pop(urlsplit(path).path, None)

    def stats(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {path: s.as_json() for path, s in sorted(self._stats.items())}

    def _next_fault(self, path: str, query: str = "") -> _Fault | None:
        with self._lock:
            self._stats[path].requests += 1
            queue = self._faults.get(path)
            if not queue:
                return None
            fault = next((f for f in queue if str(f.options.get("match", "")) in query), None)
            if fault is None:
                return None
            queue.remove(fault)
            self._stats[path].faults[fault.name] += 1
            return fault

    def _count(self, path: str, what: str) -> None:
        with self._lock:
            stats = self._stats[path]
            setattr(stats, what, getattr(stats, what) + 1)

    # --- pages --------------------------------------------------------------------------------

    def _feed(self, kind: str, path: str) -> _Feed:
        with self._lock:
            feed = self._feeds.get(path)
        if feed is not None:
            return feed
        # Built outside the lock (a Seattle model generates its day so far); a racing
        # request for the same path builds an identical model and setdefault keeps one.
        # A stable per-path seed: the same path shows the same calls on every run.
        seed = (self.seed * 1_000_003 + zlib.crc32(path.encode())) & 0x7FFFFFFF
        model: MilwaukeeModel | SeattleModel | SocrataModel | ArcGISModel
        if kind == "milwaukee":
            model = MilwaukeeModel(seed, self.start_time, self.milwaukee_rate)
        elif kind == "socrata":
            model = SocrataModel(seed, self.start_time, self.socrata_rate)
        elif kind == "arcgis":
            model = ArcGISModel(seed, self.start_time, self.arcgis_rate)
        else:
            model = SeattleModel(
                seed, self.start_time, self.seattle_rate, self.seattle_extra_dispatches
            )
        with self._lock:
            return self._feeds.setdefault(path, _Feed(kind, model))

    def page(self, kind: str, path: str) -> _Cached:
        """The current page of ``path``, its model brought up to the simulated time."""
        feed = self._feed(kind, path)
        now = self._page_time(path)
        with feed.lock:
            model = feed.model
            behind = (now - model.now).total_seconds()
            if kind == "milwaukee":
                behind = behind // MILWAUKEE_REFRESH * MILWAUKEE_REFRESH
            if behind > 0 or feed.cached is None:
                if behind > 0:
                    model.advance(behind)
                body = model.page()
                if feed.cached is None or feed.cached.body != body:
                    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                    previous = feed.cached.last_modified if feed.cached else 0.0
                    # Strictly increasing, so If-Modified-Since never hides a change.
                    modified = max(float(int(time.time())), previous + 1)
                    feed.cached = _Cached(body, etag, modified)
            assert feed.cached is not None
            return feed.cached

    def day_page(self, path: str, day_text: str) -> bytes:
        """Seattle's page of the day ``M/D/YYYY`` at the simulated time."""
        feed = self._feed("seattle", path)
        try:
            month, day, year = (int(part) for part in day_text.split("/"))
            wanted = date(year, month, day)
        except ValueError:
            wanted = None
        with feed.lock:
            model = feed.model
            assert isinstance(model, SeattleModel)
            return model.page(wanted)

    def query(self, kind: str, path: str, query: str) -> tuple[int, bytes]:
        """``(status, JSON body)`` of a portal query (``kind`` in :data:`PORTALS`), its model
        brought up to the simulated time."""
        feed = self._feed(kind, path)
        now = self.now()
        params = dict(parse_qsl(query, keep_blank_values=True))
        with feed.lock:
            model = feed.model
            assert isinstance(model, SocrataModel | ArcGISModel)
            behind = (now - model.now).total_seconds()
            if behind > 0:
                model.advance(behind)
            if isinstance(model, SocrataModel):
                status, data = soda_answer(model.rows(), params)
            else:
                status, data = arcgis_answer(
                    model.features(), ARCGIS_FIELDS, params, object_id="UID",
                    max_record_count=self.arcgis_max_records,
                )  # fmt: skip
        return status, json.dumps(data).encode()

    def body(self, kind: str, path: str, query: str = "") -> bytes:
        """What ``path`` would answer now (a page, or a portal query's JSON)."""
        if kind in PORTALS:
            return self.query(kind, path, query)[1]
        return self.page(kind, path).body

    def faulted_body(self, kind: str, path: str, fault: _Fault, query: str = "") -> bytes:
        rng = random.Random(f"{self.seed}:{path}:{fault.name}")
        if fault.name == "garbage":
            return rng.randbytes(int(fault.options.get("size", 4096)))
        if fault.name == "layout":
            if kind == "arcgis":  # ArcGIS's error body, with HTTP 200
                return b'{"error": {"code": 500, "message": "Error performing query operation"}}'
            if kind == "socrata":
                return b'{"error": true, "message": "Internal error"}'
            return redesigned_page(kind, self.seed)
        return self.body(kind, path, query)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a bench opens many connections at once
    sim: Simulation

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-response (timeouts, size caps) is expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dispatchwatch-simulation"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- routing ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        parts = path.strip("/").split("/")
        if path == "/_stats":
            self._json(200, self.server.sim.stats())
        elif path == "/":
            sim = self.server.sim
            self._json(
                200,
                {
                    "milwaukee": sim.url("milwaukee", "example"),
                    "seattle": sim.url("seattle", "example"),
                    "socrata": sim.socrata_url(),
                    "arcgis": sim.arcgis_url() + "/query?where=1%3D1&outFields=*&f=json",
                    "faults": list(FAULTS),
                    "simulated_time": sim.now().isoformat(),
                },
            )
        elif len(parts) == 2 and parts[0] in KINDS and parts[1]:
            self._feed_page(parts[0], path)
        elif _RESOURCE.match(path):
            self._portal("socrata", path)
        elif _LAYER_QUERY.match(path):
            self._portal("arcgis", path)
        else:
            self._send(404, b"not found\n", {"Content-Type": "text/plain"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/_faults":
            self._send(404, b"not found\n", {"Content-Type": "text/plain"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length) or b"{}")
            options = {k: v for k, v in data.items() if k not in ("path", "fault", "count")}
            self.server.sim.inject(
                data["path"], data["fault"], int(data.get("count", 1)), **options
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(
            200, {"queued": data["fault"], "path": data["path"], "count": int(data.get("count", 1))}
        )

    # --- responses ----------------------------------------------------------------------------

    def _portal(self, kind: str, path: str) -> None:
        sim = self.server.sim
        query = urlsplit(self.path).query
        fault = sim._next_fault(path, query)
        if fault is not None:
            self._fault(kind, path, fault, query)
            return
        status, body = sim.query(kind, path, query)
        sim._count(path, "ok")
        self._send(status, body, {"Content-Type": "application/json;charset=utf-8"})

    def _feed_page(self, kind: str, path: str) -> None:
        sim = self.server.sim
        fault = sim._next_fault(path)
        if fault is not None:
            self._fault(kind, path, fault)
            return
        cached = sim.page(kind, path)
        past = parse_qs(urlsplit(self.path).query).get("incDate", [""])[0]
        if kind == "seattle" and past:
            # A past day's page, like the real ?incDate=M/D/YYYY (not cached: rarely asked).
            self._send(200, sim.day_page(path, past), {"Content-Type": "text/html"})
            return
        last_modified = formatdate(cached.last_modified, usegmt=True)
        headers = {
            "ETag": cached.etag,
            "Last-Modified": last_modified,
            "Content-Type": "text/html",
            "Cache-Control": "no-cache",
        }
        if self._not_modified(cached):
            sim._count(path, "not_modified")
            self._send(304, b"", {"ETag": cached.etag, "Last-Modified": last_modified})
            return
        sim._count(path, "ok")
        self._send(200, cached.body, headers)

    def _not_modified(self, cached: _Cached) -> bool:
        match = self.headers.get("If-None-Match")
        if match is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            return cached.etag in [tag.strip() for tag in match.split(",")] or match == "*"
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return cached.last_modified <= parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _fault(self, kind: str, path: str, fault: _Fault, query: str = "") -> None:
        sim, options = self.server.sim, fault.options
        name = fault.name
        if name == "http500":
            self._send(
                int(options.get("status", 500)),
                b"<html><body>Internal Server Error</body></html>",
                {"Content-Type": "text/html"},
            )
        elif name == "http429":
            self._send(
                429,
                b"Too Many Requests\n",
                {"Retry-After": str(options.get("retry_after", 1)), "Content-Type": "text/plain"},
            )
        elif name == "slow":
            sim._stopping.wait(float(options.get("seconds", 5.0)))
            body = sim.body(kind, path, query)
            self._send(200, body, {"Content-Type": "text/html"})
        elif name == "truncated":
            body = sim.body(kind, path, query)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif name == "oversize":
            self._stream(int(options.get("size", 20 * 1024 * 1024)))
        elif name == "drop":
            self.close_connection = True  # no status line at all
        else:  # garbage, layout: a 200 the parser must reject
            self._send(
                200, sim.faulted_body(kind, path, fault, query), {"Content-Type": "text/html"}
            )

    def _stream(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Transfer-Encoding", "chunked")  # no Content-Length to reject early
        self.end_headers()
        chunk = b"<tr><td>" + b"x" * 65_000 + b"</td></tr>\n"
        sent = 0
        while sent < size:
            piece = chunk[: size - sent]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        self.wfile.write(b"0\r\n\r\n")

    def _json(self, status: int, data: Any) -> None:
        self._send(
            status,
            json.dumps(data, indent=2).encode() + b"\n",
            {"Content-Type": "application/json"},
        )

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status != 304:
            self.wfile.write(body)
