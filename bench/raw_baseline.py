"""The raw baseline for bench/ingest.py: the least work that still archives a page.

Plain lxml (etree's HTML parser, the fastest way lxml offers), cell texts, ``executemany``
into one SQLite table, one commit per page (same WAL / synchronous settings as the archive).
No normalization, no dedupe, no history, no error handling: the floor that dispatchwatch's
real pipeline is compared against.

    python bench/raw_baseline.py milwaukee --db raw.db pages/*.html
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

import lxml.etree

ROWS = {
    # Milwaukee: data rows are the tbody rows; Seattle: the rows with id="row_N".
    "milwaukee": "//tbody/tr[td]",
    "seattle": "//tr[starts-with(@id, 'row_')]",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=sorted(ROWS))
    parser.add_argument("files", nargs="+")
    parser.add_argument("--db", required=True)
    args = parser.parse_args()

    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS calls (page TEXT, c1, c2, c3, c4, c5, c6, "
        "PRIMARY KEY (page, c1, c2, c4))"
    )
    xpath = lxml.etree.XPath(ROWS[args.kind])
    parser = lxml.etree.HTMLParser()
    rows_total = 0
    for name in args.files:
        with open(name, "rb") as handle:
            tree = lxml.etree.fromstring(handle.read(), parser)
        rows = [
            (name, *[(td.text or "").strip() for td in row.findall("td")][:6])
            for row in xpath(tree)
        ]
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        rows_total += len(rows)
    conn.close()
    print(f"{len(args.files)} pages, {rows_total} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
