"""San Francisco: law-enforcement dispatched calls for service, real time (Socrata ``gnap-fj3t``).

The last 48 hours of calls dispatched by the Department of Emergency Management for the
police, refreshed every few minutes; a call's row is rewritten as it progresses, and
``call_last_updated_at`` moves with it: the feed is incremental on that column, so each poll
reads only the rows written since the last one (after the adapter's one-request probe says
anything changed at all).

Quirks (reproduced in ``fixtures/socrata/san_francisco_realtime.json``):

- Many timestamps per call, floating Pacific time: ``received_datetime`` is the incident's
  time; ``entry``, ``dispatch``, ``enroute``, ``onscene`` and ``close`` go to ``extra``.
- ``cad_number`` is the call's number (``id`` is the row's); original and final type and
  priority: the final ones are the call's, the original ones go to ``extra``.
- ``intersection_name`` separates the two streets with a backslash (``PACIFIC AVE \\ PHOENIX
  TER``), stored as ``PACIFIC AVE / PHOENIX TER``; the point is ``intersection_point``.
- Calls flagged ``sensitive_call`` carry no location fields at all: they are stored with no
  location, as published.
- ``data_as_of`` and ``data_loaded_at`` change at every refresh of the whole dataset; they
  are not properties of a call and are left out (else every call would change every load).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatchwatch.scraper import RawRow
from dispatchwatch.sources import socrata
from dispatchwatch.sources.socrata import text

URL = "https://data.sfgov.org/resource/gnap-fj3t.json"
HOMEPAGE = (
    "https://data.sfgov.org/Public-Safety/Law-Enforcement-Dispatched-Calls-for-Service-Real-Tim/"
    "gnap-fj3t"
)
_USED = {
    "id", "cad_number", "received_datetime", "call_type_final_desc", "call_type_final",
    "priority_final", "disposition", "intersection_name", "intersection_point",
    "police_district", "data_as_of", "data_loaded_at",
}  # fmt: skip


def row(record: Mapping[str, Any]) -> RawRow:
    """One call (one row per call)."""
    lat, lon = socrata.point(record.get("intersection_point"))
    address = text(record.get("intersection_name"))
    if address is not None:
        address = " / ".join(part.strip() for part in address.split("\\"))
    extra = socrata.extras(record, _USED)
    if text(record.get("call_type_final")) is not None:
        extra["call_type_code"] = record["call_type_final"]
    return RawRow(
        incident_id=text(record.get("cad_number")) or text(record.get("id")) or "",
        received=text(record.get("received_datetime")),
        call_type=text(record.get("call_type_final_desc"))
        or text(record.get("call_type_original_desc")),
        priority=text(record.get("priority_final")) or text(record.get("priority_original")),
        disposition=text(record.get("disposition")),
        address=address,
        district=text(record.get("police_district")),
        latitude=lat,
        longitude=lon,
        extra=extra,
    )


scraper = socrata.scraper(
    slug="san-francisco-police",
    name="San Francisco Police Dispatched Calls (real time)",
    agency="San Francisco Police Department",
    city="San Francisco",
    state="CA",
    url=URL,
    homepage=HOMEPAGE,
    timezone="America/Los_Angeles",
    interval="5m",
    mode="incremental",
    time_field="call_last_updated_at",
    look_back="15m",
    row=row,
    default_city="San Francisco",
    license="Open Data Commons Public Domain Dedication and License (PDDL), DataSF.",
    source_notes=(
        "Socrata gnap-fj3t, the last 48 hours, incremental on call_last_updated_at. "
        "Sensitive calls have no location, as published."
    ),
)
