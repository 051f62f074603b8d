"""``dispatchwatch demo``: the simulation and the real daemon, in one command."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_publish import Server, atom_entries  # pytest puts tests/ on sys.path

from dispatchwatch import demo as demo_module
from dispatchwatch.alerts import atom_query_name
from dispatchwatch.archive import Archive, FeedRecord
from dispatchwatch.demo import (
    DEMO_FEEDS,
    DEMO_RULE,
    DEMO_RULE_OPTIONS,
    alerts_available,
    demo_session,
    run_demo,
    simulation_start,
    summary_lines,
)
from dispatchwatch.publish import build_metadata
from dispatchwatch.publish.metadata import SIMULATED_NOTE


def demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dispatchwatch",
            "demo",
            "--duration",
            "4s",
            "--speed",
            "600",
            "--interval",
            "1s",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_archives_both_feeds_and_says_how_to_browse(tmp_path: Path) -> None:
    done = demo("--db", "demo.db", cwd=tmp_path)
    ended = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert done.returncode == 0, done.stderr
    # Live lines as polls are archived...
    live = [line for line in done.stderr.splitlines() if "total" in line]
    assert {slug for slug in DEMO_FEEDS if any(slug in line for line in live)} == set(DEMO_FEEDS)
    assert any(" new " in line and "+" in line for line in live)
    # ...then what was archived and how to look at it.
    assert "Archived in" in done.stdout
    assert "dispatchwatch serve --db demo.db" in done.stdout
    assert "sqlite-utils tables demo.db --counts" in done.stdout

    with closing(sqlite3.connect(tmp_path / "demo.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = dict(conn.execute("SELECT feed, count(*) FROM incidents GROUP BY feed"))
        assert set(counts) == set(DEMO_FEEDS) and all(n > 0 for n in counts.values())
        # No poll failed but for time (a loaded machine: each poll has its interval, 1 s);
        # a page the scrapers could not read would be a layout or parse error.
        kinds = {k for (k,) in conn.execute("SELECT error_kind FROM polls WHERE outcome = 'error'")}
        assert kinds <= {"timeout", "deadline_exceeded"}, kinds
        for slug, (incidents, _versions, _polls) in _summary_counts(done.stdout).items():
            assert counts[slug] == incidents
        first_url = conn.execute("SELECT url FROM feeds LIMIT 1").fetchone()[0]
        # Honest: every feed says it is simulated, and links to no real agency...
        for name, homepage, notes in conn.execute("SELECT name, homepage, source_notes FROM feeds"):
            assert name.startswith("SIMULATED ") and not homepage
            assert notes.startswith(SIMULATED_NOTE)
        # ...and nothing was received, seen or observed after the demo's (real) clock.
        latest = conn.execute(
            "SELECT max(received_at), max(first_seen_at), max(last_seen_at) FROM incidents"
        ).fetchone()
        assert all(when <= ended for when in latest), (latest, ended)
        observed = conn.execute("SELECT max(observed_at) FROM incident_versions").fetchone()[0]
        assert observed <= ended
        if alerts_available():  # the watch rule ran, and the summary says what it sent
            sent = conn.execute(
                "SELECT count(*) FROM alerts_sent WHERE sent_at IS NOT NULL"
            ).fetchone()[0]
            assert f"Watch rule {DEMO_RULE}: {sent} notifications for {sent} matching" in (
                done.stdout
            )
            assert done.stderr.count(" ALERT ") == sent
    meta = build_metadata(tmp_path / "demo.db")
    assert meta["title"].startswith("SIMULATED") and "SIMULATED DATA" in meta["description_html"]
    assert f"{atom_query_name(DEMO_RULE)}.atom" in meta["description_html"]

    # A second demo replaces the first one's archive (its simulated clock starts over).
    again = demo("--db", "demo.db", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    with closing(sqlite3.connect(tmp_path / "demo.db")) as conn:
        assert conn.execute("SELECT min(id) FROM polls").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM feeds").fetchone()[0] == len(DEMO_FEEDS)
    assert first_url.startswith("http://127.0.0.1:")


def _summary_counts(stdout: str) -> dict[str, tuple[int, int, int]]:
    counts = {}
    for line in stdout.splitlines():
        words = line.split()
        if words and words[0] in DEMO_FEEDS:
            counts[words[0]] = (int(words[1]), int(words[3]), int(words[5]))
    return counts


def test_demo_never_overwrites_a_real_archive(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.db"
    with Archive(path) as archive:
        archive.register_feed(
            FeedRecord(
                slug="seattle-fire",
                name="Seattle",
                agency="Fire",
                city="Seattle",
                scraper="seattle-fire",
                url="https://web.seattle.gov/sfd/realtime911/",
                timezone="America/Los_Angeles",
                snapshot=False,
                interval_seconds=60,
            )
        )
    before = path.read_bytes()
    done = demo("--db", str(path), cwd=tmp_path)
    assert done.returncode == 1
    assert "not a previous demo archive" in done.stderr and "Traceback" not in done.stderr
    assert path.read_bytes() == before


def test_run_demo_stops_when_asked(tmp_path: Path) -> None:
    """The library call behind the command: Ctrl-C (the stop event) ends it early."""
    stop = threading.Event()
    out = io.StringIO()

    def stop_once_every_feed_was_polled() -> None:  # start-up time varies: wait for polls
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            f" {slug} " in out.getvalue() for slug in DEMO_FEEDS
        ):
            time.sleep(0.05)
        stop.set()

    stopper = threading.Thread(target=stop_once_every_feed_was_polled)
    stopper.start()
    result = run_demo(
        tmp_path / "demo.db", duration=600, speed=600, interval=0.3, stop=stop, out=out
    )
    stopper.join()
    assert result.seconds < 60  # stopped long before its 600 s
    assert set(result.archived) == set(DEMO_FEEDS)
    assert all(incidents > 0 for incidents, _v, _p in result.archived.values())
    assert sum(t.polls for t in result.totals.values()) >= 2
    text = "\n".join(summary_lines(result))
    assert str(tmp_path / "demo.db") in text and "versions" in text
    assert "Simulated feeds at http://127.0.0.1:" in out.getvalue()


def test_simulated_clock_ends_at_the_real_one() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert simulation_start(60, 60, now) == now - timedelta(hours=1)
    assert simulation_start(3, 600, now) == now - timedelta(minutes=30)


def _matching_calls(db: Path) -> set[tuple[str, str]]:
    """The archive's calls that match the demo's rule, by its conditions, in plain SQL."""
    feeds = DEMO_RULE_OPTIONS["feeds"]
    types = DEMO_RULE_OPTIONS["call_types"]
    sql = (
        f"SELECT feed, incident_id FROM incidents WHERE feed IN ({', '.join('?' * len(feeds))})"
        f" AND ({' OR '.join(['instr(upper(call_type), ?) > 0'] * len(types))})"
    )
    with closing(sqlite3.connect(db)) as conn:
        return set(conn.execute(sql, [*feeds, *[t.upper() for t in types]]))


@pytest.mark.skipif(not alerts_available(), reason="apprise (the alerts extra) is not installed")
def test_demo_watch_rule_fires_once_per_call_across_a_restart(tmp_path: Path) -> None:
    """The demo's rule notifies each matching call once, through apprise to the demo's
    receiver on 127.0.0.1, also when the daemon restarts; its Atom feed in Datasette lists
    exactly those calls."""
    db = tmp_path / "demo.db"
    out = io.StringIO()
    # Two simulated hours: the first run (the backlog the first poll finds, and 30 minutes)
    # and, after the restart, 90 minutes of new calls.
    with demo_session(db, duration=8, speed=900, interval=0.4, out=out) as session:
        assert session.receiver is not None and session.receiver.url.startswith("json://127.0.0.1:")
        session.run(2)
        with closing(sqlite3.connect(db)) as conn:
            restart = conn.execute("SELECT max(started_at) FROM polls").fetchone()[0]
        before = list(session.receiver.received)
        session.run(6)  # the daemon restarts on the same archive and simulation
        received = list(session.receiver.received)
    matching = _matching_calls(db)
    notified = [(n.feed, n.incident_id) for n in received]
    assert before and len(received) > len(before)  # it fired in both runs
    assert all(n.rule == DEMO_RULE and n.title.startswith(f"[{DEMO_RULE}]") for n in received)
    assert len(notified) == len(set(notified))  # never twice for one call
    assert set(notified) == matching  # and every matching call once
    # The restart was a real test: calls notified before it were read again after it.
    with closing(sqlite3.connect(db)) as conn:
        seen_again = {
            (feed, incident_id)
            for feed, incident_id, last in conn.execute(
                "SELECT feed, incident_id, last_seen_at FROM incidents"
            )
            if last > restart
        }
    assert {(n.feed, n.incident_id) for n in before} & seen_again
    assert out.getvalue().count(" ALERT ") == len(received)
    with closing(sqlite3.connect(db)) as conn:
        sent = conn.execute(
            "SELECT count(*) FROM alerts_sent WHERE rule = ? AND sent_at IS NOT NULL",
            [DEMO_RULE],
        ).fetchone()[0]
    assert sent == len(received)

    # The rule's Atom feed, from a real Datasette on the demo archive, lists exactly them.
    server = Server(db, tmp_path / "serve.log")
    try:
        entries = atom_entries(server.get(f"/demo/{atom_query_name(DEMO_RULE)}.atom"))
        ids = [entry["id"] for entry in entries]
        assert all(entry["title"].startswith("SIMULATED: SHOTS") for entry in entries)
        query = build_metadata(db)["databases"]["demo"]["queries"][atom_query_name(DEMO_RULE)]
        assert query["title"].startswith("SIMULATED Alert: ")  # the feed's own title
        assert sorted(ids) == sorted(
            f"tag:dispatchwatch,2026:{DEMO_RULE}/{feed}/{incident_id}"
            for feed, incident_id in matching
        )
    finally:
        server.client.close()
        server.stop()


def test_demo_without_apprise_runs_without_the_rule_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain `pip install .` has no apprise: the demo still runs, and says the rule did
    not (rather than failing on the config's alerts)."""
    monkeypatch.setattr(demo_module, "alerts_available", lambda: False)
    out = io.StringIO()
    result = run_demo(tmp_path / "demo.db", duration=1.5, speed=600, interval=0.5, out=out)
    assert f"Watch rule {DEMO_RULE}: not run" in out.getvalue()
    assert "dispatchwatch[alerts]" in out.getvalue()
    assert result.rule is None and result.notifications == []
    assert not any("Watch rule" in line for line in summary_lines(result))
    assert set(result.archived) == set(DEMO_FEEDS)
    with closing(sqlite3.connect(tmp_path / "demo.db")) as conn:
        assert conn.execute("SELECT count(*) FROM alerts_sent").fetchone()[0] == 0
