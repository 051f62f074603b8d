"""One daemon process polling many simulated feeds: punctuality, CPU, memory, start-up.

    python bench/daemon.py                              # issue 11's case: 1,000 feeds at 60 s
    python bench/daemon.py --feeds 10000 --duration 6m --no-baseline
    python bench/daemon.py --feeds 200 --interval 5s --change-rate 0   # pages at model pace
    python bench/daemon.py --feeds 1000 --interval 6s --restart 20m    # 10,000 feeds' poll rate

The simulation runs in a process of its own (``--hosts`` simulated hosts, each its own port on
127.0.0.1, the feeds spread over them; half Milwaukee pages, half ~300 KB Seattle day logs).
With ``--change-rate R`` (default 0.1) each page moves on once every ``interval / R``
seconds (wall clock), at a phase of its own (:class:`~dispatchwatch.simulate.Simulation`'s
``change_every``), so a share R of polls find a changed page: issue 11's "a tenth of feeds
changing per poll". ``--change-rate 0`` leaves the pace to the models (``--speed``).

Then ONE ``dispatchwatch run --jsonl`` process polls them with a generated config, and, in
the same run and against the same simulation, the raw baseline (``--no-baseline`` skips it):
a minimal poller in one process (a heap of due times, a thread pool, one httpx client,
conditional GETs, SHA-256 of the body, plain lxml cell texts ``executemany``'d into one
table for a changed page, one ``polls`` row per poll): the floor of polling in Python.

With ``--restart LIMIT`` a first run (at most LIMIT) archives every feed's page and stops; the
measured run is the daemon restarted on that archive: its first polls are conditional GETs,
so it is in the steady state from the start (its "first poll of every feed" is then the
restart's). That isolates the steady state of a poll rate whose start-up would take long.

Reported for each (start-up = until every feed's first poll was archived; steady = the second
half of the run, and at least one interval after start-up):

- on time: the share of polls that started within 1 s of the time the scheduler had set for
  them (jitter included), over the whole run and in the steady state; the scheduled time comes
  from the ``--jsonl`` report, the start from ``started_at``;
- CPU: user + system time of the process and its parse processes (``/proc``, their own
  rusage, not the machine's), as % of one core, over the whole run and in the steady state;
- RSS: peak and at the end (sampled every 0.25 s): the process's RSS plus its parse
  processes' USS (their memory not shared with it; their RSS would count the shared pages
  twice);
- polls/s, polls done over polls scheduled, the share of polls that found a changed page.

The machine's other load shows up in the punctuality figures (a 2-core machine shared with
other jobs is noisy); the CPU figures are the processes' own.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

import psutil

from dispatchwatch.config import parse_duration
from dispatchwatch.simulate import MILWAUKEE_REFRESH

#: Issue 11's targets for one process with 1,000 feeds at 60 s.
TARGET_ON_TIME = 0.999
TARGET_CPU = 15.0
TARGET_RSS_MB = 150.0
TARGET_STARTUP_S = 60.0


def serve(hosts: int, speed: float, change_every: float | None, seattle: str = "real") -> None:
    """The simulation process: ``hosts`` simulations, ports on one JSON line, until killed.
    ``seattle``: ``"real"`` day logs at the real page's rates, ``"heavy"`` the models' default
    (30 incidents an hour, 1.57 rows each: ~3.5 times the real page's rows)."""
    from dispatchwatch.simulate import Simulation
    from dispatchwatch.synthetic.seattle import REAL_EXTRA_DISPATCHES, REAL_RATE_PER_HOUR

    options: dict[str, Any] = {}
    if seattle == "real":
        options = {
            "seattle_rate": REAL_RATE_PER_HOUR,
            "seattle_extra_dispatches": REAL_EXTRA_DISPATCHES,
        }
    sims = [
        Simulation(seed=n, speed=speed, change_every=change_every, **options) for n in range(hosts)
    ]
    for sim in sims:
        sim.start()
    print(json.dumps([sim.port for sim in sims]), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for sim in sims:
        sim.stop()


def feed_list(feeds: int, ports: list[int], seattle_every: int = 2) -> list[tuple[str, str, str]]:
    """``(slug, scraper, url)`` of each feed, spread over the simulated hosts; one feed in
    ``seattle_every`` is a Seattle day log, the others Milwaukee pages."""
    out = []
    for n in range(feeds):
        port = ports[n % len(ports)]
        seattle = n % seattle_every == seattle_every - 1
        kind, scraper = (
            ("seattle", "seattle-fire") if seattle else ("milwaukee", "milwaukee-police")
        )
        out.append((f"feed-{n:05d}", scraper, f"http://127.0.0.1:{port}/{kind}/feed-{n}"))
    return out


#: The real pages the simulated ones stand for (/work/shared/real-pages/): rows, bytes.
REAL_PAGES = {
    "seattle": (267, 145_547, "3/31/2024 at 6:33 PM, the day so far"),
    "milwaukee": (58, 47_405, "01/21/2023 4:54 PM"),
}


def warm(feeds: list[tuple[str, str, str]]) -> dict[str, tuple[float, float]]:
    """Ask the simulation for every page once, so that building its models (a Seattle day so
    far) weighs on neither the daemon's start-up nor the baseline's. Returns the mean
    ``(rows, bytes)`` of a page by kind (``"seattle"``, ``"milwaukee"``)."""
    import httpx

    def get(feed: tuple[str, str, str]) -> tuple[str, int, int]:
        body = client.get(feed[2]).raise_for_status().content
        kind = feed[2].rsplit("/", 2)[-2]
        rows = body.count(b"<tr id=row_") if kind == "seattle" else body.count(b"<tr style=")
        return kind, rows, len(body)

    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(get, feeds))
    sizes = {}
    for kind in REAL_PAGES:
        mine = [(rows, size) for k, rows, size in pages if k == kind]
        if mine:
            sizes[kind] = (
                sum(r for r, _ in mine) / len(mine),
                sum(b for _, b in mine) / len(mine),
            )
    return sizes


def describe_pages(sizes: dict[str, tuple[float, float]]) -> str:
    """The simulated pages at start-up beside the real ones (a Seattle day log grows all day:
    its size depends on the hour the bench runs, Pacific time)."""
    from dispatchwatch.synthetic.common import LOS_ANGELES

    local = datetime.now(LOS_ANGELES)
    hours = local.hour + local.minute / 60
    parts = []
    for kind, (rows, size) in sizes.items():
        real_rows, real_size, when = REAL_PAGES[kind]
        scaled = ""
        if kind == "seattle":
            # The real day page at this hour, at the real page's pace (18.56 h of the day).
            share = hours / 18.56
            scaled = f"; at {local:%H:%M} Pacific ~{real_rows * share:.0f} rows, "
            scaled += f"{real_size * share / 1000:.0f} KB"
        parts.append(
            f"{kind} {rows:.0f} rows, {size / 1000:.0f} KB (real page of {when}: "
            f"{real_rows} rows, {real_size / 1000:.0f} KB{scaled})"
        )
    return "simulated pages at start-up, mean: " + "; ".join(parts)


def write_config(folder: Path, feeds: list[tuple[str, str, str]], interval: float) -> Path:
    lines = ["database: bench.db", "contact: bench@localhost", "feeds:"]
    for slug, scraper, url in feeds:
        lines += [f"  {slug}:", f"    scraper: {scraper}", f"    url: {url}"]
        lines += [f"    interval: {interval}s"]
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the raw baseline ---------------------------------------------------------------------------

RAW_ROWS = {"milwaukee": "//tbody/tr[td]", "seattle": "//tr[starts-with(@id, 'row_')]"}


def raw_poller(folder: Path, interval: float, workers: int) -> None:
    """The raw baseline process: polls ``folder/feeds.json`` on schedule until SIGTERM,
    writing ``polls.jsonl`` like ``run --jsonl`` and a bare SQLite archive."""
    import httpx
    import lxml.etree

    feeds = json.loads((folder / "feeds.json").read_text())
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS polls (feed, started_at, status, sha256)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS calls (feed, c1, c2, c3, c4, c5, c6, "
        "PRIMARY KEY (feed, c1, c2, c4))"
    )
    db = threading.Lock()
    xpaths = {kind: lxml.etree.XPath(path) for kind, path in RAW_ROWS.items()}
    client = httpx.Client(timeout=10, headers={"User-Agent": "raw-baseline"})
    etags: dict[str, str] = {}
    digests: dict[str, str] = {}
    out = (folder / "polls.jsonl").open("w")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    poll_ids = iter(range(1, 1 << 62))

    def stamp(at: float) -> str:
        return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")

    def poll(slug: str, url: str, scheduled: float) -> None:
        started = time.time()
        clock = time.perf_counter()
        headers = {"If-None-Match": etags[slug]} if slug in etags else {}
        try:
            resp = client.get(url, headers=headers)
            digest = None
            outcome = "not_modified"
            if resp.status_code == 200:
                body = resp.content
                etags[slug] = resp.headers.get("etag", "")
                digest = sha256(body).hexdigest()
                outcome = "unchanged"
                if digest != digests.get(slug):
                    digests[slug] = digest
                    outcome = "new"
                    kind = "seattle" if "/seattle/" in url else "milwaukee"
                    tree = lxml.etree.fromstring(body, lxml.etree.HTMLParser())
                    rows = [
                        (slug, *[(td.text or "").strip() for td in row.findall("td")][:6])
                        for row in xpaths[kind](tree)
                    ]
            with db:
                conn.execute("BEGIN")
                if outcome == "new":
                    conn.executemany(
                        "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [row + ("",) * (7 - len(row)) for row in rows],
                    )
                conn.execute(
                    "INSERT INTO polls VALUES (?, ?, ?, ?)",
                    (slug, stamp(started), resp.status_code, digest),
                )
                conn.execute("COMMIT")
                poll_id = next(poll_ids)
        except Exception as exc:  # the baseline counts errors, nothing more
            outcome, poll_id = f"error {type(exc).__name__}", next(poll_ids)
        record = {
            "feed": slug,
            "poll_id": poll_id,
            "outcome": outcome,
            "started_at": stamp(started),
            "scheduled_at": stamp(scheduled),
            "duration_ms": (time.perf_counter() - clock) * 1000,
        }
        with db:
            out.write(json.dumps(record) + "\n")

    pool = ThreadPoolExecutor(workers)
    now = time.time()
    window = min(interval, len(feeds) * 0.02)  # the daemon's start-up spread
    due = [(now + 0.2 + window * n / len(feeds), n) for n in range(len(feeds))]
    heapq.heapify(due)
    while not stop.is_set() and due:
        at, n = due[0]
        wait = at - time.time()
        if wait > 0:
            stop.wait(min(wait, 0.5))
            continue
        heapq.heapreplace(due, (at + interval * (0.95 + 0.1 * random.random()), n))
        slug, _scraper, url = feeds[n]
        pool.submit(poll, slug, url, at)
    pool.shutdown(wait=True, cancel_futures=True)
    out.close()
    conn.close()


# --- measuring ----------------------------------------------------------------------------------


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


def tree_usage(proc: psutil.Process) -> tuple[float, float, int, int]:
    """CPU seconds of ``proc`` and its children (the daemon's parse processes: alive ones
    read directly, exited ones from ``proc``'s rusage of its waited children), ``proc``'s
    RSS and its children's own memory (USS: what a child does not share with the daemon);
    and the CPU seconds of ``proc`` alone (second)."""
    times = proc.cpu_times()
    own_cpu = times.user + times.system
    cpu = own_cpu + times.children_user + times.children_system
    own = 0
    for child in proc.children(recursive=True):
        try:
            cpu += cpu_seconds(child)
            own += child.memory_full_info().uss
        except psutil.NoSuchProcess:
            pass
    return cpu, own_cpu, proc.memory_info().rss, own


def first_run(command: list[str], folder: Path, feeds: int, limit: float) -> None:
    """Run ``command`` until every feed had a poll (at most ``limit`` seconds), then stop it:
    the archive then holds every feed's page, as after a daemon's earlier run."""
    began = time.monotonic()
    log = folder / "first-run.jsonl"
    done: set[str] = set()
    with log.open("w") as out, (folder / "first-run.log").open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=folder)
        while time.monotonic() - began < limit:
            time.sleep(5)
            done = {json.loads(line)["feed"] for line in log.read_text().splitlines()}
            if len(done) >= feeds:
                break
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    print(
        f"  first run: {len(done)} of {feeds} feeds archived in "
        f"{time.monotonic() - began:.0f} s; restarting on that archive",
        flush=True,
    )


def measure(
    command: list[str], folder: Path, feeds: int, interval: float, duration: float
) -> dict[str, Any]:
    """Run ``command`` (which writes ``folder/polls.jsonl``) for ``duration`` seconds and
    measure it."""
    with (folder / "polls.jsonl").open("a") as out, (folder / "process.log").open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=folder)
        proc = psutil.Process(process.pid)
        began, began_utc = time.monotonic(), datetime.now(UTC)
        # (seconds since start, CPU seconds, bytes: RSS + children's USS, children's USS,
        # CPU seconds of the daemon's process alone)
        samples: list[tuple[float, float, int, int, float]] = []
        while True:
            now = time.monotonic() - began
            try:
                cpu, own_cpu, rss, children = tree_usage(proc)
            except psutil.NoSuchProcess:
                break
            samples.append((now, cpu, rss + children, children, own_cpu))
            if now >= duration or process.poll() is not None:
                break
            time.sleep(0.25)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
    reports = [json.loads(line) for line in (folder / "polls.jsonl").read_text().splitlines()]

    first_done: dict[str, float] = {}
    for report in sorted(reports, key=lambda r: r["started_at"]):
        if report["feed"] not in first_done:
            start = (parse_time(report["started_at"]) - began_utc).total_seconds()
            first_done[report["feed"]] = start + report["duration_ms"] / 1000
    startup = max(first_done.values()) if len(first_done) == feeds else math.inf
    # The CPU the process had used by then: start-up's work, whatever the machine's other
    # load let it have of the wall clock (on an idle core, start-up takes about this long).
    by_then = next((s for s in samples if s[0] >= startup), samples[-1])
    startup_cpu, startup_own_cpu = by_then[1], by_then[4]
    steady_from = max(startup + interval, duration / 2)
    steady = [s for s in samples if s[0] >= steady_from]
    steady_wall = steady[-1][0] - steady[0][0] if len(steady) > 1 else 0.0

    late_all, late_steady, durations, steady_polls, changed = [], [], [], 0, 0
    for report in reports:
        at = (parse_time(report["started_at"]) - began_utc).total_seconds()
        in_steady = bool(steady) and steady[0][0] <= at <= steady[-1][0]
        changed += report["outcome"] == "new"
        if report.get("scheduled_at"):
            late = (
                parse_time(report["started_at"]) - parse_time(report["scheduled_at"])
            ).total_seconds()
            late_all.append(late)
            if in_steady:
                late_steady.append(late)
        if in_steady:
            steady_polls += 1
            durations.append(report["duration_ms"])
    nan = float("nan")

    def on_time(values: list[float]) -> float:
        return sum(v <= 1.0 for v in values) / len(values) if values else nan

    wall = samples[-1][0]
    errors: dict[str, int] = {}
    for report in reports:
        if report["outcome"].startswith("error"):
            kind = report.get("error_kind") or report["outcome"]
            errors[kind] = errors.get(kind, 0) + 1
    return {
        "exit": code,
        "polls": len(reports),
        "startup_s": startup,
        "startup_cpu_s": startup_cpu,
        "startup_own_cpu_s": startup_own_cpu,
        "first_polls": len(first_done),
        "steady_s": steady_wall,
        "polls_per_s": steady_polls / steady_wall if steady_wall else nan,
        "done_share": len(reports) / max(1.0, feeds * wall / interval),
        "changed_share": changed / len(reports) if reports else nan,
        "on_time_all": on_time(late_all),
        "on_time": on_time(late_steady),
        "late_p99_ms": percentile(late_steady, 0.99) * 1000,
        "late_max_ms": max(late_steady, default=nan) * 1000,
        "poll_p50_ms": percentile(durations, 0.5),
        "poll_p95_ms": percentile(durations, 0.95),
        "cpu_all": 100 * samples[-1][1] / wall if wall else nan,
        "cpu": 100 * (steady[-1][1] - steady[0][1]) / steady_wall if steady_wall else nan,
        "rss_peak_mb": max(s[2] for s in samples) / 2**20,
        "rss_end_mb": samples[-1][2] / 2**20,
        "children_mb": max(s[3] for s in samples) / 2**20,
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


def run_one(
    feeds: int,
    *,
    interval: float,
    duration: float,
    hosts: int,
    speed: float,
    seattle: str,
    change_rate: float,
    folder: Path,
    workers: int | None,
    baseline: bool,
    parse_processes: int | None = None,
    restart: float = 0.0,
) -> dict[str, dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    if change_rate > 0:
        # Milwaukee's page is rebuilt every 5 simulated minutes: simulated time must run at
        # least that fast for it to change every interval / rate seconds.
        speed = max(speed, MILWAUKEE_REFRESH * change_rate / interval)
    # change_every is in simulated seconds: a page moves on every interval / rate seconds.
    change_every = interval * speed / change_rate if change_rate > 0 else None
    sim = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(hosts), "--speed", str(speed)]
        + ["--seattle", seattle]
        + (["--change-every", str(change_every)] if change_every else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    results: dict[str, dict[str, Any]] = {}
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        listed = feed_list(feeds, ports)
        print("  " + describe_pages(warm(listed)), flush=True)
        sim_proc = psutil.Process(sim.pid)
        sim_cpu = cpu_seconds(sim_proc)
        daemon_dir = folder / "dispatchwatch"
        daemon_dir.mkdir(exist_ok=True)
        config = write_config(daemon_dir, listed, interval)
        command = [sys.executable, "-m", "dispatchwatch", "run", "--config", str(config)]
        command += ["--jsonl", *(["--workers", str(workers)] if workers else [])]
        if parse_processes is not None:
            command += ["--parse-processes", str(parse_processes)]
        if restart:
            # A first run archives every feed's first page, then the daemon restarts on
            # that archive: its first polls are conditional GETs like any other (a page
            # changed meanwhile is archived), so the run measured is steady from the start.
            first_run(command, daemon_dir, feeds, restart)
        results["dispatchwatch"] = measure(command, daemon_dir, feeds, interval, duration)
        results["dispatchwatch"]["sim_cpu"] = (
            100 * (cpu_seconds(sim_proc) - sim_cpu) / max(duration, 1)
        )
        if baseline and not restart:
            raw_dir = folder / "raw"
            raw_dir.mkdir(exist_ok=True)
            (raw_dir / "feeds.json").write_text(json.dumps(listed))
            command = [sys.executable, __file__, "--raw-poller", str(raw_dir)]
            command += ["--interval", f"{interval}s", "--workers", str(workers or 32)]
            results["raw"] = measure(command, raw_dir, feeds, interval, duration)
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=60)
    return results


ROWS = [
    # (label, key, format, target text, passes)
    ("first poll of every feed done", "startup_s", "{:.0f} s", "<= 60 s", lambda v: v <= 60),
    ("CPU used by then (start-up's work)", "startup_cpu_s", "{:.0f} s", "", None),
    ("  of which the daemon's own process", "startup_own_cpu_s", "{:.0f} s", "", None),
    ("polls on time (<= 1 s late), whole run", "on_time_all", "{:.2%}", ">= 99.9%", None),
    ("polls on time, steady state", "on_time", "{:.2%}", ">= 99.9%", lambda v: v >= 0.999),
    ("lateness p99 / max, steady", "late_p99_ms", "{:.0f} ms", "", None),
    ("", "late_max_ms", "{:.0f} ms", "", None),
    ("CPU, % of one core, steady", "cpu", "{:.1f}%", "< 15%", lambda v: v < TARGET_CPU),
    ("CPU, whole run (start-up included)", "cpu_all", "{:.1f}%", "", None),
    (
        "peak RSS (+ parse processes' USS)",
        "rss_peak_mb",
        "{:.0f} MB",
        "< 150 MB",
        lambda v: v < TARGET_RSS_MB,
    ),
    ("  of which parse processes (peak)", "children_mb", "{:.0f} MB", "", None),
    ("RSS at the end", "rss_end_mb", "{:.0f} MB", "", None),
    ("polls/s, steady", "polls_per_s", "{:.1f}", "", None),
    ("polls done / scheduled", "done_share", "{:.0%}", "", None),
    ("polls that found a changed page", "changed_share", "{:.1%}", "", None),
    ("poll p50 / p95, steady", "poll_p50_ms", "{:.0f} ms", "", None),
    ("", "poll_p95_ms", "{:.0f} ms", "", None),
    ("errors", "errors", "{:d}", "0", lambda v: v == 0),
]


def print_table(results: dict[str, dict[str, Any]]) -> None:
    names = list(results)
    table = [["", *names, *(["ratio"] if "raw" in results else []), "target", ""]]
    for label, key, fmt, target, passes in ROWS:
        cells = [fmt.format(results[name][key]) for name in names]
        if "raw" in results:
            ours, raw = results["dispatchwatch"][key], results["raw"][key]
            ratio = ours / raw if isinstance(raw, int | float) and raw else float("nan")
            cells.append("" if math.isnan(ratio) or key == "errors" else f"x{ratio:.2f}")
        verdict = ""
        if passes is not None:
            verdict = "ok" if passes(results["dispatchwatch"][key]) else "MISSED"
        table.append([label or "  ...", *cells, target, verdict])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print(
            "  "
            + row[0].ljust(widths[0])
            + "  "
            + "  ".join(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, nargs="+", default=[1000])
    parser.add_argument("--interval", default="60s", help="every feed's interval (60s)")
    parser.add_argument("--duration", default="5m", help="how long each process runs (5m)")
    parser.add_argument(
        "--change-rate",
        type=float,
        default=0.1,
        help="share of polls that find a changed page (0.1); 0: the models' own pace",
    )
    parser.add_argument(
        "--hosts", type=int, default=20, help="simulated hosts the feeds are spread over (20)"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second (1)")
    parser.add_argument(
        "--workers", type=int, default=None, help="the daemon's --workers (its default)"
    )
    parser.add_argument(
        "--parse-processes",
        type=int,
        default=None,
        help="the daemon's --parse-processes (its default; 0: parse in the daemon)",
    )
    parser.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="skip the raw baseline"
    )
    parser.add_argument(
        "--restart",
        default=None,
        metavar="LIMIT",
        help="measure a restarted daemon: a first run (at most LIMIT, e.g. 20m) archives "
        "every feed's page, the measured run starts on that archive (no baseline then)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep configs, logs and archives in this folder"
    )
    parser.add_argument(
        "--seattle",
        choices=("real", "heavy"),
        default="real",
        help="simulated Seattle day logs: 'real' (default) at the real page's rates (11.9 "
        "incidents an hour, 1.21 rows each, ~545 bytes a row), 'heavy' the models' default "
        "(30 an hour, 1.57 rows each: ~3.5 times the rows; the figures before this option)",
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--change-every", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--raw-poller", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.speed, args.change_every, args.seattle)
        return
    interval, duration = parse_duration(args.interval), parse_duration(args.duration)
    if args.raw_poller is not None:
        raw_poller(args.raw_poller, interval, args.workers or 32)
        return
    base = args.keep or Path(tempfile.mkdtemp(prefix="dispatchwatch-bench-"))
    print(
        f"{os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}); interval {interval:g}s, "
        f"{duration:g}s per process, change rate {args.change_rate:g}, {args.hosts} simulated "
        f"hosts, speed x{args.speed:g}; files in {base}",
        flush=True,
    )
    for feeds in args.feeds:
        results = run_one(
            feeds,
            interval=interval,
            duration=duration,
            hosts=args.hosts,
            speed=args.speed,
            seattle=args.seattle,
            change_rate=args.change_rate,
            folder=base / f"feeds-{feeds}",
            workers=args.workers,
            parse_processes=args.parse_processes,
            baseline=args.baseline,
            restart=parse_duration(args.restart) if args.restart else 0.0,
        )
        ours = results["dispatchwatch"]
        print(
            f"\n{feeds} feeds at {interval:g}s: {ours['polls']} polls, first polls of "
            f"{ours['first_polls']} feeds, errors {ours['error_kinds']}, exit {ours['exit']}, "
            f"simulation CPU {ours['sim_cpu']:.0f}%, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        print_table(results)


if __name__ == "__main__":
    main()
