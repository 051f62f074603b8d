"""``dispatchwatch backfill``: a thin click layer over :mod:`dispatchwatch.backfill`."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any

import click

from .cli import clean_errors, config_option, db_option, plugins_option, resolve_db, resolve_feed


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (use YYYY-MM-DD)") from None


@click.command()
@click.argument("feed")
@click.option("--since", callback=_date, metavar="DATE", help="First local day (YYYY-MM-DD).")
@click.option(
    "--until", callback=_date, metavar="DATE", help="Last local day (default: yesterday)."
)
@click.option("--newest-first", is_flag=True, help="Go from --until back to --since.")
@click.option(
    "--delay",
    type=click.FloatRange(0, 3600),
    default=1.0,
    show_default=True,
    help="Seconds to wait between requests to the source.",
)
@click.option(
    "--from-web-archive",
    is_flag=True,
    help="Archive the Internet Archive's captures of the feed's page instead.",
)
@click.option(
    "--cdx-url",
    default=None,
    metavar="URL",
    help="The CDX index to list captures from (default: web.archive.org's).",
)
@click.option("--wayback-url", default=None, metavar="URL", help="Where raw captures are served.")
@db_option
@config_option
@plugins_option
@clean_errors
def backfill(
    feed: str,
    since: date | None,
    until: date | None,
    newest_first: bool,
    delay: float,
    from_web_archive: bool,
    cdx_url: str | None,
    wayback_url: str | None,
    db_path: Path | None,
    config_path: Path | None,
    plugins_dir: Path | None,
) -> None:
    """Archive FEED's past: day by day from the source (day logs, Socrata, ArcGIS), or from
    the Internet Archive's captures of its page.

    \b
    dispatchwatch backfill seattle-fire --since 2024-03-01 --until 2024-03-07
    dispatchwatch backfill new-orleans-police --since 2011-01-01 --newest-first
    dispatchwatch backfill milwaukee-police --from-web-archive --since 2023-01-01

    Each day is one poll (kind "backfill"): it never marks anything gone and never moves the
    live watermark. Days already archived whole are skipped, so an interrupted backfill
    continues where it stopped when run again; Ctrl-C stops between days.
    """
    from datetime import UTC, datetime, timedelta

    from .archive import Archive
    from .backfill import (
        CDX_URL,
        WAYBACK_URL,
        BackfillError,
        backfill_from_web_archive,
    )
    from .backfill import backfill as run_backfill
    from .config import load_config
    from .fetch import Fetcher

    resolved = resolve_feed(feed, config_path, plugins_dir)
    database = resolve_db(db_path, config_path)
    contact = None
    if config_path is not None:
        contact = load_config(config_path).contact
    from .config import Config

    user_agent = Config(contact=contact).user_agent
    if not from_web_archive and since is None:
        raise BackfillError("--since is required (the first local day to archive)")
    if until is None and not from_web_archive:
        until = (datetime.now(UTC) - timedelta(days=1)).date()
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    show = sys.stderr.isatty()
    try:
        with Archive(database) as archive, Fetcher(user_agent) as fetcher:
            if from_web_archive:

                def on_capture(capture: Any, poll: Any) -> None:
                    if show:
                        what = "skipped" if poll is None else poll.outcome
                        click.echo(f"{capture.timestamp}: {what}", err=True)

                summary = backfill_from_web_archive(
                    archive, resolved, fetcher, since=since, until=until, delay=delay,
                    cdx_url=cdx_url or CDX_URL, wayback_url=wayback_url or WAYBACK_URL,
                    stop=stop, on_capture=on_capture,
                )  # fmt: skip
            else:
                assert since is not None and until is not None
                days = (until - since).days + 1
                with (
                    click.progressbar(
                        length=max(days, 0), label=f"Backfilling {resolved.slug}", file=sys.stderr
                    )
                    if show
                    else _NoBar() as bar
                ):
                    summary = run_backfill(
                        archive, resolved, fetcher, since=since, until=until,
                        newest_first=newest_first, delay=delay, stop=stop,
                        on_day=lambda _day, _poll: bar.update(1),
                    )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
    click.echo(f"{resolved.slug} into {database}: {summary.describe()}")
    for error in summary.errors[:5]:
        click.echo(f"  {error}", err=True)
    if summary.failed:
        from . import exitcodes

        sys.exit(exitcodes.POLLS_FAILED)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, _n: int) -> None:
        return None
