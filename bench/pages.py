"""How to compress a feed's raw pages: plain zstd, a trained dictionary, or deltas.

    python bench/pages.py                    # 1,000 Milwaukee and 500 Seattle pages
    python bench/pages.py --mke-pages 300 --sea-pages 100

For the real pages (a single capture each, from ../shared/real-pages when present) and for
seeded synthetic sequences (dispatchwatch.synthetic: what a feed serves poll after poll,
repeated bodies dropped as the daemon drops them), each strategy's stored size, ratio (raw /
stored) and time:

- zstd alone (level 3), each page on its own;
- a dictionary trained on the first 100 pages (zstd's trainer, 110 KB), level 3;
- delta: each page compressed with the previous page as a raw-content dictionary (like
  ``zstd --patch-from``), a self-contained page every CHAIN pages (what the page store does),
  and with an unbounded chain;
- the page store itself (dispatchwatch.pagestore via ``ingest``), measured in the archive.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import zstandard

from dispatchwatch.archive import Archive
from dispatchwatch.config import default_feed
from dispatchwatch.pagestore import CHAIN, LEVEL, page_stats
from dispatchwatch.pipeline import process_page
from dispatchwatch.synthetic import milwaukee_pages, seattle_pages

#: ../shared/real-pages beside the checkout (or beside the worktrees' folder).
REAL = next(
    (
        p / "shared" / "real-pages"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "real-pages").is_dir()
    ),
    Path("shared/real-pages"),
)
FEEDS = {"milwaukee": "milwaukee-police", "seattle": "seattle-fire"}


def distinct_runs(pages: list[bytes]) -> list[bytes]:
    """Drop a page equal to the one before (an unchanged poll stores nothing)."""
    return [p for i, p in enumerate(pages) if i == 0 or p != pages[i - 1]]


def plain(pages: list[bytes]) -> int:
    compressor = zstandard.ZstdCompressor(level=LEVEL)
    return sum(len(compressor.compress(p)) for p in pages)


def trained(pages: list[bytes]) -> int:
    dictionary = zstandard.train_dictionary(112_640, pages[:100], level=LEVEL)
    compressor = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary)
    return len(dictionary.as_bytes()) + sum(len(compressor.compress(p)) for p in pages)


def delta(chain: int) -> Callable[[list[bytes]], int]:
    def run(pages: list[bytes]) -> int:
        total, previous = 0, None
        for index, page in enumerate(pages):
            if previous is None or index % chain == 0:
                total += len(zstandard.ZstdCompressor(level=LEVEL).compress(page))
            else:
                raw = zstandard.ZstdCompressionDict(
                    previous, dict_type=zstandard.DICT_TYPE_RAWCONTENT
                )
                compressor = zstandard.ZstdCompressor(level=LEVEL, dict_data=raw)
                total += len(compressor.compress(page))
            previous = page
        return total

    return run


def page_store(kind: str, pages: list[bytes]) -> int:
    feed = default_feed(FEEDS[kind])
    with tempfile.TemporaryDirectory() as tmp, Archive(Path(tmp) / "a.db") as archive:
        archive.register_feed(feed.record())
        for body in pages:
            process_page(archive, feed, body, url=feed.url, older="history")
        return int(page_stats(archive.conn)["stored_bytes"])


def report(name: str, pages: list[bytes], kind: str | None, strategies: dict) -> None:
    raw = sum(map(len, pages))
    print(f"-- {name}: {len(pages)} pages, {raw / 1e6:.2f} MB raw")
    for label, strategy in strategies.items():
        start = time.perf_counter()
        size = strategy(pages) if label != "page store (ingest)" else page_store(kind, pages)
        seconds = time.perf_counter() - start
        print(f"   {label:<34} {size / 1e3:>9.0f} KB {raw / size:>7.1f}x {seconds:>7.2f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mke-pages", type=int, default=1000)
    parser.add_argument("--sea-pages", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"zstd level {LEVEL}; stored size, ratio (raw / stored), time")
    for path in (
        REAL / "milwaukee" / "mpd_calls_2023-01-21.html",
        REAL / "seattle" / "realtime911_2024-03-31.html",
    ):
        if path.exists():
            report(f"real {path.name}", [path.read_bytes()], None, {"zstd alone": plain})
    strategies = {
        "zstd alone": plain,
        "trained dictionary (100 pages)": trained,
        f"delta, chains of {CHAIN}": delta(CHAIN),
        "delta, one unbounded chain": delta(10**9),
        "page store (ingest)": None,
    }
    sets = {
        "milwaukee": distinct_runs(list(milwaukee_pages(args.mke_pages, seed=args.seed))),
        "seattle": distinct_runs(list(seattle_pages(args.sea_pages, seed=args.seed))),
    }
    for kind, pages in sets.items():
        report(f"synthetic {kind}", pages, kind, strategies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
