"""A Socrata calls-for-service dataset, simulated (Cincinnati's ``gexm-h6bt`` columns).

:class:`SocrataModel` is a dataset that grows as calls arrive and whose rows are rewritten as
calls progress: a unit is assigned, the call is closed with a disposition, and now and then
its type is reclassified after the fact (what New Orleans and San Francisco do). Each row
carries Socrata's system columns ``:id`` and ``:updated_at`` (UTC), so incremental polls on
either a time column or ``:updated_at`` and the ``max(:updated_at)`` probe all work against it.

Times are floating local timestamps (``2024-03-31T18:30:18.000``) in ``zone``, as Socrata
publishes them. Deterministic like the other models: the state after ``advance(600)`` equals
the state after ten ``advance(60)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .common import Event, check_start, poisson_gap, weighted

__all__ = ["SocrataModel"]

NEW_YORK = ZoneInfo("America/New_York")

TYPES: tuple[tuple[str, float], ...] = (
    ("DIRECTED PATROL", 18),
    ("TRAFFIC STOP", 14),
    ("DISORDERLY CROWD", 4),
    ("ACCIDENT - NO INJURIES", 6),
    ("ACCIDENT WITH INJURIES", 2),
    ("FAMILY TROUBLE", 5),
    ("THEFT REPORT", 5),
    ("SUSPICIOUS PERSON", 4),
    ("ALARM - BURGLAR", 6),
    ("SHOTS FIRED", 2),
    ("WELFARE CHECK", 4),
    ("PARKING VIOLATION", 3),
)
DISPOSITIONS: tuple[tuple[str, float], ...] = (
    ("ADV: ADVISED", 30),
    ("CAN: CANCEL", 12),
    ("GOA: GONE ON ARRIVAL", 15),
    ("REPORT TAKEN", 20),
    ("NR: NO REPORT", 18),
    ("ARR: ARREST", 5),
)
STREETS = (
    "VINE ST", "MAIN ST", "READING RD", "MCMILLAN ST", "GLENWAY AVE", "HARRISON AVE",
    "MONTGOMERY RD", "CENTRAL PKWY", "LUDLOW AVE", "RACE ST", "LIBERTY ST", "EZZARD CHARLES DR",
)  # fmt: skip


@dataclass(slots=True)
class _Call:
    number: str
    received: datetime  # UTC
    call_type: str
    priority: str
    address: str
    district: str
    beat: str
    latitude: str
    longitude: str
    # (when, column, value): what happens to the row later, in time order.
    changes: list[tuple[datetime, str, str]]


class SocrataModel:
    """A Socrata dataset of calls for service that grows and rewrites rows over time."""

    def __init__(
        self,
        seed: int = 0,
        start: datetime = datetime(2024, 3, 31, 18, 0, tzinfo=UTC),
        rate_per_hour: float = 40.0,
        zone: ZoneInfo = NEW_YORK,
        keep: timedelta = timedelta(hours=48),
    ) -> None:
        if rate_per_hour <= 0:
            raise ValueError("rate_per_hour must be positive")
        self.rate_per_hour = rate_per_hour
        self.zone = zone
        self.keep = keep
        self._rng = random.Random(seed)
        self._now = check_start(start)
        self._calls: list[_Call] = []
        self._seq = 0
        self.events: list[Event] = []
        # Begin two hours back so the first answer already holds rows, some closed.
        self._next = self._now - timedelta(hours=2) + poisson_gap(self._rng, rate_per_hour)
        self._arrive_until(self._now)

    @property
    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += timedelta(seconds=seconds)
        self._arrive_until(self._now)
        horizon = self._now - self.keep
        self._calls = [c for c in self._calls if c.received >= horizon]

    def _arrive_until(self, until: datetime) -> None:
        while self._next <= until:
            self._calls.append(self._new_call(self._next))
            self._next += poisson_gap(self._rng, self.rate_per_hour)

    def _new_call(self, received: datetime) -> _Call:
        rng = self._rng
        self._seq += 1
        local = received.astimezone(self.zone)
        number = f"CPD{local:%y%m%d}{self._seq:06d}"
        call_type = weighted(rng, TYPES)
        block = rng.randint(1, 49) * 100
        changes: list[tuple[datetime, str, str]] = []
        dispatched = received + timedelta(seconds=rng.uniform(30, 600))
        changes.append((dispatched, "status", "DISPATCHED"))
        closed = dispatched + timedelta(minutes=rng.uniform(5, 80))
        changes.append((closed, "disposition_text", weighted(rng, DISPOSITIONS)))
        changes.append((closed, "status", "CLOSED"))
        if rng.random() < 0.1:  # reclassified after the fact, within a day
            later = closed + timedelta(hours=rng.uniform(1, 20))
            changes.append((later, "incident_type_desc", weighted(rng, TYPES)))
        changes.sort(key=lambda c: c[0])
        return _Call(
            number=number,
            received=received,
            call_type=call_type,
            priority=str(rng.choice((1, 2, 2, 3, 3, 3, 4, 5))),
            address=f"{block + rng.randint(0, 99)} {rng.choice(STREETS)}",
            district=f"DISTRICT {rng.randint(1, 5)}",
            beat=f"P{rng.randint(1, 5)}{rng.randint(1, 4)}",
            latitude=f"{39.05 + rng.random() * 0.15:.6f}",
            longitude=f"{-84.65 + rng.random() * 0.25:.6f}",
            changes=changes,
        )

    def _floating(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M:%S.000")

    def rows(self) -> list[dict[str, str]]:
        """The dataset now, in ``:id`` order: one row per call, with ``:id`` and
        ``:updated_at`` (UTC, ``2024-03-31T18:30:18.000Z``)."""
        now = self._now
        out = []
        for call in self._calls:
            if call.received > now:
                continue
            row = {
                ":id": f"row-{call.number[3:]}",
                "event_number": call.number,
                "create_time_incident": self._floating(call.received),
                "incident_type_desc": call.call_type,
                "priority": call.priority,
                "address_x": call.address,
                "district": call.district,
                "beat": call.beat,
                "latitude_x": call.latitude,
                "longitude_x": call.longitude,
                "status": "PENDING",
            }
            updated = call.received
            for at, column, value in call.changes:
                if at > now:
                    break
                row[column] = value
                updated = at
            row[":updated_at"] = updated.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            out.append(row)
        return out
