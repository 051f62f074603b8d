"""The ``dispatchwatch`` command: a thin layer over the library."""

from __future__ import annotations

import atexit
import gc
import json
import sqlite3
import sys
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__, exitcodes
from .errors import DispatchwatchError

F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(function: F) -> F:
    """Turn expected errors into one clear line and exit 1 (:data:`exitcodes.ERROR`), never
    a traceback. A file the system or SQLite refuses is such an error too."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except DispatchwatchError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except sqlite3.Error as exc:
            raise click.ClickException(f"SQLite: {exc}") from None

    return wrapper  # type: ignore[return-value]


config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="config.yaml to read (default: ./config.yaml when it exists).",
)
plugins_option = click.option(
    "--plugins-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A folder of extra scraper modules (*.py) to load.",
)
db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The SQLite archive (default: the config's database, else dispatch.db).",
)


def load_optional_config(config_path: Path | None, plugins_dir: Path | None = None) -> Any:
    """The given config (must exist), else ./config.yaml if present, else None."""
    from .config import DEFAULT_CONFIG, load_config

    if config_path is None:
        if not Path(DEFAULT_CONFIG).exists():
            return None
        config_path = Path(DEFAULT_CONFIG)
    config = load_config(config_path)
    if plugins_dir is not None:
        from dataclasses import replace

        config = replace(config, plugins_dir=plugins_dir)
    return config


def resolve_feed(name: str, config_path: Path | None, plugins_dir: Path | None) -> Any:
    """A feed configured under ``name``, else a feed with the defaults of scraper ``name``."""
    from .config import default_feed

    config = load_optional_config(config_path, plugins_dir)
    if config is not None and name in config.feeds:
        return config.feeds[name]
    return default_feed(name, plugins_dir or (config.plugins_dir if config else None))


def resolve_db(db_path: Path | None, config_path: Path | None) -> Path:
    if db_path is not None:
        return db_path
    config = load_optional_config(config_path)
    return config.database if config is not None else Path("dispatch.db")


class LazyGroup(click.Group):
    """Imports the modules of the daemon and publishing commands only when they run, so
    ``dispatchwatch ingest`` in a shell loop starts fast."""

    lazy_commands: dict[str, str] = {
        "run": "dispatchwatch.cli_daemon:run",
        "status": "dispatchwatch.cli_daemon:status",
        "demo": "dispatchwatch.cli_daemon:demo",
        "simulate": "dispatchwatch.cli_simulate:simulate",
        "metadata": "dispatchwatch.cli_publish:metadata",
        "serve": "dispatchwatch.cli_publish:serve",
        "snapshot": "dispatchwatch.cli_publish:snapshot",
        "export": "dispatchwatch.cli_export:export",
        "reparse": "dispatchwatch.cli_reparse:reparse",
        "merge": "dispatchwatch.cli_reparse:merge",
        "coverage": "dispatchwatch.cli_coverage:coverage",
        "import": "dispatchwatch.cli_import:import_command",
        "backfill": "dispatchwatch.cli_backfill:backfill",
        "import-git": "dispatchwatch.cli_history:import_git",
        "import-snapshots": "dispatchwatch.cli_history:import_snapshots",
        "init": "dispatchwatch.cli_init:init",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            import importlib

            module_name, attribute = self.lazy_commands[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="dispatchwatch")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append the log here instead of stderr (reopened after logrotate moves it).",
)
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, log_file: Path | None, quiet: bool) -> None:
    """Archive near-real-time police and fire dispatch feeds into SQLite.

    \b
    dispatchwatch run                            poll the feeds in config.yaml
    dispatchwatch demo                           the whole pipeline, no internet
    dispatchwatch feeds                          list scrapers and configured feeds
    dispatchwatch parse seattle-fire page.html   a saved page as JSON lines
    dispatchwatch ingest milwaukee-police a.html b.html --db dispatch.db
    dispatchwatch stats --db dispatch.db
    dispatchwatch serve --db dispatch.db         browse with Datasette
    dispatchwatch init                           write a starter config.yaml
    """
    from .logs import remember_options

    remember_options(ctx, log_file, quiet)
    _freeze_at_exit()
    if ctx.invoked_subcommand in _BULK_COMMANDS:
        from .bulkgc import fewer_collections

        # Their start (imports, config, scrapers, a new archive's schema) allocates tens of
        # thousands of objects, most living to the end: collected as in the bulk part that
        # follows (a few passes instead of ~50; 1.4% of a one-page ingest's instructions),
        # until the command ends.
        ctx.with_resource(fewer_collections())


#: Commands whose start is collected less (see :func:`cli`).
_BULK_COMMANDS = frozenset({"ingest", "import"})


@cache
def _freeze_at_exit() -> None:
    """Freeze every object at exit, after the command's own exit handlers (registered later,
    run earlier): the collector's final pass over everything still alive (memos, modules:
    0.1-0.25 s after a bulk ingest, on the serial end of the job) skips frozen objects. They
    go with the process anyway; what holds files (the archive, temporary files) is closed by
    then. Once per process (tests invoke the CLI many times)."""
    atexit.register(gc.freeze)


@cli.command()
@config_option
@plugins_option
@clean_errors
def feeds(config_path: Path | None, plugins_dir: Path | None) -> None:
    """List the available scrapers and the feeds configured in config.yaml."""
    from .plugins import load_scrapers

    config = load_optional_config(config_path, plugins_dir)
    scrapers = load_scrapers(plugins_dir or (config.plugins_dir if config else None))
    click.echo("Scrapers:")
    width = max(len(slug) for slug in scrapers) if scrapers else 0
    for slug, scraper in scrapers.items():
        kind = "snapshot" if scraper.snapshot else "day log"
        if scraper.adapter and not scraper.snapshot:
            kind = f"{scraper.adapter}, incremental"
        elif scraper.adapter:
            kind = f"{scraper.adapter}, snapshot"
        if scraper.options.get("import_only"):
            kind = "import only"
        click.echo(
            f"  {slug:<{width}}  {scraper.name} ({scraper.city}; {scraper.timezone}; "
            f"every {scraper.interval}; {kind})"
        )
    if config is None:
        click.echo("\nNo config.yaml here: pass --config to list configured feeds.")
        return
    click.echo(f"\nFeeds in {config.path} (database {config.database}):")
    width = max((len(slug) for slug in config.feeds), default=0)
    scraper_width = max((len(f.scraper.slug) for f in config.feeds.values()), default=0)
    for slug, feed in config.feeds.items():
        state = "enabled " if feed.enabled else "disabled"
        every = f"every {feed.interval:g}s"
        if feed.import_only:
            state, every = "import  ", "import only"
        click.echo(
            f"  {slug:<{width}}  {feed.scraper.slug:<{scraper_width}}  {every:<11}  {state}  "
            f"{feed.url}"
        )


@cli.command()
@click.argument("feed")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@config_option
@plugins_option
@clean_errors
def parse(feed: str, file: Path, config_path: Path | None, plugins_dir: Path | None) -> None:
    """Parse a saved page of FEED and print its incidents as JSON lines (no database).

    \b
    dispatchwatch parse seattle-fire saved/2024-03-31.html | jq .address
    curl -s "$URL" | dispatchwatch parse milwaukee-police -
    """
    from .pipeline import parse_page

    resolved = resolve_feed(feed, config_path, plugins_dir)
    try:
        body = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise DispatchwatchError(f"cannot read {file}: {exc.strerror or exc}") from None
    parsed = parse_page(resolved, body, url=resolved.url)
    out = sys.stdout
    for incident in parsed.incidents:
        out.write(json.dumps(incident.as_dict(), ensure_ascii=False) + "\n")
    if not parsed.complete:
        # The rows are real; the list may not be whole. A warning, not a failure.
        out.flush()
        click.echo(f"warning: incomplete list: {parsed.reason}", err=True)


@cli.command()
@click.argument("feed")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@db_option
@config_option
@plugins_option
@click.option("-v", "--verbose", is_flag=True, help="One line per page.")
@click.option(
    "--force",
    is_flag=True,
    help="Also archive pages dated before the archive's last poll of the feed, as history "
    "only (incidents never seen before; nothing marked gone).",
)
@clean_errors
def ingest(
    feed: str,
    files: tuple[Path, ...],
    db_path: Path | None,
    config_path: Path | None,
    plugins_dir: Path | None,
    verbose: bool,
    force: bool,
) -> None:
    """Archive saved pages of FEED, in the given order, as consecutive polls.

    \b
    dispatchwatch ingest milwaukee-police mke/*.html --db dispatch.db

    Exits 4 if any page failed to parse (its poll is recorded as an error and it writes no
    incident), 1 if nothing could be archived (see the README's exit codes). Pages go in
    oldest first: a page dated before the archive's last poll of FEED stops the run (nothing
    of it written) unless --force. A page whose exact bytes are already archived is skipped,
    so running the same command twice adds nothing.
    """
    from .archive import Archive
    from .pipeline import check_readable, ingest_files

    resolved = resolve_feed(feed, config_path, plugins_dir)
    check_readable(files)  # before the archive is created or touched
    database = resolve_db(db_path, config_path)
    show_progress = not verbose and len(files) > 1 and sys.stderr.isatty()

    with Archive(database) as archive:
        if show_progress:
            with click.progressbar(length=len(files), label="Ingesting", file=sys.stderr) as bar:
                summaries = ingest_files(
                    archive,
                    resolved,
                    files,
                    on_page=lambda _path, _summary: bar.update(1),
                    force=force,
                )
        else:

            def report(path: Path, summary: Any) -> None:
                if verbose or summary.outcome in ("error", "partial"):
                    click.echo(f"{path}: {_describe(summary)}", err=summary.outcome != "new")

            summaries = ingest_files(archive, resolved, files, on_page=report, force=force)
    totals = {
        k: sum(getattr(s, k) for s in summaries) for k in ("new", "changed", "gone", "returned")
    }
    errors = [s for s in summaries if s.outcome == "error"]
    unchanged = sum(s.outcome in ("unchanged", "not_modified") for s in summaries)
    partial = sum(s.outcome == "partial" for s in summaries)
    already = sum(s.outcome == "already_archived" for s in summaries)
    click.echo(
        f"{len(summaries)} pages into {database}: {totals['new']} new, "
        f"{totals['changed']} changed, {totals['gone']} gone, {totals['returned']} returned; "
        f"{unchanged} unchanged pages, {partial} partial, {already} already archived, "
        f"{len(errors)} errors"
    )
    if errors:
        failed = click.ClickException(
            f"{len(errors)} of {len(summaries)} pages failed; first: {errors[0].error}"
        )
        failed.exit_code = exitcodes.POLLS_FAILED
        raise failed


def _describe(summary: Any) -> str:
    if summary.outcome == "error":
        return f"error ({summary.error_kind}): {summary.error}"
    if summary.outcome == "partial":
        return (
            f"partial, {summary.incidents} incidents kept ({summary.new} new, "
            f"{summary.changed} changed), nothing marked gone: {summary.error}"
        )
    if summary.outcome == "already_archived":
        return "already archived (same bytes), skipped"
    if summary.outcome != "new":
        return summary.outcome
    return (
        f"{summary.incidents} incidents: {summary.new} new, {summary.changed} changed, "
        f"{summary.gone} gone, {summary.returned} returned"
    )


@cli.command()
@db_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@clean_errors
def stats(db_path: Path | None, config_path: Path | None, as_json: bool) -> None:
    """Per feed: incidents, versions, first/last received, polls and the last poll."""
    from .archive import read_stats

    database = resolve_db(db_path, config_path)
    rows = read_stats(database)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"{database}: no feeds yet")
        return
    headers = list(rows[0])
    table = [headers] + [["" if row[h] is None else str(row[h]) for h in headers] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    for line in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def main() -> None:  # pragma: no cover - console entry point
    cli()
