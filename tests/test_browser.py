"""The Datasette pages render in a real browser: headless Chromium against ``dispatchwatch
serve`` on 127.0.0.1. Skips when Chromium is not installed (CI installs Debian's)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from test_publish import Sample, Server  # pytest puts tests/ on sys.path

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
def browsed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path_factory.mktemp("browser")
    Sample(tmp / "dispatch.db")
    server = Server(tmp / "dispatch.db", tmp / "serve.log")
    yield server, tmp / "profile"
    server.client.close()
    server.stop()


def test_incidents_page_renders_rows_facets_and_map(browsed: tuple[Server, Path]) -> None:
    server, profile = browsed
    page = dump_dom(f"{server.url}/dispatch/incidents", profile)
    rows = page.select("table.rows-and-columns tbody tr")
    assert len(rows) == 10
    ids = {cell.get_text(strip=True) for cell in page.select("td.col-incident_id")}
    assert {"F1", "M4"} <= ids
    facets = {div.get("data-column") for div in page.select("div.facet-info")}
    assert facets == {"feed", "call_type", "status", "district"}
    feed_facet = page.select("div.facet-info[data-column=feed]")[0].get_text()
    assert "seattle-fire" in feed_facet or "Seattle Fire" in feed_facet
    assert page.select(".leaflet-container"), "datasette-cluster-map should draw its map"
    assert "Block-level location" in str(page)


def test_canned_query_page_renders(browsed: tuple[Server, Path]) -> None:
    server, profile = browsed
    page = dump_dom(
        f"{server.url}/dispatch/incident_history?feed=seattle-fire&incident_id=F1", profile
    )
    assert "An incident's full history" in page.get_text()
    rows = page.select("table.rows-and-columns tbody tr")
    assert len(rows) == 3
    assert "status: active → closed" in rows[2].get_text()
