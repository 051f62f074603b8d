"""The Socrata row builder (generated once per ``fields`` mapping) gives, for any record,
the row that the documented helpers give: :func:`text` of each mapped column,
:func:`point` of the location column (else the latitude/longitude columns as they are),
:func:`extras` of the rest."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchwatch.archive import StoredIncidents
from dispatchwatch.config import default_feed
from dispatchwatch.normalize.rows import normalize_rows, stored_columns
from dispatchwatch.pipeline import parse_page, stored_page
from dispatchwatch.scraper import Page, RawRow, Request
from dispatchwatch.sources import socrata
from dispatchwatch.sources.socrata import SocrataSpec, extras, point, text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
URL = "https://data.example.org/resource/abcd-1234.json"
SEATTLE = {
    "incident_id": "incident_number", "received": "datetime", "call_type": "type",
    "address": "address", "location": "report_location", "latitude": "latitude",
    "longitude": "longitude",
}  # fmt: skip
NO_LOCATION = {"incident_id": "id", "received": "when", "units": "units", "beat": "beat"}
NO_ID = {"received": "when", "call_type": "type", "latitude": "y", "longitude": "x"}


def _reference(spec: SocrataSpec, record: dict[str, Any]) -> RawRow:
    fields = dict(spec.fields)
    location = fields.pop("location", None)
    values = [
        text(record.get(fields[name])) if name in fields else None for name in socrata._TEXT_FIELDS
    ]
    lat = lon = None
    if location and record.get(location) is not None:
        lat, lon = point(record.get(location))
    if lat is None:
        lat, lon = record.get(fields.get("latitude", "")), record.get(fields.get("longitude", ""))
    extra = extras(record, set(spec.fields.values()), spec.extra)
    return RawRow(values[0] or "", *values[1:], lat, lon, extra)  # type: ignore[arg-type]


def _spec(fields: dict[str, str], extra: tuple[str, ...] | None = None) -> SocrataSpec:
    return SocrataSpec(URL, "America/Los_Angeles", fields=fields, extra=extra)


COLUMNS = [
    "incident_number", "datetime", "type", "address", "report_location", "latitude",
    "longitude", "id", "when", "units", "beat", "x", "y", "note", ":id", ":@computed_x",
]  # fmt: skip
#: Socrata's floating times (the one pass reads them inline), and near misses: DST gap and
#: overlap, other ends, fields out of range, spaces.
TIMES = [
    "2024-01-01T00:00:00.000", "2024-03-10T02:30:00.000", "2024-11-03T01:30:00.000",
    "2024-07-04T23:59:59.000", " 2024-01-01T00:00:00.000", "2024-01-01T00:00:00.000 ",
    "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00", "2024-01-01 00:00:00.000",
    "2024-01-01T24:00:00.000", "2024-13-01T00:00:00.000", "2024-01-01T00:60:00.000",
    "2024-01-01T00:00:00.001", "x024-01-01T00:00:00.000", "2024-02-30T10:00:00.000",
    "2024-01-01T0:00:00.000", "2024-01-01T00:00:00.0000",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.sampled_from(["", "  ", " E12 ", "Aid Response", "0", "47.6", " 137 Pine St", "Pine St "]),
    st.sampled_from(TIMES),
    st.text(max_size=6),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
)
points = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("Point"),
            "coordinates": st.lists(
                st.one_of(
                    st.floats(-180, 180, width=32),
                    st.integers(-1, 1),
                    st.sampled_from(["1.5", "x"]),
                ),
                max_size=3,
            ),
        }
    ),  # fmt: skip
    st.fixed_dictionaries(
        {
            "latitude": st.sampled_from(["47.6", "0", "x"]),
            "longitude": st.sampled_from(["-122.3", "0"]),
        }
    ),  # fmt: skip
    st.sampled_from(["POINT (-122.3 47.6)", "POINT (0 0)", "nowhere"]),
)
values = st.one_of(scalars, points, st.lists(scalars, max_size=2))
records = st.dictionaries(st.sampled_from(COLUMNS), values, max_size=len(COLUMNS))


SPECS = [_spec(SEATTLE), _spec(NO_LOCATION), _spec(NO_ID), _spec(SEATTLE, ("note", "x"))]
BUILDERS = [(spec, socrata._mapped_row(spec)) for spec in SPECS]


@settings(max_examples=150, deadline=None)
@given(st.lists(records, min_size=1, max_size=8))
def test_generated_builders_give_the_helpers_rows(rows: list[dict[str, Any]]) -> None:
    for spec, build in BUILDERS:
        for record in rows:
            assert build(record) == _reference(spec, record), (spec.fields, record)


def test_a_row_of_a_saved_seattle_page() -> None:
    build = socrata._mapped_row(_spec(SEATTLE))
    record = {
        "address": " 1st Av / Pine St ", "type": "Aid Response", "datetime": "2024-01-01T00:00:00.000",
        "latitude": "47.6", "longitude": "-122.3",
        "report_location": {"type": "Point", "coordinates": [-122.33, 47.61]},
        "incident_number": "F24000001", ":@computed_region_x": "3", "unit": "E12",
    }  # fmt: skip
    assert build(record) == RawRow(
        "F24000001", "2024-01-01T00:00:00.000", "Aid Response", None, None, None,
        "1st Av / Pine St", None, None, None, 47.61, -122.33, {"unit": "E12"},
    )  # fmt: skip


def test_many_key_sets_are_remembered_within_a_bound() -> None:
    build = socrata._mapped_row(_spec(NO_LOCATION))
    for i in range(socrata._KEY_SETS * 2 + 5):
        record = {"id": str(i), f"c{i}": "v", "when": "x"}
        assert build(record).extra == {f"c{i}": "v"}
    assert 0 < len(build.__globals__["candidates"]) <= socrata._KEY_SETS


def test_location_shapes() -> None:
    spec, build = BUILDERS[0]
    for where in (
        {"type": "Point", "coordinates": [-122.3, 47.6]},
        {"type": "Point", "coordinates": [-122.3, "x"]},
        {"type": "Point", "coordinates": ["-122.3", 47.6]},
        {"type": "Point", "coordinates": [-122.3, 47]},
        {"type": "Point", "coordinates": [0.0, 0.0]},
        {"type": "Point", "coordinates": [-122.3, 47.6, 3.0]},
        {"type": "Point", "coordinates": (-122.3, 47.6)},
        {"latitude": "47.6", "longitude": "-122.3"},
        "POINT (-122.3 47.6)",
        [],
        None,
    ):
        record = {
            "incident_number": "1",
            "report_location": where,
            "latitude": "1",
            "longitude": "2",
        }
        got, expected = build(record), _reference(spec, record)
        assert got == expected, where
        assert type(got.latitude) is type(expected.latitude), where  # (47 == 47.0)


# --- one pass: a saved page's records straight to the archive's columns ----------------------

SETTINGS = [
    {"timezone": "America/Los_Angeles"},
    {"timezone": "America/Chicago", "precision": "exact", "default_city": "Seattle"},
    {"timezone": "UTC", "city_codes": {"SEA": "Seattle"}, "default_city": "Tacoma"},
]
NORMALIZERS = [(spec, build, socrata._page_normalizer(spec)) for spec, build in BUILDERS]


def _general(build: Any, records: list[Any], settings: dict[str, Any]) -> Any:
    """The stored columns of the page the general way (the builder, normalize_rows, then
    StoredIncidents.of), or the exception that way raises."""
    try:
        rows = [build(record) for record in records]
        return StoredIncidents.of(normalize_rows(rows, feed="f", **settings)).columns
    except Exception as exc:  # noqa: BLE001 - compared: the one pass must not answer
        return exc


@settings(max_examples=150, deadline=None)
@given(st.lists(records, min_size=1, max_size=8), st.booleans(), st.sampled_from(SETTINGS))
def test_one_pass_gives_the_general_columns_or_declines(
    rows: list[dict[str, Any]], unique: bool, options: dict[str, Any]
) -> None:
    """Where the one pass answers, it is what the general way stores, value for value (and
    type for type: ``repr``); where the general way raises, it never answers."""
    for spec, build, normalizer in NORMALIZERS:
        page = [dict(record) for record in rows]
        id_column = spec.fields.get("incident_id")
        if unique and id_column:  # most pages: an ID a row, all different
            for number, record in enumerate(page):
                record[id_column] = f" F{number} " if number % 2 else f"F{number}"
        general = _general(build, page, options)
        try:
            got = stored_columns(normalizer, page, **options)
        except Exception:  # noqa: BLE001 - it may raise: the general way then says why
            continue
        if got is not None:
            assert not isinstance(general, Exception), (spec.fields, page, general)
            assert repr(got) == repr(general), (spec.fields, page)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(TIMES), st.sampled_from(["137 Pine St", " Pine St ", " ", ""])),
             min_size=1, max_size=6),
    st.sampled_from(SETTINGS),
)  # fmt: skip
def test_one_pass_reads_times_and_addresses_as_the_general_way(
    cells: list[tuple[str, str]], options: dict[str, Any]
) -> None:
    """Pages whose every time may read (the hypothesis test above rarely draws them): the
    one pass's inline times and address lookups against the general way."""
    spec, build, normalizer = NORMALIZERS[0]
    page = [
        {"incident_number": f"F{n}", "datetime": when, "address": where, "type": " Aid "}
        for n, (when, where) in enumerate(cells)
    ]
    general = _general(build, page, options)
    try:
        got = stored_columns(normalizer, page, **options)
    except Exception:  # noqa: BLE001 - it may raise: the general way then says why
        assert isinstance(general, Exception)
        return
    if got is not None:
        assert repr(got) == repr(general), page
    else:
        assert isinstance(general, Exception), page


def test_one_pass_takes_a_saved_seattle_page_and_declines_the_rest() -> None:
    """A whole saved page in one pass (the ingest case), the same poll as ``parse_page``;
    a page with an incident on two rows, a page answering a request, an error answer or a
    scraper without a mapping go the general way (None)."""
    feed = default_feed("seattle-fire-open-data")
    body = (FIXTURES / "socrata" / "seattle_fire_911.json").read_bytes()
    general = parse_page(feed, body)
    got = stored_page(feed, body)
    assert got is not None and isinstance(got.incidents, StoredIncidents)
    assert repr(got.incidents.columns) == repr(StoredIncidents.of(general.incidents).columns)
    assert replace(got, incidents=[]) == replace(general, incidents=[])
    records = json.loads(body)
    twice = json.dumps([*records, records[0]]).encode()
    assert stored_page(feed, twice) is None and parse_page(feed, twice).incidents
    assert stored_page(feed, b'{"error": true, "message": "x"}') is None
    assert stored_page(feed, b"[]") is None
    request = Request(feed.url, meta={"kind": "page", "offset": 0})
    assert feed.scraper.parse.stored(Page(body, request=request), timezone=feed.zone) is None
    assert stored_page(default_feed("seattle-fire"), body) is None  # (an HTML scraper)
