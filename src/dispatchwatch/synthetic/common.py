"""What every synthetic feed model shares: events, diffs, zones and seeded draws.

A model draws every attribute of a call from its own ``random.Random(seed)`` when the call
arrives, so the state after ``advance(600)`` equals the state after ten ``advance(60)``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "CHICAGO",
    "LOS_ANGELES",
    "Diff",
    "Event",
    "EventKind",
    "check_start",
    "diff",
    "ordinal",
    "poisson_gap",
    "weighted",
]

CHICAGO = ZoneInfo("America/Chicago")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")

EventKind = Literal["new", "changed", "gone"]


@dataclass(frozen=True, slots=True)
class Event:
    """Something a poller could observe: an incident appeared, changed, or left the page."""

    at: datetime  # aware, the feed's local zone
    kind: EventKind
    incident_id: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Diff:
    new: int
    changed: int
    gone: int


def diff(before: Mapping[str, object], after: Mapping[str, object]) -> Diff:
    """Counts between two ``snapshot()`` results, as an archive of both pages would see them.

    For a day log (Seattle) ``gone`` is only non-zero across midnight, and an archive does not
    count it (a day log's rows never "leave").
    """
    common = before.keys() & after.keys()
    return Diff(
        new=len(after.keys() - before.keys()),
        changed=sum(1 for key in common if before[key] != after[key]),
        gone=len(before.keys() - after.keys()),
    )


def poisson_gap(rng: random.Random, rate_per_hour: float) -> timedelta:
    # Exponential inter-arrival times make the arrivals a Poisson process.
    return timedelta(seconds=rng.expovariate(rate_per_hour / 3600.0))


def weighted(rng: random.Random, table: Sequence[tuple[str, float]]) -> str:
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights)[0]


def ordinal(n: int) -> str:
    suffix = "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")
    return f"{n}{suffix}"


def check_start(start: datetime) -> datetime:
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    return start.astimezone(UTC)
