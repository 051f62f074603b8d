"""ArcGIS and Socrata feeds end to end over the simulation (``dispatchwatch simulate``'s
portal endpoints on 127.0.0.1), polled by the real Fetcher and Daemon into a real SQLite file:
paging by exceededTransferLimit, gone-tracking only after the last page, a page failing
mid-poll (partial, nothing gone), Houston's identity across polls while types change, a
config-only ArcGIS city with no Python, and the simulated SODA endpoint."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatchwatch.archive import Archive
from dispatchwatch.config import Config, Feed, parse_config
from dispatchwatch.daemon import Daemon
from dispatchwatch.fetch import Fetcher
from dispatchwatch.simulate import Simulation
from dispatchwatch.sources.arcgis import identity_key

# Incremental feeds' first poll reads back from the real clock: start the simulation near it.
START = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
IDENTITY = ("Agency", "CALL_TIME", "Address", "CrossStreet")


@pytest.fixture
def sim() -> Iterator[Simulation]:
    with Simulation(speed=0, start=START, seed=7, arcgis_rate=90, arcgis_max_records=25) as s:
        yield s


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(
        Config(contact="ops@example.org").user_agent, backoff_initial=0.01, backoff_max=0.02,
        max_retry_seconds=0.0,
    ) as f:  # fmt: skip
        yield f


def poll(db: Path, feed: Feed, fetcher: Fetcher) -> Any:
    with Archive(db) as archive:
        archive.register_feed(feed.record())
        return Daemon([feed], archive, fetcher).poll(feed)


def rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def listed(sim: Simulation, name: str) -> dict[str, dict[str, Any]]:
    """Ground truth: the model's listed features by identity key (with -2 for duplicates)."""
    body = httpx.get(
        sim.arcgis_url(name) + "/query",
        params={"where": "1=1", "outFields": "*", "f": "json", "resultRecordCount": "1000",
                "orderByFields": "CALL_TIME, Agency, Address, CrossStreet, UID"},
    ).json()  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    features = body["features"]
    # The server caps pages at 25: read them all, as a client would.
    while body.get("exceededTransferLimit"):
        body = httpx.get(
            sim.arcgis_url(name) + "/query",
            params={"where": "1=1", "outFields": "*", "f": "json",
                    "resultOffset": str(len(features)),
                    "orderByFields": "CALL_TIME, Agency, Address, CrossStreet, UID"},
        ).json()  # fmt: skip
        features += body["features"]
    for feature in features:
        a = feature["attributes"]
        key = identity_key([a[n] for n in IDENTITY], 2)
        n = 2
        base = key
        while key in out:
            key, n = f"{base}-{n}", n + 1
        out[key] = a
    return out


CITY = """\
feeds:
  town-fire:
    adapter: arcgis
    url: {url}
    timezone: America/Chicago
    page_size: 40
    order: CALL_TIME, Agency, Address, CrossStreet, UID
    fields: {{received: CALL_TIME, call_type: IncidentType, address: Address,
             units: Units, latitude: LATITUDE, longitude: LONGITUDE}}
    identity: [Agency, CALL_TIME, Address, CrossStreet]
    drop: [UID]
"""


def test_a_config_only_arcgis_city_pages_and_marks_gone_only_after_a_whole_list(
    tmp_path: Path, sim: Simulation, fetcher: Fetcher
) -> None:
    text = CITY.format(url=sim.arcgis_url("Town_Active"))
    (tmp_path / "config.yaml").write_text(text)
    feed = parse_config(text, tmp_path / "config.yaml").feeds["town-fire"]
    db = tmp_path / "a.db"
    truth = listed(sim, "Town_Active")
    assert len(truth) > 50  # more than two pages of 25
    report = poll(db, feed, fetcher)
    assert (report.outcome, report.new, report.incidents) == ("new", len(truth), len(truth))
    # 40 asked, 25 served a page: pages until the one without exceededTransferLimit.
    assert rows(db, "SELECT requests FROM polls") == [(math.ceil(len(truth) / 25),)]
    assert {r[0] for r in rows(db, "SELECT incident_id FROM incidents")} == set(truth)
    assert rows(db, "SELECT count(*) FROM incidents WHERE extra LIKE '%UID%'") == [(0,)]
    # Nothing changed: every page read again, the same bytes: an unchanged poll, no parse.
    again = poll(db, feed, fetcher)
    assert again.outcome == "unchanged"
    assert rows(db, "SELECT requests FROM polls WHERE id = 2") == [(math.ceil(len(truth) / 25),)]

    # Half an hour later some incidents left; page 2 fails (no retries here): partial.
    sim.advance(1800)
    later = listed(sim, "Town_Active")
    left = set(truth) - set(later)
    assert left
    sim.inject(sim.arcgis_url("Town_Active") + "/query", "http500", count=1,
               match="resultOffset=25")  # fmt: skip
    report = poll(db, feed, fetcher)
    assert report.outcome == "partial" and report.gone == 0, report
    assert "page 2" in (report.error or "")
    assert rows(db, "SELECT count(*) FROM incidents WHERE gone_at IS NOT NULL") == [(0,)]

    # The next whole list marks exactly the departed incidents gone.
    report = poll(db, feed, fetcher)
    assert report.outcome == "new", report.error
    assert report.gone == len(left)
    gone = {r[0] for r in rows(db, "SELECT incident_id FROM incidents WHERE gone_at IS NOT NULL")}
    assert gone == left
    listed_now = rows(db, "SELECT count(*) FROM incidents WHERE gone_at IS NULL")
    assert listed_now == [(len(later),)]


def test_houston_identity_is_stable_across_polls_while_the_type_changes(
    tmp_path: Path, sim: Simulation, fetcher: Fetcher
) -> None:
    text = f"feeds:\n  houston-emergency:\n    url: {sim.arcgis_url('HEC_Active_Incidents')}\n"
    feed = parse_config(text, tmp_path / "c.yaml").feeds["houston-emergency"]
    db = tmp_path / "h.db"
    before = listed(sim, "HEC_Active_Incidents")
    assert poll(db, feed, fetcher).new == len(before)
    changed_type: set[str] = set()
    for _ in range(12):  # an hour in 5-minute polls
        sim.advance(300)
        now = listed(sim, "HEC_Active_Incidents")
        report = poll(db, feed, fetcher)
        assert report.outcome == "new"
        # Exactly the model's arrivals and departures: a type change is a change, never a
        # departure and an arrival.
        assert report.new == len(set(now) - set(before))
        assert report.gone == len(set(before) - set(now))
        changed_type |= {
            k for k in set(now) & set(before)
            if now[k]["IncidentType"] != before[k]["IncidentType"]
        }  # fmt: skip
        before = now
    assert changed_type, "the model should have reclassified some incident in an hour"
    for key in changed_type:
        types = rows(
            db, "SELECT DISTINCT call_type FROM incident_versions WHERE incident_id = ?", key
        )
        assert len(types) >= 2, key
    # Police addresses at block level; no UID, no exact coordinates.
    assert rows(db, "SELECT count(*) FROM incidents WHERE address GLOB '*[0-9][0-9][0-9] *' "
                    "AND address NOT GLOB '*XX *'") == [(0,)]  # fmt: skip
    coords = rows(db, "SELECT latitude FROM incidents WHERE latitude IS NOT NULL")
    assert coords and all(round(c[0], 3) == c[0] for c in coords)


CINCINNATI = """\
feeds:
  cincinnati-police:
    adapter: socrata
    url: {url}
    timezone: America/New_York
    mode: incremental
    time_field: create_time_incident
    look_back: 48h
    page_size: 20
    fields: {{incident_id: event_number, received: create_time_incident,
             call_type: incident_type_desc, address: address_x, district: district,
             beat: beat, disposition: disposition_text, priority: priority,
             latitude: latitude_x, longitude: longitude_x}}
"""


def test_simulated_socrata_dataset_with_the_socrata_adapter(
    tmp_path: Path, sim: Simulation, fetcher: Fetcher
) -> None:
    text = CINCINNATI.format(url=sim.socrata_url("gexm-h6bt"))
    feed = parse_config(text, tmp_path / "c.yaml").feeds["cincinnati-police"]
    db = tmp_path / "s.db"
    data = httpx.get(sim.socrata_url("gexm-h6bt"), params={"$limit": "5000"}).json()
    assert len(data) > 40
    first = poll(db, feed, fetcher)
    assert (first.outcome, first.new) == ("new", len(data))
    assert rows(db, "SELECT requests FROM polls")[0][0] >= 1 + math.ceil(len(data) / 20)
    # Nothing happened: the probe answers the same, one request, unchanged.
    again = poll(db, feed, fetcher)
    assert again.outcome == "unchanged"
    assert rows(db, "SELECT requests FROM polls ORDER BY id DESC LIMIT 1") == [(1,)]
    sim.advance(1800)
    later = httpx.get(sim.socrata_url("gexm-h6bt"), params={"$limit": "5000"}).json()
    report = poll(db, feed, fetcher)
    assert report.outcome == "new"
    assert report.new == len(later) - len(data)
    assert report.changed > 0  # calls closed with a disposition since
    stored = rows(db, "SELECT count(*) FROM incidents WHERE disposition IS NOT NULL")[0][0]
    assert stored == sum(1 for r in later if r.get("disposition_text"))
    # Block precision: coordinates rounded, addresses at the hundred block.
    coords = rows(db, "SELECT latitude, longitude, address FROM incidents")
    assert all(round(lat, 3) == lat and round(lon, 3) == lon for lat, lon, _ in coords)
    assert all(a.split(" ")[0].endswith("XX") for _, _, a in coords)


def test_the_simulated_query_endpoints(sim: Simulation) -> None:
    url = sim.socrata_url("abcd-1234")
    everything = httpx.get(url, params={"$limit": "5000", "$order": ":id"}).json()
    times = sorted(r["create_time_incident"] for r in everything)
    low, high = times[5], times[15]
    between = httpx.get(url, params={
        "$where": f"create_time_incident between '{low}' and '{high}'",
        "$order": "create_time_incident DESC", "$limit": "5000",
    }).json()  # fmt: skip
    assert [r["create_time_incident"] for r in between] == sorted(
        (t for t in times if low <= t <= high), reverse=True
    )
    above = httpx.get(url, params={"$where": f"create_time_incident > '{high}'"}).json()
    assert len(above) == sum(1 for t in times if t > high)
    assert all(":id" not in r for r in above)
    full = httpx.get(url, params={"$select": ":*, *", "$limit": "5000"}).json()
    assert [{k: v for k, v in r.items() if k[0] != ":"} for r in full] == everything
    system = httpx.get(url, params={"$select": ":*, *", "$limit": "2", "$offset": "3"}).json()
    assert [r[":id"] for r in system] == [r[":id"] for r in full[3:5]]
    probe = httpx.get(url, params={"$select": "count(*) AS n, max(:updated_at) AS updated_at"})
    assert probe.json() == [
        {"n": str(len(full)), "updated_at": max(r[":updated_at"] for r in full)}
    ]
    assert probe.json()[0]["updated_at"].endswith("Z")
    bad = httpx.get(url, params={"$where": "nope > '1'"})
    assert bad.status_code == 400 and bad.json()["message"] == "No such column: nope"

    layer = sim.arcgis_url("Any_Layer") + "/query"
    page = httpx.get(layer, params={"where": "1=1", "outFields": "*", "f": "json",
                                    "resultRecordCount": "10"}).json()  # fmt: skip
    assert len(page["features"]) == 10 and page["exceededTransferLimit"] is True
    calls = sorted(f["attributes"]["CALL_TIME"] for f in httpx.get(layer, params={
        "where": "1=1", "f": "json", "resultRecordCount": "25"}).json()["features"])  # fmt: skip
    cut = datetime.fromtimestamp(calls[10] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    newer = httpx.get(layer, params={
        "where": f"(1=1) AND CALL_TIME >= timestamp '{cut}'", "f": "json",
        "orderByFields": "CALL_TIME DESC", "resultRecordCount": "25",
    }).json()["features"]  # fmt: skip
    got = [f["attributes"]["CALL_TIME"] for f in newer]
    assert got == sorted(got, reverse=True) and min(got) >= calls[10]
    error = httpx.get(layer, params={"where": "NOPE > 1", "f": "json"})
    assert error.status_code == 200  # as real servers: the error is in the body
    assert error.json()["error"]["details"] == ["Invalid field: NOPE"]


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(heading: str, fence: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    start = section.index(f"```{fence}\n") + len(f"```{fence}\n")
    return section[start : section.index("```", start)]


def test_the_readme_examples(tmp_path: Path, sim: Simulation, fetcher: Fetcher) -> None:
    # The config-only ArcGIS city parses as written (its layer is not reachable here).
    block = readme_block("### A city on ArcGIS: configuration only", "yaml")
    city = parse_config(block, tmp_path / "c.yaml").feeds["baltimore-911"]
    assert (city.scraper.adapter, city.scraper.snapshot, city.zone) == (
        "arcgis", False, "America/New_York",
    )  # fmt: skip
    # The simulate example: the config and the curl line, against this simulation.
    block = readme_block("### `dispatchwatch simulate`: the simulated feeds", "yaml")
    block = block.replace("http://127.0.0.1:8080", sim.base_url)
    feed = parse_config(block, tmp_path / "c.yaml").feeds["houston-emergency"]
    db = tmp_path / "r.db"
    first = poll(db, feed, fetcher)
    assert first.outcome == "new" and first.incidents > 25
    curl = readme_block("### `dispatchwatch simulate`: the simulated feeds", "bash")
    payload = curl[curl.index("-d '") + 4 : curl.rindex("'")]
    answer = httpx.post(sim.base_url + "/_faults", content=payload)
    assert answer.status_code == 200, answer.text
    sim.advance(600)
    second = poll(db, feed, fetcher)
    assert second.outcome == "partial" and second.gone == 0
    assert rows(db, "SELECT count(*) FROM incidents WHERE gone_at IS NOT NULL") == [(0,)]
