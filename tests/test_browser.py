"""The Datasette pages render in a real browser: headless Chromium against ``dispatchwatch
serve`` on 127.0.0.1. Skips when Chromium is not installed (CI installs Debian's).

Chromium resolves no host but 127.0.0.1 (so the map's tiles are not fetched): nothing leaves
the machine."""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup
from test_coverage import Outage, local_span
from test_publish import ZONES, Sample, Server  # pytest puts tests/ on sys.path

from dispatchwatch.coverage import VIEW_DOCS
from dispatchwatch.demo import run_demo
from dispatchwatch.publish import dashboards
from dispatchwatch.publish.datasette_plugin import POLLS_COLUMNS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


def dump_dom(url: str, profile: Path) -> BeautifulSoup:
    """The page's DOM after its scripts ran (the cluster map is drawn by JavaScript)."""
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return BeautifulSoup(result.stdout, "lxml")


@pytest.fixture(scope="module")
def browsed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, Sample]]:
    tmp = tmp_path_factory.mktemp("browser")
    sample = Sample(tmp / "dispatch.db")
    server = Server(tmp / "dispatch.db", tmp / "serve.log")
    yield server, tmp / "profile", sample
    server.client.close()
    server.stop()


def test_incidents_page_local_times_and_no_map(browsed: tuple[Server, Path, Sample]) -> None:
    server, profile, _ = browsed
    page = dump_dom(f"{server.url}/dispatch/incidents", profile)
    rows = page.select("table.rows-and-columns tbody tr")
    assert len(rows) == 10
    ids = {cell.get_text(strip=True) for cell in page.select("td.col-incident_id")}
    assert {"F1", "M4"} <= ids
    facets = {div.get("data-column") for div in page.select("div.facet-info")}
    assert facets == {"feed", "call_type", "status", "district"}
    # the first rows read in each feed's local time, with its zone
    shown = [row.select_one("td.col-received_at").get_text(strip=True) for row in rows]
    assert all(text.endswith((" PST", " PDT", " CST", " CDT")) for text in shown), shown
    assert "Block-level location" in str(page)
    # no map on a table page: the map is the incident_points view's
    assert not page.select(".leaflet-container")


def test_map_view_draws_the_points(browsed: tuple[Server, Path, Sample]) -> None:
    server, profile, _ = browsed
    page = dump_dom(f"{server.url}/dispatch/incident_points", profile)
    assert page.select(".leaflet-container"), "datasette-cluster-map should draw its map"
    markers = page.select(".leaflet-marker-icon")
    assert markers, "the points (or their clusters) should be on the map"


def test_dashboard_draws_calls_per_hour(browsed: tuple[Server, Path, Sample]) -> None:
    server, profile, sample = browsed
    page = dump_dom(f"{server.url}/-/dashboards/{dashboards.DASHBOARD}", profile)
    chart = page.select_one("#chart-calls-today")
    bars = chart.select("svg g.mark-rect path[aria-label]")
    drawn: dict[tuple[str, str], int] = {}
    for bar in bars:  # "hour (local): 06:00; calls: 2; feed: seattle-fire"
        fields = dict(part.split(": ", 1) for part in bar["aria-label"].split("; "))
        drawn[(fields["feed"], fields["hour (local)"])] = int(fields["calls"])
    assert len(drawn) == 24 * len(ZONES)
    for feed, zone in ZONES.items():
        today = datetime.now(zone).date().isoformat()
        expected = sample.calls_per_hour(today, feed)
        assert [drawn[(feed, f"{h:02d}:00")] for h in range(24)] == expected
    assert page.select_one("#chart-calls-24h").get_text(strip=True) == "7 calls"
    # the feed filter is a list of the archive's feeds
    options = [o.get("value") for o in page.select("select#feed option")]
    assert options == ["", "milwaukee-police", "seattle-fire"]


def test_canned_query_page_renders(browsed: tuple[Server, Path, Sample]) -> None:
    server, profile, _ = browsed
    page = dump_dom(
        f"{server.url}/dispatch/incident_history?feed=seattle-fire&incident_id=F1", profile
    )
    assert "An incident's full history" in page.get_text()
    rows = page.select("table.rows-and-columns tbody tr")
    assert len(rows) == 3
    assert "status: active → closed" in rows[2].get_text()
    assert rows[0].select_one("td.col-local_time").get_text().endswith((" PST", " PDT"))
    # the SQL is hidden, and the feed is picked from a list
    assert not page.select("form.sql textarea")
    feed = page.select_one("form.sql select[name=feed]")
    assert feed is not None and not page.select("form.sql input[name=feed]")
    assert [o.get("value") for o in feed.select("option")] == [
        "",
        "milwaukee-police",
        "seattle-fire",
    ]
    assert page.select_one("form.sql select[name=feed]").get("id") == "qp1"


def test_polls_page_shows_what_matters_first(browsed: tuple[Server, Path, Sample]) -> None:
    """The polls table itself (the page the database lists) leads with when, which feed,
    how it went, what changed and why it failed, in local time; every column is still
    there, and the JSON keeps the table's own order."""
    server, profile, sample = browsed
    page = dump_dom(f"{server.url}/dispatch/polls", profile)
    shown = [th.get("data-column") for th in page.select("table.rows-and-columns thead th")]
    with closing(sqlite3.connect(sample.path)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(polls)")]
        polls = conn.execute("SELECT count(*) FROM polls").fetchone()[0]
    assert shown[:8] == ["id", "started_at", "feed", "outcome", *POLLS_COLUMNS[3:7]]
    assert sorted(shown) == sorted(columns)  # nothing hidden, nothing twice
    rows = page.select("table.rows-and-columns tbody tr")
    assert len(rows) == polls
    [error] = [r for r in rows if r.select_one("td.col-outcome").get_text(strip=True) == "error"]
    assert error.select_one("td.col-error").get_text(strip=True) == "HTTP 503"
    assert error.select_one("td.col-feed").get_text(strip=True) == "seattle-fire"
    assert error.select_one("td.col-started_at").get_text(strip=True).endswith((" PST", " PDT"))
    # A chosen column set is left as asked; the JSON keeps the table's order.
    chosen = dump_dom(f"{server.url}/dispatch/polls?_col=feed", profile)
    assert [th.get("data-column") for th in chosen.select("table thead th")] == ["id", "feed"]
    assert list(server.rows("polls")[0]) == columns


def test_coverage_view_shows_an_injected_blind_window(tmp_path: Path) -> None:
    """A 10-minute outage injected into an archive shows on the coverage page as one blind
    window with its local times, failed polls and length, described by VIEW_DOCS."""
    outage = Outage(tmp_path / "dispatch.db")
    server = Server(outage.path, tmp_path / "serve.log")
    try:
        page = dump_dom(f"{server.url}/dispatch/coverage", tmp_path / "profile")
        rows = page.select("table.rows-and-columns tbody tr")
        assert len(rows) == 1
        cell = {
            td["class"][0].removeprefix("col-"): td.get_text(strip=True) for td in rows[0]("td")
        }
        # The local clock times (the date is in starts_local), as `coverage` prints them.
        span = local_span(outage.start, outage.end)
        if span.count(" ") == 2:  # within one local day: "YYYY-MM-DD HH:MM:SS-HH:MM:SS local"
            span = span.split(" ", 1)[1]
        assert cell["description"] == f"{span}, 5 polls failed: timeout"
        assert (cell["kind"], cell["minutes"], cell["failed_polls"]) == ("blind", "10.0", "5")
        assert cell["starts_at"].endswith((" PST", " PDT"))
        assert VIEW_DOCS["coverage"]["description"] in page.get_text(" ")
        described = {dt.get_text(strip=True) for dt in page.select("dl.column-descriptions dt")}
        assert set(VIEW_DOCS["coverage"]["columns"]) <= described
        home = dump_dom(f"{server.url}/", tmp_path / "profile")
        links = {a.get_text(strip=True): a.get("href") for a in home.select("a")}
        assert links["Coverage: when the archive was blind"] == "dispatch/coverage"
    finally:
        server.client.close()
        server.stop()


def test_demo_archive_in_the_browser(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The issue's check on a real demo archive: the incidents page shows rows in local
    time, says it is simulated and has no map; the dashboard draws calls per hour."""
    tmp = tmp_path_factory.mktemp("demo-browser")
    run_demo(tmp / "demo.db", duration=2, speed=600, interval=0.5, out=io.StringIO())
    # Every demo feed (pages, an ArcGIS layer, a Socrata dataset) in its own zone.
    with closing(sqlite3.connect(tmp / "demo.db")) as conn:
        zones = {
            slug: ZoneInfo(tz) for slug, tz in conn.execute("SELECT slug, timezone FROM feeds")
        }
    server = Server(tmp / "demo.db", tmp / "serve.log")
    try:
        page = dump_dom(f"{server.url}/demo/incidents", tmp / "profile")
        assert page.select_one("h1").get_text(strip=True) == "Incidents"
        rows = page.select("table.rows-and-columns tbody tr")
        assert rows
        shown = [row.select_one("td.col-received_at").get_text(strip=True) for row in rows]
        suffixes = (" PST", " PDT", " CST", " CDT", " EST", " EDT")
        assert all(text.endswith(suffixes) for text in shown), shown
        assert not page.select(".leaflet-container")
        styles = " ".join(link.get("href", "") for link in page.select("link[rel=stylesheet]"))
        assert "SIMULATED" in urllib.parse.unquote(styles)  # the banner atop every page
        board = dump_dom(f"{server.url}/-/dashboards/{dashboards.DASHBOARD}", tmp / "profile")
        assert board.select_one("h1").get_text(strip=True).startswith("SIMULATED")
        bars = board.select("#chart-calls-today svg g.mark-rect path[aria-label]")
        calls = sum(int(bar["aria-label"].split("calls: ")[1].split(";")[0]) for bar in bars)
        today = {feed: datetime.now(zones[feed]).date().isoformat() for feed in zones}
        expected = sum(
            1
            for row in server.rows("incidents_local", _size="max")
            if row["received_local"][:10] == today[row["feed"]]
        )
        assert len(bars) == 24 * len(zones) and calls == expected
    finally:
        server.client.close()
        server.stop()
