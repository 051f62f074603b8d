"""Bounded command-line values: every number and duration an option takes is checked when
the command starts, so a typo is a usage error (exit 2) instead of a crash later.

Durations read like config.yaml's (``500ms``, ``30s``, ``2m``, ``1h``, ``7d``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

#: Threads polling at once: more than this only adds contention on one SQLite file.
MAX_WORKERS = 256
#: Simulated seconds per real second (a million is eleven simulated days a second).
MAX_SPEED = 1e6


class FiniteFloatRange(click.FloatRange):
    """:class:`click.FloatRange` that also refuses ``nan`` and ``inf`` (which it lets by)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def duration(
    minimum: float | None = None, maximum: float | None = None
) -> Callable[[click.Context, click.Parameter, Any], float | None]:
    """A click callback turning a duration option into seconds within the bounds
    (``maximum`` defaults to config.MAX_DURATION)."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: Any) -> float | None:
        if value is None:
            return None
        from .config import MAX_DURATION, parse_duration

        try:
            return parse_duration(value, minimum=minimum, maximum=maximum or MAX_DURATION)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback
