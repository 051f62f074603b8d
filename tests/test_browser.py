"""The Datasette pages render in a real browser: headless Chromium against ``dispatchwatch
serve`` on 127.0.0.1. Skips when Chromium is not installed (CI installs Debian's).

Chromium resolves no host but 127.0.0.1 (so the map's tiles are not fetched): nothing leaves
the machine."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import time
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

from dispatchwatch.alerts import atom_query_name
from dispatchwatch.coverage import VIEW_DOCS
from dispatchwatch.demo import DEMO_RULE, alerts_available, run_demo
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


def evaluate_in_page(
    url: str, expression: str, profile: Path, size: tuple[int, int] = (1280, 800)
) -> object:
    """The value of the JavaScript ``expression`` in ``url`` once loaded, in headless
    Chromium with a ``size`` viewport (a laptop's first screen by default), polled until it
    is not null (10 s at most). Chromium is driven over the DevTools protocol on a pipe
    (``--remote-debugging-pipe``: JSON messages ending in NUL on fds 3 and 4), so no port
    is opened and nothing but the standard library is needed."""
    assert CHROMIUM is not None
    to_chromium, chromium_in = os.pipe()
    chromium_out, from_chromium = os.pipe()

    def child_fds() -> None:
        os.dup2(to_chromium, 3)
        os.dup2(from_chromium, 4)

    process = subprocess.Popen(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--remote-debugging-pipe", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}", "about:blank",
        ],
        pass_fds=(3, 4, to_chromium, from_chromium),
        preexec_fn=child_fds,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(to_chromium)
    os.close(from_chromium)
    buffer = b""
    ids = iter(range(1, 1_000_000))

    def receive() -> dict:
        nonlocal buffer
        while b"\0" not in buffer:
            chunk = os.read(chromium_out, 1 << 16)
            if not chunk:
                raise AssertionError("Chromium closed the DevTools pipe")
            buffer += chunk
        message, buffer = buffer.split(b"\0", 1)
        return json.loads(message)

    def call(method: str, params: dict | None = None, session: str | None = None) -> dict:
        number = next(ids)
        message = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(chromium_in, json.dumps(message).encode() + b"\0")
        while True:
            answer = receive()
            if answer.get("id") == number:
                assert "error" not in answer, answer
                return answer["result"]

    try:
        page = next(t for t in call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        attached = call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})
        session = attached["sessionId"]
        metrics = {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False}
        call("Emulation.setDeviceMetricsOverride", metrics, session)
        call("Page.enable", session=session)
        call("Page.navigate", {"url": url}, session)
        while receive().get("method") != "Page.loadEventFired":
            pass
        deadline = time.monotonic() + 10
        while True:
            result = call(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True, "awaitPromise": True},
                session,
            )["result"]
            value = result.get("value")
            if value is not None or time.monotonic() > deadline:
                return value
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait()
        os.close(chromium_in)
        os.close(chromium_out)


#: The incidents page's first screen: the rows wholly in the viewport (their received_at
#: cells' text), whether a map is anywhere on the page, and the viewport's height.
FIRST_SCREEN_JS = """
(function () {
  var rows = Array.from(document.querySelectorAll('table.rows-and-columns tbody tr'));
  if (!rows.length) { return null; }
  return {
    height: window.innerHeight,
    shown: rows.filter(function (r) { return r.getBoundingClientRect().bottom <= innerHeight; })
      .map(function (r) { return r.querySelector('td.col-received_at').textContent.trim(); }),
    map: !!document.querySelector('.leaflet-container')
  };
})()
"""


#: On a page of the archive: its watch rule's Atom feed, fetched and parsed as XML by the
#: browser: whether it parsed, its root, and the ids of its entries.
ATOM_JS = """
fetch(location.pathname + '.atom').then(function (r) { return r.text(); }).then(function (t) {
  var doc = new DOMParser().parseFromString(t, 'application/xml');
  var ns = 'http://www.w3.org/2005/Atom';
  return {
    parsed: !doc.querySelector('parsererror'),
    root: doc.documentElement.namespaceURI + ' ' + doc.documentElement.localName,
    updated: Array.from(doc.documentElement.children).some(function (e) {
      return e.localName === 'updated' && e.textContent; }),
    ids: Array.from(doc.getElementsByTagNameNS(ns, 'entry')).map(function (e) {
      return e.getElementsByTagNameNS(ns, 'id')[0].textContent; })
  };
})
"""


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


def test_incident_page_links_to_its_history(browsed: tuple[Server, Path, Sample]) -> None:
    """An incident's own page says where its history is, right under its title; the
    column descriptions of a table fold into one line and become the headers' tooltips."""
    server, profile, _ = browsed
    page = dump_dom(f"{server.url}/dispatch/incidents/seattle-fire,F1", profile)
    link = page.select_one("p.dw-history a")
    assert link is not None and "history" in link.get_text()
    title = page.select_one(".page-header") or page.select_one("h1")
    assert title.find_next_sibling() is link.parent
    target = urllib.parse.urlsplit(link["href"])
    assert target.path == "/dispatch/incident_history"
    params = dict(urllib.parse.parse_qsl(target.query))
    assert params == {"feed": "seattle-fire", "incident_id": "F1"}
    history = server.rows("incident_history", **params)
    assert [row["version"] for row in history] == [1, 2, 3]
    table = dump_dom(f"{server.url}/dispatch/incidents", profile)
    folded = table.select_one("details.dw-columns")
    assert folded is not None and folded.get("open") is None
    assert folded.select_one("summary").get_text() == "What the 19 columns mean"
    header = table.select_one('table.rows-and-columns th[data-column="address"]')
    assert header["title"].startswith("Block-level location")


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
        shown = [th.get("data-column") for th in page.select("table.rows-and-columns th")]
        assert shown[:4] == ["feed", "kind", "description", "minutes"]  # the window in words
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
        # The first screen of a laptop (1280 x 800) shows rows, in local time, and no map.
        first = evaluate_in_page(f"{server.url}/demo/incidents", FIRST_SCREEN_JS, tmp / "cdp")
        assert isinstance(first, dict) and first["height"] == 800
        assert len(first["shown"]) >= 2 and not first["map"], first
        assert all(text.endswith(suffixes) for text in first["shown"]), first
        if alerts_available():  # without apprise (the alerts extra) the rule does not run
            # The demo's watch rule: its Atom feed, read by the browser, lists every call it
            # notified (each once).
            with closing(sqlite3.connect(tmp / "demo.db")) as conn:
                sent = sorted(
                    f"tag:dispatchwatch,2026:{rule}/{feed}/{incident_id}"
                    for rule, feed, incident_id in conn.execute(
                        "SELECT rule, feed, incident_id FROM alerts_sent WHERE sent_at IS NOT NULL"
                    )
                )
            atom = evaluate_in_page(
                f"{server.url}/demo/{atom_query_name(DEMO_RULE)}", ATOM_JS, tmp / "cdp"
            )
            assert isinstance(atom, dict) and atom["parsed"] and atom["updated"], atom
            assert atom["root"] == "http://www.w3.org/2005/Atom feed"
            assert sent and sorted(atom["ids"]) == sent
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
