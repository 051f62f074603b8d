"""Milwaukee's fast paths give the answer of what they stand for, on every shape.

``ElementMarker`` (the legend or footer after the calls table) stands for the XPath
``//table/following::dl | //div[@data-role='footer']``: checked against the XPath on pages
built to hit its corners (a legend inside, before or after the table, in a nested table, a
footer anywhere, comments) and on the real page cut at many places. ``row_texts`` gives
each cell's ``cell_text``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from lxml import etree

from dispatchwatch.scraper import Page, cell_text, row_texts
from dispatchwatch.scrapers import milwaukee_police
from dispatchwatch.synthetic import milwaukee_pages

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-pages" / "milwaukee"
TABLE = "<table><tr><th>Call Number</th></tr><tr><td>1</td></tr></table>"
SHAPES = [
    f"{TABLE}<dl><dt>PPS</dt></dl>",
    f"<dl><dt>PPS</dt></dl>{TABLE}",  # before the table: no
    "<table><tr><td><dl><dt>in</dt></dl></td></tr></table>",  # inside it: no
    "<table><tr><td><table><tr><td>x</td></tr></table><dl><dt>x</dt></dl></td></tr></table>",
    f"{TABLE}<div><div><p>x</p><dl></dl></div></div><p>end</p>",
    "<div data-role='footer'>f</div>",  # a footer needs no table
    f"{TABLE}<div data-role='header'>h</div>",  # another role: no
    f"{TABLE}<div role='footer'>f</div>",  # another attribute: no
    f"{TABLE}<!-- <dl></dl> --><p>x</p>",  # a comment: no
    f"{TABLE}<dl",  # cut inside the tag
    f"<dl>{TABLE}</dl>",  # the table inside the legend: no
    f"<dl>a</dl>{TABLE}<p><span><dl>b</dl></span></p><div>z</div>",
    "",
]


@pytest.mark.parametrize("shape", SHAPES)
def test_end_marker_is_the_xpath(shape: str) -> None:
    tree = Page(f"<html><body><p>top</p>{shape}</body></html>".encode()).tree
    assert milwaukee_police.END_MARKERS(tree) is bool(tree.xpath(milwaukee_police.END_XPATH))


def test_end_marker_on_synthetic_pages_whole_and_cut() -> None:
    body = next(iter(milwaukee_pages(1, seed=5)))
    for cut in itertools.chain(range(len(body) - 3000, len(body), 97), [len(body) // 2]):
        tree = Page(body[:cut]).tree
        expected = bool(tree.xpath(milwaukee_police.END_XPATH))
        assert milwaukee_police.END_MARKERS(tree) is expected, cut
    assert milwaukee_police.END_MARKERS(Page(body).tree)


def test_end_marker_on_the_real_page() -> None:
    path = REAL / "mpd_calls_2023-01-21.html"
    if not path.exists():
        pytest.skip("the real pages (../shared) are not here")
    body = path.read_bytes()
    found = 0
    cuts = [*range(len(body) - 8000, len(body), 61), len(body) // 2]
    for cut in cuts:
        tree = Page(body[:cut]).tree
        expected = bool(tree.xpath(milwaukee_police.END_XPATH))
        assert milwaukee_police.END_MARKERS(tree) is expected, cut
        found += expected
    assert 0 < found < len(cuts)  # (both answers met)
    assert milwaukee_police.END_MARKERS(Page(body).tree)


ROWS = [
    "<tr><td> 1 </td><td>a&nbsp; b</td><th>h</th><!-- c --><td></td></tr>",
    "<tr><td><b>x</b> y<!-- z --></td><td><a href='#'>link</a>tail</td></tr>",
    "<tr><td>1</td><td><table><tr><td>inner</td></tr></table></td></tr>",
    "<tr></tr>",
]


def _cells_one_by_one(row: etree._Element) -> list[str]:
    return [cell_text(c) for c in row if c.tag in ("td", "th")]


def test_row_texts_are_the_cells_texts() -> None:
    real = REAL / "mpd_calls_2023-01-21.html"
    bodies = list(milwaukee_pages(3, seed=9)) + ([real.read_bytes()] if real.exists() else [])
    bodies.append(f"<html><body><table>{''.join(ROWS)}</table></body></html>".encode())
    for body in bodies:
        rows = list(Page(body).tree.iter("tr"))
        for row in rows:
            assert row_texts(row) == _cells_one_by_one(row)
