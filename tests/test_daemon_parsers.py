"""The daemon's parse processes (dispatchwatch.daemon.parsers): same archive, same errors.

Forking is only safe in a process without other threads, so the children are exercised in
fresh processes: ``dispatchwatch run`` itself, and a small script for the unit-level checks.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from dispatchwatch.simulate import Simulation

START = datetime(2024, 4, 1, 19, 0, tzinfo=UTC)
WAIT = 60.0
FIELDS = (
    "feed, incident_id, received_at, call_type, priority, status, disposition, address, city, "
    "district, beat, units, latitude, longitude, extra"
)


def _run_daemon(folder: Path, sim: Simulation, processes: int) -> tuple[list[dict], str]:
    """``dispatchwatch run`` with ``--parse-processes processes`` until every feed's first
    poll is reported; its reports and its log."""
    folder.mkdir()
    lines = ["database: dispatch.db", "contact: tests@example.org", "feeds:"]
    for n in range(6):
        kind = "seattle" if n % 2 else "milwaukee"
        lines += [
            f"  feed-{n}:",
            f"    scraper: {'seattle-fire' if n % 2 else 'milwaukee-police'}",
            f"    url: {sim.url(kind, f'f{n}')}",
            "    interval: 1h",
        ]
    (folder / "config.yaml").write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "dispatchwatch", "run", "--config", "config.yaml"]
    command += ["--jsonl", "--parse-processes", str(processes)]
    with (folder / "daemon.log").open("w") as log:
        proc = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=log, text=True)
        assert proc.stdout is not None
        reports = []
        try:
            for line in proc.stdout:
                reports.append(json.loads(line))
                if len(reports) == 6:
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=WAIT) == 0
    return reports, (folder / "daemon.log").read_text()


def _archived(folder: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    with sqlite3.connect(folder / "dispatch.db") as conn:
        incidents = conn.execute(f"SELECT {FIELDS}, version FROM incidents ORDER BY 1, 2")
        versions = conn.execute(
            f"SELECT {FIELDS}, version, changed, gone_at FROM incident_versions ORDER BY 1, 2, 16"
        )
        # The raw page store: a feed's first page is compressed in the parse process.
        pages = conn.execute("SELECT feed, sha256, size, base, depth, body FROM pages ORDER BY 1")
        return incidents.fetchall(), versions.fetchall(), pages.fetchall()


def test_the_archive_is_the_same_with_parse_processes(tmp_path: Path) -> None:
    with Simulation(seed=3, speed=0, start=START) as sim:
        here, log_here = _run_daemon(tmp_path / "here", sim, 0)
        there, log_there = _run_daemon(tmp_path / "there", sim, 1)
    assert "and 0 parse processes" in log_here
    assert "and 1 parse process\n" in log_there
    for reports in (here, there):
        assert sorted(r["outcome"] for r in reports) == ["new"] * 6
    assert {r["feed"]: r["new"] for r in here} == {r["feed"]: r["new"] for r in there}
    incidents, versions, pages = _archived(tmp_path / "here")
    assert len(incidents) > 300 and len(versions) == len(incidents) and len(pages) == 6
    assert _archived(tmp_path / "there") == (incidents, versions, pages)


SCRIPT = textwrap.dedent(
    """
    import hashlib, json
    from dispatchwatch.config import default_feed
    from dispatchwatch.daemon.parsers import ParseProcesses
    from dispatchwatch.pipeline import normalize
    from dispatchwatch.scraper import Page
    from dispatchwatch.synthetic import MilwaukeeModel, SeattleModel

    out = {}
    parsers = ParseProcesses(1)
    out["count"] = parsers.count
    pages = [
        (default_feed("seattle-fire"), SeattleModel(5).page()),
        (default_feed("milwaukee-police"), MilwaukeeModel(5).page()),
    ]
    same = []
    for feed, body in pages:
        page = Page(body, feed.url, {"Content-Type": "text/html"})
        result, incidents, as_of = parsers.parse(feed, page)
        local = feed.scraper.parse(page)
        same.append(
            result == local
            and (incidents, as_of) == normalize(feed, local.rows, local.as_of)
            and len(incidents) > 10
        )
    out["same"] = same
    # A feed's first page also comes compressed for the raw page store, its second does not.
    from dispatchwatch import pagestore
    first = pages[1][1]
    sha = hashlib.sha256(first).hexdigest()
    out["ahead"] = pagestore._ahead.get((sha, "")) == pagestore.compress_ahead(first, None)
    pagestore._ahead.clear()
    parsers.parse(pages[1][0], Page(first, pages[1][0].url))
    out["ahead_again"] = len(pagestore._ahead)
    # A page that does not parse there is parsed (and its error recorded) by the poll.
    feed = pages[0][0]
    out["garbage"] = parsers.parse(feed, Page(b"<html>not a day log</html>", feed.url))
    # A child that died: the page is parsed in the daemon; the child is not used again.
    pid = parsers.pids()[0]
    import os, signal
    os.kill(pid, signal.SIGKILL)
    out["after_kill"] = parsers.parse(feed, Page(pages[0][1], feed.url))
    out["count_after"] = parsers.count
    parsers.close()
    print(json.dumps(out))
    """
)


def test_parse_processes_parse_as_the_poll_would(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out == {
        "count": 1,
        "same": [True, True],
        "ahead": True,
        "ahead_again": 0,
        "garbage": None,
        "after_kill": None,
        "count_after": 0,
    }
    assert "a parse process stopped" in done.stderr
