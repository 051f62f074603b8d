"""Import-only feeds: a city whose calls exist only as files (Chicago publishes no live
feed; its calls for service come as FOIA spreadsheets). Such a feed has no URL and is never
polled: ``dispatchwatch run`` skips it and ``dispatchwatch import --feed`` fills it."""

from __future__ import annotations

from ..errors import LayoutError
from ..scraper import Page, ParseResult, Scraper

__all__ = ["IMPORT_ONLY", "import_only_scraper", "is_import_only"]

#: The key in ``Scraper.options`` that marks an import-only feed.
IMPORT_ONLY = "import_only"


def _no_pages(page: Page) -> ParseResult:
    raise LayoutError("an import-only feed has no pages to parse: use dispatchwatch import")


def import_only_scraper(
    slug: str,
    *,
    name: str | None = None,
    agency: str = "",
    city: str = "",
    timezone: str,
    state: str = "",
    homepage: str = "",
    license: str = "",
    source_notes: str = "",
) -> Scraper:
    """A :class:`Scraper` that describes an import-only feed (no URL, nothing to parse)."""
    return Scraper(
        slug=slug,
        name=name or slug,
        agency=agency,
        city=city,
        url="",
        timezone=timezone,
        parse=_no_pages,
        interval="1d",
        snapshot=False,
        state=state,
        homepage=homepage,
        license=license,
        source_notes=source_notes,
        default_city=city or None,
        options={IMPORT_ONLY: True},
    )


def is_import_only(scraper: Scraper) -> bool:
    return bool(scraper.options.get(IMPORT_ONLY))
