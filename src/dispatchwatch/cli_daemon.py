"""``dispatchwatch run``, ``status`` and ``demo``: thin click layers over the daemon package,
status.py and demo.py. The lead registers them on the group in cli.py."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from .cli import clean_errors, config_option, db_option, load_optional_config, resolve_db
from .cli_params import MAX_SPEED, MAX_WORKERS, FiniteFloatRange, duration
from .config import MAX_INTERVAL, MAX_TIMEOUT, MIN_INTERVAL, MIN_TIMEOUT
from .errors import ConfigError, DispatchwatchError

log = logging.getLogger("dispatchwatch.daemon")


def setup_logging(verbose: bool) -> None:
    """Log to stderr (or the group's ``--log-file``), one line per event; ``--quiet``: only
    warnings and errors (see :func:`dispatchwatch.logs.setup_logging`)."""
    from .logs import context_options
    from .logs import setup_logging as setup

    setup(verbose, **context_options())  # type: ignore[arg-type]


def install_stop_signals(stop: threading.Event, abort: threading.Event) -> None:
    """SIGTERM / Ctrl-C: stop gracefully; a second one: stop waiting for in-flight polls,
    including one whose write waits for another process to release the archive."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s again: abandoning in-flight polls", name)
            abort.set()
        else:
            log.info("%s: stopping", name)
            stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def exit_leaving_stragglers(code: int) -> None:
    """Exit with ``code``, without waiting for worker threads still stuck in a request.

    By now the archive is committed and closed and no poll may write any more, so there is
    nothing to wait for; but Python joins thread-pool workers at exit (even daemon ones), so
    one request stuck in a slow server would hold the exit for as long as it hangs."""
    stragglers = [
        t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()
    ]
    if not stragglers:
        sys.exit(code)
    log.debug("exiting with %d thread(s) still running", len(stragglers))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@click.command()
@config_option
@db_option
@click.option(
    "--once",
    is_flag=True,
    help="Poll every enabled feed once and exit: 0 if all succeeded, 4 if any failed.",
)
@click.option(
    "--jsonl",
    is_flag=True,
    help="Also print one JSON object per recorded poll on stdout (after it commits).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=MAX_WORKERS),
    default=None,
    help="Polls running at once (default: one per feed, at most 32).",
)
@click.option(
    "--parse-processes",
    type=click.IntRange(min=0, max=64),
    default=None,
    help="Child processes that parse changed pages (default: one per CPU beyond the first, "
    "at least one; 0: parse in the daemon's process).",
)
@click.option(
    "--backoff-max",
    callback=duration(MIN_INTERVAL, MAX_INTERVAL),
    default=None,
    metavar="DURATION",
    help="Longest interval a failing feed backs off to (default: 16 x its interval, at most 1h).",
)
@click.option(
    "--stop-timeout",
    callback=duration(MIN_TIMEOUT, MAX_TIMEOUT),
    default="10s",
    metavar="DURATION",
    show_default=True,
    help="How long to wait for in-flight polls when stopping.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@clean_errors
def run(
    config_path: Path | None,
    db_path: Path | None,
    once: bool,
    jsonl: bool,
    workers: int | None,
    parse_processes: int | None,
    backoff_max: float | None,
    stop_timeout: float,
    verbose: bool,
) -> None:
    """Poll the feeds of config.yaml on their intervals and archive every poll.

    Runs in the foreground and logs one line per poll to stderr (for systemd, containers
    or a terminal). SIGTERM or Ctrl-C stops it cleanly.

    \b
    dispatchwatch run --config config.yaml
    dispatchwatch run --once          # for cron: exit 4 if any feed failed
    """
    from .daemon import DaemonSettings, PollReport
    from .daemon import run as run_daemon

    setup_logging(verbose)
    config = load_optional_config(config_path)
    if config is None:
        raise ConfigError(
            "no config.yaml here: pass --config, or write one with `dispatchwatch init`"
        )
    from .starter import contact_warning

    # A placeholder, not a missing contact: a config without one is a deliberate choice.
    if config.contact and (warning := contact_warning(config.contact)):
        log.warning("%s (%s)", warning, config.path)
    settings = DaemonSettings(
        max_workers=workers,
        backoff_max=backoff_max,
        stop_timeout=stop_timeout,
        parse_processes=parse_processes,
    )
    on_poll = None
    if jsonl:
        lock = threading.Lock()

        def on_poll(report: PollReport) -> None:
            line = json.dumps(report.as_dict(), ensure_ascii=False)
            with lock:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

    stop, abort = threading.Event(), threading.Event()
    install_stop_signals(stop, abort)
    code = run_daemon(
        config,
        database=db_path,
        once=once,
        stop=stop,
        abort=abort,
        settings=settings,
        on_poll=on_poll,
    )
    exit_leaving_stragglers(code)


@click.command()
@db_option
@config_option
@click.option(
    "--stale",
    "stale_after",
    callback=duration(maximum=366 * 86400.0),
    default=None,
    metavar="DURATION",
    help="A feed is stale when its last success is older than this "
    "(default: 3 x its interval, at least 15m).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@clean_errors
def status(
    db_path: Path | None, config_path: Path | None, stale_after: float | None, as_json: bool
) -> None:
    """Per feed: last success, last error, failures in a row, polls and new incidents in
    the last 24 hours.

    Exits 3 when any checked feed is stale or has never succeeded (so cron or a monitor
    can alert), 0 when all are healthy, 1 on an error (no archive, bad config). With a
    config (--config, or ./config.yaml) only its enabled feeds are checked.

    \b
    dispatchwatch status --db dispatch.db --stale 30m || mail -s "dispatchwatch" ops
    """
    from .status import archive_status, exit_code, format_table

    config = load_optional_config(config_path)
    database = resolve_db(db_path, config_path)
    intervals = {f.slug: f.interval for f in config.enabled_feeds} if config else None
    statuses = archive_status(database, intervals=intervals, stale_after=stale_after)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in statuses], indent=2))
    elif not statuses:
        click.echo(f"{database}: no feeds yet")
    else:
        for line in format_table(statuses):
            click.echo(line)
    sys.exit(exit_code(statuses))


@click.command()
@click.option(
    "--duration",
    callback=duration(maximum=MAX_INTERVAL),
    default="60s",
    metavar="DURATION",
    show_default=True,
    help="How long to run (Ctrl-C stops earlier).",
)
@click.option(
    "--speed",
    type=FiniteFloatRange(min=0, min_open=True, max=MAX_SPEED),
    default=60.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("demo.db"),
    show_default=True,
    help="The archive to write.",
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    help="Port of the simulated feeds (default: any free one).",
)
@click.option(
    "--interval",
    callback=duration(MIN_INTERVAL, MAX_INTERVAL),
    default="2s",
    metavar="DURATION",
    show_default=True,
    help="How often each feed is polled.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulated calls.")
@click.option("-v", "--verbose", is_flag=True, help="Show the daemon's own log too.")
@clean_errors
def demo(
    duration: float,
    speed: float,
    db_path: Path,
    port: int,
    interval: float,
    seed: int,
    verbose: bool,
) -> None:
    """See the whole pipeline work with no internet: simulated Seattle and Milwaukee feeds
    on 127.0.0.1, polled by the real daemon into a real archive.

    \b
    dispatchwatch demo                      # 60 s, one simulated minute per second
    dispatchwatch demo --duration 5m --db demo.db
    """
    from .demo import run_demo, summary_lines

    setup_logging(verbose)
    if not verbose:
        logging.getLogger("dispatchwatch").setLevel(logging.WARNING)
    stop, abort = threading.Event(), threading.Event()
    install_stop_signals(stop, abort)
    try:
        result = run_demo(
            db_path,
            duration=duration,
            speed=speed,
            port=port,
            interval=interval,
            seed=seed,
            stop=stop,
            abort=abort,
            out=sys.stderr,
        )
    except OSError as exc:
        raise DispatchwatchError(f"demo: {exc}") from None
    click.echo("")
    for line in summary_lines(result):
        click.echo(line)
    exit_leaving_stragglers(0)
