"""Chicago Police calls for service: import-only.

Chicago publishes no live dispatch feed. Its calls for service exist as spreadsheets released
by OEMC under FOIA (per-call records on request) and as the 2008-2012 counts release, so this
feed is filled with ``dispatchwatch import FILE --feed chicago-police --mapping
chicago-oemc-foia`` (or ``chicago-call-counts``) and never polled.
"""

from __future__ import annotations

from dispatchwatch.imports.feeds import import_only_scraper

scraper = import_only_scraper(
    "chicago-police",
    name="Chicago Police calls for service (FOIA releases)",
    agency="Chicago Office of Emergency Management and Communications (OEMC)",
    city="Chicago",
    state="IL",
    timezone="America/Chicago",
    homepage="https://www.chicago.gov/city/en/depts/oem.html",
    source_notes="No live feed: per-call FOIA spreadsheets and the 2008-2012 counts release, "
    "imported with dispatchwatch import. Location remarks (free text) are never stored.",
)
