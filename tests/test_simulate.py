"""The loopback simulation, exercised through the real Fetcher and the real scrapers."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from dispatchwatch.config import Feed, default_feed
from dispatchwatch.errors import FetchError, LayoutError
from dispatchwatch.fetch import Fetcher
from dispatchwatch.pipeline import parse_page
from dispatchwatch.simulate import Simulation

START = datetime(2024, 3, 31, 20, 0, tzinfo=UTC)


@pytest.fixture
def sim() -> Iterator[Simulation]:
    # speed=0 freezes the clock: tests move simulated time with advance(), never by waiting.
    with Simulation(seed=1, speed=0, start=START) as simulation:
        yield simulation


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher("dispatchwatch-tests", backoff_initial=0.02, backoff_max=0.1) as f:
        yield f


def feed(sim: Simulation, kind: str, name: str, **options: object) -> Feed:
    slug = "milwaukee-police" if kind == "milwaukee" else "seattle-fire"
    values: dict[str, object] = {
        "interval": 5.0,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "max_bytes": 2_000_000,
    }
    values.update(options)
    return dataclasses.replace(default_feed(slug), url=sim.url(kind, name), **values)


@pytest.mark.parametrize("kind", ["milwaukee", "seattle"])
def test_pages_evolve_and_parse(sim: Simulation, fetcher: Fetcher, kind: str) -> None:
    f = feed(sim, kind, "a")
    first = fetcher.fetch(f).body
    assert fetcher.fetch(f).body == first  # frozen clock, same page
    sim.advance(600)
    second = fetcher.fetch(f).body
    assert second != first
    for body in (first, second):
        assert parse_page(f, body).incidents
    if kind == "milwaukee":
        assert b"Updated: 03/31/2024 03:00:00 PM" in first
        assert b"Updated: 03/31/2024 03:10:00 PM" in second


def test_milwaukee_page_changes_only_every_five_simulated_minutes(
    sim: Simulation, fetcher: Fetcher
) -> None:
    f = feed(sim, "milwaukee", "a")
    first = fetcher.fetch(f)
    sim.advance(299)
    assert fetcher.fetch(f, etag=first.etag).not_modified
    sim.advance(1)
    assert not fetcher.fetch(f, etag=first.etag).not_modified


def test_paths_are_distinct_and_reproducible(sim: Simulation, fetcher: Fetcher) -> None:
    a = fetcher.fetch(feed(sim, "milwaukee", "a")).body
    b = fetcher.fetch(feed(sim, "milwaukee", "b")).body
    assert a != b
    with Simulation(seed=1, speed=0, start=START) as again:
        assert fetcher.fetch(feed(again, "milwaukee", "a")).body == a


def test_conditional_get(sim: Simulation, fetcher: Fetcher) -> None:
    f = feed(sim, "seattle", "s")
    first = fetcher.fetch(f)
    assert first.etag and first.last_modified
    assert fetcher.fetch(f, etag=first.etag).not_modified
    assert fetcher.fetch(f, last_modified=first.last_modified).not_modified
    sim.advance(3600)
    changed = fetcher.fetch(f, etag=first.etag, last_modified=first.last_modified)
    assert not changed.not_modified and changed.body != first.body
    assert sim.stats()["/seattle/s"]["not_modified"] == 2


def test_faults_fire_exactly_count_times(sim: Simulation) -> None:
    url = sim.url("milwaukee", "f")
    with httpx.Client() as client:  # a plain client: no retries to hide anything
        reply = client.post(
            f"{sim.base_url}/_faults", json={"path": "/milwaukee/f", "fault": "http500", "count": 2}
        )
        assert reply.status_code == 200
        statuses = [client.get(url).status_code for _ in range(4)]
        stats = client.get(f"{sim.base_url}/_stats").json()
        bad = client.post(f"{sim.base_url}/_faults", json={"path": "/x", "fault": "nope"})
    assert statuses == [500, 500, 200, 200]
    assert stats["/milwaukee/f"] == {
        "requests": 4,
        "ok": 2,
        "not_modified": 0,
        "faults": {"http500": 2},
        "faults_served": 2,
    }
    assert bad.status_code == 400


def test_a_single_500_is_retried_away(sim: Simulation, fetcher: Fetcher) -> None:
    sim.inject("/milwaukee/r", "http500")
    result = fetcher.fetch(feed(sim, "milwaukee", "r"))
    assert (result.status, result.attempts) == (200, 2)


# Enough faults to outlast every retry within a short interval.
@pytest.mark.parametrize(
    ("fault", "options", "feed_options", "kind"),
    [
        ("http500", {}, {}, "http_status"),
        ("http429", {"retry_after": 1}, {}, "too_many_requests"),
        ("slow", {"seconds": 3}, {"read_timeout": 0.2}, "timeout"),
        ("truncated", {}, {}, "truncated"),
        ("oversize", {}, {"max_bytes": 1_000_000}, "too_large"),
        ("drop", {}, {}, "connection"),
    ],
)
def test_fault_gives_fetch_error_kind(
    sim: Simulation,
    fetcher: Fetcher,
    fault: str,
    options: dict[str, object],
    feed_options: dict[str, object],
    kind: str,
) -> None:
    sim.inject("/milwaukee/x", fault, count=1000, **options)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed(sim, "milwaukee", "x", interval=0.4, **feed_options))
    assert info.value.kind == kind
    if kind in ("http_status", "too_many_requests"):
        assert info.value.status == (500 if fault == "http500" else 429)
    sim.clear_faults()
    assert fetcher.fetch(feed(sim, "milwaukee", "x")).status == 200


@pytest.mark.parametrize("kind", ["milwaukee", "seattle"])
@pytest.mark.parametrize("fault", ["garbage", "layout"])
def test_bad_200_pages_are_layout_errors(
    sim: Simulation, fetcher: Fetcher, kind: str, fault: str
) -> None:
    f = feed(sim, kind, "g")
    sim.inject(f.url, fault)
    result = fetcher.fetch(f)
    assert result.status == 200
    with pytest.raises(LayoutError):
        parse_page(f, result.body)
    assert parse_page(f, fetcher.fetch(f).body).incidents  # and then it recovers


def test_unknown_paths_and_faults(sim: Simulation) -> None:
    assert httpx.get(f"{sim.base_url}/elsewhere").status_code == 404
    assert httpx.get(f"{sim.base_url}/").json()["milwaukee"].endswith("/milwaukee/example")
    with pytest.raises(ValueError):
        sim.inject("/milwaukee/a", "meteor")
    with pytest.raises(ValueError):
        sim.url("dallas", "a")


def test_cli_serves_until_interrupted() -> None:
    # SIGINT as in a terminal, even under a runner that inherited it ignored (a background job).
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from dispatchwatch.cli_simulate import simulate; simulate(sys.argv[1:])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--speed", "60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        url = lines[1].split()[-1]
        assert url.startswith("http://127.0.0.1:") and "/milwaukee/" in url
        assert httpx.get(url).status_code == 200
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert "Stopped." in out and proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("kind", ["milwaukee", "seattle"])
def test_change_every_sets_how_often_a_page_changes(fetcher: Fetcher, kind: str) -> None:
    """Benches set the change rate with ``change_every``: polled every 60 s, a page that
    moves on once every 600 s changes at about a tenth of the polls, never more."""

    def changes(**options: object) -> int:
        with Simulation(seed=1, speed=0, start=START, **options) as simulation:  # type: ignore[arg-type]
            f = feed(simulation, kind, "rate")
            bodies = []
            for _ in range(100):  # 100 polls, 60 simulated seconds apart
                bodies.append(fetcher.fetch(f).body)
                simulation.advance(60)
        return sum(a != b for a, b in zip(bodies, bodies[1:], strict=False))

    paced = changes(change_every=600.0)
    assert 8 <= paced <= 10  # 99 gaps of 60 s span 5,940 s: 9 or 10 change times
    assert changes() > paced
    with pytest.raises(ValueError, match="change_every"):
        Simulation(change_every=0)
