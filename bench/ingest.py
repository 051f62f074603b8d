"""Parse and ingest throughput of both scrapers next to a raw baseline, in one run.

    python bench/ingest.py                 # 1,000 Milwaukee pages, 200 Seattle day pages
    python bench/ingest.py --mke-pages 300 --runs 1

Pages come from the seeded synthetic feeds (dispatchwatch.synthetic), rendered in the real
markup, written to a temporary folder. Reported:

- in-process parse: the scraper alone, then scraper + normalization (what ``parse`` does),
  next to plain lxml + XPath on the same pages;
- whole process: ``dispatchwatch ingest FEED pages... --db`` against
  ``python bench/raw_baseline.py`` (lxml + sqlite3 executemany, a commit per page) on the
  same pages, best of --runs, and the ratio (target: >= 60% for Milwaukee). The package's
  bytecode is compiled first, as ``pip install`` does (see bench/socrata.py).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lxml.etree

from dispatchwatch.config import default_feed
from dispatchwatch.pipeline import parse_page
from dispatchwatch.scraper import Page
from dispatchwatch.synthetic import milwaukee_pages, seattle_pages

sys.path.insert(0, str(Path(__file__).resolve().parent))
from socrata import compile_package  # noqa: E402 - a sibling bench script

HERE = Path(__file__).resolve().parent
FEEDS = {"milwaukee": "milwaukee-police", "seattle": "seattle-fire"}
ROWS = {"milwaukee": "//tbody/tr[td]", "seattle": "//tr[starts-with(@id, 'row_')]"}


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


def write_pages(folder: Path, pages: list[bytes]) -> list[str]:
    folder.mkdir(parents=True)
    names = []
    for number, body in enumerate(pages, 1):
        path = folder / f"page_{number:05d}.html"
        path.write_bytes(body)
        names.append(str(path))
    return names


def in_process(kind: str, pages: list[bytes], runs: int) -> dict[str, tuple[float, int]]:
    feed = default_feed(FEEDS[kind])
    xpath = lxml.etree.XPath(ROWS[kind])
    counts = {"rows": 0, "incidents": 0, "raw": 0}

    def scraper_only() -> None:
        counts["rows"] = sum(len(feed.scraper.parse(Page(body)).rows) for body in pages)

    def scraper_and_normalize() -> None:
        counts["incidents"] = sum(len(parse_page(feed, body).incidents) for body in pages)

    parser = lxml.etree.HTMLParser()

    def raw_lxml() -> None:
        total = 0
        for body in pages:
            tree = lxml.etree.fromstring(body, parser)
            total += len([[(td.text or "").strip() for td in r.findall("td")] for r in xpath(tree)])
        counts["raw"] = total

    return {
        "lxml + XPath (baseline)": (best_of(runs, raw_lxml), counts["raw"]),
        "scraper parse": (best_of(runs, scraper_only), counts["rows"]),
        "scraper + normalize": (best_of(runs, scraper_and_normalize), counts["incidents"]),
    }


def whole_process(
    kind: str, files: list[str], work: Path, runs: int
) -> dict[str, tuple[float, float]]:
    scripts = str(Path(sys.executable).parent)
    command = shutil.which("dispatchwatch", path=scripts) or "dispatchwatch"

    def fresh(name: str) -> Path:
        db = work / name
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return db

    def raw() -> None:
        subprocess.run(
            [
                sys.executable,
                str(HERE / "raw_baseline.py"),
                kind,
                "--db",
                str(fresh("raw.db")),
                *files,
            ],
            check=True,
            capture_output=True,
        )

    def ours() -> None:
        subprocess.run(
            [command, "ingest", FEEDS[kind], "--db", str(fresh("ours.db")), *files],
            check=True,
            capture_output=True,
        )

    return {
        "raw baseline process": best_of_cpu(runs, raw),
        "dispatchwatch ingest": best_of_cpu(runs, ours),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mke-pages", type=int, default=1000)
    parser.add_argument("--sea-pages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    compile_package()
    with tempfile.TemporaryDirectory(prefix="dispatchwatch-bench-") as tmp:
        work = Path(tmp)
        sets = {
            "milwaukee": list(milwaukee_pages(args.mke_pages, seed=args.seed)),
            "seattle": list(seattle_pages(args.sea_pages, seed=args.seed)),
        }
        print(f"{'feed':<10} {'stage':<26} {'pages/s':>9} {'incidents/s':>12} {'vs baseline':>12}")
        for kind, pages in sets.items():
            files = write_pages(work / kind, pages)
            megabytes = sum(map(len, pages)) / 1e6
            print(f"-- {kind}: {len(pages)} pages, {megabytes:.1f} MB")
            stages = in_process(kind, pages, args.runs)
            base_seconds, _ = stages["lxml + XPath (baseline)"]
            for stage, (seconds, items) in stages.items():
                print(
                    f"{kind:<10} {stage:<26} {len(pages) / seconds:>9.0f} "
                    f"{items / seconds:>12.0f} {base_seconds / seconds:>11.0%}"
                )
            processes = whole_process(kind, files, work, args.runs)
            incidents = stages["scraper + normalize"][1]
            raw_seconds, raw_cpu = processes["raw baseline process"]
            for stage, (seconds, cpu) in processes.items():
                print(
                    f"{kind:<10} {stage:<26} {len(pages) / seconds:>9.0f} "
                    f"{incidents / seconds:>12.0f} {raw_seconds / seconds:>11.0%}"
                    f"   (CPU {cpu:.2f} s, {raw_cpu / cpu:.0%})"
                )
        print("\n'vs baseline' = baseline time / this time: the throughput ratio.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
