"""``dispatchwatch export``: a thin click layer over :func:`dispatchwatch.export.export`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .cli import clean_errors, config_option, db_option, resolve_db
from .export import FORMATS, TABLES, ExportError


def _bound(end: bool) -> Any:
    def convert(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        from .export import parse_bound

        try:
            return parse_bound(value, end=end)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


@click.command()
@click.option(
    "-f", "--format", "fmt", type=click.Choice(FORMATS), required=True, help="Output format."
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    metavar="PATH",
    help="A file for csv/ndjson (.gz compresses, - is standard output); a folder for parquet.",
)
@click.option(
    "--table",
    type=click.Choice(list(TABLES)),
    default="incidents",
    show_default=True,
    help="Which table to export.",
)
@click.option(
    "--feed", "feeds", multiple=True, metavar="SLUG", help="Only this feed (repeat for several)."
)
@click.option(
    "--since",
    metavar="DATE",
    callback=_bound(end=False),
    help="Rows dated at or after this UTC date or time (2024-04-01, 2024-04-01T07:00:00Z).",
)
@click.option(
    "--until",
    metavar="DATE",
    callback=_bound(end=True),
    help="Rows dated before this UTC time, or up to the end of this UTC date.",
)
@click.option("--replace", is_flag=True, help="Overwrite the output (a folder: a previous export).")
@db_option
@config_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@clean_errors
def export(
    fmt: str,
    out: str,
    table: str,
    feeds: tuple[str, ...],
    since: str | None,
    until: str | None,
    replace: bool,
    db_path: Path | None,
    config_path: Path | None,
    quiet: bool,
) -> None:
    """Export a table of the archive as CSV, NDJSON or Parquet (Hive-partitioned by feed and
    month), streaming: memory stays flat however big the archive.

    \b
    dispatchwatch export -f parquet -o lake/incidents
    dispatchwatch export -f csv -o seattle-2024.csv.gz --feed seattle-fire --since 2024-01-01
    dispatchwatch export -f ndjson -o - --table polls | jq .outcome
    duckdb -c "SELECT feed, month, count(*) FROM read_parquet('lake/incidents/**/*.parquet',
               hive_partitioning = 1) GROUP BY ALL"

    A row is dated by received_at (incidents; first_seen_at if the source gave no time),
    observed_at (incident_versions) or started_at (polls).
    """
    from .export import export as run_export
    from .logs import context_options

    quiet = quiet or bool(context_options().get("quiet"))  # `dispatchwatch --quiet export`
    database = resolve_db(db_path, config_path)
    bar: Any = None
    show_bar = not quiet and sys.stderr.isatty()

    def on_start(total: int) -> None:
        nonlocal bar
        if show_bar:
            bar = click.progressbar(length=total, label=f"Exporting {table}", file=sys.stderr)
            bar.__enter__()

    def on_progress(rows: int) -> None:
        if bar is not None:
            bar.update(rows)

    try:
        result = run_export(
            database,
            out,
            fmt,
            table=table,
            feeds=feeds,
            since=since,
            until=until,
            replace=replace,
            on_start=on_start if show_bar else None,
            on_progress=on_progress if show_bar else None,
        )
    except BrokenPipeError:  # `... -o - | head`: the reader has all it wanted
        sys.stderr.close()  # nothing more to say, and no "Exception ignored" at exit
        sys.exit(0)
    except OSError as exc:  # a full disk, a folder we may not write
        raise ExportError(f"export failed: {exc.strerror or exc}") from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if not quiet:
        click.echo(result.summary(), err=True)
