"""Make docs/datasette-incidents.png: the incidents table as `dispatchwatch serve` shows it.

Builds a small demo archive (seeded, made-up calls in the last day, block-level addresses),
serves it on 127.0.0.1 and has headless Chromium take the screenshot. No internet needed
(the map's tiles stay blank offline; the markers still show).

    python docs/make_screenshot.py [--output docs/datasette-incidents.png]
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from dispatchwatch.archive import Archive, FeedRecord
from dispatchwatch.incident import Incident

HERE = Path(__file__).resolve().parent

FEEDS = [
    FeedRecord(
        "seattle-fire",
        "Seattle Fire Real-Time 911",
        "Seattle Fire Department",
        "Seattle",
        "seattle-fire",
        "https://web.seattle.gov/sfd/realtime911/",
        "America/Los_Angeles",
        False,
        60,
        state="WA",
        homepage="https://web.seattle.gov/sfd/realtime911/",
    ),
    FeedRecord(
        "milwaukee-police",
        "Milwaukee Police Dispatched Calls for Service",
        "Milwaukee Police Department",
        "Milwaukee",
        "milwaukee-police",
        "https://itmdapps.milwaukee.gov/MPDCallData/",
        "America/Chicago",
        True,
        300,
        state="WI",
        homepage="https://itmdapps.milwaukee.gov/MPDCallData/",
    ),
]
CALLS = {
    "seattle-fire": (
        (47.61, -122.33),
        [
            "Aid Response",
            "Medic Response",
            "Auto Fire Alarm",
            "Motor Vehicle Incident",
            "Triaged Incident",
            "Rubbish Fire",
            "Investigate Out Of Service",
        ],
        ["PINE ST", "SUMMIT AVE", "3RD AVE", "RAINIER AVE S", "AURORA AVE N", "15TH AVE NE"],
        ["E2", "E5", "E10", "M1", "M10", "L6", "A14", "B2"],
        [None],
        ["active", "closed"],
    ),
    "milwaukee-police": (
        (43.05, -87.95),
        [
            "TRAFFIC STOP",
            "SUBJ WANTED",
            "BUSINESS CHECK",
            "THEFT",
            "RECKLESS DRIVING",
            "ACCIDENT",
            "WELFARE CITIZEN",
            "BATTERY",
        ],
        ["N 35TH ST", "W NORTH AV", "S 6TH ST", "W CAPITOL DR", "N FOND DU LAC AV"],
        ["1132", "2241", "3114", "5312", "7221"],
        ["1", "2", "3", "4", "5", "6", "7"],
        ["Service in Progress", "Assignment Completed", "Unit En Route"],
    ),
}


def build_demo(path: Path, seed: int = 4) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    with Archive(path) as archive:
        for feed in FEEDS:
            archive.register_feed(feed)
            (lat, lon), types, streets, units, districts, statuses = CALLS[feed.slug]
            incidents = []
            for n in range(70):
                received = now - timedelta(minutes=rng.randint(5, 24 * 60))
                incidents.append(
                    Incident(
                        feed.slug,
                        f"{'F' if feed.slug.startswith('s') else ''}24{n:06d}",
                        received.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        rng.choice(types),
                        status=rng.choice(statuses),
                        address=f"{rng.randint(1, 45)}XX {rng.choice(streets)}",
                        district=rng.choice(districts),
                        units=" ".join(rng.sample(units, rng.randint(1, 3))),
                        latitude=round(lat + rng.uniform(-0.05, 0.05), 3),
                        longitude=round(lon + rng.uniform(-0.05, 0.05), 3),
                    )
                )
            incidents.sort(key=lambda i: i.received_at or "")
            archive.record_success(
                feed.slug,
                incidents,
                observed_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                snapshot=feed.snapshot,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE / "datasette-incidents.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "dispatch.db"
        build_demo(db)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
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
            subprocess.run(
                [
                    args.chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--hide-scrollbars",
                    f"--user-data-dir={tmp}/profile",
                    "--virtual-time-budget=8000",
                    f"--screenshot={args.output.resolve()}",
                    "--window-size=1400,1700",
                    f"{url}/dispatch/incidents?_facet_size=5",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        finally:
            server.terminate()
            server.wait(15)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
