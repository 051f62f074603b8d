"""``dispatchwatch export``: CSV, NDJSON and Hive-partitioned Parquet, read back.

The archive is a real demo archive (the simulation polled by the real daemon) plus a feed
written through the Archive API with what the demo lacks: coordinates, ``extra`` fields, an
incident without a received time, rows in several months. Every export is read back with
the readers analysts use (pyarrow, DuckDB, csv, json) and compared with the archive row by row.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sqlite3
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dispatchwatch.archive import Archive, FeedRecord
from dispatchwatch.cli import cli
from dispatchwatch.demo import DEMO_FEEDS, run_demo
from dispatchwatch.export import MANIFEST, TABLES, ExportError, export
from dispatchwatch.incident import TRACKED_FIELDS, Incident
from dispatchwatch.versions import whole_versions

OPEN_DATA = FeedRecord(
    slug="open-data",
    name="Open data calls",
    agency="Test agency",
    city="Springfield",
    scraper="open-data",
    url="http://127.0.0.1:9/calls.json",
    timezone="America/New_York",
    snapshot=False,
    interval_seconds=600,
)


def _open_data_rows(archive: Archive) -> None:
    """Three months of a feed with coordinates, extra fields and a missing received time."""
    archive.register_feed(OPEN_DATA)
    first = [
        Incident("open-data", "A1", "2024-01-31T23:59:59Z", "THEFT", latitude=39.781,
                 longitude=-89.65, extra={"nature": "Théft — auto", "codes": [1, 2]}),
        Incident("open-data", "A2", "2024-02-01T00:00:00Z", "ALARM", address="1XX MAIN ST"),
        Incident("open-data", "A3", None, "UNKNOWN", extra={"note": "no time given"}),
    ]  # fmt: skip
    archive.record_success("open-data", first, observed_at="2024-03-02T10:00:00.250Z",
                           started_at="2024-03-02T10:00:00.250Z")  # fmt: skip
    first[1].status = "closed"
    archive.record_success("open-data", first, observed_at="2024-03-02T10:10:00Z")
    archive.record_error("open-data", error_kind="timeout", error="timed out",
                         started_at="2024-03-02T10:20:00Z")  # fmt: skip


@pytest.fixture(scope="module")
def archive_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "demo.db"
    run_demo(path, duration=3.0, speed=600, interval=0.5, out=io.StringIO())
    with Archive(path) as archive:
        _open_data_rows(archive)
    return path


def rows_of(path: Path, table: str, where: str = "1", params: tuple = ()) -> list[dict]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        source, order = table, "rowid"
        if table == "incident_versions":  # gone versions read back whole (versions.py)
            columns = [row[1] for row in conn.execute("PRAGMA table_info(incident_versions)")]
            source, order = whole_versions(columns), "id"
        return [
            dict(row)
            for row in conn.execute(
                f"SELECT * FROM {source} WHERE {where} ORDER BY {order}", params
            )
        ]


def utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def month_of(row: dict, table: str) -> str:
    if table == "incidents":
        return (row["received_at"] or row["first_seen_at"])[:7]
    return row["observed_at" if table == "incident_versions" else "started_at"][:7]


@pytest.mark.parametrize("table", list(TABLES))
def test_parquet_round_trip_with_pyarrow(archive_path: Path, tmp_path: Path, table: str) -> None:
    expected = rows_of(archive_path, table)
    # The demo's feeds and "open-data".
    assert len({row["feed"] for row in expected}) == len(DEMO_FEEDS) + 1 and len(expected) > 5
    out = tmp_path / "lake"
    result = export(archive_path, out, "parquet", table=table, row_group_rows=50)
    assert result.rows == len(expected)

    # One file per (feed, month), Hive-style, and a manifest the readers ignore.
    partitions = Counter((row["feed"], month_of(row, table)) for row in expected)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))
    assert files == sorted(f"feed={f}/month={m}/part-0.parquet" for f, m in partitions)
    assert sorted(str(p) for p in result.files) == sorted(str(out / f) for f in files)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["rows"] == len(expected) and manifest["table"] == table

    dataset = ds.dataset(out, format="parquet", partitioning="hive")
    loaded = dataset.to_table()
    assert loaded.num_rows == len(expected)
    schema = loaded.schema
    for name in ("observed_at", "started_at", "received_at", "first_seen_at", "gone_at"):
        if name in schema.names:
            assert schema.field(name).type == pa.timestamp("ms", tz="UTC"), name
    if table != "polls":
        assert schema.field("latitude").type == pa.float64()
        assert schema.field("extra").type == pa.string()
    else:
        assert schema.field("http_status").type == pa.int64()
        assert schema.field("duration_ms").type == pa.float64()

    # Every row, every value, as in the archive (times as instants, JSON as its text).
    by_key = {}
    key_columns = ("feed", "incident_id") if table == "incidents" else ("id",)
    for row in loaded.to_pylist():
        row["feed"] = str(row["feed"])
        month = row.pop("month")
        by_key[tuple(row[k] for k in key_columns)] = (row, month)
    assert len(by_key) == len(expected)
    for stored in expected:
        row, month = by_key[tuple(stored[k] for k in key_columns)]
        assert month == month_of(stored, table)
        for name, value in stored.items():
            got = row[name]
            if name in ("received_at", "first_seen_at", "last_seen_at", "gone_at",
                        "observed_at", "started_at"):  # fmt: skip
                assert got == utc(value), (name, stored)
            else:
                assert got == value, (name, stored)


def test_parquet_row_groups_are_bounded(archive_path: Path, tmp_path: Path) -> None:
    """Small batches and row groups: rows stream through without being gathered."""
    out = tmp_path / "pq"
    export(archive_path, out, "parquet", table="incident_versions", batch_rows=7,
           row_group_rows=10)  # fmt: skip
    biggest = tmp_path / "none"
    for path in out.rglob("*.parquet"):
        meta = pq.ParquetFile(path).metadata
        assert all(meta.row_group(i).num_rows <= 16 for i in range(meta.num_row_groups))
        if meta.num_rows > 30:
            biggest = path
    assert pq.ParquetFile(biggest).metadata.num_row_groups >= 3
    assert pq.read_table(out).num_rows == len(rows_of(archive_path, "incident_versions"))


def test_parquet_read_by_duckdb_with_hive_partitioning(archive_path: Path, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "lake"
    result = CliRunner().invoke(
        cli, ["export", "--format", "parquet", "-o", str(out), "--db", str(archive_path)]
    )
    assert result.exit_code == 0, result.output
    feeds = len(DEMO_FEEDS) + 1
    assert "Exported" in result.output and f"incidents rows ({feeds} feeds" in result.output
    expected = Counter(
        (r["feed"], month_of(r, "incidents")) for r in rows_of(archive_path, "incidents")
    )
    glob = str(out / "**" / "*.parquet")
    with closing(duckdb.connect()) as con:
        got = con.execute(
            "SELECT feed, month, count(*) FROM read_parquet(?, hive_partitioning = 1) GROUP BY ALL",
            [glob],
        ).fetchall()
        assert Counter({(feed, month): n for feed, month, n in got}) == expected
        lat, nature, received = con.execute(
            "SELECT latitude, json_extract_string(extra, '$.nature'), received_at "
            "FROM read_parquet(?, hive_partitioning = 1) WHERE incident_id = 'A1'",
            [glob],
        ).fetchone()
    assert lat == 39.781 and nature == "Théft — auto"
    assert received == datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)


def test_csv_round_trip(archive_path: Path, tmp_path: Path) -> None:
    for name in ("incidents.csv", "incidents.csv.gz"):
        out = tmp_path / name
        result = export(archive_path, out, "csv")
        opener = gzip.open if name.endswith(".gz") else open
        with opener(out, "rt", encoding="utf-8", newline="") as stream:
            read = list(csv.DictReader(stream))
        expected = rows_of(archive_path, "incidents")
        assert result.rows == len(read) == len(expected)
        assert read == [
            {k: "" if v is None else str(v) for k, v in row.items()} for row in expected
        ]


def test_ndjson_round_trip(archive_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "versions.ndjson"
    export(archive_path, out, "ndjson", table="incident_versions")
    read = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = rows_of(archive_path, "incident_versions")
    assert len(read) == len(expected)
    for got, stored in zip(read, expected, strict=True):
        for column in ("extra", "changed"):  # JSON values, not JSON text
            stored[column] = None if stored[column] is None else json.loads(stored[column])
        assert got == stored
    assert any(row["extra"] == {"nature": "Théft — auto", "codes": [1, 2]} for row in read)
    # A gone version stores no fields, and is exported whole all the same.
    by_version = {(row["feed"], row["incident_id"], row["version"]): row for row in read}
    gone = [row for row in read if row["gone_at"] is not None]
    assert gone
    for row in gone:
        before = by_version[(row["feed"], row["incident_id"], row["version"] - 1)]
        assert [row[name] for name in TRACKED_FIELDS] == [before[name] for name in TRACKED_FIELDS]
        assert row["call_type"] is not None


def test_filters_by_feed_and_date(archive_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "feb.ndjson"
    result = runner.invoke(cli, [
        "export", "-f", "ndjson", "-o", str(out), "--db", str(archive_path),
        "--feed", "open-data", "--since", "2024-02-01", "--until", "2024-02-29",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["incident_id"] for line in out.read_text().splitlines()] == ["A2"]
    # --until DATE includes that day; --until TIME is exclusive; no received time: first seen.
    for until, ids in (("2024-01-31", ["A1"]), ("2024-01-31T23:59:59Z", []),
                       ("2024-03-02T10:00:00.250Z", ["A1", "A2"]), ("2024-03-03", ["A1", "A2", "A3"])):  # fmt: skip
        out.unlink(missing_ok=True)
        result = runner.invoke(cli, ["export", "-f", "csv", "-o", str(out), "--db",
                                     str(archive_path), "--feed", "open-data", "--until", until])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert [row["incident_id"] for row in csv.DictReader(out.open())] == ids, until
    polls = export(archive_path, tmp_path / "p.csv", "csv", table="polls", feeds=["open-data"])
    assert polls.rows == 3
    # Bounds inside a second, against times stored to the second and to the millisecond.
    for since, until, ids in (
        ("2024-03-02T10:00:00.250Z", None, [1, 2, 3]),  # polls at 10:00:00.250, 10:10, 10:20
        ("2024-03-02T10:00:00.251Z", None, [2, 3]),
        (None, "2024-03-02T10:10:00.001Z", [1, 2]),
        (None, "2024-03-02T10:10:00Z", [1]),
        ("2024-03-02T10:10:00Z", "2024-03-02T10:20:00.000Z", [2]),
        ("2024-03-02T10:10:00.001Z", "2024-03-02T10:20:00.500Z", [3]),
    ):
        out = tmp_path / "bounded.ndjson"
        export(archive_path, out, "ndjson", table="polls", feeds=["open-data"], since=since,
               until=until, replace=True)  # fmt: skip
        got = [json.loads(line)["started_at"] for line in out.read_text().splitlines()]
        starts = ["2024-03-02T10:00:00.250Z", "2024-03-02T10:10:00Z", "2024-03-02T10:20:00Z"]
        assert got == [starts[i - 1] for i in ids], (since, until)


def test_errors_are_one_line_and_leave_nothing(archive_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["export", "--db", str(archive_path)]
    out = tmp_path / "out.csv"
    out.write_text("keep me")
    cases = [
        (["-f", "csv", "-o", str(out)], "exists (use --replace"),
        (["-f", "csv", "-o", str(tmp_path / "x.csv"), "--feed", "nope"], "no feed nope in the archive"),
        (["-f", "parquet", "-o", "-"], "Parquet is written to a folder"),
        (["-f", "parquet", "-o", str(tmp_path), "--replace"], "is not a previous Parquet export"),
        (["-f", "csv", "-o", str(tmp_path / "y.csv"), "--since", "yesterday"], "not a date or time"),
        (["-f", "csv", "-o", str(tmp_path / "z.csv"), "--since", "2024-02-01", "--until", "2024-01-01"], "--since must be before --until"),
    ]  # fmt: skip
    for args, message in cases:
        result = runner.invoke(cli, base + args)
        assert result.exit_code != 0
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert out.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    missing = runner.invoke(
        cli, ["export", "-f", "csv", "-o", "-", "--db", str(tmp_path / "no.db")]
    )
    assert missing.exit_code == 1 and "no archive at" in missing.output

    # --replace: a file, or a folder holding a previous export.
    assert export(archive_path, out, "csv", replace=True).rows > 0
    lake = tmp_path / "lake"
    first = export(archive_path, lake, "parquet", feeds=["open-data"])
    second = export(archive_path, lake, "parquet", replace=True)
    assert pq.read_table(lake).num_rows == second.rows > first.rows


def test_a_bad_timestamp_fails_cleanly_without_quoting_it(
    archive_path: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.db"
    with closing(sqlite3.connect(archive_path)) as src, closing(sqlite3.connect(broken)) as dst:
        src.backup(dst)
        dst.execute(
            "UPDATE incidents SET received_at = '31/01/2024 SECRET' WHERE incident_id = 'A1'"
        )
        dst.commit()
    with pytest.raises(ExportError) as caught:
        export(broken, tmp_path / "lake", "parquet", batch_rows=3)
    assert "received_at" in str(caught.value) and "SECRET" not in str(caught.value)
    assert not (tmp_path / "lake").exists() and not (tmp_path / "lake.partial").exists()


def test_export_uses_the_config_database(archive_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {archive_path}\nfeeds: {{}}\n")
    result = CliRunner().invoke(cli, ["export", "-f", "ndjson", "-o", "-", "--table", "polls",
                                      "--config", str(config), "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == len(rows_of(archive_path, "polls"))
    # The group's --quiet silences the summary line too.
    out = archive_path.parent / "quiet.csv"
    quiet = CliRunner().invoke(cli, ["--quiet", "export", "-f", "csv", "-o", str(out), "--replace",
                                     "--config", str(config)])  # fmt: skip
    assert quiet.exit_code == 0 and quiet.output == "" and out.exists()
