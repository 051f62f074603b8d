"""One page through the pipeline: parse -> normalize -> archive.

Used by ``dispatchwatch ingest`` (saved pages) and by the daemon (fetched pages) alike, so a
saved page and a live one are archived the same way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .archive import Archive, PollSummary, utc_now
from .config import Feed
from .errors import DispatchwatchError, PageError
from .incident import Incident
from .normalize import normalize_rows, to_utc
from .scraper import Page

log = logging.getLogger(__name__)


_LOOK_IT_UP = object()  # process_page(last_sha256=...) not given: read it from the archive


@dataclass(slots=True)
class ParsedPage:
    incidents: list[Incident]
    #: The page's own "as of" time in UTC, when it states one.
    as_of: str | None


def parse_page(
    feed: Feed, body: bytes, *, url: str = "", headers: Mapping[str, str] | None = None
) -> ParsedPage:
    """Parse and normalize one page. Raises :class:`PageError` (or its subclass
    :class:`LayoutError`) when the page is not what the feed's scraper expects."""
    scraper = feed.scraper
    result = scraper.parse(Page(body, url or feed.url, headers))
    incidents = normalize_rows(
        result.rows,
        feed=feed.slug,
        timezone=feed.zone,
        city_codes=scraper.city_codes,
        default_city=scraper.default_city,
        precision=feed.precision,
    )
    as_of = to_utc(result.as_of, feed.zone) if result.as_of is not None else None
    return ParsedPage(incidents, as_of)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, DispatchwatchError):
        return str(exc)
    # A bug in a scraper: keep the type so it can be found, but never crash the poll loop.
    return f"{type(exc).__name__}: {exc}"


def process_page(
    archive: Archive,
    feed: Feed,
    body: bytes,
    *,
    url: str = "",
    headers: Mapping[str, str] | None = None,
    http_status: int | None = None,
    started_at: str | None = None,
    fetched_at: str | None = None,
    fetch_ms: float = 0.0,
    etag: str | None = None,
    last_modified: str | None = None,
    source: str | None = None,
    skip_unchanged: bool = True,
    last_sha256: str | None | object = _LOOK_IT_UP,
) -> PollSummary:
    """Archive one page as one poll and say what it did.

    A body identical (SHA-256) to the last parsed one is recorded as ``unchanged`` and not
    parsed. A page that does not parse is recorded as an ``error`` poll and writes no
    incident. ``last_sha256`` is the SHA-256 of the last parsed body, when the caller has
    already read it. The poll's time is the page's own "as of" time if it has one, else
    ``fetched_at``, else (saved pages) the latest received time on the page.
    """
    clock = time.perf_counter()
    started_at = started_at or utc_now()
    sha256 = hashlib.sha256(body).hexdigest()
    common = {
        "started_at": started_at,
        "http_status": http_status,
        "nbytes": len(body),
        "sha256": sha256,
        "source": source,
    }

    def elapsed() -> float:
        return round(fetch_ms + (time.perf_counter() - clock) * 1000, 3)

    if skip_unchanged:
        if last_sha256 is _LOOK_IT_UP:  # the daemon passes what it already read
            last = archive.last_parsed(feed.slug)
            last_sha256 = last["sha256"] if last is not None else None
        if last_sha256 == sha256:
            return archive.record_unchanged(
                feed.slug,
                observed_at=fetched_at,
                duration_ms=elapsed(),
                etag=etag,
                last_modified=last_modified,
                **common,
            )
    try:
        parsed = parse_page(feed, body, url=url, headers=headers)
    except Exception as exc:
        kind = exc.kind if isinstance(exc, PageError) else "parse_error"
        log.debug("parse of %s failed", feed.slug, exc_info=True)
        return archive.record_error(
            feed.slug, error_kind=kind, error=_error_text(exc), duration_ms=elapsed(), **common
        )
    observed_at = (
        parsed.as_of
        or fetched_at
        or max((i.received_at for i in parsed.incidents if i.received_at), default=None)
        or started_at
    )
    return archive.record_success(
        feed.slug,
        parsed.incidents,
        observed_at=observed_at,
        snapshot=feed.scraper.snapshot,
        duration_ms=elapsed(),
        etag=etag,
        last_modified=last_modified,
        **common,
    )


def check_readable(paths: Iterable[str | Path]) -> list[Path]:
    """Every path as a readable file, else a clear error naming the first bad one, so a run
    stops before it writes anything."""
    checked = []
    for name in paths:
        path = Path(name)
        if not path.is_file() or not os.access(path, os.R_OK):
            reason = "not a file" if path.exists() else "No such file or directory"
            if path.is_file():
                reason = "Permission denied"
            raise DispatchwatchError(f"cannot read {path}: {reason}")
        checked.append(path)
    return checked


def ingest_files(
    archive: Archive,
    feed: Feed,
    paths: Iterable[str | Path],
    *,
    on_page: Callable[[Path, PollSummary], None] | None = None,
) -> list[PollSummary]:
    """Archive saved pages in the given order, as consecutive polls of ``feed``.

    Pages are read one at a time (a run over months of captures must not hold them all).
    """
    files = check_readable(paths)
    archive.register_feed(feed.record())
    summaries = []
    for path in files:
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise DispatchwatchError(f"cannot read {path}: {exc.strerror or exc}") from None
        summary = process_page(archive, feed, body, url=feed.url, source=str(path))
        summaries.append(summary)
        if on_page is not None:
            on_page(path, summary)
    return summaries
