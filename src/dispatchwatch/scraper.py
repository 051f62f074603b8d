"""What a scraper plugin is: a description of one feed plus a pure parse function.

A plugin module (one per city or feed family, in ``scrapers/`` or an installed package that
registers the ``dispatchwatch.scrapers`` entry point) defines a module-level ``scraper``::

    scraper = Scraper(slug="seattle-fire", name=..., parse=parse, ...)

``parse(page)`` receives a :class:`Page` (bytes, headers, URL, and lazily built lxml tree or
BeautifulSoup) and returns a :class:`ParseResult` of :class:`RawRow` objects. It does no I/O.
The engine converts times to UTC, reduces addresses to block level and merges rows.

A poll may need more than one request (paged queries, a watermark carried between polls).
Like Scrapy's spiders, a scraper then *plans* and *parses* while the engine fetches:

- ``plan(context)`` (optional) turns a :class:`PlanContext` (the feed's URL, options, zone,
  stored state such as a watermark, the time, and a backfill range) into the first
  :class:`Request` objects of a poll; without it a poll is one GET of the feed's URL.
- ``parse(page)`` may return, besides rows, ``follow`` requests (the next page), ``state``
  to store when the poll is complete (a new watermark), and ``complete=False`` with a
  ``reason`` when the response is not the whole of what it should hold.
"""

from __future__ import annotations

import codecs
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from .errors import LayoutError

if TYPE_CHECKING:
    from bs4 import BeautifulSoup
    from lxml.etree import HTMLParser, XPath, _Element

__all__ = [
    "LayoutError",
    "Page",
    "ParseResult",
    "PlanContext",
    "RawRow",
    "Request",
    "Scraper",
    "ElementMarker",
    "TextMarker",
    "cell_text",
    "end_reached",
    "find_table_by_headers",
    "last_row_is_whole",
    "row_label",
    "row_texts",
]

_ASCII = bytes(range(128))  # to delete: bytes.translate(None, _ASCII)
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")
#: libxml2 errors after which the rest of the page is not in the tree.
_PARSER_STOPS = frozenset({"ERR_RESOURCE_LIMIT", "ERR_INTERNAL_ERROR", "ERR_NO_MEMORY"})


@dataclass(frozen=True)
class Request:
    """One GET that a poll makes; the engine fetches it (politely) and hands the response to
    the scraper's ``parse`` as a :class:`Page` whose ``request`` is this object.

    ``params`` are query parameters (encoded by the engine); ``headers`` are extra request
    headers (an app token goes here, never in ``params``: headers are neither logged nor
    stored); ``meta`` is anything the scraper wants back in ``parse`` (page number, dataset,
    the watermark the query used). ``conditional`` sends the last poll's ``ETag`` /
    ``Last-Modified`` validators (single-request feeds only). ``label`` names the request in
    errors and logs (``"page 3"``).
    """

    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    conditional: bool = False
    label: str = ""

    @property
    def full_url(self) -> str:
        """``url`` with ``params`` appended as a query string."""
        if not self.params:
            return self.url
        joiner = "&" if urlsplit(self.url).query else "?"
        return f"{self.url}{joiner}{urlencode(self.params)}"

    def describe(self) -> str:
        return self.label or self.full_url


@dataclass(frozen=True)
class PlanContext:
    """What a scraper's ``plan`` may base a poll's requests on.

    ``state`` is the feed's stored state (``feed_state`` table: e.g. ``{"watermark":
    "2024-03-31T18:30:00.000"}``), written only by complete polls. ``now`` is the poll's time
    (aware, UTC). ``since``/``until`` (aware, UTC) are set for a backfill of a time range, and
    None for a live poll. ``options`` are the feed's options from config.yaml.
    """

    feed: str
    url: str
    zone: str
    now: datetime
    state: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None

    @property
    def backfill(self) -> bool:
        return self.since is not None or self.until is not None


def _detect_encoding(body: bytes) -> str:
    """The codec of a page that declares none: ``"utf-8"`` unless the bytes hold no valid
    UTF-8 multi-byte sequence but do hold bytes above 0x7F, then ``"cp1252"``.

    A UTF-8 page with one stray byte stays UTF-8 (that byte becomes one U+FFFD) instead of
    turning every accented letter into mojibake; a legacy page with no UTF-8 in it is read as
    Windows-1252, what such servers send (and the HTML standard's fallback for English).
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        stray = text.count("\ufffd")  # one per byte that is no part of a valid character
        # ASCII bytes decode as themselves, even right after a stray byte: what is left of
        # the text is the well-formed multi-byte characters.
        ascii_bytes = len(body) - len(body.translate(None, _ASCII))
        return "utf-8" if len(text) - ascii_bytes - stray > stray else "cp1252"
    return "utf-8"


class Page:
    """One fetched (or saved) page, as the engine hands it to a scraper.

    ``tree`` (lxml) and ``soup`` (BeautifulSoup) are built on first use only: lxml is about ten
    times faster, so the built-in scrapers use ``tree``; a plugin that prefers BeautifulSoup's
    API can use ``soup`` and pay for it.
    """

    def __init__(
        self,
        body: bytes,
        url: str = "",
        headers: Mapping[str, str] | None = None,
        request: Request | None = None,
    ) -> None:
        self.body = body
        self.url = url
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        #: The request this page answers; None for a saved page read from a file.
        self.request = request
        self._stopped_early: str | None = None

    @property
    def meta(self) -> Mapping[str, Any]:
        """The request's ``meta`` (empty for a saved page)."""
        return self.request.meta if self.request is not None else {}

    @cached_property
    def _decoded(self) -> tuple[str, str]:
        from w3lib.encoding import html_to_unicode

        # w3lib's order, the HTML standard's: a byte-order mark, then the Content-Type
        # charset, then a <meta charset> (or XML declaration), then detection. Declared
        # names are resolved as browsers do (latin-1 -> cp1252, unknown names are skipped);
        # undecodable bytes become U+FFFD, and a byte-order mark is not part of the text.
        name, text = html_to_unicode(
            self.headers.get("content-type"), self.body, auto_detect_fun=_detect_encoding
        )
        return codecs.lookup(name).name, text

    @property
    def encoding(self) -> str:
        """The codec the page is read with (Python's name: ``utf-8``, ``cp1252``,
        ``utf-16-le``...): a byte-order mark, else the Content-Type header's charset, else a
        ``<meta charset>``, else detected (see :func:`_detect_encoding`)."""
        return self._decoded[0]

    @property
    def text(self) -> str:
        """The page as text (see :attr:`encoding`); a byte-order mark is not part of it."""
        return self._decoded[1]

    @cached_property
    def tree(self) -> _Element:
        """The page's root element, parsed by lxml's forgiving HTML parser (unbalanced tags
        are fine). A plain ``lxml.etree`` tree: ``iter``, ``find``, ``xpath``, ``get`` and
        :func:`cell_text` work; it skips ``lxml.html``'s per-element Python class lookup,
        which costs about a fifth of a page's parse time."""
        from lxml import etree

        text = self.text
        if not text or text.isspace():  # (not text.strip(): no copy of a big page)
            raise LayoutError("the page is empty")
        # lxml refuses a str that carries an XML declaration with an encoding (XHTML pages);
        # the text is already decoded, so the declaration has nothing left to say.
        text = _XML_DECLARATION.sub("", text, count=1)
        parser = _html_parser()
        try:
            root = etree.fromstring(text, parser)
        except etree.LxmlError as exc:
            raise LayoutError(f"the page is not HTML ({exc})") from exc
        if root is None:
            raise LayoutError("the page is not HTML (no elements)")
        # libxml2 recovers from bad HTML silently, but it *stops* at its resource limits
        # (nesting deeper than 256, huge text nodes) and drops the rest of the page: the
        # rows after that point are lost, which must never read as a shorter list.
        self._stopped_early = next(
            (
                f"{error.message.strip()} at line {error.line}"
                for error in parser.error_log
                if error.type_name in _PARSER_STOPS or error.level_name == "FATAL"
            ),
            None,
        )
        return root

    @property
    def stopped_early(self) -> str | None:
        """Why the HTML parser gave up before the end of the page (libxml2's resource
        limits), else None. Builds the tree if needed."""
        self.tree  # noqa: B018 - parsing sets it
        return self._stopped_early

    @cached_property
    def soup(self) -> BeautifulSoup:
        from bs4 import BeautifulSoup

        return BeautifulSoup(self.text, "lxml")  # the text, decoded by the rules above

    def json(self) -> Any:
        """The page parsed as JSON, from :attr:`text` (so a byte-order mark or a charset in
        the header is honoured). Raises :class:`LayoutError` when it is not JSON."""
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

    ``complete`` is False when the page is not the whole of what it should hold (it stops
    before its end marker, a stated count disagrees, the parser gave up early); ``reason``
    then says why, without quoting row cells. The engine keeps the rows but records the poll
    as ``partial``: nothing is marked gone and no state advances.

    ``follow`` are further requests this poll must make (the next page of a query); the
    list is whole only when every followed request was fetched and parsed. ``state`` is
    feed state to store (``{"watermark": ...}``) once the whole poll completes; later
    responses of a poll override earlier ones key by key. ``unchanged`` says the source
    itself reports no change since ``state`` (a cheap probe): the poll is recorded as
    ``unchanged``.
    """

    rows: list[RawRow]
    as_of: str | datetime | None = None
    complete: bool = True
    reason: str | None = None
    follow: list[Request] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)
    unchanged: bool = False
    #: Local dates (``YYYY-MM-DD``) of day logs this response shows are complete (all their
    #: calls closed, or their follow-up time is over): recorded in ``day_logs`` with the poll.
    completed_days: list[str] = field(default_factory=list)


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
    #: The first requests of a poll (see :class:`PlanContext`); None: one GET of the URL.
    plan: Callable[[PlanContext], Sequence[Request]] | None = None
    #: Most requests one poll may make (a runaway pager is cut off: the poll is partial).
    max_requests: int = 1000
    #: The feed family this scraper is built on (``"socrata"``, ``"arcgis"``), if any.
    adapter: str = ""
    #: Bumped by the plugin when its parse output changes (recorded with each poll).
    version: str = "1"

    def requests(self, context: PlanContext) -> list[Request]:
        """The first requests of a poll: ``plan(context)`` or one conditional GET."""
        if self.plan is None:
            return [Request(context.url, conditional=True)]
        return list(self.plan(context))


# --- helpers shared by the HTML scrapers ------------------------------------------------------

_SPACES = re.compile(r"\s+")


class _PerThread(threading.local):
    """lxml parsers and XPath evaluators must not be shared between threads, and the
    daemon parses in several."""

    def __init__(self) -> None:
        from lxml import etree

        # collect_ids=False: no hash table of every ``id`` attribute (Seattle gives each
        # row one), which nothing here looks up; about a tenth of a big page's parse time.
        self.parser: HTMLParser = etree.HTMLParser(collect_ids=False)
        self.string_of: XPath = etree.XPath("string()")
        # = following::tr[td][not(.//tr)], in one predicate: about a third faster.
        self.rows_after: XPath = etree.XPath("following::tr[td and not(descendant::tr)]")
        self.xpaths: dict[str, XPath] = {}

    def xpath(self, expression: str) -> XPath:
        """``expression`` compiled once per thread."""
        compiled = self.xpaths.get(expression)
        if compiled is None:
            from lxml import etree

            compiled = self.xpaths[expression] = etree.XPath(expression)
        return compiled


_per_thread: _PerThread | None = None  # made on first use: JSON feeds never import lxml
_per_thread_lock = threading.Lock()


def _lxml() -> _PerThread:
    global _per_thread
    if _per_thread is None:
        with _per_thread_lock:
            if _per_thread is None:
                _per_thread = _PerThread()
    return _per_thread


def _html_parser() -> HTMLParser:
    return _lxml().parser


def _string_of() -> XPath:
    return _lxml().string_of


def cell_text(element: _Element) -> str:
    """An element's text with whitespace (including ``&nbsp;``) collapsed; comments and
    attributes are not text."""
    # Most cells are a bare text node: read it directly rather than through XPath.
    text = element.text if len(element) == 0 else _string_of()(element)
    # str.split() with no argument splits on all Unicode whitespace, \xa0 included.
    return " ".join(text.split()) if text else ""


def row_texts(row: _Element) -> list[str]:
    """:func:`cell_text` of each ``td`` and ``th`` cell of a table row, in order."""
    string_of = _string_of()
    texts = []
    for cell in row:
        if cell.tag in ("td", "th"):
            text = cell.text if len(cell) == 0 else string_of(cell)
            texts.append(" ".join(text.split()) if text else "")
    return texts


def row_label(texts: Sequence[str], id_index: int) -> str:
    """How an error names a broken row: by its incident ID only. Never put a row's cells in
    an error: errors are stored (``polls.error``) and published, and cells hold addresses."""
    if id_index < len(texts) and texts[id_index]:
        return f"incident {texts[id_index]}"
    return "no incident number"


def end_reached(page: Page, markers: str | Callable[[_Element], bool], *, what: str) -> str | None:
    """Why the list on ``page`` may be incomplete, or None when the parse reached its end.

    ``markers`` finds what the page shows *after* its list (a footer, a legend, a "Retrieved
    N" line): an XPath (found when it selects anything), or a function of the tree that says
    whether it is there (such as a :class:`TextMarker`). A page cut off mid-list (a dropped
    connection, a server that stops early) lacks it, and so does a page on which the HTML
    parser stopped at one of its limits (the rest of the page is then not in the tree).
    Either way the rows that were read are real, but the list is not whole: return a reason
    for a ``partial`` result.
    """
    if page.stopped_early:
        return f"{what}: the HTML parser stopped early ({page.stopped_early}); later rows are lost"
    found = markers(page.tree) if callable(markers) else _lxml().xpath(markers)(page.tree)
    if not found:
        return (
            f"{what}: the page ends before what follows its list (cut off, or the layout "
            "changed); rows after the cut may be missing"
        )
    return None


class TextMarker:
    """Whether any element's first text node contains every one of ``needles``: the XPath
    ``//*[contains(text(), 'a') and contains(text(), 'b')]``, found from the end of the
    document, where a footer is (an XPath visits every element of a big page: ~8 ms on a
    450 KB Seattle day log; this visits a handful when the footer is there).

    lxml's ``.text``/``.tail`` join adjacent text nodes where the XPath reads the first one
    only, so an element found here is confirmed with the XPath itself: the answer is the
    XPath's in every case.
    """

    def __init__(self, *needles: str) -> None:
        self.needles = needles
        tests = " and ".join(f"contains(text(), '{needle}')" for needle in needles)
        self.expression = f"self::*[{tests}]"

    def __call__(self, tree: _Element) -> bool:
        needles = self.needles
        confirm = _lxml().xpath(self.expression)
        stack = [tree]
        while stack:
            element = stack.pop()
            children = list(element)
            text = element.text
            if text is None:  # the first text node is the tail of a child, if any
                text = next((child.tail for child in children if child.tail is not None), None)
            if (
                text is not None
                and isinstance(element.tag, str)  # an element (not a comment or PI)
                and all(needle in text for needle in needles)
                and confirm(element)
            ):
                return True
            stack.extend(children)  # the last child is visited next: from the end
        return False


class ElementMarker:
    """Whether the tree has an element that one of ``tests`` accepts: ``tests`` maps a tag
    name to an XPath on the element itself (``self::dl[preceding::table]``), so the marker is
    the union of ``//dl[preceding::table] | ...``. Elements are visited from the end of the
    document, where a legend or a footer is, and only those with a listed tag are tested
    (the XPath union visits every element of the page, each of its ``//`` steps once); when
    there is none, the whole tree is visited and the answer is the same: False.

    ``//table/following::dl`` is ``//dl[preceding::table]``: an element follows a table
    exactly when the table precedes it (after its end, not its descendant).
    """

    def __init__(self, **tests: str) -> None:
        self.tests = tests

    def __call__(self, tree: _Element) -> bool:
        per_thread = _lxml()
        tests = self.tests
        stack = [tree]
        while stack:
            element = stack.pop()
            expression = tests.get(element.tag)  # (a comment's tag is a function: not found)
            if expression is not None and per_thread.xpath(expression)(element):
                return True
            stack.extend(element)  # the last child is visited next: from the end
        return False


def last_row_is_whole(page: Page) -> bool:
    """On a page that did not reach its end: whether its last table row was closed in the
    source (the page was cut *between* rows). When the cut fell inside the row, or the HTML
    parser stopped early, the last row may hold a truncated or garbled cell and must not be
    archived."""
    if page.stopped_early:
        return False
    text = page.text
    start = max(text.rfind("<tr"), text.rfind("<TR"))
    return start >= 0 and "</tr>" in text[start:].lower()


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
    rows = tree.iter("tr")  # document order; after the header row, the rows that follow it
    for header_row in rows:
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
            if tree.getparent() is None:  # the whole document: every row is in ``rows``
                return columns, _rows_after(header_row, rows)
            return columns, iter(_lxml().rows_after(header_row))
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


def _rows_after(header_row: _Element, following: Iterator[_Element]) -> Iterator[_Element]:
    """Every ``tr`` after ``header_row`` in document order that holds ``td`` cells and no
    nested rows (a row that only wraps an inner table is layout, not data): the XPath
    ``following::tr[td][not(.//tr)]`` (``_PerThread.rows_after``), from ``following``, the
    document's ``tr`` elements after ``header_row`` in document order.

    The XPath walks every node after the header (a Seattle day log: ~12,000), this only its
    rows: ~4 times faster.
    """
    # The header's own nested rows come first in document order; they do not follow it.
    for _nested in header_row.iterdescendants("tr"):
        next(following, None)
    rows = []
    for row in following:
        if next(row.iterchildren("td"), None) is not None and (
            next(row.iterdescendants("tr"), None) is None
        ):
            rows.append(row)
    return iter(rows)
