"""``dispatchwatch init``: a thin click layer over :mod:`dispatchwatch.starter`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import clean_errors
from .errors import ConfigError


def _contact(value: str) -> str:
    from .starter import check_contact

    try:
        return check_contact(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def on_terminal() -> bool:
    """Whether a person can answer a prompt (standard input is a terminal)."""
    return sys.stdin.isatty()


@click.command()
@click.argument("path", required=False, default="config.yaml", type=click.Path(path_type=Path))
@click.option(
    "--contact",
    metavar="EMAIL_OR_URL",
    help="Your e-mail or a URL, sent in the User-Agent (asked for on a terminal).",
)
@click.option(
    "--database",
    default="dispatch.db",
    show_default=True,
    help="The archive, relative to the config file.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@clean_errors
def init(path: Path, contact: str | None, database: str, force: bool) -> None:
    """Write a commented starter config.yaml (to PATH, default ./config.yaml).

    \b
    dispatchwatch init                               # asks for your contact address
    dispatchwatch init /etc/dispatchwatch/config.yaml --contact ops@newsroom.org
    """
    from .starter import PLACEHOLDER_CONTACT, contact_warning, write_starter_config

    target = path / "config.yaml" if path.is_dir() else path
    if target.exists() and not force:  # before asking anything
        raise ConfigError(f"{target} exists: pass --force to overwrite it")
    if contact is None:
        if on_terminal():
            contact = click.prompt(
                "Contact for the feeds' operators (your e-mail or a URL)", value_proc=_contact
            )
        else:
            contact = PLACEHOLDER_CONTACT
    written = write_starter_config(target, contact, force=force, database=database)
    click.echo(f"Wrote {written}")
    warning = contact_warning(contact)
    if warning:
        click.echo(f"Warning: {warning} (or run init again with --contact)", err=True)
    config = "" if str(written) == "config.yaml" else f" --config {written}"
    click.echo("Next:")
    click.echo(f"  dispatchwatch feeds{config}        # what it will poll")
    click.echo(f"  dispatchwatch run --once{config}   # one poll of each feed, then exit")
    click.echo(f"  dispatchwatch run{config}          # the daemon (see docs/daemon.md)")
