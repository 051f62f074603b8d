"""The ``metadata``, ``serve`` and ``snapshot`` commands: thin wrappers over the publish package.

The lead's ``cli.py`` registers them with ``cli.add_command(...)``.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import tempfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from . import publish
from .cli import clean_errors, config_option, db_option, load_optional_config
from .errors import DispatchwatchError

_RULES_KEY = "dispatchwatch.alert_rules"


def _DB_OPTION(function: Callable[..., Any]) -> Callable[..., Any]:  # noqa: N802
    """``--db`` and ``--config``: the archive is ``--db``, else the config's ``database:``
    (``--config``, or ./config.yaml when it exists), else dispatch.db. The watch rules of
    that config (or of an explicit ``--config``) are kept for the metadata: each gets its
    Atom feed even before it fires."""

    @db_option
    @config_option
    @wraps(function)
    def wrapper(*args: Any, db_path: Path | None, config_path: Path | None, **kwargs: Any) -> Any:
        try:
            config = (
                load_optional_config(config_path)
                if db_path is None or config_path is not None
                else None
            )
        except DispatchwatchError as exc:
            raise click.ClickException(str(exc)) from None
        database = db_path or (config.database if config is not None else Path("dispatch.db"))
        rules = tuple(config.alerts) if config is not None else ()
        click.get_current_context().meta[_RULES_KEY] = rules
        return function(*args, db_path=database, **kwargs)

    return wrapper


def _metadata_for(
    db_path: Path, database_name: str | None = None, title: str | None = None
) -> dict:
    rules = click.get_current_context().meta.get(_RULES_KEY, ())
    try:
        return publish.build_metadata(
            db_path, database_name=database_name, title=title, alert_rules=rules
        )
    except (OSError, ValueError, sqlite3.Error) as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@_DB_OPTION
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    help="Output format (default: from the file's extension, else yaml).",
)
@click.option(
    "--database-name",
    help="The database's name in Datasette (default: the file's name without extension).",
)
@click.option("--title", help="The site's title (default: from the feeds' cities).")
@clean_errors
def metadata(
    db_path: Path,
    output: Path | None,
    fmt: str | None,
    database_name: str | None,
    title: str | None,
) -> None:
    """Write Datasette metadata for the archive: titles, sources, facets, canned queries."""
    if fmt is None:
        fmt = "json" if output is not None and output.suffix.lower() == ".json" else "yaml"
    text = publish.dump_metadata(_metadata_for(db_path, database_name, title), fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {output}", err=True)


@click.command()
@_DB_OPTION
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 exposes the archive to your network).",
)
@click.option("--port", default=8001, show_default=True, type=click.IntRange(0, 65535))
@clean_errors
def serve(db_path: Path, host: str, port: int) -> None:
    """Browse the live archive with Datasette, while the daemon keeps writing to it."""
    if importlib.util.find_spec("datasette") is None:
        raise click.ClickException(
            "Datasette is not installed: pip install 'dispatchwatch[datasette]'"
        )
    try:
        publish.prepare_live_archive(db_path)
    except (OSError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="dispatchwatch-") as tmp:
        metadata_path = Path(tmp) / "metadata.json"
        metadata_path.write_text(publish.dump_metadata(_metadata_for(db_path), "json"))
        command = publish.datasette_command(db_path, metadata_path, host=host, port=port)
        status = publish.run_datasette(command)
    if status not in (0, -15):  # -15: stopped by SIGTERM, as asked
        raise click.ClickException(f"datasette exited with status {status}")


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@_DB_OPTION
@click.option(
    "--feed",
    "feeds",
    multiple=True,
    metavar="SLUG",
    help="Keep only this feed (repeat for several).",
)
@click.option(
    "--since", metavar="DATE", help="Keep incidents received at or after this UTC date or time."
)
@click.option(
    "--until",
    metavar="DATE",
    help="Keep incidents received before this UTC time, or up to the end of this UTC date.",
)
@click.option("--replace", is_flag=True, help="Overwrite OUT if it exists.")
@clean_errors
@click.option(
    "--with-pages",
    is_flag=True,
    help="Keep the raw page store (pages, poll_pages); left out by default.",
)
def snapshot(
    out: Path,
    db_path: Path,
    feeds: tuple[str, ...],
    since: str | None,
    until: str | None,
    replace: bool,
    with_pages: bool,
) -> None:
    """Copy the archive to OUT consistently (safe while the daemon writes), ready for
    `datasette publish`."""
    try:
        result = publish.snapshot(
            db_path,
            out,
            feeds=feeds,
            since=publish.parse_bound(since) if since else None,
            until=publish.parse_bound(until, end=True) if until else None,
            replace=replace,
            with_pages=with_pages,
        )
    except (OSError, ValueError, RuntimeError, sqlite3.Error) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Copied {db_path} to {result.path} ({_size(result.size)})")
    click.echo(f"  kept feeds: {', '.join(result.feeds) or 'none'}")
    for table, count in result.counts.items():
        click.echo(f"  {table + ':':<19}{count:>9,}")
    if result.first_received:
        click.echo(f"  received: {result.first_received} to {result.last_received}")


def _size(nbytes: int) -> str:
    if nbytes < 1024:
        return f"{nbytes:,} bytes"
    size = nbytes / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
