"""Make the Datasette screenshots in docs/ from a real `dispatchwatch demo` archive.

Runs the demo (simulated feeds on 127.0.0.1, the real daemon), serves its archive with
`dispatchwatch serve` and has headless Chromium take:

- docs/datasette-incidents.png: the incidents table, in each feed's local time, no map;
- docs/datasette-dashboard.png: the "Calls and feed health" dashboard.

Chromium resolves no host but 127.0.0.1: nothing leaves the machine.

    python docs/make_screenshot.py [--duration 20s] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from dispatchwatch.publish.dashboards import DASHBOARD

HERE = Path(__file__).resolve().parent

#: (output file, page, window size)
SHOTS = [
    ("datasette-incidents.png", "/demo/incidents", "1400,1100"),
    ("datasette-dashboard.png", f"/-/dashboards/{DASHBOARD}", "1400,1500"),
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
    parser.add_argument("--duration", default="20s", help="How long the demo runs.")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        subprocess.run(
            [sys.executable, "-m", "dispatchwatch", "demo", "--db", str(db)]
            + ["--duration", args.duration, "--interval", "1s"],
            check=True,
            capture_output=True,
        )
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
                screenshot(args.chromium, url + page, HERE / name, size, Path(tmp) / "profile")
                print(f"wrote {HERE / name}")
        finally:
            server.terminate()
            server.wait(15)


if __name__ == "__main__":
    main()
