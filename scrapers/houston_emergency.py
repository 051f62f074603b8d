"""Houston Emergency Center: active fire and police incidents (ArcGIS ``HEC_Active_Incidents``).

A snapshot of the incidents being worked now, refreshed every few minutes: an incident that is
no longer listed has left the list (the engine marks it gone once a poll read the whole list).

Quirks of the layer (reproduced in ``fixtures/arcgis/houston_active_incidents.json``):

- **No incident number.** The ID is the identity rule's key (``hash-`` + 16 hex digits) over
  the fields that do not change while a call is listed: agency, call time, street, cross
  street. Not the type or the alarm level (an ``EMS EVENT`` can become a fire while listed),
  not the units. A call whose street or cross street is corrected while listed therefore
  reads as one incident gone and a new one; two calls with the same agency, minute, street
  and cross street get ``-2`` in the order the server lists them (ordered by call time,
  agency, street, cross street and ``UID``, so the order is stable from poll to poll).
- ``UID`` is not unique (the fire and police records of one crash share it) and is the
  latitude's digits (``29858146`` for 29.858146): it is used for ordering only and never
  stored, since it would keep the exact location.
- ``Address`` is a street name for fire calls (``WELLINGTON ST``) and a street address for
  police calls (``5511 HARRISBURG BLVD``, reduced to ``55XX HARRISBURG BLVD`` like any
  address); ``CrossStreet`` reads ``BLK <street>``, ``<ramp name>`` or ``DEAD-END``.
- ``Agency`` is ``F`` (Houston Fire) or ``P`` (Houston Police): stored in ``extra.agency`` as
  ``fire`` / ``police``. ``CALL_TIME`` is epoch milliseconds (UTC), to the minute.
- ``LATITUDE``/``LONGITUDE`` are attributes (the layer has no geometry), rounded to block
  precision by the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatchwatch.scraper import RawRow
from dispatchwatch.sources import arcgis
from dispatchwatch.sources.arcgis import coordinate, epoch_ms, text

URL = "https://mycity2.houstontx.gov/pubgis01/rest/services/HEC/HEC_Active_Incidents/MapServer/0"
HOMEPAGE = "https://cohgis-mycity.opendata.arcgis.com/"
AGENCIES = {"F": "fire", "P": "police"}

#: Incident field -> attribute (checked against the answer's ``fields`` block on every poll).
FIELDS = {
    "received": "CALL_TIME",
    "call_type": "IncidentType",
    "address": "Address",
    "units": "Units",
    "latitude": "LATITUDE",
    "longitude": "LONGITUDE",
}
IDENTITY = ("Agency", "CALL_TIME", "Address", "CrossStreet")


def row(attributes: Mapping[str, Any], geometry: Mapping[str, Any] | None) -> RawRow:
    """One listed incident; the adapter sets its ID from :data:`IDENTITY`."""
    agency = text(attributes.get("Agency"))
    extra = {
        "agency": AGENCIES.get(agency or "", agency),
        "cross_street": text(attributes.get("CrossStreet")),
        "alarm_level": attributes.get("ALARM_LEVEL"),
        "unit_count": attributes.get("NO_UNITS"),
        "key_map": text(attributes.get("KeyMap")),
        "combined_response": text(attributes.get("CombinedResponse")),
    }
    return RawRow(
        incident_id="",
        received=epoch_ms(attributes.get("CALL_TIME")),
        call_type=text(attributes.get("IncidentType")),
        address=text(attributes.get("Address")),
        units=text(attributes.get("Units")),
        latitude=coordinate(attributes.get("LATITUDE")),
        longitude=coordinate(attributes.get("LONGITUDE")),
        extra={k: v for k, v in extra.items() if v is not None},
    )


scraper = arcgis.scraper(
    slug="houston-emergency",
    name="Houston Emergency Center Active Incidents",
    agency="Houston Emergency Center (Houston Fire and Police)",
    city="Houston",
    state="TX",
    url=URL,
    homepage=HOMEPAGE,
    timezone="America/Chicago",
    interval="5m",
    mode="snapshot",
    fields=FIELDS,
    identity=IDENTITY,
    row=row,
    order="CALL_TIME, Agency, Address, CrossStreet, UID",
    # A few hundred incidents at most: one page, and the next only if the server says so.
    page_size=500,
    default_city="Houston",
    license="City of Houston public data.",
    source_notes=(
        "ArcGIS MapServer HEC_Active_Incidents, a snapshot of active fire and police "
        "incidents. No incident number: the ID is hash- + a hash of agency, call time, "
        "street and cross street (not the type, which changes while listed). Limits: a "
        "street or cross street corrected while listed reads as one incident gone and a new "
        "one; identical agency/minute/street/cross street calls get -2, -3 in the server's "
        "order. UID is not unique and is never stored (it is the exact latitude). "
        "extra.agency is fire or police."
    ),
)
