"""What reading a page's bytes as text costs, next to a plain ``bytes.decode``, in one run.

    python bench/decoding.py                     # the real Seattle day page, 200 runs
    python bench/decoding.py PAGE.html --runs 500

``Page.text`` (w3lib's order: byte-order mark, header charset, ``<meta charset>``, then
detection) against ``body.decode("utf-8")``; then the whole Seattle parse (decode + lxml +
rows) against the same parse of an already decoded page, so the share of decoding is visible.
Times are the best of --runs, in microseconds per page.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from dispatchwatch.scraper import Page
from dispatchwatch.scrapers import seattle_fire

REAL = Path(__file__).resolve().parents[2] / "shared/real-pages/seattle/realtime911_2024-03-31.html"


def best_of(runs: int, action: Callable[[], object]) -> float:
    """The fastest of ``runs`` calls, in microseconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", nargs="?", type=Path, default=REAL)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    body = args.page.read_bytes()
    stray = body.replace(b"Aid Response", b"Aid\x92 Response", 1)  # one stray byte

    def decoded_page(data: bytes) -> Page:
        page = Page(data)
        page.__dict__["_decoded"] = ("utf-8", data.decode("utf-8", errors="replace"))
        return page

    rows = [
        ("decode, clean UTF-8", lambda: Page(body).text, lambda: body.decode("utf-8")),
        (
            "decode, one stray byte",
            lambda: Page(stray).text,
            lambda: stray.decode("utf-8", errors="replace"),
        ),
        (
            "seattle parse",
            lambda: seattle_fire.parse(Page(body)),
            lambda: seattle_fire.parse(decoded_page(body)),
        ),
    ]
    print(f"{args.page.name}: {len(body):,} bytes, best of {args.runs}")
    print(f"{'':26}{'project us':>12}{'baseline us':>13}{'ratio':>8}")
    for name, project, baseline in rows:
        ours, raw = best_of(args.runs, project), best_of(args.runs, baseline)
        print(f"{name:26}{ours:12.1f}{raw:13.1f}{ours / raw:8.2f}")


if __name__ == "__main__":
    main()
