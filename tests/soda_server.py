"""A small Socrata SODA server on 127.0.0.1 for the adapter's end-to-end tests.

It serves datasets at ``/resource/ID.json`` and honours what the adapter sends: ``$where``
(comparisons of a column with a quoted literal, joined by AND; times compared as times),
``$order`` (columns, ASC/DESC), ``$limit``, ``$offset`` and ``$select`` (``:*, *`` adds the
system columns; ``count(*) AS n, max(:updated_at) AS updated_at`` answers the aggregate).
Each row gets ``:id`` and ``:updated_at`` like Socrata's. Unknown columns in a query answer
400 with Socrata's error object. Faults: ``broken`` offsets answer 500.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_CONDITION = re.compile(r"^\s*(:?[A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<|=)\s*'([^']*)'\s*$")
_AGGREGATE = re.compile(r"^\s*count\(\*\)\s+AS\s+(\w+)\s*,\s*max\((:?\w+)\)\s+AS\s+(\w+)\s*$", re.I)
_RESOURCE = re.compile(r"^/resource/([a-z0-9]{4}-[a-z0-9]{4})\.json$")


def _key(value: Any) -> Any:
    """Times compare as times (floating ISO, with or without ``Z``), the rest as text."""
    if isinstance(value, str):
        try:
            return (0, datetime.fromisoformat(value.rstrip("Z")))
        except ValueError:
            return (1, value)
    return (1, "" if value is None else str(value))


class SodaServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        #: dataset id -> rows (dicts of the dataset's columns)
        self.datasets: dict[str, list[dict[str, Any]]] = {}
        #: (path with query, headers) of every request, in order
        self.seen: list[tuple[str, dict[str, str]]] = []
        #: (dataset, offset) pairs whose page answers 500
        self.broken: set[tuple[str, int]] = set()
        self._clock = 0
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def url(self, dataset: str) -> str:
        return f"{self.base}/resource/{dataset}.json"

    def put(self, dataset: str, rows: list[dict[str, Any]]) -> None:
        """Insert or rewrite rows (matched by their ``_key`` column, else appended); each
        written row gets a fresh ``:updated_at``."""
        with self._lock:
            table = self.datasets.setdefault(dataset, [])
            for row in rows:
                self._clock += 1
                c = self._clock
                stamp = f"2030-01-01T{c // 3600:02d}:{c // 60 % 60:02d}:{c % 60:02d}.000Z"
                key = row.get("_key")
                found = next((r for r in table if key is not None and r.get("_key") == key), None)
                clean = {k: v for k, v in row.items() if k != "_key"}
                if found is None:
                    table.append({**clean, "_key": key, ":id": f"row-{len(table):05d}",
                                  ":updated_at": stamp})  # fmt: skip
                else:
                    found.clear()
                    found.update({**clean, "_key": key, ":id": found.get(":id"),
                                  ":updated_at": stamp})  # fmt: skip

    def delete(self, dataset: str, predicate: Any) -> None:
        with self._lock:
            self.datasets[dataset] = [r for r in self.datasets[dataset] if not predicate(r)]
            self._clock += 1

    def query(self, dataset: str, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            rows = list(self.datasets.get(dataset, []))
        columns = {k for r in rows for k in r} | {":id", ":updated_at"}
        where = query.get("$where")
        if where:
            for part in re.split(r"\s+AND\s+", where, flags=re.I):
                match = _CONDITION.match(part)
                if match is None:
                    return 400, {"error": True, "message": f"Could not parse SoQL: {part}"}
                column, op, literal = match.groups()
                if column not in columns and rows:
                    return 400, {"error": True, "message": f"No such column: {column}"}
                test = {
                    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
                    ">": lambda a, b: a > b, "<": lambda a, b: a < b, "=": lambda a, b: a == b,
                }[op]  # fmt: skip
                rows = [
                    r for r in rows if r.get(column) is not None
                    and test(_key(r.get(column)), _key(literal))
                ]  # fmt: skip
        select = query.get("$select", "")
        aggregate = _AGGREGATE.match(select)
        if aggregate:
            count_as, column, max_as = aggregate.groups()
            values = [r[column] for r in rows if r.get(column) is not None]
            answer = {count_as: str(len(rows))}
            if values:
                answer[max_as] = max(values, key=_key)
            return 200, [answer]
        order = query.get("$order", ":id")
        for part in reversed([p.strip() for p in order.split(",")]):
            name, _, direction = part.partition(" ")
            if name not in columns and rows:
                return 400, {"error": True, "message": f"No such column: {name}"}
            rows.sort(key=lambda r, n=name: _key(r.get(n)), reverse=direction.upper() == "DESC")
        offset = int(query.get("$offset", 0))
        limit = int(query.get("$limit", 1000))
        rows = rows[offset : offset + limit]
        system = select.replace(" ", "").startswith(":*")
        return 200, [
            {k: v for k, v in r.items() if k != "_key" and (system or not k.startswith(":"))}
            for r in rows
        ]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SodaServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        srv.seen.append((self.path, dict(self.headers.items())))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        match = _RESOURCE.match(parts.path)
        if match is None:
            return self._send(404, {"error": True, "message": "not found"})
        dataset = match.group(1)
        if (dataset, int(query.get("$offset", -1))) in srv.broken:
            return self._send(500, {"error": True, "message": "internal error"})
        if dataset not in srv.datasets:
            return self._send(404, {"code": "not_found", "error": True,
                                    "message": f"Dataset {dataset} not found"})  # fmt: skip
        status, payload = srv.query(dataset, query)
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def soda_server() -> Iterator[SodaServer]:
    srv = SodaServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
