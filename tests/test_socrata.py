"""The Socrata adapter: paging, snapshot and incremental polls, the probe, the app token,
yearly datasets, config-only cities; and the Dallas built-in feed. End-to-end tests run the
real Fetcher and Daemon against a small SODA server on 127.0.0.1 (tests/soda_server.py)."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from soda_server import SodaServer, soda_server

from dispatchwatch.archive import Archive
from dispatchwatch.cli import cli
from dispatchwatch.config import Config, Feed, default_feed, parse_config
from dispatchwatch.daemon import Daemon
from dispatchwatch.errors import ConfigError, LayoutError
from dispatchwatch.fetch import Fetcher
from dispatchwatch.pipeline import parse_page, run_poll
from dispatchwatch.scraper import PlanContext
from dispatchwatch.sources import socrata

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "socrata"
REAL = REPO.parent / "shared" / "real-pages"


def real(path: str) -> Path:
    file = REAL / path
    if not file.is_file():
        pytest.skip(f"real page {path} not available (../shared is absent)")
    return file


def incidents_of(feed: Feed, file: Path) -> dict[str, Any]:
    parsed = parse_page(feed, file.read_bytes())
    assert parsed.complete
    return {i.incident_id: i for i in parsed.incidents}


# --- Dallas: parsing --------------------------------------------------------------------------


def test_dallas_real_active_calls() -> None:
    feed = default_feed("dallas-police")
    raw = json.loads(real("dallas/socrata_9fxf-t2tr_active_calls.json").read_text())
    found = incidents_of(feed, real("dallas/socrata_9fxf-t2tr_active_calls.json"))
    assert len(raw) == 15 and len(found) == 13  # one row per unit, merged per incident
    two = found["26-1776170"]
    assert (two.units, two.address, two.received_at) == (
        "A552 A542", "109XX BROCKBANK DR", "2026-09-30T10:53:07Z",
    )  # fmt: skip
    assert found["26-1776379"].units == "T119 BLOCK2"
    first = found["26-1776325"]
    assert first.received_at == "2026-09-30T11:04:39Z"  # 06:04:39 CDT
    assert (first.address, first.district, first.beat, first.priority, first.status) == (
        "43XX ROSS AVE", "Central", "155", "3", "At Scene",
    )  # fmt: skip
    assert first.extra == {"reporting_area": "2018"}
    # Intersections (no block) keep the street names; a street with no block stays a street.
    assert found["26-1776431"].address == "FLANDERS ST / N WILLOMET AVE"
    assert found["26-1776422"].address == "MAIN ST"
    assert all(i.city == "Dallas" for i in found.values())
    assert sum(len(i.units.split()) for i in found.values()) == 15


def test_dallas_fixture_merges_units_and_reads_central_time() -> None:
    found = incidents_of(default_feed("dallas-police"), FIXTURES / "dallas_active_calls.json")
    assert list(found) == ["24-0061021", "24-0061033", "24-0061040", "24-0061052", "24-0061060"]
    theft = found["24-0061021"]
    assert theft.units == "B631 B645"
    assert theft.status == "At Scene"  # equal times: the first row in the page wins
    assert theft.received_at == "2024-03-31T18:25:07Z"  # CDT, after the March change
    assert found["24-0061040"].units == "E130 E131"  # a repeated unit counted once
    assert found["24-0061040"].address == "15XX ELM ST"
    assert found["24-0061033"].address == "S BUCKNER BLVD / ELAM RD"
    assert found["24-0061052"].address == "S R L THORNTON FWY NB"
    late = found["24-0061060"]
    assert (late.received_at, late.address) == ("2024-03-31T04:58:41Z", "109XX HARRY HINES BLVD")


def test_dallas_older_date_time_schema_and_a_loud_failure_when_time_is_gone() -> None:
    feed = default_feed("dallas-police")
    found = incidents_of(feed, FIXTURES / "dallas_active_calls_date_time.json")
    assert list(found) == ["19-0204411"]
    assert (found["19-0204411"].received_at, found["19-0204411"].units) == (
        "2019-06-02T03:41:05Z", "C120 C122",
    )  # fmt: skip
    with pytest.raises(LayoutError, match=r"neither date \+ time nor date_time") as info:
        parse_page(feed, (FIXTURES / "dallas_no_time.json").read_bytes())
    assert "Forest" not in str(info.value)  # errors never quote row cells


def test_socrata_error_object_and_empty_answer() -> None:
    feed = default_feed("dallas-police")
    with pytest.raises(LayoutError, match="Socrata answered an error: No such column"):
        parse_page(feed, (FIXTURES / "error_no_such_column.json").read_bytes())
    with pytest.raises(LayoutError, match="not a SODA answer"):
        parse_page(feed, b'"hello"')
    assert parse_page(feed, (FIXTURES / "empty.json").read_bytes()).incidents == []


def test_parse_cli_reads_a_saved_response(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["parse", "dallas-police", str(FIXTURES / "dallas_active_calls.json")]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["incident_id"] for line in lines][:2] == ["24-0061021", "24-0061033"]
    bad = runner.invoke(
        cli, ["parse", "dallas-police", str(FIXTURES / "error_no_such_column.json")]
    )
    assert bad.exit_code != 0
    assert len(bad.output.strip().splitlines()) == 1
    assert "No such column" in bad.output


# --- end to end over a loopback SODA server --------------------------------------------------


@pytest.fixture
def soda() -> Iterator[SodaServer]:
    with soda_server() as srv:
        yield srv


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


def config_feed(tmp_path: Path, block: str, slug: str) -> Feed:
    path = tmp_path / "config.yaml"
    path.write_text(block, encoding="utf-8")
    return parse_config(block, path).feeds[slug]


def dallas_rows(n: int, units: int = 1) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        for u in range(units):
            out.append({
                "_key": f"{i}-{u}", "incident_number": f"24-{i:07d}", "division": "Central",
                "nature_of_call": "40 - Other", "priority": "3",
                "date": "2024-03-31T00:00:00.000", "time": f"10:{i:02d}:00",
                "unit_number": f"U{i}{u}", "block": "1500", "location": "Elm St",
                "beat": "132", "status": "At Scene",
            })  # fmt: skip
    return out


def test_dallas_snapshot_pages_and_marks_gone_only_after_a_whole_list(
    tmp_path: Path, soda: SodaServer, fetcher: Fetcher
) -> None:
    feed = config_feed(
        tmp_path,
        f"feeds:\n  dallas-police:\n    url: {soda.url('9fxf-t2tr')}\n    page_size: 3\n",
        "dallas-police",
    )
    db = tmp_path / "a.db"
    soda.put("9fxf-t2tr", dallas_rows(4, units=2))  # 8 rows: pages of 3, 3, 2
    report = poll(db, feed, fetcher)
    assert (report.outcome, report.incidents, report.new) == ("new", 4, 4)
    offsets = [parse_qs(urlsplit(p).query)["$offset"][0] for p, _ in soda.seen]
    assert offsets == ["0", "3", "6"]
    query = parse_qs(urlsplit(soda.seen[0][0]).query)
    assert (query["$order"], query["$limit"]) == ([":id"], ["3"])
    assert rows(db, "SELECT units FROM incidents ORDER BY incident_id")[0] == ("U00 U01",)

    # Two calls leave the list, but page 2 fails: rows of page 1 kept, nothing gone.
    soda.delete("9fxf-t2tr", lambda r: r["incident_number"] in ("24-0000002", "24-0000003"))
    soda.broken = {("9fxf-t2tr", 3)}
    report = poll(db, feed, fetcher)
    assert (report.outcome, report.gone) == ("partial", 0)
    assert rows(db, "SELECT count(*) FROM incidents WHERE gone_at IS NULL") == [(4,)]

    soda.broken = set()
    report = poll(db, feed, fetcher)
    assert (report.outcome, report.gone) == ("new", 2)
    gone = rows(db, "SELECT incident_id FROM incidents WHERE gone_at IS NOT NULL ORDER BY 1")
    assert gone == [("24-0000002",), ("24-0000003",)]


# --- incremental polls -----------------------------------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)


def local(moment: datetime, zone: str = "America/New_York") -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S.000")


def calls(n: int, start: int = 0, minutes_ago: int = 120) -> list[dict[str, Any]]:
    """Cincinnati-shaped rows received a minute apart, ending near now."""
    return [
        {
            "_key": f"CPD{i:06d}", "event_number": f"CPD{i:06d}",
            "create_time_incident": local(NOW - timedelta(minutes=minutes_ago - i)),
            "incident_type_desc": "DISORDERLY CROWD", "address_x": f"{i + 1}12 VINE ST",
            "district": "1", "beat": "P1A", "disposition_text": "ADVISED",
            "priority": "3", "community_council_neighborhood": "OVER-THE-RHINE",
            "latitude_x": "39.1078321", "longitude_x": "-84.5158772",
        }
        for i in range(start, start + n)
    ]  # fmt: skip


INCREMENTAL = """\
feeds:
  cincy:
    adapter: socrata
    url: {url}
    timezone: America/New_York
    mode: incremental
    time_field: create_time_incident
    look_back: 48h
    page_size: 3
    fields: {{incident_id: event_number, received: create_time_incident,
             call_type: incident_type_desc, address: address_x, district: district,
             beat: beat, disposition: disposition_text, priority: priority,
             latitude: latitude_x, longitude: longitude_x}}
"""


def test_incremental_watermark_probe_look_back_and_a_crash_between_pages(
    tmp_path: Path, soda: SodaServer, fetcher: Fetcher
) -> None:
    feed = config_feed(tmp_path, INCREMENTAL.format(url=soda.url("gexm-h6bt")), "cincy")
    db = tmp_path / "a.db"
    soda.put("gexm-h6bt", calls(5))
    before = datetime.now(UTC).replace(microsecond=0)
    report = poll(db, feed, fetcher)
    after = datetime.now(UTC)
    assert (report.outcome, report.new) == ("new", 5)
    state = dict(rows(db, "SELECT key, value FROM feed_state"))
    assert state["watermark:gexm-h6bt"] == calls(5)[-1]["create_time_incident"]
    assert state["probe:gexm-h6bt"].startswith("5|")
    first = rows(db, "SELECT address, latitude, longitude, received_at FROM incidents LIMIT 1")
    assert first[0][:3] == ("1XX VINE ST", 39.108, -84.516)
    # probe, then pages of 3: offsets 0 and 3
    queries = [parse_qs(urlsplit(p).query) for p, _ in soda.seen]
    assert [q.get("$select") for q in queries] == [
        ["count(*) AS n, max(:updated_at) AS updated_at"],
        None,
        None,
    ]
    assert [q.get("$offset") for q in queries] == [None, ["0"], ["3"]]
    # No watermark yet: the last look_back (48h) before now, in the feed's zone.
    field, op, literal = queries[1]["$where"][0].split(" ", 2)
    assert (field, op) == ("create_time_incident", ">=")
    start = datetime.fromisoformat(literal.strip("'"))
    earliest = datetime.fromisoformat(local(before - timedelta(hours=48)))
    assert earliest <= start <= datetime.fromisoformat(local(after - timedelta(hours=48)))
    assert queries[1]["$order"] == ["create_time_incident, :id"]

    # Unchanged: ONE small request, nothing parsed.
    soda.seen.clear()
    report = poll(db, feed, fetcher)
    assert report.outcome == "unchanged"
    assert (
        len(soda.seen) == 1 and "count" in parse_qs(urlsplit(soda.seen[0][0]).query)["$select"][0]
    )
    assert rows(db, "SELECT requests, bytes < 200 FROM polls ORDER BY id DESC LIMIT 1") == [(1, 1)]

    # New rows, and a crash between pages: partial, the watermark does not move.
    soda.put("gexm-h6bt", calls(4, start=5))
    soda.seen.clear()
    soda.broken = {("gexm-h6bt", 3)}
    report = poll(db, feed, fetcher)
    assert report.outcome == "partial"
    where = parse_qs(urlsplit(soda.seen[1][0]).query)["$where"][0]
    watermark = state["watermark:gexm-h6bt"]
    from_watermark = datetime.fromisoformat(watermark) - timedelta(hours=48)
    assert where == f"create_time_incident >= '{from_watermark:%Y-%m-%dT%H:%M:%S}.000'"
    assert dict(rows(db, "SELECT key, value FROM feed_state")) == state

    soda.broken = set()
    report = poll(db, feed, fetcher)
    assert (report.outcome, report.new, report.changed) == ("new", 4, 0)
    state2 = dict(rows(db, "SELECT key, value FROM feed_state"))
    assert state2["watermark:gexm-h6bt"] == calls(4, start=5)[-1]["create_time_incident"]
    assert rows(db, "SELECT count(*) FROM incident_versions") == [(9,)]

    # A row rewritten within the look-back (reclassified) adds exactly one version.
    rewritten = calls(1, start=2)[0] | {"incident_type_desc": "ASSAULT"}
    soda.put("gexm-h6bt", [rewritten])
    report = poll(db, feed, fetcher)
    assert (report.outcome, report.new, report.changed) == ("new", 0, 1)
    assert rows(db, "SELECT count(*) FROM incident_versions") == [(10,)]
    assert rows(db, "SELECT version, call_type FROM incidents WHERE incident_id = 'CPD000002'") == [
        (2, "ASSAULT")
    ]
    # ...and polling again is unchanged (one request) and adds nothing.
    soda.seen.clear()
    assert poll(db, feed, fetcher).outcome == "unchanged"
    assert len(soda.seen) == 1
    assert rows(db, "SELECT count(*) FROM incident_versions") == [(10,)]


def test_app_token_goes_in_a_header_never_in_the_url_the_archive_or_the_log(
    tmp_path: Path,
    soda: SodaServer,
    fetcher: Fetcher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "tok3n-Sekr1t-4242"
    block = INCREMENTAL.format(url=soda.url("gexm-h6bt")) + "    app_token_env: CINCY_TOKEN\n"
    feed = config_feed(tmp_path, block, "cincy")
    db = tmp_path / "a.db"
    soda.put("gexm-h6bt", calls(4))

    monkeypatch.delenv("CINCY_TOKEN", raising=False)
    report = poll(db, feed, fetcher)
    assert report.outcome == "error"
    assert "CINCY_TOKEN (app_token_env) is not set" in (report.error or "")
    assert soda.seen == []

    monkeypatch.setenv("CINCY_TOKEN", token)
    caplog.set_level(logging.DEBUG)
    report = poll(db, feed, fetcher)
    assert (report.outcome, report.new) == ("new", 4)
    assert all(headers.get("X-App-Token") == token for _, headers in soda.seen)
    assert all(token not in path for path, _ in soda.seen)
    with Archive(db):
        pass  # closed: checkpointed into the main file
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("a.db*"))
    assert token.encode() not in stored
    assert token not in caplog.text


def test_config_errors_name_the_key_and_its_line(tmp_path: Path) -> None:
    cases = {
        "mode: sometimes": ("line 6", "mode must be snapshot or incremental"),
        "look_back: soon": ("line 6", "look_back must be a duration"),
        "page_size: 0": ("line 6", "page_size must be a whole number"),
        "app_token_env: my token": ("line 6", "app_token_env must name an environment"),
        "colour: blue": ("line 6", "unknown key 'colour' for adapter socrata"),
        "fields: {incident_id: event_number}": ("line 6", "fields needs received"),
    }
    for line, (where, message) in cases.items():
        text = (
            "feeds:\n  cincy:\n    adapter: socrata\n"
            "    url: https://data.cincinnati-oh.gov/resource/gexm-h6bt.json\n"
            "    timezone: America/New_York\n"
            f"    {line}\n"
        )
        if not line.startswith("fields"):
            text += "    fields: {incident_id: event_number, received: create_time_incident}\n"
        with pytest.raises(ConfigError) as info:
            parse_config(text, tmp_path / "c.yaml")
        assert where in str(info.value) and message in str(info.value), (line, str(info.value))
    with pytest.raises(ConfigError, match="line 3.*'fields' is set by the built-in feed"):
        parse_config("feeds:\n  dallas-police:\n    fields: {incident_id: x}\n")
    with pytest.raises(ConfigError, match="url must be a Socrata resource URL"):
        socrata.from_config("x", {"url": "https://example.org/data.csv", "timezone": "UTC",
                                  "fields": {"incident_id": "a", "received": "b"}})  # fmt: skip


# --- yearly datasets -------------------------------------------------------------------------

YEARLY = """\
feeds:
  nola:
    adapter: socrata
    url: {url}
    timezone: America/Chicago
    mode: incremental
    time_field: timecreate
    look_back: 72h
    datasets: {{2025: 4xwx-sfte, 2026: es9j-6y5d}}
    year_overlap: 7d
    fields: {{incident_id: nopd_item, received: timecreate, call_type: typetext}}
"""


def test_yearly_datasets_switch_at_new_year_in_the_feeds_zone(
    tmp_path: Path, soda: SodaServer, fetcher: Fetcher
) -> None:
    feed = config_feed(tmp_path, YEARLY.format(url=soda.url("es9j-6y5d")), "nola")
    plan = feed.scraper.plan
    assert plan is not None

    def datasets_at(moment: datetime, state: dict[str, str] | None = None) -> list[str]:
        context = PlanContext(feed="nola", url=feed.url, zone=feed.zone, now=moment,
                              state=state or {})  # fmt: skip
        return [r.meta["dataset"] for r in plan(context)]

    # 2026-01-01 03:00 UTC is still 2025-12-31 21:00 in Chicago.
    assert datasets_at(datetime(2026, 1, 1, 3, tzinfo=UTC)) == ["4xwx-sfte"]
    # 06:00 UTC is past midnight in Chicago: both, for seven days; then only the new one.
    assert datasets_at(datetime(2026, 1, 1, 6, 30, tzinfo=UTC)) == ["4xwx-sfte", "es9j-6y5d"]
    assert datasets_at(datetime(2026, 1, 8, 5, 59, tzinfo=UTC)) == ["4xwx-sfte", "es9j-6y5d"]
    assert datasets_at(datetime(2026, 1, 8, 6, 1, tzinfo=UTC)) == ["es9j-6y5d"]

    # End to end across the switch: each dataset keeps its own watermark.
    db = tmp_path / "a.db"
    soda.put("4xwx-sfte", [
        {"_key": "a", "nopd_item": "L9990125", "timecreate": "2025-12-31T23:10:00.000",
         "typetext": "NOISE"},
    ])  # fmt: skip
    soda.put("es9j-6y5d", [
        {"_key": "b", "nopd_item": "A0000126", "timecreate": "2026-01-01T00:05:00.000",
         "typetext": "FIREWORKS"},
    ])  # fmt: skip

    def run(moment: datetime) -> Any:
        with Archive(db) as archive:
            archive.register_feed(feed.record())

            def fetch(request: Any, etag: Any, modified: Any) -> Any:
                return fetcher.fetch(feed, request=request)

            return run_poll(archive, feed, fetch, now=moment)

    report = run(datetime(2026, 1, 1, 7, tzinfo=UTC))
    assert (report.outcome, report.new) == ("new", 2)
    state = dict(rows(db, "SELECT key, value FROM feed_state"))
    assert state["watermark:4xwx-sfte"] == "2025-12-31T23:10:00.000"
    assert state["watermark:es9j-6y5d"] == "2026-01-01T00:05:00.000"
    assert rows(db, "SELECT received_at FROM incidents ORDER BY 1") == [
        ("2026-01-01T05:10:00Z",),
        ("2026-01-01T06:05:00Z",),
    ]
    # A late 2025 row appears in the old dataset during the overlap: it is read.
    soda.put("4xwx-sfte", [
        {"_key": "c", "nopd_item": "L9991125", "timecreate": "2025-12-31T23:50:00.000",
         "typetext": "THEFT"},
    ])  # fmt: skip
    report = run(datetime(2026, 1, 2, 7, tzinfo=UTC))
    assert (report.outcome, report.new) == ("new", 1)
    # After the overlap: one probe of the new dataset only.
    soda.seen.clear()
    report = run(datetime(2026, 1, 9, 7, tzinfo=UTC))
    assert report.outcome == "unchanged"
    assert [urlsplit(p).path for p, _ in soda.seen] == ["/resource/es9j-6y5d.json"]
    # A new year whose dataset id is unknown: a clear error until config.yaml names it.
    report = run(datetime(2027, 1, 2, 7, tzinfo=UTC))
    assert report.outcome == "error"
    assert "no dataset id known for 2027: add it" in (report.error or "")
    block = YEARLY.format(url=soda.url("es9j-6y5d")).replace(
        "2026: es9j-6y5d}", "2026: es9j-6y5d, 2027: zz27-0001}"
    )
    feed = config_feed(tmp_path, block, "nola")
    soda.datasets["zz27-0001"] = []
    report = run(datetime(2027, 1, 2, 7, tzinfo=UTC))
    assert report.outcome in ("new", "unchanged"), report.error
    assert soda.seen[-1][0].startswith("/resource/zz27-0001.json")


# --- the README's config-only city -----------------------------------------------------------


def readme_cincinnati_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### A city on Socrata: configuration only") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    return section[start : section.index("```", start)]


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    """``dispatchwatch run --once`` in its own process, as a user (or cron) runs it."""
    return subprocess.run(
        [sys.executable, "-m", "dispatchwatch", "run", "--once", "--config", str(config)],
        cwd=config.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_readme_cincinnati_block_archives_with_no_code(
    tmp_path: Path, soda: SodaServer
) -> None:
    block = readme_cincinnati_block()
    real_url = "https://data.cincinnati-oh.gov/resource/gexm-h6bt.json"
    assert f"url: {real_url}\n" in block and "adapter: socrata" in block
    config = tmp_path / "config.yaml"
    config.write_text(block.replace(real_url, soda.url("gexm-h6bt")), encoding="utf-8")
    soda.put("gexm-h6bt", calls(7))
    listed = CliRunner().invoke(cli, ["feeds", "--config", str(config)])
    assert listed.exit_code == 0 and "cincinnati-police" in listed.output
    result = run_once(config)
    assert result.returncode == 0, result.stderr
    db = tmp_path / "dispatch.db"
    found = rows(
        db,
        "SELECT incident_id, received_at, call_type, priority, disposition, address, district, "
        "beat, latitude, longitude, extra FROM incidents ORDER BY incident_id",
    )
    assert len(found) == 7
    first = found[0]
    source = calls(1)[0]
    assert first[0] == "CPD000000"
    from dispatchwatch.normalize import to_utc

    assert first[1] == to_utc(source["create_time_incident"], "America/New_York")
    assert first[2:10] == (
        "DISORDERLY CROWD", "3", "ADVISED", "1XX VINE ST", "1", "P1A", 39.108, -84.516,
    )  # fmt: skip
    assert json.loads(first[10]) == {"community_council_neighborhood": "OVER-THE-RHINE"}
    assert rows(db, "SELECT name, agency, city, timezone FROM feeds") == [
        ("Cincinnati Police Calls for Service", "Cincinnati Police Department", "Cincinnati",
         "America/New_York"),
    ]  # fmt: skip
    state = dict(rows(db, "SELECT key, value FROM feed_state WHERE feed = 'cincinnati-police'"))
    assert state["watermark:gexm-h6bt"] == calls(7)[-1]["create_time_incident"]
    # The same config, run again with nothing new: one request, unchanged.
    soda.seen.clear()
    result = run_once(config)
    assert result.returncode == 0, result.stderr
    assert len(soda.seen) == 1
    assert rows(db, "SELECT outcome FROM polls ORDER BY id DESC LIMIT 1") == [("unchanged",)]


def test_a_backfill_queries_its_range_and_never_moves_the_watermark(
    tmp_path: Path, soda: SodaServer, fetcher: Fetcher
) -> None:
    feed = config_feed(tmp_path, YEARLY.format(url=soda.url("es9j-6y5d")), "nola")
    db = tmp_path / "a.db"
    soda.put("4xwx-sfte", [
        {"_key": f"a{i}", "nopd_item": f"L{i:04d}25", "timecreate": f"2025-12-{i:02d}T12:00:00.000",
         "typetext": "NOISE"} for i in range(1, 32)
    ])  # fmt: skip
    soda.put("es9j-6y5d", [
        {"_key": f"b{i}", "nopd_item": f"A{i:04d}26", "timecreate": f"2026-01-{i:02d}T12:00:00.000",
         "typetext": "THEFT"} for i in range(1, 10)
    ])  # fmt: skip
    with Archive(db) as archive:
        archive.register_feed(feed.record())
        archive.set_feed_state("nola", {"watermark:es9j-6y5d": "2026-01-09T12:00:00.000"})
        report = run_poll(
            archive, feed, lambda r, e, m: fetcher.fetch(feed, request=r),
            now=datetime(2026, 1, 20, tzinfo=UTC), kind="backfill",
            since=datetime(2025, 12, 30, 6, tzinfo=UTC),  # 2025-12-30 00:00 CST
            until=datetime(2026, 1, 3, 6, tzinfo=UTC),  # 2026-01-03 00:00 CST
        )  # fmt: skip
    # Both years' datasets, no probe, the range in local (floating) time: 12-30, 12-31,
    # 01-01 and 01-02 at noon.
    assert (report.outcome, report.new) == ("new", 4)
    wheres = [parse_qs(urlsplit(p).query)["$where"][0] for p, _ in soda.seen]
    assert (
        wheres
        == ["timecreate >= '2025-12-30T00:00:00.000' AND timecreate < '2026-01-03T00:00:00.000'"]
        * 2
    )
    assert [urlsplit(p).path for p, _ in soda.seen] == [
        "/resource/4xwx-sfte.json", "/resource/es9j-6y5d.json",
    ]  # fmt: skip
    assert rows(db, "SELECT kind FROM polls") == [("backfill",)]
    assert dict(rows(db, "SELECT key, value FROM feed_state")) == {
        "watermark:es9j-6y5d": "2026-01-09T12:00:00.000"
    }
    # A snapshot feed of active calls has no range to query: a clear error, nothing written.
    dallas = default_feed("dallas-police")
    context = PlanContext(feed="dallas-police", url=dallas.url, zone=dallas.zone,
                          now=datetime(2026, 1, 20, tzinfo=UTC),
                          since=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    with pytest.raises(ConfigError, match="a backfill needs a time_field"):
        dallas.scraper.requests(context)
