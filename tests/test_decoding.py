"""How a page's bytes become text (``Page.encoding``, ``Page.text``, ``Page.json``).

The order is the HTML standard's, as Scrapy applies it through w3lib: a byte-order mark first,
then the HTTP ``Content-Type`` charset, then a ``<meta charset>`` in the page, then detection.
Detection keeps UTF-8 unless the bytes hold no valid UTF-8 multi-byte sequence at all, so one
stray byte in a UTF-8 page is one replacement character, not mojibake in every value.
Every input is built here, byte by byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchwatch.scraper import Page
from dispatchwatch.scrapers import milwaukee_police, seattle_fire

REAL_PAGES = Path(__file__).resolve().parents[2] / "shared" / "real-pages"

# A Seattle-like row with non-ASCII values: an accented street and an en dash in the type.
ROW = "<tr><td>F240001</td><td>Aid Response \u2013 Yellow</td><td>1512 Caf\u00e9 Ave</td></tr>"
PAGE = f"<html><body><table>{ROW}</table></body></html>"


def test_utf8_without_any_declaration_is_utf8() -> None:
    page = Page(PAGE.encode("utf-8"))
    assert page.encoding == "utf-8"
    assert page.text == PAGE


def test_one_stray_byte_in_a_utf8_page_is_one_replacement_character() -> None:
    # A Windows-1252 right quote (0x92) pasted into an otherwise UTF-8 page.
    body = PAGE.encode("utf-8").replace(b"Aid Response", b"Aid\x92s Response")
    page = Page(body)
    assert page.encoding == "utf-8"
    assert page.text == PAGE.replace("Aid Response", "Aid\ufffds Response")
    assert page.text.count("\ufffd") == 1
    assert "Caf\u00e9" in page.text and "\u2013" in page.text  # no mojibake elsewhere


def test_a_stray_byte_with_a_utf8_header_is_still_one_replacement_character() -> None:
    body = PAGE.encode("utf-8").replace(b"1512", b"15\xff12")
    page = Page(body, headers={"Content-Type": "text/html; charset=UTF-8"})
    assert page.text == PAGE.replace("1512", "15\ufffd12")


def test_windows_1252_without_declaration_is_windows_1252() -> None:
    # No valid UTF-8 multi-byte sequence at all: a legacy page, read as servers send them.
    body = PAGE.encode("cp1252")
    page = Page(body)
    assert page.encoding == "cp1252"
    assert page.text == PAGE


@pytest.mark.parametrize(
    ("bom", "codec", "name"),
    [
        (b"\xef\xbb\xbf", "utf-8", "utf-8"),
        (b"\xff\xfe", "utf-16-le", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be", "utf-16-be"),
    ],
)
def test_a_byte_order_mark_wins_and_is_not_part_of_the_text(
    bom: bytes, codec: str, name: str
) -> None:
    # The header says otherwise: the BOM still wins (the HTML standard's order).
    page = Page(bom + PAGE.encode(codec), headers={"content-type": "text/html; charset=cp1252"})
    assert page.encoding == name
    assert page.text == PAGE
    assert [td.text for td in page.tree.iter("td")] == [
        "F240001",
        "Aid Response \u2013 Yellow",
        "1512 Caf\u00e9 Ave",
    ]


def test_the_header_charset_comes_before_the_meta_charset() -> None:
    body = ('<meta charset="utf-8">' + PAGE).encode("cp1252")
    page = Page(body, headers={"content-type": "text/html; charset=windows-1252"})
    assert page.encoding == "cp1252"
    assert "1512 Caf\u00e9 Ave" in page.text


def test_the_meta_charset_is_used_without_a_header() -> None:
    body = '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">' + PAGE
    # latin-1 is read as Windows-1252 (the HTML standard's alias): the en dash survives.
    page = Page(body.encode("cp1252"))
    assert page.encoding == "cp1252"
    assert "\u2013" in page.text


def test_an_unknown_declared_charset_falls_through_to_detection() -> None:
    page = Page(PAGE.encode("utf-8"), headers={"content-type": "text/html; charset=x-nonsense"})
    assert page.encoding == "utf-8"
    assert page.text == PAGE


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'\xef\xbb\xbf{"address": "1512 Caf\xc3\xa9 Ave"}', {}),
        ('\ufeff{"address": "1512 Caf\u00e9 Ave"}'.encode("utf-16-le"), {}),
        (b'{"address": "1512 Caf\xe9 Ave"}', {"content-type": "application/json; charset=latin-1"}),
        (b'{"address": "1512 Caf\xc3\xa9 Ave"}', {"content-type": "application/json"}),
    ],
)
def test_json_honours_a_bom_and_the_header(body: bytes, headers: dict[str, str]) -> None:
    assert Page(body, headers=headers).json() == {"address": "1512 Caf\u00e9 Ave"}


def test_soup_reads_the_same_text() -> None:
    page = Page(b"\xef\xbb\xbf" + PAGE.encode("utf-8"))
    assert [td.get_text() for td in page.soup.find_all("td")][2] == "1512 Caf\u00e9 Ave"


@pytest.mark.parametrize(
    ("name", "scraper"),
    [
        ("seattle/realtime911_2024-03-31.html", seattle_fire),
        ("milwaukee/mpd_calls_2023-01-21.html", milwaukee_police),
    ],
)
def test_real_pages_decode_as_before(name: str, scraper: object) -> None:
    path = REAL_PAGES / name
    if not path.is_file():
        pytest.skip(f"real page {name} not available (../shared/real-pages)")
    body = path.read_bytes()
    page = Page(body)
    # These pages declare nothing and are ASCII: the text is the bytes, one for one.
    assert page.text == body.decode("ascii")
    rows = scraper.parse(page).rows  # type: ignore[attr-defined]
    assert rows
    # The same page saved with a UTF-8 or UTF-16 byte-order mark parses to the same rows.
    for saved in (
        b"\xef\xbb\xbf" + body,
        "\ufeff".encode("utf-16-le") + body.decode().encode("utf-16-le"),
    ):
        assert scraper.parse(Page(saved)).rows == rows  # type: ignore[attr-defined]
