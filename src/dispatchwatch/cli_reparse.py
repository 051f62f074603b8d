"""The ``reparse`` and ``merge`` commands: thin wrappers over :mod:`dispatchwatch.reparse`
and :mod:`dispatchwatch.merge`."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import clean_errors, config_option, db_option, plugins_option, resolve_db, resolve_feed


def _bound(text: str | None, option: str, *, end: bool = False) -> str | None:
    """A --since/--until value as archive time text (UTC, milliseconds, ``Z``)."""
    if text is None:
        return None
    from .publish import parse_bound

    try:
        return parse_bound(text, end=end).replace("Z", ".000Z")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.command()
@click.argument("feed_name", metavar="FEED")
@db_option
@config_option
@plugins_option
@click.option("--since", metavar="DATE", help="Replay polls started at or after this UTC time.")
@click.option(
    "--until",
    metavar="DATE",
    help="Replay polls started before this UTC time (or up to the end of this UTC date).",
)
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON line.")
@clean_errors
def reparse(
    feed_name: str,
    db_path: Path | None,
    config_path: Path | None,
    plugins_dir: Path | None,
    since: str | None,
    until: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Rebuild FEED's incidents and versions from its stored raw pages with the current
    scraper, and print what changed (incidents, versions, fields)."""
    from .archive import Archive
    from .reparse import reparse as run_reparse
    from .reparse import reparse_json

    feed = resolve_feed(feed_name, config_path, plugins_dir)
    path = resolve_db(db_path, config_path)
    if not path.is_file():
        from .errors import DispatchwatchError

        raise DispatchwatchError(f"no archive at {path}")
    with Archive(path) as archive:
        result = run_reparse(
            archive,
            feed,
            since=_bound(since, "--since"),
            until=_bound(until, "--until", end=True),
            dry_run=dry_run,
        )
    click.echo(reparse_json(result) if as_json else result.describe())


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@clean_errors
def merge(out: Path, inputs: tuple[Path, ...]) -> None:
    """Merge the archives INPUTS (of disjoint feeds, e.g. one per daemon) into OUT."""
    from .merge import merge as run_merge

    result = run_merge(out, inputs)
    click.echo(
        f"Merged {len(inputs)} archive(s) into {result.out}: feeds {', '.join(result.feeds)}"
    )
    for table, count in sorted(result.rows.items()):
        click.echo(f"  {table + ':':<19}{count:>9,}")
