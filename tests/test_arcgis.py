"""The ArcGIS REST adapter on saved answers: the real Houston and Baltimore samples (skipped
when ../shared is absent) and the fixtures in fixtures/arcgis/ (padding, geometry, paging,
error bodies); planning of snapshot, incremental and backfill queries; config-only feeds and
their errors. End-to-end polls over the simulation are in test_arcgis_live.py."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from dispatchwatch.cli import cli
from dispatchwatch.config import Feed, default_feed, parse_config
from dispatchwatch.errors import ConfigError, LayoutError
from dispatchwatch.pipeline import parse_page
from dispatchwatch.scraper import Page, PlanContext
from dispatchwatch.sources import arcgis

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "arcgis"
REAL = REPO.parent / "shared" / "real-pages"
LAYER = "https://gis.example.org/arcgis/rest/services/Calls/FeatureServer/0"


def real(path: str) -> Path:
    file = REAL / path
    if not file.is_file():
        pytest.skip(f"real page {path} not available (../shared is absent)")
    return file


def layer_feed(**options: Any) -> Feed:
    settings: dict[str, Any] = {
        "url": LAYER,
        "timezone": "America/Chicago",
        "fields": {
            "incident_id": "INCIDENT_NO", "received": "CALL_DATE", "call_type": "NATURE",
            "priority": "PRIORITY", "address": "BLOCK_ADDR", "district": "DISTRICT",
            "status": "STATUS",
        },
    }  # fmt: skip
    settings.update(options)
    scraper = arcgis.from_config("calls", settings)
    return Feed(slug="calls", scraper=scraper, url=scraper.url, interval=300.0)


def context(feed: Feed, **kw: Any) -> PlanContext:
    base: dict[str, Any] = {
        "feed": feed.slug, "url": feed.url, "zone": feed.zone,
        "now": datetime(2024, 3, 31, 19, 0, tzinfo=UTC),
    }  # fmt: skip
    return PlanContext(**{**base, **kw})


def params(request: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.full_url).query).items()}


# --- Houston: the real sample ----------------------------------------------------------------


def test_houston_real_snapshot() -> None:
    file = real("houston/hec_active_incidents_2026-08-22T2029Z.json")
    raw = json.loads(file.read_text())["features"]
    parsed = parse_page(default_feed("houston-emergency"), file.read_bytes())
    assert parsed.complete
    found = parsed.incidents
    assert len(raw) == 93 and len(found) == 93
    # No incident number: every ID is an identity key, and all 93 are distinct although
    # UID repeats (the fire and police records of one crash share it).
    assert len({i.incident_id for i in found}) == 93
    assert all(i.incident_id.startswith("hash-") and len(i.incident_id) == 21 for i in found)
    assert Counter(r["attributes"]["UID"] for r in raw).most_common(1)[0][1] == 2
    assert Counter(i.extra["agency"] for i in found) == {"fire": 68, "police": 25}
    first = found[0]
    assert (first.received_at, first.call_type, first.address, first.units) == (
        "2026-08-22T20:12:00Z", "EMS EVENT", "WELLINGTON ST", "E058",
    )  # fmt: skip
    assert (first.latitude, first.longitude) == (29.858, -95.371)  # block precision
    assert first.extra["cross_street"] == "BLK MCGALLION RD"
    assert found[-1].received_at == "2026-08-22T13:23:00Z"
    # Police addresses carry house numbers: stored at the hundred block.
    addresses = {i.address for i in found}
    assert "55XX HARRISBURG BLVD" in addresses and "5511 HARRISBURG BLVD" not in addresses
    assert "US59IB-LITTLE YORK RD 107XX N US 59 FWY" in addresses
    # UID is the exact latitude's digits: never stored.
    assert not any("UID" in i.extra or 29858146 in i.extra.values() for i in found)
    assert all(i.latitude is None or round(i.latitude, 3) == i.latitude for i in found)


# --- Houston: fixtures and the identity rule -------------------------------------------------


def test_houston_identity_is_stable_while_the_type_changes() -> None:
    feed = default_feed("houston-emergency")
    before = parse_page(feed, (FIXTURES / "houston_active_incidents.json").read_bytes())
    after = parse_page(feed, (FIXTURES / "houston_active_incidents_next.json").read_bytes())
    old = {i.incident_id: i for i in before.incidents}
    new = {i.incident_id: i for i in after.incidents}
    assert len(old) == 8 and len(new) == 8
    assert len(old.keys() & new.keys()) == 7  # one left, one arrived
    by_street = {i.address: i for i in after.incidents if i.extra["agency"] == "fire"}
    fire = by_street["WESTHEIMER RD"]
    assert fire.incident_id in old
    assert (old[fire.incident_id].call_type, fire.call_type) == (
        "STRUCTURE FIRE", "STRUCTURE FIRE 2 ALARM",
    )  # fmt: skip
    assert (fire.extra["alarm_level"], fire.units) == (2, "E016 L016 D023 E008")
    assert old[by_street["MAIN ST"].incident_id].call_type == "EMS EVENT"


def test_houston_duplicates_and_agencies() -> None:
    feed = default_feed("houston-emergency")
    found = parse_page(feed, (FIXTURES / "houston_active_incidents.json").read_bytes()).incidents
    airline = [i for i in found if i.address == "AIRLINE DR"]
    # Same agency, minute, street and cross street: the second in the server's order is -2.
    assert [i.units for i in airline] == ["A031", "M031"]
    assert airline[1].incident_id == airline[0].incident_id + "-2"
    griggs = [i for i in found if "GRIGGS" in (i.address or "")]
    assert [(i.extra["agency"], i.address) for i in griggs] == [
        ("fire", "GRIGGS RD"), ("police", "47XX GRIGGS RD"),
    ]  # fmt: skip
    assert griggs[0].incident_id != griggs[1].incident_id
    # The key is the same whatever the padding or case of the source's text.
    assert arcgis.identity_key(["F", 1, " main  st ", None], 2) == arcgis.identity_key(
        ["f", 1, "MAIN ST", ""], 2
    )
    # ...and the address enters it at block level: no house number can be read back.
    assert arcgis.identity_key(["P", 1, "4701 GRIGGS RD"], 2) == arcgis.identity_key(
        ["P", 1, "4799 GRIGGS RD"], 2
    )


def test_parse_cli_on_saved_answers() -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["parse", "houston-emergency", str(FIXTURES / "houston_active_incidents.json")]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 8 and lines[0]["received_at"] == "2024-03-31T19:12:00Z"
    bad = runner.invoke(
        cli, ["parse", "houston-emergency", str(FIXTURES / "error_invalid_field.json")]
    )
    assert bad.exit_code == 1
    assert len(bad.output.strip().splitlines()) == 1
    assert "ArcGIS answered error 400: Unable to complete operation." in bad.output
    assert "Invalid field: CALLDATE" in bad.output


# --- Baltimore: a real page of a paged answer ------------------------------------------------


BALTIMORE = {
    "url": "https://services1.arcgis.com/UWYHeuuJISiGmgXx/arcgis/rest/services/"
    "911_Calls_For_Service_2021_Historic/FeatureServer/0",
    "timezone": "America/New_York",
    "mode": "incremental",
    "time_field": "callDateTime",
    "fields": {
        "incident_id": "callNumber", "received": "callDateTime", "call_type": "description",
        "priority": "priority", "address": "incidentLocation", "district": "PoliceDistrict",
        "beat": "PolicePost",
    },
    "extra": ["district", "Neighborhood"],
}  # fmt: skip


def test_baltimore_real_page_is_one_page_not_the_whole_list(tmp_path: Path) -> None:
    file = real("baltimore/arcgis_911_calls_2021_query_2000_features.json")
    scraper = arcgis.from_config("baltimore", BALTIMORE)
    feed = Feed(slug="baltimore", scraper=scraper, url=scraper.url, interval=86400.0)
    parsed = parse_page(feed, file.read_bytes())
    assert len(parsed.incidents) == 2000
    assert not parsed.complete and "exceededTransferLimit" in (parsed.reason or "")
    first = parsed.incidents[0]
    assert (first.incident_id, first.received_at, first.address, first.priority) == (
        "P210041843", "2021-01-04T16:33:00Z", "35XX AILSA AV", "Low",
    )  # fmt: skip
    assert (first.district, first.beat) == ("Northeastern", "426")
    assert first.extra == {"district": "TRU", "Neighborhood": "Waltherson"}
    times = sorted(i.received_at for i in parsed.incidents)
    assert (times[0], times[-1]) == ("2021-01-01T05:09:00Z", "2021-05-10T00:58:00Z")
    # Read as a page of a poll, it asks for the next one at the offset of what it read.
    request = scraper.requests(context(feed))[0]
    result = scraper.parse(Page(file.read_bytes(), request.full_url, {}, request))
    assert len(result.follow) == 1
    assert params(result.follow[0])["resultOffset"] == "2000"
    assert result.state == {"watermark": "2021-05-10T00:58:00Z"}
    # `dispatchwatch parse` warns on stderr, and still prints the rows.
    config = tmp_path / "config.yaml"
    block = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in BALTIMORE.items())
    config.write_text(f"feeds:\n  baltimore:\n    adapter: arcgis\n{block}\n")
    out = CliRunner().invoke(cli, ["parse", "baltimore", str(file), "--config", str(config)])
    assert out.exit_code == 0, out.output
    assert "warning: incomplete list" in out.output
    assert sum(1 for line in out.output.splitlines() if line.startswith("{")) == 2000


# --- a generic layer: padding, geometry, paging, errors --------------------------------------


def test_padding_geometry_and_types() -> None:
    feed = layer_feed()
    parsed = parse_page(feed, (FIXTURES / "layer_page2.json").read_bytes())
    assert parsed.complete  # no exceededTransferLimit: a whole answer
    welfare, theft = parsed.incidents
    assert (welfare.incident_id, welfare.call_type, welfare.priority, welfare.status) == (
        "24-000104", "WELFARE CHECK", "2", "DISPATCHED",
    )  # fmt: skip
    assert welfare.received_at == "2024-01-01T01:00:00Z"
    assert welfare.address == "99XX E LANCASTER AVE"
    assert (welfare.latitude, welfare.longitude) == (None, None)  # geometry 0,0 is no place
    assert (theft.address, theft.district) == (None, None)  # padding only: no value
    assert (theft.latitude, theft.longitude) == (32.81, -97.05)
    # Object and global IDs are per-publish row numbers: never in extra.
    assert welfare.extra == {}


def test_a_page_that_says_more_follow() -> None:
    feed = layer_feed(page_size=3, order="CALL_DATE, OBJECTID")
    body = (FIXTURES / "layer_page1.json").read_bytes()
    alone = parse_page(feed, body)
    assert not alone.complete
    shooting, alarm, stop = alone.incidents
    assert shooting.address == "12XX N MAIN ST" and shooting.district == "NORTH"
    assert (shooting.latitude, shooting.longitude) == (32.765, -97.123)
    assert alarm.received_at == "2024-01-01T00:02:05Z"  # epoch ms, sub-second dropped
    assert (stop.address, stop.latitude) == ("OAK ST / 3RD AVE", None)  # null geometry
    first = feed.scraper.requests(context(feed))[0]
    assert params(first) == {
        "where": "1=1", "outFields": "*", "returnGeometry": "true", "outSR": "4326",
        "orderByFields": "CALL_DATE, OBJECTID", "resultOffset": "0",
        "resultRecordCount": "3", "f": "json",
    }  # fmt: skip
    assert first.url == LAYER + "/query"
    result = feed.scraper.parse(Page(body, first.full_url, {}, first))
    (nxt,) = result.follow
    assert params(nxt)["resultOffset"] == "3" and nxt.describe() == "page 2"
    last = feed.scraper.parse(
        Page((FIXTURES / "layer_page2.json").read_bytes(), nxt.full_url, {}, nxt)
    )
    assert last.follow == [] and last.complete
    # Paging off: one request; an answer over the server's limit is honest about it.
    single = layer_feed(paging=False)
    request = single.scraper.requests(context(single))[0]
    assert "resultOffset" not in params(request)
    capped = single.scraper.parse(Page(body, request.full_url, {}, request))
    assert not capped.complete and "paging is off" in (capped.reason or "")


def test_error_bodies_and_changed_layers() -> None:
    feed = layer_feed()
    with pytest.raises(LayoutError, match=r"ArcGIS answered error 400: Unable to complete"):
        parse_page(feed, (FIXTURES / "error_invalid_field.json").read_bytes())
    with pytest.raises(LayoutError, match="ArcGIS answered an error: Token Required"):
        parse_page(feed, b'{"error": "Token Required"}')
    with pytest.raises(LayoutError, match="not an ArcGIS query answer"):
        parse_page(feed, b"[1, 2]")
    with pytest.raises(LayoutError, match="not an ArcGIS query answer"):
        parse_page(feed, b'{"count": 3}')
    renamed = json.loads((FIXTURES / "layer_page2.json").read_text())
    for spec in renamed["fields"]:
        if spec["name"] == "CALL_DATE":
            spec["name"] = "CALLDATETIME"
    with pytest.raises(LayoutError, match=r"no attribute 'CALL_DATE' \(fields.received\)"):
        parse_page(feed, json.dumps(renamed).encode())
    empty = json.loads((FIXTURES / "layer_page2.json").read_text())
    empty["features"] = []
    assert parse_page(feed, json.dumps(empty).encode()).incidents == []


# --- plans -----------------------------------------------------------------------------------


def test_incremental_and_backfill_queries() -> None:
    feed = layer_feed(
        mode="incremental", time_field="CALL_DATE", look_back="2h", where="DISTRICT <> 'TEST'"
    )
    assert not feed.scraper.snapshot
    first = feed.scraper.requests(context(feed))[0]
    # No watermark yet: the look-back before now.
    assert params(first)["where"] == (
        "(DISTRICT <> 'TEST') AND CALL_DATE >= timestamp '2024-03-31 17:00:00'"
    )
    later = feed.scraper.requests(context(feed, state={"watermark": "2024-03-31T18:45:00Z"}))[0]
    assert params(later)["where"].endswith("CALL_DATE >= timestamp '2024-03-31 16:45:00'")
    body = (FIXTURES / "layer_page1.json").read_bytes()
    result = feed.scraper.parse(Page(body, later.full_url, {}, later))
    assert result.state == {"watermark": "2024-01-01T00:05:00Z"}
    (nxt,) = result.follow
    last = feed.scraper.parse(
        Page((FIXTURES / "layer_page2.json").read_bytes(), nxt.full_url, {}, nxt)
    )
    assert last.state == {"watermark": "2024-01-01T02:00:00Z"}
    since, until = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    backfill = feed.scraper.requests(context(feed, since=since, until=until))[0]
    assert params(backfill)["where"] == (
        "(DISTRICT <> 'TEST') AND CALL_DATE >= timestamp '2024-01-01 00:00:00' "
        "AND CALL_DATE < timestamp '2024-01-02 00:00:00'"
    )
    # A feed with no time field cannot backfill a range: a clear error, not every row.
    with pytest.raises(ConfigError, match="a backfill needs a time_field"):
        layer_feed().scraper.requests(context(feed, since=since))


# --- configuration ---------------------------------------------------------------------------

CONFIG = """\
feeds:
  city-fire:
    adapter: arcgis
    url: https://gis.example.org/arcgis/rest/services/Fire/MapServer/3
    timezone: America/Denver
    {line}
"""


def test_config_only_feed_and_errors_name_the_key_and_its_line(tmp_path: Path) -> None:
    good = "fields: {received: CallTime, call_type: Type, address: Street}\n" \
        "    identity: [Station, CallTime, Street]"  # fmt: skip
    feed = parse_config(CONFIG.format(line=good), tmp_path / "c.yaml").feeds["city-fire"]
    assert feed.scraper.adapter == "arcgis" and feed.scraper.snapshot
    assert feed.zone == "America/Denver"
    fields = "    fields: {incident_id: Id, received: CallTime}"
    cases = {
        "mode: sometimes": "mode must be snapshot or incremental",
        "look_back: soon": "look_back must be a duration",
        "page_size: 0": "page_size must be a whole number",
        "paging: maybe": "paging must be true or false",
        "order: 'a; DROP'": "order must be attributes",
        "identity: []": "identity must list",
        "colour: blue": "unknown key 'colour' for adapter arcgis",
        "mode: incremental": "mode incremental needs a time_field",
    }
    for line, message in cases.items():
        text = CONFIG.format(line=line) + fields + "\n"
        with pytest.raises(ConfigError) as info:
            parse_config(text, tmp_path / "c.yaml")
        assert "line 6" in str(info.value) and message in str(info.value), (line, str(info.value))
    field_cases = {
        "fields: {incident_id: Id}": "fields needs received",
        "fields: {received: T}": "needs identity: [the attributes",
        "fields: {received: T, incident_id: I, latitude: Y}": "both latitude and longitude",
        "fields: {received: T, colour: C, incident_id: I}": "unknown field 'colour'",
    }
    for line, message in field_cases.items():
        with pytest.raises(ConfigError) as info:
            parse_config(CONFIG.format(line=line), tmp_path / "c.yaml")
        assert "line 6" in str(info.value) and message in str(info.value), (line, str(info.value))
    both = "fields: {incident_id: I, received: T}\n    identity: [A, B]"
    with pytest.raises(ConfigError, match="line 7.*not both"):
        parse_config(CONFIG.format(line=both), tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="url must be an ArcGIS layer"):
        arcgis.from_config("x", {"url": "https://example.org/data.json", "timezone": "UTC",
                                 "fields": {"incident_id": "a", "received": "b"}})  # fmt: skip
    # A built-in feed takes only its tunable options.
    with pytest.raises(ConfigError, match="line 3.*'identity' is set by the built-in feed"):
        parse_config("feeds:\n  houston-emergency:\n    identity: [UID]\n")
    tuned = parse_config("feeds:\n  houston-emergency:\n    page_size: 200\n")
    feed = tuned.feeds["houston-emergency"]
    request = feed.scraper.requests(
        PlanContext(
            feed=feed.slug,
            url=feed.url,
            zone=feed.zone,
            now=datetime(2024, 1, 1, tzinfo=UTC),
            options=feed.options,
        )  # fmt: skip
    )[0]
    assert params(request)["resultRecordCount"] == "200"
    assert params(request)["returnGeometry"] == "false"  # coordinates are attributes
