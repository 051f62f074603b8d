"""The Socrata SODA adapter: ``/resource/ID.json`` datasets, paged, snapshot or incremental.

A feed on Socrata is a :class:`SocrataSpec` (where the dataset is, how to page it, how a row
maps to an incident) turned into a :class:`~dispatchwatch.scraper.Scraper` whose ``plan`` and
``parse`` are pure functions; the engine fetches. Built-in feeds call :func:`scraper` from a
small module in ``scrapers/``; a user's own city is a block in config.yaml read by
:func:`from_config` (the keys are documented in the README, "Socrata options").

How a poll goes:

- **snapshot** mode (``mode: snapshot``): the whole dataset is the list of current calls.
  Pages of ``page_size`` rows are read with ``$limit``/``$offset`` under a stable ``$order``
  (the time field, then ``:id``); a full page asks for the next one, a short (or empty) page
  ends the list. Incidents are marked gone only when every page was read (the engine's rule).
- **incremental** mode (``mode: incremental``): the first request is a *probe*, one small
  aggregate (``$select=count(*), max(:updated_at)``) compared with the one stored by the last
  complete poll: when equal, the poll is ``unchanged`` after that one request and parses no
  row. Otherwise the pages of ``$where time_field >= watermark - look_back`` follow, and the
  poll stores the new watermark (the greatest time seen) and the probe, in the same
  transaction as the rows (only when every page was read). Rewritten rows within the
  look-back add one version; unchanged rows add nothing (the engine compares).
- **yearly datasets** (``datasets: {2024: 2zcj-b6ts, ...}``, New Orleans): the current year's
  dataset (the year in the feed's zone) and, for ``year_overlap`` after New Year, the previous
  year's too; state is kept per dataset (``watermark:ID``, ``probe:ID``).
- **backfill** (``PlanContext.since/until``): the pages of ``since <= time_field < until``
  (in every yearly dataset the range touches), no probe, no watermark.

Times without a zone (``2024-03-31T18:30:18.000``, Socrata's "floating timestamp") are read in
the feed's zone by the normalizer. An app token is read from the environment variable named by
``app_token_env`` and sent as the ``X-App-Token`` request header: never in the URL, never
logged or stored. A response that is not a JSON array (Socrata's ``{"error": true, "message":
...}``) is a :class:`~dispatchwatch.errors.LayoutError` that quotes Socrata's message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..errors import ConfigError, LayoutError
from ..scraper import Page, ParseResult, PlanContext, RawRow, Request, Scraper
from . import options as opts

if TYPE_CHECKING:
    from ..normalize.rows import PageNormalizer

__all__ = [
    "FIELDS",
    "SocrataSpec",
    "extras",
    "from_config",
    "point",
    "scraper",
    "text",
]

#: The incident fields a ``fields`` mapping may fill (``location`` is a Socrata point column,
#: read into latitude/longitude).
FIELDS = (*opts.INCIDENT_FIELDS, "location")
MODES = opts.MODES
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 50000
DEFAULT_YEAR_OVERLAP = 7 * 86400.0
#: How far back the first incremental poll of a dataset reads (at least), in seconds.
FIRST_WINDOW = 86400.0
_RESOURCE = re.compile(r"^(https?://[^/?#]+(?:/[^?#]*)?)/resource/([a-z0-9]{4}-[a-z0-9]{4})\.json$")
_DATASET_ID = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")
_COLUMN = re.compile(r"^:?[A-Za-z_@][A-Za-z0-9_@]*$")
_ORDER_TERM = r":?[A-Za-z_][A-Za-z0-9_]*(?:\s+(?:ASC|DESC))?"
_ORDER = re.compile(rf"^\s*{_ORDER_TERM}(?:\s*,\s*{_ORDER_TERM})*\s*$", re.I)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_US = re.compile(
    r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?"
    r"(?:\.[0-9]+)?(?:\s*([AaPp])[Mm])?$"
)

_WKT_POINT = re.compile(r"^\s*POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$", re.I)

#: A city-specific row builder: one SODA record -> a raw row (None skips the record).
RowHook = Callable[[Mapping[str, Any]], "RawRow | None"]


@dataclass(frozen=True)
class SocrataSpec:
    """Everything the adapter needs to plan and parse one Socrata feed.

    ``url`` is ``https://DOMAIN/resource/ID.json``; ``datasets`` (year -> dataset ID) makes
    the feed yearly: the ID in the feed's URL is then replaced by the year's. ``look_back``
    and ``year_overlap`` are seconds. ``fields`` maps incident fields to SODA columns;
    ``row`` replaces the mapping with a function. ``extra`` lists the columns kept in
    ``extra`` (None: every column not mapped, except system ``:`` columns and points).
    """

    url: str
    zone: str
    mode: str = "snapshot"
    time_field: str | None = None
    look_back: float = 0.0
    order: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    app_token_env: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] | None = None
    row: RowHook | None = None
    datasets: Mapping[int, str] = field(default_factory=dict)
    year_overlap: float = DEFAULT_YEAR_OVERLAP

    @property
    def dataset(self) -> str:
        match = _RESOURCE.match(self.url)
        return match.group(2) if match else ""

    @property
    def order_by(self) -> str:
        if self.order:
            return self.order
        return f"{self.time_field}, :id" if self.time_field else ":id"


# --- helpers for row hooks -------------------------------------------------------------------


def text(value: Any) -> str | None:
    """A SODA value as stripped text; None, empty text, dicts and lists give None."""
    if value.__class__ is str:  # the common case
        return value.strip() or None
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    cleaned = str(value).strip()
    return cleaned or None


def point(value: Any) -> tuple[float | None, float | None]:
    """``(latitude, longitude)`` of a Socrata point: GeoJSON ``{"type": "Point",
    "coordinates": [lon, lat]}``, the legacy location ``{"latitude": "..", "longitude":
    ".."}``, or WKT ``POINT (lon lat)``. Anything else, or ``[0, 0]``, gives ``(None, None)``
    (the normalizer rounds and range-checks what comes back)."""
    lat = lon = None
    try:
        if isinstance(value, dict):
            coords = value.get("coordinates")
            if isinstance(coords, list | tuple) and len(coords) >= 2:
                lon, lat = float(coords[0]), float(coords[1])
            elif "latitude" in value and "longitude" in value:
                lat, lon = float(value["latitude"]), float(value["longitude"])
        elif isinstance(value, str):
            match = _WKT_POINT.match(value)
            if match:
                lon, lat = float(match.group(1)), float(match.group(2))
    except (TypeError, ValueError):
        return None, None
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None, None
    return lat, lon


def _is_geo(value: Any) -> bool:
    return isinstance(value, dict) and (
        "coordinates" in value or "latitude" in value or "longitude" in value
    )


def extras(
    record: Mapping[str, Any], used: Iterable[str], keep: Sequence[str] | None = None
) -> dict[str, Any]:
    """The columns of ``record`` for ``extra``: ``keep`` if given, else every column not in
    ``used``, leaving out system columns (``:id``, ``:@computed_region_...``) and points
    (exact coordinates are never stored: the rounded ones are the incident's)."""
    if keep is not None:
        return {k: record[k] for k in keep if k in record and not _is_geo(record[k])}
    skip = used if isinstance(used, set | frozenset) else set(used)
    return {
        k: v
        for k, v in record.items()
        if k not in skip and not k.startswith(":") and not _is_geo(v) and v not in ("", None)
    }


def floating_time(value: Any, zone: str) -> datetime | None:
    """A SODA time (floating ISO ``2024-03-31T18:30:18.000``, ISO with ``Z``/offset, or
    ``M/D/YYYY h:mm[:ss] [AM|PM]`` text) as a naive local datetime in ``zone``; None when it
    is not a time."""
    raw = text(value)
    if raw is None:
        return None
    match = _US.match(raw)
    if match:
        month, day, year, hour, minute = (int(g) for g in match.group(1, 2, 3, 4, 5))
        second = int(match.group(6) or 0)
        if match.group(7):
            hour = hour % 12 + (12 if match.group(7) in "Pp" else 0)
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return parsed.replace(microsecond=0)


def _soql_time(moment: datetime) -> str:
    """A naive datetime as a SoQL floating timestamp literal."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000")


# --- plan ------------------------------------------------------------------------------------


def _dataset_url(url: str, dataset: str) -> str:
    match = _RESOURCE.match(url)
    if match is None:  # validated at build time; a URL override without /resource/
        raise ConfigError(f"url {url!r} is not a Socrata /resource/ID.json URL", key="url")
    return f"{match.group(1)}/resource/{dataset}.json"


def _tuned(spec: SocrataSpec, options: Mapping[str, Any]) -> SocrataSpec:
    """``spec`` with the tunable options of config.yaml (a built-in feed's look-back, app
    token variable, page size, extra yearly datasets) applied."""
    changes = _tunables(options)
    if "datasets" in changes:
        changes["datasets"] = {**spec.datasets, **changes["datasets"]}
    return replace(spec, **changes) if changes else spec


def _headers(spec: SocrataSpec) -> tuple[tuple[str, str], ...]:
    if not spec.app_token_env:
        return ()
    token = os.environ.get(spec.app_token_env)
    if not token:
        raise ConfigError(
            f"the environment variable {spec.app_token_env} (app_token_env) is not set",
            key="app_token_env",
        )
    return (("X-App-Token", token),)


def _datasets_for(spec: SocrataSpec, context: PlanContext) -> list[str]:
    """The dataset IDs a poll reads, oldest first. A year with no known dataset (a new one
    appears each January) is a clear error until config.yaml names it: polling last year's
    instead would look healthy while missing every new call."""
    if not spec.datasets:
        return [spec.dataset]
    zone = ZoneInfo(context.zone)
    if context.backfill:
        start = (context.since or context.until).astimezone(zone).year  # type: ignore[union-attr]
        end = (context.until or context.now).astimezone(zone).year
        found = [spec.datasets[y] for y in range(start, end + 1) if y in spec.datasets]
        if not found:
            raise ConfigError(f"no dataset for the years {start}-{end} (datasets)", key="datasets")
        return found
    local = context.now.astimezone(zone)
    year = local.year
    if year not in spec.datasets:
        raise ConfigError(
            f"no dataset id known for {year}: add it to the feed in config.yaml, "
            f"datasets: {{{year}: abcd-1234}}",
            key="datasets",
        )
    wanted = [year]
    if (local - datetime(year, 1, 1, tzinfo=zone)).total_seconds() < spec.year_overlap:
        wanted.insert(0, year - 1)
    return [spec.datasets[y] for y in wanted if y in spec.datasets]


def _page_request(
    spec: SocrataSpec,
    url: str,
    dataset: str,
    where: str | None,
    offset: int,
    headers: tuple[tuple[str, str], ...],
    high: str = "",
) -> Request:
    params: list[tuple[str, str]] = []
    if spec.time_field and spec.time_field.startswith(":"):
        params.append(("$select", ":*, *"))
    if where:
        params.append(("$where", where))
    params += [
        ("$order", spec.order_by),
        ("$limit", str(spec.page_size)),
        ("$offset", str(offset)),
    ]
    number = offset // spec.page_size + 1
    return Request(
        url,
        params=tuple(params),
        headers=headers,
        meta={
            "kind": "page",
            "spec": spec,
            "dataset": dataset,
            "where": where,
            "offset": offset,
            "high": high,
            "url": url,
            "headers": headers,
        },  # fmt: skip
        label=f"{dataset} page {number}",
    )


def _plan(spec: SocrataSpec, context: PlanContext) -> list[Request]:
    spec = _tuned(spec, context.options)
    if context.url != spec.url:
        _dataset_url(context.url, "xxxx-xxxx")  # a URL override must still be a resource URL
        spec = replace(spec, url=context.url)
    headers = _headers(spec)
    datasets = _datasets_for(spec, context)
    requests: list[Request] = []
    for dataset in datasets:
        url = _dataset_url(spec.url, dataset)
        if context.backfill:
            if not spec.time_field:
                raise ConfigError("a backfill needs a time_field to query a range", key="mode")
            zone = ZoneInfo(context.zone)
            parts = []
            if context.since is not None:
                parts.append(f"{spec.time_field} >= '{_literal(spec, context.since, zone)}'")
            if context.until is not None:
                parts.append(f"{spec.time_field} < '{_literal(spec, context.until, zone)}'")
            requests.append(_page_request(spec, url, dataset, " AND ".join(parts), 0, headers))
        elif spec.mode == "snapshot":
            requests.append(_page_request(spec, url, dataset, None, 0, headers))
        else:
            requests.append(_probe_request(spec, url, dataset, context, headers))
    return requests


def _literal(spec: SocrataSpec, moment: datetime, zone: ZoneInfo) -> str:
    """A SoQL literal for an aware ``moment``: UTC for system fields, else local (floating)."""
    if spec.time_field and spec.time_field.startswith(":"):
        return _soql_time(moment.astimezone(UTC).replace(tzinfo=None))
    return _soql_time(moment.astimezone(zone).replace(tzinfo=None))


def _window(spec: SocrataSpec, dataset: str, context: PlanContext) -> str:
    """The ``$where`` of an incremental poll: ``time_field >= watermark - look_back``; with
    no watermark yet, the last ``look_back`` (at least a day) before now (older history is
    ``backfill``'s job)."""
    stored = context.state.get(f"watermark:{dataset}")
    zone = ZoneInfo(context.zone)
    system = bool(spec.time_field and spec.time_field.startswith(":"))
    start: datetime | None = None
    if stored:
        start = floating_time(stored, "UTC" if system else context.zone)
    if start is None:  # the first poll: the last look_back, and at least a day
        now = context.now.astimezone(UTC if system else zone).replace(tzinfo=None)
        first = now - timedelta(seconds=max(spec.look_back, FIRST_WINDOW))
        return f"{spec.time_field} >= '{_soql_time(first)}'"
    start -= timedelta(seconds=spec.look_back)
    return f"{spec.time_field} >= '{_soql_time(start)}'"


def _probe_request(
    spec: SocrataSpec,
    url: str,
    dataset: str,
    context: PlanContext,
    headers: tuple[tuple[str, str], ...],
) -> Request:
    """One small aggregate: how many rows and when the dataset last changed."""
    return Request(
        url,
        params=(("$select", "count(*) AS n, max(:updated_at) AS updated_at"),),
        headers=headers,
        meta={
            "kind": "probe",
            "spec": spec,
            "dataset": dataset,
            "url": url,
            "headers": headers,
            "stored": context.state.get(f"probe:{dataset}"),
            "where": _window(spec, dataset, context),
        },  # fmt: skip
        label=f"{dataset} probe",
    )


# --- parse -----------------------------------------------------------------------------------


def _records(page: Page) -> list[Any]:
    data = page.json()
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and (data.get("error") or "code" in data or "message" in data):
        message = " ".join(str(data.get("message") or data.get("code") or "").split())[:300]
        raise LayoutError(f"Socrata answered an error: {message or 'no message'}")
    raise LayoutError(f"not a SODA answer: a JSON {type(data).__name__}, not an array")


_TEXT_FIELDS = (
    "incident_id", "received", "call_type", "priority", "status", "disposition", "address",
    "district", "beat", "units",
)  # fmt: skip


#: Bound of a row builder's memo of extra columns per key set (a dataset's rows share a few).
_KEY_SETS = 256


def _mapped_row(spec: SocrataSpec) -> RowHook:
    """The row builder of a ``fields`` mapping: a function generated once per mapping (on the
    ingest hot path), with each mapped column read by name and no loop over the fields.
    Plain text values skip :func:`text`, a GeoJSON point of floats skips :func:`point`, and
    the columns that may go to ``extra`` are worked out once per set of keys, since a
    dataset's rows share a few. Same rows as ``text``/``point``/``extras`` give."""
    cells, present, scope = _cells(spec)
    fields = ["incident_id", *_TEXT_FIELDS[1:], "latitude", "longitude", "extra"]
    args = [present.get(name, '""' if name == "incident_id" else "None") for name in fields]
    lines = ["def build(record):", *(f"    {line}" for line in cells)]
    lines.append(f"    return RawRow({', '.join(args)})")
    scope = {**scope, "RawRow": RawRow}
    exec(compile("\n".join(lines), f"<socrata row builder of {spec.url}>", "exec"), scope)  # noqa: S102
    return scope["build"]  # type: ignore[no-any-return]


def _cells(
    spec: SocrataSpec, stored: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """The code of :func:`_mapped_row`'s builder that reads one ``record`` (a dict) into
    variables: its lines; the :class:`RawRow` field each variable holds (a field not there
    is the default: None, and ``""`` for the ID); and the names the lines use.

    With ``stored`` (a dict, filled here: :func:`_page_normalizer`), the received time, the
    text fields and the address go straight from their cells to stored values, as
    ``page_normalizer``'s ``stored=`` takes them (see :func:`_stored_cell`), and the ID's
    text is left for the normalizer's own check to clean (it strips)."""
    fields = dict(spec.fields)
    location = fields.pop("location", None)
    lines = ["get = record.get"]
    present: dict[str, str] = {}
    names: dict[str, Any] = {}
    for i, name in enumerate(_TEXT_FIELDS):
        column = fields.get(name)
        if column is None:
            continue
        names[f"c{i}"] = column  # (a name, never pasted into the code)
        if stored is not None and name != "units":
            lines += _stored_cell(i, name, stored)
            if i == 0:
                present[name] = "v0"
            continue
        lines += [
            f"v{i} = get(c{i})",
            f"if v{i} is not None:",
            f"    v{i} = (v{i}.strip() or None) if v{i}.__class__ is str else text(v{i})",
        ]
        if i == 0:  # the ID is never None
            lines += ["if v0 is None:", '    v0 = ""']
        present[name] = f"v{i}"
    lines.append("lat = lon = None")
    if location:
        names["location"] = location
        lines += [
            "where = get(location)",
            'coords = where.get("coordinates") if where.__class__ is dict else None',
            "if (",
            "    coords.__class__ is list",
            "    and len(coords) == 2",
            "    and coords[0].__class__ is float",
            "    and coords[1].__class__ is float",
            "):  # GeoJSON: point()'s common case",
            "    lon, lat = coords",
            "    if lat == 0 and lon == 0:",
            "        lat = lon = None",
            "elif where is not None:",
            "    lat, lon = point(where)",
        ]
    names["lat_column"], names["lon_column"] = (
        fields.get("latitude", ""),
        fields.get("longitude", ""),
    )
    lines += ["if lat is None:", "    lat, lon = get(lat_column), get(lon_column)"]
    present["latitude"], present["longitude"] = "lat", "lon"
    if spec.extra is not None:
        lines.append("extra = extras(record, used, keep)")
        if stored is not None:  # a dict of its own per row already: no copy to encode it
            stored["extra"] = "extra_json(extra) if extra else None"
    elif stored is not None:  # as below, straight to the stored JSON; none without columns
        lines += [
            "keys = tuple(record)",
            "columns = candidates.get(keys)",
            "if columns is None:",
            "    columns = extra_columns(keys)",
            "extra = None",
            "if columns:",
            "    extra = {}",
            "    for k in columns:",
            "        v = record[k]",
            '        if v is not None and v != "" and not (isinstance(v, dict) and is_geo(v)):',
            "            extra[k] = v",
            "    extra = extra_json(extra) if extra else None",
        ]
        stored["extra"] = "extra"
    else:  # extras(record, used), inline: it runs once per row
        lines += [
            "keys = tuple(record)",
            "columns = candidates.get(keys)",
            "if columns is None:",
            "    columns = extra_columns(keys)",
            "extra = {}",
            "for k in columns:",
            "    v = record[k]",
            '    if v is not None and v != "" and not (isinstance(v, dict) and is_geo(v)):',
            "        extra[k] = v",
        ]
    if stored is None:
        present["extra"] = "extra"
    used = set(spec.fields.values())
    # Key set -> the columns of a row with those keys that may go to extra (in row order).
    candidates: dict[tuple[str, ...], tuple[str, ...]] = {}

    def extra_columns(keys: tuple[str, ...]) -> tuple[str, ...]:
        if len(candidates) >= _KEY_SETS:
            candidates.clear()
        columns = candidates[keys] = tuple(
            k for k in keys if k not in used and not k.startswith(":")
        )
        return columns

    scope = {
        **names, "text": text, "point": point, "extras": extras, "is_geo": _is_geo,
        "used": used, "keep": spec.extra, "candidates": candidates,
        "extra_columns": extra_columns,
    }  # fmt: skip
    return lines, present, scope


def _stored_cell(i: int, name: str, stored: dict[str, str]) -> list[str]:
    """The lines that read the cell of field ``name`` (number ``i`` of :data:`_TEXT_FIELDS`,
    its column ``c{i}``) to what the archive stores, with no stripping first (the cleaning
    strips, and memos take the cell as it comes): ``stored`` gains the variables, by column.

    - the ID: text as it is (the normalizer's check cleans what is not clean), else
      :func:`text` of it (``""`` for none);
    - the received time: ``to_utc``'s fast path of Socrata's floating
      ``YYYY-MM-DDTHH:MM:SS.000`` inline (the hour's UTC prefix from the zone's memo, then
      the minutes and seconds), else ``to_utc`` of the stripped text as before;
    - a text field: text through the memo of cleaned texts; anything else :func:`text`
      first (as the row builder does);
    - the address: text through the feed's memo of places, giving address and city at once.
    """
    read = f"v{i} = get(c{i})"
    v = f"v{i}"
    if i == 0:
        return [read, f"if {v}.__class__ is not str:", f'    {v} = text({v}) or ""']
    if name == "received":
        stored["received"] = v
        return [
            read,
            "if (",
            f"    {v}.__class__ is str",
            f'    and {v}[19:] == ".000"',
            f"    and (tail := tails.get({v}[13:19])) is not None",
            f"    and (head := iso_heads[{v}[:13]]) is not None",
            "):",
            f"    {v} = head + tail",
            "else:",
            f"    {v} = received_utc(text({v}), timezone)",
        ]
    if name == "address":
        stored["address"], stored["city"] = "address", "city"
        return [
            read,
            f"if {v}.__class__ is not str:",
            f"    {v} = text({v})",
            f"if {v} is None:",
            "    address, city = None, default_city",
            "else:",
            f"    address, city = places[{v}]",
        ]
    stored[name] = v
    return [
        read,
        f"if {v}.__class__ is str:",
        f"    {v} = texts[{v}]",
        f"elif {v} is not None:",
        f"    {v} = texts[text({v})]",
    ]


def _page_normalizer(spec: SocrataSpec) -> PageNormalizer:
    """:func:`_mapped_row`'s reading of each record and the normalization of the rows, in
    one generated pass (see :func:`~dispatchwatch.normalize.rows.page_normalizer`), its
    cells read straight to stored values (:func:`_stored_cell`)."""
    from ..normalize.rows import _TEXTS, page_normalizer
    from ..normalize.time import _ISO_HEADS, _TAILS, _hour_memo, _iso_hour

    stored: dict[str, str] = {}
    cells, present, scope = _cells(spec, stored)
    scope = {
        **scope, "texts": _TEXTS, "tails": _TAILS, "iso_heads_of": partial(
            _hour_memo, _ISO_HEADS, read=_iso_hour
        ),
    }  # fmt: skip
    return page_normalizer(
        cells,
        present,
        scope,
        f"<socrata page normalizer of {spec.url}>",
        before=["iso_heads = iso_heads_of(timezone)"],
        stored=stored,
    )


def _stored(
    spec: SocrataSpec, normalizers: list[PageNormalizer], page: Page, **settings: Any
) -> list[list[Any]] | None:
    """The ``stored`` attribute of a mapped scraper's ``parse``: the stored columns of the
    incidents of a page that stands alone (a saved page: no request), as ``parse`` and
    :func:`~dispatchwatch.normalize.rows.normalize_rows` with ``settings`` give them; None
    for any other page, or when the page needs the general way (an incident on several
    rows). Raises what ``parse`` raises and may raise where it does not (the general way
    then says what is wrong)."""
    from ..normalize.rows import stored_columns

    if page.meta:
        return None
    records = _records(page)
    if not records:
        return None
    _check_columns(spec, records)
    if not normalizers:  # compiled on first use: most feeds of a run never need one
        normalizers.append(_page_normalizer(spec))
    return stored_columns(normalizers[0], records, **settings)


def _check_columns(spec: SocrataSpec, records: list[Any]) -> None:
    """A page whose rows lack the mapped ID (or time) column entirely is a changed dataset,
    not a page of calls without IDs: fail naming the column."""
    if spec.row is not None or not records:
        return
    for name in ("incident_id", "received"):
        column = spec.fields.get(name)
        if column and not any(isinstance(r, dict) and column in r for r in records):
            raise LayoutError(
                f"the dataset's rows have no column {column!r} (fields.{name}); "
                "its schema may have changed"
            )


def _parse(spec: SocrataSpec, build: RowHook, page: Page) -> ParseResult:
    meta = page.meta
    if meta.get("kind") == "probe":
        return _parse_probe(page, meta)
    records = _records(page)
    spec = meta.get("spec", spec)
    _check_columns(spec, records)
    rows: list[RawRow] = []
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise LayoutError(f"row {number} of the page is not a JSON object")
        row = build(record)
        if row is not None:
            rows.append(row)
    if not meta:  # a saved response: it stands alone
        return ParseResult(rows)
    follow: list[Request] = []
    high = meta.get("high", "")
    if spec.time_field and spec.mode == "incremental":
        zone = "UTC" if spec.time_field.startswith(":") else spec.zone
        times = (floating_time(r.get(spec.time_field), zone) for r in records)
        latest = max((t for t in times if t is not None), default=None)
        if latest is not None:
            high = max(high, _soql_time(latest))
    if len(records) >= spec.page_size:  # a full page: there may be more
        follow.append(
            _page_request(
                spec,
                meta["url"],
                meta["dataset"],
                meta.get("where"),
                meta["offset"] + spec.page_size,
                meta.get("headers", ()),
                high,
            )  # fmt: skip
        )
    state: dict[str, str] = {}
    if high and spec.mode == "incremental":
        state[f"watermark:{meta['dataset']}"] = high
    return ParseResult(rows, follow=follow, state=state)


def _parse_probe(page: Page, meta: Mapping[str, Any]) -> ParseResult:
    records = _records(page)
    if len(records) != 1 or not isinstance(records[0], dict):
        raise LayoutError("the probe (count and max(:updated_at)) did not answer one row")
    answer = records[0]
    signature = f"{text(answer.get('n')) or '0'}|{text(answer.get('updated_at')) or ''}"
    if meta.get("stored") == signature:
        return ParseResult([], unchanged=True)
    spec: SocrataSpec = meta["spec"]
    first = _page_request(
        spec, meta["url"], meta["dataset"], meta["where"], 0, meta.get("headers", ())
    )
    return ParseResult([], follow=[first], state={f"probe:{meta['dataset']}": signature})


# --- building scrapers -----------------------------------------------------------------------


def scraper(
    *,
    slug: str,
    name: str,
    agency: str,
    city: str,
    url: str,
    timezone: str,
    mode: str | None = None,
    time_field: str | None = None,
    look_back: float | str | None = None,
    order: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    app_token_env: str | None = None,
    fields: Mapping[str, str] | None = None,
    extra: Sequence[str] | None = None,
    row: RowHook | None = None,
    datasets: Mapping[int, str] | None = None,
    year_overlap: float | str | None = None,
    interval: str = "5m",
    builtin: bool = True,
    **details: Any,
) -> Scraper:
    """A :class:`Scraper` for a Socrata dataset (see the module docstring for the modes).

    ``url`` is ``https://DOMAIN/resource/ID.json`` (for yearly feeds, the current year's);
    ``fields`` maps incident fields (:data:`FIELDS`) to SODA columns, or ``row`` builds a
    :class:`RawRow` from one record (a city's own logic); ``look_back`` and ``year_overlap``
    are seconds or durations (``48h``, ``7d``). ``details`` go to :class:`Scraper`
    (``homepage``, ``license``, ``source_notes``, ``state``, ``version``...).

    With ``builtin`` (a module in ``scrapers/``), config.yaml may still set the tunable
    options over the feed (``look_back``, ``page_size``, ``app_token_env``, ``datasets``,
    ``year_overlap``, ``order``). Raises :class:`ConfigError` for invalid settings.
    """
    options: dict[str, Any] = {
        "mode": mode, "time_field": time_field, "look_back": look_back, "order": order,
        "page_size": page_size, "app_token_env": app_token_env, "fields": fields,
        "extra": extra, "datasets": datasets, "year_overlap": year_overlap,
    }  # fmt: skip
    spec = _spec(url, timezone, {k: v for k, v in options.items() if v is not None}, row)
    build = spec.row or _mapped_row(spec)

    def parse(page: Page) -> ParseResult:
        return _parse(spec, build, page)

    if spec.row is None:
        # A saved page straight to the archive's columns (ingest): see pipeline.stored_page.
        parse.stored = partial(_stored, spec, [])  # type: ignore[attr-defined]
    return Scraper(
        slug=slug,
        name=name,
        agency=agency,
        city=city,
        url=url,
        timezone=timezone,
        interval=interval,
        snapshot=spec.mode == "snapshot",
        parse=parse,
        plan=lambda context: _plan(spec, context),
        adapter="socrata",
        options={"_builtin": slug} if builtin else {},
        **details,
    )


#: Keys config.yaml may set over a built-in Socrata feed (the rest is its module's).
TUNABLE = ("look_back", "page_size", "app_token_env", "datasets", "year_overlap", "order")
#: Every key of a config-only Socrata feed (besides the engine's own: interval, enabled...).
CONFIG_KEYS = (
    "url", "domain", "dataset", "timezone", "interval", "mode", "time_field", "look_back",
    "order", "page_size", "app_token_env", "fields", "extra", "datasets", "year_overlap",
    "name", "agency", "city",
)  # fmt: skip


def _tunables(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "look_back" in options:
        out["look_back"] = opts.duration("look_back", options["look_back"])
    if "year_overlap" in options:
        out["year_overlap"] = opts.duration("year_overlap", options["year_overlap"])
    if "page_size" in options:
        out["page_size"] = opts.page_size(options["page_size"], MAX_PAGE_SIZE)
    if "app_token_env" in options:
        env = options["app_token_env"]
        if not isinstance(env, str) or not _ENV_NAME.match(env):
            raise ConfigError(
                "app_token_env must name an environment variable (the token itself never goes "
                "in config.yaml)",
                key="app_token_env",
            )
        out["app_token_env"] = env
    if "order" in options:
        out["order"] = opts.column(
            "order", options["order"], _ORDER, "order must be columns like 'time_field, :id'"
        )
    if "datasets" in options:
        datasets = options["datasets"]
        if not isinstance(datasets, Mapping) or not datasets:
            raise ConfigError("datasets must map years to dataset ids", key="datasets")
        checked = {}
        for year, dataset in datasets.items():
            if isinstance(year, bool) or not isinstance(year, int) or not 1900 < year < 3000:
                raise ConfigError(f"datasets: {year!r} is not a year", key="datasets")
            if not isinstance(dataset, str) or not _DATASET_ID.match(dataset):
                raise ConfigError(
                    f"datasets: {dataset!r} is not a Socrata dataset id (like abcd-1234)",
                    key="datasets",
                )
            checked[year] = dataset
        out["datasets"] = checked
    return out


def _spec(url: str, zone: str, options: Mapping[str, Any], row: RowHook | None) -> SocrataSpec:
    if not isinstance(url, str) or not _RESOURCE.match(url):
        raise ConfigError(
            f"url must be a Socrata resource URL like https://DOMAIN/resource/abcd-1234.json, "
            f"not {url!r}",
            key="url",
        )
    opts.zone(zone)
    values: dict[str, Any] = _tunables(options)
    time_field = options.get("time_field")
    if time_field is not None:
        opts.column(
            "time_field", time_field, _COLUMN, "time_field must be a column name (or :updated_at)"
        )
    mode = opts.mode(options.get("mode", "incremental" if time_field else "snapshot"))
    if mode == "incremental" and not time_field:
        raise ConfigError("mode incremental needs a time_field (or :updated_at)", key="time_field")
    fields = options.get("fields")
    if row is None:
        fields = opts.field_mapping(
            fields,
            FIELDS,
            _COLUMN,
            "column",
            "dataset's columns (at least incident_id and received)",
        )
        for required in ("incident_id", "received"):
            if required not in fields:
                raise ConfigError(f"fields needs {required}", key="fields")
        values["fields"] = fields
    if options.get("extra") is not None:
        values["extra"] = opts.columns("extra", options["extra"], _COLUMN, "column")
    spec = SocrataSpec(url=url, zone=zone, mode=mode, time_field=time_field, row=row, **values)
    if spec.datasets and spec.dataset not in spec.datasets.values():
        raise ConfigError("url's dataset id must be one of datasets", key="datasets")
    return spec


def from_config(slug: str, options: Mapping[str, Any]) -> Scraper:
    """The scraper of a config-only Socrata feed (``adapter: socrata`` in config.yaml), or
    the check of the options set over a built-in one. Raises :class:`ConfigError` naming the
    key."""
    if "_builtin" in options:
        from ..plugins import get_scraper

        opts.check_builtin_keys(options, TUNABLE)
        _tunables(options)
        if "url" in options:
            _dataset_url(options["url"], "xxxx-xxxx")
        return get_scraper(options["_builtin"])
    opts.check_known_keys(options, CONFIG_KEYS, "socrata")
    url = options.get("url")
    if url is None:
        domain, dataset = options.get("domain"), options.get("dataset")
        if not domain or not dataset:
            raise ConfigError("a Socrata feed needs url, or domain and dataset", key="url")
        if not isinstance(dataset, str) or not _DATASET_ID.match(dataset):
            raise ConfigError(f"dataset {dataset!r} is not a dataset id (abcd-1234)", key="dataset")
        if not isinstance(domain, str) or not re.match(r"^[A-Za-z0-9.-]+(:[0-9]+)?$", domain):
            raise ConfigError(f"domain {domain!r} is not a host name", key="domain")
        url = f"https://{domain}/resource/{dataset}.json"
    elif "domain" in options or "dataset" in options:
        raise ConfigError("give url, or domain and dataset, not both", key="url")
    zone = options.get("timezone")
    if not zone:
        raise ConfigError("a Socrata feed needs its timezone (IANA, like America/New_York)",
                          key="timezone")  # fmt: skip
    opts.texts(options)
    spec_options = {
        k: v for k, v in options.items()
        if k not in ("url", "domain", "dataset", "timezone", "interval", "name", "agency", "city")
    }  # fmt: skip
    interval = options.get("interval", "5m")
    return scraper(
        slug=slug,
        name=options.get("name") or slug,
        agency=options.get("agency", ""),
        city=options.get("city", ""),
        url=url,
        timezone=zone,
        interval=opts.interval_text(interval),
        builtin=False,
        **spec_options,
    )
