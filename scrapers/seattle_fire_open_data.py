"""Seattle Fire Department: Real Time Fire 911 Calls (Socrata ``kzjm-xkqj``, data.seattle.gov).

The same dispatches as the Real-Time 911 page (``seattle-fire``), published as open data with
coordinates and updated every few minutes; the dataset holds every call since 2010, so the
feed is incremental on the call time (``datetime``, floating Pacific time), re-reading the
last 6 hours for rows that arrive late. A module made of a field mapping only: the simplest
shape of a Socrata city, the one to copy first.

Quirks (reproduced in ``fixtures/socrata/seattle_fire_911.json``): ``report_location`` is the
point (also in ``latitude``/``longitude``), rounded to block precision like every feed;
addresses are full street addresses (``105 5th Av S`` -> ``1XX 5TH AV S``) or intersections
(``Nw 59th St / 15th Av Nw``); the ``:@computed_region_...`` columns are left out.
"""

from __future__ import annotations

from dispatchwatch.sources import socrata

scraper = socrata.scraper(
    slug="seattle-fire-open-data",
    name="Seattle Fire Real Time 911 Calls (open data)",
    agency="Seattle Fire Department",
    city="Seattle",
    state="WA",
    url="https://data.seattle.gov/resource/kzjm-xkqj.json",
    homepage="https://data.seattle.gov/Public-Safety/Seattle-Real-Time-Fire-911-Calls/kzjm-xkqj",
    timezone="America/Los_Angeles",
    interval="5m",
    mode="incremental",
    time_field="datetime",
    look_back="6h",
    fields={
        "incident_id": "incident_number",
        "received": "datetime",
        "call_type": "type",
        "address": "address",
        "location": "report_location",
        "latitude": "latitude",
        "longitude": "longitude",
    },
    default_city="Seattle",
    license="City of Seattle open data (public domain dedication on the portal).",
    source_notes="Socrata kzjm-xkqj, incremental on datetime with a 6 h look-back.",
)
