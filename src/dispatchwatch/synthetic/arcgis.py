"""The Houston Emergency Center active-incidents layer, simulated (ArcGIS attributes).

:class:`ArcGISModel` lists the fire and police incidents being worked now, in the attributes
of ``HEC_Active_Incidents``: no incident number, ``UID`` the latitude's digits (so not unique:
a crash has a fire and a police record at one place), ``CALL_TIME`` epoch milliseconds (UTC)
to the minute, fire ``Address`` a street name, police ``Address`` a street address. While
listed an incident gains units, and about one in six changes type or alarm level (an EMS event
that turns out to be a fire); it leaves the list 20 to 120 minutes after the call.

Deterministic like the other models: the state after ``advance(600)`` equals the state after
ten ``advance(60)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .common import check_start, poisson_gap, weighted

__all__ = ["FIELDS", "ArcGISModel"]

#: The layer's ``fields`` block (names, types, lengths as the real one).
FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "UID", "type": "esriFieldTypeOID", "alias": "UID"},
    {"name": "Agency", "type": "esriFieldTypeString", "alias": "Agency", "length": 50},
    {"name": "Address", "type": "esriFieldTypeString", "alias": "Address", "length": 300},
    {"name": "CrossStreet", "type": "esriFieldTypeString", "alias": "CrossStreet", "length": 300},
    {"name": "CALL_TIME", "type": "esriFieldTypeDate", "alias": "CALL_TIME", "length": 8},
    {"name": "IncidentType", "type": "esriFieldTypeString", "alias": "IncidentType",
     "length": 300},
    {"name": "ALARM_LEVEL", "type": "esriFieldTypeInteger", "alias": "ALARM_LEVEL"},
    {"name": "NO_UNITS", "type": "esriFieldTypeInteger", "alias": "NO_UNITS"},
    {"name": "Units", "type": "esriFieldTypeString", "alias": "Units", "length": 500},
    {"name": "LONGITUDE", "type": "esriFieldTypeDouble", "alias": "LONGITUDE"},
    {"name": "LATITUDE", "type": "esriFieldTypeDouble", "alias": "LATITUDE"},
    {"name": "KeyMap", "type": "esriFieldTypeString", "alias": "KeyMap", "length": 50},
    {"name": "CombinedResponse", "type": "esriFieldTypeString", "alias": "CombinedResponse",
     "length": 50},
)  # fmt: skip

FIRE_TYPES: tuple[tuple[str, float], ...] = (
    ("EMS EVENT", 70),
    ("MOTOR VEHICLE INCIDENT", 8),
    ("AUTOMATIC ALARM", 5),
    ("TRASH FIRE", 3),
    ("UNKNOWN EVENT A LEVEL RESPONSE", 3),
    ("STRUCTURE FIRE", 3),
    ("GRASS FIRE", 2),
)
POLICE_TYPES: tuple[tuple[str, float], ...] = (
    ("CRASH/MINOR", 8),
    ("CRASH/MAJOR/NON FATAL", 8),
    ("CRASH/MINOR/FSGI", 5),
    ("TRAFFIC HAZARD/URGENT", 5),
    ("TRAFFIC HAZARD/NON URGENT", 3),
)
STREETS = (
    "WESTHEIMER RD", "GRIGGS RD", "AIRLINE DR", "TIDWELL RD", "GREENS RD", "BELLAIRE BLVD",
    "N SHEPHERD DR", "GULF FWY IB", "ALMEDA RD", "MAIN ST", "TELEPHONE RD", "WAYSIDE DR",
    "S GESSNER RD", "KIRBY DR", "LITTLE YORK RD", "IRVINGTON BLVD", "RICHMOND AVE",
)  # fmt: skip
CROSS = ("BLK {}", "BLK {}", "BLK {}", "{} EXIT RAMP", "DEAD-END", None)


@dataclass(slots=True)
class _Incident:
    agency: str
    address: str
    cross: str | None
    call_time: int  # epoch ms, to the minute
    call_type: str
    alarm: int
    units: list[str]
    lat: float
    lon: float
    key_map: str
    ends: datetime  # UTC
    # (when, what): a unit added ("unit", "E016") or a new type ("type", "STRUCTURE FIRE").
    changes: list[tuple[datetime, str, str]]


class ArcGISModel:
    """Houston's active incidents: arrive, gain units, change type, leave."""

    def __init__(
        self,
        seed: int = 0,
        start: datetime = datetime(2024, 3, 31, 19, 0, tzinfo=UTC),
        rate_per_hour: float = 60.0,
    ) -> None:
        if rate_per_hour <= 0:
            raise ValueError("rate_per_hour must be positive")
        self.rate_per_hour = rate_per_hour
        self._rng = random.Random(seed)
        self._now = check_start(start)
        self._incidents: list[_Incident] = []
        # Begin two hours back so the first answer already lists a full board.
        self._next = self._now - timedelta(hours=2) + poisson_gap(self._rng, rate_per_hour)
        self.advance(0)

    @property
    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += timedelta(seconds=seconds)
        self._arrive_until(self._now)
        self._incidents = [i for i in self._incidents if i.ends > self._now]

    def _arrive_until(self, until: datetime) -> None:
        while self._next <= until:
            self._incidents.append(self._new(self._next))
            self._next += poisson_gap(self._rng, self.rate_per_hour)

    def _new(self, at: datetime) -> _Incident:
        rng = self._rng
        police = rng.random() < 0.27
        street = rng.choice(STREETS)
        other = rng.choice([s for s in STREETS if s != street])
        cross_shape = rng.choice(CROSS)
        cross = cross_shape.format(other.split(" ")[0]) if cross_shape else None
        call_type = weighted(rng, POLICE_TYPES if police else FIRE_TYPES)
        address = f"{rng.randint(1, 149) * 100 + rng.randint(0, 99)} {street}" if police else street
        lat = round(29.55 + rng.random() * 0.45, 6)
        lon = round(-95.65 + rng.random() * 0.5, 6)
        minute = at.replace(second=0, microsecond=0)
        prefix = ("1A", "2A", "10H", "14D", "20G") if police else ("E", "A", "M", "L")
        units = [f"{rng.choice(prefix)}{rng.randint(1, 99):03d}"]
        ends = at + timedelta(minutes=rng.uniform(20, 120))
        changes: list[tuple[datetime, str, str]] = []
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            when = at + (ends - at) * rng.uniform(0.05, 0.6)
            changes.append((when, "unit", f"{rng.choice(prefix)}{rng.randint(1, 99):03d}"))
        if not police and rng.random() < 0.17:
            when = at + (ends - at) * rng.uniform(0.1, 0.5)
            changes.append((when, "type", rng.choice(("STRUCTURE FIRE", "FIRE EVENT"))))
        changes.sort(key=lambda c: c[0])
        return _Incident(
            agency="P" if police else "F",
            address=address,
            cross=cross,
            call_time=int(minute.timestamp()) * 1000,
            call_type=call_type,
            alarm=0,
            units=units,
            lat=lat,
            lon=lon,
            key_map=f"{rng.randint(330, 620)}{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}",
            ends=ends,
            changes=changes,
        )

    def features(self) -> list[dict[str, Any]]:
        """The listed incidents' attributes, newest call first (the layer's own order)."""
        now = self._now
        out = []
        for inc in self._incidents:
            if inc.ends <= now or datetime.fromtimestamp(inc.call_time / 1000, UTC) > now:
                continue
            units, call_type, alarm = list(inc.units), inc.call_type, inc.alarm
            for when, what, value in inc.changes:
                if when > now:
                    break
                if what == "unit":
                    units.append(value)
                else:
                    call_type, alarm = value, 1 if value == "STRUCTURE FIRE" else alarm
            out.append({
                "UID": int(round(inc.lat * 1_000_000)), "Agency": inc.agency,
                "Address": inc.address, "CrossStreet": inc.cross, "CALL_TIME": inc.call_time,
                "IncidentType": call_type, "ALARM_LEVEL": alarm, "NO_UNITS": len(units),
                "Units": ",".join(units), "LONGITUDE": inc.lon, "LATITUDE": inc.lat,
                "KeyMap": inc.key_map, "CombinedResponse": inc.agency,
            })  # fmt: skip
        out.sort(key=lambda a: -a["CALL_TIME"])
        return out
