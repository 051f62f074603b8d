"""A row function's ``many`` form (New Orleans' reader): the rows of a file read many at a
time, MapX/MapY projected in one pyproj call, must equal the rows read one by one."""

from __future__ import annotations

import importlib
from typing import Any

HEADER = [
    "NOPD_Item", "Type_", "TypeText", "Priority", "MapX", "MapY", "TimeCreate", "TimeClosed",
    "Disposition", "DispositionText", "BLOCK_ADDRESS", "Zip", "PoliceDistrict", "Location",
    "Custom Col", ":id", "zip",
]  # fmt: skip
RECORDS: list[list[Any]] = [
    # a point in the parish: kept; another zip column equal but for case: the last wins
    ["A1", "21", "COMPLAINT", "1H", "3691901", "549981", "1/1/2016 00:10:30", "", "RTF",
     "REPORT", "012XX Tulane Ave", "70118", "6", "POINT (-90.07 29.95)", "x", ":1", "70119"],
    # junk point, zero MapX/MapY: no coordinates; approximate block
    ["A2", "21", "COMPLAINT", "1H", "0", "0", "1/1/2016 00:11:30", "1/1/2016 01:00:00",
     "RTF", "", "Approx Loc: 015XX Iberville St", "", "6", "(0.0, 0.0)", "", "", ""],
    # unparsable MapX; blank cells
    ["A3", "21", "", "1H", "abc", "549981", "1/1/2016 00:12:30", "", "RTF", "REPORT", "",
     "70118", "6", "", "  ", "", ""],
    # projected outside the parish: dropped
    ["A4", "21", "X", "1H", "9991901", "9549981", "1/1/2016 00:13:30", "", "RTF", "REPORT",
     "Canal St & Bourbon St", "70118", "6", "POINT (-80 29.95)", "y", "", ""],
    # a short row and a long one (read through row() as dict(zip(...)) reads them)
    ["A5", "21", "X", "1H", "3691901", "549981", "1/1/2016 00:14:30"],
    ["A6", "21", "X", "1H", "3671901", "529981", "1/1/2016 00:15:30", "", "RTF", "REPORT",
     "001XX Canal St", "70118", "6", "", "z", "", "", "extra-cell"],
    # projected from MapX/MapY
    ["A7", "21", "X", "1H", "3671901", "529981", "1/1/2016 00:16:30", "", "RTF", "REPORT",
     "001XX Canal St", "70118", "6", "", "z", "", ""],
]  # fmt: skip


def test_many_equals_one_by_one() -> None:
    nola = importlib.import_module("dispatchwatch.scrapers.new_orleans_police")
    one_by_one = [nola.row(dict(zip(HEADER, r, strict=False))) for r in RECORDS]
    many = nola.row.many(HEADER, RECORDS)
    assert many == one_by_one
    assert [r.latitude is not None for r in many] == [True, False, False, False, True, True, True]
    # a header repeating a name exactly: every row goes through row() (dict(zip) drops one)
    twice = [*HEADER, "Custom Col"]
    rows = [[*r, "again"] for r in RECORDS if len(r) == len(HEADER)]
    assert nola.row.many(twice, rows) == [nola.row(dict(zip(twice, r, strict=True))) for r in rows]

    # a row the reader cannot read is its exception, in its place
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("no text")

    cells = [*RECORDS[0]]
    cells[2] = Unprintable()
    bad = nola.row.many(HEADER, [cells, RECORDS[6]])
    assert isinstance(bad[0], ValueError) and bad[1] == one_by_one[6]
