"""Import mappings: which columns of an exported file stand for which normalized field.

A mapping is a small YAML file (the shipped ones live in ``dispatchwatch/mappings/`` and are
chosen by name, e.g. ``chicago-oemc-foia``; any other is given by path)::

    description: Chicago OEMC calls for service, as released under FOIA
    timezone: America/Chicago          # default: the feed's zone
    fields:
      incident_id: Event #
      received:                        # one column, or `columns: [Date, Time]` joined by a space
        column: Date
        formats: [auto, "%m/%d/%y %H:%M"]   # tried in order; `auto` = the built-in parser
      call_type: Police Event Type
      address: Cross Street
      district: {column: Police District, optional: true}
      location: Location               # "POINT (lon lat)", "(lat, lon)", GeoJSON geometry
    constants: {city: Chicago}         # a fixed value for a field (city: the default city)
    extra: unmapped                    # unmapped (default) | none | [column, ...]
    drop: [Location Remarks]           # never stored anywhere, whatever `extra` says
    city_codes: {MKE: Milwaukee}       # address suffixes, added to the feed's own

Column names match by meaning: case, spaces and punctuation are ignored, and ``#`` reads as
"number" (``Event #`` = ``EVENT_NUMBER`` = ``event number``). A mapped column that the file
lacks is an error naming it, unless the field says ``optional: true``.

A mapping with ``kind: counts`` describes a table of counts instead (see
:mod:`dispatchwatch.imports.counts`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ..errors import ConfigError

__all__ = [
    "CALL_FIELDS",
    "COUNT_FIELDS",
    "ColumnSpec",
    "ImportMapping",
    "canonical",
    "load_mapping",
    "shipped_mappings",
]

#: The normalized fields a ``kind: calls`` mapping may fill (``location`` fills latitude and
#: longitude from one point column).
CALL_FIELDS = (
    "incident_id", "received", "call_type", "priority", "status", "disposition", "address",
    "city", "district", "beat", "units", "latitude", "longitude", "location",
)  # fmt: skip
#: The fields of a ``kind: counts`` mapping.
COUNT_FIELDS = (
    "period_start", "period_end", "year", "district", "call_type", "day_of_week", "count",
)  # fmt: skip
_REQUIRED = {"calls": ("incident_id", "received"), "counts": ()}
_TOP_KEYS = {
    "description", "kind", "timezone", "fields", "constants", "extra", "drop", "city_codes",
    "format", "sheet", "encoding", "delimiter", "wide", "skip_labels", "precision", "row",
}  # fmt: skip
_FIELD_KEYS = {"column", "columns", "join", "formats", "optional"}
_FORMATS = ("csv", "tsv", "xlsx", "xls", "json", "ndjson")


def canonical(name: object) -> str:
    """A column name reduced to its meaning: ``"Event #"`` -> ``"eventnumber"``."""
    text = str(name).lower().replace("#", " number ")
    return re.sub(r"[\W_]+", "", text)


@dataclass(frozen=True)
class ColumnSpec:
    """Where one field's value comes from: one column, or several joined."""

    columns: tuple[str, ...]
    join: str = " "
    #: For ``received``: formats tried in order; ``auto`` is the built-in parser
    #: (``M/D/YYYY h:mm[:ss] [AM|PM]``, ISO 8601, epoch seconds or milliseconds).
    formats: tuple[str, ...] = ("auto",)
    optional: bool = False


@dataclass(frozen=True)
class ImportMapping:
    """A validated mapping. ``fields`` maps a field name to its :class:`ColumnSpec`."""

    name: str
    kind: str = "calls"
    description: str = ""
    timezone: str | None = None
    fields: Mapping[str, ColumnSpec] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)
    #: ``"unmapped"``, ``"none"``, or the explicit columns kept in ``extra``.
    extra: str | tuple[str, ...] = "unmapped"
    drop: tuple[str, ...] = ()
    city_codes: Mapping[str, str] = field(default_factory=dict)
    format: str | None = None
    sheet: str | int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    #: counts only: the columns hold one count each, named by this field's values
    #: (``district`` or ``day_of_week``); ``columns`` lists them (default: every unmapped one).
    wide: Mapping[str, Any] | None = None
    #: counts only: label values (``Total``, ``Grand Total``) that are sums, not categories.
    skip_labels: tuple[str, ...] = ()
    #: Overrides the feed's precision (``block``/``exact``); normally left to the feed.
    precision: str | None = None
    #: ``module:function`` reading one record (a dict of column -> value) into a RawRow:
    #: a live scraper's own row reader, so imported rows equal polled ones. ``fields`` are
    #: then only the columns the file must have.
    row: str | None = None
    #: SHA-256 of the mapping's YAML: an import is "the same" only under the same mapping.
    sha256: str = ""

    def with_constants(self, values: Mapping[str, str]) -> ImportMapping:
        """A copy with ``values`` overriding the constants (``--set year=2011``)."""
        from dataclasses import replace

        allowed = CALL_FIELDS if self.kind == "calls" else COUNT_FIELDS
        for key in values:
            if key not in allowed:
                raise ConfigError(
                    f"mapping {self.name}: cannot set {key!r} (fields: {', '.join(allowed)})"
                )
        extra_sha = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()
        return replace(
            self,
            constants={**self.constants, **values},
            sha256=hashlib.sha256((self.sha256 + extra_sha).encode()).hexdigest(),
        )


def shipped_mappings() -> dict[str, str]:
    """The mappings that ship with dispatchwatch: name -> description."""
    found = {}
    folder = resources.files("dispatchwatch") / "mappings"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
            found[entry.name[: -len(".yaml")]] = str(data.get("description", "")).strip()
    return found


def load_mapping(name_or_path: str | Path) -> ImportMapping:
    """A shipped mapping by name (``chicago-oemc-foia``), else a YAML file by path.

    Raises :class:`ConfigError` naming the problem (unknown mapping, unknown key, a field
    without a column, an unknown time zone ...).
    """
    text_name = str(name_or_path)
    path = Path(text_name)
    shipped = resources.files("dispatchwatch") / "mappings" / f"{text_name}.yaml"
    if "/" not in text_name and not text_name.endswith((".yaml", ".yml")) and shipped.is_file():
        text = shipped.read_text(encoding="utf-8")
        label = text_name
    elif path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read mapping {path}: {exc}") from None
        label = str(path)
    else:
        known = ", ".join(shipped_mappings()) or "none"
        raise ConfigError(f"no mapping {text_name!r}: not a file, nor a shipped mapping ({known})")
    return parse_mapping(text, label)


def _text_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    raise ConfigError(f"{where} must be a column name or a list of column names")


def _column_spec(name: str, value: Any, where: str) -> ColumnSpec:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return ColumnSpec((str(value),))
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a column name or a mapping with 'column'")
    unknown = set(value) - _FIELD_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, sorted(unknown)))} "
            f"(expected: {', '.join(sorted(_FIELD_KEYS))})"
        )
    if ("column" in value) == ("columns" in value):
        raise ConfigError(f"{where} needs exactly one of 'column' or 'columns'")
    columns = _text_list(value.get("column", value.get("columns")), where)
    formats: tuple[str, ...] = ("auto",)
    if "formats" in value:
        if name not in ("received", "period_start", "period_end"):
            raise ConfigError(f"{where}: 'formats' is only for times")
        formats = _text_list(value["formats"], f"{where}.formats")
        for fmt in formats:
            if fmt != "auto" and "%" not in fmt:
                raise ConfigError(f"{where}.formats: {fmt!r} is not a strptime format or 'auto'")
    join = value.get("join", " ")
    if not isinstance(join, str):
        raise ConfigError(f"{where}.join must be text")
    optional = value.get("optional", False)
    if not isinstance(optional, bool):
        raise ConfigError(f"{where}.optional must be true or false")
    return ColumnSpec(columns, join, formats, optional)


def parse_mapping(text: str, label: str = "mapping") -> ImportMapping:
    """Validate a mapping's YAML text (``label`` names it in errors)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"mapping {label}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"mapping {label}: the top level must be a mapping")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"mapping {label}: unknown key(s) {', '.join(map(repr, sorted(unknown)))} "
            f"(expected: {', '.join(sorted(_TOP_KEYS))})"
        )
    kind = data.get("kind", "calls")
    if kind not in ("calls", "counts"):
        raise ConfigError(f"mapping {label}: kind must be 'calls' or 'counts', not {kind!r}")
    allowed = CALL_FIELDS if kind == "calls" else COUNT_FIELDS

    timezone = data.get("timezone")
    if timezone is not None:
        try:
            ZoneInfo(str(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"mapping {label}: unknown time zone {timezone!r}") from None

    raw_fields = data.get("fields") or {}
    if not isinstance(raw_fields, dict):
        raise ConfigError(f"mapping {label}: fields must be a mapping of field to column")
    fields: dict[str, ColumnSpec] = {}
    for name, value in raw_fields.items():
        if name not in allowed:
            raise ConfigError(
                f"mapping {label}: unknown field {name!r} (fields: {', '.join(allowed)})"
            )
        fields[name] = _column_spec(name, value, f"mapping {label}: fields.{name}")

    raw_constants = data.get("constants") or {}
    if not isinstance(raw_constants, dict):
        raise ConfigError(f"mapping {label}: constants must be a mapping of field to value")
    constants: dict[str, str] = {}
    for name, value in raw_constants.items():
        if name not in allowed or name in ("incident_id", "received", "count"):
            raise ConfigError(f"mapping {label}: constants.{name}: not a field that can be fixed")
        if name in fields:
            raise ConfigError(f"mapping {label}: {name} is both a field and a constant")
        constants[name] = str(value)

    row = data.get("row")
    if row is not None:
        if kind != "calls" or not isinstance(row, str):
            raise ConfigError(f"mapping {label}: row must be 'module:function' (calls only)")
        row_function(row, label)
    for name in _REQUIRED[kind]:
        if name not in fields:
            raise ConfigError(f"mapping {label}: fields.{name} is required")
    if kind == "counts" and "count" not in fields and not data.get("wide"):
        raise ConfigError(f"mapping {label}: a counts mapping needs fields.count or 'wide'")
    if "location" in fields and ({"latitude", "longitude"} & set(fields)):
        raise ConfigError(f"mapping {label}: map either location or latitude/longitude")

    extra = data.get("extra", "unmapped")
    if isinstance(extra, list):
        extra = _text_list(extra, f"mapping {label}: extra")
    elif extra not in ("unmapped", "none"):
        raise ConfigError(f"mapping {label}: extra must be 'unmapped', 'none' or a list")
    drop = _text_list(data["drop"], f"mapping {label}: drop") if data.get("drop") else ()
    if isinstance(extra, tuple):
        kept_and_dropped = {canonical(c) for c in extra} & {canonical(c) for c in drop}
        if kept_and_dropped:
            raise ConfigError(f"mapping {label}: a column is both in extra and drop")

    city_codes = data.get("city_codes") or {}
    if not isinstance(city_codes, dict):
        raise ConfigError(f"mapping {label}: city_codes must map a suffix to a city")
    fmt = data.get("format")
    if fmt is not None and fmt not in _FORMATS:
        raise ConfigError(f"mapping {label}: format must be one of {', '.join(_FORMATS)}")
    sheet = data.get("sheet")
    if sheet is not None and not isinstance(sheet, str | int):
        raise ConfigError(f"mapping {label}: sheet must be a sheet name or a 0-based index")
    delimiter = data.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise ConfigError(f"mapping {label}: delimiter must be one character")
    precision = data.get("precision")
    if precision not in (None, "block", "exact"):
        raise ConfigError(f"mapping {label}: precision must be 'block' or 'exact'")

    wide = data.get("wide")
    if wide is not None:
        if kind != "counts":
            raise ConfigError(f"mapping {label}: 'wide' is for counts mappings")
        if not isinstance(wide, dict) or wide.get("field") not in ("district", "day_of_week"):
            raise ConfigError(
                f"mapping {label}: wide needs field: district or day_of_week "
                "(and optionally columns: [...])"
            )
        if "columns" in wide:
            wide = {**wide, "columns": _text_list(wide["columns"], f"mapping {label}: wide")}
    skip_labels = (
        _text_list(data["skip_labels"], f"mapping {label}: skip_labels")
        if data.get("skip_labels")
        else ()
    )
    return ImportMapping(
        name=label,
        kind=kind,
        description=str(data.get("description", "")).strip(),
        timezone=timezone,
        fields=fields,
        constants=constants,
        extra=extra,
        drop=drop,
        city_codes={str(k): str(v) for k, v in city_codes.items()},
        format=fmt,
        sheet=sheet,
        encoding=data.get("encoding"),
        delimiter=delimiter,
        wide=wide,
        skip_labels=skip_labels,
        precision=precision,
        row=row,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def row_function(spec: str, label: str = "mapping") -> Any:
    """The callable named ``module:function``; raises :class:`ConfigError`."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"mapping {label}: row {spec!r} cannot be loaded ({exc})") from None
    if not callable(function):
        raise ConfigError(f"mapping {label}: row {spec!r} is not a function")
    return function


def resolve_columns(
    header: Sequence[str], wanted: Sequence[tuple[str, str, bool]], where: str
) -> dict[str, int | None]:
    """Index of each wanted column in ``header``, matched by :func:`canonical` meaning.

    ``wanted`` holds ``(column, what it is for, optional)``. An exact (case-sensitive) match
    wins over a canonical one; two header columns with the same meaning and no exact match
    are ambiguous. Raises :class:`ConfigError` naming every missing or ambiguous column
    (and the header, which holds column names, never row cells).
    """
    by_meaning: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        by_meaning.setdefault(canonical(name), []).append(index)
    found: dict[str, int | None] = {}
    missing: list[str] = []
    for column, purpose, optional in wanted:
        if column in found:
            continue
        exact = [i for i, name in enumerate(header) if name == column]
        candidates = exact or by_meaning.get(canonical(column), [])
        if len(candidates) == 1:
            found[column] = candidates[0]
        elif len(candidates) > 1:
            raise ConfigError(f"{where}: column {column!r} ({purpose}) is ambiguous in the header")
        elif optional:
            found[column] = None
        else:
            missing.append(f"{column!r} ({purpose})")
    if missing:
        shown = ", ".join(repr(h) for h in header[:40])
        more = f", ... ({len(header)} columns)" if len(header) > 40 else ""
        raise ConfigError(
            f"{where}: the file lacks the mapped column(s) {', '.join(missing)}; "
            f"its header is {shown}{more}"
        )
    return found
