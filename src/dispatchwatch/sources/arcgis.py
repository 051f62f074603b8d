"""The ArcGIS REST adapter: FeatureServer/MapServer layer ``…/query``, paged, snapshot or
incremental, with a declared identity rule for feeds that publish no incident number.

A feed on ArcGIS is an :class:`ArcGISSpec` (where the layer is, how to page it, how a feature
maps to an incident) turned into a :class:`~dispatchwatch.scraper.Scraper` whose ``plan`` and
``parse`` are pure functions; the engine fetches. Built-in feeds call :func:`scraper` from a
small module in ``scrapers/``; a user's own city is a block in config.yaml read by
:func:`from_config` (the keys are documented in the README, "ArcGIS options").

How a poll goes:

- Every request is ``LAYER/query?where=…&outFields=*&returnGeometry=…&outSR=4326&f=json``
  with ``orderByFields`` when the feed sets ``order`` (else the server's object-ID order).
- **Paging** (``paging: true``, the default): ``resultOffset``/``resultRecordCount``
  (``page_size``); while an answer says ``exceededTransferLimit: true`` the next page is
  asked for at the offset of the features read so far (a server may cap a page below
  ``page_size``). The list is whole only after the page without the flag. With ``paging:
  false`` one request is made, and an answer that still exceeds the server's limit is a
  ``partial`` poll (the rest cannot be read without paging).
- **snapshot** mode: the layer is the list of current calls; incidents are marked gone only
  when every page was read (the engine's rule).
- **incremental** mode: ``where time_field >= timestamp 'YYYY-MM-DD HH:MM:SS'`` (UTC), the
  stored watermark minus ``look_back``; the poll stores the greatest time it read as the new
  watermark (only when every page was read, in the same transaction as the rows).
- **backfill** (``PlanContext.since/until``): ``since <= time_field < until``, no watermark.

Values: epoch-millisecond times are passed on as ``int`` (UTC; the normalizer converts them);
strings are stripped of the padding some servers add up to the field length; coordinates come
from ``fields.latitude``/``fields.longitude`` attributes, else from the point geometry
(``x``/``y`` in longitude/latitude, asked for with ``outSR=4326``).

**Identity rule** (``identity: [field, ...]``): for a layer with no incident number, the
incident ID is ``hash-`` and the first 16 hex digits of the SHA-256 of the listed fields'
normalized values (whitespace collapsed, upper case; the address field at block level, so the
key never encodes a house number). Its limits (also in the README):

- a listed field that changes while the call is listed makes it look like one incident gone
  and a new one (so list only fields that do not change: never the type or the units);
- two features with identical identity fields in one poll get ``-2``, ``-3``... in the order
  the server lists them (set ``order`` to make that order stable); if that order swaps
  between polls, so do their keys.

An ArcGIS error answer (``{"error": {"code": 400, "message": ...}}``, often with HTTP 200) is
a :class:`~dispatchwatch.errors.LayoutError` quoting the server's message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import ConfigError, LayoutError
from ..normalize import block_address
from ..scraper import Page, ParseResult, PlanContext, RawRow, Request, Scraper
from . import options as opts
from .socrata import text

__all__ = [
    "FIELDS",
    "ArcGISSpec",
    "coordinate",
    "epoch_ms",
    "from_config",
    "identity_key",
    "scraper",
    "text",
]

#: The incident fields a ``fields`` mapping may fill.
FIELDS = opts.INCIDENT_FIELDS
MODES = opts.MODES
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 32000
IDENTITY_PREFIX = "hash-"
_LAYER = re.compile(r"^(https?://[^?#]+/(?:FeatureServer|MapServer)/[0-9]+)(?:/query)?/?$", re.I)
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_ORDER_TERM = r"[A-Za-z_][A-Za-z0-9_.]*(?:\s+(?:ASC|DESC))?"
_ORDER = re.compile(rf"^\s*{_ORDER_TERM}(?:\s*,\s*{_ORDER_TERM})*\s*$", re.I)
#: Attributes never kept in ``extra``: object and global IDs are per-publish row numbers (a
#: new version on every republish), and unmapped coordinates would store exact locations.
_NOT_EXTRA_TYPES = frozenset({"esriFieldTypeOID", "esriFieldTypeGlobalID", "esriFieldTypeGeometry"})
_COORDINATE_NAMES = re.compile(
    r"^(lat|latitude|lon|lng|long|longitude|x|y|point_?x|point_?y|x_?coord|y_?coord|"
    r"shape(__\w+)?|geometry)$",
    re.I,
)

#: A city-specific row builder: (attributes, geometry or None) -> a raw row (None skips it).
#: With an identity rule the adapter sets ``incident_id`` afterwards.
RowHook = Callable[[Mapping[str, Any], Mapping[str, Any] | None], "RawRow | None"]


@dataclass(frozen=True)
class ArcGISSpec:
    """Everything the adapter needs to plan and parse one ArcGIS layer.

    ``url`` is the layer (``https://HOST/.../FeatureServer/0``; ``/query`` is added).
    ``look_back`` is seconds. ``fields`` maps incident fields to attribute names; ``row``
    replaces the mapping with a function. ``identity`` lists the attributes whose values make
    the incident ID (instead of ``fields.incident_id``). ``extra`` lists the attributes kept
    in ``extra`` (None: every attribute not mapped, except IDs and coordinates); ``drop``
    names attributes never stored at all.
    """

    url: str
    zone: str
    mode: str = "snapshot"
    time_field: str | None = None
    look_back: float = 0.0
    where: str = "1=1"
    order: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    paging: bool = True
    fields: Mapping[str, str] = field(default_factory=dict)
    identity: tuple[str, ...] = ()
    extra: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    row: RowHook | None = None

    @property
    def query_url(self) -> str:
        match = _LAYER.match(self.url)
        if match is None:
            raise ConfigError(
                f"url must be an ArcGIS layer like https://HOST/.../FeatureServer/0, "
                f"not {self.url!r}",
                key="url",
            )
        return f"{match.group(1)}/query"

    @property
    def geometry(self) -> bool:
        """Whether to ask for geometry: only when no coordinate attributes are mapped."""
        return not ("latitude" in self.fields and "longitude" in self.fields)


# --- identity --------------------------------------------------------------------------------


def _identity_value(value: Any, is_address: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    cleaned = " ".join(str(value).split()).upper()
    if is_address and cleaned:
        cleaned = block_address(cleaned) or cleaned
    return cleaned


def identity_key(values: Sequence[Any], address_index: int | None = None) -> str:
    """The stable incident ID of a feature from its identity fields' values, in order:
    ``hash-`` + 16 hex digits of SHA-256. Whitespace is collapsed and text upper-cased;
    the value at ``address_index`` is reduced to its hundred block first (the key must not
    encode a house number the archive does not keep)."""
    joined = "\x1f".join(
        _identity_value(value, index == address_index) for index, value in enumerate(values)
    )
    return IDENTITY_PREFIX + hashlib.sha256(joined.encode()).hexdigest()[:16]


# --- plan ------------------------------------------------------------------------------------


def _timestamp(moment: datetime) -> str:
    """An aware datetime as an ArcGIS standardized-query literal (UTC)."""
    return "timestamp '" + moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "'"


def _page_request(
    spec: ArcGISSpec,
    where: str,
    offset: int,
    seen: Mapping[str, list[str]],
    high: str | None = None,
    number: int = 1,
) -> Request:
    """One page of the query. ``seen`` (identity key -> fingerprints of the features read
    so far in this poll) and ``high`` (the greatest time so far) ride along in ``meta``."""
    params: list[tuple[str, str]] = [
        ("where", where),
        ("outFields", "*"),
        ("returnGeometry", "true" if spec.geometry else "false"),
        ("outSR", "4326"),
    ]
    if spec.order:
        params.append(("orderByFields", spec.order))
    if spec.paging:
        params += [("resultOffset", str(offset)), ("resultRecordCount", str(spec.page_size))]
    params.append(("f", "json"))
    return Request(
        spec.query_url,
        params=tuple(params),
        meta={
            "spec": spec,
            "where": where,
            "offset": offset,
            "seen": seen,
            "high": high,
            "number": number,
        },  # fmt: skip
        label=f"page {number}" if spec.paging else "query",
    )


def _where(spec: ArcGISSpec, context: PlanContext) -> str:
    parts = [] if spec.where.strip() == "1=1" else [f"({spec.where})"]
    if context.backfill:
        if not spec.time_field:
            raise ConfigError("a backfill needs a time_field to query a range", key="time_field")
        if context.since is not None:
            parts.append(f"{spec.time_field} >= {_timestamp(context.since)}")
        if context.until is not None:
            parts.append(f"{spec.time_field} < {_timestamp(context.until)}")
    elif spec.mode == "incremental":
        assert spec.time_field
        start = _read_watermark(context.state.get("watermark")) or context.now
        start -= timedelta(seconds=spec.look_back)
        parts.append(f"{spec.time_field} >= {_timestamp(start)}")
    return " AND ".join(parts) or "1=1"


def _read_watermark(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _plan(spec: ArcGISSpec, context: PlanContext) -> list[Request]:
    spec = _tuned(spec, context.options)
    if context.url != spec.url:
        spec = replace(spec, url=context.url)
        spec.query_url  # noqa: B018 - a URL override must still be a layer URL
    return [_page_request(spec, _where(spec, context), 0, {})]


# --- parse -----------------------------------------------------------------------------------


def _answer(page: Page) -> dict[str, Any]:
    data = page.json()
    if isinstance(data, dict) and "error" in data:
        error = data["error"]
        if isinstance(error, dict):
            code = error.get("code")
            message = " ".join(str(error.get("message") or "").split())
            details = error.get("details")
            if isinstance(details, list) and details:
                message += " (" + "; ".join(" ".join(str(d).split()) for d in details[:3]) + ")"
        else:
            code, message = None, " ".join(str(error).split())
        prefix = f"ArcGIS answered error {code}" if code is not None else "ArcGIS answered an error"
        raise LayoutError(f"{prefix}: {message[:300] or 'no message'}")
    if not isinstance(data, dict) or not isinstance(data.get("features"), list):
        what = f"a JSON {type(data).__name__}" if not isinstance(data, dict) else "no features"
        raise LayoutError(f"not an ArcGIS query answer ({what})")
    return data


def _attribute(attributes: Mapping[str, Any], name: str | None) -> Any:
    return attributes.get(name) if name else None


def epoch_ms(value: Any) -> str | int | None:
    """An ArcGIS date (epoch milliseconds, UTC) as an ``int`` (what :class:`RawRow` takes for
    ``received``); text as stripped text (read in the feed's zone); None when missing."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value == value and abs(value) != float("inf") else None
    if isinstance(value, int):
        return value
    return text(value)


def coordinate(value: Any) -> float | str | None:
    """A coordinate attribute or geometry ``x``/``y`` for :class:`RawRow` (the normalizer
    range-checks and rounds it; 0 and junk become None there)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return text(value)


def _extra(
    spec: ArcGISSpec, attributes: Mapping[str, Any], used: set[str], hidden: set[str]
) -> dict[str, Any]:
    if spec.extra is not None:
        names: Sequence[str] = spec.extra
    else:
        names = [
            k for k in attributes
            if k not in used and k not in hidden and not _COORDINATE_NAMES.match(k)
        ]  # fmt: skip
    out: dict[str, Any] = {}
    for name in names:
        if name in spec.drop or name not in attributes:
            continue
        value = attributes[name]
        if isinstance(value, str):
            value = text(value)
        if value is not None:
            out[name] = value
    return out


def _mapped_row(spec: ArcGISSpec, hidden: set[str]) -> RowHook:
    fields = spec.fields
    used = set(fields.values())

    def build(attributes: Mapping[str, Any], geometry: Mapping[str, Any] | None) -> RawRow:
        lat = coordinate(_attribute(attributes, fields.get("latitude")))
        lon = coordinate(_attribute(attributes, fields.get("longitude")))
        if (lat is None or lon is None) and geometry:
            lat, lon = coordinate(geometry.get("y")), coordinate(geometry.get("x"))
        incident_id = _attribute(attributes, fields.get("incident_id"))
        return RawRow(
            incident_id=text(incident_id) or "",
            received=epoch_ms(_attribute(attributes, fields.get("received"))),
            call_type=text(_attribute(attributes, fields.get("call_type"))),
            priority=text(_attribute(attributes, fields.get("priority"))),
            status=text(_attribute(attributes, fields.get("status"))),
            disposition=text(_attribute(attributes, fields.get("disposition"))),
            address=text(_attribute(attributes, fields.get("address"))),
            district=text(_attribute(attributes, fields.get("district"))),
            beat=text(_attribute(attributes, fields.get("beat"))),
            units=text(_attribute(attributes, fields.get("units"))),
            latitude=lat,
            longitude=lon,
            extra=_extra(spec, attributes, used, hidden),
        )

    return build


def _hidden(answer: Mapping[str, Any]) -> set[str]:
    """Attributes of the answer that are row numbers or geometry, never ``extra``."""
    hidden = {str(answer["objectIdFieldName"])} if answer.get("objectIdFieldName") else set()
    for spec in answer.get("fields") or ():
        if isinstance(spec, dict) and spec.get("type") in _NOT_EXTRA_TYPES:
            hidden.add(str(spec.get("name")))
    return hidden


def _check_columns(spec: ArcGISSpec, answer: Mapping[str, Any]) -> None:
    """An answer whose ``fields`` lack a mapped attribute is a changed layer, not features
    without values: fail naming the attribute."""
    declared = answer.get("fields")
    if not isinstance(declared, list) or not declared:
        return
    names = {str(f.get("name")) for f in declared if isinstance(f, dict)}
    wanted = [(f"fields.{k}", v) for k, v in spec.fields.items()]
    wanted += [("identity", name) for name in spec.identity]
    if spec.time_field:
        wanted.append(("time_field", spec.time_field))
    missing = [f"{name!r} ({key})" for key, name in wanted if name not in names]
    if missing:
        raise LayoutError(
            f"the layer has no attribute {', '.join(missing)}; its schema may have changed"
        )


def _parse(spec: ArcGISSpec, page: Page) -> ParseResult:
    meta = page.meta
    spec = meta.get("spec", spec)
    answer = _answer(page)
    _check_columns(spec, answer)
    build = spec.row or _mapped_row(spec, _hidden(answer))
    address_index = (
        spec.identity.index(spec.fields["address"])
        if spec.fields.get("address") in spec.identity
        else None
    )
    seen: dict[str, list[str]] = {k: list(v) for k, v in meta.get("seen", {}).items()}
    rows: list[RawRow] = []
    latest: int | None = None
    features = answer["features"]
    for number, feature in enumerate(features, 1):
        if not isinstance(feature, dict) or not isinstance(feature.get("attributes"), dict):
            raise LayoutError(f"feature {number} of the answer has no attributes")
        attributes = feature["attributes"]
        geometry = feature.get("geometry") if isinstance(feature.get("geometry"), dict) else None
        row = build(attributes, geometry)
        if row is None:
            continue
        if spec.identity:
            key = identity_key([attributes.get(n) for n in spec.identity], address_index)
            prints = seen.setdefault(key, [])
            fingerprint = _fingerprint(attributes)
            if fingerprint in prints:
                # The very same feature again (identical in every attribute): a page that
                # shifted under the pager, or a duplicate row. One incident, not two.
                continue
            prints.append(fingerprint)
            row.incident_id = key if len(prints) == 1 else f"{key}-{len(prints)}"
        rows.append(row)
        if spec.time_field:
            moment = epoch_ms(attributes.get(spec.time_field))
            if isinstance(moment, int) and (latest is None or moment > latest):
                latest = moment
    more = answer.get("exceededTransferLimit") is True
    state: dict[str, str] = {}
    high = meta.get("high")
    if latest is not None and spec.mode == "incremental":
        high = state["watermark"] = _epoch_text(latest, high)
    if not meta:  # a saved answer: it stands alone
        if more:
            return ParseResult(
                rows,
                complete=False,
                reason="the answer says more features follow (exceededTransferLimit); "
                "it is one page, not the whole list",
            )
        return ParseResult(rows)
    if more and not spec.paging:
        return ParseResult(
            rows,
            complete=False,
            reason=f"the server capped the answer at {len(features)} features "
            "(exceededTransferLimit) and paging is off for this feed",
        )
    if more and not features:
        return ParseResult(
            rows, complete=False, reason="the server says more features follow but sent none"
        )
    follow = []
    if more:
        follow.append(
            _page_request(
                spec,
                meta["where"],
                meta["offset"] + len(features),
                seen,
                high,
                meta.get("number", 1) + 1,
            )  # fmt: skip
        )
    return ParseResult(rows, follow=follow, state=state)


def _fingerprint(attributes: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(attributes, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def _epoch_text(epoch_ms: int, previous: str | None) -> str:
    """The greater of an epoch-ms time and a stored watermark, as ISO 8601 UTC text."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)
    text_ = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return max(text_, previous) if previous else text_


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
    where: str | None = None,
    order: str | None = None,
    page_size: int | None = None,
    paging: bool | None = None,
    fields: Mapping[str, str] | None = None,
    identity: Sequence[str] | None = None,
    extra: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    row: RowHook | None = None,
    interval: str = "5m",
    builtin: bool = True,
    **details: Any,
) -> Scraper:
    """A :class:`Scraper` for an ArcGIS layer (see the module docstring).

    ``url`` is the layer URL (``…/FeatureServer/0`` or ``…/MapServer/0``); ``fields`` maps
    incident fields (:data:`FIELDS`) to attribute names, or ``row`` builds a :class:`RawRow`
    from one feature's attributes and geometry; ``identity`` lists the attributes that make
    the ID of a feed without incident numbers; ``look_back`` is seconds or a duration
    (``48h``). ``details`` go to :class:`Scraper` (``homepage``, ``source_notes``...).

    With ``builtin`` (a module in ``scrapers/``), config.yaml may still set the tunable
    options over the feed (:data:`TUNABLE`). Raises :class:`ConfigError` for invalid settings.
    """
    options: dict[str, Any] = {
        "mode": mode, "time_field": time_field, "look_back": look_back, "where": where,
        "order": order, "page_size": page_size, "paging": paging, "fields": fields,
        "identity": identity, "extra": extra, "drop": drop,
    }  # fmt: skip
    spec = _spec(url, timezone, {k: v for k, v in options.items() if v is not None}, row)
    return Scraper(
        slug=slug,
        name=name,
        agency=agency,
        city=city,
        url=url,
        timezone=timezone,
        interval=interval,
        snapshot=spec.mode == "snapshot",
        parse=lambda page: _parse(spec, page),
        plan=lambda context: _plan(spec, context),
        adapter="arcgis",
        options={"_builtin": slug} if builtin else {},
        **details,
    )


#: Keys config.yaml may set over a built-in ArcGIS feed (the rest is its module's).
TUNABLE = ("look_back", "page_size", "paging", "where", "order")
#: Every key of a config-only ArcGIS feed (besides the engine's own: interval, enabled...).
CONFIG_KEYS = (
    "url", "timezone", "interval", "mode", "time_field", "look_back", "where", "order",
    "page_size", "paging", "fields", "identity", "extra", "drop", "name", "agency", "city",
)  # fmt: skip


def _columns(key: str, value: Any) -> tuple[str, ...]:
    return opts.columns(key, value, _COLUMN, "attribute")


def _tunables(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "look_back" in options:
        out["look_back"] = opts.duration("look_back", options["look_back"])
    if "page_size" in options:
        out["page_size"] = opts.page_size(options["page_size"], MAX_PAGE_SIZE)
    if "paging" in options:
        if not isinstance(options["paging"], bool):
            raise ConfigError("paging must be true or false", key="paging")
        out["paging"] = options["paging"]
    if "where" in options:
        where = options["where"]
        if not isinstance(where, str) or not where.strip() or "\n" in where:
            raise ConfigError("where must be one line of SQL, like \"STATUS = 'OPEN'\"",
                              key="where")  # fmt: skip
        out["where"] = where.strip()
    if "order" in options:
        order = opts.column(
            "order", options["order"], _ORDER, "order must be attributes like 'CALL_TIME DESC, UID'"
        )
        out["order"] = order.strip()
    return out


def _tuned(spec: ArcGISSpec, options: Mapping[str, Any]) -> ArcGISSpec:
    changes = _tunables(options)
    return replace(spec, **changes) if changes else spec


def _spec(url: str, zone: str, options: Mapping[str, Any], row: RowHook | None) -> ArcGISSpec:
    if not isinstance(url, str) or not _LAYER.match(url):
        raise ConfigError(
            "url must be an ArcGIS layer like https://HOST/arcgis/rest/services/NAME/"
            f"FeatureServer/0, not {url!r}",
            key="url",
        )
    opts.zone(zone)
    values: dict[str, Any] = _tunables(options)
    time_field = options.get("time_field")
    if time_field is not None:
        opts.column("time_field", time_field, _COLUMN, "time_field must be an attribute name")
    mode = opts.mode(options.get("mode", "snapshot"))
    if mode == "incremental" and not time_field:
        raise ConfigError("mode incremental needs a time_field", key="mode")
    identity = _columns("identity", options["identity"]) if "identity" in options else ()
    if "identity" in options and not identity:
        raise ConfigError("identity must list at least one attribute", key="identity")
    fields = options.get("fields")
    if row is None:
        fields = opts.field_mapping(
            fields,
            FIELDS,
            _COLUMN,
            "attribute",
            "layer's attributes (at least received, and incident_id unless identity is given)",
        )
        if "received" not in fields:
            raise ConfigError("fields needs received", key="fields")
        if identity and "incident_id" in fields:
            raise ConfigError("give fields.incident_id or identity, not both", key="identity")
        if not identity and "incident_id" not in fields:
            raise ConfigError(
                "fields needs incident_id; a layer with no incident number needs identity: "
                "[the attributes that do not change while a call is listed]",
                key="fields",
            )
        if ("latitude" in fields) != ("longitude" in fields):
            raise ConfigError("fields needs both latitude and longitude, or neither",
                              key="fields")  # fmt: skip
        values["fields"] = dict(fields)
    elif fields is not None:
        values["fields"] = dict(fields)
    if "extra" in options:
        values["extra"] = _columns("extra", options["extra"])
    if "drop" in options:
        values["drop"] = _columns("drop", options["drop"])
    return ArcGISSpec(
        url=url, zone=zone, mode=mode, time_field=time_field, identity=identity, row=row, **values
    )


def from_config(slug: str, options: Mapping[str, Any]) -> Scraper:
    """The scraper of a config-only ArcGIS feed (``adapter: arcgis`` in config.yaml), or the
    check of the options set over a built-in one. Raises :class:`ConfigError` naming the key."""
    if "_builtin" in options:
        from ..plugins import get_scraper

        opts.check_builtin_keys(options, TUNABLE)
        _tunables(options)
        if "url" in options and not _LAYER.match(str(options["url"])):
            raise ConfigError(f"url {options['url']!r} is not an ArcGIS layer URL", key="url")
        return get_scraper(options["_builtin"])
    opts.check_known_keys(options, CONFIG_KEYS, "arcgis")
    if "url" not in options:
        raise ConfigError("an ArcGIS feed needs url (the layer: …/FeatureServer/0)", key="url")
    zone = options.get("timezone")
    if not zone:
        raise ConfigError("an ArcGIS feed needs its timezone (IANA, like America/Chicago)",
                          key="timezone")  # fmt: skip
    opts.texts(options)
    spec_options = {
        k: v for k, v in options.items()
        if k not in ("url", "timezone", "interval", "name", "agency", "city")
    }  # fmt: skip
    interval = options.get("interval", "5m")
    return scraper(
        slug=slug,
        name=options.get("name") or slug,
        agency=options.get("agency", ""),
        city=options.get("city", ""),
        url=options["url"],
        timezone=zone,
        interval=opts.interval_text(interval),
        builtin=False,
        **spec_options,
    )
