"""One poll through the pipeline: plan -> fetch -> parse -> normalize -> archive.

:func:`run_poll` is a whole poll of a feed (the daemon's and backfill's): the scraper plans its
requests from the feed's stored state, the engine fetches each (and every ``follow`` request
a response asks for), the scraper parses each response, and all rows are normalized together
and archived in one transaction with the state they cover. :func:`process_page` is one saved
page (``dispatchwatch ingest``). Both write through the same :class:`Archive` methods, so a
saved page and a live one are archived the same way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .archive import Archive, PollSummary, StoredIncidents, time_before, utc_now
from .bulkgc import fewer_collections
from .bulkload import deferred_indexes, estimated_rows
from .checkpoints import checkpoints_aside
from .config import Feed
from .errors import DispatchwatchError, FetchError, PageError
from .incident import Incident
from .normalize import normalize_rows, to_utc
from .normalize.pagememo import PageMemo
from .pagestore import Response
from .parseahead import ParseFailure, SavedPage, read_ahead
from .scraper import Page, ParseResult, PlanContext, RawRow, Request

if TYPE_CHECKING:
    from .fetch import FetchResult

log = logging.getLogger(__name__)


class OlderPageError(DispatchwatchError):
    """A saved page is dated before what the archive already holds for its feed."""

    kind = "older_page"


_LOOK_IT_UP = object()  # process_page(last_sha256=...) not given: read it from the archive


@dataclass(slots=True)
class ParsedPage:
    #: As normalized, or as the archive stores them (``ingest``'s parse-ahead child sends
    #: them so: see parseahead.py).
    incidents: list[Incident] | StoredIncidents
    #: The page's own "as of" time in UTC, when it states one.
    as_of: str | None
    #: False when the page (or poll) may not hold the whole list; ``reason`` says why.
    complete: bool = True
    reason: str | None = None
    #: Requests the page asks for next (the next page of a query).
    follow: list[Request] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)
    unchanged: bool = False


def normalize(
    feed: Feed, rows: list[RawRow], as_of: object = None, memo: PageMemo | None = None
) -> tuple[list[Incident], str | None]:
    """Rows of one poll -> merged, normalized incidents, and the "as of" time in UTC.
    ``memo`` (pages of this one feed, in sequence) builds again the incidents of rows the
    page before held, unchanged, instead of normalizing them again: same answer."""
    scraper = feed.scraper
    incidents = (memo.normalize_rows if memo is not None else normalize_rows)(
        rows,
        feed=feed.slug,
        timezone=feed.zone,
        city_codes=scraper.city_codes,
        default_city=scraper.default_city,
        precision=feed.precision,
    )
    utc_as_of = to_utc(as_of, feed.zone) if as_of is not None else None  # type: ignore[arg-type]
    return incidents, utc_as_of


def parse_page(
    feed: Feed,
    body: bytes,
    *,
    url: str = "",
    headers: Mapping[str, str] | None = None,
    request: Request | None = None,
    memo: PageMemo | None = None,
) -> ParsedPage:
    """Parse and normalize one page (``memo``: see :func:`normalize`). Raises
    :class:`PageError` (or its subclass :class:`LayoutError`) when the page is not what the
    feed's scraper expects.

    A page that asks for more (``follow``: the next page of a paged query) is, on its own,
    not the whole list: it comes back with ``complete=False``.
    """
    result = feed.scraper.parse(Page(body, url or feed.url, headers, request))
    return normalized_page(feed, result, memo)


def stored_page(
    feed: Feed, body: bytes, *, url: str = "", headers: Mapping[str, str] | None = None
) -> ParsedPage | None:
    """:func:`parse_page` of a saved page (no request), its incidents as the archive stores
    them (:class:`StoredIncidents`), by the scraper's one-pass reading when its ``parse``
    has one (a ``stored`` attribute: Socrata's field mappings), else None. Any page it does
    not take (an incident on several rows, an error) is None too: :func:`parse_page` says
    what it gives or what is wrong. The same poll either way (tested), about a third of
    the work (no row or incident objects)."""
    stored = getattr(feed.scraper.parse, "stored", None)
    if stored is None:
        return None
    scraper = feed.scraper
    try:
        columns = stored(
            Page(body, url or feed.url, headers), timezone=feed.zone,
            city_codes=scraper.city_codes, default_city=scraper.default_city,
            precision=feed.precision,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - the general way raises what is to be raised
        return None
    return None if columns is None else ParsedPage(StoredIncidents(columns), None)


def normalized_page(feed: Feed, result: ParseResult, memo: PageMemo | None = None) -> ParsedPage:
    """:func:`parse_page` after the scraper's parse: ``result`` with its rows normalized.
    Raises :class:`PageError` for a row that does not normalize."""
    incidents, as_of = normalize(feed, result.rows, result.as_of, memo)
    complete, reason = result.complete, result.reason
    if complete and result.follow:
        complete = False
        reason = f"more pages follow ({result.follow[0].describe()}) that were not fetched"
    return ParsedPage(
        incidents, as_of, complete, reason, list(result.follow), dict(result.state),
        result.unchanged,
    )  # fmt: skip


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
    kind: str | None = None,
    older: str = "history",
    snapshot: bool | None = None,
    parsed: ParsedPage | ParseFailure | None = None,
    sha256: str | None = None,
) -> PollSummary:
    """Archive one page as one poll and say what it did.

    A body identical (SHA-256) to the last parsed one is recorded as ``unchanged`` and not
    parsed. A page that does not parse is recorded as an ``error`` poll and writes no
    incident. ``last_sha256`` is the SHA-256 of the last parsed body, when the caller has
    already read it. The poll's time is the page's own "as of" time if it has one, else
    ``fetched_at``, else (saved pages) the latest received time on the page.

    A page dated before the archive's last poll of the feed never rewrites history
    backwards: with ``older="history"`` it only adds incidents never seen before (a
    ``partial`` poll, nothing marked gone); with ``older="refuse"`` it raises
    :class:`OlderPageError` and writes nothing.

    ``parsed`` is what :func:`parse_page` gave for ``body`` (or the failure it raised), when
    the caller parsed it already (``ingest``'s parse-ahead process); ``sha256`` is the body's
    SHA-256 when the caller has it.
    """
    clock = time.perf_counter()
    started_at = started_at or utc_now()
    sha256 = sha256 or hashlib.sha256(body).hexdigest()
    common = {
        "started_at": started_at,
        "http_status": http_status,
        "nbytes": len(body),
        "sha256": sha256,
        "source": source,
    }

    def elapsed() -> float:
        return round(fetch_ms + (time.perf_counter() - clock) * 1000, 3)

    last = archive.last_parsed(feed.slug) or {}
    if last_sha256 is _LOOK_IT_UP:
        last_sha256 = last.get("sha256")
    if skip_unchanged and last_sha256 == sha256:
        return archive.record_unchanged(
            feed.slug,
            observed_at=fetched_at,
            duration_ms=elapsed(),
            etag=etag,
            last_modified=last_modified,
            kind=kind,
            **common,
        )
    if parsed is None:
        parsed = stored_page(feed, body, url=url, headers=headers)
    if parsed is None:
        try:
            parsed = parse_page(feed, body, url=url, headers=headers)
        except Exception as exc:
            log.debug("parse of %s failed", feed.slug, exc_info=True)
            kind_ = exc.kind if isinstance(exc, PageError) else "parse_error"
            parsed = ParseFailure(kind_, _error_text(exc))
    if isinstance(parsed, ParseFailure):
        return archive.record_error(
            feed.slug, error_kind=parsed.kind, error=parsed.error, duration_ms=elapsed(),
            scraper_version=feed.scraper.version, **common,
        )  # fmt: skip
    observed_at = parsed.as_of or fetched_at or _latest_received(parsed.incidents) or started_at
    history_only = _older_than_archive(observed_at, last)
    if history_only is not None and older == "refuse":
        raise OlderPageError(
            f"{source or 'the page'} is as of {observed_at}, before the archive's last poll "
            f"of {feed.slug} ({last.get('observed_at')}); saved pages go in oldest first "
            "(nothing of it was written; --force adds it as history: only incidents never "
            "seen before, nothing marked gone)"
        )
    return archive.record_success(
        feed.slug,
        parsed.incidents,
        observed_at=observed_at,
        snapshot=feed.scraper.snapshot if snapshot is None else snapshot,
        duration_ms=elapsed(),
        etag=etag,
        last_modified=last_modified,
        complete=parsed.complete,
        reason=parsed.reason,
        # A saved page stands alone: the state it proposes is kept only when it is whole.
        state=parsed.state or None,
        mass_gone_share=feed.mass_gone_share,
        history_only=history_only,
        kind=kind,
        scraper_version=feed.scraper.version,
        pages=[Response(body, url or feed.url, http_status, headers, None, sha256)]
        if feed.keep_pages.keeps
        else None,
        **common,
    )


def _latest_received(incidents: list[Incident] | StoredIncidents) -> str | None:
    """The latest ``received_at`` of ``incidents`` (UTC text), None when none has one."""
    if isinstance(incidents, StoredIncidents):
        return incidents.latest_received_at()
    return max((i.received_at for i in incidents if i.received_at), default=None)


#: Parses and normalizes one page elsewhere: ``(feed, page)`` -> the scraper's
#: :class:`ParseResult`, :func:`normalize` of its rows (incidents, "as of" in UTC), or None.
Offload = Callable[[Feed, Page], "tuple[ParseResult, list[Incident], str | None] | None"]

#: What :func:`run_poll` needs to fetch one request: ``(request, etag, last_modified)`` ->
#: a fetched response; raises :class:`FetchError`.
FetchRequest = Callable[[Request, "str | None", "str | None"], "FetchResult"]


def _combined_sha256(digests: list[str]) -> str:
    """One poll's SHA-256: the body's own for a single response (as before paging existed),
    else the SHA-256 of the responses' SHA-256s in order."""
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode("ascii")).hexdigest()


def run_poll(
    archive: Archive,
    feed: Feed,
    fetch: FetchRequest,
    *,
    started_at: str | None = None,
    now: datetime | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    last: Mapping[str, object] | None = None,
    state: Mapping[str, str] | None = None,
    mark_gone: bool | None = None,
    offload: Offload | None = None,
) -> PollSummary:
    """One whole poll of ``feed``: plan, fetch every request (and every ``follow``), parse,
    normalize, archive. Never raises for a failed fetch or parse: it is recorded.

    - The first request failing (fetch or parse) is an ``error`` poll: nothing is written.
    - A later request failing, a response that says it is incomplete, or more requests than
      the scraper's ``max_requests`` make a ``partial`` poll: the rows read so far are kept,
      nothing is marked gone and no state advances.
    - A single conditional request answered ``304``, the same bytes as the last parsed poll,
      or a source that reports no change (``ParseResult.unchanged``) record an unchanged poll.
    - Otherwise the poll is ``new``; the state the responses propose (the watermark) is stored
      in the same transaction as the rows.

    ``last``/``state`` are what the caller already read from the archive (the daemon), else
    they are read here. ``since``/``until`` (aware UTC) make a backfill of that range
    (``kind="backfill"``: nothing is marked gone). ``mark_gone`` overrides the scraper's
    ``snapshot`` flag. ``offload`` may parse and normalize the response of a single-request
    plan elsewhere (the daemon's parse processes): the same result, or None to do it here.
    Raises only :class:`_Abandoned`-style errors of the archive itself.
    """
    clock = time.perf_counter()
    started_at = started_at or utc_now()
    now = now or datetime.now(UTC)
    scraper = feed.scraper
    if last is None:
        last = archive.last_parsed(feed.slug) or {}
    if state is None:
        state = archive.feed_state(feed.slug)
    context = PlanContext(
        feed=feed.slug, url=feed.url, zone=feed.zone, now=now, state=dict(state),
        options={**scraper.options, **feed.options}, since=since, until=until,
    )  # fmt: skip
    snapshot = scraper.snapshot if mark_gone is None else mark_gone
    if kind == "backfill" or context.backfill:
        snapshot = False

    def elapsed() -> float:
        return round((time.perf_counter() - clock) * 1000, 3)

    try:
        queue = deque(scraper.requests(context))
    except Exception as exc:  # a plan that cannot be made (bad options, a plugin bug)
        kind_ = exc.kind if isinstance(exc, DispatchwatchError) else "plan_error"
        return archive.record_error(
            feed.slug, error_kind=kind_, error=_error_text(exc), started_at=started_at,
            duration_ms=elapsed(), source=feed.url, kind=kind,
        )  # fmt: skip
    single = len(queue) == 1
    rows: list[RawRow] = []
    new_state: dict[str, str] = {}
    completed_days: list[str] = []
    digests: list[str] = []
    nbytes = 0
    made = 0
    complete, reason = True, None
    as_of: object = None
    unchanged = False
    first: FetchResult | None = None
    http_status: int | None = None
    responses: list[Response] = []  # parsed ones, for the raw page store
    offloaded = None
    while queue:
        request = queue.popleft()
        if made >= scraper.max_requests:
            complete = False
            reason = f"stopped after {made} requests (max_requests); more pages follow"
            break
        made += 1
        conditional = single and request.conditional and made == 1
        try:
            result = fetch(
                request,
                last.get("etag") if conditional else None,  # type: ignore[arg-type]
                last.get("last_modified") if conditional else None,  # type: ignore[arg-type]
            )
        except FetchError as exc:
            if made == 1:
                return archive.record_error(
                    feed.slug, error_kind=exc.kind, error=str(exc), started_at=started_at,
                    duration_ms=elapsed(), http_status=exc.status, source=request.full_url,
                    kind=kind, requests=made,
                )  # fmt: skip
            complete = False
            reason = f"request {made} ({request.describe()}) failed: {exc.kind}: {exc}"
            break
        http_status = result.status if http_status is None else http_status
        if made == 1:
            first = result
        if result.not_modified:
            if single:
                return archive.record_unchanged(
                    feed.slug, outcome="not_modified", started_at=started_at,
                    observed_at=utc_now(), duration_ms=elapsed(), http_status=result.status,
                    sha256=last.get("sha256"),  # type: ignore[arg-type]
                    etag=result.etag or last.get("etag"),  # type: ignore[arg-type]
                    last_modified=result.last_modified or last.get("last_modified"),  # type: ignore[arg-type]
                    source=result.url, kind=kind, requests=made,
                )  # fmt: skip
            complete, reason = False, f"request {made} ({request.describe()}): HTTP 304"
            break
        digest = hashlib.sha256(result.body).hexdigest()
        digests.append(digest)
        nbytes += len(result.body)
        if single and made == 1 and digest == last.get("sha256"):
            return archive.record_unchanged(
                feed.slug, started_at=started_at, observed_at=utc_now(),
                duration_ms=elapsed(), http_status=result.status, nbytes=nbytes,
                sha256=digest, etag=result.etag, last_modified=result.last_modified,
                source=result.url, kind=kind, requests=made,
            )  # fmt: skip
        page = Page(result.body, result.url, result.headers, request)
        offloaded = offload(feed, page) if offload is not None and single else None
        try:
            parsed: ParseResult = offloaded[0] if offloaded is not None else scraper.parse(page)
        except Exception as exc:
            log.debug("parse of %s failed", feed.slug, exc_info=True)
            error_kind = exc.kind if isinstance(exc, PageError) else "parse_error"
            if made == 1:
                return archive.record_error(
                    feed.slug, error_kind=error_kind, error=_error_text(exc),
                    started_at=started_at, duration_ms=elapsed(), http_status=result.status,
                    nbytes=nbytes, sha256=digest, source=result.url, kind=kind, requests=made,
                    scraper_version=scraper.version,
                )  # fmt: skip
            complete = False
            reason = f"request {made} ({request.describe()}): {error_kind}: {_error_text(exc)}"
            break
        responses.append(
            Response(result.body, result.url, result.status, result.headers, request, digest)
        )
        rows.extend(parsed.rows)
        new_state.update(parsed.state)
        completed_days.extend(parsed.completed_days)
        if made == 1:
            as_of = parsed.as_of
        unchanged = unchanged or parsed.unchanged
        if not parsed.complete:
            complete = False
            reason = parsed.reason or f"request {made} ({request.describe()}) is incomplete"
            break
        queue.extend(parsed.follow)
    sha256 = _combined_sha256(digests) if digests else None
    source = first.url if first is not None else feed.url
    common = {
        "started_at": started_at, "http_status": http_status, "nbytes": nbytes,
        "sha256": sha256, "source": source, "kind": kind, "requests": made,
    }  # fmt: skip
    if complete and unchanged and not rows:
        return archive.record_unchanged(
            feed.slug, observed_at=utc_now(), duration_ms=elapsed(), **common
        )
    moved = completed_days or any(state.get(k) != v for k, v in new_state.items())
    if (
        complete
        and made > 1  # (one request was compared above; a paged poll may plan just one)
        and not moved
        and sha256 is not None
        and sha256 == last.get("sha256")
    ):
        return archive.record_unchanged(
            feed.slug, observed_at=utc_now(), duration_ms=elapsed(), **common
        )
    try:
        if offloaded is not None and made == 1:  # normalized with the page, elsewhere
            incidents, utc_as_of = offloaded[1], offloaded[2]
        else:
            incidents, utc_as_of = normalize(feed, rows, as_of)
    except Exception as exc:
        error_kind = exc.kind if isinstance(exc, PageError) else "parse_error"
        return archive.record_error(
            feed.slug, error_kind=error_kind, error=_error_text(exc),
            duration_ms=elapsed(), **{k: v for k, v in common.items() if k != "nbytes"},
        )  # fmt: skip
    # The page's own "as of" time when it states one, else now.
    observed_at = utc_as_of or utc_now()
    if snapshot is False and (kind == "backfill" or context.backfill):
        # A backfilled page was not seen now: date it by its own latest time, and never let
        # it move the live feed's state (watermark) backwards.
        observed_at = utc_as_of or max(
            (i.received_at for i in incidents if i.received_at), default=observed_at
        )
        new_state = {}
    return archive.record_success(
        feed.slug,
        incidents,
        observed_at=observed_at,
        snapshot=snapshot,
        duration_ms=elapsed(),
        etag=first.etag if first is not None and single else None,
        last_modified=first.last_modified if first is not None and single else None,
        complete=complete,
        reason=reason,
        state=new_state or None,
        mass_gone_share=feed.mass_gone_share,
        history_only=_older_than_archive(utc_as_of, last),
        completed_days=completed_days,
        scraper_version=scraper.version,
        pages=responses if feed.keep_pages.keeps else None,
        **common,
    )


def _older_than_archive(as_of: str | None, last: Mapping[str, object]) -> str | None:
    """Why a page whose own time is before the archive's last observation of the feed may
    only add history (a stale copy from a cache, an old saved page), else None."""
    latest = last.get("observed_at")
    # Not plain text order: within one second "...07Z" is before "...07.290Z".
    if as_of is None or not isinstance(latest, str) or not time_before(as_of, latest):
        return None
    return (
        f"the page is as of {as_of}, older than the archive's last poll of the feed "
        f"({latest}): only incidents never seen before were added"
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
    force: bool = False,
) -> list[PollSummary]:
    """Archive saved pages in the given order, as consecutive polls of ``feed``.

    Pages are read one at a time (a run over months of captures must not hold them all).
    A page whose exact bytes the archive already holds is skipped (outcome
    ``already_archived``, nothing written), so re-ingesting the same pages adds nothing. A
    page dated before the archive's last poll of the feed raises :class:`OlderPageError`
    (pages go in oldest first) unless ``force``, which adds it as history only.
    """
    files = check_readable(paths)
    archive.register_feed(feed.record())
    seen = archive.parsed_sha256s(feed.slug)
    # Many rows into a small archive: indexes built once at the end (see bulkload.py).
    rows = estimated_rows(files)
    with (
        fewer_collections(),
        deferred_indexes(archive, job="ingest", rows=rows),
        checkpoints_aside(archive) as committed,
    ):
        return _ingest(archive, feed, files, seen, on_page, force, committed)


def _ingest(
    archive: Archive,
    feed: Feed,
    files: list[Path],
    seen: set[str],
    on_page: Callable[[Path, PollSummary], None] | None,
    force: bool,
    committed: Callable[[int], None],
) -> list[PollSummary]:
    """The polls of :func:`ingest_files` (``committed``: told the rows of each, see
    checkpoints.py)."""
    summaries = []
    # Each page is parsed (pages ahead, in a child process when it can) while the one
    # before is archived: see parseahead.py.
    for page in read_ahead(feed, files, seen):
        summary = _ingest_page(archive, feed, page, seen, force)
        committed(summary.incidents)
        summaries.append(summary)
        if on_page is not None:
            on_page(page.path, summary)
    return summaries


def _ingest_page(
    archive: Archive, feed: Feed, page: SavedPage, seen: set[str], force: bool
) -> PollSummary:
    """One saved page of :func:`ingest_files` archived as a poll (or skipped)."""
    if page.sha256 in seen:
        return PollSummary(0, feed.slug, "already_archived")
    summary = process_page(
        archive, feed, page.body, url=feed.url, source=str(page.path), kind="ingest",
        older="history" if force else "refuse", parsed=page.parsed, sha256=page.sha256,
    )  # fmt: skip
    if summary.outcome != "error":
        seen.add(page.sha256)
    return summary
