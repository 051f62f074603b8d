"""The errors dispatchwatch raises on purpose, each with a short machine-readable ``kind``.

The ``kind`` is what the archive stores in ``polls.error_kind``; the message is what a person
reads in the log or on the command line.
"""

from __future__ import annotations


class DispatchwatchError(Exception):
    """Base class: an expected failure with a clear, one-line message."""

    kind = "error"


class ConfigError(DispatchwatchError):
    """config.yaml (or an option) is not valid. ``key`` names the offending option when the
    error comes from an adapter validating a feed's block (config.py then adds its line)."""

    kind = "config"

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class UnknownFeedError(DispatchwatchError):
    """A feed or scraper slug that nothing registers."""

    kind = "unknown_feed"


class PageError(DispatchwatchError):
    """A fetched page cannot be turned into incidents."""

    kind = "parse_error"


class LayoutError(PageError):
    """The page is not the layout the scraper knows (redesign, error page, login page...).

    Never raised for a page that legitimately lists no calls: that is an empty result.
    """

    kind = "layout_changed"


class FetchError(DispatchwatchError):
    """Fetching a page failed; ``kind`` says how (timeout, http_status, too_large...)."""

    def __init__(self, message: str, kind: str = "fetch_error", status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
