"""Milwaukee Police Department: Dispatched Calls for Service.

Source: https://itmdapps.milwaukee.gov/MPDCallData/ , a JSP page updated every 5 minutes that
lists the calls dispatched 30 to 90 minutes before its "Updated:" time (6 to 118 rows, median
about 52). It is a snapshot: a call that is no longer listed has left the list.

Quirks of the page (reproduced in ``fixtures/milwaukee/``):

- CRLF, no charset; the table sits between the city's navbar header and a legend ``<dl>`` of
  place abbreviations (PPS, CJF, PAB, ...) and the footer.
- "Updated: 01/21/2023 04:54:13 PM" is in the table's first header row, next to the district
  drop-down; it is the page's ``as_of`` (local text). Its absence is not an error.
- Call numbers are 9 digits: 2-digit year + day of year + 4-digit sequence.
- Locations are full street addresses with a jurisdiction suffix (``,MKE``, ``,WMW`` ...), which
  the engine splits off using ``city_codes``; some rows have no suffix, or free text.
- Police District is 1 to 7, but also ``SPD``, ``CITY``, ``OUT``, ``CIB``, ``NTF``.
- About 30% of calls change status while listed ("Service in Progress" -> "Assignment
  Completed", "Advised", "Unable to Locate Complainant", "To be Filed", ...); the nature of a
  call can change too. A call can appear on two identical rows: both are returned and the
  engine merges them.
- A page with the header and no rows is a legitimate empty list.
- The list is whole only if the page goes on past the table (the legend or the footer): a
  page cut off mid-table, or one the HTML parser gave up on, keeps its rows but is partial.
"""

from __future__ import annotations

import re

from dispatchwatch.scraper import (
    ElementMarker,
    LayoutError,
    Page,
    ParseResult,
    RawRow,
    Scraper,
    end_reached,
    find_table_by_headers,
    last_row_is_whole,
    row_label,
    row_texts,
)

URL = "https://itmdapps.milwaukee.gov/MPDCallData/index.jsp?district=All"
HOMEPAGE = "https://itmdapps.milwaukee.gov/MPDCallData/"
WHAT = "Milwaukee Police calls page"
#: What the page shows after the calls table: the legend of place abbreviations, the footer.
END_XPATH = "//table/following::dl | //div[@data-role='footer']"
#: :data:`END_XPATH`, looked for from the end of the page (see ElementMarker).
END_MARKERS = ElementMarker(dl="self::dl[preceding::table]", div="self::div[@data-role='footer']")

#: Field -> header texts that stand for it (compared lower-cased, whitespace collapsed).
HEADERS = {
    "incident_id": ("call number", "call #", "call no."),
    "received": ("date/time", "date / time"),
    "address": ("location",),
    "district": ("police district", "district"),
    "call_type": ("nature of call", "nature"),
    "status": ("status",),
}

#: Address suffixes seen on the page. Unknown suffixes pass through unchanged.
CITY_CODES = {
    "MKE": "Milwaukee",
    "WMW": "West Milwaukee",
    "WA": "Wauwatosa",
    "GFD": "Greenfield",
    "STF": "St. Francis",
}

_UPDATED = re.compile(
    r"Updated:\s*(\d{1,2}/\d{1,2}/\d{4}\s+\d{1,2}:\d{2}(?::\d{2})?\s*[AP]M)", re.I
)


def parse(page: Page) -> ParseResult:
    columns, rows = find_table_by_headers(page.tree, HEADERS, what=WHAT)
    width = max(columns.values()) + 1
    i_id, i_received, i_address, i_district, i_type, i_status = (columns[name] for name in HEADERS)
    out: list[RawRow] = []
    reason = end_reached(page, END_MARKERS, what=WHAT)
    rows = list(rows)
    cut = False
    for number, row in enumerate(rows, 1):
        texts = row_texts(row)
        if not any(texts):
            continue  # spacer or layout row
        if len(texts) != width and reason is not None and number == len(rows):
            cut = True
            break  # the row the page was cut in: the rows before it are whole
        # Errors name the row, never its cells: they are stored and published in polls.error,
        # and a raw cell may hold a full street address.
        if len(texts) != width:
            raise LayoutError(
                f"{WHAT}: row {number} ({row_label(texts, i_id)}) has {len(texts)} cells, "
                f"expected {width}"
            )
        if not texts[i_id]:
            raise LayoutError(f"{WHAT}: row {number} has no Call Number")
        out.append(
            RawRow(
                incident_id=texts[i_id],
                received=texts[i_received] or None,
                call_type=texts[i_type] or None,
                status=texts[i_status] or None,
                address=texts[i_address] or None,
                district=texts[i_district] or None,
            )
        )
    if reason is not None and not cut and out and not last_row_is_whole(page):
        out.pop()  # the page was cut inside its last row: a cell may be truncated
    updated = _UPDATED.search(page.text)
    as_of = " ".join(updated.group(1).split()) if updated else None
    return ParseResult(rows=out, as_of=as_of, complete=reason is None, reason=reason)


scraper = Scraper(
    slug="milwaukee-police",
    name="Milwaukee Police Dispatched Calls for Service",
    agency="Milwaukee Police Department",
    city="Milwaukee",
    state="WI",
    url=URL,
    homepage=HOMEPAGE,
    timezone="America/Chicago",
    interval="5m",
    snapshot=True,
    parse=parse,
    license=(
        "No license stated; the page's disclaimer says the data are for illustrative purposes "
        "only, with no warranty of accuracy or completeness."
    ),
    source_notes=(
        "Lists calls dispatched 30-90 minutes before 'Updated:'; calls older than 90 minutes "
        "are available only by open-records request."
    ),
    city_codes=CITY_CODES,
    default_city=None,
)
