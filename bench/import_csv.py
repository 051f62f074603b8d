"""``dispatchwatch import`` of a large, already-block-level CSV beside a raw baseline.

    python bench/import_csv.py                 # 1,000,000 rows
    python bench/import_csv.py --rows 100000 --runs 1

The CSV is generated here (seeded): New Orleans' "Calls for Service" export shape (21
columns: NOPD_Item, TypeText, TimeCreate as ``M/D/YYYY HH:MM:SS``, BLOCK_ADDRESS already at
block level, PoliceDistrict, Location as ``(lat, lon)`` ...), one row per call, in time
order. Whole process against whole process, each a subprocess, best of --runs:

- project: ``dispatchwatch import FILE --feed new-orleans --mapping new-orleans-socrata-csv``
  into a new archive (default ``--on-error stop``: the file is read once, every batch
  archived as it comes inside one transaction for the file, which a bad row would roll back;
  ``--skip`` measures ``--on-error skip`` too: one transaction a batch). With a spare core the
  import reads, maps and normalizes ahead in a child process (``imports/ahead.py``): the CPU
  time printed is the process's and its child's;
- baseline: ``python bench/import_csv.py --baseline FILE DB``: ``csv.reader`` and
  ``sqlite3`` ``executemany`` of every row into one table keyed like ``incidents``
  (feed, incident_id), 10,000 rows per transaction, WAL, synchronous=NORMAL: the least work
  that still stores the file.

The package's bytecode is compiled first, as ``pip install`` does (see bench/socrata.py).
Printed: rows/s of both, the ratio (target: >= 50%) and each process's peak memory.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HEADER = [
    "NOPD_Item", "Type_", "TypeText", "Priority", "InitialType", "InitialTypeText",
    "InitialPriority", "MapX", "MapY", "TimeCreate", "TimeDispatch", "TimeArrive", "TimeClosed",
    "Disposition", "DispositionText", "SelfInitiated", "Beat", "BLOCK_ADDRESS", "Zip",
    "PoliceDistrict", "Location",
]  # fmt: skip
TYPES = [
    ("21", "COMPLAINT OTHER", "1H"), ("62A", "BURGLAR ALARM, SILENT", "2C"),
    ("94F", "FIREWORKS", "1A"), ("103", "DISTURBANCE (OTHER)", "1A"), ("103F", "FIGHT", "2B"),
    ("20", "AUTO ACCIDENT", "1E"), ("67A", "AUTO THEFT", "1B"), ("TS", "TRAFFIC STOP", "1J"),
    ("SS", "SUSPICIOUS PERSON", "1F"), ("18", "TRAFFIC INCIDENT", "1C"),
]  # fmt: skip
STREETS = [
    "Tulane Ave", "Bourbon St", "S Carrollton Ave", "Laurel St", "Canal St", "Magazine St",
    "St Claude Ave", "N Broad St", "Elysian Fields Ave", "Chef Menteur Hwy", "Iberville St",
    "S Claiborne Ave", "Esplanade Ave", "Gentilly Blvd", "Freret St", "Decatur St",
]  # fmt: skip
DISPOSITIONS = [("NAT", "Necessary Action Taken"), ("GOA", "GONE ON ARRIVAL"),
                ("RTF", "REPORT TO FOLLOW"), ("DUP", "DUPLICATE"), ("VOI", "VOID")]  # fmt: skip
BEAT_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVW"
CONFIG = """feeds:
  new-orleans:
    import_only: true
    name: New Orleans calls for service
    city: New Orleans
    timezone: America/Chicago
"""


def _us(moment: datetime) -> str:
    return f"{moment.month}/{moment.day}/{moment.year} {moment:%H:%M:%S}"


def write_csv(path: Path, rows: int, seed: int = 2016) -> None:
    rng = random.Random(seed)
    moment = datetime(2016, 1, 1)
    step = timedelta(days=365) / rows
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            moment += step
            code, text, priority = rng.choice(TYPES)
            initial = rng.choice(TYPES)
            disposition = rng.choice(DISPOSITIONS)
            if rng.random() < 0.15:
                address = f"{rng.choice(STREETS)} & {rng.choice(STREETS)}"
            else:
                address = f"{rng.randint(1, 120):03d}XX {rng.choice(STREETS)}"
            lat, lon = 29.9 + rng.random() * 0.15, -90.15 + rng.random() * 0.2
            writer.writerow(
                [
                    f"{'ABCDEFGHIJKL'[moment.month - 1]}{n:07d}16", code, text, priority,
                    initial[0], initial[1], initial[2],
                    str(3660000 + rng.randint(0, 40000)), str(520000 + rng.randint(0, 30000)),
                    _us(moment), _us(moment + timedelta(minutes=rng.randint(1, 40))), "",
                    _us(moment + timedelta(minutes=rng.randint(41, 200))),
                    disposition[0], disposition[1], rng.choice("NY"),
                    f"{rng.randint(1, 8)}{rng.choice(BEAT_LETTERS)}0{rng.randint(1, 9)}",
                    address, str(70112 + rng.randint(0, 20)), str(rng.randint(1, 8)),
                    f"({lat:.7f}, {lon:.7f})",
                ]
            )  # fmt: skip


def baseline(csv_path: str, db_path: str) -> int:
    """csv + sqlite3 executemany: every row, 10,000 per transaction."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    columns = ", ".join(f"c{i}" for i in range(len(HEADER)))
    conn.execute(f"CREATE TABLE calls (feed TEXT, {columns}, PRIMARY KEY (feed, c0))")
    insert = f"INSERT OR REPLACE INTO calls VALUES (?, {', '.join('?' * len(HEADER))})"
    total = 0
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        batch: list[list[str]] = []
        for row in reader:
            batch.append(["new-orleans", *row])
            if len(batch) == 10_000:
                conn.execute("BEGIN")
                conn.executemany(insert, batch)
                conn.execute("COMMIT")
                total += len(batch)
                batch = []
        if batch:
            conn.execute("BEGIN")
            conn.executemany(insert, batch)
            conn.execute("COMMIT")
            total += len(batch)
    conn.close()
    return total


def timed(command: list[str], cwd: Path) -> tuple[float, int, float]:
    """Wall-clock seconds, peak resident memory (bytes, ``ru_maxrss``) and CPU seconds (user +
    sys: on a shared machine the steadier measure) of one process.
    The commands print a few lines only, so waiting before reading their pipes is safe."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{stdout}\n{stderr}")
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--skip", action="store_true", help="also measure --on-error skip")
    parser.add_argument("--baseline", nargs=2, metavar=("CSV", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        print(baseline(*args.baseline))
        return 0

    command = shutil.which("dispatchwatch", path=str(Path(sys.executable).parent))
    if command is None:
        sys.exit("the dispatchwatch command is not installed next to this Python")
    # As pip install does: an editable install under PYTHONDONTWRITEBYTECODE would compile
    # every module in every run, while the baseline's standard library is compiled already.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from socrata import compile_package  # a sibling bench script

    compile_package()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        data = tmp / "calls_for_service.csv"
        start = time.perf_counter()
        write_csv(data, args.rows)
        print(
            f"{args.rows:,} rows, {data.stat().st_size / 1e6:.1f} MB of CSV "
            f"(written in {time.perf_counter() - start:.1f}s)"
        )
        (tmp / "config.yaml").write_text(CONFIG)

        def project(*extra: str) -> tuple[float, int, float]:
            best, peak, cpu = float("inf"), 0, float("inf")
            for run in range(args.runs):
                db = tmp / f"project_{run}_{len(extra)}.db"
                cmd = [command, "import", str(data), "--feed", "new-orleans", "--mapping",
                       "new-orleans-socrata-csv", "--db", str(db), *extra]  # fmt: skip
                seconds, rss, used = timed(cmd, tmp)
                best, peak, cpu = min(best, seconds), max(peak, rss), min(cpu, used)
                db.unlink()
            return best, peak, cpu

        def raw() -> tuple[float, int, float]:
            best, peak, cpu = float("inf"), 0, float("inf")
            for run in range(args.runs):
                db = tmp / f"raw_{run}.db"
                cmd = [sys.executable, __file__, "--baseline", str(data), str(db)]
                seconds, rss, used = timed(cmd, tmp)
                best, peak, cpu = min(best, seconds), max(peak, rss), min(cpu, used)
                db.unlink()
            return best, peak, cpu

        raw_seconds, raw_peak, raw_cpu = raw()
        results = {"import (--on-error stop)": project()}
        if args.skip:
            results["import (--on-error skip)"] = project("--on-error", "skip")
        raw_rate = args.rows / raw_seconds
        print(
            f"{'raw csv + sqlite3 executemany':<30} {raw_seconds:8.2f}s {raw_rate:10,.0f} rows/s"
            f"  peak RSS {raw_peak / 2**20:5.0f} MiB  CPU {raw_cpu:7.2f}s"
        )
        for name, (seconds, peak, cpu) in results.items():
            rate = args.rows / seconds
            print(
                f"{name:<30} {seconds:8.2f}s {rate:10,.0f} rows/s  peak RSS {peak / 2**20:5.0f} MiB"
                f"  CPU {cpu:7.2f}s  {rate / raw_rate:6.1%} of the baseline (target >= 50%);"
                f" by CPU time {raw_cpu / cpu:6.1%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
