"""One daemon process polling many simulated feeds: throughput, punctuality, CPU, memory.

    python bench/daemon.py                          # 200 and 1,000 feeds, 5 s, 60 s each
    python bench/daemon.py --feeds 1000 --interval 10s --speed 1 --duration 3m

For each feed count the simulation runs in a process of its own (``--hosts`` simulated hosts,
each its own port on 127.0.0.1, the feeds spread over them; half Milwaukee pages, half
Seattle day logs, evolving at ``--speed`` simulated seconds per second), and ONE
``dispatchwatch run --jsonl`` process polls them with a generated config.

Start-up is reported apart: every feed's first poll ingests its whole page (a Seattle day log
is ~350 incidents, ~300 KB), and the backlog that leaves takes a while to drain, so the
"steady" figures cover the second half of the run (and at least one interval after the last
feed's first poll). Reported:

- start-up: seconds until every feed had its first poll archived; steady: seconds measured;
- polls/s (steady), and "done": polls recorded over the polls the schedule asked for
  (feeds x duration / interval), start-up included;
- late: the share of polls that started more than 1 s (and more than 10% of the interval)
  after the time the scheduler had set for them (jitter included), over the whole run and in
  the steady state, and p50/p99 lateness (steady). The scheduled time comes from the
  daemon's ``--jsonl`` report, the actual start from ``polls.started_at``;
- poll ms: p50/p95 of the whole poll (fetch, parse, archive), steady;
- CPU: user + system time of the daemon process (and of the simulation process) in the
  steady state, as % of one core; peak RSS of the daemon process (sampled every 0.25 s).
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
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from dispatchwatch.config import parse_duration


def serve(hosts: int, speed: float) -> None:
    """The simulation process: ``hosts`` simulations, ports on one JSON line, until killed."""
    from dispatchwatch.simulate import Simulation

    sims = [Simulation(seed=n, speed=speed) for n in range(hosts)]
    for sim in sims:
        sim.start()
    print(json.dumps([sim.port for sim in sims]), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for sim in sims:
        sim.stop()


def write_config(folder: Path, feeds: int, ports: list[int], interval: float) -> Path:
    lines = ["database: bench.db", "contact: bench@localhost", "feeds:"]
    for n in range(feeds):
        port = ports[n % len(ports)]
        kind, scraper = ("seattle", "seattle-fire") if n % 2 else ("milwaukee", "milwaukee-police")
        lines += [
            f"  feed-{n:04d}:",
            f"    scraper: {scraper}",
            f"    url: http://127.0.0.1:{port}/{kind}/feed-{n}",
            f"    interval: {interval}s",
        ]
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def run_one(
    feeds: int,
    *,
    interval: float,
    duration: float,
    hosts: int,
    speed: float,
    folder: Path,
    workers: int | None = None,
) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    sim = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(hosts), "--speed", str(speed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    # (seconds since start, daemon CPU seconds, simulation CPU seconds)
    samples: list[tuple[float, float, float]] = []
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        config = write_config(folder, feeds, ports, interval)
        with (folder / "polls.jsonl").open("w") as out, (folder / "daemon.log").open("w") as err:
            daemon = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dispatchwatch",
                    "run",
                    "--config",
                    str(config),
                    "--jsonl",
                    *(["--workers", str(workers)] if workers else []),
                ],
                stdout=out,
                stderr=err,
                cwd=folder,
            )
            proc, sim_proc = psutil.Process(daemon.pid), psutil.Process(sim.pid)
            began, began_utc = time.monotonic(), datetime.now(UTC)
            peak_rss = 0
            while True:
                now = time.monotonic() - began
                samples.append((now, cpu_seconds(proc), cpu_seconds(sim_proc)))
                peak_rss = max(peak_rss, proc.memory_info().rss)
                if now >= duration:
                    break
                time.sleep(0.25)
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=60)
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=30)

    reports = {}
    for line in (folder / "polls.jsonl").read_text().splitlines():
        report = json.loads(line)
        reports[report["poll_id"]] = report
    conn = sqlite3.connect(folder / "bench.db")
    polls = conn.execute(
        "SELECT id, feed, started_at, outcome, duration_ms FROM polls ORDER BY id"
    ).fetchall()
    errors = dict(
        conn.execute(
            "SELECT error_kind, count(*) FROM polls WHERE outcome = 'error' GROUP BY 1"
        ).fetchall()
    )
    incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]

    # Start-up: every feed's first poll ingests its whole page (the heavy part), and the
    # backlog that leaves takes a while to drain: the steady state is the second half of the
    # run, and at least one interval after the last feed's first poll.
    first_done: dict[str, float] = {}
    for _id, feed, started_at, _outcome, ms in polls:
        if feed not in first_done:
            start = (parse_time(started_at) - began_utc).total_seconds()
            first_done[feed] = start + (ms or 0) / 1000
    all_first = max(first_done.values()) if len(first_done) == feeds else float("inf")
    steady_from = max(all_first + interval, duration / 2)
    steady = [s for s in samples if s[0] >= steady_from]
    steady_wall = steady[-1][0] - steady[0][0] if len(steady) > 1 else 0.0

    late_all, late_ms, durations, steady_polls = [], [], [], 0
    for poll_id, _feed, started_at, _outcome, ms in polls:
        at = (parse_time(started_at) - began_utc).total_seconds()
        in_steady = steady and steady[0][0] <= at <= steady[-1][0]
        steady_polls += bool(in_steady)
        if in_steady and ms is not None:
            durations.append(ms)
        scheduled = (reports.get(poll_id) or {}).get("scheduled_at")
        if scheduled:
            late = (parse_time(started_at) - parse_time(scheduled)).total_seconds() * 1000
            late_all.append(late)
            if in_steady:
                late_ms.append(late)
    nan = float("nan")

    def share(values: list[float], over: float) -> float:
        return sum(v > over for v in values) / len(values) if values else nan

    def cpu(index: int) -> float:
        if steady_wall <= 0:
            return nan
        return 100 * (steady[-1][index] - steady[0][index]) / steady_wall

    wall = samples[-1][0]
    return {
        "feeds": feeds,
        "exit": code,
        "polls": len(polls),
        "startup_s": all_first,
        "steady_s": steady_wall,
        "polls_per_s": steady_polls / steady_wall if steady_wall else nan,
        "done_share": len(polls) / (feeds * wall / interval),
        "late_all_1s": share(late_all, 1000),
        "late_1s": share(late_ms, 1000),
        "late_10pct": share(late_ms, 100 * interval),
        "late_p50_ms": percentile(late_ms, 0.5),
        "late_p99_ms": percentile(late_ms, 0.99),
        "poll_p50_ms": percentile(durations, 0.5),
        "poll_p95_ms": percentile(durations, 0.95),
        "cpu_pct": cpu(1),
        "sim_cpu_pct": cpu(2),
        "peak_rss_mb": peak_rss / 1024 / 1024,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "incidents": incidents,
        "changed_pages": sum(outcome == "new" for _i, _f, _s, outcome, _m in polls),
    }


COLUMNS = [
    ("feeds", "feeds", "{:d}"),
    ("start-up", "startup_s", "{:.0f}s"),
    ("steady", "steady_s", "{:.0f}s"),
    ("polls/s", "polls_per_s", "{:.1f}"),
    ("done", "done_share", "{:.0%}"),
    ("late>1s (all)", "late_all_1s", "{:.1%}"),
    ("late>1s", "late_1s", "{:.1%}"),
    ("late>10%", "late_10pct", "{:.1%}"),
    ("late p50", "late_p50_ms", "{:.0f}ms"),
    ("late p99", "late_p99_ms", "{:.0f}ms"),
    ("poll p50", "poll_p50_ms", "{:.0f}ms"),
    ("poll p95", "poll_p95_ms", "{:.0f}ms"),
    ("CPU", "cpu_pct", "{:.0f}%"),
    ("peak RSS", "peak_rss_mb", "{:.0f}MB"),
    ("sim CPU", "sim_cpu_pct", "{:.0f}%"),
    ("errors", "errors", "{:d}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--interval", default="5s", help="every feed's interval (5s)")
    parser.add_argument("--duration", default="60s", help="how long each run lasts (60s)")
    parser.add_argument(
        "--hosts", type=int, default=20, help="simulated hosts the feeds are spread over (20)"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=10.0,
        help="simulated seconds per second: how often pages change (10)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="the daemon's --workers (default: its own default)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep configs, logs and archives in this folder"
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.speed)
        return
    interval, duration = parse_duration(args.interval), parse_duration(args.duration)
    base = args.keep or Path(tempfile.mkdtemp(prefix="dispatchwatch-bench-"))
    print(
        f"{os.cpu_count()} CPUs; interval {interval:g}s, {duration:g}s per run, "
        f"{args.hosts} simulated hosts, speed x{args.speed:g}; files in {base}",
        flush=True,
    )
    results = []
    for feeds in args.feeds:
        result = run_one(
            feeds,
            interval=interval,
            duration=duration,
            hosts=args.hosts,
            speed=args.speed,
            folder=base / f"feeds-{feeds}",
            workers=args.workers,
        )
        results.append(result)
        print(
            f"  {feeds} feeds: {result['polls']} polls, {result['changed_pages']} changed "
            f"pages, {result['incidents']} incidents, errors {result['error_kinds']}, "
            f"exit {result['exit']}",
            flush=True,
        )
    table = [[title for title, _key, _fmt in COLUMNS]]
    for result in results:
        table.append([fmt.format(result[key]) for _title, key, fmt in COLUMNS])
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    print()
    for row in table:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
