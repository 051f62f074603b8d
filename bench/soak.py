"""An accelerated soak: does the daemon's memory stay flat, and does the WAL come back?

    python bench/soak.py                   # 30 minutes (issue 8 item 15)
    python bench/soak.py --minutes 3       # a quick check

ONE ``dispatchwatch run`` process polls ``--feeds`` simulated feeds (another process; one in
``--seattle-every`` a ~300 KB Seattle day log, the others Milwaukee pages) every
``--interval``, with simulated time at ``--speed`` and a share ``--change-rate`` of polls
finding a changed page. Meanwhile a Datasette-like reader (a thread of this process, its own
read-only SQLite connection) browses the archive: part of each cycle it holds one read
transaction open (a snapshot: SQLite cannot checkpoint the WAL past it, so the WAL grows),
the rest of the cycle it runs short queries, one transaction each.

Printed against the targets:

- the daemon's RSS slope over the second half of the run (least squares, MB/min; the first
  half is warm-up: caches filling, the archive growing its working set); target < 0.5 MB/min;
- the WAL: its largest size while the reader held its snapshot, and its size after each
  release (once the daemon's next checkpoints ran); target: back under the archive's
  ``journal_size_limit`` (32 MB) after every release;
- the daemon's CPU (its own user + system time) and polls, for context.

The samples (every second: time, daemon CPU, RSS, WAL size) are kept in ``samples.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import daemon as daemon_bench  # noqa: E402  (bench/daemon.py: the simulation, the config)

from dispatchwatch.config import parse_duration  # noqa: E402

TARGET_SLOPE = 0.5  # MB/min
WAL_LIMIT = 32 * 2**20  # the archive's journal_size_limit


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (0 with fewer than two)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


class Reader(threading.Thread):
    """Holds a read snapshot for ``hold`` seconds of every ``cycle``, browsing meanwhile;
    records ``(start, end)`` of each hold."""

    QUERIES = (
        "SELECT count(*) FROM incidents",
        "SELECT feed, count(*) FROM incidents GROUP BY feed",
        "SELECT * FROM incidents ORDER BY last_seen_at DESC LIMIT 100",
        "SELECT feed, outcome, count(*) FROM polls GROUP BY feed, outcome",
        "SELECT * FROM incident_versions ORDER BY rowid DESC LIMIT 50",
    )

    def __init__(self, path: Path, cycle: float, hold: float) -> None:
        super().__init__(name="reader", daemon=True)
        self.path, self.cycle, self.hold = path, cycle, hold
        self.holds: list[tuple[float, float]] = []
        self.queries = 0
        self.holding = False
        self.stop = threading.Event()

    def browse(self, conn: sqlite3.Connection, n: int) -> None:
        try:
            conn.execute(self.QUERIES[n % len(self.QUERIES)]).fetchall()
            self.queries += 1
        except sqlite3.OperationalError:
            pass  # the archive's tables not created yet

    def run(self) -> None:
        while not self.path.exists() and not self.stop.wait(0.5):
            pass
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        n = 0
        while not self.stop.is_set():
            # Free browsing first (the daemon's start-up), then the held snapshot.
            end = time.monotonic() + self.cycle - self.hold
            while time.monotonic() < end and not self.stop.wait(1.0):
                self.browse(conn, n)
                n += 1
            if self.stop.is_set():
                break
            began = time.monotonic()
            self.holding = True
            conn.execute("BEGIN")
            self.browse(conn, n)  # the snapshot starts at the first read
            end = began + self.hold
            while time.monotonic() < end and not self.stop.wait(2.0):
                self.browse(conn, n)
                n += 1
            conn.execute("COMMIT")
            self.holding = False
            self.holds.append((began, time.monotonic()))
        conn.close()


def soak(args: argparse.Namespace) -> dict[str, Any]:
    interval = parse_duration(args.interval)
    duration = args.minutes * 60
    folder = args.keep or Path(tempfile.mkdtemp(prefix="dispatchwatch-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    change_every = interval * args.speed / args.change_rate
    sim = subprocess.Popen(
        [sys.executable, daemon_bench.__file__, "--serve", str(args.hosts)]
        + ["--speed", str(args.speed), "--change-every", str(change_every)],
        stdout=subprocess.PIPE,
        text=True,
    )
    samples: list[tuple[float, float, int, int]] = []  # (t, CPU s, RSS, WAL bytes)
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        listed = daemon_bench.feed_list(args.feeds, ports, args.seattle_every)
        daemon_bench.warm(listed)
        config = daemon_bench.write_config(folder, listed, interval)
        db, wal = folder / "bench.db", folder / "bench.db-wal"
        cycle = duration / args.cycles
        reader = Reader(db, cycle, cycle * args.hold_share)
        with (folder / "polls.jsonl").open("w") as out, (folder / "daemon.log").open("w") as err:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "dispatchwatch", "run", "--config", str(config)]
                + ["--jsonl"],
                stdout=out,
                stderr=err,
                cwd=folder,
            )
            proc = psutil.Process(daemon.pid)
            began = time.monotonic()
            reader.start()
            next_print = began + duration / 10
            while (now := time.monotonic()) - began < duration and daemon.poll() is None:
                times = proc.cpu_times()
                size = wal.stat().st_size if wal.exists() else 0
                samples.append(
                    (now - began, times.user + times.system, proc.memory_info().rss, size)
                )
                if now >= next_print:
                    next_print += duration / 10
                    print(
                        f"  {(now - began) / 60:5.1f} min: RSS {samples[-1][2] / 2**20:.1f} MB, "
                        f"WAL {size / 2**20:.1f} MB, reader "
                        f"{'holding a snapshot' if reader.holding else 'browsing'}",
                        flush=True,
                    )
                time.sleep(1.0)
            reader.stop.set()
            reader.join(timeout=30)
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=120)
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=60)

    with (folder / "samples.csv").open("w") as out:
        out.write("seconds,cpu_seconds,rss_bytes,wal_bytes\n")
        out.writelines(f"{t:.1f},{c:.2f},{r},{w}\n" for t, c, r, w in samples)
    reports = [json.loads(line) for line in (folder / "polls.jsonl").read_text().splitlines()]
    half = duration / 2
    second = [(t / 60, rss / 2**20) for t, _cpu, rss, _wal in samples if t >= half]
    holds = [(a - began, b - began) for a, b in reader.holds]
    wal_held, wal_after = [], []
    for start, end in holds:
        during = [w for t, _c, _r, w in samples if start <= t <= end]
        wal_held.append(max(during, default=0))
        # After the release: the smallest size within a minute (the daemon's next
        # checkpoint resets the WAL and truncates the file to the limit).
        following = [w for t, _c, _r, w in samples if end + 1 <= t <= end + 60]
        wal_after.append(min(following) if following else None)
    steady = [s for s in samples if s[0] >= half]
    cpu = (
        100 * (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
        if len(steady) > 1
        else float("nan")
    )
    return {
        "folder": folder,
        "exit": code,
        "minutes": args.minutes,
        "polls": len(reports),
        "changed": sum(r["outcome"] == "new" for r in reports),
        "errors": sum(r["outcome"] == "error" for r in reports),
        "rss_start": samples[0][2] / 2**20 if samples else float("nan"),
        "rss_half": second[0][1] if second else float("nan"),
        "rss_end": second[-1][1] if second else float("nan"),
        "rss_peak": max(s[2] for s in samples) / 2**20,
        "slope": slope(second),
        "wal_peak": max(s[3] for s in samples) / 2**20,
        "wal_held": [w / 2**20 for w in wal_held],
        "wal_after": [None if w is None else w / 2**20 for w in wal_after],
        "wal_end": samples[-1][3] / 2**20,
        "cpu": cpu,
        "queries": reader.queries,
        "holds": holds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (30)")
    parser.add_argument("--feeds", type=int, default=50, help="simulated feeds (50)")
    parser.add_argument("--interval", default="1s", help="every feed's interval (1s)")
    parser.add_argument(
        "--change-rate", type=float, default=0.1, help="share of polls finding a change (0.1)"
    )
    parser.add_argument(
        "--seattle-every", type=int, default=5, help="one feed in N is a Seattle day log (5)"
    )
    parser.add_argument("--speed", type=float, default=30.0, help="simulated s per second (30)")
    parser.add_argument("--hosts", type=int, default=5, help="simulated hosts (5)")
    parser.add_argument("--cycles", type=int, default=6, help="reader cycles in the run (6)")
    parser.add_argument(
        "--hold-share",
        type=float,
        default=0.5,
        help="share of each reader cycle spent holding a snapshot (0.5)",
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the files in this folder")
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}); {args.minutes:g} min, "
        f"{args.feeds} feeds every {args.interval}, change rate {args.change_rate:g}, "
        f"speed x{args.speed:g}; reader: {args.cycles} cycles, holding a snapshot "
        f"{args.hold_share:.0%} of each",
        flush=True,
    )
    r = soak(args)
    ok_slope = r["slope"] < TARGET_SLOPE
    limit = WAL_LIMIT / 2**20
    print(
        f"\n{r['polls']} polls ({r['changed']} changed pages, {r['errors']} errors), exit "
        f"{r['exit']}, daemon CPU {r['cpu']:.0f}% of one core (second half), reader "
        f"{r['queries']} queries; files in {r['folder']}"
    )
    print(
        f"  RSS: {r['rss_start']:.1f} MB at start, {r['rss_half']:.1f} MB at half time, "
        f"{r['rss_end']:.1f} MB at the end, peak {r['rss_peak']:.1f} MB"
    )
    print(
        f"  RSS slope, second half: {r['slope']:+.2f} MB/min   target < {TARGET_SLOPE} MB/min"
        f"   {'ok' if ok_slope else 'MISSED'}"
    )
    print(f"  WAL peak {r['wal_peak']:.1f} MB, at the end {r['wal_end']:.1f} MB")
    for n, (held, after) in enumerate(zip(r["wal_held"], r["wal_after"], strict=True), 1):
        after_text = "n/a (run ended)" if after is None else f"{after:.1f} MB"
        print(
            f"  reader hold {n}: WAL up to {held:.1f} MB while held, {after_text} after the "
            f"release   target <= {limit:.0f} MB"
            f"   {'' if after is None else 'ok' if after <= limit else 'MISSED'}"
        )
    if not r["wal_held"]:
        print("  (no snapshot was held: run longer)")
    released = [w for w in r["wal_after"] if w is not None]
    every = bool(released) and all(w <= limit for w in released)
    print(f"  WAL back under {limit:.0f} MB after every release: {'ok' if every else 'MISSED'}")


if __name__ == "__main__":
    main()
