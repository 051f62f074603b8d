"""``dispatchwatch import-git`` and ``import-snapshots``: thin click layers over
:mod:`dispatchwatch.history`."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from .cli import clean_errors, config_option, db_option, plugins_option, resolve_db, resolve_feed


def _finish(slug: str, database: Path, summary: Any) -> None:
    click.echo(f"{slug} into {database}: {summary.describe()}")
    if summary.errors:
        from . import exitcodes

        sys.exit(exitcodes.POLLS_FAILED)


def _reporter(verbose: bool) -> Any:
    def report(snapshot: Any, result: Any) -> None:
        if verbose or result.outcome in ("error", "partial"):
            detail = result.error or ""
            click.echo(f"{snapshot.name}: {result.outcome} {detail}".rstrip(), err=True)

    return report


class _GitProgress:
    """A progress bar over the commits on a terminal; elsewhere (a service's log) a line
    every :attr:`EVERY` seconds. Nothing with ``-v``, which prints a line per commit."""

    EVERY = 60.0

    def __init__(self, stack: ExitStack, verbose: bool) -> None:
        self.stack, self.verbose = stack, verbose
        self.bar: Any = None
        self.total = self.done = 0
        self.told = time.monotonic()

    def start(self, total: int) -> None:
        self.total = total
        if sys.stderr.isatty() and not self.verbose:
            bar = click.progressbar(length=total, label="Commits", file=sys.stderr)
            self.bar = self.stack.enter_context(bar)

    def step(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif not self.verbose and time.monotonic() - self.told >= self.EVERY:
            self.told = time.monotonic()
            click.echo(f"{self.done:,} of {self.total:,} commits", err=True)


@click.command("import-git")
@click.argument("repo", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("path")
@click.option("--feed", "feed_name", required=True, help="The feed the snapshots are of.")
@click.option("--force", is_flag=True, help="Add snapshots older than the archive as history.")
@click.option("-v", "--verbose", is_flag=True, help="One line per commit.")
@db_option
@config_option
@plugins_option
@clean_errors
def import_git(
    repo: Path,
    path: str,
    feed_name: str,
    force: bool,
    verbose: bool,
    db_path: Path | None,
    config_path: Path | None,
    plugins_dir: Path | None,
) -> None:
    """Replay a git-scraping repository: every commit that changed PATH becomes one poll of
    the feed at the commit's time, oldest first.

    \b
    dispatchwatch import-git ~/src/mke-calls calls.html --feed milwaukee-police

    Streams any number of commits; running it again after new commits imports only those.
    """
    from .archive import Archive
    from .history import import_git as run_import

    feed = resolve_feed(feed_name, config_path, plugins_dir)
    database = resolve_db(db_path, config_path)
    report = _reporter(verbose)
    with Archive(database) as archive, ExitStack() as stack:
        progress = _GitProgress(stack, verbose)
        summary = run_import(
            archive, feed, repo, path, force=force,
            on_snapshot=lambda snapshot, result: (report(snapshot, result), progress.step()),
            on_total=progress.start,
        )  # fmt: skip
    _finish(feed.slug, database, summary)


@click.command("import-snapshots")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--feed", "feed_name", required=True, help="The feed the snapshots are of.")
@click.option(
    "--pattern",
    default=None,
    help="Regex finding the time in each file name, with named groups Y m d H M S.",
)
@click.option(
    "--zone", default="UTC", show_default=True, help="The time zone of the file-name times."
)
@click.option("--force", is_flag=True, help="Add snapshots older than the archive as history.")
@click.option("-v", "--verbose", is_flag=True, help="One line per snapshot.")
@db_option
@config_option
@plugins_option
@clean_errors
def import_snapshots(
    source: Path,
    feed_name: str,
    pattern: str | None,
    zone: str,
    force: bool,
    verbose: bool,
    db_path: Path | None,
    config_path: Path | None,
    plugins_dir: Path | None,
) -> None:
    """Replay a folder or zip of snapshot files, in the order of the time in their names.

    \b
    dispatchwatch import-snapshots captures/ --feed seattle-fire
    dispatchwatch import-snapshots mke.zip --feed milwaukee-police \\
        --pattern 'mke_(?P<Y>\\d{4})(?P<m>\\d\\d)(?P<d>\\d\\d)_(?P<H>\\d\\d)(?P<M>\\d\\d)' \\
        --zone America/Chicago
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from .archive import Archive
    from .history import DEFAULT_PATTERN, file_snapshots, replay

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {zone!r}", param_hint="--zone") from None
    feed = resolve_feed(feed_name, config_path, plugins_dir)
    database = resolve_db(db_path, config_path)
    snapshots = file_snapshots(source, pattern=pattern or DEFAULT_PATTERN, zone=zone)
    with Archive(database) as archive:
        summary = replay(
            archive, feed, iter(snapshots), force=force, on_snapshot=_reporter(verbose)
        )
    _finish(feed.slug, database, summary)
