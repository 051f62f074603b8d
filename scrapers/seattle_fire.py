"""Seattle Fire Department: Real-Time 911 dispatch log.

Source: https://web.seattle.gov/sfd/realtime911/ , an ASP page that lists every dispatch of one
day (Pacific time), newest first, and refreshes itself every 60 seconds. ``?action=Today`` is
today; ``?incDate=M/D/YYYY&rad1=des`` is any past day back to 2003 (see :func:`day_url`).

Quirks of the page (reproduced in ``fixtures/seattle/``):

- A ``<meta http-equiv="refresh">`` before ``<html>``, CRLF line endings, no charset, and
  unbalanced closing tags at the end of the table. The header row sits in the outer table; the
  data rows sit in a table nested two levels inside it.
- One row per dispatch, not per incident: an incident's units are often split over several
  rows, with the same or a later time, and exact duplicate rows occur. Every row is returned;
  the engine merges rows that share an incident number.
- Status is not a column: it is the class of the row's cells, ``active`` or ``closed``.
- Level is often empty. A day page can hold a row from the day before.
- Incident numbers are ``F`` + 2-digit year + 7 digits; a few start with ``V``, ``B`` or ``M``.
- Times are ``M/D/YYYY h:mm:ss AM|PM``, local. The page has no time of its own (its footer
  names only the day), so ``as_of`` is None and the engine uses the fetch time.
- The footer "Retrieved 267 dispatch messages for 3/31/2024" counts the rows and ends the list.
  A page without it (cut off, or the parser gave up), or whose count differs from the rows
  parsed, keeps its rows but is partial: the list may be incomplete.
- A day without dispatches has no table at all, only "Sorry, no records found for 7/3/2016":
  that is an empty result, not an error.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING

from dispatchwatch.scraper import (
    LayoutError,
    Page,
    ParseResult,
    RawRow,
    Scraper,
    cell_text,
    end_reached,
    find_table_by_headers,
    last_row_is_whole,
    row_label,
)

if TYPE_CHECKING:
    from lxml.html import HtmlElement

URL = "https://web.seattle.gov/sfd/realtime911/getRecsForDatePub.asp?action=Today&incDate=&rad1=des"
DAY_URL = (
    "https://web.seattle.gov/sfd/realtime911/getRecsForDatePub.asp"
    "?incDate={month}/{day}/{year}&rad1=des"
)
HOMEPAGE = "https://web.seattle.gov/sfd/realtime911/"
WHAT = "Seattle Fire Real-Time 911 page"

#: Field -> header texts that stand for it (compared lower-cased, whitespace collapsed).
HEADERS = {
    "received": ("date/time", "date / time", "date and time"),
    "incident_id": ("incident #", "incident#", "incident number", "incident no.", "incident no"),
    "priority": ("level",),
    "units": ("units", "unit"),
    "address": ("location",),
    "call_type": ("type", "incident type"),
}

#: Cell classes that mean a status; any other class is kept as it is.
STATUSES = frozenset({"active", "closed"})

_NO_RECORDS = re.compile(r"Sorry,\s+no\s+records\s+found\s+for\s+\d{1,2}/\d{1,2}/\d{4}", re.I)
_RETRIEVED = re.compile(r"Retrieved\s+(\d+)\s+dispatch\s+messages")
#: The "Retrieved N dispatch messages" footer after the table (in the tree, not just the text:
#: when the parser stops early the footer is not in the tree).
END_MARKERS = "//*[contains(text(), 'Retrieved') and contains(text(), 'dispatch messages')]"


def day_url(day: date) -> str:
    """The page for one past day, e.g. ``...?incDate=7/4/2024&rad1=des``."""
    return DAY_URL.format(month=day.month, day=day.day, year=day.year)


def parse(page: Page) -> ParseResult:
    tree = page.tree
    try:
        columns, rows = find_table_by_headers(tree, HEADERS, what=WHAT)
    except LayoutError:
        if _NO_RECORDS.search(page.text):
            return ParseResult(rows=[])
        raise
    width = max(columns.values()) + 1
    i_received, i_id, i_level, i_units, i_address, i_type = (columns[name] for name in HEADERS)
    out: list[RawRow] = []
    reason = end_reached(page, END_MARKERS, what=WHAT)
    rows = list(rows)
    cut = False
    for number, row in enumerate(rows, 1):
        cells = [c for c in row if c.tag in ("td", "th")]
        texts = [cell_text(c) for c in cells]
        if not any(texts):
            continue  # spacer or layout row
        if len(cells) != width and reason is not None and number == len(rows):
            cut = True
            break  # the row the page was cut in: the rows before it are whole
        # Errors name the row, never its cells: they are stored and published in polls.error,
        # and a raw cell may hold a full street address.
        if len(cells) != width:
            raise LayoutError(
                f"{WHAT}: row {number} ({row_label(texts, i_id)}) has {len(cells)} cells, "
                f"expected {width}"
            )
        if not texts[i_id]:
            raise LayoutError(f"{WHAT}: row {number} has no Incident #")
        out.append(
            RawRow(
                incident_id=texts[i_id],
                received=texts[i_received] or None,
                call_type=texts[i_type] or None,
                priority=texts[i_level] or None,
                status=_status(cells),
                address=texts[i_address] or None,
                units=texts[i_units] or None,
            )
        )
    if reason is not None and not cut and out and not last_row_is_whole(page):
        out.pop()  # the page was cut inside its last row: a cell may be truncated
    if reason is None:
        text = page.text
        start = text.rfind("Retrieved")  # the footer is at the very end: no need to scan it all
        footer = _RETRIEVED.match(text, start) if start >= 0 else None
        if footer and int(footer.group(1)) != len(out):
            reason = f"{WHAT}: the footer says {footer.group(0)!r} but {len(out)} rows were parsed"
    return ParseResult(rows=out, complete=reason is None, reason=reason)


def _status(cells: list[HtmlElement]) -> str | None:
    """The row's status from its cells' class: the most common one (normally all agree)."""
    classes = [c.get("class") for c in cells]
    value = classes[0]
    if classes.count(value) != len(classes):
        value = Counter(classes).most_common(1)[0][0]
    if value in STATUSES:
        return value
    tokens = (value or "").split()
    return next((t for t in tokens if t in STATUSES), " ".join(tokens) or None)


scraper = Scraper(
    slug="seattle-fire",
    name="Seattle Fire Real-Time 911",
    agency="Seattle Fire Department",
    city="Seattle",
    state="WA",
    url=URL,
    homepage=HOMEPAGE,
    timezone="America/Los_Angeles",
    interval="60s",
    snapshot=False,
    parse=parse,
    license="No license stated on the page; published by the City of Seattle as public record.",
    source_notes=(
        "The page lists one row per dispatched unit group; dispatchwatch merges the rows of "
        "one incident. Status (active or closed) comes from the page's row styling. Earlier "
        "days are on the same page by date, back to 2003."
    ),
    default_city="Seattle",
    options={"day_url": DAY_URL},
)
