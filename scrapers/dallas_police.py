"""Dallas Police Department: active calls (Socrata ``9fxf-t2tr`` on www.dallasopendata.com).

A snapshot of the calls being worked now, refreshed every few minutes: a call that is no
longer in the dataset has left the list (the engine marks it gone once a poll read every page).

Quirks of the dataset (reproduced in ``fixtures/socrata/dallas_active_calls.json``):

- One row per assigned unit: the same ``incident_number`` repeats with another
  ``unit_number``; the engine merges the rows into one incident with all its units.
- ``date`` is a midnight floating timestamp (``2026-09-30T00:00:00.000``) and ``time`` a
  separate text (``06:04:39``), both Central time; they are joined here. An older schema had
  one ``date_time`` instead: both are accepted.
- ``block`` (``4300``) and ``location`` (the street, ``Ross Ave``) make the address, reduced to
  the hundred block (``43XX ROSS AVE``); intersections (``Flanders St / N Willomet Ave``) have
  no ``block`` and keep the street names alone.
- ``division`` is the patrol division (stored as the district); ``beat``, ``priority`` and
  ``status`` (``At Scene``, ``Dispatched``...) have their columns; ``reporting_area`` and any
  new column go to ``extra``.
- The dataset has dropped and renamed fields without notice: columns are found by meaning
  (several names each), and a row lacking the incident number or time fails the poll naming
  what is missing, rather than archiving wrong rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatchwatch.scraper import LayoutError, RawRow
from dispatchwatch.sources import socrata
from dispatchwatch.sources.socrata import text

URL = "https://www.dallasopendata.com/resource/9fxf-t2tr.json"
HOMEPAGE = "https://www.dallasopendata.com/Public-Safety/Dallas-Police-Active-Calls/9fxf-t2tr"

#: Field -> the column names that have stood for it, newest first.
COLUMNS = {
    "incident_id": ("incident_number", "incidentnum", "incident_num"),
    "date": ("date",),
    "time": ("time",),
    "date_time": ("date_time", "datetime", "call_date_time"),
    "call_type": ("nature_of_call", "nature", "call_type"),
    "priority": ("priority",),
    "status": ("status",),
    "unit": ("unit_number", "unit", "unit_num"),
    "block": ("block", "block_number"),
    "street": ("location", "street", "address"),
    "division": ("division",),
    "beat": ("beat",),
}
_USED = {name for names in COLUMNS.values() for name in names}


def _first(record: Mapping[str, Any], field: str) -> str | None:
    for column in COLUMNS[field]:
        value = text(record.get(column))
        if value is not None:
            return value
    return None


def _received(record: Mapping[str, Any], incident_id: str) -> str:
    date, time = _first(record, "date"), _first(record, "time")
    if date and time:
        return f"{date[:10]}T{time}"
    joined = _first(record, "date_time")
    if joined:
        return joined
    raise LayoutError(
        f"Dallas active calls: incident {incident_id} has neither date + time nor date_time; "
        "the dataset's schema may have changed"
    )


def _address(record: Mapping[str, Any]) -> str | None:
    street = _first(record, "street")
    block = _first(record, "block")
    if street is None:
        return None
    if block is None or "/" in street or "&" in street:
        return street  # an intersection (or no block): the street names alone
    return f"{block} {street}"  # the normalizer reduces it to the hundred block


def row(record: Mapping[str, Any]) -> RawRow:
    """One unit's row of an active call."""
    incident_id = _first(record, "incident_id")
    if incident_id is None:
        raise LayoutError(
            "Dallas active calls: a row has no incident_number (or incidentnum); "
            "the dataset's schema may have changed"
        )
    return RawRow(
        incident_id=incident_id,
        received=_received(record, incident_id),
        call_type=_first(record, "call_type"),
        priority=_first(record, "priority"),
        status=_first(record, "status"),
        address=_address(record),
        district=_first(record, "division"),
        beat=_first(record, "beat"),
        units=_first(record, "unit"),
        extra=socrata.extras(record, _USED),
    )


scraper = socrata.scraper(
    slug="dallas-police",
    name="Dallas Police Active Calls",
    agency="Dallas Police Department",
    city="Dallas",
    state="TX",
    url=URL,
    homepage=HOMEPAGE,
    timezone="America/Chicago",
    interval="2m",
    mode="snapshot",
    row=row,
    default_city="Dallas",
    license="City of Dallas open data (public domain dedication on the portal).",
    source_notes=(
        "Socrata 9fxf-t2tr, a snapshot of active calls, one row per assigned unit (merged). "
        "date + time joined in Central time; block + street reduced to the hundred block."
    ),
)
