"""``dispatchwatch import``: files written by the tests (CSV, TSV, Excel, JSON, NDJSON),
the shipped mappings, a real SQLite archive, through the command line."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatchwatch.archive import Archive
from dispatchwatch.cli import cli
from dispatchwatch.config import default_feed, parse_config
from dispatchwatch.errors import ConfigError
from dispatchwatch.imports.mapping import canonical, load_mapping, parse_mapping
from dispatchwatch.imports.rows import parse_point
from dispatchwatch.imports.run import import_file

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "imports"
REAL_MKE = (
    REPO.parent / "shared" / "real-pages" / "milwaukee" / "accumulated_export_2018-05_first300.csv"
)

FOIA_HEADER = [
    "Event #", "Date", "Police Event Type", "Priority", "Police District", "Service Beat",
    "Cross Street", "Location Remarks", "Disposition", "Source",
]  # fmt: skip
SECRET = "CALLER JOHN Q PUBLIC 312-555-0142 APT 3R"
# (event, date cell, type, priority, district, beat, cross street, remarks, disposition, source)
FOIA_ROWS = [
    ("160010001", "1/1/2016 00:01:02", "SHOTS FIRED", "1A", "011", "1133",
     "1512 W MADISON ST", SECRET, "NO PERSON FOUND", "911"),
    ("160010002", "2016-01-01T00:05:09.000", "DISTURBANCE", "2B", "001", "0111",
     "N STATE ST / W MADISON ST", "", "ADVISED", "911"),
    ("160730003", datetime(2016, 3, 13, 1, 59, 59), "ALARM BURGLAR", "2C", "019", "1914",
     "3400 N SHEFFIELD AVE", "REAR DOOR", "FALSE ALARM", "ALARM CO"),
    ("160730004", "03/13/16 03:00", "TRAFFIC STOP", "3", "019", "1914",
     "W BELMONT AVE / N CLARK ST", "", "CITATION", "OFFICER"),
    ("163110005", "11/6/2016 1:30:00 AM", "CHECK WELL BEING", "2", "008", "0833",
     "6300 S PULASKI RD", "", "ADVISED", "911"),
]  # fmt: skip
EXPECTED_UTC = {
    "160010001": "2016-01-01T06:01:02Z",
    "160010002": "2016-01-01T06:05:09Z",
    "160730003": "2016-03-13T07:59:59Z",  # the last second of CST before the spring change
    "160730004": "2016-03-13T08:00:00Z",  # 03:00 CDT: the first minute after it
    "163110005": "2016-11-06T06:30:00Z",  # ambiguous 01:30: the first (CDT) occurrence
}
EXPECTED_ADDRESS = {
    "160010001": "15XX W MADISON ST",
    "160010002": "N STATE ST / W MADISON ST",
    "160730003": "34XX N SHEFFIELD AVE",
    "160730004": "W BELMONT AVE / N CLARK ST",
    "163110005": "63XX S PULASKI RD",
}
BLOCK_LEVEL = re.compile(r"^(?:(?:[0-9]+XX|[0-9]+(?:ST|ND|RD|TH)|[^0-9]).*)$")


def query(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def invoke(*args: str) -> object:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def write_xlsx(path: Path, header: list[str], rows: list[tuple]) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


def write_xls(path: Path, header: list[str], rows: list[tuple]) -> Path:
    import xlwt

    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Calls")
    date_style = xlwt.easyxf(num_format_str="M/D/YYYY h:mm:ss")
    for c, name in enumerate(header):
        sheet.write(0, c, name)
    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row):
            if isinstance(value, datetime):
                sheet.write(r, c, value, date_style)
            else:
                sheet.write(r, c, value)
    workbook.save(str(path))
    return path


def write_csv(path: Path, header: list[str], rows: list[tuple], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        for row in rows:
            writer.writerow(
                [v.strftime("%m/%d/%Y %H:%M:%S") if isinstance(v, datetime) else v for v in row]
            )
    return path


def check_foia_archive(db: Path) -> None:
    rows = query(
        db,
        "SELECT incident_id, received_at, address, city, call_type, priority, district, beat, "
        "disposition, extra FROM incidents WHERE feed = 'chicago-police' ORDER BY incident_id",
    )
    assert [r[0] for r in rows] == sorted(EXPECTED_UTC)
    for incident_id, received, address, city, *_rest, extra in rows:
        assert received == EXPECTED_UTC[incident_id], incident_id
        assert address == EXPECTED_ADDRESS[incident_id], incident_id
        assert city == "Chicago"
        assert "Location Remarks" not in (extra or "")
    first = rows[0]
    assert first[4:9] == ("SHOTS FIRED", "1A", "011", "1133", "NO PERSON FOUND")
    # extra keeps the file's own column name (SOURCE in the TSV)
    assert {k.lower(): v for k, v in json.loads(first[9]).items()} == {"source": "911"}
    # The free-text remarks are nowhere in the archive file, not even in a poll's error.
    assert SECRET.encode() not in db.read_bytes()
    assert b"REAR DOOR" not in db.read_bytes()


def test_chicago_foia_xlsx_with_the_shipped_mapping(tmp_path: Path) -> None:
    sheet = write_xlsx(tmp_path / "foia.xlsx", FOIA_HEADER, FOIA_ROWS)
    db = tmp_path / "a.db"
    result = invoke(
        "import", sheet, "--feed", "chicago-police", "--mapping", "chicago-oemc-foia", "--db", db
    )
    assert result.exit_code == 0, result.output
    assert "5 rows, 5 archived as 5 incidents: 5 new, 0 changed (1 polls)" in result.output
    check_foia_archive(db)
    polls = query(db, "SELECT feed, outcome, gone, source FROM polls")
    assert polls == [("chicago-police", "new", 0, f"import {sheet} rows 2-6")]
    feeds = query(db, "SELECT slug, city, timezone, url FROM feeds")
    assert feeds == [("chicago-police", "Chicago", "America/Chicago", "")]
    assert query(db, "SELECT kind FROM polls") == [("import",)]


def test_chicago_foia_xls_written_by_xlwt_gives_the_same_archive(tmp_path: Path) -> None:
    sheet = write_xls(tmp_path / "foia.xls", FOIA_HEADER, FOIA_ROWS)
    db = tmp_path / "a.db"
    result = invoke(
        "import", sheet, "--feed", "chicago-police", "--mapping", "chicago-oemc-foia", "--db", db
    )
    assert result.exit_code == 0, result.output
    check_foia_archive(db)


def test_tsv_with_column_names_spelled_differently(tmp_path: Path) -> None:
    header = [h.upper().replace(" ", "_").replace("#", "NUMBER") for h in FOIA_HEADER]
    assert header[0] == "EVENT_NUMBER" and canonical(header[0]) == canonical("Event #")
    path = write_csv(tmp_path / "foia.tsv", header, FOIA_ROWS, delimiter="\t")
    db = tmp_path / "a.db"
    result = invoke(
        "import", path, "--feed", "chicago-police", "--mapping", "chicago-oemc-foia", "--db", db
    )
    assert result.exit_code == 0, result.output
    check_foia_archive(db)


def test_a_missing_mapped_column_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    header = [h for h in FOIA_HEADER if h not in ("Date", "Police District")]
    rows = [
        tuple(v for h, v in zip(FOIA_HEADER, row, strict=True) if h in header) for row in FOIA_ROWS
    ]
    path = write_csv(tmp_path / "foia.csv", header, rows)
    db = tmp_path / "a.db"
    result = invoke(
        "import", path, "--feed", "chicago-police", "--mapping", "chicago-oemc-foia", "--db", db
    )
    assert result.exit_code == 1
    assert "'Date' (received)" in result.output and "'Police District' (district)" in result.output
    assert query(db, "SELECT count(*) FROM polls") == [(0,)]


def _bad_rows() -> list[tuple]:
    rows = [list(r) for r in FOIA_ROWS]
    rows[1][1] = "SOMETIME IN JANUARY"  # row 3 of the sheet: no format reads it
    rows[3][0] = ""  # row 5: no event number
    return [tuple(r) for r in rows]


def test_on_error_stop_reports_bad_rows_by_number_and_writes_nothing(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "foia.csv", FOIA_HEADER, _bad_rows())
    db = tmp_path / "a.db"
    result = invoke(
        "import", path, "--feed", "chicago-police", "--mapping", "chicago-oemc-foia", "--db", db
    )
    assert result.exit_code == 1
    assert "row 3: unreadable time in column 'Date'" in result.output
    assert "row 5: no incident ID (column 'Event #')" in result.output
    assert "nothing of this file was imported" in result.output
    assert "SOMETIME" not in result.output and "TRAFFIC STOP" not in result.output
    assert query(db, "SELECT count(*) FROM incidents") == [(0,)]
    assert query(db, "SELECT count(*) FROM polls") == [(0,)]
    assert query(db, "SELECT count(*) FROM imports") == [(0,)]


def test_on_error_skip_archives_the_readable_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "foia.csv", FOIA_HEADER, _bad_rows())
    db = tmp_path / "a.db"
    result = invoke(
        "import", path, "--feed", "chicago-police", "--mapping", "chicago-oemc-foia",
        "--db", db, "--on-error", "skip",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "row 3: unreadable time in column 'Date'" in result.output
    assert "row 5: no incident ID" in result.output
    assert (
        "3 archived as 3 incidents" in result.output
        and "2 unreadable rows skipped" in result.output
    )
    assert "SOMETIME" not in result.output
    ids = [r[0] for r in query(db, "SELECT incident_id FROM incidents ORDER BY 1")]
    assert ids == ["160010001", "160730003", "163110005"]
    assert query(db, "SELECT rows, imported, skipped FROM imports") == [(5, 3, 2)]


def test_reimporting_adds_nothing(tmp_path: Path) -> None:
    sheet = write_xlsx(tmp_path / "foia.xlsx", FOIA_HEADER, FOIA_ROWS)
    db = tmp_path / "a.db"
    args = [
        "import",
        sheet,
        "--feed",
        "chicago-police",
        "--mapping",
        "chicago-oemc-foia",
        "--db",
        db,
    ]
    assert invoke(*args).exit_code == 0
    before = query(db, "SELECT * FROM incident_versions ORDER BY id")
    incidents = query(db, "SELECT * FROM incidents ORDER BY incident_id")
    again = invoke(*args)
    assert again.exit_code == 0
    assert "already imported" in again.output and "1 already imported" in again.output
    assert query(db, "SELECT count(*) FROM polls") == [(1,)]
    forced = invoke(*args, "--force")
    assert forced.exit_code == 0, forced.output
    assert "0 new, 0 changed" in forced.output
    assert query(db, "SELECT * FROM incident_versions ORDER BY id") == before
    assert query(db, "SELECT * FROM incidents ORDER BY incident_id") == incidents
    # The same calls in another file (a second export of the same release) add nothing either.
    other = write_csv(tmp_path / "again.csv", FOIA_HEADER, FOIA_ROWS)
    assert invoke("import", other, *args[2:]).exit_code == 0
    assert query(db, "SELECT * FROM incident_versions ORDER BY id") == before


def test_batches_are_polls_and_never_split_an_incident(tmp_path: Path) -> None:
    rows = [
        ("1", "1/1/2016 00:00:01", "A", "1", "001", "0111", "100 W MADISON ST", "", "", "911"),
        ("2", "1/1/2016 00:00:02", "A", "1", "001", "0111", "200 W MADISON ST", "", "", "911"),
        ("2", "1/1/2016 00:00:03", "B", "1", "001", "0111", "200 W MADISON ST", "", "", "911"),
        ("3", "1/1/2016 00:00:04", "A", "1", "001", "0111", "300 W MADISON ST", "", "", "911"),
        ("4", "1/1/2016 00:00:05", "A", "1", "001", "0111", "400 W MADISON ST", "", "", "911"),
    ]
    path = write_csv(tmp_path / "foia.csv", FOIA_HEADER, rows)
    db = tmp_path / "a.db"
    result = invoke(
        "import", path, "--feed", "chicago-police", "--mapping", "chicago-oemc-foia",
        "--db", db, "--batch-size", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sources = [r[0] for r in query(db, "SELECT source FROM polls ORDER BY id")]
    assert sources == [f"import {path} rows 2-4", f"import {path} rows 5-6"]
    # Incident 2's two rows were merged in one poll: one version, the latest row's type.
    assert query(
        db, "SELECT call_type, received_at, version FROM incidents WHERE incident_id = '2'"
    ) == [("B", "2016-01-01T06:00:02Z", 1)]
    assert query(db, "SELECT sum(gone) FROM polls") == [(0,)]


def _check_milwaukee(db: Path, expected: int) -> None:
    rows = query(
        db, "SELECT incident_id, received_at, address, city, latitude, longitude FROM incidents"
    )
    assert len(rows) == expected
    for _id, received, address, _city, lat, lon in rows:
        assert re.fullmatch(r"2018-05-0[12]T[0-9:]{8}Z", received)
        for segment in (address or "").split(" / "):
            assert BLOCK_LEVEL.match(segment), address
        for value in (lat, lon):
            assert value is None or round(value, 3) == value


def test_milwaukee_export_fixture(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    path = FIXTURES / "milwaukee_accumulated_export.csv"
    result = invoke(
        "import",
        path,
        "--feed",
        "milwaukee-police",
        "--mapping",
        "milwaukee-accumulated-export",
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output
    _check_milwaukee(db, 10)
    by_id = {
        r[0]: r[1:]
        for r in query(
            db,
            "SELECT incident_id, received_at, address, city, latitude, longitude, status FROM incidents",
        )
    }
    assert by_id["1811001"] == (
        "2018-05-01T05:10:28Z",
        "48XX N 41ST ST",
        "Milwaukee",
        43.105,
        -87.964,
        "Unable to Locate Complainant",
    )
    assert by_id["1811003"][1] == "29XX N 24TH ST"
    assert by_id["1811006"][1:3] == ("74XX W NORTH AV", "Wauwatosa")
    assert by_id["1811008"][1] == "0XX E WELLS ST"
    assert by_id["1811009"] == (
        "2018-05-02T04:59:59Z",
        "LAKEFRONT - MCKINLEY MARINA",
        None,
        None,
        None,
        "Advised",
    )
    assert b"4821 N 41ST" not in db.read_bytes()
    assert query(db, "SELECT count(*) FROM incidents WHERE gone_at IS NOT NULL") == [(0,)]


@pytest.mark.skipif(not REAL_MKE.is_file(), reason="../shared/real-pages is not available")
def test_real_milwaukee_accumulated_export(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    result = invoke(
        "import",
        REAL_MKE,
        "--feed",
        "milwaukee-police",
        "--mapping",
        "milwaukee-accumulated-export",
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output
    with open(REAL_MKE, newline="") as handle:
        source = list(csv.DictReader(handle))
    _check_milwaukee(db, len({row["id"] for row in source}))
    first = source[0]
    stored = query(
        db, "SELECT received_at, address FROM incidents WHERE incident_id = ?", first["id"]
    )
    # May is daylight time in Milwaukee: UTC-5.
    local = datetime.strptime(first["time"], "%Y-%m-%d %H:%M:%S")
    assert stored[0][0] == local.replace(hour=(local.hour + 5) % 24).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    ) or stored[0][0].endswith("Z")
    house = first["location"].split(",")[0].split()[0]
    assert house not in stored[0][1].split()


NOLA_HEADER = [
    "NOPD_Item", "Type_", "TypeText", "Priority", "InitialType", "InitialTypeText",
    "InitialPriority", "MapX", "MapY", "TimeCreate", "TimeDispatch", "TimeArrive", "TimeClosed",
    "Disposition", "DispositionText", "SelfInitiated", "Beat", "BLOCK_ADDRESS", "Zip",
    "PoliceDistrict", "Location",
]  # fmt: skip
NOLA_ROWS = [
    ("B0100116", "94F", "FIREWORKS", "1A", "94F", "FIREWORKS", "1A", "3661999", "532001",
     "1/1/2016 00:01:02", "1/1/2016 00:46:39", "", "1/1/2016 00:54:27", "NAT",
     "Necessary Action Taken", "N", "2K04", "Cohn St & Hamilton St", "70118", "2",
     "(29.9512345, -90.1234567)"),
    ("B0100217", "62A", "BURGLAR ALARM, SILENT", "2C", "62A", "BURGLAR ALARM, SILENT", "2C",
     "3671999", "537001", "2017-01-01T00:00:14.000", "", "", "2017-01-01T00:24:51.000", "NAT",
     "Necessary Action Taken", "N", "1L04", "001XX S Cortez St", "70119", "1",
     "POINT (-90.0912345 29.9723456)"),
]  # fmt: skip


def test_new_orleans_socrata_csv_and_the_same_rows_as_json_ndjson_and_socrata_rows_json(
    tmp_path: Path,
) -> None:
    dbs = {}
    csv_path = write_csv(tmp_path / "nola.csv", NOLA_HEADER, NOLA_ROWS)
    records = [dict(zip(NOLA_HEADER, row, strict=True)) for row in NOLA_ROWS]
    # The SODA JSON shape: lower-case API field names, empty fields omitted.
    api = [{k.lower(): v for k, v in r.items() if v} for r in records]
    (tmp_path / "nola.json").write_text(json.dumps(api))
    (tmp_path / "nola.ndjson").write_text("\n".join(json.dumps(r) for r in api) + "\n")
    columns = [{"name": ":sid", "fieldName": ":sid"}] + [
        {"name": h, "fieldName": h.lower()} for h in NOLA_HEADER
    ]
    data = [[7 + i, *row] for i, row in enumerate(NOLA_ROWS)]
    (tmp_path / "rows.json").write_text(
        json.dumps({"meta": {"view": {"columns": columns}}, "data": data})
    )
    for name in ("nola.csv", "nola.json", "nola.ndjson", "rows.json"):
        db = tmp_path / f"{name}.db"
        result = invoke(
            "import",
            tmp_path / name,
            "--feed",
            "new-orleans",
            "--mapping",
            "new-orleans-socrata-csv",
            "--db",
            db,
            "--config",
            _config(tmp_path),
        )
        assert result.exit_code == 0, (name, result.output)
        dbs[name] = query(
            db,
            "SELECT incident_id, received_at, call_type, priority, address, city, district, "
            "beat, latitude, longitude, disposition, extra FROM incidents ORDER BY 1",
        )
    assert csv_path.exists()
    rows = dbs["nola.csv"]
    assert rows[0][:8] == (
        "B0100116", "2016-01-01T06:01:02Z", "FIREWORKS", "1A", "COHN ST & HAMILTON ST",
        "New Orleans", "2", "2K04",
    )  # fmt: skip
    assert rows[0][10] == "Necessary Action Taken"
    # Read by the live new-orleans-police reader: block without leading zeros, WKT and
    # "(lat, lon)" Location in degrees (rounded).
    assert rows[1][1] == "2017-01-01T06:00:14Z" and rows[1][4] == "1XX S CORTEZ ST"
    assert rows[1][8:10] == (29.972, -90.091)
    assert rows[0][8:10] == (29.951, -90.123)
    extra = json.loads(rows[0][11])
    assert extra["time_closed"] == "1/1/2016 00:54:27" and extra["zip"] == "70118"
    assert extra["type_code"] == "94F" and extra["initial_type"] == "FIREWORKS"
    assert not {"MapX", "MapY", "mapx", "mapy", "Location", "location"} & set(extra)
    for name in ("nola.json", "nola.ndjson", "rows.json"):
        assert [r[:11] for r in dbs[name]] == [r[:11] for r in rows], name


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "feeds:\n"
        "  new-orleans:\n"
        "    import_only: true\n"
        "    name: New Orleans calls for service\n"
        "    agency: New Orleans Police Department\n"
        "    city: New Orleans\n"
        "    timezone: America/Chicago\n"
        "  seattle-fire: {}\n"
    )
    return path


def test_geojson_feature_collection(tmp_path: Path) -> None:
    features = [
        {"type": "Feature", "properties": {"NOPD_Item": "C1", "TimeCreate": "1/1/2016 00:01:02",
         "TypeText": "FIREWORKS", "BLOCK_ADDRESS": "054XX Laurel St"},
         "geometry": {"type": "Point", "coordinates": [-90.1234567, 29.9312345]}},
        {"type": "Feature", "properties": {"NOPD_Item": "C2", "TimeCreate": "1/1/2016 00:01:11",
         "TypeText": "FIREWORKS", "BLOCK_ADDRESS": "Cohn St & Hamilton St"},
         # state-plane feet, as a third party wrote them: not degrees, so not stored
         "geometry": {"type": "Point", "coordinates": [3661003, 532567]}},
    ]  # fmt: skip
    path = tmp_path / "calls.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "timezone: America/Chicago\n"
        "fields: {incident_id: NOPD_Item, received: TimeCreate, call_type: TypeText,\n"
        "         address: BLOCK_ADDRESS, location: geometry}\n"
    )
    db = tmp_path / "a.db"
    result = invoke(
        "import",
        path,
        "--feed",
        "new-orleans",
        "--mapping",
        mapping,
        "--db",
        db,
        "--config",
        _config(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert query(
        db,
        "SELECT incident_id, received_at, address, latitude, longitude, extra FROM incidents ORDER BY 1",
    ) == [
        # New Orleans' zero-padded block is normalized (054XX -> 54XX)
        ("C1", "2016-01-01T06:01:02Z", "54XX LAUREL ST", 29.931, -90.123, None),
        ("C2", "2016-01-01T06:01:11Z", "COHN ST & HAMILTON ST", None, None, None),
    ]


def test_ndjson_bad_line_is_reported_by_line_number(tmp_path: Path) -> None:
    path = tmp_path / "calls.ndjson"
    path.write_text(
        '{"id": "1", "time": "2018-05-01 00:10:28", "location": "100 E WELLS ST,MKE"}\n'
        '{"id": "2", "time": "2018-05-01 00:10:29", "location": "SECRET PLACE\n'
        '{"id": "3", "time": "2018-05-01 00:10:30", "location": "300 E WELLS ST,MKE"}\n'
    )
    db = tmp_path / "a.db"
    mapping = tmp_path / "m.yaml"
    mapping.write_text("fields: {incident_id: id, received: time, address: location}\n")
    args = ["import", path, "--feed", "milwaukee-police", "--mapping", mapping, "--db", db]
    stopped = invoke(*args)
    assert stopped.exit_code == 1
    assert "row 2: not a JSON value" in stopped.output and "SECRET" not in stopped.output
    skipped = invoke(*args, "--on-error", "skip")
    assert skipped.exit_code == 0, skipped.output
    assert query(db, "SELECT incident_id, address FROM incidents ORDER BY 1") == [
        ("1", "1XX E WELLS ST"), ("3", "3XX E WELLS ST"),
    ]  # fmt: skip


def test_date_and_time_columns_joined_and_several_formats(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "timezone: America/Chicago\n"
        "fields:\n"
        "  incident_id: Event\n"
        "  received: {columns: [Call Date, Call Time], formats: [auto, '%d-%b-%y %H:%M']}\n"
        "extra: none\n"
    )
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Event", "Call Date", "Call Time"])
    sheet.append(["E1", datetime(2016, 7, 4), datetime(2016, 7, 4, 21, 5, 0).time()])
    sheet.append(["E2", "04-JUL-16", "21:06"])
    sheet.append(["E3", "7/4/2016", "9:07 PM"])
    workbook.save(tmp_path / "calls.xlsx")
    db = tmp_path / "a.db"
    result = invoke(
        "import",
        tmp_path / "calls.xlsx",
        "--feed",
        "chicago-police",
        "--mapping",
        mapping,
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output
    assert query(db, "SELECT incident_id, received_at FROM incidents ORDER BY 1") == [
        ("E1", "2016-07-05T02:05:00Z"), ("E2", "2016-07-05T02:06:00Z"), ("E3", "2016-07-05T02:07:00Z"),
    ]  # fmt: skip


def test_mapping_validation_errors() -> None:
    with pytest.raises(ConfigError, match="fields.received is required"):
        parse_mapping("fields: {incident_id: A}")
    with pytest.raises(ConfigError, match="unknown field 'adress'"):
        parse_mapping("fields: {incident_id: A, received: B, adress: C}")
    with pytest.raises(ConfigError, match="unknown time zone"):
        parse_mapping("timezone: Mars/Olympus\nfields: {incident_id: A, received: B}")
    with pytest.raises(ConfigError, match="not a strptime format"):
        parse_mapping("fields: {incident_id: A, received: {column: B, formats: [dd/mm]}}")
    with pytest.raises(ConfigError, match="no mapping 'nope'"):
        load_mapping("nope")
    with pytest.raises(ConfigError, match="row 'nowhere:row' cannot be loaded"):
        parse_mapping("row: nowhere:row\nfields: {incident_id: A, received: B}")
    assert load_mapping("chicago-oemc-foia").drop == ("Location Remarks",)


def test_parse_point_forms() -> None:
    assert parse_point("POINT (-90.09 29.97)") == (29.97, -90.09)
    assert parse_point("(29.97, -90.09)") == (29.97, -90.09)
    assert parse_point({"type": "Point", "coordinates": [-90.09, 29.97]}) == (29.97, -90.09)
    assert parse_point({"latitude": "29.97", "longitude": "-90.09"}) == (29.97, -90.09)
    assert parse_point("somewhere") == (None, None)


def test_import_only_feeds_are_listed_and_never_polled(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path).read_text(), _config(tmp_path))
    feed = config.feeds["new-orleans"]
    assert feed.import_only and feed.url == "" and feed.zone == "America/Chicago"
    assert [f.slug for f in config.enabled_feeds] == ["seattle-fire"]
    assert default_feed("chicago-police").import_only
    result = invoke("feeds", "--config", _config(tmp_path))
    assert result.exit_code == 0
    assert re.search(r"new-orleans\s+new-orleans\s+import only", result.output)
    assert re.search(r"chicago-police\s+Chicago Police .*import only", result.output)
    with pytest.raises(ConfigError, match="unknown key 'feeds.seattle-fire.agency'"):
        parse_config("feeds:\n  seattle-fire: {agency: X}\n")
    with pytest.raises(ConfigError, match="needs a timezone"):
        parse_config("feeds:\n  oakland: {import_only: true}\n")


def test_library_call_returns_a_report(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.db") as archive:
        report = import_file(
            archive,
            default_feed("milwaukee-police"),
            FIXTURES / "milwaukee_accumulated_export.csv",
            load_mapping("milwaukee-accumulated-export"),
        )
    assert (report.outcome, report.rows, report.new, report.polls) == ("imported", 10, 10, 1)


# --- counts ----------------------------------------------------------------------------------


def test_counts_long_and_wide_into_call_counts_and_the_month_view(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    # Long: one count per district x event type, the year given on the command line.
    long_path = write_csv(
        tmp_path / "counts_2011.csv",
        ["Police District", "Event Type", "Count"],
        [("001", "DISTURBANCE", "1,204"), ("002", "DISTURBANCE", "987"),
         ("001", "ALARM BURGLAR", "55"), ("", "Grand Total", "2,246"), ("", "", "")],
    )  # fmt: skip
    args = ["--feed", "chicago-police", "--mapping", "chicago-call-counts", "--db", db]
    result = invoke("import", long_path, *args, "--set", "year=2011")
    assert result.exit_code == 0, result.output
    assert "3 counts stored" in result.output
    # Wide: one column per day of the week, in a spreadsheet.
    mapping = tmp_path / "by_day.yaml"
    mapping.write_text(
        "kind: counts\nfields: {call_type: Event Type}\nconstants: {year: 2011}\n"
        "wide: {field: day_of_week}\nskip_labels: [Total]\n"
    )
    wide = write_xlsx(
        tmp_path / "by_day.xlsx",
        ["Event Type", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN", "Total"],
        [("DISTURBANCE", 300, 280, 290, 270, 350, 351, 150, 1991),
         ("ALARM BURGLAR", 10, 5, 5, 5, 10, 10, 10, 55)],
    )  # fmt: skip
    result = invoke("import", wide, "--feed", "chicago-police", "--mapping", mapping, "--db", db)
    assert result.exit_code == 0, result.output
    assert "14 counts stored" in result.output
    rows = query(
        db,
        "SELECT period_start, period_end, district, call_type, day_of_week, count FROM call_counts "
        "WHERE day_of_week IS NULL ORDER BY district, call_type",
    )
    assert rows == [
        ("2011-01-01", "2011-12-31", "001", "ALARM BURGLAR", None, 55),
        ("2011-01-01", "2011-12-31", "001", "DISTURBANCE", None, 1204),
        ("2011-01-01", "2011-12-31", "002", "DISTURBANCE", None, 987),
    ]
    assert query(
        db,
        "SELECT count, source_file FROM call_counts WHERE day_of_week = 'Monday' AND call_type = 'DISTURBANCE'",
    ) == [(300, str(wide))]
    # Importing the long file again with --force replaces, never adds.
    assert invoke("import", long_path, *args, "--set", "year=2011", "--force").exit_code == 0
    assert query(db, "SELECT sum(count) FROM call_counts WHERE day_of_week IS NULL") == [(2246,)]
    # Beside the per-call archive of another city, by type and month.
    mke = invoke("import", FIXTURES / "milwaukee_accumulated_export.csv", "--feed", "milwaukee-police",
                 "--mapping", "milwaukee-accumulated-export", "--db", db)  # fmt: skip
    assert mke.exit_code == 0
    view = query(
        db,
        "SELECT source, feed, city, period_start, period_end, months, call_type, calls, "
        "calls_per_month FROM calls_by_type_month WHERE call_type IN ('DISTURBANCE', 'PROPERTY DAMAGE') "
        "ORDER BY feed",
    )
    assert view == [
        # per-district rows win over per-day rows of the same release: never counted twice
        (
            "counts",
            "chicago-police",
            "Chicago",
            "2011-01-01",
            "2011-12-31",
            12,
            "DISTURBANCE",
            2191,
            182.6,
        ),
        (
            "archive",
            "milwaukee-police",
            "Milwaukee",
            "2018-05-01",
            "2018-05-31",
            1,
            "PROPERTY DAMAGE",
            2,
            2.0,
        ),
    ]


def test_counts_bad_row_stops_the_file(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    path = write_csv(
        tmp_path / "counts.csv",
        ["Year", "Police District", "Event Type", "Count"],
        [("2011", "001", "DISTURBANCE", "12"), ("2011", "002", "DISTURBANCE", "many")],
    )
    args = [
        "import",
        path,
        "--feed",
        "chicago-police",
        "--mapping",
        "chicago-call-counts",
        "--db",
        db,
    ]
    stopped = invoke(*args)
    assert stopped.exit_code == 1
    assert "row 3: count: not a whole, non-negative number" in stopped.output
    assert "many" not in stopped.output
    assert query(db, "SELECT count(*) FROM call_counts") == [(0,)]
    assert invoke(*args, "--on-error", "skip").exit_code == 0
    assert query(db, "SELECT district, count FROM call_counts") == [("001", 12)]


def test_datasette_metadata_documents_the_import_tables(tmp_path: Path) -> None:
    from dispatchwatch.publish import build_metadata

    db = tmp_path / "a.db"
    Archive(db).close()
    tables = build_metadata(db)["databases"]["a"]["tables"]
    assert tables["call_counts"]["columns"]["count"] == "Number of calls"
    assert "calls_per_month" in tables["calls_by_type_month"]["columns"]
    assert tables["imports"]["title"] == "Imports"
