"""``dispatchwatch demo``: the whole pipeline with no internet.

Starts the loopback :class:`~dispatchwatch.simulate.Simulation` in-process, points the real
daemon (scheduler, fetcher, scrapers, archive) at it with short intervals, shows each poll as
it is archived, and after ``duration`` (or Ctrl-C) says what was archived and how to browse it.

The archive says it is simulated: each feed's name, agency, license and notes call it so
(:func:`simulated_feed`), which the Datasette metadata turns into a banner on every page, and
no call is "received" after the demo's clock: the simulated clock starts ``duration`` times
``speed`` before now, so it reaches the wall clock only as the demo ends.

It also runs a watch rule (:data:`DEMO_RULE`): shots-fired calls of the simulated Milwaukee
and Cincinnati feeds are notified through apprise, as a real rule would be, to a small
receiver the demo runs on 127.0.0.1 (:class:`AlertReceiver`), which prints each one; each
matching call is notified once, also across a restart of the daemon (:class:`DemoSession`
runs it as often as asked against one simulation and one archive). Without apprise (the
``alerts`` extra) the demo runs without the rule and says so.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .alerts import atom_query_name
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


#: The demo's watch rule: its name, and its conditions as config.yaml spells them (the
#: receiver's URL is added by :func:`demo_config`).
DEMO_RULE = "shots-fired"
DEMO_RULE_OPTIONS = {
    "feeds": ["milwaukee-police", "cincinnati-police"],
    "call_types": ["SHOTS FIRED", "SHOTSPOTTER"],
}


def alerts_available() -> bool:
    """Whether watch rules can run here (apprise, from the ``alerts`` extra)."""
    return importlib.util.find_spec("apprise") is not None


_INCIDENT_LINE = re.compile(r"^(feed|incident_id): (.+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification the receiver accepted: the rule (the URL's path), apprise's title,
    and the call it is about (read from the message's ``feed:``/``incident_id:`` lines)."""

    rule: str
    title: str
    feed: str | None
    incident_id: str | None


class AlertReceiver:
    """A webhook receiver on 127.0.0.1 for apprise's ``json://`` notifications: records each
    one (:attr:`received`) and calls ``on_notification``. Nothing leaves the machine."""

    def __init__(self, on_notification: Callable[[Notification], None] | None = None) -> None:
        self.received: list[Notification] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                fields = dict(_INCIDENT_LINE.findall(str(body.get("message") or "")))
                note = Notification(
                    rule=self.path.strip("/"),
                    title=str(body.get("title") or ""),
                    feed=fields.get("feed"),
                    incident_id=fields.get("incident_id"),
                )
                with receiver._lock:
                    receiver.received.append(note)
                if on_notification is not None:
                    on_notification(note)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dispatchwatch-demo-alerts", daemon=True
        )

    @property
    def url(self) -> str:
        """The apprise URL of this receiver (``json://127.0.0.1:PORT``)."""
        return f"json://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


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
    #: The demo's watch rule (None: apprise missing, no rule ran) and what it notified.
    rule: str | None = None
    notifications: list[Notification] = field(default_factory=list)


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


def demo_config(
    database: Path, urls: dict[str, str], interval: float, alert_url: str | None = None
) -> Config:
    """The demo's config, as a user would write it (so it is validated the same way), its
    feeds described as simulated; with ``alert_url`` (an apprise URL), the watch rule
    :data:`DEMO_RULE` notifying it."""
    lines = [f"database: {database.resolve()}", "contact: demo@localhost", "feeds:"]
    for slug, url in urls.items():
        lines += [f"  {slug}:", f"    url: {url}", f"    interval: {interval}s"]
        lines += [f"    {line}" for line in DEMO_BLOCKS.get(slug, ())]
    if alert_url is not None:
        lines += ["alerts:", f"  {DEMO_RULE}:"]
        lines += [f"    {key}: {json.dumps(value)}" for key, value in DEMO_RULE_OPTIONS.items()]
        lines.append(f"    notify: [{json.dumps(f'{alert_url}/{DEMO_RULE}')}]")
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


def live_printer(
    out: TextIO, totals: dict[str, FeedTotals], lock: threading.Lock | None = None
) -> Callable[[PollReport], None]:
    """One line per archived poll: time, feed, +new ~changed -gone, running totals."""
    lock = lock or threading.Lock()
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


def alert_printer(out: TextIO, lock: threading.Lock) -> Callable[[Notification], None]:
    """One line per notification the demo's receiver got."""

    def show(note: Notification) -> None:
        with lock:
            clock = datetime.now().strftime("%H:%M:%S")
            out.write(f"  {clock}  ALERT {note.title}  ({note.feed} {note.incident_id})\n")
            out.flush()

    return show


#: Seconds a demo run waits for the daemon's first poll before counting its duration anyway.
STARTUP_GRACE = 60.0


@dataclass
class DemoSession:
    """One simulation, one archive and the demo's config (and alert receiver), for as many
    runs of the real daemon as asked (:meth:`run`): a second run is a daemon restart."""

    database: Path
    base_url: str
    config: Config
    out: TextIO
    receiver: AlertReceiver | None
    totals: dict[str, FeedTotals] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(
        self,
        duration: float,
        *,
        stop: threading.Event | None = None,
        abort: threading.Event | None = None,
    ) -> None:
        """Run the daemon for ``duration`` seconds of polling (or until ``stop``); returns
        once it has stopped (its alert worker included). The seconds count from the first
        archived poll: the daemon's start-up (opening or creating the archive) is not part
        of them, however slow the machine; without any poll the run ends after
        :data:`STARTUP_GRACE` + ``duration`` seconds."""
        stop = stop or threading.Event()
        first_poll, finished = threading.Event(), threading.Event()
        printer = live_printer(self.out, self.totals, self.lock)

        def on_poll(report: PollReport) -> None:
            first_poll.set()
            printer(report)

        def stop_after_duration() -> None:
            first_poll.wait(STARTUP_GRACE)
            if not finished.wait(duration):
                stop.set()

        timer = threading.Thread(target=stop_after_duration, name="dispatchwatch-demo-timer")
        timer.daemon = True
        timer.start()
        try:
            run(
                self.config,
                stop=stop,
                abort=abort,
                on_poll=on_poll,
                settings=DaemonSettings(stop_timeout=3.0),
            )
        finally:
            finished.set()


@contextmanager
def demo_session(
    database: Path,
    *,
    duration: float = 60.0,
    speed: float = 60.0,
    port: int = 0,
    interval: float = 2.0,
    seed: int = 0,
    out: TextIO,
) -> Iterator[DemoSession]:
    """Start the simulation (its clock ``duration`` x ``speed`` before now) and, when apprise
    is installed, the alert receiver; stop both on exit. The archive at ``database`` starts
    empty (:func:`prepare_database`)."""
    from .simulate import Simulation

    database = Path(database)
    prepare_database(database)
    sim = Simulation(
        port=port, seed=seed, speed=speed, start=simulation_start(duration, speed),
        not_after_real_time=True,
    )  # fmt: skip
    base_url = sim.start()
    lock = threading.Lock()
    receiver = AlertReceiver(alert_printer(out, lock)) if alerts_available() else None
    try:
        if receiver is not None:
            receiver.start()
        urls = {slug: demo_url(sim, kind, name) for slug, (kind, name) in DEMO_FEEDS.items()}
        config = demo_config(database, urls, interval, receiver.url if receiver else None)
        yield DemoSession(database, base_url, config, out, receiver, lock=lock)
    finally:
        if receiver is not None:
            receiver.stop()
        sim.stop()


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
    database = Path(database)
    began = time.monotonic()
    with demo_session(
        database, duration=duration, speed=speed, port=port, interval=interval, seed=seed,
        out=out,
    ) as session:  # fmt: skip
        result = DemoResult(database=database, base_url=session.base_url, seconds=0.0)
        result.totals = session.totals
        out.write(
            f"Simulated feeds at {session.base_url} ({speed:g} simulated seconds per second)\n"
            f"Archiving into {database}, polling every {interval:g}s for {duration:g}s "
            "(Ctrl-C stops earlier)\n"
        )
        if session.receiver is None:
            out.write(
                f"Watch rule {DEMO_RULE}: not run (alerts need apprise: "
                "pip install 'dispatchwatch[alerts]')\n"
            )
        else:
            result.rule = DEMO_RULE
            out.write(
                f"Watch rule {DEMO_RULE}: {' or '.join(DEMO_RULE_OPTIONS['call_types'])} in "
                f"{', '.join(DEMO_RULE_OPTIONS['feeds'])}, notified to {session.receiver.url}\n"
            )
        out.write("\n")
        out.flush()
        session.run(duration, stop=stop, abort=abort)
        if session.receiver is not None:
            result.notifications = list(session.receiver.received)
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
    if result.rule is not None:
        calls = len({(n.feed, n.incident_id) for n in result.notifications})
        lines += [
            "",
            f"Watch rule {result.rule}: {len(result.notifications)} notifications for {calls} "
            "matching calls (one each, never repeated, even after a restart). Its Atom feed, "
            "once served:",
            f"  http://127.0.0.1:8001/{db.stem}/{atom_query_name(result.rule)}.atom",
        ]
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
