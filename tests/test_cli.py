"""The command line, end to end: real files, a real SQLite archive, the installed command."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatchwatch import exitcodes
from dispatchwatch.cli import cli

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
REAL = REPO.parent / "shared" / "real-pages"
SEQUENCE = sorted((FIXTURES / "milwaukee").glob("seq_0*.html"))

needs_real_pages = pytest.mark.skipif(
    not REAL.is_dir(), reason="../shared/real-pages is not available"
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    command = shutil.which("dispatchwatch", path=str(Path(sys.executable).parent))
    assert command, "the dispatchwatch console script is not installed next to this Python"
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=120)


def parse_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# --- feeds -----------------------------------------------------------------------------------


def test_feeds_lists_both_builtin_scrapers_from_the_installed_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [shutil.which("dispatchwatch", path=str(Path(sys.executable).parent)) or "", "feeds"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "seattle-fire" in result.stdout and "milwaukee-police" in result.stdout


def test_feeds_shows_configured_feeds() -> None:
    result = run("feeds", "--config", str(REPO / "config.yaml"))
    assert result.returncode == 0, result.stderr
    assert "Feeds in" in result.stdout and "every 300s" in result.stdout


# --- parse -----------------------------------------------------------------------------------


def test_parse_prints_one_json_object_per_incident() -> None:
    result = run("parse", "seattle-fire", str(FIXTURES / "seattle" / "day_2024-07-04.html"))
    assert result.returncode == 0, result.stderr
    incidents = parse_lines(result.stdout)
    assert len(incidents) == 19
    assert set(incidents[0]) == {
        "feed",
        "incident_id",
        "received_at",
        "call_type",
        "priority",
        "status",
        "disposition",
        "address",
        "city",
        "district",
        "beat",
        "units",
        "latitude",
        "longitude",
        "extra",
    }
    by_id = {i["incident_id"]: i for i in incidents}
    freeway = by_id["F240093569"]
    assert freeway["units"] == "E16 L9 M16 A16 BC2"
    assert freeway["received_at"] == "2024-07-05T06:52:07Z"
    assert freeway["status"] == "active"
    assert by_id["F240093531"]["address"] == "100XX AURORA AVE N"
    assert by_id["F240093512"]["units"] == "E2"


def test_parse_reads_stdin() -> None:
    body = (FIXTURES / "milwaukee" / "single.html").read_bytes()
    result = CliRunner().invoke(cli, ["parse", "milwaukee-police", "-"], input=body)
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 10


@needs_real_pages
def test_parse_the_real_seattle_day_page() -> None:
    result = run("parse", "seattle-fire", str(REAL / "seattle" / "realtime911_2024-03-31.html"))
    assert result.returncode == 0, result.stderr
    incidents = parse_lines(result.stdout)
    assert len(incidents) == 220
    by_id = {i["incident_id"]: i for i in incidents}
    summit = by_id["F240044222"]
    # 3/31/2024 6:30:18 PM PDT; two dispatch rows merged.
    assert summit["received_at"] == "2024-04-01T01:30:18Z"
    assert summit["address"] == "15XX SUMMIT AVE"
    assert summit["units"] == "E25 A26 L10 M10"
    assert by_id["F240043885"]["received_at"] == "2024-03-31T07:07:56Z"  # 12:07:56 AM
    assert by_id["F240044209"]["address"] == "BOYLSTON AVE E / E OLIVE WAY"
    assert sum(i["status"] == "active" for i in incidents) == len(
        {i["incident_id"] for i in incidents if i["status"] == "active"}
    )
    for incident in incidents:
        first = incident["address"].split(" ")[0]
        assert not first.isdigit(), incident["address"]


@needs_real_pages
def test_parse_the_real_no_records_page_is_empty_and_succeeds() -> None:
    result = run(
        "parse", "seattle-fire", str(REAL / "seattle" / "realtime911_no_records_2016-07-03.html")
    )
    assert (result.returncode, result.stdout) == (0, "")


@needs_real_pages
def test_parse_the_real_milwaukee_page() -> None:
    result = run("parse", "milwaukee-police", str(REAL / "milwaukee" / "mpd_calls_2023-01-21.html"))
    assert result.returncode == 0, result.stderr
    incidents = parse_lines(result.stdout)
    assert len(incidents) == 58
    first = incidents[0]
    assert (first["incident_id"], first["received_at"]) == ("230211026", "2023-01-21T22:19:36Z")
    assert (first["address"], first["city"], first["district"]) == (
        "32XX N 29TH ST",
        "Milwaukee",
        "5",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["parse", "atlantis-police", "x.html"], "unknown scraper 'atlantis-police'"),
        (["parse", "seattle-fire", "does-not-exist.html"], "cannot read does-not-exist.html"),
        (
            ["parse", "seattle-fire", str(FIXTURES / "seattle" / "layout_changed.html")],
            "'incident #'",
        ),
        (["ingest", "seattle-fire", "does-not-exist.html", "--db", "x.db"], "cannot read"),
        (["stats", "--db", "no-such.db"], "no archive at no-such.db"),
        (["feeds", "--config", "missing.yaml"], "cannot read config missing.yaml"),
    ],
)
def test_errors_are_one_clear_line_and_non_zero(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [shutil.which("dispatchwatch", path=str(Path(sys.executable).parent)) or "", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "x.db").exists()  # nothing written before the error


# --- ingest ----------------------------------------------------------------------------------


def test_ingest_the_milwaukee_sequence_counts_every_event(tmp_path: Path) -> None:
    db = tmp_path / "dispatch.db"
    result = run("ingest", "milwaukee-police", *map(str, SEQUENCE), "--db", str(db), "-v")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        f"{SEQUENCE[0]}: 10 incidents: 10 new, 0 changed, 0 gone, 0 returned",
        f"{SEQUENCE[1]}: 10 incidents: 2 new, 2 changed, 2 gone, 0 returned",
        f"{SEQUENCE[2]}: 10 incidents: 0 new, 0 changed, 0 gone, 0 returned",
        f"{SEQUENCE[3]}: 9 incidents: 2 new, 2 changed, 3 gone, 0 returned",
        f"{SEQUENCE[4]}: 11 incidents: 1 new, 2 changed, 0 gone, 1 returned",
    ]
    assert lines[-1].endswith(
        "15 new, 6 changed, 5 gone, 1 returned; 0 unchanged pages, 0 partial, "
        "0 already archived, 0 errors"
    )
    assert query(db, "SELECT count(*) FROM incidents") == [(15,)]
    # A version per new incident (15), per change (6), per departure (5) and per return (1).
    assert query(db, "SELECT count(*) FROM incident_versions") == [(27,)]
    gone = query(db, "SELECT incident_id FROM incidents WHERE gone_at IS NOT NULL ORDER BY 1")
    assert gone == [("240740488",), ("240740493",), ("240740497",), ("240740501",)]
    assert query(
        db,
        "SELECT first_seen_at, last_seen_at, gone_at, version FROM incidents "
        "WHERE incident_id = '240740522'",  # I: gone on page 4, back on page 5
    ) == [("2024-03-14T23:00:07Z", "2024-03-14T23:20:10Z", None, 3)]
    assert query(
        db,
        "SELECT status, version FROM incidents WHERE incident_id = '240740506'",  # E
    ) == [("Assignment Completed", 2)]
    assert query(db, "SELECT outcome, new, changed, gone, returned FROM polls ORDER BY id") == [
        ("new", 10, 0, 0, 0),
        ("new", 2, 2, 2, 0),
        ("new", 0, 0, 0, 0),
        ("new", 2, 2, 3, 0),
        ("new", 1, 2, 0, 1),
    ]


def test_ingesting_the_same_page_twice_adds_nothing_the_second_time(tmp_path: Path) -> None:
    db = tmp_path / "dispatch.db"
    page = str(FIXTURES / "seattle" / "day_2024-07-04.html")
    assert run("ingest", "seattle-fire", page, "--db", str(db)).returncode == 0
    before = query(db, "SELECT * FROM incidents ORDER BY incident_id")
    versions = query(db, "SELECT count(*) FROM incident_versions")
    result = run("ingest", "seattle-fire", page, "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert (
        "0 new, 0 changed, 0 gone, 0 returned; 0 unchanged pages, 0 partial, 1 already archived"
        in result.stdout
    )
    assert query(db, "SELECT * FROM incidents ORDER BY incident_id") == before
    assert query(db, "SELECT count(*) FROM incident_versions") == versions == [(19,)]
    assert query(db, "SELECT outcome FROM polls ORDER BY id") == [("new",)]


def test_reingesting_saved_pages_gives_the_same_archive(tmp_path: Path) -> None:
    columns = (
        "feed, incident_id, received_at, status, address, first_seen_at, last_seen_at, gone_at"
    )
    archives = []
    for name in ("a.db", "b.db"):
        db = tmp_path / name
        assert (
            run("ingest", "milwaukee-police", *map(str, SEQUENCE), "--db", str(db)).returncode == 0
        )
        archives.append(query(db, f"SELECT {columns} FROM incidents ORDER BY 1, 2"))
    assert archives[0] == archives[1]


def test_a_corrupt_page_keeps_only_whole_rows_and_a_layout_change_writes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "dispatch.db"
    assert run("ingest", "milwaukee-police", str(SEQUENCE[0]), "--db", str(db)).returncode == 0
    corrupt = tmp_path / "corrupt.html"
    # Cut inside a row, then garbage: the rows before the cut are real, the cut one is not.
    corrupt.write_bytes(SEQUENCE[1].read_bytes()[:9000] + b"\x00\xff garbage \x8f" * 50)
    error_page = FIXTURES / "milwaukee" / "error_page.html"
    result = run("ingest", "milwaukee-police", str(corrupt), str(error_page), "--db", str(db))
    assert result.returncode == exitcodes.POLLS_FAILED
    assert "1 of 2 pages failed" in result.stderr and "Traceback" not in result.stderr
    assert "partial" in result.stderr
    assert query(db, "SELECT outcome, error_kind, gone FROM polls ORDER BY id") == [
        ("new", None, 0),
        ("partial", "incomplete", 0),
        ("error", "layout_changed", 0),
    ]
    # Every row kept from the corrupt page is exactly the row of the whole page.
    kept = query(db, "SELECT incident_id, call_type, address, status FROM incidents")
    whole = {
        r["incident_id"]: (r["incident_id"], r["call_type"], r["address"], r["status"])
        for r in map(
            json.loads, run("parse", "milwaukee-police", str(SEQUENCE[1])).stdout.splitlines()
        )
    }
    corrupt_ids = [
        json.loads(line)["incident_id"]
        for line in run("parse", "milwaukee-police", str(corrupt)).stdout.splitlines()
    ]
    assert corrupt_ids and all(tuple(whole[i]) in kept for i in corrupt_ids)
    assert query(db, "SELECT count(*) FROM incidents WHERE gone_at IS NOT NULL") == [(0,)]
    # The next good page is archived as usual: the partial poll did not count as "seen".
    assert run("ingest", "milwaukee-police", str(SEQUENCE[1]), "--db", str(db)).returncode == 0
    assert query(db, "SELECT count(*) FROM incidents") == [(12,)]


def test_stats_reports_each_feed(tmp_path: Path) -> None:
    db = tmp_path / "dispatch.db"
    run("ingest", "milwaukee-police", *map(str, SEQUENCE), "--db", str(db))
    run(
        "ingest", "seattle-fire", str(FIXTURES / "seattle" / "day_2024-07-04.html"), "--db", str(db)
    )
    result = run("stats", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["feed"]: row for row in json.loads(result.stdout)}
    assert (rows["milwaukee-police"]["incidents"], rows["milwaukee-police"]["versions"]) == (15, 27)
    assert rows["seattle-fire"]["incidents"] == 19
    assert rows["seattle-fire"]["first_received"] == "2024-07-04T06:57:14Z"
    table = run("stats", "--db", str(db))
    assert table.stdout.splitlines()[0].split()[:3] == ["feed", "incidents", "versions"]


def test_the_wheel_ships_the_builtin_scrapers(tmp_path: Path) -> None:
    """A plain, non-editable `pip install .` must carry scrapers/ as dispatchwatch.scrapers."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    import zipfile

    (wheel,) = tmp_path.glob("dispatchwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dispatchwatch/scrapers/seattle_fire.py" in names
    assert "dispatchwatch/scrapers/milwaukee_police.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[dispatchwatch.scrapers]" in text and "seattle-fire" in text
    for module in ("normalize/__init__.py", "sources/__init__.py", "sources/socrata.py"):
        assert f"dispatchwatch/{module}" in names
    # Installed from the wheel alone (not this checkout), `dispatchwatch feeds` lists the
    # built-in feeds, the Socrata ones included.
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    script = (
        "import dispatchwatch, sys; print(dispatchwatch.__file__, file=sys.stderr); "
        "from dispatchwatch.cli import cli; cli(['feeds'])"
    )
    listed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert str(target) in listed.stderr  # the installed copy, not the checkout
    for slug in (
        "seattle-fire", "milwaukee-police", "dallas-police", "new-orleans-police",
        "san-francisco-police", "seattle-fire-open-data",
    ):  # fmt: skip
        assert slug in listed.stdout
