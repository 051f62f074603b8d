"""``dispatchwatch import``: exported files into the archive through a mapping."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import clean_errors, config_option, db_option, plugins_option, resolve_db, resolve_feed
from .errors import ConfigError


def _settings(values: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes KEY=VALUE, not {item!r}")
        settings[key.strip()] = value.strip()
    return settings


@click.command("import")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--feed", "feed_name", help="The feed to fill (configured, or a scraper name).")
@click.option(
    "--mapping",
    "mapping_name",
    help="A shipped mapping by name (see --list-mappings) or a mapping YAML file.",
)
@click.option(
    "--on-error",
    type=click.Choice(["stop", "skip"]),
    default="stop",
    show_default=True,
    help="stop: a file with an unreadable row writes nothing (checked before writing); "
    "skip: archive the readable rows and report the others.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="FIELD=VALUE",
    help="A constant for every row, overriding the mapping's (e.g. --set year=2011).",
)
@click.option("--force", is_flag=True, help="Import files already imported (same SHA-256).")
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=10_000,
    show_default=True,
    help="Rows per transaction (one poll of kind 'import' each).",
)
@click.option("--list-mappings", is_flag=True, help="List the shipped mappings and exit.")
@db_option
@config_option
@plugins_option
@clean_errors
def import_command(
    files: tuple[Path, ...],
    feed_name: str | None,
    mapping_name: str | None,
    on_error: str,
    settings: tuple[str, ...],
    force: bool,
    batch_size: int,
    list_mappings: bool,
    db_path: Path | None,
    config_path: Path | None,
    plugins_dir: Path | None,
) -> None:
    """Archive exported FILES (CSV, TSV, Excel .xlsx/.xls, JSON, NDJSON) of a feed.

    \b
    dispatchwatch import calls.xlsx --feed chicago-police --mapping chicago-oemc-foia
    dispatchwatch import 2016.csv 2017.csv --feed new-orleans --mapping new-orleans-socrata-csv
    dispatchwatch import counts_2011.xlsx --feed chicago-police \\
        --mapping chicago-call-counts --set year=2011

    Every row is normalized like a polled one (UTC, block level) and archived in batches,
    never marking anything gone. Unreadable rows are reported by row number, never by
    content. A file imported before (same SHA-256 and mapping) is skipped.
    """
    from .imports.mapping import load_mapping, shipped_mappings

    if list_mappings:
        for name, description in shipped_mappings().items():
            click.echo(f"{name:<28}  {description}")
        return
    if not files:
        raise click.UsageError("give one or more FILES (or --list-mappings)")
    if not feed_name or not mapping_name:
        raise click.UsageError("--feed and --mapping are required")
    from .archive import Archive
    from .imports.run import import_files
    from .pipeline import check_readable

    feed = resolve_feed(feed_name, config_path, plugins_dir)
    mapping = load_mapping(mapping_name)
    if settings:
        mapping = mapping.with_constants(_settings(settings))
    paths = check_readable(files)  # before the archive is created or touched
    database = resolve_db(db_path, config_path)
    bar_state: dict[str, object] = {}
    show_progress = sys.stderr.isatty()

    def on_progress(path: Path, fraction: float) -> None:
        bar = bar_state.get(str(path))
        if bar is None:
            bar = click.progressbar(length=1000, label=path.name, file=sys.stderr)
            bar.__enter__()
            bar_state.clear()
            bar_state[str(path)] = bar
        target = int(fraction * 1000)
        bar.update(max(0, target - bar.pos))  # type: ignore[attr-defined]

    def on_file(report: object) -> None:
        for bar in bar_state.values():
            bar.__exit__(None, None, None)  # type: ignore[attr-defined]
        bar_state.clear()
        click.echo(report.summary(), err=report.outcome == "failed")  # type: ignore[attr-defined]
        problems = report.problems  # type: ignore[attr-defined]
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        more = report.bad - len(problems)  # type: ignore[attr-defined]
        if more > 0:
            click.echo(f"  ... and {more} more unreadable rows", err=True)

    with Archive(database) as archive:
        reports = import_files(
            archive,
            feed,
            paths,
            mapping,
            on_error=on_error,
            batch_size=batch_size,
            force=force,
            on_file=on_file,
            on_progress=on_progress if show_progress else None,
        )
    done = [r for r in reports if r.outcome == "imported"]
    click.echo(
        f"{len(done)} of {len(paths)} files into {database} ({feed.slug}): "
        f"{sum(r.imported for r in done)} rows archived, {sum(r.new for r in done)} new, "
        f"{sum(r.changed for r in done)} changed, {sum(r.counts for r in done)} counts, "
        f"{sum(r.bad for r in done)} unreadable rows skipped; "
        f"{sum(r.outcome == 'already_imported' for r in reports)} already imported"
    )
    failed = [r for r in reports if r.outcome == "failed"]
    if failed:
        raise click.ClickException(
            f"stopped at {failed[0].path}: unreadable rows (nothing of it was imported)"
        )
