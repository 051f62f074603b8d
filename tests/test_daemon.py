"""The daemon, end to end: the real scheduler, the real Fetcher over 127.0.0.1, the real
scrapers and a real SQLite file, against the loopback Simulation.

Each simulated host is its own :class:`Simulation` (its own port), as feeds of different cities
are different hosts: the Fetcher's one-request-per-host rule then never couples two feeds.
Nothing here asserts how fast anything is; waits are bounded by generous timeouts only.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatchwatch import exitcodes
from dispatchwatch.archive import Archive, utc_now
from dispatchwatch.config import Config, parse_config
from dispatchwatch.daemon import Daemon, DaemonSettings, PollReport, backoff_interval
from dispatchwatch.fetch import Fetcher
from dispatchwatch.pipeline import process_page
from dispatchwatch.simulate import Simulation
from dispatchwatch.status import parse_time

START = datetime(2024, 4, 1, 19, 0, tzinfo=UTC)  # noon in Seattle, 2 pm in Milwaukee
WAIT = 60.0  # upper bound of any wait: a hung test fails instead of hanging

# What each simulated fault must be recorded as (polls.error_kind).
FAULT_KINDS = {
    "http500": {"http_status"},
    "http429": {"too_many_requests"},
    "slow": {"timeout"},
    "truncated": {"truncated"},
    "garbage": {"layout_changed", "parse_error"},
    "oversize": {"too_large"},
    "layout": {"layout_changed"},
    "drop": {"connection"},
}


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def simulations() -> Iterator[Callable[..., Simulation]]:
    """A factory of started simulations (one per simulated host), all stopped at the end."""
    started: list[Simulation] = []

    def make(speed: float = 0.0, seed: int = 1) -> Simulation:
        sim = Simulation(seed=seed, speed=speed, start=START)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def feed_yaml(
    slug: str, url: str, interval: str, scraper: str | None = None, **options: str
) -> str:
    lines = [f"  {slug}:", f"    url: {url}", f"    interval: {interval}"]
    if scraper:
        lines.append(f"    scraper: {scraper}")
    lines += [f"    {key}: {value}" for key, value in options.items()]
    return "\n".join(lines)


def write_config(tmp_path: Path, feeds: list[str], name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        "database: dispatch.db\ncontact: tests@example.org\nfeeds:\n" + "\n".join(feeds) + "\n"
    )
    return path


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def check_archive(db: Path) -> Iterator[sqlite3.Connection]:
    """Integrity, and the invariants a partial or failed poll would break; yields a connection
    to the archive for more checks and closes it, whatever happens."""
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # No version (and so no incident) comes from a poll that is not a successful parse
        # (whole, or partial: rows kept, nothing marked gone).
        assert (
            conn.execute(
                "SELECT count(*) FROM incident_versions v JOIN polls p ON p.id = v.poll_id "
                "WHERE p.outcome NOT IN ('new', 'partial') "
                "OR (p.outcome = 'partial' AND v.changed = '[\"gone_at\"]')"
            ).fetchone()[0]
            == 0
        )
        assert (
            conn.execute(
                "SELECT count(*) FROM incident_versions WHERE poll_id NOT IN (SELECT id FROM polls)"
            ).fetchone()[0]
            == 0
        )
        # Every committed poll is whole: its counts match the rows it wrote.
        for feed, new, changed, gone, returned in conn.execute(
            "SELECT feed, sum(new), sum(changed), sum(gone), sum(returned) FROM polls GROUP BY feed"
        ).fetchall():
            assert returned == 0  # no simulated call comes back, so versions add up exactly
            incidents = conn.execute(
                "SELECT count(*) FROM incidents WHERE feed = ?", [feed]
            ).fetchone()[0]
            versions = conn.execute(
                "SELECT count(*) FROM incident_versions WHERE feed = ?", [feed]
            ).fetchone()[0]
            assert (incidents, versions) == (new, new + changed + gone), feed
        yield conn


class DaemonProcess:
    """``python -m dispatchwatch run --jsonl`` in a subprocess; its reports are collected
    from stdout as they come (each is printed only after its poll committed)."""

    def __init__(self, config: Path, *args: str) -> None:
        self.log = config.parent / "daemon.log"
        self._stderr = self.log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dispatchwatch",
                "run",
                "--config",
                str(config),
                "--jsonl",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=config.parent,
        )
        self.reports: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.endswith("\n"):
                break  # cut short by a kill: not a report
            with self._lock:
                self.reports.append(json.loads(line))

    def of(self, feed: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.reports if r["feed"] == feed]

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        def check() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited ({self.proc.returncode}) while waiting "
                    f"for {what}:\n{self.stderr()}"
                )
            return predicate()

        wait_until(check, what)

    def signal(self, signum: int) -> int:
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=WAIT)
        finally:
            self.close()
        self._reader.join(timeout=WAIT)
        return code

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.log.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@pytest.fixture
def daemons() -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path, *args: str) -> DaemonProcess:
        process = DaemonProcess(config, *args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


class Recorder:
    """Collects the in-process daemon's reports."""

    def __init__(self) -> None:
        self.reports: list[PollReport] = []
        self._lock = threading.Lock()

    def __call__(self, report: PollReport) -> None:
        with self._lock:
            self.reports.append(report)

    def of(self, feed: str, since: int = 0) -> list[PollReport]:
        with self._lock:
            return [r for r in self.reports[since:] if r.feed == feed]

    def mark(self) -> int:
        with self._lock:
            return len(self.reports)


def config_of(tmp_path: Path, feeds: list[str]) -> Config:
    return parse_config(
        "database: dispatch.db\nfeeds:\n" + "\n".join(feeds) + "\n", tmp_path / "config.yaml"
    )


def test_poll_deadline(tmp_path: Path) -> None:
    # The per-poll deadline: at least 1 s, at most the interval or 2 x (connect + read).
    from dispatchwatch.daemon import poll_deadline

    config = config_of(
        tmp_path,
        [
            feed_yaml("seattle-fire", "http://127.0.0.1:9/a", "200ms"),
            feed_yaml("milwaukee-police", "http://127.0.0.1:9/b", "1h", timeout="5s"),
        ],
    )
    assert poll_deadline(config.feeds["seattle-fire"]) == 1.0
    assert poll_deadline(config.feeds["milwaukee-police"]) == 20.0


def test_backoff_interval() -> None:
    assert [backoff_interval(60, n) for n in range(6)] == [60, 120, 240, 480, 960, 960]
    assert backoff_interval(300, 10) == 3600  # 16 x 5m is over an hour: the hour wins
    assert backoff_interval(7200, 3) == 7200  # never below the interval itself
    assert backoff_interval(1, 100_000, cap=30) == 30  # no overflow after months of failures


# --- end to end: exact counts ----------------------------------------------------------------


def test_archives_exactly_what_was_served(
    tmp_path: Path,
    simulations: Callable[..., Simulation],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """Simulated time only moves when the test says so; the daemon polls each state of each
    feed many times (conditional GETs, unchanged bodies) and must archive exactly what
    ingesting each distinct page once gives."""
    seattle, milwaukee = simulations(seed=11), simulations(seed=12)
    urls = {
        "seattle-fire": seattle.url("seattle", "e2e"),
        "milwaukee-police": milwaukee.url("milwaukee", "e2e"),
    }
    config_path = write_config(
        tmp_path, [feed_yaml(slug, url, "300ms") for slug, url in urls.items()]
    )
    daemon = daemons(config_path)
    served: dict[str, list[bytes]] = {slug: [] for slug in urls}
    phases = 6
    for phase in range(phases):
        if phase:
            for sim in (seattle, milwaukee):
                sim.advance(300)  # one MPD refresh; Seattle dispatches and closes meanwhile
        mark = utc_now()
        for slug, url in urls.items():
            served[slug].append(httpx.get(url).content)  # the page every poll now gets
        # Polls that started after the move see the new state; wait for two of each feed, so
        # every state is also polled again (a conditional GET answered 304).
        daemon.wait_for(
            lambda mark=mark: all(
                sum(r["started_at"] > mark and r["outcome"] != "error" for r in daemon.of(slug))
                >= 2
                for slug in urls
            ),
            f"phase {phase} to be polled",
        )
    assert daemon.signal(signal.SIGTERM) == 0

    # The expectation, computed without the daemon: each distinct page ingested once.
    config = parse_config(config_path.read_text(), config_path)
    expected: dict[str, tuple[int, int, int]] = {}
    with Archive(tmp_path / "expected.db") as reference:
        for slug, bodies in served.items():
            feed = config.feeds[slug]
            reference.register_feed(feed.record())
            summaries = [process_page(reference, feed, body) for body in bodies]
            assert [s.outcome for s in summaries] == ["new"] * phases  # every phase differs
            expected[slug] = (
                sum(s.new for s in summaries),
                sum(s.changed for s in summaries),
                sum(s.gone for s in summaries),
            )
        rows = (
            "SELECT feed, incident_id, "
            + ", ".join(
                [
                    "received_at",
                    "call_type",
                    "status",
                    "address",
                    "city",
                    "district",
                    "units",
                    "extra",
                    "version",
                    "gone_at",
                ]
            )
            + " FROM incidents ORDER BY 1, 2"
        )
        expected_rows = reference.conn.execute(rows).fetchall()

    with check_archive(tmp_path / "dispatch.db") as conn:
        got = {
            feed: (new, changed, gone)
            for feed, new, changed, gone in conn.execute(
                "SELECT feed, sum(new), sum(changed), sum(gone) FROM polls GROUP BY feed"
            )
        }
        print("expected (new, changed, gone):", expected)
        assert got == expected
        assert conn.execute(rows).fetchall() == expected_rows
        # Meaningful numbers: Milwaukee's snapshot loses calls, both feeds gain and change some.
        (sea_new, sea_changed, sea_gone), (mke_new, mke_changed, mke_gone) = (
            expected["seattle-fire"],
            expected["milwaukee-police"],
        )
        assert sea_new > 0 and sea_changed > 0 and sea_gone == 0
        assert mke_new > 0 and mke_changed > 0 and mke_gone > 0
        # Polls in between were recorded as unchanged / not modified and added nothing.
        outcomes = dict(conn.execute("SELECT outcome, count(*) FROM polls GROUP BY outcome"))
        assert outcomes["new"] == 2 * phases
        assert outcomes["not_modified"] >= 2 * phases
        assert "error" not in outcomes


# --- faults ----------------------------------------------------------------------------------


def test_every_fault_is_recorded_and_the_others_keep_archiving(
    tmp_path: Path, simulations: Callable[..., Simulation]
) -> None:
    healthy = simulations(speed=600)  # a page that changes all the time
    faulty = {fault: simulations() for fault in FAULT_KINDS}
    feeds = [feed_yaml("seattle-fire", healthy.url("seattle", "ok"), "300ms")]
    for fault, sim in faulty.items():
        feeds.append(
            feed_yaml(
                f"mke-{fault}",
                sim.url("milwaukee", fault),
                "300ms",
                scraper="milwaukee-police",
                max_bytes="1MB",
            )
        )
    config = config_of(tmp_path, feeds)
    options: dict[str, dict[str, Any]] = {
        "slow": {"seconds": 3},
        "http429": {"retry_after": 2},
        "oversize": {"size": 3_000_000},
    }
    for fault, sim in faulty.items():
        sim.inject(sim.url("milwaukee", fault), fault, count=10_000, **options.get(fault, {}))
    recorder = Recorder()
    with Archive(config.database) as archive, Fetcher(config.user_agent) as fetcher:
        daemon = Daemon(
            config.enabled_feeds,
            archive,
            fetcher,
            on_poll=recorder,
            settings=DaemonSettings(backoff_max=2.5),
        )
        daemon.start()
        try:

            def failed_twice() -> bool:
                return all(
                    sum(r.outcome == "error" for r in recorder.of(f"mke-{fault}")) >= 2
                    for fault in FAULT_KINDS
                )

            wait_until(failed_twice, "every faulty feed to fail twice")
            during = recorder.of("seattle-fire")
            assert sum(r.new + r.changed for r in during) > 0
            for sim in faulty.values():
                sim.clear_faults()
            mark = recorder.mark()
            wait_until(
                lambda: all(
                    any(r.ok for r in recorder.of(f"mke-{fault}", mark)) for fault in FAULT_KINDS
                ),
                "every feed to recover",
            )
            # The reports of polls that ended while the daemon ran (see the backoff test).
            running = {slug: recorder.of(slug) for slug in {r.feed for r in recorder.reports}}
        finally:
            assert daemon.stop()
        for fault in FAULT_KINDS:
            reports = running[f"mke-{fault}"]
            errors = [r for r in reports if r.outcome == "error"]
            assert {r.error_kind for r in errors} <= FAULT_KINDS[fault], fault
            # The streak grew while failing and was reset by the first success.
            assert [r.consecutive_failures for r in errors[:2]] == [1, 2]
            assert reports[-1].ok and reports[-1].consecutive_failures == 0
            assert daemon.current_interval(f"mke-{fault}") == 0.3
        first_429 = next(r for r in running["mke-http429"] if r.outcome == "error")
        assert first_429.next_in == 2.0  # Retry-After beats the 0.6 s backoff
        assert all(r.ok for r in running["seattle-fire"])

    with check_archive(config.database) as conn:
        for fault, kinds in FAULT_KINDS.items():
            recorded = {
                kind
                for (kind,) in conn.execute(
                    "SELECT DISTINCT error_kind FROM polls WHERE feed = ? AND outcome = 'error'",
                    [f"mke-{fault}"],
                )
            }
            assert recorded and recorded <= kinds, fault
            assert (
                conn.execute(
                    "SELECT count(*) FROM polls WHERE feed = ? AND outcome = 'error' "
                    "AND (new + changed + gone + returned > 0 OR error IS NULL)",
                    [f"mke-{fault}"],
                ).fetchone()[0]
                == 0
            )
        assert (
            conn.execute(
                "SELECT count(*) FROM polls WHERE feed = 'seattle-fire' AND outcome = 'error'"
            ).fetchone()[0]
            == 0
        )
        # The 429 was answered with its status code.
        assert conn.execute(
            "SELECT DISTINCT http_status FROM polls WHERE feed = 'mke-http429' AND outcome = 'error'"
        ).fetchall() == [(429,)]


class BuggyFetcher(Fetcher):
    """A real Fetcher with a bug that bites every other call."""

    calls = 0

    def fetch(self, feed: Any, **kwargs: Any) -> Any:
        if feed.slug == "milwaukee-police":
            self.calls += 1
            if self.calls % 2:
                raise KeyError("a bug")
        return super().fetch(feed, **kwargs)


def test_an_unexpected_exception_is_an_internal_error_poll(
    tmp_path: Path, simulations: Callable[..., Simulation]
) -> None:
    sea, mke = simulations(), simulations()
    config = config_of(
        tmp_path,
        [
            feed_yaml("seattle-fire", sea.url("seattle", "x"), "200ms"),
            feed_yaml("milwaukee-police", mke.url("milwaukee", "x"), "200ms"),
        ],
    )
    recorder = Recorder()
    with Archive(config.database) as archive, BuggyFetcher(config.user_agent) as fetcher:
        daemon = Daemon(
            config.enabled_feeds,
            archive,
            fetcher,
            on_poll=recorder,
            settings=DaemonSettings(backoff_max=0.4),
        )
        daemon.start()
        try:
            wait_until(
                lambda: (
                    len(recorder.of("milwaukee-police")) >= 4
                    and len(recorder.of("seattle-fire")) >= 4
                ),
                "polls to go on",
            )
        finally:
            daemon.stop()
    kinds = {r.error_kind for r in recorder.of("milwaukee-police")}
    assert "internal" in kinds
    assert any(r.ok for r in recorder.of("milwaukee-police"))  # it kept polling
    with check_archive(config.database) as conn:
        (error,) = conn.execute(
            "SELECT DISTINCT error FROM polls WHERE error_kind = 'internal'"
        ).fetchone()
        assert error == "KeyError: 'a bug'"


# --- backoff ---------------------------------------------------------------------------------


def test_a_failing_feed_backs_off_alone_and_resets_on_success(
    tmp_path: Path, simulations: Callable[..., Simulation]
) -> None:
    bad_host, good_host = simulations(), simulations()
    config = config_of(
        tmp_path,
        [
            feed_yaml("milwaukee-police", bad_host.url("milwaukee", "b"), "200ms"),
            feed_yaml("seattle-fire", good_host.url("seattle", "g"), "200ms"),
        ],
    )
    bad, good = "milwaukee-police", "seattle-fire"
    bad_url = bad_host.url("milwaukee", "b")
    bad_host.inject(bad_url, "http500", count=10_000)
    settings = DaemonSettings(backoff_max=1.6)
    recorder = Recorder()
    with Archive(config.database) as archive, Fetcher(config.user_agent) as fetcher:
        daemon = Daemon(config.enabled_feeds, archive, fetcher, on_poll=recorder, settings=settings)
        daemon.start()
        try:
            wait_until(lambda: len(recorder.of(bad)) >= 5, "five failures")
            # The healthy feed's polls that ended while the daemon ran: one still in flight
            # when stop() shuts the scheduler down ends with no next run (next_in None), and
            # the fetcher's cancel() may end it in error.
            good_reports = recorder.of(good)
        finally:
            daemon.stop()
        failures = recorder.of(bad)[:5]
        assert [r.consecutive_failures for r in failures] == [1, 2, 3, 4, 5]
        # interval x 2^failures, capped at backoff_max
        assert [r.next_in for r in failures] == [0.4, 0.8, 1.6, 1.6, 1.6]
        assert daemon.current_interval(bad) == 1.6
        # The schedule itself was stretched: each retry was scheduled (by the daemon, not
        # measured) no sooner than next_in after the failure before it started. Jitter only
        # adds; the 1 ms is the rounding of the recorded timestamps.
        for before, after in zip(failures, failures[1:], strict=False):
            scheduled, started = parse_time(after.scheduled_at), parse_time(before.started_at)
            assert scheduled is not None and started is not None and before.next_in is not None
            assert (scheduled - started).total_seconds() >= before.next_in - 0.001
        # The healthy feed kept its own schedule and went on archiving meanwhile.
        assert all(r.ok and r.consecutive_failures == 0 for r in good_reports)
        assert daemon.current_interval(good) == 0.2
        assert all(
            r.next_in is not None and r.next_in <= 0.2 * (1 + settings.jitter) for r in good_reports
        )
        first, last = failures[0].started_at, failures[-1].started_at
        assert sum(first < r.started_at < last for r in good_reports) >= 3

        # A restart remembers the streak from the polls table...
        recorder = Recorder()
        restarted = Daemon(
            config.enabled_feeds, archive, fetcher, on_poll=recorder, settings=settings
        )
        streak = archive.conn.execute(
            "SELECT count(*) FROM polls WHERE feed = ? AND outcome = 'error'", [bad]
        ).fetchone()[0]
        assert restarted.consecutive_failures(bad) == streak >= 5
        assert restarted.consecutive_failures(good) == 0
        assert restarted.current_interval(bad) == 1.6
        last_error = archive.conn.execute(
            "SELECT max(started_at) FROM polls WHERE feed = ?", [bad]
        ).fetchone()[0]
        bad_host.clear_faults()
        restarted.start()
        try:
            # ...and keeps backing off: no poll before the last error + the backoff.
            next_run = restarted.next_run_time(bad)
            assert next_run is not None
            assert next_run >= datetime.fromisoformat(
                last_error.replace("Z", "+00:00")
            ) + timedelta(seconds=1.6)
            # The first success resets the feed to its interval.
            wait_until(lambda: len([r for r in recorder.of(bad) if r.ok]) >= 3, "recovery")
        finally:
            restarted.stop()
        first_ok = next(r for r in recorder.of(bad) if r.ok)
        assert first_ok.consecutive_failures == 0 and first_ok.next_in == 0.2
        assert restarted.current_interval(bad) == 0.2
    with check_archive(config.database):
        pass  # the integrity and invariant checks are all this test needs


# --- stopping --------------------------------------------------------------------------------


def test_abort_cuts_short_the_wait_for_a_write_stuck_behind_another_writer(
    tmp_path: Path, simulations: Callable[..., Simulation]
) -> None:
    """A write waiting out SQLite's busy timeout (another process holds the write lock) does
    not hold up a stop that is told to abort; the write still commits whole afterwards."""
    sim = simulations()
    url = sim.url("seattle", "busy")
    config = config_of(tmp_path, [feed_yaml("seattle-fire", url, "1h")])
    recorder = Recorder()
    with Archive(config.database) as archive, Fetcher(config.user_agent) as fetcher:
        daemon = Daemon(config.enabled_feeds, archive, fetcher, on_poll=recorder)
        with closing(sqlite3.connect(config.database, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # the write lock, as another process would
            daemon.start()
            # The page was requested (its last_parsed read is done): the poll's next use of
            # the archive is its write, which waits for the lock.
            wait_until(
                lambda: (
                    sim.stats().get("/seattle/busy", {}).get("requests", 0) >= 1
                    and daemon.writing == 1
                ),
                "the poll to wait for the write lock",
            )
            abort = threading.Event()
            abort.set()
            assert daemon.stop(60, abort=abort) is False
            assert daemon.writing == 1  # it did not wait for the write
            other.execute("ROLLBACK")
        wait_until(lambda: recorder.mark() == 1, "the write to commit and report")
    assert [r.outcome for r in recorder.reports] == ["new"]
    with check_archive(config.database) as conn:
        assert conn.execute("SELECT outcome FROM polls").fetchall() == [("new",)]


def test_sigterm_lets_the_poll_in_flight_commit(
    tmp_path: Path,
    simulations: Callable[..., Simulation],
    daemons: Callable[..., DaemonProcess],
) -> None:
    sim = simulations()
    url = sim.url("milwaukee", "slow")
    sim.inject(url, "slow", count=1, seconds=2)
    config = write_config(tmp_path, [feed_yaml("milwaukee-police", url, "5s", timeout="10s")])
    daemon = daemons(config)
    daemon.wait_for(
        lambda: sim.stats().get("/milwaukee/slow", {}).get("faults_served") == 1,
        "the slow request to start",
    )
    assert daemon.signal(signal.SIGTERM) == 0
    with check_archive(tmp_path / "dispatch.db") as conn:
        polls = conn.execute("SELECT id, outcome, incidents FROM polls").fetchall()
        # It waited for the slow poll, which then committed whole (check_archive) and reported.
        assert [(outcome, incidents > 0) for _id, outcome, incidents in polls] == [("new", True)]
        assert [r["poll_id"] for r in daemon.reports] == [polls[0][0]]
        assert "stopping" in daemon.stderr()


def test_sigint_abandons_a_poll_stuck_past_the_stop_timeout(
    tmp_path: Path,
    simulations: Callable[..., Simulation],
    daemons: Callable[..., DaemonProcess],
) -> None:
    sim = simulations()
    url = sim.url("seattle", "stuck")
    sim.inject(url, "slow", count=1, seconds=40)
    config = write_config(tmp_path, [feed_yaml("seattle-fire", url, "30s", timeout="60s")])
    daemon = daemons(config, "--stop-timeout", "500ms")
    daemon.wait_for(
        lambda: sim.stats().get("/seattle/stuck", {}).get("faults_served") == 1,
        "the slow request to start",
    )
    assert daemon.signal(signal.SIGINT) == 0
    with check_archive(tmp_path / "dispatch.db") as conn:
        assert conn.execute("SELECT count(*) FROM polls").fetchone()[0] == 0  # absent, not partial
        assert conn.execute("SELECT count(*) FROM feeds").fetchone()[0] == 1
        assert "abandoned 1 poll" in daemon.stderr()


def test_sigkill_during_heavy_writes_keeps_every_committed_poll(
    tmp_path: Path,
    simulations: Callable[..., Simulation],
    daemons: Callable[..., DaemonProcess],
) -> None:
    hosts = [simulations(speed=3000, seed=n) for n in range(3)]
    feeds = []
    for n in range(24):
        sim = hosts[n % 3]
        kind = "seattle" if n % 2 else "milwaukee"
        feeds.append(
            feed_yaml(
                f"feed-{n}",
                sim.url(kind, f"f{n}"),
                "200ms",
                scraper="seattle-fire" if n % 2 else "milwaukee-police",
            )
        )
    daemon = daemons(write_config(tmp_path, feeds))
    daemon.wait_for(lambda: len(daemon.reports) >= 80, "80 committed polls")
    daemon.proc.send_signal(signal.SIGKILL)
    assert daemon.proc.wait(timeout=WAIT) == -signal.SIGKILL
    daemon._reader.join(timeout=WAIT)

    with check_archive(tmp_path / "dispatch.db") as conn:
        reported = {r["poll_id"]: r for r in daemon.reports}
        assert len(reported) >= 80
        stored = {
            row[0]: row[1:]
            for row in conn.execute("SELECT id, feed, outcome, new, changed, gone FROM polls")
        }
        for poll_id, report in reported.items():
            assert stored[poll_id] == (
                report["feed"],
                report["outcome"],
                report["new"],
                report["changed"],
                report["gone"],
            ), poll_id
        assert sum(report["new"] for report in reported.values()) > 1000  # heavy indeed
    # The archive is usable after the crash: a new daemon opens it and goes on.
    # (Any feed with a committed whole poll: under load feed-0 may not have had one yet.)
    polled = next(r["feed"] for r in reported.values() if r["outcome"] in ("new", "unchanged"))
    with Archive(tmp_path / "dispatch.db") as archive:
        assert archive.last_parsed(polled) is not None


# --- --once and status -----------------------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatchwatch", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


def test_once_exit_codes_and_status(tmp_path: Path, simulations: Callable[..., Simulation]) -> None:
    sea, mke = simulations(), simulations()
    mke_url = mke.url("milwaukee", "once")
    config = write_config(
        tmp_path,
        [
            feed_yaml("seattle-fire", sea.url("seattle", "once"), "1m"),
            feed_yaml("milwaukee-police", mke_url, "5m", timeout="1s"),  # gives up within 4 s
            feed_yaml("mirror", mke_url, "5m", scraper="milwaukee-police", enabled="false"),
        ],
    )
    done = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "seattle-fire new" in done.stderr and "milwaukee-police new" in done.stderr

    mke.inject(mke_url, "http500", count=10_000)
    done = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    assert done.returncode == exitcodes.POLLS_FAILED, done.stderr
    assert "1 of 2 feeds failed" in done.stderr

    with check_archive(tmp_path / "dispatch.db") as conn:
        rows = conn.execute(
            "SELECT feed, outcome, error_kind FROM polls ORDER BY feed, id"
        ).fetchall()
        assert rows == [
            ("milwaukee-police", "new", None),
            ("milwaukee-police", "error", "http_status"),
            ("seattle-fire", "new", None),
            ("seattle-fire", "not_modified", None),
        ]

    # status: the failing feed succeeded minutes ago, so nothing is stale yet...
    done = run_cli("status", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "milwaukee-police" in done.stdout and "http_status" in done.stdout
    # ...unless the threshold says so.
    done = run_cli("status", "--config", str(config), "--stale", "1ms", "--json", cwd=tmp_path)
    assert done.returncode == exitcodes.UNHEALTHY
    assert {row["feed"] for row in json.loads(done.stdout) if row["stale"]} == {
        "seattle-fire",
        "milwaukee-police",
    }


def test_run_without_a_config_is_a_clear_error(tmp_path: Path) -> None:
    done = run_cli("run", cwd=tmp_path)
    assert done.returncode == 1
    assert "no config.yaml" in done.stderr and "Traceback" not in done.stderr


def test_the_log_line_per_poll(tmp_path: Path, simulations: Callable[..., Simulation]) -> None:
    sim = simulations()
    config = write_config(tmp_path, [feed_yaml("seattle-fire", sim.url("seattle", "l"), "1m")])
    done = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    (line,) = [line for line in done.stderr.splitlines() if "seattle-fire" in line]
    words = line.split()
    at = words.index("seattle-fire")
    assert words[at + 1 : at + 3] == ["new", words[at + 2]] and words[at + 3] == "incidents"
    assert words[at + 4].startswith("+") and words[at + 6].startswith("~")
    assert words[at + 8].startswith("-") and words[-1].endswith("ms")
