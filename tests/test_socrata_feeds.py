"""The built-in Socrata feeds on real samples (skipped without ../shared) and on fixtures:
New Orleans (every year's columns, state-plane coordinates, yearly datasets, the look-back),
San Francisco (sensitive calls, the timestamps) and Seattle Fire's open data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from soda_server import SodaServer
from test_socrata import (  # the fixtures soda and fetcher are shared
    FIXTURES,
    config_feed,
    fetcher,  # noqa: F401
    incidents_of,
    real,
    rows,
    soda,  # noqa: F401
)

from dispatchwatch.archive import Archive
from dispatchwatch.cli import cli
from dispatchwatch.config import default_feed
from dispatchwatch.fetch import Fetcher
from dispatchwatch.pipeline import run_poll
from dispatchwatch.plugins import get_scraper


def nola_module() -> Any:
    import importlib

    return importlib.import_module("dispatchwatch.scrapers.new_orleans_police")


# --- New Orleans -----------------------------------------------------------------------------


def test_new_orleans_real_2016_and_2017_rows() -> None:
    feed = default_feed("new-orleans-police")
    y2017 = incidents_of(
        feed, real("new_orleans/socrata_bqmt-f3jk_calls_for_service_2017_rows.json")
    )
    y2016 = incidents_of(
        feed, real("new_orleans/socrata_wgrp-d3ma_calls_for_service_2016_rows.json")
    )
    assert (len(y2017), len(y2016)) == (10, 10)
    first = y2017["A0000117"]
    assert (first.received_at, first.call_type, first.priority, first.disposition) == (
        "2017-01-01T06:00:14Z", "BURGLAR ALARM, SILENT", "2C", "Necessary Action Taken",
    )  # fmt: skip
    assert (first.address, first.district, first.beat) == ("1XX S CORTEZ ST", "1", "1L04")
    assert (first.latitude, first.longitude) == (29.972, -90.098)
    assert first.extra["initial_type"] == "BURGLAR ALARM, SILENT"
    # Reclassified: the final type is the call's, the initial one stays in extra.
    fireworks = y2016["A0000116"]
    assert (fireworks.call_type, fireworks.priority) == ("FIREWORKS", "2H")
    assert (fireworks.extra["initial_type"], fireworks.extra["initial_priority"]) == (
        "DISCHARGING FIREARM", "2B",
    )  # fmt: skip
    assert fireworks.address == "COHN ST & HAMILTON ST"
    assert (fireworks.latitude, fireworks.longitude) == (29.959, -90.133)
    tulane = y2016["A0045116"]
    assert (tulane.address, tulane.latitude, tulane.longitude) == (
        "14XX TULANE AVE",
        29.955,
        -90.077,
    )
    every = list(y2016.values()) + list(y2017.values())
    assert all(i.received_at and i.received_at.endswith("Z") for i in every)
    assert all(not (i.address or "").startswith("0") for i in every)


def test_new_orleans_state_plane_conversion_on_the_2016_geojson() -> None:
    """MapX/MapY are Louisiana South state-plane feet (EPSG:3452): the third party's GeoJSON
    of the 2016 CSV keeps them as its geometry. Known places land where they are."""
    data = json.loads(real("new_orleans/calls_for_service_2016_first1000.geojson").read_text())
    module = nola_module()
    converted = [
        (f["properties"], module.state_plane_to_lat_lon(*f["geometry"]["coordinates"]))
        for f in data["features"]
    ]
    good = [(p, c) for p, c in converted if c[0] is not None]
    # 48 junk points: 0,0 and a far-away 37369000,3513814 (not in the parish).
    assert (len(converted), len(good)) == (1000, 952)
    assert all(module.in_parish(*c) for _, c in good)
    by_address = {p["BLOCK_ADDRESS"]: c for p, c in good}
    # 1400 block of Tulane Ave (by the criminal courthouse): 29.9557 N, 90.0775 W.
    lat, lon = by_address["014XX Tulane Ave"]
    assert abs(lat - 29.9557) < 0.002 and abs(lon + 90.0775) < 0.002
    # Cohn St & Hamilton St (Carrollton): 29.959 N, 90.133 W.
    lat, lon = by_address["Cohn St & Hamilton St"]
    assert abs(lat - 29.959) < 0.002 and abs(lon + 90.133) < 0.002
    # The CSV's column names and text times read through the same row builder.
    feature = data["features"][1]
    record = {**feature["properties"], "MapX": feature["geometry"]["coordinates"][0],
              "MapY": feature["geometry"]["coordinates"][1]}  # fmt: skip
    row = module.row(record)
    assert (row.incident_id, row.received, row.address) == (
        "A0000216", "1/1/2016 00:01:11", "54XX Laurel St",
    )  # fmt: skip
    assert (round(row.latitude, 3), round(row.longitude, 3)) == (29.918, -90.116)


def test_new_orleans_every_years_columns() -> None:
    feed = default_feed("new-orleans-police")
    y2012 = incidents_of(feed, FIXTURES / "new_orleans_2012.json")
    assert y2012["B1234512"].call_type == "COMPLAINT OTHER"
    assert y2012["B1234512"].extra["type_code"] == "21"  # 2011-2012: `type`
    assert y2012["B1234512"].address == "8XX POYDRAS ST"
    assert y2012["B1234612"].latitude is None  # MapX/MapY 0,0: junk, dropped
    y2017 = incidents_of(feed, FIXTURES / "new_orleans_2017.json")
    assert y2017["C0345617"].extra["initial_type_code"] == "103"
    assert y2017["C0345717"].latitude is None  # outside the parish: dropped, call kept
    assert y2017["C0345717"].address == "0XX NAPOLEON AVE"
    assert y2017["C0345817"].latitude is None  # sensitive: no coordinates published
    y2024 = incidents_of(feed, FIXTURES / "new_orleans_2024.json")
    approx = y2024["A0123424"]
    assert (approx.address, approx.extra["approximate_location"]) == ("15XX IBERVILLE ST", True)
    assert approx.received_at == "2024-01-06T05:42:09Z"  # text time, CST
    assert (approx.latitude, approx.longitude) == (29.954, -90.071)  # from `location`
    laurel = y2024["A0123524"]  # location [0,0]: MapX/MapY instead
    assert (laurel.address, laurel.latitude, laurel.longitude) == (
        "54XX LAUREL ST",
        29.918,
        -90.116,
    )
    assert laurel.received_at == "2024-01-06T06:03:00Z"  # 12:03 AM
    assert (
        "mapx" not in laurel.extra and "location" not in laurel.extra
    )  # exact points never stored


def test_new_orleans_look_back_reclassification_and_the_new_year(
    tmp_path: Path,
    soda: SodaServer,  # noqa: F811 (shared fixtures)
    fetcher: Fetcher,  # noqa: F811
) -> None:
    """The built-in feed against a loopback portal: a call reclassified a day after it was
    first published adds exactly one version; in the first week of January both years'
    datasets are read (the year in Central time)."""
    feed = config_feed(
        tmp_path,
        f"feeds:\n  new-orleans-police:\n    url: {soda.url('es9j-6y5d')}\n    page_size: 2\n",
        "new-orleans-police",
    )
    db = tmp_path / "a.db"

    def call(item: str, created: str, kind: str = "FIREWORKS") -> dict[str, Any]:
        return {"_key": item, "nopd_item": item, "type_": "94F", "typetext": kind,
                "priority": "2H", "timecreate": created, "block_address": "054XX Laurel St",
                "mapx": "3666320", "mapy": "517836"}  # fmt: skip

    soda.put("4xwx-sfte", [call("L9990125", "2025-12-31T23:40:00.000")])
    soda.put("es9j-6y5d", [call(f"A000{i}126", f"2026-01-01T00:0{i}:00.000") for i in range(1, 6)])

    def run(moment: datetime) -> Any:
        with Archive(db) as archive:
            archive.register_feed(feed.record())
            return run_poll(
                archive, feed, lambda r, e, m: fetcher.fetch(feed, request=r), now=moment
            )

    report = run(datetime(2026, 1, 2, 12, tzinfo=UTC))
    assert (report.outcome, report.new) == ("new", 6)
    paths = [p.split("?")[0] for p, _ in soda.seen]
    # old probe + 1 page, new probe + 3 pages of 2 (5 rows: 2, 2, 1)
    assert paths.count("/resource/4xwx-sfte.json") == 2
    assert paths.count("/resource/es9j-6y5d.json") == 4
    assert rows(db, "SELECT count(*) FROM incidents WHERE latitude = 29.918") == [(6,)]

    # A day later NOPD reclassifies one call (the row is rewritten in place).
    soda.put("es9j-6y5d", [call("A0003126", "2026-01-01T00:03:00.000", "DISCHARGING FIREARM")])
    report = run(datetime(2026, 1, 3, 12, tzinfo=UTC))
    assert (report.outcome, report.new, report.changed) == ("new", 0, 1)
    assert rows(db, "SELECT count(*) FROM incident_versions") == [(7,)]
    assert rows(db, "SELECT call_type, version FROM incidents WHERE incident_id = 'A0003126'") == [
        ("DISCHARGING FIREARM", 2)
    ]
    report = run(datetime(2026, 1, 3, 13, tzinfo=UTC))
    assert report.outcome == "unchanged"


# --- San Francisco ---------------------------------------------------------------------------


def test_san_francisco_real_calls_and_sensitive_ones() -> None:
    raw = json.loads(real("san_francisco/socrata_gnap-fj3t_realtime.json").read_text())
    found = incidents_of(
        default_feed("san-francisco-police"), real("san_francisco/socrata_gnap-fj3t_realtime.json")
    )
    assert len(found) == 15
    sensitive = [r["cad_number"] for r in raw if r["sensitive_call"]]
    assert len(sensitive) == 9
    for cad in sensitive:  # no location of any kind, as published
        i = found[cad]
        assert (i.address, i.latitude, i.longitude, i.district) == (None, None, None, None)
    tow = found["262730194"]
    assert tow.received_at == "2026-09-30T10:37:37Z"  # PDT
    assert (tow.address, tow.latitude, tow.longitude) == (
        "PACIFIC AVE / PHOENIX TER",
        37.796,
        -122.414,
    )
    assert (tow.call_type, tow.priority, tow.disposition, tow.district) == (
        "TRAF VIOLATION TOW", "C", "NOM", "CENTRAL",
    )  # fmt: skip
    assert tow.extra["dispatch_datetime"] == "2026-09-30T03:57:53.000"
    assert tow.extra["call_last_updated_at"] == "2026-09-30T03:58:03.000"
    assert all("data_as_of" not in i.extra and "intersection_point" not in i.extra
               for i in found.values())  # fmt: skip
    assert sum(1 for i in found.values() if i.latitude is not None) == 6


def test_san_francisco_fixture() -> None:
    found = incidents_of(
        default_feed("san-francisco-police"), FIXTURES / "san_francisco_realtime.json"
    )
    noise = found["240910412"]
    assert (noise.received_at, noise.call_type, noise.priority) == (
        "2024-04-01T01:30:18Z", "NOISE NUISANCE", "C",
    )  # fmt: skip
    assert (noise.extra["call_type_original_desc"], noise.extra["priority_original"]) == (
        "FIGHT NO WEAPON", "B",
    )  # fmt: skip
    assert (noise.address, noise.latitude, noise.longitude) == (
        "MISSION ST / 16TH ST",
        37.765,
        -122.42,
    )
    assert found["240910415"].address is None and found["240910415"].latitude is None


# --- Seattle Fire open data ------------------------------------------------------------------


def test_seattle_open_data_real_rows() -> None:
    found = incidents_of(
        default_feed("seattle-fire-open-data"), real("seattle/socrata_kzjm-xkqj_1000_rows.json")
    )
    assert len(found) == 1000
    first = found["F200026453"]
    assert (first.received_at, first.address, first.latitude, first.longitude) == (
        "2020-03-15T07:16:00Z", "1XX 5TH AV S", 47.602, -122.328,
    )  # fmt: skip
    assert found["F190108891"].received_at == "2019-10-12T06:34:00Z"  # PDT
    assert sum(1 for i in found.values() if i.latitude is not None) == 998
    for i in found.values():
        assert i.extra == {}  # no computed regions, no exact point
        if i.latitude is not None:
            assert round(i.latitude, 3) == i.latitude and round(i.longitude, 3) == i.longitude


def test_seattle_open_data_fixture_and_exact_precision(tmp_path: Path) -> None:
    found = incidents_of(default_feed("seattle-fire-open-data"), FIXTURES / "seattle_fire_911.json")
    assert found["F240044222"].address == "15XX SUMMIT AV"
    assert (found["F240044222"].latitude, found["F240044222"].longitude) == (47.614, -122.324)
    assert found["F240044230"].address == "3RD AV / PINE ST"
    assert found["F240140001"].received_at == "2024-11-03T08:30:00Z"  # 01:30, first (PDT) reading
    exact = config_feed(tmp_path, "feeds:\n  seattle-fire-open-data:\n    precision: exact\n",
                        "seattle-fire-open-data")  # fmt: skip
    precise = incidents_of(exact, FIXTURES / "seattle_fire_911.json")
    assert precise["F240044222"].latitude == 47.613849


# --- the CLI on saved responses of each feed -------------------------------------------------


@pytest.mark.parametrize(
    ("feed", "file", "count"),
    [
        ("dallas-police", "dallas_active_calls.json", 5),
        ("new-orleans-police", "new_orleans_2017.json", 3),
        ("san-francisco-police", "san_francisco_realtime.json", 2),
        ("seattle-fire-open-data", "seattle_fire_911.json", 3),
    ],
)
def test_parse_cli_on_each_feed(feed: str, file: str, count: int) -> None:
    result = CliRunner().invoke(cli, ["parse", feed, str(FIXTURES / file)])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == count
    assert get_scraper(feed).adapter == "socrata"
    bad = CliRunner().invoke(cli, ["parse", feed, str(FIXTURES / "error_no_such_column.json")])
    assert bad.exit_code != 0 and "Socrata answered an error" in bad.output
