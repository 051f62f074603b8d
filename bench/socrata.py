"""Socrata adapter costs, each next to a raw baseline measured in the same run.

    python bench/socrata.py                   # 100,000 rows, best of 3
    python bench/socrata.py --rows 20000 --runs 1

(a) An unchanged incremental poll. A loopback SODA server (tests/soda_server.py) holds
    ``--window`` rows inside the feed's look-back; the feed is polled once (everything is
    new), then again with nothing changed. Reported: requests and bytes of that unchanged
    poll and its time, next to the naive poll (GET the whole window again, parse it).
(b) Bulk ingest of ``--rows`` Socrata JSON rows (Seattle Fire open-data shape, saved as pages
    of 1,000 rows, as the adapter fetches them): ``dispatchwatch ingest
    seattle-fire-open-data pages... --db`` against a raw process (``json.loads`` of each page
    + sqlite3 ``executemany`` into a similar table, a commit per page), whole process against
    whole process, best of ``--runs`` run in turn (raw, ours, raw, ...: drift in the
    machine's speed weighs on both); the ratio is raw time / dispatchwatch time
    (target >= 50%). The package's bytecode is compiled first, as ``pip install`` does (an
    editable install under ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module
    in every run, while the baseline's standard library is compiled already). Besides the
    whole process's CPU it reports that of the ingest process itself and of its parse-ahead
    child (the command runs as its console script runs it, and tells them on exit).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

RAW = r"""
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = NORMAL")
conn.execute("CREATE TABLE IF NOT EXISTS calls (incident_number TEXT PRIMARY KEY, type TEXT, "
             "datetime TEXT, address TEXT, latitude REAL, longitude REAL)")
for name in sys.argv[2:]:
    with open(name, "rb") as f:
        rows = json.loads(f.read())
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?)",
        [(r["incident_number"], r.get("type"), r.get("datetime"), r.get("address"),
          r.get("latitude"), r.get("longitude")) for r in rows],
    )
    conn.execute("COMMIT")
"""

#: ``dispatchwatch ingest`` as its console script runs it, telling on exit (stderr) the CPU
#: seconds of its own process and of its parse-ahead child (see parseahead.py).
OURS = r"""
import atexit, resource, sys
def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("cpu", own.ru_utime + own.ru_stime, child.ru_utime + child.ru_stime, file=sys.stderr)
atexit.register(cpu)
from dispatchwatch.cli import cli
sys.argv[0] = "dispatchwatch"
cli()
"""

TYPES = ["Aid Response", "Medic Response", "Auto Fire Alarm", "Motor Vehicle Accident",
         "Triaged Incident", "Rubbish Fire", "Investigate Out Of Service"]  # fmt: skip
STREETS = ["Summit Av", "Pine St", "3rd Av", "E Jefferson St", "Aurora Av N", "Rainier Av S",
           "NW Market St", "15th Av NE", "Lake City Way NE", "California Av SW"]  # fmt: skip


def seattle_rows(count: int, start: datetime) -> list[dict[str, object]]:
    """Rows in kzjm-xkqj's shape: one every 30 s from ``start`` (floating Pacific time)."""
    rows = []
    for i in range(count):
        when = start + timedelta(seconds=30 * i)
        lat, lon = 47.5 + (i % 997) * 0.0003, -122.4 + (i % 991) * 0.0002
        street = STREETS[i % len(STREETS)]
        address = f"{(i * 37) % 9000 + 100} {street}" if i % 5 else f"{street} / Pine St"
        rows.append({
            "address": address, "type": TYPES[i % len(TYPES)],
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.000"),
            "latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}",
            "report_location": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
            "incident_number": f"F24{i:07d}",
            ":@computed_region_ru88_fbhk": str(i % 40),
        })  # fmt: skip
    return rows


def best_of(runs: int, action: Callable[[], object]) -> float:
    return best_of_cpu(runs, action)[0]


def best_of_cpu(runs: int, action: Callable[[], object]) -> tuple[float, float]:
    """Best wall-clock seconds, and best CPU seconds (user + sys) of the child processes the
    action ran: on a shared machine the CPU time is the steadier of the two."""
    times, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return min(times), min(cpus)


def alternated(
    runs: int, raw: Callable[[], object], ours: Callable[[], object], rounds: list[float]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """:func:`best_of_cpu` of ``raw`` and of ``ours``, run in turn ``runs`` times each;
    appends to ``rounds`` each round's ratio (raw seconds / ours)."""
    raw_runs: list[tuple[float, float]] = []
    our_runs: list[tuple[float, float]] = []
    for _ in range(runs):
        raw_runs.append(best_of_cpu(1, raw))
        our_runs.append(best_of_cpu(1, ours))

    def best(pairs: list[tuple[float, float]]) -> tuple[float, float]:
        return min(p[0] for p in pairs), min(p[1] for p in pairs)

    rounds.extend(r[0] / o[0] for r, o in zip(raw_runs, our_runs, strict=True))
    return best(raw_runs), best(our_runs)


def unchanged_poll(window: int) -> None:
    import httpx
    from soda_server import soda_server

    from dispatchwatch.archive import Archive
    from dispatchwatch.config import Config, parse_config
    from dispatchwatch.daemon import Daemon
    from dispatchwatch.fetch import Fetcher
    from dispatchwatch.pipeline import parse_page

    now = datetime.now(UTC).astimezone(ZoneInfo("America/Los_Angeles")).replace(tzinfo=None)
    rows = seattle_rows(window, now - timedelta(seconds=30 * window))
    with soda_server() as srv, tempfile.TemporaryDirectory() as tmp, Fetcher(
        Config().user_agent
    ) as fetcher:  # fmt: skip
        srv.put("kzjm-xkqj", rows)
        url = srv.url("kzjm-xkqj")
        config = parse_config(
            f"feeds:\n  seattle-fire-open-data:\n    url: {url}\n    look_back: 1000d\n"
        )
        feed = config.feeds["seattle-fire-open-data"]
        with Archive(Path(tmp) / "a.db") as archive:
            archive.register_feed(feed.record())
            daemon = Daemon([feed], archive, fetcher)
            first = daemon.poll(feed)
            srv.seen.clear()
            start = time.perf_counter()
            second = daemon.poll(feed)
            seconds = time.perf_counter() - start
            stored = archive.conn.execute(
                "SELECT requests, bytes FROM polls ORDER BY id DESC LIMIT 1"
            ).fetchone()
        assert first is not None and second is not None
        # The naive poll: GET the whole look-back window again and parse every row.
        start = time.perf_counter()
        nbytes = 0
        with httpx.Client() as client:
            for offset in range(0, window, 1000):
                body = client.get(
                    url,
                    params={"$order": "datetime, :id", "$limit": 1000, "$offset": offset},
                ).content
                nbytes += len(body)
                parse_page(feed, body)
        naive = time.perf_counter() - start
    print(f"(a) unchanged incremental poll, {window:,} rows in the look-back window")
    print(f"    first poll: {first.outcome}, {first.new:,} new")
    print(
        f"    dispatchwatch: outcome {second.outcome}, {stored[0]} request(s), "
        f"{stored[1]:,} bytes, {seconds * 1000:.1f} ms, rows parsed: 0"
    )
    print(
        f"    naive re-read:  {-(-window // 1000)} requests, {nbytes:,} bytes, "
        f"{naive * 1000:.1f} ms, rows parsed: {window:,}"
    )
    print(f"    bytes ratio {stored[1] / nbytes:.5f}; time ratio {seconds / naive:.3f}")


def compile_package() -> None:
    """Byte-compile the installed package (and its built-in scrapers), as pip does."""
    import compileall

    import dispatchwatch
    import dispatchwatch.scrapers

    for module in (dispatchwatch, dispatchwatch.scrapers):
        for folder in module.__path__:
            compileall.compile_dir(folder, quiet=1)


def bulk_ingest(count: int, runs: int) -> None:
    compile_package()
    with tempfile.TemporaryDirectory(prefix="dispatchwatch-bench-") as tmp:
        work = Path(tmp)
        rows = seattle_rows(count, datetime(2024, 1, 1))
        files = []
        for number, offset in enumerate(range(0, count, 1000)):
            path = work / f"page_{number:05d}.json"
            path.write_text(json.dumps(rows[offset : offset + 1000]))
            files.append(str(path))
        megabytes = sum(Path(f).stat().st_size for f in files) / 1e6
        split: list[tuple[float, float]] = []  # (parent, child) CPU seconds of each run

        def fresh(name: str) -> str:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{work / name}{suffix}").unlink(missing_ok=True)
            return str(work / name)

        # Both run in the bench's own folder: ours would otherwise read the config.yaml of
        # whatever folder the bench is started from (the repository's demo feeds), work that
        # has nothing to do with ingesting these pages and that the raw process never does.
        def raw() -> None:
            subprocess.run(
                [sys.executable, "-c", RAW, fresh("raw.db"), *files], check=True, cwd=work
            )

        def ours() -> None:
            done = subprocess.run(
                [sys.executable, "-c", OURS, "ingest", "seattle-fire-open-data", "--db",
                 fresh("ours.db"), *files],
                check=True, capture_output=True, text=True, cwd=work,
            )  # fmt: skip
            line = done.stderr.splitlines()[-1].split()
            split.append((float(line[1]), float(line[2])))

        # Alternated, raw then ours in each round: a machine whose speed drifts during the
        # bench (a shared host) weighs on both alike, not on whichever ran second.
        rounds: list[float] = []
        (raw_seconds, raw_cpu), (our_seconds, our_cpu) = alternated(runs, raw, ours, rounds)
    print(f"(b) bulk ingest, {count:,} Socrata rows in {len(files)} pages ({megabytes:.1f} MB)")
    for label, seconds, cpu in (
        ("raw (json + sqlite3 executemany)", raw_seconds, raw_cpu),
        ("dispatchwatch ingest", our_seconds, our_cpu),
    ):
        print(
            f"    {label:<34} {seconds:6.2f} s  {count / seconds:>9,.0f} rows/s  (CPU {cpu:6.2f} s)"
        )
    parent, child = min(p for p, _ in split), min(c for _, c in split)
    print(
        f"      (its CPU, best of each: ingest process {parent:.2f} s, "
        f"parse-ahead child {child:.2f} s)"
    )
    print(f"    ratio (raw time / ours): {raw_seconds / our_seconds:.0%}  (target >= 50%)")
    print("      each round's ratio: " + " ".join(f"{ratio:.0%}" for ratio in rounds))
    print(f"    ratio of CPU time (raw / ours): {raw_cpu / our_cpu:.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    unchanged_poll(args.window)
    bulk_ingest(args.rows, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
