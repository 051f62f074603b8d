"""What a person sees in Datasette: local times, maps only where there are points,
dashboards, hidden SQL, feed lists, history links, honest demo labels, current views.

Real archives, a real ``dispatchwatch serve`` process on 127.0.0.1 and Datasette's JSON API;
the pages as drawn by a browser are in test_browser.py.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from test_publish import MILWAUKEE, SEATTLE, ZONES, Sample, Server, query

from dispatchwatch import publish
from dispatchwatch.archive import Archive
from dispatchwatch.incident import Incident
from dispatchwatch.publish import dashboards, metadata, views
from dispatchwatch.publish.datasette_plugin import local_label


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return Sample(tmp_path_factory.mktemp("polish") / "dispatch.db")


@pytest.fixture(scope="module")
def server(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(sample.path, tmp_path_factory.mktemp("polish-serve") / "serve.log")
    yield srv
    srv.client.close()
    srv.stop()


def label(utc: str, feed: str) -> str:
    moment = datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone(ZONES[feed])
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + (moment.tzname() or "")


def no_points_archive(path: Path) -> Path:
    """An archive like today's built-in feeds make: no coordinates at all."""
    with Archive(path) as archive:
        archive.register_feed(SEATTLE)
        archive.record_success(
            "seattle-fire",
            [Incident("seattle-fire", "F1", "2024-04-01T01:30:18Z", "Aid Response")],
            observed_at="2024-04-01T01:31:00Z",
            snapshot=True,
        )
    return path


# --- local time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "zone", "expected"),
    [
        ("2024-04-01T01:30:18Z", "America/Los_Angeles", "2024-03-31 18:30:18 PDT"),
        ("2024-01-15T18:00:00Z", "America/Chicago", "2024-01-15 12:00:00 CST"),
        # the repeated hour of a DST end: the abbreviation tells the two apart
        ("2024-11-03T08:30:00Z", "America/Los_Angeles", "2024-11-03 01:30:00 PDT"),
        ("2024-11-03T09:30:00Z", "America/Los_Angeles", "2024-11-03 01:30:00 PST"),
    ],
)
def test_local_label_python_and_sql_agree(utc: str, zone: str, expected: str) -> None:
    assert local_label(utc, zone) == expected
    conn = sqlite3.connect(":memory:")
    publish.ensure_zone_offsets(conn, [zone])
    sql = "SELECT " + publish.zones._local_label(":utc", ":zone")
    assert conn.execute(sql, {"utc": utc, "zone": zone}).fetchone()[0] == expected
    assert local_label(utc, "Not/AZone") is None


def test_incidents_page_shows_local_times_with_utc_in_the_tooltip(server: Server) -> None:
    page = BeautifulSoup(server.get(f"/{server.db_name}/incidents").text, "lxml")
    rows = page.select("table.rows-and-columns tbody tr")
    assert len(rows) == 10
    for row in rows:
        feed = row.select_one("td.col-feed").get_text(strip=True)
        cell = row.select_one("td.col-received_at span.dw-local")
        utc = cell["title"].removesuffix(" UTC")
        assert cell.get_text() == label(utc, feed)
    # JSON keeps the stored UTC text: only the display changes
    data = server.rows("incidents", _sort_desc="received_at")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["received_at"]) for r in data)


def test_incident_row_links_to_its_history(server: Server) -> None:
    page = BeautifulSoup(server.get(f"/{server.db_name}/incidents/seattle-fire,F1").text, "lxml")
    link = page.select_one("td.col-version a")
    assert link.get_text() == "3 · history"
    history = server.client.get(link["href"]).text
    assert "An incident&#39;s full history" in history or "An incident's full history" in history
    assert "status: active → closed" in history


def test_canned_queries_local_time_first_and_sql_hidden(server: Server, sample: Sample) -> None:
    rows = server.rows("incident_history", feed="seattle-fire", incident_id="F1")
    assert list(rows[0])[:3] == ["version", "event", "local_time"]
    assert [r["local_time"] for r in rows] == [
        label(r["observed_utc"], "seattle-fire") for r in rows
    ]
    health = {r["feed"]: r for r in server.rows("feed_health")}
    seattle = health["seattle-fire"]
    assert seattle["last_error_local"] == label(seattle["last_error"], "seattle-fire")
    page = server.get(f"/{server.db_name}/last_24_hours").text
    assert "show_sql" in page or "Show SQL" in page  # the SQL is there on demand...
    assert "incidents i" not in BeautifulSoup(page, "lxml").select_one("form.sql").get_text()


def test_calls_per_hour_today_is_each_feeds_own_today(server: Server, sample: Sample) -> None:
    rows = server.rows("calls_per_hour", day="", feed="")
    expected = [0] * 24
    for feed, zone in ZONES.items():
        today = datetime.now(zone).date().isoformat()
        for hour, n in enumerate(sample.calls_per_hour(today, feed)):
            expected[hour] += n
    assert [r["calls"] for r in rows] == expected
    days = {datetime.now(zone).date().isoformat() for zone in ZONES.values()}
    assert rows[0]["day"] in (days.pop() if len(days) == 1 else {" / ".join(sorted(days))})


def test_feed_parameter_is_a_list_of_feeds(server: Server) -> None:
    page = server.get(f"/{server.db_name}/last_24_hours").text
    assert '["milwaukee-police", "seattle-fire"]' in page  # handed to the page's script
    assert 'input[name="feed"]' in page


# --- maps --------------------------------------------------------------------------------------


def test_map_only_of_incidents_with_points(sample: Sample, tmp_path: Path) -> None:
    meta = publish.build_metadata(sample.path)
    database = meta["databases"]["dispatch"]
    # no table or query gets a map from its latitude/longitude columns...
    assert database["plugins"]["datasette-cluster-map"] == metadata._NO_MAP
    # ...except the view of incidents that have coordinates
    points = database["tables"]["incident_points"]
    assert points["plugins"]["datasette-cluster-map"] == metadata._MAP
    assert not points.get("hidden")
    rows = query(sample.path, "SELECT * FROM incident_points ORDER BY received_at DESC")
    assert len(rows) == 10
    assert rows[0]["latitude"] == 43.07 and rows[1]["latitude"] == 47.606
    popup = __import__("json").loads(rows[0]["popup"])
    assert popup["title"] == "TRAFFIC STOP"
    assert popup["description"].startswith(label(rows[0]["received_at"], "milwaukee-police"))
    # an archive without a single point: no map at all, the map view hidden
    bare = publish.build_metadata(no_points_archive(tmp_path / "bare.db"))
    bare_points = bare["databases"]["bare"]["tables"]["incident_points"]
    assert bare_points["hidden"] and "plugins" not in bare_points
    assert "incident_points" not in bare["description_html"]


def test_map_points_are_block_level_whatever_the_precision(tmp_path: Path) -> None:
    with Archive(tmp_path / "exact.db") as archive:
        archive.register_feed(replace(SEATTLE, precision="exact"))
        incident = Incident("seattle-fire", "F9", "2024-04-01T01:30:18Z", "Aid Response")
        incident.latitude, incident.longitude = 47.6153211, -122.3254799
        archive.record_success("seattle-fire", [incident], observed_at="2024-04-01T01:31:00Z")
    (row,) = query(tmp_path / "exact.db", "SELECT latitude, longitude FROM incident_points")
    assert (row["latitude"], row["longitude"]) == (47.615, -122.325)


# --- dashboards --------------------------------------------------------------------------------


def run_chart(server: Server, chart: dict, feed: str) -> list[dict]:
    """A chart's rows as datasette-dashboards gets them: its SQL with the optional
    ``[[ ... ]]`` parts kept or dropped, through Datasette's JSON API."""
    sql = re.sub(r"\[\[(.*?)\]\]", (lambda m: m.group(1)) if feed else "", chart["query"])
    params = {"sql": sql, "_shape": "array"}
    if feed:
        params["feed"] = feed
    return server.json(f"/{server.db_name}.json", **params)  # type: ignore[return-value]


def test_dashboard_charts_run_for_every_feed_and_each(server: Server, sample: Sample) -> None:
    config = server.json("/-/metadata.json")["plugins"]["datasette-dashboards"]
    board = config[dashboards.DASHBOARD]
    assert board["filters"]["feed"]["type"] == "select"  # a list, not a text box
    laid_out = {slug for row in board["layout"] for slug in row}
    assert laid_out == set(board["charts"])
    for feed in ("", "seattle-fire", "milwaukee-police"):
        for slug, chart in board["charts"].items():
            if chart["library"] == "markdown":
                continue
            rows = run_chart(server, chart, feed)
            if feed and rows and "feed" in rows[0] and slug != "response-times":
                assert {r["feed"] for r in rows} == {feed}, slug
    # calls per hour today, per feed, in each feed's own today
    for feed, zone in ZONES.items():
        today = datetime.now(zone).date().isoformat()
        rows = run_chart(server, board["charts"]["calls-today"], feed)
        assert [r["calls"] for r in rows] == sample.calls_per_hour(today, feed)
        assert {r["day"] for r in rows} == {today}
    (metric,) = run_chart(server, board["charts"]["calls-24h"], "")
    assert metric["calls"] == 7
    outcomes = run_chart(server, board["charts"]["feed-health"], "seattle-fire")
    assert {r["outcome"]: r["polls"] for r in outcomes} == {"new": 3, "error": 1}


def test_response_times_only_where_the_source_has_them(server: Server, tmp_path: Path) -> None:
    config = server.json("/-/metadata.json")["plugins"]["datasette-dashboards"]
    chart = config[dashboards.DASHBOARD]["charts"]["response-times"]
    # the sample's feeds publish no such times: no figure is made up
    assert run_chart(server, chart, "") == [
        {
            "feed": dashboards.NO_RESPONSE_TIMES,
            "calls_with_both_times": 0,
            "mean_minutes": None,
            "fastest_minutes": None,
            "slowest_minutes": None,
        }
    ]
    # a source that publishes them: dispatch -> on scene in minutes
    db = tmp_path / "times.db"
    now = datetime.now(UTC).replace(microsecond=0)
    with Archive(db) as archive:
        archive.register_feed(MILWAUKEE)
        calls = []
        for n, minutes in enumerate((4, 6, 11)):
            incident = Incident(
                "milwaukee-police", f"R{n}", now.strftime("%Y-%m-%dT%H:%M:%SZ"), "THEFT"
            )
            incident.extra = {
                "dispatch_time": "2024-04-01 10:00:00",
                "arrival_time": f"2024-04-01 10:{minutes:02d}:00",
            }
            calls.append(incident)
        calls.append(Incident("milwaukee-police", "R9", now.strftime("%Y-%m-%dT%H:%M:%SZ"), "X"))
        archive.record_success("milwaukee-police", calls, observed_at=calls[0].received_at)
    sql = re.sub(r"\[\[(.*?)\]\]", "", chart["query"])
    (row,) = query(db, sql)
    assert row["feed"] == "milwaukee-police"
    assert row["calls_with_both_times"] == 3
    assert (row["mean_minutes"], row["fastest_minutes"], row["slowest_minutes"]) == (7.0, 4.0, 11.0)


def test_coverage_panel_shows_the_coverage_view_when_there_is_one(
    sample: Sample, tmp_path: Path
) -> None:
    board = publish.build_metadata(sample.path)["plugins"]["datasette-dashboards"]
    panel = board[dashboards.DASHBOARD]["charts"]["coverage"]
    db = tmp_path / "covered.db"
    with sqlite3.connect(sample.path) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
        has_coverage = dst.execute("SELECT 1 FROM sqlite_master WHERE name = 'coverage'").fetchone()
        if not has_coverage:
            assert panel["library"] == "markdown"  # the place is kept for it
            dst.execute("CREATE VIEW coverage AS SELECT slug AS feed, 0.5 AS covered FROM feeds")
    dst.close()
    src.close()
    panel = publish.build_metadata(db)["plugins"]["datasette-dashboards"][dashboards.DASHBOARD][
        "charts"
    ]["coverage"]
    assert panel["library"] == "table"
    assert "FROM coverage" in panel["query"] and ":feed" in panel["query"]


# --- home page, honest demo, current views -----------------------------------------------------


def test_home_page_lists_dashboards_and_queries(server: Server) -> None:
    page = BeautifulSoup(server.get("/").text, "lxml")
    links = {a.get_text(): a["href"] for a in page.select("a")}
    assert links["Calls and feed health, all feeds"] == f"-/dashboards/{dashboards.DASHBOARD}"
    assert links["Calls per hour"] == f"{server.db_name}/calls_per_hour"
    assert links["Polls"] == f"{server.db_name}/polls"
    # every start link works from the home page
    for text in ("Incidents", "Calls per hour", "Polls", "Calls and feed health, all feeds"):
        assert server.get("/" + links[text]).status_code == 200, text
    assert "day_url" not in page.get_text()


def test_builtin_feed_descriptions_carry_no_internal_notes() -> None:
    from dispatchwatch.plugins import load_scrapers

    for scraper in load_scrapers().values():
        for text in (scraper.name, scraper.source_notes, scraper.license):
            assert not re.search(r"\w+\(\w*\)|_url\b", text or ""), (scraper.slug, text)


def test_poll_log_shows_what_matters_first(server: Server) -> None:
    rows = server.rows("poll_log", _sort_desc="id")
    assert list(rows[0])[:4] == ["id", "local_time", "feed", "outcome"]
    error = next(r for r in rows if r["outcome"] == "error")
    assert error["local_time"] == label(error["started_at"], error["feed"])
    assert error["error"] == "HTTP 503"


def test_simulated_archive_says_so_on_every_page(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    with Archive(db) as archive:
        archive.register_feed(replace(SEATTLE, source_notes=metadata.SIMULATED_NOTE))
    meta = publish.build_metadata(db)
    assert meta["title"].startswith("SIMULATED")
    assert "SIMULATED DATA" in meta["description_html"]
    assert meta["source"].startswith("Simulated")
    assert "source_url" not in meta
    assert "SIMULATED" in meta["extra_css_urls"][0]  # the banner atop every page
    board = meta["plugins"]["datasette-dashboards"][dashboards.DASHBOARD]
    assert board["title"].startswith("SIMULATED")
    real = publish.build_metadata(no_points_archive(tmp_path / "real.db"))
    assert "SIMULATED" not in real["title"] + real["description_html"]
    assert "SIMULATED" not in real["extra_css_urls"][0]


def test_serve_brings_an_older_archives_views_up_to_date(sample: Sample, tmp_path: Path) -> None:
    db = tmp_path / "older.db"
    with sqlite3.connect(sample.path) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
        dst.execute("DROP VIEW poll_log")
        dst.execute("DROP VIEW incident_timeline")
        dst.execute("CREATE VIEW incident_timeline AS SELECT * FROM incident_versions")
    dst.close()
    src.close()
    conn = sqlite3.connect(db)
    assert views.views_outdated(conn)
    conn.close()
    publish.prepare_live_archive(db)
    conn = sqlite3.connect(db)
    assert not views.views_outdated(conn)
    conn.close()
    assert query(db, "SELECT count(*) AS n FROM poll_log") == [{"n": 10}]


def test_plugin_leaves_databases_without_our_metadata_alone(sample: Sample, tmp_path: Path) -> None:
    """The plugin is installed with dispatchwatch, so it loads in any Datasette of that
    environment: without the generated metadata it must change nothing."""
    import asyncio

    from datasette.app import Datasette

    db = tmp_path / "plain.db"
    with sqlite3.connect(sample.path) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    dst.close()
    src.close()
    plain = Datasette([str(db)])
    assert "dispatchwatch" in {p["name"] for p in plain._plugins()}
    page = asyncio.run(plain.client.get("/plain/incidents")).text
    assert "dw-local" not in page and "· history" not in page
    assert re.search(r">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<", page)  # UTC, untouched
