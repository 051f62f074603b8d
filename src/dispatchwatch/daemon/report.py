"""What a finished poll reports: the log line and the ``--jsonl`` object."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..status import human_duration, parse_time


@dataclass(slots=True)
class PollReport:
    """One finished poll: what :class:`~dispatchwatch.archive.Archive` recorded, plus timing
    and what the daemon will do next. ``--jsonl`` prints these."""

    feed: str
    poll_id: int
    outcome: str
    started_at: str
    duration_ms: float
    #: When the scheduler meant to start this poll (jitter included); None for --once.
    scheduled_at: str | None = None
    incidents: int = 0
    new: int = 0
    changed: int = 0
    gone: int = 0
    returned: int = 0
    http_status: int | None = None
    error_kind: str | None = None
    error: str | None = None
    consecutive_failures: int = 0
    #: Seconds until the next poll of this feed (None when not scheduled).
    next_in: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome != "error"

    @property
    def late_ms(self) -> float | None:
        """How much later than scheduled the poll started."""
        scheduled, started = parse_time(self.scheduled_at), parse_time(self.started_at)
        if scheduled is None or started is None:
            return None
        return round((started - scheduled).total_seconds() * 1000, 1)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "late_ms": self.late_ms}

    def describe(self) -> str:
        """The log line: ``seattle-fire new 220 incidents +3 new ~2 changed -0 gone 412ms``."""
        took = f"{self.duration_ms:.0f}ms"
        if self.outcome == "new":
            returned = f" +{self.returned} returned" if self.returned else ""
            return (
                f"{self.feed} new {self.incidents} incidents +{self.new} new "
                f"~{self.changed} changed -{self.gone} gone{returned} {took}"
            )
        if self.outcome == "error":
            line = f"{self.feed} error {self.error_kind}: {self.error} {took}"
            if self.consecutive_failures:
                line += f" ({self.consecutive_failures} in a row"
                if self.next_in is not None:
                    wait = self.next_in
                    line += f", next try in {f'{wait:.3g}s' if wait < 60 else human_duration(wait)}"
                line += ")"
            return line
        return f"{self.feed} {self.outcome} {took}"
