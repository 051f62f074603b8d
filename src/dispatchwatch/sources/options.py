"""The options of the feed-family adapters (config.yaml), read and checked in one place.

The Socrata and ArcGIS adapters take the same kinds of options (a look-back duration, a page
size, a time zone, a mode, a field mapping, lists of columns, the keys a built-in feed lets
config.yaml set...). Each reader here returns the value in the form the adapter stores, or
raises :class:`~dispatchwatch.errors.ConfigError` with a one-line message naming the key
(``ConfigError.key``, which the config loader turns into the key's line).

``noun`` is what the adapter calls a source column ("column" for Socrata, "attribute" for
ArcGIS), so each message speaks the family's language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ConfigError

#: The incident fields a family's ``fields`` mapping may fill (Socrata adds ``location``).
INCIDENT_FIELDS = (
    "incident_id",
    "received",
    "call_type",
    "priority",
    "status",
    "disposition",
    "address",
    "district",
    "beat",
    "units",
    "latitude",
    "longitude",
)

__all__ = [
    "INCIDENT_FIELDS",
    "MODES",
    "check_builtin_keys",
    "check_known_keys",
    "column",
    "columns",
    "duration",
    "field_mapping",
    "interval_text",
    "mode",
    "page_size",
    "texts",
    "zone",
]

MODES = ("snapshot", "incremental")
#: The keys config.yaml sets over any built-in feed besides its adapter's tunables.
ENGINE_KEYS = ("_builtin", "url", "timezone", "interval")


def duration(key: str, value: Any) -> float:
    """A non-negative duration (``48h``, ``30m``, a number of seconds) in seconds."""
    from ..config import parse_duration

    try:
        seconds = parse_duration(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{key} must be a duration like 48h or 30m, not {value!r}", key=key
        ) from None
    if seconds < 0:
        raise ConfigError(f"{key} must not be negative", key=key)
    return seconds


def page_size(value: Any, maximum: int) -> int:
    """A whole number of rows per request, 1 to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ConfigError(f"page_size must be a whole number from 1 to {maximum}", key="page_size")
    return value


def zone(value: Any) -> str:
    """An IANA time zone name that zoneinfo knows."""
    try:
        ZoneInfo(value)
    except (ValueError, LookupError, TypeError):
        raise ConfigError(f"unknown time zone {value!r}", key="timezone") from None
    return value  # type: ignore[no-any-return]


def mode(value: Any) -> str:
    """``snapshot`` or ``incremental``."""
    if value not in MODES:
        raise ConfigError(f"mode must be snapshot or incremental, not {value!r}", key="mode")
    return value  # type: ignore[no-any-return]


def column(key: str, value: Any, pattern: re.Pattern[str], message: str) -> str:
    """One column name matching ``pattern``; ``message`` says what is expected."""
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigError(message, key=key)
    return value


def columns(key: str, value: Any, pattern: re.Pattern[str], noun: str) -> tuple[str, ...]:
    """A list of column names matching ``pattern``."""
    if not isinstance(value, list | tuple) or not all(
        isinstance(c, str) and pattern.match(c) for c in value
    ):
        raise ConfigError(f"{key} must be a list of {noun} names", key=key)
    return tuple(value)


def field_mapping(
    value: Any, allowed: Iterable[str], pattern: re.Pattern[str], noun: str, needs: str
) -> dict[str, str]:
    """``fields``: incident field -> source column, each field one of ``allowed``; ``needs``
    completes the message of a missing or empty mapping (``"(at least incident_id and
    received)"``). Required fields are the adapter's to check."""
    allowed = tuple(allowed)
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(
            f"fields must map incident fields to the {needs}",
            key="fields",
        )
    for target, name in value.items():
        if target not in allowed:
            raise ConfigError(
                f"fields: unknown field {target!r} (expected one of: {', '.join(allowed)})",
                key="fields",
            )
        if not isinstance(name, str) or not pattern.match(name):
            raise ConfigError(f"fields.{target} must be {_article(noun)} {noun} name", key="fields")
    return dict(value)


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


def check_builtin_keys(options: Mapping[str, Any], tunable: Iterable[str]) -> None:
    """Over a built-in feed, config.yaml may set only the engine's keys and ``tunable``."""
    tunable = tuple(tunable)
    for key in options:
        if key not in (*tunable, *ENGINE_KEYS):
            raise ConfigError(
                f"{key!r} is set by the built-in feed's module; to change it, copy the "
                f"module (see 'Add a city'). Options here: {', '.join(tunable)}",
                key=key,
            )


def check_known_keys(options: Mapping[str, Any], known: Iterable[str], adapter: str) -> None:
    """A config-only feed's block holds only its adapter's keys."""
    known = tuple(known)
    for key in options:
        if key not in known:
            raise ConfigError(
                f"unknown key {key!r} for adapter {adapter} (expected one of: {', '.join(known)})",
                key=key,
            )


def texts(options: Mapping[str, Any], keys: Iterable[str] = ("name", "agency", "city")) -> None:
    """The descriptive keys, where given, are text."""
    for key in keys:
        if key in options and not isinstance(options[key], str):
            raise ConfigError(f"{key} must be text", key=key)


def interval_text(value: Any) -> str:
    """A feed's ``interval`` as the scraper stores it: text, a bare number being seconds
    (the engine checks its bounds)."""
    return value if isinstance(value, str) else f"{value}s"
