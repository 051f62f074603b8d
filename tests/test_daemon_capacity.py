"""The daemon's capacity machinery: parse slots, the memory hand-back, the simulation's change
rate. Real HTTP (the simulation on 127.0.0.1), a real SQLite archive; no timing asserts."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatchwatch.archive import Archive
from dispatchwatch.config import parse_config
from dispatchwatch.daemon import Abandoned, Daemon, DaemonSettings, memory
from dispatchwatch.daemon.door import Door
from dispatchwatch.daemon.slots import Slots
from dispatchwatch.fetch import Fetcher
from dispatchwatch.simulate import Simulation

START = datetime(2024, 4, 1, 19, 0, tzinfo=UTC)
WAIT = 60.0


class CountingSlots(Slots):
    """Slots that remember how many polls held one at once."""

    def __init__(self, door: Door, slots: int) -> None:
        super().__init__(door, slots)
        self._lock = threading.Lock()
        self.holding = self.most = self.taken = 0

    def acquire(self) -> None:
        super().acquire()
        with self._lock:
            self.holding += 1
            self.taken += 1
            self.most = max(self.most, self.holding)

    def release(self) -> None:
        with self._lock:
            self.holding -= 1
        super().release()


@pytest.fixture
def hosts() -> Iterator[list[Simulation]]:
    sims = [Simulation(seed=n, speed=0, start=START) for n in range(3)]
    for sim in sims:
        sim.start()
    yield sims
    for sim in sims:
        sim.stop()


def daemon_for(tmp_path: Path, hosts: list[Simulation], slots: int) -> Daemon:
    lines = ["database: dispatch.db", "contact: tests@example.org", "feeds:"]
    for n in range(6):
        kind = "seattle" if n % 2 else "milwaukee"
        lines += [
            f"  feed-{n}:",
            f"    scraper: {'seattle-fire' if n % 2 else 'milwaukee-police'}",
            f"    url: {hosts[n % 3].url(kind, f'f{n}')}",
            "    interval: 1m",
        ]
    config = parse_config("\n".join(lines) + "\n")
    archive = Archive(tmp_path / "dispatch.db")
    fetcher = Fetcher("tests@example.org", backoff_initial=0.02, backoff_max=0.1)
    daemon = Daemon(
        config.enabled_feeds, archive, fetcher, settings=DaemonSettings(parse_slots=slots)
    )
    daemon.slots = CountingSlots(daemon.door, slots)
    return daemon


@pytest.mark.parametrize("slots", [1, 2])
def test_parse_slots_bound_the_polls_parsing_at_once(
    tmp_path: Path, hosts: list[Simulation], slots: int
) -> None:
    daemon = daemon_for(tmp_path, hosts, slots)
    counting = daemon.slots
    assert isinstance(counting, CountingSlots)
    try:
        first = daemon.run_once()  # three hosts polled at the same time
        assert sorted(r.outcome for r in first) == ["new"] * 6
        assert counting.taken == 6 and 1 <= counting.most <= slots
        again = daemon.run_once()  # nothing changed: 304s take no slot
        assert sorted(r.outcome for r in again) == ["not_modified"] * 6
        assert counting.taken == 6
        assert counting.holding == 0  # every slot given back
    finally:
        daemon.stop(5)
        daemon.fetcher.close()
        daemon.archive.close()


def test_a_poll_waiting_for_a_slot_is_abandoned_at_stop() -> None:
    door = Door()
    slots = Slots(door, 1)
    slots.acquire()
    outcome: list[str] = []

    def waiter() -> None:
        try:
            slots.acquire()
            outcome.append("acquired")
        except Abandoned:
            outcome.append("abandoned")

    thread = threading.Thread(target=waiter)
    thread.start()
    door.stop_entering()
    door.close(0)
    thread.join(WAIT)
    assert outcome == ["abandoned"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_hands_freed_memory_back() -> None:
    """What the daemon's trim job does: memory freed below a live allocation (which glibc's
    free() cannot give back by itself) returns to the system."""
    psutil = pytest.importorskip("psutil")
    if not memory.limit_arenas(2):
        pytest.skip("not glibc")
    process = psutil.Process()
    blocks = [bytes(1000) + bytes([n % 256]) for n in range(100_000)]  # ~100 MB via malloc
    keeper = bytes(1000) + b"x"  # above them on the heap
    del blocks
    before = process.memory_info().rss
    memory.trim()
    after = process.memory_info().rss
    assert len(keeper) == 1001
    assert before - after > 50 * 2**20
