"""Make the Datasette screenshots in docs/ from a real `dispatchwatch demo` archive.

Runs the demo's library entry point (simulated feeds on 127.0.0.1, the real daemon, the
demo's watch rule) in two runs with the daemon down for ``--outage`` seconds in between (a
real blind window for every feed), serves the archive with `dispatchwatch serve` and has
headless Chromium take, at a laptop's 1280-pixel width:

- docs/datasette-incidents.png: the incidents table, in each feed's local time, no map;
- docs/datasette-dashboard.png: the "Calls and feed health" dashboard;
- docs/datasette-history.png: an incident's history (the canned query its page links to);
- docs/datasette-polls.png: the polls table, what matters first;
- docs/datasette-coverage.png: the coverage view: the blind windows that ended (the outage);
- docs/datasette-alert.png: the watch rule's matches (its Atom feed is the same + .atom).

Chromium resolves no host but 127.0.0.1: nothing leaves the machine.

    python docs/make_screenshot.py [--duration 20] [--outage 15] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx

from dispatchwatch.alerts import atom_query_name
from dispatchwatch.demo import DEMO_RULE, demo_session
from dispatchwatch.publish.dashboards import DASHBOARD

HERE = Path(__file__).resolve().parent

#: (output file, page, window size); {history} is filled in with a changed incident.
SHOTS = [
    ("datasette-incidents.png", "/demo/incidents", "1280,800"),
    ("datasette-dashboard.png", f"/-/dashboards/{DASHBOARD}", "1280,1500"),
    ("datasette-history.png", "/demo/incident_history?{history}", "1280,800"),
    ("datasette-polls.png", "/demo/polls", "1280,800"),
    ("datasette-coverage.png", "/demo/coverage?ends_at__notblank=1&kind=blind", "1280,800"),
    ("datasette-alert.png", f"/demo/{atom_query_name(DEMO_RULE)}", "1280,800"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def screenshot(chromium: str, url: str, out: Path, size: str, profile: Path) -> None:
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=8000",
            f"--screenshot={out.resolve()}",
            f"--window-size={size}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20, help="Seconds the demo polls.")
    parser.add_argument("--outage", type=float, default=15, help="Seconds the daemon is down.")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        total = args.duration + args.outage
        with demo_session(db, duration=total, speed=180, interval=1, out=io.StringIO()) as demo:
            demo.run(args.duration / 2)
            time.sleep(args.outage)  # the daemon is down: every feed's blind window
            demo.run(args.duration / 2)
        with sqlite3.connect(db) as conn:
            feed, incident_id = conn.execute(
                "SELECT feed, incident_id FROM incidents ORDER BY version DESC, feed LIMIT 1"
            ).fetchone()
        history = urllib.parse.urlencode({"feed": feed, "incident_id": incident_id})
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "dispatchwatch", "serve", "--db", str(db), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(url + "/-/versions.json", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                sys.exit("dispatchwatch serve did not start")
            for name, page, size in SHOTS:
                page = page.replace("{history}", history)
                screenshot(args.chromium, url + page, HERE / name, size, Path(tmp) / "profile")
                print(f"wrote {HERE / name}")
        finally:
            server.terminate()
            server.wait(15)


if __name__ == "__main__":
    main()
