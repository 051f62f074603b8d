"""``dispatchwatch demo``: the whole pipeline with no internet.

Starts the loopback :class:`~dispatchwatch.simulate.Simulation` in-process, points the real
daemon (scheduler, fetcher, scrapers, archive) at it with short intervals, shows each poll as
it is archived, and after ``duration`` (or Ctrl-C) says what was archived and how to browse it.

The archive says it is simulated: each feed's name, agency, license and notes call it so
(:func:`simulated_feed`), which the Datasette metadata turns into a banner on every page, and
no call is "received" after the demo's clock: the simulated clock starts ``duration`` times
``speed`` before now, so it reaches the wall clock only as the demo ends.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .config import Config, Feed, parse_config
from .daemon import DaemonSettings, PollReport, run
from .errors import DispatchwatchError
from .publish.metadata import SIMULATED_NOTE

if TYPE_CHECKING:
    from .simulate import Simulation

#: Feed slug -> simulated kind and path name. The real slugs (so the same queries work), but
#: every description of the feeds says they are simulated (:func:`simulated_feed`).
DEMO_FEEDS = {
    "seattle-fire": ("seattle", "fire"),
    "milwaukee-police": ("milwaukee", "police"),
    "houston-emergency": ("arcgis", "HEC_Active_Incidents"),  # the ArcGIS adapter
    "cincinnati-police": ("socrata", "gexm-h6bt"),  # a config-only Socrata city
}
#: Config lines of the demo's config-only feeds (as the README's Cincinnati example).
DEMO_BLOCKS = {
    "cincinnati-police": [
        "adapter: socrata",
        "timezone: America/New_York",
        "mode: incremental",
        "time_field: create_time_incident",
        # The simulated clock starts up to days before the real one, where the first
        # incremental poll begins reading: read back far enough to see every simulated call.
        "look_back: 30d",
        "fields: {incident_id: event_number, received: create_time_incident, "
        "call_type: incident_type_desc, address: address_x, district: district, beat: beat, "
        "disposition: disposition_text, priority: priority, latitude: latitude_x, "
        "longitude: longitude_x}",
        "name: Cincinnati Police Calls for Service",
        "agency: Cincinnati Police Department",
        "city: Cincinnati",
    ],
}


@dataclass(slots=True)
class FeedTotals:
    polls: int = 0
    errors: int = 0
    new: int = 0
    changed: int = 0
    gone: int = 0


@dataclass(slots=True)
class DemoResult:
    database: Path
    base_url: str
    seconds: float
    #: From the live reports.
    totals: dict[str, FeedTotals] = field(default_factory=dict)
    #: From the archive afterwards: feed -> (incidents, versions, polls).
    archived: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def simulated_feed(feed: Feed) -> Feed:
    """``feed`` described as what it is: a simulation in the real feed's format, with no
    link to the real agency's page."""
    real = feed.scraper
    scraper = replace(
        real,
        name=f"SIMULATED {real.name} (dispatchwatch demo)",
        agency=f"Simulation in the format of the {real.agency} feed",
        homepage="",
        license="Simulated data: invented calls, not real ones.",
        source_notes=f"{SIMULATED_NOTE} Served on 127.0.0.1 by the demo; no call is real.",
    )
    return replace(feed, scraper=scraper)


def demo_config(database: Path, urls: dict[str, str], interval: float) -> Config:
    """The demo's config, as a user would write it (so it is validated the same way), its
    feeds described as simulated."""
    lines = [f"database: {database.resolve()}", "contact: demo@localhost", "feeds:"]
    for slug, url in urls.items():
        lines += [f"  {slug}:", f"    url: {url}", f"    interval: {interval}s"]
        lines += [f"    {line}" for line in DEMO_BLOCKS.get(slug, ())]
    config = parse_config("\n".join(lines) + "\n", database.parent / "demo-config.yaml")
    return replace(
        config, feeds={slug: simulated_feed(feed) for slug, feed in config.feeds.items()}
    )


def demo_url(sim: Simulation, kind: str, name: str) -> str:
    """Where the simulation serves a demo feed: a page, a Socrata dataset or an ArcGIS layer."""
    if kind == "socrata":
        return sim.socrata_url(name)
    if kind == "arcgis":
        return sim.arcgis_url(name)
    return sim.url(kind, name)


def simulation_start(duration: float, speed: float, now: datetime | None = None) -> datetime:
    """When the simulated clock starts: ``duration`` real seconds at ``speed`` end at
    ``now``, so no simulated call is received after the real clock."""
    now = now or datetime.now(UTC)
    return now - timedelta(seconds=duration * speed)


def _is_previous_demo(path: Path) -> bool:
    """True when ``path`` is an archive whose feeds all point at a loopback simulation.
    Another application's file (even one with a ``feeds`` table) never is, and is not
    touched by asking (see database.py)."""
    from .database import ARCHIVE, connect_read_only, identify

    try:
        if identify(path)[0] != ARCHIVE:
            return False
        conn = connect_read_only(path)
        try:
            urls = [row[0] for row in conn.execute("SELECT url FROM feeds")]
        finally:
            conn.close()
    except (sqlite3.Error, DispatchwatchError):
        return False
    return all(url.startswith("http://127.0.0.1:") for url in urls)


def prepare_database(path: Path) -> None:
    """Start from an empty archive: the simulation restarts its clock on every run, so an
    old demo's incidents would read as changes. Only ever deletes a previous demo's file."""
    if not path.exists():
        return
    if not _is_previous_demo(path):
        raise DispatchwatchError(
            f"{path} exists and is not a previous demo archive; pass another --db"
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def live_printer(out: TextIO, totals: dict[str, FeedTotals]) -> Callable[[PollReport], None]:
    """One line per archived poll: time, feed, +new ~changed -gone, running totals."""
    lock = threading.Lock()
    width = max(len(slug) for slug in DEMO_FEEDS)

    def show(report: PollReport) -> None:
        with lock:
            t = totals.setdefault(report.feed, FeedTotals())
            t.polls += 1
            t.new += report.new
            t.changed += report.changed
            t.gone += report.gone
            if report.outcome == "error":
                t.errors += 1
                what = f"error ({report.error_kind})"
            elif report.outcome == "new":
                what = f"+{report.new} new  ~{report.changed} changed  -{report.gone} gone"
            else:
                what = "unchanged" if report.outcome == "unchanged" else "not modified (304)"
            clock = datetime.now().strftime("%H:%M:%S")
            out.write(
                f"  {clock}  {report.feed:<{width}}  {what:<32}  total {t.new} incidents,"
                f" {t.changed} changes, {t.gone} gone\n"
            )
            out.flush()

    return show


def run_demo(
    database: Path,
    *,
    duration: float = 60.0,
    speed: float = 60.0,
    port: int = 0,
    interval: float = 2.0,
    seed: int = 0,
    stop: threading.Event | None = None,
    abort: threading.Event | None = None,
    out: TextIO,
) -> DemoResult:
    """Run the demo for ``duration`` seconds (or until ``stop``) and report what it archived."""
    from .simulate import Simulation

    database = Path(database)
    prepare_database(database)
    stop = stop or threading.Event()
    sim = Simulation(
        port=port, seed=seed, speed=speed, start=simulation_start(duration, speed),
        not_after_real_time=True,
    )  # fmt: skip
    base_url = sim.start()
    began = time.monotonic()
    result = DemoResult(database=database, base_url=base_url, seconds=0.0)
    try:
        urls = {slug: demo_url(sim, kind, name) for slug, (kind, name) in DEMO_FEEDS.items()}
        config = demo_config(database, urls, interval)
        out.write(
            f"Simulated feeds at {base_url} ({speed:g} simulated seconds per second)\n"
            f"Archiving into {database}, polling every {interval:g}s for {duration:g}s "
            "(Ctrl-C stops earlier)\n\n"
        )
        out.flush()
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
        try:
            run(
                config,
                stop=stop,
                abort=abort,
                on_poll=live_printer(out, result.totals),
                settings=DaemonSettings(stop_timeout=3.0),
            )
        finally:
            timer.cancel()
    finally:
        sim.stop()
    result.seconds = time.monotonic() - began
    result.archived = archived_counts(database)
    return result


def archived_counts(database: Path) -> dict[str, tuple[int, int, int]]:
    """feed -> (incidents, versions, polls), read back from the archive."""
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {
            slug: tuple(
                conn.execute(sql, [slug]).fetchone()[0]
                for sql in (  # type: ignore[misc]
                    "SELECT count(*) FROM incidents WHERE feed = ?",
                    "SELECT count(*) FROM incident_versions WHERE feed = ?",
                    "SELECT count(*) FROM polls WHERE feed = ?",
                )
            )
            for (slug,) in conn.execute("SELECT slug FROM feeds ORDER BY slug").fetchall()
        }
    finally:
        conn.close()


def summary_lines(result: DemoResult) -> list[str]:
    """What was archived, and how to look at it."""
    db = result.database
    lines = [f"Archived in {result.seconds:.0f}s into {db}:"]
    width = max((len(slug) for slug in result.archived), default=0)
    for slug, (incidents, versions, polls) in result.archived.items():
        errors = result.totals.get(slug, FeedTotals()).errors
        lines.append(
            f"  {slug:<{width}}  {incidents:>5} incidents  {versions:>5} versions  "
            f"{polls:>4} polls ({errors} errors)"
        )
    lines += [
        "",
        "Browse it:",
        f"  dispatchwatch serve --db {db}",
        f"  sqlite-utils tables {db} --counts",
        f"  dispatchwatch status --db {db}",
        f'  sqlite3 {db} "SELECT feed, call_type, count(*) AS n FROM incidents'
        ' GROUP BY 1, 2 ORDER BY n DESC LIMIT 10"',
    ]
    return lines
