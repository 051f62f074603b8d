"""A daemon whose poll workers are all busy still says it is behind schedule.

The summary of skipped runs runs on the watchdog's thread: on the poll pool it would wait
behind the very polls that make the daemon late (a 10,000-feed start-up logged nothing).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatchwatch.archive import Archive
from dispatchwatch.config import load_config
from dispatchwatch.daemon import Daemon, DaemonSettings
from dispatchwatch.daemon import schedule as schedule_module
from dispatchwatch.fetch import Fetcher
from dispatchwatch.simulate import Simulation

START = datetime(2024, 4, 1, 19, 0, tzinfo=UTC)


def test_behind_schedule_is_logged_while_every_worker_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(schedule_module, "SKIP_REPORT_EVERY", 0.3)
    with Simulation(seed=1, speed=0.0, start=START) as sim:
        slow = sim.url("milwaukee", "slow")
        # The slow feed polls first and holds the only worker for 6 s (its deadline is its
        # 60 s interval); the others' runs come due every 200 ms meanwhile and are skipped.
        sim.inject(slow, "slow", count=1, seconds=6)
        feeds = [("slow", slow, "60s")]
        feeds += [(f"f{n}", sim.url("milwaukee", f"f{n}"), "200ms") for n in range(3)]
        lines = ["database: dispatch.db", "contact: tests@example.org", "feeds:"]
        for slug, url, interval in feeds:
            lines += [f"  {slug}:", "    scraper: milwaukee-police", f"    url: {url}"]
            lines += [f"    interval: {interval}"]
        (tmp_path / "config.yaml").write_text("\n".join(lines) + "\n")
        config = load_config(tmp_path / "config.yaml")
        caplog.set_level(logging.WARNING, logger="dispatchwatch.daemon")
        with Archive(tmp_path / "dispatch.db") as archive, Fetcher(config.user_agent) as fetcher:
            daemon = Daemon(
                config.enabled_feeds, archive, fetcher, settings=DaemonSettings(max_workers=1)
            )
            daemon.start()
            try:
                end = time.monotonic() + 3.0  # well before the slow poll lets its worker go
                while time.monotonic() < end and "behind schedule" not in caplog.text:
                    time.sleep(0.05)
            finally:
                daemon.stop(timeout=0.2)
                sim.stop()  # the slow answer goes out now: nothing waits for its 6 s
    assert "behind schedule" in caplog.text
