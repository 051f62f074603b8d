"""``dispatchwatch coverage``: a thin click layer over :func:`dispatchwatch.coverage.coverage`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .cli import clean_errors, config_option, db_option, resolve_db

if TYPE_CHECKING:
    from .coverage import Window


@click.command()
@click.argument("feed", required=False)
@click.option(
    "--since",
    metavar="DATE",
    help="From this local date (YYYY-MM-DD) or UTC time on (default: the first poll).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@db_option
@config_option
@clean_errors
def coverage(
    feed: str | None,
    since: str | None,
    as_json: bool,
    db_path: Path | None,
    config_path: Path | None,
) -> None:
    """How complete is the archive? Per feed (or FEED): the windows in which it was blind
    (no successful poll for longer than the feed's interval allows), the share of each local
    day it covered, and the days whose day log was never completed. Reads only.

    \b
    dispatchwatch coverage
    dispatchwatch coverage seattle-fire --since 2024-04-01
    dispatchwatch coverage --json | jq '.[].windows[].description'
    """
    from .coverage import coverage as feed_coverage

    database = resolve_db(db_path, config_path)
    results = feed_coverage(database, feed, since=since)
    if as_json:
        click.echo(json.dumps([item.as_dict() for item in results], indent=2))
        return
    if not results:
        click.echo(f"{database}: no feeds yet")
        return
    for number, item in enumerate(results):
        if number:
            click.echo("")
        click.echo(
            f"{item.feed} ({item.timezone}; every {item.interval_seconds:g}s; blind after "
            f"{item.allowed_gap_seconds:g}s without a successful or partial poll)"
        )
        blind = [w for w in item.windows if w.kind == "blind"]
        incomplete = [w for w in item.windows if w.kind == "incomplete"]
        click.echo(f"  blind windows: {len(blind) or 'none'}")
        for window in blind:
            click.echo(f"    {_window_line(window)}")
        if incomplete:
            click.echo(f"  incomplete windows (partial polls): {len(incomplete)}")
            for window in incomplete:
                click.echo(f"    {_window_line(window)}")
        if item.days:
            click.echo("  day         covered  polls  failed  partial  day log")
        for day in item.days:
            covered = "-" if day.covered is None else f"{day.covered * 100:.2f}%"
            click.echo(
                f"  {day.day}  {covered:>7}  {day.polls:>5}  {day.failed_polls:>6}  "
                f"{day.partial_polls:>7}  {day.day_log or '-'}"
            )
        if item.never_completed:
            click.echo(f"  day logs never completed: {', '.join(item.never_completed)}")


def _window_line(window: Window) -> str:
    """``2024-04-01 02:10:00-02:40:00 local, 6 polls failed: timeout (30 min)``: the date is
    added when the description gives only clock times."""
    description, starts_local = window.description, window.starts_local
    prefix = f"{starts_local[:10]} " if starts_local and description[2:3] == ":" else ""
    return f"{prefix}{description} ({window.minutes:g} min)"
