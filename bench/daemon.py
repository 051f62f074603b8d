"""One daemon process polling many simulated feeds: throughput, punctuality, CPU, memory.

    python bench/daemon.py                          # 200 and 1,000 feeds, 5 s, 60 s each
    python bench/daemon.py --feeds 1000 --interval 10s --duration 2m

For each feed count: the simulation runs in a process of its own (``--hosts`` simulated hosts,
each its own port on 127.0.0.1, the feeds spread over them; half Milwaukee pages, half
Seattle day logs, evolving at ``--speed``), and ONE ``dispatchwatch run --jsonl`` process
polls them with a generated config. Reported:

- polls/s: polls recorded in the ``polls`` table per second of the run, and the share of the
  polls the schedule asked for (feeds x duration / interval) that happened;
- late: the share of polls that started more than 1 s (and more than 10% of the interval)
  after the time the scheduler had set for them (jitter included), and p50/p99 lateness.
  The scheduled time comes from the daemon's ``--jsonl`` report, the start from ``polls``;
- poll ms: p50/p95 of the whole poll (fetch, parse, archive);
- CPU: user + system time of the daemon process over the run, as % of one core;
- peak RSS of the daemon process (sampled every 0.25 s).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
        kind, scraper = (("seattle", "seattle-fire") if n % 2 else
                         ("milwaukee", "milwaukee-police"))
        lines += [f"  feed-{n:04d}:", f"    scraper: {scraper}",
                  f"    url: http://127.0.0.1:{port}/{kind}/feed-{n}",
                  f"    interval: {interval}s"]
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


def run_one(feeds: int, *, interval: float, duration: float, warmup: float, hosts: int,
            speed: float, folder: Path) -> dict[str, float]:
    folder.mkdir(parents=True, exist_ok=True)
    sim = subprocess.Popen([sys.executable, __file__, "--serve", str(hosts), "--speed",
                            str(speed)], stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        config = write_config(folder, feeds, ports, interval)
        with (folder / "polls.jsonl").open("w") as out, (folder / "daemon.log").open("w") as err:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "dispatchwatch", "run", "--config", str(config),
                 "--jsonl"], stdout=out, stderr=err, cwd=folder)
            proc = psutil.Process(daemon.pid)
            sim_proc = psutil.Process(sim.pid)
            began = time.monotonic()
            began_utc = datetime.now(UTC)
            cpu_start = None
            peak_rss = 0
            while time.monotonic() - began < duration:
                peak_rss = max(peak_rss, proc.memory_info().rss)
                if cpu_start is None and time.monotonic() - began >= warmup:
                    cpu_start, steady_began = proc.cpu_times(), time.monotonic()
                    sim_start = sim_proc.cpu_times()
                time.sleep(0.25)
            cpu_end, sim_end = proc.cpu_times(), sim_proc.cpu_times()
            wall = time.monotonic() - began
            steady_wall = time.monotonic() - steady_began
            assert cpu_start is not None
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
    polls = conn.execute("SELECT id, started_at, outcome, duration_ms FROM polls").fetchall()
    errors = dict(conn.execute("SELECT error_kind, count(*) FROM polls WHERE outcome = 'error' "
                               "GROUP BY 1").fetchall())
    incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    # Start-up (every feed's first poll ingests a whole page at once) and steady state.
    steady_from = began_utc + timedelta(seconds=warmup)
    late_all, late_ms, durations, steady_polls = [], [], [], 0
    for poll_id, started_at, _outcome, ms in polls:
        started = parse_time(started_at)
        steady = started >= steady_from
        steady_polls += steady
        if steady and ms is not None:
            durations.append(ms)
        scheduled = (reports.get(poll_id) or {}).get("scheduled_at")
        if scheduled:
            late = (started - parse_time(scheduled)).total_seconds() * 1000
            late_all.append(late)
            if steady:
                late_ms.append(late)
    cpu = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    expected = feeds * wall / interval
    return {
        "feeds": feeds,
        "exit": code,
        "polls": len(polls),
        "polls_per_s": steady_polls / steady_wall,
        "done_share": len(polls) / expected,
        "late_all_1s": sum(ms > 1000 for ms in late_all) / max(1, len(late_all)),
        "late_1s": sum(ms > 1000 for ms in late_ms) / max(1, len(late_ms)),
        "late_10pct": sum(ms > 100 * interval for ms in late_ms) / max(1, len(late_ms)),
        "late_p50_ms": percentile(late_ms, 0.5),
        "late_p99_ms": percentile(late_ms, 0.99),
        "poll_p50_ms": percentile(durations, 0.5),
        "poll_p95_ms": percentile(durations, 0.95),
        "cpu_pct": 100 * cpu / steady_wall,
        "sim_cpu_pct": 100 * ((sim_end.user - sim_start.user) + (sim_end.system
                                                                 - sim_start.system)) / steady_wall,
        "peak_rss_mb": peak_rss / 1024 / 1024,
        "errors": sum(errors.values()),
        "error_kinds": errors,  # type: ignore[dict-item]
        "incidents": incidents,
        "changed_pages": sum(o == "new" for _i, _s, o, _m in polls),
    }


COLUMNS = [
    ("feeds", "feeds", "{:d}"),
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
    parser.add_argument("--warmup", default=None,
                        help="start-up left out of the steady-state figures (2 x interval)")
    parser.add_argument("--hosts", type=int, default=20,
                        help="simulated hosts the feeds are spread over (20)")
    parser.add_argument("--speed", type=float, default=10.0,
                        help="simulated seconds per second: how often pages change (10)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep configs, logs and archives in this folder")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.speed)
        return
    interval, duration = parse_duration(args.interval), parse_duration(args.duration)
    warmup = parse_duration(args.warmup) if args.warmup else 2 * interval
    base = args.keep or Path(tempfile.mkdtemp(prefix="dispatchwatch-bench-"))
    print(f"{os.cpu_count()} CPUs; interval {interval:g}s, {duration:g}s per run (the first "
          f"{warmup:g}s are start-up: only 'late>1s (all)', 'done' and RSS include them), "
          f"{args.hosts} simulated hosts, speed x{args.speed:g}; files in {base}",
          flush=True)
    results = []
    for feeds in args.feeds:
        result = run_one(feeds, interval=interval, duration=duration, warmup=warmup,
                         hosts=args.hosts,
                         speed=args.speed, folder=base / f"feeds-{feeds}")
        results.append(result)
        print(f"  {feeds} feeds: {result['polls']} polls, {result['changed_pages']} changed "
              f"pages, {result['incidents']} incidents, errors {result['error_kinds']}, "
              f"exit {result['exit']}", flush=True)
    table = [[title for title, _key, _fmt in COLUMNS]]
    for result in results:
        table.append([fmt.format(result[key]) for _title, key, fmt in COLUMNS])
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    print()
    for row in table:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
