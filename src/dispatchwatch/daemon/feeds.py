"""What the daemon keeps per feed: one small slotted object each, nothing that grows.

The daemon holds no page bodies, parse trees or incident lists between polls: what a poll
needs from before (the last poll's ETag, SHA-256, the feed's watermark) is read from the
archive when the poll starts, so memory is bounded by the number of feeds, not by history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..config import Feed


@dataclass(slots=True)
class FeedState:
    feed: Feed
    #: Consecutive failed polls, and when the last one was recorded (UTC text).
    failures: int = 0
    last_error_at: str | None = None
    #: The interval the feed's job currently runs at (stretched while failing).
    current_interval: float = 0.0
    host: str = ""
    #: When the scheduler meant the run being submitted to start (jitter included).
    scheduled_at: datetime | None = None
