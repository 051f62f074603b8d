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

Rollover: the live poll reads only today's page, so calls still active at midnight would stay
"active" forever. Today's page names its day; when that day moves on, the next polls also
read the previous day's page (same host, ``?incDate=``) until none of its calls is active or
:data:`ROLLOVER_BOUND` after its midnight has passed, and then record that day log complete
(``day_logs``). A previous day whose page still cannot be read twice that long after its
midnight is left incomplete (coverage reports it) and no longer asked for. A backfill
(``PlanContext.since``/``until``) reads one day page per day.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from dispatchwatch.scraper import (
    LayoutError,
    Page,
    ParseResult,
    PlanContext,
    RawRow,
    Request,
    Scraper,
    TextMarker,
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
#: when the parser stops early the footer is not in the tree): the XPath
#: ``//*[contains(text(), 'Retrieved') and contains(text(), 'dispatch messages')]``, searched
#: from the end of the page.
END_MARKERS = TextMarker("Retrieved", "dispatch messages")


#: How long after a day's midnight its page is still read for calls that were active.
ROLLOVER_BOUND = timedelta(hours=6)
ZONE = "America/Los_Angeles"
_STATED_DAY = re.compile(
    r"(?:dispatch\s+messages|no\s+records\s+found)\s+for\s+(\d{1,2})/(\d{1,2})/(\d{4})", re.I
)


def day_url(day: date, base: str = URL) -> str:
    """The page for one past day on the host of ``base`` (the feed's URL), e.g.
    ``...getRecsForDatePub.asp?incDate=7/4/2024&rad1=des``."""
    parts = urlsplit(base)
    query = f"incDate={day.month}/{day.day}/{day.year}&rad1=des"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def plan(context: PlanContext) -> list[Request]:
    """Today's page (conditional GET), plus the previous day's page while it has calls that
    were active at rollover; for a backfill, one page per day of the range, oldest first."""
    zone = ZoneInfo(context.zone or ZONE)
    if context.backfill:
        first = (context.since or context.now).astimezone(zone).date()
        last = (context.until or context.now).astimezone(zone).date()
        return [
            Request(
                day_url(first + timedelta(days=n), context.url),
                meta={"day_log": (first + timedelta(days=n)).isoformat(), "final": True},
                label=f"day log of {first + timedelta(days=n)}",
            )
            for n in range((last - first).days + 1)
        ]
    today = Request(
        context.url,
        conditional=True,
        meta={"day_log": "", "known_day": context.state.get("day", "")},
    )
    open_day = context.state.get("open_day", "")
    if not open_day:
        return [today]
    day = date.fromisoformat(open_day)
    midnight = datetime.combine(day + timedelta(days=1), time(0), zone)
    if context.now >= midnight + 2 * ROLLOVER_BOUND:
        # Its page could not be read in time (it kept failing): stop asking. The day stays
        # out of day_logs, so coverage reports it as never completed.
        return [today]
    final = context.now >= midnight + ROLLOVER_BOUND
    previous = Request(
        day_url(day, context.url),
        meta={"day_log": open_day, "final": final},
        label=f"day log of {open_day}",
    )
    return [today, previous]


def _stated_day(text: str) -> date | None:
    """The day the page says it lists ("... dispatch messages for 3/31/2024")."""
    found = _STATED_DAY.search(text, max(0, len(text) - 4096)) or _STATED_DAY.search(text)
    if found is None:
        return None
    month, day, year = (int(g) for g in found.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _day_log(page: Page, result: ParseResult) -> ParseResult:
    """Day-log bookkeeping from the request's meta (live polls and backfills only)."""
    meta = page.meta
    if "day_log" not in meta:
        return result  # a saved page: nothing to track
    stated = _stated_day(page.text)
    wanted = meta["day_log"]
    if wanted:  # a past day's page
        if stated is not None and stated.isoformat() != wanted:
            raise LayoutError(f"{WHAT}: asked for the day log of {wanted}, got {stated}")
        active = any(row.status == "active" for row in result.rows)
        if result.complete and (meta.get("final") or not active):
            result.completed_days.append(wanted)
            result.state["open_day"] = ""
        return result
    if stated is not None:
        result.state["day"] = stated.isoformat()
        known = meta.get("known_day", "")
        if known and known < stated.isoformat():
            result.state["open_day"] = known  # the day rolled over: finish the old one
    return result


def parse(page: Page) -> ParseResult:
    tree = page.tree
    try:
        columns, rows = find_table_by_headers(tree, HEADERS, what=WHAT)
    except LayoutError:
        if _NO_RECORDS.search(page.text):
            return _day_log(page, ParseResult(rows=[]))
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
    return _day_log(page, ParseResult(rows=out, complete=reason is None, reason=reason))


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
    plan=plan,
    license="No license stated on the page; published by the City of Seattle as public record.",
    source_notes=(
        "The page lists one row per dispatched unit group; dispatchwatch merges the rows of "
        "one incident. Status (active or closed) comes from the page's row styling. Earlier "
        "days are on the same page by date, back to 2003."
    ),
    default_city="Seattle",
    options={"day_url": DAY_URL},
)
