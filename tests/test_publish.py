"""Publishing with Datasette: views, metadata, canned queries, serve and snapshot.

Everything runs against real components: archives built with the real :class:`Archive`,
Datasette started as a real ``dispatchwatch serve`` process on 127.0.0.1, nothing from the
internet. Timestamps are relative to the real clock, since the canned queries are.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlite_utils
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchwatch import publish
from dispatchwatch.archive import MIGRATIONS, SCHEMA_VERSION, Archive, FeedRecord
from dispatchwatch.cli_publish import metadata as metadata_command
from dispatchwatch.cli_publish import serve as serve_command
from dispatchwatch.cli_publish import snapshot as snapshot_command
from dispatchwatch.incident import Incident

ROOT = Path(__file__).resolve().parent.parent

SEATTLE = FeedRecord(
    slug="seattle-fire",
    name="Seattle Fire 911 Calls",
    agency="Seattle Fire Department",
    city="Seattle",
    state="WA",
    scraper="seattle-fire",
    url="https://web.seattle.gov/sfd/realtime911/",
    homepage="https://www.seattle.gov/fire/",
    timezone="America/Los_Angeles",
    snapshot=True,
    interval_seconds=60,
    license="Public record",
    source_notes="Real-time 911 dispatches, one row per unit",
)
MILWAUKEE = FeedRecord(
    slug="milwaukee-police",
    name="Milwaukee Police Calls for Service",
    agency="Milwaukee Police Department",
    city="Milwaukee",
    state="WI",
    scraper="milwaukee-police",
    url="https://itmdapps.milwaukee.gov/MPDCallData/",
    homepage="https://city.milwaukee.gov/police",
    timezone="America/Chicago",
    snapshot=False,
    interval_seconds=300,
    license="Public record",
)
ZONES = {
    "seattle-fire": ZoneInfo("America/Los_Angeles"),
    "milwaukee-police": ZoneInfo("America/Chicago"),
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_iso(utc_text: str, zone: ZoneInfo) -> str:
    moment = datetime.fromisoformat(utc_text.replace("Z", "+00:00")).astimezone(zone)
    return moment.isoformat()


class Sample:
    """A small archive with recent times: what each canned query should find in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        now = self.now = datetime.now(UTC).replace(microsecond=0)
        ago = lambda **kw: now - timedelta(**kw)  # noqa: E731
        self.received: dict[tuple[str, str], str] = {}

        def sea(
            incident_id: str,
            received: datetime,
            call_type: str,
            status: str,
            units: str,
            address: str,
            lat: float,
            lon: float,
        ) -> Incident:
            self.received[("seattle-fire", incident_id)] = iso(received)
            return Incident(
                "seattle-fire",
                incident_id,
                iso(received),
                call_type,
                status=status,
                units=units,
                address=address,
                city="Seattle",
                latitude=lat,
                longitude=lon,
            )

        def mke(
            incident_id: str,
            received: datetime,
            call_type: str,
            status: str,
            district: str,
            address: str,
        ) -> Incident:
            self.received[("milwaukee-police", incident_id)] = iso(received)
            return Incident(
                "milwaukee-police",
                incident_id,
                iso(received),
                call_type,
                status=status,
                district=district,
                address=address,
                city="Milwaukee",
                latitude=43.07,
                longitude=-87.96,
            )

        summit = ("15XX SUMMIT AVE", 47.615, -122.325)
        pine = ("3RD AVE / PINE ST", 47.610, -122.338)
        first = ("12XX 1ST AVE", 47.606, -122.337)
        block = "27XX N 35TH ST"
        with Archive(path) as archive:
            archive.register_feed(SEATTLE)
            archive.register_feed(MILWAUKEE)
            # What serve and snapshot do (and register_feed could): offsets for the zones.
            with archive.transaction() as conn:
                publish.ensure_zone_offsets(conn)
            # Seattle: a snapshot feed. F0 is old; F1 changes twice; F2 leaves the list.
            f0 = sea("F0", ago(days=3, minutes=5), "Aid Response", "closed", "E2", *summit)
            archive.record_success(
                "seattle-fire",
                [f0],
                observed_at=iso(ago(days=3)),
                snapshot=True,
                source="page-0.html",
            )
            f1 = sea("F1", ago(hours=3, minutes=10), "Aid Response", "active", "E2", *summit)
            f2 = sea("F2", ago(hours=3, minutes=5), "Medic Response", "active", "M1", *pine)
            archive.record_success(
                "seattle-fire",
                [f1, f2],
                observed_at=iso(ago(hours=3)),
                snapshot=True,
                source="page-1.html",
            )
            f1.units = "E2 M1"
            f3 = sea("F3", ago(hours=2, minutes=5), "Auto Fire Alarm", "active", "E5", *first)
            archive.record_success(
                "seattle-fire",
                [f1, f3],
                observed_at=iso(ago(hours=2)),
                snapshot=True,
                source="page-2.html",
            )
            f1.status = "closed"
            archive.record_success(
                "seattle-fire",
                [f1, f3],
                observed_at=iso(ago(hours=1)),
                snapshot=True,
                source="page-3.html",
            )
            archive.record_error(
                "seattle-fire",
                error_kind="http",
                error="HTTP 503",
                started_at=iso(ago(minutes=30)),
                http_status=503,
            )
            # Milwaukee: a day log. M9 is older than a week, M0 older than a day.
            m9 = mke("M9", ago(days=10), "THEFT", "Assignment Completed", "3", block)
            archive.record_success("milwaukee-police", [m9], observed_at=iso(ago(days=10)))
            m0 = mke("M0", ago(hours=26), "THEFT", "Assignment Completed", "3", block)
            archive.record_success("milwaukee-police", [m0], observed_at=iso(ago(hours=26)))
            m1 = mke(
                "M1", ago(hours=5, minutes=10), "TRAFFIC STOP", "Service in Progress", "3", block
            )
            m2 = mke(
                "M2", ago(hours=5, minutes=5), "SUBJ WANTED", "Service in Progress", "5", block
            )
            m3 = mke(
                "M3",
                ago(hours=4),
                "BUSINESS CHECK",
                "Service in Progress",
                "3",
                "MARTIN L KING DR / W NORTH AV",
            )
            archive.record_success("milwaukee-police", [m1, m2, m3], observed_at=iso(ago(hours=4)))
            m1.status = "Assignment Completed"
            m4 = mke("M4", ago(minutes=45), "TRAFFIC STOP", "Service in Progress", "3", block)
            archive.record_success(
                "milwaukee-police", [m1, m2, m3, m4], observed_at=iso(ago(minutes=40))
            )
            archive.record_unchanged(
                "milwaukee-police", started_at=iso(ago(minutes=5)), observed_at=iso(ago(minutes=5))
            )

    def calls_per_hour(self, day: str, feed: str = "") -> list[int]:
        """Expected counts per local hour of ``day``, computed with zoneinfo."""
        hours = Counter()
        for (slug, _), received in self.received.items():
            if feed and slug != feed:
                continue
            local = local_iso(received, ZONES[slug])
            if local[:10] == day:
                hours[int(local[11:13])] += 1
        return [hours[h] for h in range(24)]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return Sample(tmp_path_factory.mktemp("sample") / "dispatch.db")


def copy_db(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    dst.close()
    src.close()


def query(path: Path, sql: str, params: dict | tuple = ()) -> list[dict]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


# --- running dispatchwatch and Datasette -----------------------------------------------------


def cli_command(*args: str) -> list[str]:
    """``dispatchwatch ARGS`` once the lead's cli.py registers the command, else the same
    click command called directly."""
    script = Path(sys.executable).with_name("dispatchwatch")
    if cli_has(args[0]) and script.exists():
        return [str(script), *args]
    return [
        sys.executable,
        "-c",
        "import sys; from dispatchwatch import cli_publish; "
        "getattr(cli_publish, sys.argv[1])(sys.argv[2:])",
        *args,
    ]


def cli_has(name: str) -> bool:
    """Whether the main ``dispatchwatch`` group offers command ``name`` (lazily or not)."""
    try:
        import click

        from dispatchwatch.cli import cli

        return cli.get_command(click.Context(cli), name) is not None
    except Exception:  # cli.py absent or mid-edit: use our own commands directly
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``dispatchwatch serve`` as a real process, stopped (with its Datasette) at exit."""

    def __init__(self, db: Path, log: Path, *args: str) -> None:
        """``args``: more options of ``serve`` (``--config``, ...)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_name = db.stem
        self.log_path = log
        self._log = log.open("wb")
        # Own session, so teardown can stop exactly the processes started here.
        self.process = subprocess.Popen(
            cli_command("serve", "--db", str(db), "--port", str(self.port), *args),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"serve exited early:\n{log.read_text()}")
            try:
                if httpx.get(self.url + "/-/versions.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"Datasette did not start:\n{log.read_text()}")
            time.sleep(0.1)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.client.get(path, params=params)

    def json(self, path: str, **params: str) -> object:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text[:500]
        return response.json()

    def rows(self, name: str, **params: str) -> list[dict]:
        """Rows of a table, view or canned query, as objects."""
        return self.json(f"/{self.db_name}/{name}.json", _shape="array", **params)  # type: ignore[return-value]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # serve stops its Datasette child on SIGTERM
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything left in that session
        self.process.wait()
        self._log.close()


def atom_entries(response: Any) -> list[dict[str, str]]:
    """The entries (``id``, ``title``, ``updated``) of an Atom feed answered by Datasette,
    after checking it is one: status 200, an Atom ``feed`` root, and the elements RFC 4287
    requires of the feed and of every entry."""
    assert response.status_code == 200, response.text[:300]
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    required = ("id", "title", "updated")
    for name in required:
        assert (root.findtext(f"a:{name}", namespaces=ns) or "").strip(), name
    entries = [
        {name: (entry.findtext(f"a:{name}", namespaces=ns) or "").strip() for name in required}
        for entry in root.findall("a:entry", ns)
    ]
    assert all(all(entry.values()) for entry in entries), entries
    return entries


@pytest.fixture(scope="module")
def server(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(sample.path, tmp_path_factory.mktemp("serve") / "serve.log")
    yield srv
    srv.client.close()
    srv.stop()


# --- the schema: migration 2, zone offsets, views --------------------------------------------


def test_migration_adds_views_to_a_version_1_archive(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    MIGRATIONS[1](db)
    db.execute("PRAGMA user_version = 1")
    db["feeds"].insert(
        {"slug": "seattle-fire", "name": "Seattle", "timezone": "America/Los_Angeles"}
    )
    db.conn.commit()
    db.close()
    Archive(path).close()
    assert query(path, "PRAGMA user_version")[0]["user_version"] == SCHEMA_VERSION
    views = {r["name"] for r in query(path, "SELECT name FROM sqlite_master WHERE type='view'")}
    assert {"incidents_local", "incident_timeline"} <= views
    zones = query(path, "SELECT DISTINCT zone FROM zone_offsets")
    assert zones == [{"zone": "America/Los_Angeles"}]


@pytest.mark.parametrize(
    ("utc", "zone", "local"),
    [
        ("2024-01-15T20:00:00Z", "America/Los_Angeles", "2024-01-15T12:00:00-08:00"),
        ("2024-04-01T01:30:18Z", "America/Los_Angeles", "2024-03-31T18:30:18-07:00"),
        # spring forward: 01:59:59 PST is followed by 03:00:00 PDT
        ("2024-03-10T09:59:59Z", "America/Los_Angeles", "2024-03-10T01:59:59-08:00"),
        ("2024-03-10T10:00:00Z", "America/Los_Angeles", "2024-03-10T03:00:00-07:00"),
        # fall back: 01:30 happens twice, told apart by the offset
        ("2024-11-03T08:30:00Z", "America/Los_Angeles", "2024-11-03T01:30:00-07:00"),
        ("2024-11-03T09:30:00Z", "America/Los_Angeles", "2024-11-03T01:30:00-08:00"),
        ("2023-02-06T21:59:34Z", "America/Chicago", "2023-02-06T15:59:34-06:00"),
        ("2024-06-01T12:00:00Z", "Asia/Kathmandu", "2024-06-01T17:45:00+05:45"),
        ("2024-06-01T12:00:00Z", "UTC", "2024-06-01T12:00:00+00:00"),
    ],
)
def test_local_time_sql(zone_db: sqlite3.Connection, utc: str, zone: str, local: str) -> None:
    assert local_sql(zone_db, utc, zone) == local


ZONE_NAMES = [
    "America/Los_Angeles",
    "America/Chicago",
    "America/Sao_Paulo",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "UTC",
]


@pytest.fixture(scope="module")
def zone_db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    publish.ensure_zone_offsets(conn, ZONE_NAMES + ["Not/AZone"])
    yield conn
    conn.close()


def local_sql(conn: sqlite3.Connection, utc: str, zone: str) -> str | None:
    sql = "SELECT " + publish._local(":utc", ":zone")
    return conn.execute(sql, {"utc": utc, "zone": zone}).fetchone()[0]


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)),
    zone=st.sampled_from(ZONE_NAMES),
)
def test_local_time_sql_agrees_with_zoneinfo(
    zone_db: sqlite3.Connection, moment: datetime, zone: str
) -> None:
    utc = iso(moment.replace(tzinfo=UTC))
    assert local_sql(zone_db, utc, zone) == local_iso(utc, ZoneInfo(zone))


def test_unknown_zone_gives_null_local_times(zone_db: sqlite3.Connection) -> None:
    assert local_sql(zone_db, "2024-01-01T00:00:00Z", "Not/AZone") is None


def test_registering_a_feed_fills_its_zone_offsets(tmp_path: Path) -> None:
    with Archive(tmp_path / "new.db") as archive:  # migration 2 ran before any feed existed
        archive.register_feed(SEATTLE)
    assert query(tmp_path / "new.db", "SELECT DISTINCT zone FROM zone_offsets") == [
        {"zone": "America/Los_Angeles"}
    ]


def test_serve_fills_zone_offsets_missing_from_an_older_archive(tmp_path: Path) -> None:
    with Archive(tmp_path / "new.db") as archive:
        archive.register_feed(SEATTLE)
        archive.conn.execute("DELETE FROM zone_offsets")  # as an archive made before the fix
    assert query(tmp_path / "new.db", "SELECT count(*) AS n FROM zone_offsets") == [{"n": 0}]
    publish.prepare_live_archive(tmp_path / "new.db")
    assert query(tmp_path / "new.db", "SELECT DISTINCT zone FROM zone_offsets") == [
        {"zone": "America/Los_Angeles"}
    ]


def test_incidents_local_view(sample: Sample) -> None:
    rows = query(sample.path, "SELECT * FROM incidents_local ORDER BY feed, incident_id")
    assert len(rows) == len(sample.received)
    for row in rows:
        zone = ZONES[row["feed"]]
        assert row["received_local"] == local_iso(row["received_at"], zone)
        assert row["first_seen_local"] == local_iso(row["first_seen_at"], zone)
        assert row["timezone"] == zone.key
    gone = {r["incident_id"]: r["gone_local"] for r in rows if r["gone_at"]}
    assert set(gone) == {"F0", "F2"}


def test_incident_timeline_view(sample: Sample) -> None:
    rows = query(
        sample.path,
        "SELECT * FROM incident_timeline WHERE feed = 'seattle-fire' AND incident_id = ? "
        "ORDER BY version",
        ("F1",),
    )
    assert [(r["version"], r["event"], r["changes"]) for r in rows] == [
        (1, "new", None),
        (2, "changed", "units: E2 → E2 M1"),
        (3, "changed", "status: active → closed"),
    ]
    assert [r["source"] for r in rows] == ["page-1.html", "page-2.html", "page-3.html"]
    assert rows[2]["observed_local"] == local_iso(rows[2]["observed_at"], ZONES["seattle-fire"])
    gone = query(
        sample.path,
        "SELECT event, gone_at FROM incident_timeline WHERE incident_id = 'F2' ORDER BY version",
    )
    assert [r["event"] for r in gone] == ["new", "gone"]


def test_timeline_shows_an_incident_coming_back(tmp_path: Path) -> None:
    with Archive(tmp_path / "back.db") as archive:
        archive.register_feed(SEATTLE)
        incident = Incident(
            "seattle-fire", "F9", "2024-04-01T01:00:00Z", "Aid Response", status="active"
        )
        for minute, listed in ((1, True), (2, False), (3, True)):
            archive.record_success(
                "seattle-fire",
                [incident] if listed else [],
                observed_at=f"2024-04-01T01:0{minute}:00Z",
                snapshot=True,
            )
    rows = query(tmp_path / "back.db", "SELECT event FROM incident_timeline ORDER BY version")
    assert [r["event"] for r in rows] == ["new", "gone", "back"]


# --- metadata --------------------------------------------------------------------------------


def test_metadata_describes_feeds_tables_and_queries(sample: Sample) -> None:
    meta = publish.build_metadata(sample.path)
    assert meta["title"] == "Dispatch archive: Milwaukee, Seattle"
    assert meta["license"] == "Public record"
    assert 'href="https://www.seattle.gov/fire/"' in meta["description_html"]
    assert 'href="https://itmdapps.milwaukee.gov/MPDCallData/"' in meta["description_html"]
    assert "one row per unit" in meta["description_html"]
    database = meta["databases"]["dispatch"]
    for table in (
        "incidents",
        "incident_versions",
        "polls",
        "feeds",
        "incidents_local",
        "incident_timeline",
        "incident_points",
        "poll_log",
    ):
        assert database["tables"][table]["description"]
    incidents = database["tables"]["incidents"]
    assert incidents["sort_desc"] == "received_at"
    assert incidents["facets"] == ["feed", "call_type", "status", "district"]
    assert set(incidents["columns"]) == {
        r["name"] for r in query(sample.path, "PRAGMA table_info(incidents)")
    }
    for view in ("incidents_local", "incident_timeline", "incident_points", "poll_log"):
        columns = {r["name"] for r in query(sample.path, f"PRAGMA table_info({view})")}
        assert set(database["tables"][view]["columns"]) == columns
    assert set(database["queries"]) == {
        "last_24_hours",
        "calls_per_hour",
        "busiest_blocks",
        "incident_history",
        "feed_health",
    }


def test_metadata_escapes_feed_text(tmp_path: Path) -> None:
    with Archive(tmp_path / "x.db") as archive:
        archive.register_feed(
            FeedRecord(
                "odd",
                "<script>alert(1)</script>",
                "A & B",
                "Town",
                "odd",
                "javascript:alert(1)",
                "UTC",
                False,
                60,
            )
        )
    html = publish.build_metadata(tmp_path / "x.db")["description_html"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html


def test_metadata_cli_yaml_json_and_file(sample: Sample, tmp_path: Path) -> None:
    runner = CliRunner()
    as_yaml = runner.invoke(metadata_command, ["--db", str(sample.path)])
    assert as_yaml.exit_code == 0, as_yaml.output
    as_json = runner.invoke(metadata_command, ["--db", str(sample.path), "--format", "json"])
    assert yaml.safe_load(as_yaml.output) == json.loads(as_json.output)
    assert "sql: |" in as_yaml.output  # SQL kept readable
    out = tmp_path / "metadata.json"
    result = runner.invoke(metadata_command, ["--db", str(sample.path), "-o", str(out)])
    assert result.exit_code == 0
    assert json.loads(out.read_text()) == json.loads(as_json.output)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = str(tmp_path / "missing.db")
    for command, args in [
        (metadata_command, ["--db", missing]),
        (serve_command, ["--db", missing, "--port", "1"]),
        (snapshot_command, [str(tmp_path / "out.db"), "--db", missing]),
    ]:
        result = runner.invoke(command, args)
        assert result.exit_code == 1
        assert result.output.strip() == f"Error: no archive at {missing}"
    (tmp_path / "junk.db").write_text("")
    result = runner.invoke(metadata_command, ["--db", str(tmp_path / "junk.db")])
    assert result.exit_code == 1 and "not a dispatchwatch archive" in result.output


# --- Datasette: the live archive through its JSON API ----------------------------------------


def test_serve_lists_tables_and_views(server: Server) -> None:
    database = server.json(f"/{server.db_name}.json")
    tables = {t["name"]: t for t in database["tables"]}
    assert {"feeds", "incidents", "polls"} <= set(tables)
    assert tables["zone_offsets"]["hidden"]
    # incident_versions: whole versions over version_log and version_values (versions.py).
    assert tables["version_log"]["hidden"] and tables["version_values"]["hidden"]
    assert {v["name"] for v in database["views"]} == {
        "incident_versions",
        "incidents_local",
        "incident_timeline",
        "incident_points",
        "poll_log",
        "coverage",
        "coverage_days",
        "calls_by_type_month",
    }


def test_serve_uses_generated_metadata(server: Server, sample: Sample) -> None:
    meta = server.json("/-/metadata.json")
    generated = publish.build_metadata(sample.path)
    for key in ("title", "description_html", "license", "source"):
        assert meta[key] == generated[key]
    assert meta["title"] == "Dispatch archive: Milwaukee, Seattle"
    database = meta["databases"]["dispatch"]
    assert database["tables"] == generated["databases"]["dispatch"]["tables"]
    assert database["tables"]["incidents_local"]["title"] == "Incidents in local time"
    queries = server.json(f"/{server.db_name}.json")["queries"]
    assert {q["name"]: q["title"] for q in queries} == {
        "last_24_hours": "Calls in the last 24 hours",
        "calls_per_hour": "Calls per hour",
        "busiest_blocks": "Busiest blocks this week",
        "incident_history": "An incident's full history",
        "feed_health": "Feed health",
    }
    page = server.get("/").text
    assert "Dispatch archive: Milwaukee, Seattle" in page
    assert 'href="https://www.seattle.gov/fire/"' in page
    table_page = server.get(f"/{server.db_name}/incidents").text
    assert "Block-level location" in table_page  # column descriptions are shown


def test_serve_default_sort_and_facets(server: Server, sample: Sample) -> None:
    data = server.json(f"/{server.db_name}/incidents.json")
    received = [row[2] for row in data["rows"]]
    assert received == sorted(received, reverse=True)
    facets = data["facet_results"]
    assert set(facets) == {"feed", "call_type", "status", "district"}
    by_feed = {r["value"]: r["count"] for r in facets["feed"]["results"]}
    assert by_feed == {"seattle-fire": 4, "milwaukee-police": 6}
    by_district = {r["value"]: r["count"] for r in facets["district"]["results"]}
    assert by_district == {"3": 5, "5": 1}
    # search (FTS on call type and address) works too
    rows = server.rows("incidents", _search="SUMMIT")
    assert sorted(r["incident_id"] for r in rows) == ["F0", "F1"]


def test_serve_views(server: Server) -> None:
    rows = server.rows("incidents_local", incident_id="F1")
    assert rows[0]["received_local"] == local_iso(rows[0]["received_at"], ZONES["seattle-fire"])
    timeline = server.rows(
        "incident_timeline", feed="seattle-fire", incident_id="F1", _sort="version"
    )
    assert [r["event"] for r in timeline] == ["new", "changed", "changed"]


def test_query_last_24_hours(server: Server) -> None:
    rows = server.rows("last_24_hours")
    assert [r["incident_id"] for r in rows] == ["M4", "F3", "F2", "F1", "M3", "M2", "M1"]
    # local time first, with the zone's abbreviation; the UTC original beside it
    assert list(rows[0])[0] == "local_time"
    for row in rows:
        zone = ZONES[row["feed"]]
        local = datetime.fromisoformat(row["received_utc"].replace("Z", "+00:00")).astimezone(zone)
        assert row["local_time"] == local.strftime("%Y-%m-%d %H:%M:%S ") + local.tzname()
    assert rows[0]["local_time"].endswith((" CST", " CDT"))
    rows = server.rows("last_24_hours", feed="milwaukee-police")
    assert [r["incident_id"] for r in rows] == ["M4", "M3", "M2", "M1"]


def test_query_calls_per_hour(server: Server, sample: Sample) -> None:
    for feed, incident_id in (("milwaukee-police", "M1"), ("seattle-fire", "F1")):
        day = local_iso(sample.received[(feed, incident_id)], ZONES[feed])[:10]
        rows = server.rows("calls_per_hour", day=day, feed=feed)
        assert [r["hour"] for r in rows] == [f"{h:02d}:00" for h in range(24)]
        assert [r["calls"] for r in rows] == sample.calls_per_hour(day, feed)
        assert sum(r["calls"] for r in rows) >= 1
    # empty day: today in the feed's local time
    today = datetime.now(ZONES["seattle-fire"]).date().isoformat()
    rows = server.rows("calls_per_hour", day="", feed="seattle-fire")
    assert {r["day"] for r in rows} == {today}
    assert [r["calls"] for r in rows] == sample.calls_per_hour(today, "seattle-fire")
    # every feed, each in its own local time
    day = local_iso(sample.received[("milwaukee-police", "M4")], ZONES["milwaukee-police"])[:10]
    rows = server.rows("calls_per_hour", day=day, feed="")
    assert [r["calls"] for r in rows] == sample.calls_per_hour(day)


def test_query_busiest_blocks(server: Server) -> None:
    rows = server.rows("busiest_blocks")
    top = rows[0]
    assert (top["feed"], top["address"], top["calls"]) == (
        "milwaukee-police",
        "27XX N 35TH ST",
        4,
    )  # M9 is older than a week
    assert top["top_call_type"] == "TRAFFIC STOP"
    assert top["latitude"] == 43.07 and top["longitude"] == -87.96
    summit = [r for r in rows if r["address"] == "15XX SUMMIT AVE"]
    assert summit[0]["calls"] == 2
    rows = server.rows("busiest_blocks", feed="seattle-fire")
    assert {r["feed"] for r in rows} == {"seattle-fire"}


def test_query_incident_history(server: Server) -> None:
    rows = server.rows("incident_history", feed="seattle-fire", incident_id="F1")
    assert [(r["version"], r["event"], r["status"], r["units"]) for r in rows] == [
        (1, "new", "active", "E2"),
        (2, "changed", "active", "E2 M1"),
        (3, "changed", "closed", "E2 M1"),
    ]
    assert rows[2]["changes"] == "status: active → closed"
    assert server.rows("incident_history", feed="seattle-fire", incident_id="nope") == []


def test_query_feed_health(server: Server, sample: Sample) -> None:
    rows = {r["feed"]: r for r in server.rows("feed_health")}
    seattle, milwaukee = rows["seattle-fire"], rows["milwaukee-police"]
    assert seattle["health"] == "failing"
    assert seattle["consecutive_failures"] == 1
    assert seattle["last_error"] == iso(sample.now - timedelta(minutes=30))
    assert seattle["last_error_message"] == "http: HTTP 503"
    assert seattle["last_success"] == iso(sample.now - timedelta(hours=1))
    assert seattle["polls_24h"] == 4 and seattle["errors_24h"] == 1
    assert milwaukee["health"] == "ok"
    assert milwaukee["consecutive_failures"] == 0
    assert milwaukee["last_error"] is None
    assert milwaukee["last_success"] == iso(sample.now - timedelta(minutes=5))
    assert milwaukee["polls_24h"] == 3


def file_state(db: Path) -> list[tuple[str, bytes | None]]:
    """The bytes of the database and its WAL (the -shm is only an index readers update)."""
    return [
        (suffix, Path(f"{db}{suffix}").read_bytes() if Path(f"{db}{suffix}").exists() else None)
        for suffix in ("", "-wal")
    ]


def test_datasette_does_not_write(server: Server, sample: Sample) -> None:
    before = file_state(sample.path)
    for name in (
        "incidents",
        "incidents_local",
        "incident_timeline",
        "polls",
        "feed_health",
        "last_24_hours",
        "busiest_blocks",
        "calls_per_hour",
    ):
        server.rows(name)
    assert server.get(f"/{server.db_name}.json", sql="DELETE FROM polls").status_code == 400
    response = server.client.post(f"/{server.db_name}/polls", data={"sql": "DELETE FROM polls"})
    assert response.status_code >= 400
    assert file_state(sample.path) == before


# --- serving while the daemon writes ---------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from dispatchwatch.archive import Archive, FeedRecord
    from dispatchwatch.incident import Incident

    path, stop = Path(sys.argv[1]), Path(sys.argv[2])
    feed = FeedRecord("load-test", "Load test", "Test agency", "Testville", "load-test",
                      "http://127.0.0.1/", "America/New_York", True, 1)
    archive = Archive(path)
    archive.register_feed(feed)
    start = datetime.now(UTC) - timedelta(hours=6)
    polls = 0
    while not stop.exists() and polls < 20000:
        at = (start + timedelta(seconds=polls)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # 30 active calls at a time; every poll one leaves, one arrives, five change.
        incidents = [
            Incident("load-test", f"L{n}", at, "Aid Response",
                     status=f"status {polls // 3 + n}" if n % 6 == 0 else "active",
                     address=f"{n % 40}XX MAIN ST", units="E1")
            for n in range(polls, polls + 30)
        ]
        archive.record_success("load-test", incidents, observed_at=at, snapshot=True)
        if polls % 7 == 0:
            archive.record_error("load-test", error_kind="network", error="timed out",
                                 started_at=at)
        polls += 1
        if polls == 1:
            print("ready", flush=True)
        if polls % 100 == 0:  # like a cron `run --once`: close (checkpoint) and reopen
            archive.close()
            archive = Archive(path)
    archive.close()
    print(polls, flush=True)
    """
)


class Writer:
    """A separate process ingesting polls in a loop through the real Archive."""

    def __init__(self, db: Path, tmp: Path) -> None:
        self.stop_file = tmp / "stop-writer"
        script = tmp / "writer.py"
        script.write_text(WRITER)
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(db), str(self.stop_file)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert self.process.stdout is not None
            assert self.process.stdout.readline().strip() == "ready"
        except BaseException:
            self.kill()
            raise

    def finish(self) -> int:
        self.stop_file.touch()
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0
        return int(out.split()[-1])

    def kill(self) -> None:
        """Stop the writer if it still runs (a test that failed before :meth:`finish`)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def test_serve_while_another_process_ingests(sample: Sample, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    copy_db(sample.path, db)
    server = Server(db, tmp_path / "serve.log")
    try:
        writer = Writer(db, tmp_path)
    except BaseException:
        server.client.close()
        server.stop()
        raise
    paths = [
        ("/live/incidents.json", {"_facet": "status"}),
        ("/live/incidents.json", {"feed": "load-test", "_sort_desc": "received_at"}),
        ("/live/incidents_local.json", {"feed": "load-test"}),
        ("/live/incident_timeline.json", {"feed": "load-test"}),
        ("/live/polls.json", {}),
        ("/live/feed_health.json", {"_shape": "array"}),
        ("/live/last_24_hours.json", {"feed": "load-test"}),
        ("/live/busiest_blocks.json", {}),
        ("/live/incident_history.json", {"feed": "load-test", "incident_id": "L5"}),
        ("/live/incidents", {}),
        ("/live", {}),
    ]
    failures: list[str] = []
    counts: list[int] = []
    done = threading.Event()

    def fire(offset: int) -> int:
        fired = 0
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not done.is_set():
                path, params = paths[(offset + fired) % len(paths)]
                response = client.get(path, params=params)
                fired += 1
                body = response.text
                # Every page answers, within Datasette's own 1 s query limit ("SQL query took
                # too long"): a reader is never blocked by the writer ("database is locked").
                if (
                    response.status_code != 200
                    or "database is locked" in body
                    or "SQL query took too long" in body
                ):
                    failures.append(f"{response.status_code} {path}: {body[:300]}")
                elif path == "/live/polls.json":
                    counts.append(response.json()["filtered_table_rows_count"])
        return fired

    results: list[int] = []
    threads = [threading.Thread(target=lambda i=i: results.append(fire(i))) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        # Keep requests going while the writer commits polls and checkpoints.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline or len(counts) < 10:
            time.sleep(0.1)
            assert writer.process.poll() is None
        done.set()
        for thread in threads:
            thread.join()
        polls = writer.finish()
    finally:
        done.set()
        writer.kill()
        server.client.close()
        server.stop()
    assert failures == []
    assert sum(results) >= 40
    assert polls > 100
    assert counts[-1] > counts[0], "Datasette should see the writer's new polls as they land"


# --- snapshot --------------------------------------------------------------------------------


def check_consistent(path: Path) -> dict[str, int]:
    """A snapshot is a self-contained, intact, internally consistent archive."""
    assert query(path, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    assert query(path, "PRAGMA foreign_key_check") == []
    assert query(path, "PRAGMA journal_mode") == [{"journal_mode": "delete"}]
    assert not Path(f"{path}-wal").exists()
    # every incident has exactly versions 1..version, each from a poll that exists
    assert (
        query(
            path,
            """
        SELECT i.feed, i.incident_id FROM incidents i
        LEFT JOIN incident_versions v ON v.feed = i.feed AND v.incident_id = i.incident_id
        GROUP BY i.feed, i.incident_id
        HAVING count(v.id) != i.version OR max(v.version) != i.version
    """,
        )
        == []
    )
    assert (
        query(
            path,
            "SELECT id FROM incident_versions v WHERE NOT EXISTS "
            "(SELECT 1 FROM incidents i WHERE i.feed = v.feed "
            "AND i.incident_id = v.incident_id)",
        )
        == []
    )
    assert (
        query(path, "SELECT id FROM incident_versions WHERE poll_id NOT IN (SELECT id FROM polls)")
        == []
    )
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO incidents_fts (incidents_fts) VALUES ('integrity-check')")
    conn.close()
    return {
        table: query(path, f"SELECT count(*) AS n FROM {table}")[0]["n"]
        for table in ("feeds", "incidents", "incident_versions", "polls")
    }


def test_snapshot_copies_everything(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "snapshot.db"
    result = publish.snapshot(sample.path, out)
    counts = check_consistent(out)
    assert (
        counts
        == result.counts
        == {"feeds": 2, "incidents": 10, "incident_versions": 15, "polls": 10}
    )
    assert result.size == out.stat().st_size
    assert query(out, "SELECT count(*) AS n FROM incidents_local")[0]["n"] == 10
    assert query(out, "SELECT DISTINCT zone FROM zone_offsets ORDER BY zone") == [
        {"zone": "America/Chicago"},
        {"zone": "America/Los_Angeles"},
    ]


def test_snapshot_by_feed(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "seattle.db"
    result = publish.snapshot(sample.path, out, feeds=["seattle-fire"])
    counts = check_consistent(out)
    assert counts == {"feeds": 1, "incidents": 4, "incident_versions": 8, "polls": 5}
    assert result.feeds == ["seattle-fire"]
    assert query(out, "SELECT DISTINCT feed FROM polls") == [{"feed": "seattle-fire"}]
    assert query(out, "SELECT DISTINCT zone FROM zone_offsets") == [{"zone": "America/Los_Angeles"}]
    fts = query(out, "SELECT rowid FROM incidents_fts WHERE incidents_fts MATCH 'TRAFFIC'")
    assert fts == []


def test_snapshot_by_date(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "recent.db"
    since = iso(sample.now - timedelta(hours=12))
    publish.snapshot(sample.path, out, since=since)
    check_consistent(out)
    kept = {r["incident_id"] for r in query(out, "SELECT incident_id FROM incidents")}
    assert kept == {"F1", "F2", "F3", "M1", "M2", "M3", "M4"}
    # every remaining poll is in range, or saw a kept version
    old_polls = query(out, "SELECT id FROM polls WHERE started_at < ?", (since,))
    assert old_polls == []
    out2 = tmp_path / "old.db"
    publish.snapshot(sample.path, out2, until=iso(sample.now - timedelta(days=2)))
    check_consistent(out2)
    kept = {r["incident_id"] for r in query(out2, "SELECT incident_id FROM incidents")}
    assert kept == {"F0", "M9"}
    # F0 left the list in a later poll: that poll stays, since its version is kept
    assert query(
        out2,
        "SELECT version, event FROM incident_timeline WHERE incident_id = 'F0' ORDER BY version",
    ) == [{"version": 1, "event": "new"}, {"version": 2, "event": "gone"}]


def test_parse_bound() -> None:
    assert publish.parse_bound("2024-04-01") == "2024-04-01T00:00:00Z"
    assert publish.parse_bound("2024-04-01", end=True) == "2024-04-02T00:00:00Z"
    assert publish.parse_bound("2024-04-01T01:30:18Z") == "2024-04-01T01:30:18Z"
    assert publish.parse_bound("2024-04-01T03:30:18+02:00") == "2024-04-01T01:30:18Z"
    with pytest.raises(ValueError, match="not a date"):
        publish.parse_bound("yesterday")


def test_snapshot_cli(sample: Sample, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "snap.db"
    args = [
        str(out),
        "--db",
        str(sample.path),
        "--feed",
        "milwaukee-police",
        "--since",
        (sample.now - timedelta(days=2)).date().isoformat(),
    ]
    result = runner.invoke(snapshot_command, args)
    assert result.exit_code == 0, result.output
    assert f"to {out}" in result.output
    assert "incidents:" in result.output and "kept feeds: milwaukee-police" in result.output
    assert check_consistent(out)["incidents"] == 5
    again = runner.invoke(snapshot_command, args)
    assert again.exit_code == 1
    assert again.output.strip() == f"Error: {out} exists (use --replace to overwrite it)"
    assert runner.invoke(snapshot_command, [*args, "--replace"]).exit_code == 0
    same = runner.invoke(
        snapshot_command, [str(sample.path), "--db", str(sample.path), "--replace"]
    )
    assert same.exit_code == 1 and "cannot overwrite" in same.output
    unknown = runner.invoke(
        snapshot_command, [str(tmp_path / "x.db"), "--db", str(sample.path), "--feed", "nope"]
    )
    assert unknown.exit_code == 1
    assert "no feed nope" in unknown.output and "milwaukee-police" in unknown.output
    bad = runner.invoke(
        snapshot_command,
        [
            str(tmp_path / "x.db"),
            "--db",
            str(sample.path),
            "--since",
            "2024-05-01",
            "--until",
            "2024-04-01",
        ],
    )
    assert bad.exit_code == 1 and "--since must be before --until" in bad.output
    assert not (tmp_path / "x.db").exists()


def test_snapshot_while_another_process_ingests(sample: Sample, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    copy_db(sample.path, db)
    writer = Writer(db, tmp_path)
    try:
        copies = []
        for n in range(6):
            out = tmp_path / f"copy-{n}.db"
            publish.snapshot(db, out, feeds=["load-test", "seattle-fire"] if n % 2 else ())
            copies.append(check_consistent(out))
            time.sleep(0.2)
    finally:
        polls = writer.finish()
    assert polls > 1
    full = [c for n, c in enumerate(copies) if n % 2 == 0]
    assert full[-1]["polls"] > full[0]["polls"]  # each copy is of a later commit
    # while writing, the source stays intact
    assert check_source_ok(db)


def check_source_ok(db: Path) -> bool:
    return query(db, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]


def test_snapshot_is_publishable(sample: Sample, tmp_path: Path) -> None:
    """What `datasette publish` will serve: the snapshot opened immutable, as cloud hosts do,
    with metadata generated from it."""
    out = tmp_path / "snapshot.db"
    publish.snapshot(sample.path, out)
    meta = publish.build_metadata(out)
    assert set(meta["databases"]) == {"snapshot"}
    conn = sqlite3.connect(f"{out.resolve().as_uri()}?immutable=1", uri=True)
    for canned in meta["databases"]["snapshot"]["queries"].values():
        params = dict.fromkeys(canned.get("params", []), "")
        conn.execute(canned["sql"], params).fetchall()
    conn.close()


# --- archives built by ingesting fixture pages through the CLI --------------------------------


@pytest.mark.skipif(
    not (cli_has("ingest") and (ROOT / "fixtures/milwaukee/seq_01.html").exists()),
    reason="needs `dispatchwatch ingest` and fixtures/milwaukee/seq_01.html",
)
def test_canned_query_over_ingested_fixture_pages(tmp_path: Path) -> None:
    db = tmp_path / "fixtures.db"
    pages = sorted(str(p) for p in (ROOT / "fixtures/milwaukee").glob("seq_*.html"))
    subprocess.run(
        cli_command("ingest", "milwaukee-police", *pages, "--db", str(db)),
        check=True,
        capture_output=True,
        timeout=120,
    )
    incidents = query(
        db,
        "SELECT incident_id, received_at FROM incidents "
        "WHERE received_at IS NOT NULL ORDER BY version DESC, incident_id",
    )
    assert incidents
    zone = ZoneInfo(
        query(db, "SELECT timezone FROM feeds WHERE slug = 'milwaukee-police'")[0]["timezone"]
    )
    day = local_iso(incidents[0]["received_at"], zone)[:10]
    expected = Counter(
        int(local[11:13])
        for local in (local_iso(i["received_at"], zone) for i in incidents)
        if local[:10] == day
    )
    server = Server(db, tmp_path / "serve.log")
    try:
        rows = server.rows("calls_per_hour", day=day, feed="milwaukee-police")
        assert [r["calls"] for r in rows] == [expected[h] for h in range(24)]
        history = server.rows(
            "incident_history", feed="milwaukee-police", incident_id=incidents[0]["incident_id"]
        )
        versions = query(
            db,
            "SELECT version FROM incidents WHERE incident_id = ?",
            (incidents[0]["incident_id"],),
        )[0]["version"]
        assert [r["version"] for r in history] == list(range(1, versions + 1))
        assert history[0]["event"] == "new"
    finally:
        server.client.close()
        server.stop()
