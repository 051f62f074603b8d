"""New Orleans' row reader, generated once per header, reads what its reference form reads.

``_Columns.read`` (generated code: each cell at its index, the extra columns unrolled) must
give the row and the MapX/MapY still to project that ``_read`` (the plain reference form)
gives, for any header (columns present or not, in any case and order, other and system
columns, names that are not identifiers) and any cell values.
"""

from __future__ import annotations

import importlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

nola = importlib.import_module("dispatchwatch.scrapers.new_orleans_police")

KNOWN = [
    "NOPD_Item", "Type_", "Type", "TypeText", "Priority", "InitialType", "InitialTypeText",
    "InitialPriority", "MapX", "MapY", "TimeCreate", "TimeDispatch", "TimeArrive", "TimeClosed",
    "Disposition", "DispositionText", "SelfInitiated", "Beat", "BLOCK_ADDRESS", "Zip",
    "PoliceDistrict", "Location",
]  # fmt: skip
OTHERS = ["Custom Col", ":id", ":@computed_region_x", "a\"b'c\n", "def", "k0", "extra", "x-y"]

cells = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "  x ",
            "A1",
            "1/1/2016 00:05:15",
            "054XX Laurel St",
            "Approx Loc: 015XX X",
            "(29.9224883, -90.0242382)",
            "POINT (-90.07 29.95)",
            " POINT (-90.07 29.95)",
            "point(-80 29.95)",
            "(0.0, 0.0)",
            " (29.95, -90.07) ",
            "(29.95,-90.07",
            "3691901",
            "549981",
            "0",
            "-5",
            "abc",
        ]
    ),
    st.text(max_size=8),
    st.none(),
    st.booleans(),
    st.integers(-5, 4_000_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just({"type": "Point", "coordinates": [-90.07, 29.95]}),
    st.just({"latitude": "29.95", "longitude": "-90.07"}),
    st.just({"coordinates": [0, 0]}),
    st.just([1, 2]),
)


def _outcome(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - the same error is the same answer
        return type(exc), str(exc)


@st.composite
def headers(draw: st.DrawFn) -> tuple[str, ...]:
    names = draw(st.lists(st.sampled_from(KNOWN + OTHERS), max_size=26))
    cased = [draw(st.sampled_from([n, n.lower(), n.upper()])) for n in names]
    return tuple(cased)


@settings(max_examples=600, deadline=None)
@given(headers(), st.data())
def test_generated_reader_is_the_reference(header: tuple[str, ...], data: st.DataObject) -> None:
    columns = nola._Columns(header)
    values = tuple(data.draw(st.lists(cells, min_size=len(header), max_size=len(header))))
    assert _outcome(columns.read, values) == _outcome(nola._read, columns, values)


def test_the_bench_shape_of_row() -> None:
    """A row as the bench's CSV has it: ``(lat, lon)`` Location (read; MapX/MapY projected
    only when it is junk), a zero-padded block, empty TimeArrive left out of extra."""
    header = (
        "NOPD_Item", "Type_", "TypeText", "Priority", "InitialType", "InitialTypeText",
        "InitialPriority", "MapX", "MapY", "TimeCreate", "TimeDispatch", "TimeArrive",
        "TimeClosed", "Disposition", "DispositionText", "SelfInitiated", "Beat",
        "BLOCK_ADDRESS", "Zip", "PoliceDistrict", "Location",
    )  # fmt: skip
    values = (
        "A000000016", "TS", "TRAFFIC STOP", "1J", "SS", "SUSPICIOUS PERSON", "1F", "3691901",
        "549981", "1/1/2016 00:05:15", "1/1/2016 00:36:15", "", "1/1/2016 01:10:15", "RTF",
        "REPORT TO FOLLOW", "Y", "3E06", "054XX S Carrollton Ave", "70118", "6",
        "(30.0224883, -90.1245518)",
    )  # fmt: skip
    columns = nola._Columns(header)
    raw, state_plane = columns.read(values)
    assert (raw, state_plane) == nola._read(columns, values)
    assert state_plane is None
    assert (raw.latitude, raw.longitude) == (30.0224883, -90.1245518)
    assert raw.address == "54XX S Carrollton Ave"
    assert "time_arrive" not in raw.extra and raw.extra["time_closed"] == "1/1/2016 01:10:15"
    assert nola.row(dict(zip(header, values, strict=True))) == nola.row.many(header, [values])[0]
    # Junk (0, 0), out of the parish, unreadable: MapX/MapY projected instead.
    for junk in ("(0.0, 0.0)", "(40.1, -90.1)", "(30.0, x)", "(30.0)"):
        junk_values = (*values[:-1], junk)
        raw, state_plane = columns.read(junk_values)
        assert (raw, state_plane) == nola._read(columns, junk_values)
        assert state_plane == ("3691901", "549981") and raw.latitude is None
        projected = nola.row.many(header, [junk_values])[0]
        assert projected == nola.row(dict(zip(header, junk_values, strict=True)))
        assert 29.9 < projected.latitude < 30.1 and -90.2 < projected.longitude < -90.0


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="( )-,.0123456789x\t", max_size=24)
    | st.tuples(st.floats(-200, 200), st.floats(-200, 200)).map(lambda p: f"({p[0]}, {p[1]})")
)
def test_lat_lon_text_is_read_as_imports_read_it(text: str) -> None:
    """``(lat, lon)`` Location text: what ``dispatchwatch.imports.rows.parse_point`` reads."""
    from dispatchwatch.imports.rows import parse_point

    if text.lstrip()[:1] == "(":
        assert nola.point(text) == parse_point(text)
