"""What a scraper plugin is: a description of one feed plus a pure parse function.

A plugin module (one per city or feed family, in ``scrapers/`` or an installed package that
registers the ``dispatchwatch.scrapers`` entry point) defines a module-level ``scraper``::

    scraper = Scraper(slug="seattle-fire", name=..., parse=parse, ...)

``parse(page)`` receives a :class:`Page` (bytes, headers, URL, and lazily built lxml tree or
BeautifulSoup) and returns a :class:`ParseResult` of :class:`RawRow` objects. It does no I/O.
The engine converts times to UTC, reduces addresses to block level and merges rows.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .errors import LayoutError

if TYPE_CHECKING:
    from bs4 import BeautifulSoup
    from lxml.etree import HTMLParser, XPath, _Element

__all__ = [
    "LayoutError",
    "Page",
    "ParseResult",
    "RawRow",
    "Scraper",
    "cell_text",
    "find_table_by_headers",
    "row_label",
]

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")


class Page:
    """One fetched (or saved) page, as the engine hands it to a scraper.

    ``tree`` (lxml) and ``soup`` (BeautifulSoup) are built on first use only: lxml is about ten
    times faster, so the built-in scrapers use ``tree``; a plugin that prefers BeautifulSoup's
    API can use ``soup`` and pay for it.
    """

    def __init__(
        self, body: bytes, url: str = "", headers: Mapping[str, str] | None = None
    ) -> None:
        self.body = body
        self.url = url
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in (headers or {}).items()}

    @cached_property
    def encoding(self) -> str:
        """Charset from the Content-Type header, else a ``<meta charset>``, else UTF-8.

        These feeds usually declare nothing; bytes that are not valid UTF-8 are then read as
        Windows-1252, which is what such servers actually send.
        """
        match = _HEADER_CHARSET.search(self.headers.get("content-type", ""))
        if match is None:
            found = _META_CHARSET.search(self.body[:4096])
            name = found.group(1).decode("ascii") if found else ""
        else:
            name = match.group(1)
        if name:
            try:
                "".encode(name)
                return name
            except LookupError:
                pass
        return "utf-8" if self._utf8_text is not None else "cp1252"

    @cached_property
    def _utf8_text(self) -> str | None:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return None

    @cached_property
    def text(self) -> str:
        if self.encoding == "utf-8" and self._utf8_text is not None:
            return self._utf8_text  # decoded once while detecting the encoding
        return self.body.decode(self.encoding, errors="replace")

    @cached_property
    def tree(self) -> _Element:
        """The page's root element, parsed by lxml's forgiving HTML parser (unbalanced tags
        are fine). A plain ``lxml.etree`` tree: ``iter``, ``find``, ``xpath``, ``get`` and
        :func:`cell_text` work; it skips ``lxml.html``'s per-element Python class lookup,
        which costs about a fifth of a page's parse time."""
        from lxml import etree

        text = self.text
        if not text.strip():
            raise LayoutError("the page is empty")
        # lxml refuses a str that carries an XML declaration with an encoding (XHTML pages);
        # the text is already decoded, so the declaration has nothing left to say.
        text = _XML_DECLARATION.sub("", text, count=1)
        try:
            root = etree.fromstring(text, _html_parser())
        except etree.LxmlError as exc:
            raise LayoutError(f"the page is not HTML ({exc})") from exc
        if root is None:
            raise LayoutError("the page is not HTML (no elements)")
        return root

    @cached_property
    def soup(self) -> BeautifulSoup:
        from bs4 import BeautifulSoup

        return BeautifulSoup(self.body, "lxml", from_encoding=self.encoding)

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise LayoutError(f"the page is not JSON ({exc})") from exc


@dataclass(slots=True)
class RawRow:
    """One row as the source shows it; values are text, untouched apart from trimming.

    ``received`` is the source's local time text (or an aware/naive ``datetime``, or epoch
    milliseconds as ``int``); ``units`` is the unit text as shown (the engine splits it).
    ``extra`` keeps the source's other fields so nothing is lost.
    """

    incident_id: str
    received: str | datetime | int | None
    call_type: str | None = None
    priority: str | None = None
    status: str | None = None
    disposition: str | None = None
    address: str | None = None
    district: str | None = None
    beat: str | None = None
    units: str | Sequence[str] | None = None
    latitude: str | float | None = None
    longitude: str | float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ParseResult:
    """A parsed page: its rows (possibly several per incident) and its own "as of" time.

    ``as_of`` is local time text or a ``datetime``; the archive uses it as the time of the
    poll, so re-ingesting saved pages always gives the same archive.
    """

    rows: list[RawRow]
    as_of: str | datetime | None = None


@dataclass(frozen=True)
class Scraper:
    """Everything the engine needs to know about one kind of feed."""

    slug: str
    name: str
    agency: str
    city: str
    url: str
    timezone: str
    parse: Callable[[Page], ParseResult]
    interval: str = "5m"
    #: True when the page lists only currently active calls, so a call that is no longer
    #: listed has left the list ("gone"); False for day logs and history.
    snapshot: bool = False
    state: str = ""
    homepage: str = ""
    license: str = ""
    source_notes: str = ""
    #: Address suffixes like ``,MKE`` mapped to the place they stand for.
    city_codes: Mapping[str, str] = field(default_factory=dict)
    #: City for addresses with no suffix; None means "unknown".
    default_city: str | None = None
    #: Extra URL query templates or other feed-specific settings.
    options: Mapping[str, Any] = field(default_factory=dict)


# --- helpers shared by the HTML scrapers ------------------------------------------------------

_SPACES = re.compile(r"\s+")


class _PerThread(threading.local):
    """lxml parsers and XPath evaluators must not be shared between threads, and the
    daemon parses in several."""

    def __init__(self) -> None:
        from lxml import etree

        self.parser: HTMLParser = etree.HTMLParser()
        self.string_of: XPath = etree.XPath("string()")
        self.rows_after: XPath = etree.XPath("following::tr[td][not(.//tr)]")


_per_thread = _PerThread()


def _html_parser() -> HTMLParser:
    return _per_thread.parser


def _string_of() -> XPath:
    return _per_thread.string_of


def cell_text(element: _Element) -> str:
    """An element's text with whitespace (including ``&nbsp;``) collapsed; comments and
    attributes are not text."""
    # Most cells are a bare text node: read it directly rather than through XPath.
    text = element.text if len(element) == 0 else _string_of()(element)
    # str.split() with no argument splits on all Unicode whitespace, \xa0 included.
    return " ".join(text.split()) if text else ""


def row_label(texts: Sequence[str], id_index: int) -> str:
    """How an error names a broken row: by its incident ID only. Never put a row's cells in
    an error: errors are stored (``polls.error``) and published, and cells hold addresses."""
    if id_index < len(texts) and texts[id_index]:
        return f"incident {texts[id_index]}"
    return "no incident number"


def _header_key(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


def find_table_by_headers(
    tree: _Element,
    required: Mapping[str, Sequence[str]],
    *,
    what: str,
) -> tuple[dict[str, int], Iterator[_Element]]:
    """Find the data table by its header text rather than by position.

    ``required`` maps a field name to the header texts that may stand for it (lower case,
    e.g. ``{"incident_id": ["incident #", "incident number"]}``). Returns the column index of
    each field and an iterator over the data rows that follow the header row, including rows
    in nested tables (lxml keeps Seattle's rows in an inner table).

    Raises :class:`LayoutError` naming the headers that could not be found.
    """
    best_missing: list[str] | None = None
    for header_row in tree.iter("tr"):
        cells = [c for c in header_row if c.tag in ("td", "th")]
        if len(cells) < len(required):
            continue
        keys = [_header_key(cell_text(c)) for c in cells]
        columns: dict[str, int] = {}
        missing: list[str] = []
        for name, options in required.items():
            index = next((i for i, k in enumerate(keys) if k in options), None)
            if index is None:
                missing.append(f"{name} ({' / '.join(repr(o) for o in options)})")
            else:
                columns[name] = index
        if not missing:
            return columns, _rows_after(header_row)
        if len(missing) < len(required) and (
            best_missing is None or len(missing) < len(best_missing)
        ):
            best_missing = missing
    if best_missing:
        raise LayoutError(f"{what}: the table header lacks {', '.join(best_missing)}")
    raise LayoutError(
        f"{what}: no table with the expected headers "
        f"({', '.join(repr(v[0]) for v in required.values())})"
    )


def _rows_after(header_row: _Element) -> Iterator[_Element]:
    """Every ``tr`` after ``header_row`` in document order that holds ``td`` cells and no
    nested rows (a row that only wraps an inner table is layout, not data)."""
    return iter(_per_thread.rows_after(header_row))
