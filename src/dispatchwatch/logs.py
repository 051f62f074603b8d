"""Logging for the command line: stderr (or ``--log-file``), one line per event.

The group options ``dispatchwatch --log-file FILE --quiet COMMAND`` are kept in the click
context, so every command that sets up logging (``run``, ``demo``) honours them.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from .errors import DispatchwatchError

_META = "dispatchwatch.logging"


def remember_options(ctx: click.Context, log_file: Path | None, quiet: bool) -> None:
    """Keep the group's logging options for the command that runs."""
    ctx.meta[_META] = {"log_file": log_file, "quiet": quiet}


def context_options() -> dict[str, object]:
    """The group's logging options, or the defaults outside a command."""
    ctx = click.get_current_context(silent=True)
    return dict(ctx.meta.get(_META, {})) if ctx is not None else {}


def setup_logging(
    verbose: bool = False, *, log_file: Path | None = None, quiet: bool = False
) -> None:
    """Log dispatchwatch's events (INFO and up; DEBUG with ``verbose``; WARNING and up with
    ``quiet``) to stderr, or appended to ``log_file``.

    On stderr under systemd (``JOURNAL_STREAM`` set) journald stamps each line itself, so we
    don't; a log file always gets the time. A log file is reopened when logrotate moves it
    (WatchedFileHandler). Raises :class:`DispatchwatchError` when the file cannot be opened.
    """
    if log_file is not None:
        # (imported here: logging.handlers costs every command's start-up ~10 ms)
        from logging.handlers import WatchedFileHandler

        try:
            handler: logging.Handler = WatchedFileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise DispatchwatchError(
                f"cannot open the log file {log_file}: {exc.strerror or exc}"
            ) from None
        fmt = "%(asctime)s %(levelname)s %(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = (
            "%(levelname)s %(message)s"
            if os.environ.get("JOURNAL_STREAM")
            else "%(asctime)s %(levelname)s %(message)s"
        )
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.getLogger("dispatchwatch").setLevel(level)
    # Third-party chatter (one line per request / per job run) only repeats our poll line,
    # and APScheduler's warning per skipped run is summed up by the daemon once a minute.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
