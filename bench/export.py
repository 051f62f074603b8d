"""Export throughput and peak memory next to a raw baseline, in one run.

    python bench/export.py                      # 1,000,000 incidents, best of 2
    python bench/export.py --rows 200000 --runs 1

Builds a synthetic archive (the real schema, through the Archive class; rows inserted in bulk:
4 feeds, 24 months, call types, block addresses, coordinates on a third, ``extra`` JSON on a
fifth), then times whole processes on the ``incidents`` table:

- ``dispatchwatch export --format csv|ndjson|parquet``;
- the raw baseline: ``sqlite3`` + ``csv.writer`` in a plain script (``SELECT *`` streamed with
  ``fetchmany``, no types, no partitions, no progress);

and reports rows/s, peak RSS of each process (``wait4``), and the ratio to the baseline. Then
the same exports of a quarter of the rows (``--feed``), to show that memory does not grow
with the number of rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatchwatch.archive import Archive, FeedRecord, format_time

FEEDS = ["feed-a", "feed-b", "feed-c", "feed-d"]
CALL_TYPES = ["TRAFFIC STOP", "Aid Response", "THEFT", "Medic Response", "ALARM", "WELFARE CHECK"]

BASELINE = r"""
import csv, sqlite3, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
cursor = conn.execute("SELECT * FROM incidents")
with open(sys.argv[2], "w", newline="", encoding="utf-8") as out:
    writer = csv.writer(out)
    writer.writerow([d[0] for d in cursor.description])
    while rows := cursor.fetchmany(5000):
        writer.writerows(rows)
"""


def build(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    span = timedelta(days=730).total_seconds()
    with Archive(path) as archive:
        for slug in FEEDS:
            archive.register_feed(
                FeedRecord(
                    slug=slug,
                    name=slug,
                    agency="",
                    city="Springfield",
                    scraper=slug,
                    url="http://127.0.0.1:9/",
                    timezone="America/Chicago",
                    snapshot=False,
                    interval_seconds=60,
                )  # fmt: skip
            )
        conn = archive.conn
        conn.execute("BEGIN")
        batch = []
        for number in range(rows):
            moment = start + timedelta(seconds=rng.random() * span)
            text = format_time(moment)
            coords = (round(rng.uniform(41, 42), 3), round(rng.uniform(-88, -87), 3))
            has_coords = number % 3 == 0
            extra = json.dumps({"code": rng.randint(1, 999)}) if number % 5 == 0 else None
            batch.append((
                FEEDS[number % 4], f"I{number:09d}", text[:19] + "Z", rng.choice(CALL_TYPES),
                str(rng.randint(1, 5)), "closed", None, f"{rng.randint(1, 99)}XX MAIN ST",
                "Springfield", str(rng.randint(1, 7)), None, "E1 M2",
                coords[0] if has_coords else None, coords[1] if has_coords else None, extra,
                text, text, None, 1,
            ))  # fmt: skip
            if len(batch) == 10_000:
                conn.executemany(f"INSERT INTO incidents VALUES ({', '.join('?' * 19)})", batch)
                batch.clear()
        if batch:
            conn.executemany(f"INSERT INTO incidents VALUES ({', '.join('?' * 19)})", batch)
        conn.execute("COMMIT")


def measure(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    if status != 0:
        raise SystemExit(f"failed: {' '.join(command)}: {process.stderr.read().decode()}")
    return seconds, usage.ru_maxrss * 1024


def best(runs: int, command: list[str], clean: Path) -> tuple[float, int]:
    results = []
    for _ in range(runs):
        if clean.is_dir():
            shutil.rmtree(clean)
        clean.unlink(missing_ok=True)
        results.append(measure(command))
    return min(r[0] for r in results), max(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dw-bench-export-") as tmp:
        folder = Path(tmp)
        db = folder / "archive.db"
        began = time.perf_counter()
        build(db, args.rows)
        print(f"archive: {args.rows:,} incidents, {db.stat().st_size / 2**20:,.0f} MB "
              f"(built in {time.perf_counter() - began:.0f}s)\n")  # fmt: skip
        dw = [sys.executable, "-m", "dispatchwatch", "export", "--db", str(db), "--quiet"]
        raw_out = folder / "raw.csv"
        raw = best(args.runs, [sys.executable, "-c", BASELINE, str(db), str(raw_out)], raw_out)
        rows_raw = args.rows / raw[0]
        print(f"{'export of incidents':<42} {'rows/s':>10} {'peak RSS':>10} {'vs raw':>7}")
        print(f"{'raw baseline (sqlite3 + csv)':<42} {rows_raw:>10,.0f} {raw[1] / 2**20:>8.0f}MB")
        for fmt, out, extra, share in [
            ("csv", folder / "out.csv", [], 1.0),
            ("ndjson", folder / "out.ndjson", [], 1.0),
            ("parquet", folder / "lake", [], 1.0),
            ("csv", folder / "q.csv", ["--feed", FEEDS[0]], 0.25),
            ("parquet", folder / "qlake", ["--feed", FEEDS[0]], 0.25),
        ]:
            seconds, rss = best(args.runs, [*dw, "-f", fmt, "-o", str(out), *extra], out)
            rate = args.rows * share / seconds
            label = f"dispatchwatch export -f {fmt}" + (" (1/4 rows)" if share < 1 else "")
            print(f"{label:<42} {rate:>10,.0f} {rss / 2**20:>8.0f}MB {rate / rows_raw:>6.0%}")


if __name__ == "__main__":
    main()
