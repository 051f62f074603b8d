"""Query engines of the simulated portals: Socrata SODA and ArcGIS REST, over in-memory rows.

:mod:`dispatchwatch.simulate` serves them on 127.0.0.1 (``/resource/ID.json`` and
``/arcgis/rest/services/NAME/MapServer/0/query``) over the evolving models of
:mod:`dispatchwatch.synthetic`; both functions here are pure (rows and query parameters in,
status and JSON body out), so they are tested on their own.

SODA (:func:`soda_answer`) honours ``$where`` (comparisons ``col > 'v'``, ``>=``, ``<``,
``<=``, ``=``, ``!=`` and ``col between 'a' and 'b'``, joined by AND; times compared as times;
system columns ``:id`` and ``:updated_at``), ``$order`` (columns, ASC/DESC), ``$limit``,
``$offset`` and ``$select`` (``:*, *`` adds the system columns; ``count(*)`` and ``max(col)``
/ ``min(col)`` aggregates with ``AS`` answer one row: the cheap change probe). An unknown
column answers 400 with Socrata's error object.

ArcGIS (:func:`arcgis_answer`) honours ``where`` (``1=1``, comparisons with a number, a quoted
text or ``timestamp 'YYYY-MM-DD HH:MM:SS'`` (UTC), joined by AND, parentheses),
``orderByFields``, ``resultOffset``/``resultRecordCount`` (capped at the layer's
``max_record_count``; ``exceededTransferLimit: true`` when more rows follow), ``outFields``
and ``returnGeometry``. An unknown field answers ArcGIS's error body with HTTP 200, as real
servers do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["arcgis_answer", "soda_answer"]

_SODA_CONDITION = re.compile(
    r"^\s*(:?[A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|<>|>|<|=)\s*'([^']*)'\s*$", re.I
)
_SODA_BETWEEN = re.compile(
    r"^\s*(:?[A-Za-z_][A-Za-z0-9_]*)\s+between\s+'([^']*)'\s+and\s+'([^']*)'\s*$", re.I
)
_SODA_AGGREGATE = re.compile(
    r"^\s*(count|max|min)\((\*|:?[A-Za-z_][A-Za-z0-9_]*)\)\s+AS\s+(\w+)\s*$", re.I
)
_ARC_CONDITION = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|!=|<>|>|<|=)\s*"
    r"(?:timestamp\s+'([^']*)'|date\s+'([^']*)'|'([^']*)'|(-?[0-9.]+))\s*$",
    re.I,
)
_AND = re.compile(r"\s+AND\s+", re.I)


def _soda_key(value: Any) -> tuple[int, Any]:
    """Times compare as times (floating ISO, with or without ``Z``), numbers as numbers."""
    if isinstance(value, str):
        try:
            return (0, datetime.fromisoformat(value.rstrip("Z")))
        except ValueError:
            pass
        try:
            return (1, float(value))
        except ValueError:
            return (2, value)
    if value is None:
        return (3, "")
    return (1, float(value))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
}


def _soda_terms(where: str) -> list[str]:
    """The AND-ed terms of a ``$where``, keeping ``col between 'a' and 'b'`` whole."""
    terms: list[str] = []
    for part in _AND.split(where):
        if terms and re.search(r"\bbetween\s+'[^']*'\s*$", terms[-1], re.I):
            terms[-1] += " and " + part
        else:
            terms.append(part)
    return terms


def _soda_error(message: str) -> tuple[int, Any]:
    return 400, {"code": "query.compiler.malformed", "error": True, "message": message}


def soda_answer(rows: Sequence[Mapping[str, Any]], params: Mapping[str, str]) -> tuple[int, Any]:
    """``(HTTP status, JSON value)`` of a SODA query over ``rows`` (each with ``:id`` and
    ``:updated_at``)."""
    columns = set().union(*(r.keys() for r in rows)) if rows else set()
    columns |= {":id", ":updated_at"}

    def known(column: str) -> bool:
        return column in columns or not rows

    selected = [r for r in rows]
    where = params.get("$where", "").strip()
    if where:
        for part in _soda_terms(where):
            between = _SODA_BETWEEN.match(part)
            match = _SODA_CONDITION.match(part)
            if between:
                column, low, high = between.groups()
                if not known(column):
                    return _soda_error(f"No such column: {column}")
                lo, hi = _soda_key(low), _soda_key(high)
                selected = [r for r in selected if lo <= _soda_key(r.get(column)) <= hi]
            elif match:
                column, op, literal = match.groups()
                if not known(column):
                    return _soda_error(f"No such column: {column}")
                wanted = _soda_key(literal)
                selected = [
                    r for r in selected
                    if r.get(column) is not None and _COMPARE[op](_soda_key(r[column]), wanted)
                ]  # fmt: skip
            else:
                return _soda_error(f"Could not parse $where: {part.strip()}")
    select = params.get("$select", "").strip()
    if select and select != ":*, *":
        answer: dict[str, Any] = {}
        for term in select.split(","):
            agg = _SODA_AGGREGATE.match(term)
            if agg is None:
                return _soda_error(f"Unsupported $select: {term.strip()}")
            function, column, alias = agg.groups()
            if function.lower() == "count":
                answer[alias] = str(len(selected))
                continue
            if not known(column):
                return _soda_error(f"No such column: {column}")
            values = [r[column] for r in selected if r.get(column) is not None]
            if values:
                pick = max if function.lower() == "max" else min
                answer[alias] = pick(values, key=_soda_key)
        return 200, [answer]
    for term in reversed([t.strip() for t in params.get("$order", ":id").split(",") if t.strip()]):
        name, _, direction = term.partition(" ")
        if not known(name):
            return _soda_error(f"No such column: {name}")
        selected.sort(key=lambda r: _soda_key(r.get(name)), reverse=direction.upper() == "DESC")
    try:
        offset = int(params.get("$offset", "0"))
        limit = int(params.get("$limit", "1000"))
    except ValueError:
        return _soda_error("$limit and $offset must be numbers")
    page = selected[offset : offset + limit]
    if select != ":*, *":
        page = [{k: v for k, v in r.items() if not k.startswith(":")} for r in page]
    return 200, [dict(r) for r in page]


def _arc_error(message: str, details: Sequence[str] = ()) -> tuple[int, Any]:
    # Real servers send this body with HTTP 200.
    return 200, {"error": {"code": 400, "message": message, "details": list(details)}}


def _arc_literal(match: re.Match[str]) -> Any:
    stamp, date, text, number = match.group(3, 4, 5, 6)
    if stamp or date:
        moment = datetime.fromisoformat((stamp or date).strip()).replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if text is not None:
        return text
    return float(number)


def arcgis_answer(
    rows: Sequence[Mapping[str, Any]],
    fields: Sequence[Mapping[str, Any]],
    params: Mapping[str, str],
    *,
    object_id: str = "OBJECTID",
    max_record_count: int = 1000,
) -> tuple[int, Any]:
    """``(HTTP status, JSON value)`` of an ArcGIS layer query over ``rows`` (attribute dicts;
    a ``_geometry`` key, if any, is the point geometry)."""
    names = {str(f["name"]) for f in fields}
    if params.get("f", "html") not in ("json", "pjson"):
        return _arc_error("Only f=json is simulated")
    selected = list(rows)
    where = params.get("where", "").strip()
    if not where:
        return _arc_error("Unable to complete operation.", ["'where' parameter is missing"])
    for part in _AND.split(where):
        part = part.strip()
        while part.startswith("(") and part.endswith(")"):
            part = part[1:-1].strip()
        if part.replace(" ", "") == "1=1":
            continue
        match = _ARC_CONDITION.match(part)
        if match is None:
            return _arc_error("Unable to complete operation.", ["'where' parameter is invalid"])
        column, op = match.group(1), match.group(2)
        if column not in names:
            return _arc_error("Unable to complete operation.", [f"Invalid field: {column}"])
        literal = _arc_literal(match)
        selected = [
            r for r in selected
            if r.get(column) is not None and _COMPARE[op](r[column], literal)
        ]  # fmt: skip
    for term in reversed([t.strip() for t in params.get("orderByFields", "").split(",") if t]):
        name, _, direction = term.partition(" ")
        if name not in names:
            return _arc_error("Unable to complete operation.", [f"Invalid field: {name}"])
        selected.sort(
            key=lambda r: (r.get(name) is None, r.get(name) if r.get(name) is not None else 0),
            reverse=direction.strip().upper() == "DESC",
        )
    try:
        offset = int(params.get("resultOffset", "0"))
        count = int(params.get("resultRecordCount", str(max_record_count)))
    except ValueError:
        return _arc_error("Unable to complete operation.", ["invalid resultOffset"])
    count = max(0, min(count, max_record_count))
    page = selected[offset : offset + count]
    geometry = params.get("returnGeometry", "true").lower() == "true"
    out_fields = params.get("outFields", "*")
    keep = None if out_fields.strip() == "*" else {f.strip() for f in out_fields.split(",")}
    features = []
    for row in page:
        attributes = {
            k: v for k, v in row.items() if k != "_geometry" and (keep is None or k in keep)
        }
        feature: dict[str, Any] = {"attributes": attributes}
        if geometry and row.get("_geometry") is not None:
            feature["geometry"] = row["_geometry"]
        features.append(feature)
    answer: dict[str, Any] = {
        "objectIdFieldName": object_id,
        "fields": [dict(f) for f in fields if keep is None or f["name"] in keep],
        "features": features,
    }
    if offset + len(page) < len(selected):
        answer["exceededTransferLimit"] = True
    return 200, answer
