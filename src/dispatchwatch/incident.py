"""The normalized incident: one call for service, as every feed is stored."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The fields that describe an incident (everything but its identity). A change in any of
#: them adds a version to the archive.
TRACKED_FIELDS: tuple[str, ...] = (
    "received_at",
    "call_type",
    "priority",
    "status",
    "disposition",
    "address",
    "city",
    "district",
    "beat",
    "units",
    "latitude",
    "longitude",
    "extra",
)


@dataclass(slots=True)
class Incident:
    """One incident after normalization.

    ``received_at`` is UTC ISO 8601 with ``Z``; ``address`` is block level; ``units`` is
    space-separated, unique, in first-seen order; ``extra`` holds the source's other fields.
    """

    feed: str
    incident_id: str
    received_at: str | None = None
    call_type: str | None = None
    priority: str | None = None
    status: str | None = None
    disposition: str | None = None
    address: str | None = None
    city: str | None = None
    district: str | None = None
    beat: str | None = None
    units: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
