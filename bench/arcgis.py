"""A paged ArcGIS snapshot poll, next to a raw baseline measured in the same run.

    python bench/arcgis.py                      # 20,000 features, pages of 1,000, best of 3
    python bench/arcgis.py --features 5000 --page 500 --runs 1

A loopback ArcGIS layer (the simulation's query engine, :func:`dispatchwatch.simulate_portals.
arcgis_answer`, over ``--features`` Houston-shaped features, at most ``--page`` a page) is
polled by:

- **dispatchwatch**: one snapshot poll of a config-only ``adapter: arcgis`` feed with the
  identity rule (no incident numbers), through the real Fetcher and Daemon into a fresh
  archive: every page while ``exceededTransferLimit``, identity keys, normalization (block
  addresses, rounded coordinates, UTC times), versions, one transaction;
- **raw**: the same pages fetched with httpx in a loop, ``json.loads`` and sqlite3
  ``executemany`` of the attributes into one table, one commit.

Both in this process, on the same server; best of ``--runs``; the ratio is raw time /
dispatchwatch time. Then the same poll again on the unchanged layer (every page fetched, the
combined SHA-256 equal: recorded ``unchanged``, nothing parsed).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

STREETS = ["WESTHEIMER RD", "GRIGGS RD", "AIRLINE DR", "TIDWELL RD", "GREENS RD", "MAIN ST",
           "BELLAIRE BLVD", "KIRBY DR", "ALMEDA RD", "TELEPHONE RD"]  # fmt: skip
TYPES = ["EMS EVENT", "MOTOR VEHICLE INCIDENT", "CRASH/MINOR", "AUTOMATIC ALARM", "TRASH FIRE"]

CONFIG = """\
feeds:
  bench-layer:
    adapter: arcgis
    url: {url}
    timezone: America/Chicago
    page_size: {page}
    order: CALL_TIME, Agency, Address, CrossStreet, UID
    fields: {{received: CALL_TIME, call_type: IncidentType, address: Address, units: Units,
             latitude: LATITUDE, longitude: LONGITUDE}}
    identity: [Agency, CALL_TIME, Address, CrossStreet]
    drop: [UID]
"""


def features(count: int) -> list[dict[str, Any]]:
    rng = random.Random(1)
    out = []
    for i in range(count):
        police = i % 4 == 0
        street = STREETS[i % len(STREETS)]
        out.append({
            "UID": 29_500_000 + i, "Agency": "P" if police else "F",
            "Address": f"{rng.randint(100, 14999)} {street}" if police else street,
            "CrossStreet": f"BLK {STREETS[(i * 7) % len(STREETS)]}" if i % 3 else None,
            "CALL_TIME": 1_711_900_000_000 + i * 60_000, "IncidentType": TYPES[i % len(TYPES)],
            "ALARM_LEVEL": 0, "NO_UNITS": 1, "Units": f"E{i % 99:03d}",
            "LONGITUDE": -95.6 + rng.random() * 0.5, "LATITUDE": 29.5 + rng.random() * 0.5,
            "KeyMap": f"{400 + i % 200}Z", "CombinedResponse": "P" if police else "F",
        })  # fmt: skip
    return out


@contextmanager
def layer(rows: list[dict[str, Any]], page: int) -> Iterator[str]:
    from dispatchwatch.simulate_portals import arcgis_answer
    from dispatchwatch.synthetic.arcgis import FIELDS

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            params = dict(parse_qsl(urlsplit(self.path).query))
            _, data = arcgis_answer(rows, FIELDS, params, object_id="UID", max_record_count=page)
            body = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/arcgis/rest/services/Bench/MapServer/0"
    finally:
        server.shutdown()
        server.server_close()


def raw_poll(url: str, page: int, db: Path) -> int:
    import httpx

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS calls (uid, agency, address, cross_street, call_time, "
        "type, units, latitude, longitude)"
    )
    rows: list[tuple[Any, ...]] = []
    with httpx.Client() as client:
        offset = 0
        while True:
            answer = json.loads(client.get(url + "/query", params={
                "where": "1=1", "outFields": "*", "f": "json", "resultOffset": str(offset),
                "resultRecordCount": str(page),
            }).content)  # fmt: skip
            for feature in answer["features"]:
                a = feature["attributes"]
                rows.append((a["UID"], a["Agency"], a["Address"], a["CrossStreet"],
                             a["CALL_TIME"], a["IncidentType"], a["Units"], a["LATITUDE"],
                             a["LONGITUDE"]))  # fmt: skip
            offset += len(answer["features"])
            if not answer.get("exceededTransferLimit"):
                break
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()
    return len(rows)


def project_poll(url: str, page: int, db: Path, twice: bool = False) -> tuple[Any, ...]:
    from dispatchwatch.archive import Archive
    from dispatchwatch.config import Config, parse_config
    from dispatchwatch.daemon import Daemon
    from dispatchwatch.fetch import Fetcher

    feed = parse_config(CONFIG.format(url=url, page=page)).feeds["bench-layer"]
    with Fetcher(Config().user_agent) as fetcher, Archive(db) as archive:
        archive.register_feed(feed.record())
        daemon = Daemon([feed], archive, fetcher)
        first = daemon.poll(feed)
        second = None
        if twice:
            start = time.perf_counter()
            second = daemon.poll(feed)
            second_seconds = time.perf_counter() - start
    assert first is not None and first.outcome == "new", first
    if second is None:
        return (first,)
    return first, second, second_seconds


def best_of(runs: int, action: Callable[[Path], object]) -> float:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            action(Path(tmp) / "a.db")
            times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = features(args.features)
    with layer(rows, args.page) as url:
        pages = -(-args.features // args.page)
        raw = best_of(args.runs, lambda db: raw_poll(url, args.page, db))
        ours = best_of(args.runs, lambda db: project_poll(url, args.page, db))
        with tempfile.TemporaryDirectory() as tmp:
            first, second, second_seconds = project_poll(url, args.page, Path(tmp) / "a.db", True)
    print(f"paged ArcGIS snapshot poll: {args.features:,} features, {pages} pages of {args.page}")
    print(f"  raw (httpx + json + sqlite3 executemany): {raw:8.3f} s")
    print(f"  dispatchwatch (Fetcher + adapter + archive): {ours:8.3f} s")
    print(f"  ratio raw / dispatchwatch: {raw / ours:.0%}")
    print(f"  incidents archived: {first.incidents:,} (new {first.new:,})")
    print(f"  same layer again: {second.outcome} in {second_seconds:.3f} s")


if __name__ == "__main__":
    main()
