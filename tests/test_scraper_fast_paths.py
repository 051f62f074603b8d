"""The scrapers' fast paths give the answer of the XPath they stand for, on every shape.

``TextMarker`` (Seattle's footer) stands for ``//*[contains(text(), ...) and ...]`` and
``find_table_by_headers``'s rows for ``following::tr[td][not(.//tr)]``; both are checked
against the XPath itself on pages built to hit their corners (the needle in a tail, after a
comment, split over elements, in a comment, in an attribute; nested rows in and after the
header row, rows of ``th`` only, rows wrapping a table), and on the real Seattle page.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from lxml import etree

from dispatchwatch.scraper import Page, TextMarker, find_table_by_headers

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-pages"
FOOTER = "//*[contains(text(), 'Retrieved') and contains(text(), 'dispatch messages')]"

FOOTERS = [
    "<font>&nbsp;Retrieved 3 dispatch messages for 3/31/2024</font>",
    "<font><b>x</b>Retrieved 3 dispatch messages</font>",  # first text node: a tail
    "<font><!-- c -->Retrieved 3 dispatch messages</font>",  # after a comment
    "<font>Retrieved 3</font><font>dispatch messages</font>",  # split: no match
    "<font>Retrieved <i>3</i> dispatch messages</font>",  # split by a child: no match
    "<font>head<b>x</b>Retrieved 3 dispatch messages</font>",  # not the first text: no
    "<!-- Retrieved 3 dispatch messages -->",  # a comment is no element: no match
    "<font title='Retrieved 3 dispatch messages'>x</font>",  # an attribute: no match
    "<p>Retrieved 3 dispatch messages</p><div><span>tail</span></div>",
    "<script>var a = 'Retrieved 3 dispatch messages';</script>",
    "<div><p><b>deep</b>Retrieved 1 dispatch messages</p></div><p>after</p>",
    "<p>R&#101;trieved 3 dispatch&#32;messages</p>",  # character references
    "",
]


@pytest.mark.parametrize("footer", FOOTERS)
def test_text_marker_is_the_xpath(footer: str) -> None:
    for before in ("", "<table><tr><td>a</td></tr></table>"):
        html = f"<html><body>{before}{footer}<p>end</p></body></html>"
        tree = Page(html.encode()).tree
        assert TextMarker("Retrieved", "dispatch messages")(tree) is bool(tree.xpath(FOOTER))


def test_text_marker_on_the_real_seattle_page() -> None:
    path = REAL / "seattle" / "realtime911_2024-03-31.html"
    if not path.exists():
        pytest.skip("the real pages (../shared) are not here")
    body = path.read_bytes()
    marker = TextMarker("Retrieved", "dispatch messages")
    # Whole, and cut at many places: found exactly when the XPath finds it.
    for cut in itertools.chain(range(len(body) - 600, len(body), 37), [len(body) // 2]):
        tree = Page(body[:cut]).tree
        assert marker(tree) is bool(tree.xpath(FOOTER)), cut
    assert marker(Page(body).tree)


HEADER = "<tr><th>Incident #</th><th>Type</th></tr>"
TABLES = [
    f"<table>{HEADER}<tr><td>1</td><td>a</td></tr><tr><td>2</td><td>b</td></tr></table>",
    # rows in a table nested in a row (Seattle): the wrapping row is layout
    f"<table>{HEADER}<tr><td><table><tr><td>1</td><td>a</td></tr></table></td></tr></table>",
    # a table nested in the header row itself: its rows do not follow the header
    "<table><tr><th>Incident #</th><th>Type</th><td><table><tr><td>x</td></tr></table></td></tr>"
    "<tr><td>1</td><td>a</td></tr></table>",
    # rows of th only, empty rows, rows in a later table
    f"<table>{HEADER}<tr><th>sub</th><th>head</th></tr><tr></tr><tr><td>1</td><td>a</td></tr>"
    "</table><p>x</p><table><tr><td>2</td><td>b</td></tr></table>",
    # unbalanced tags, as the real pages have
    f"<table>{HEADER}<tr><td>1<td>a<tr><td>2</td></table></table></td></tr>",
]


@pytest.mark.parametrize("table", TABLES)
def test_rows_after_the_header_are_the_xpaths(table: str) -> None:
    tree = Page(f"<html><body><p>top</p>{table}</body></html>".encode()).tree
    headers = {"incident_id": ("incident #",), "call_type": ("type",)}
    _columns, rows = find_table_by_headers(tree, headers, what="test")
    header = next(tr for tr in tree.iter("tr") if "Incident" in etree.tostring(tr, encoding=str))
    assert list(rows) == header.xpath("following::tr[td][not(.//tr)]")
