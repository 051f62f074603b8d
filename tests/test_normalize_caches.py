"""The normalizer's memos and fast paths: bounded, and the same answers as the long way.

Ingest speed rests on memoizing per string (addresses, times, whole single-row incidents), on
a per-template memo of addresses (the street with its house number written as ``1``s), on
usaddress labels memoized per shape, and on a ``datetime.fromisoformat`` fast path for ISO
times. Each is checked here against the uncached computation on many inputs: every address
string the address tests name, the real pages' addresses (when ``../shared`` is there),
random house numbers and times (hypothesis); and every memo must have a bound, so a daemon
that runs for months keeps a flat memory.
"""

from __future__ import annotations

import ast
import csv
import importlib
import json
import math
import pkgutil
import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import usaddress
from hypothesis import given, settings
from hypothesis import strategies as st

import dispatchwatch.normalize
from dispatchwatch.errors import ConfigError
from dispatchwatch.normalize import coordinates, normalize_rows, place, postal, rows, time
from dispatchwatch.scraper import RawRow

TESTS = Path(__file__).resolve().parent
REAL = TESTS.parents[1] / "shared" / "real-pages"
CODES = [(), (("MKE", "Milwaukee"),), (("SEA", "Seattle"), ("WA", "Washington"))]
NUMBERS = [
    "0",
    "00",
    "05",
    "10",
    "100",
    "1000",
    "1200",
    "054",
    "9",
    "94",
    "130",
    "12345",
    "1234567",
]


def _strings_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = " ".join(node.value.split())
            if text and len(text) < 200 and any(c.isalpha() for c in text):
                found.add(text)
    return found


def _real_addresses() -> set[str]:
    found: set[str] = set()
    if not REAL.is_dir():
        return found
    for path in sorted(REAL.glob("*/socrata_*.json")):
        for row in json.loads(path.read_text(encoding="utf-8")):
            for key in ("address", "block_address", "intersection_name", "location"):
                if isinstance(row.get(key), str):
                    found.add(row[key])
    for path in sorted(REAL.glob("*/*.csv")):
        with path.open(encoding="utf-8") as stream:
            found.update(r["location"] for r in csv.DictReader(stream) if r.get("location"))
    return {" ".join(t.split()) for t in found if t.strip()}


# Every address the address tests name (and their other strings: junk is welcome), the real
# pages' addresses, and a few shapes each rule cares about.
ADDRESSES = sorted(
    _strings_of(TESTS / "test_address.py")
    | _strings_of(TESTS / "test_normalize.py")
    | _real_addresses()
    | {
        "15th Av NE / NE 45th St",
        "SUMMIT AVE",
        "EB I 94",
        "BLK ELM ST",
        "BLOCK OF ELM",
        "1/2 ELM ST",
        "ELM ST APT 3",
        "ELM ST, SEATTLE, WA 98101",
        "AILSA AV BALTIMORE MD",
        "N 12TH ST,MKE",
        "EB AT N 27TH ST",
        "N11500 PILGRIM RD",
        "ELM ST 1200",
        "ELM ST (REAR)",
        "# 12",
        "XX SWAN ST",
        "ELM ST / 1200 OAK AV",
        "100 BROADWAY NEW YORK NY 10001",
    }  # fmt: skip
)


def test_the_corpus_is_not_empty() -> None:
    assert len(ADDRESSES) > 300


def test_place_by_template_is_place_worked_out() -> None:
    """The template memo gives, for every address behind every kind of house number, what
    splitting and reducing that very text gives."""
    rng = random.Random(11)
    checked = 0
    for rest in ADDRESSES:
        number, space, tail = rest.partition(" ")
        if space and number.isdigit():  # the corpus' own number goes: ours come instead
            rest = tail
        for number in [*rng.sample(NUMBERS, 3), str(rng.randint(1, 99999))]:
            text = f"{number} {rest}"
            for codes in CODES:
                for exact in (False, True):
                    expected = _outcome(place._direct, text, codes, "Default", exact)
                    got = _outcome(place.place.__wrapped__, text, codes, "Default", exact)
                    assert got == expected, (text, codes, exact)
                    checked += 1
    assert checked > 10_000


def _outcome(function, *args):  # type: ignore[no-untyped-def]
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - the same error is the same answer
        return type(exc), str(exc)


@given(
    number=st.from_regex(r"[0-9]{1,7}", fullmatch=True),
    street=st.sampled_from(ADDRESSES),
    tail=st.sampled_from(["", " NE", ", SEATTLE, WA 98101", " BALTIMORE MD", ",MKE", " APT 3"]),
    exact=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_place_by_template_property(number: str, street: str, tail: str, exact: bool) -> None:
    text = " ".join(f"{number} {street}{tail}".split())
    for codes in CODES:
        assert place.place.__wrapped__(text, codes, None, exact) == place._direct(
            text, codes, None, exact
        )


def test_usaddress_labels_by_shape_are_its_own_labels() -> None:
    """Labels memoized per shape (numbers as 1s and trailing zeros) are those usaddress gives
    the text itself, for every address ending in a state (and ZIP code)."""
    rng = random.Random(5)
    checked = 0
    for rest in rng.sample(ADDRESSES, 500):
        base = " ".join(f"{rng.choice(['1200', '0', str(rng.randint(1, 99999))])} {rest}".split())
        for text in (f"{base} WA 98101".upper(), f"{base} MD".upper(), f"{base} NE".upper()):
            try:
                expected = usaddress.parse(text)
            except Exception:  # noqa: BLE001
                expected = None
            assert postal._parse(text) == expected, text
            checked += 1
    assert checked == 1500


def _times(rng: random.Random) -> list[str]:
    moment = datetime(1990, 1, 1) + timedelta(seconds=rng.randrange(0, 40 * 365 * 86400))
    if rng.random() < 0.3:  # around the DST changes, both ways
        moment = datetime(2024, rng.choice([3, 11]), rng.randint(1, 14), rng.randint(0, 3),
                          rng.randint(0, 59), rng.randint(0, 59))  # fmt: skip
    iso = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return [iso, f"{iso}.000", f"{iso}.123456", f"{iso}Z", f"{iso}.5Z", iso.replace("T", " ")]


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "America/Chicago", "UTC", "Asia/Kolkata"])
def test_iso_fast_path_is_the_general_reader(zone: str) -> None:
    rng = random.Random(zone)
    odd = [
        "2024-02-30T01:00:00", "2024-03-10T24:00:00", "2024-11-03T24:00:00.000",
        "2024-13-01T00:00:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59", "0000-01-01T00:00:00",
        "2024-03-10T02:30:00", "2024-11-03T01:30:00", "2024-01-01T00:00:60", "2024-01-01 00:00:00Z",
    ]  # fmt: skip
    for text in odd + [t for _ in range(3000) for t in _times(rng)]:
        expected = _outcome(time._read_text, text, zone)
        assert _outcome(time._text_to_utc.__wrapped__, text, zone) == expected, text
        # The per-hour path answers what it can, the same, and leaves the rest to the others.
        assert time._fast_iso(text, zone) in (None, expected), text
        assert _outcome(time.to_utc, text, zone) == expected, text


# Zones with DST both ways, one whose changes were at 00:01 (inside an hour: Goose Bay until
# 2010), zones whose offsets are not whole hours (one changes at 02:45), UTC; and the years
# of local mean time (1883: an offset of seconds) and of rule changes.
ZONES = ["America/Los_Angeles", "America/Chicago", "Europe/London", "America/Goose_Bay",
         "Australia/Lord_Howe", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham", "UTC"]  # fmt: skip


@pytest.mark.parametrize("zone", ZONES)
def test_per_hour_utc_is_exact_around_every_transition(zone: str) -> None:
    """Times all through each hour (its first and last seconds too) of the days around each
    change of offset in a few years, read hour by hour, are what reading each value with
    zoneinfo gives: the ambiguous fall-back hour and the missing spring-forward hour
    included."""
    time._utc_hour.cache_clear()
    time._ISO_HEADS.clear()
    tz = ZoneInfo(zone)
    days = {datetime(2024, 7, 1)}
    for year in (1883, 1918, 1974, 2006, 2007, 2009, 2024, 2037):
        start = datetime(year, 1, 1)
        offset = tz.utcoffset(start)
        for day in range(366):
            moment = start + timedelta(days=day)
            if tz.utcoffset(moment) != offset:
                days.update({moment - timedelta(days=1), moment})
                offset = tz.utcoffset(moment)
    checked = 0
    for day in sorted(days):
        for hour in range(48):
            for minute, second in ((0, 0), (0, 1), (7, 3), (30, 0), (45, 30), (59, 58), (59, 59)):
                moment = day + timedelta(hours=hour, minutes=minute, seconds=second)
                text = moment.strftime("%Y-%m-%dT%H:%M:%S")
                for value in (text, f"{text}.250", text.replace("T", " "), f"{text}Z"):
                    assert _outcome(time.to_utc, value, zone) == _outcome(
                        time._read_text, value, zone
                    ), value
                    checked += 1
    assert checked > 1_000


def _row(rng: random.Random, incident_id: str) -> RawRow:
    def pick(*values: object) -> object:
        return rng.choice(values)

    return RawRow(
        incident_id,
        pick("2024-03-31T18:30:18.000", "3/31/2024 6:30:18 PM", None, "2024-11-03T01:30:00"),
        pick(None, " Aid  Response ", "Medic"),
        pick(None, "1"),
        pick(None, "active"),
        pick(None, "closed"),
        pick(None, "", *rng.sample(ADDRESSES, 3), f"{rng.randint(1, 9999)} 15th Av NE"),
        pick(None, "D1"),
        pick(None, "B2"),
        pick(None, "E25, L1", ["M1", "E25 M1"], ("E2",)),
        pick(None, "47.601641", 47.6016412, "x", 0),
        pick(None, "-122.33", -122.329, True),
        pick({}, {}, {"a": 1}),
    )


@pytest.mark.parametrize("precision", ["block", "exact"])
def test_single_rows_memoized_are_merged_rows(precision: str) -> None:
    """An incident of one row, through the memo (cold and warm), is what merging that one
    row gives."""
    rng = random.Random(precision)
    page = [_row(rng, f"I{n}") for n in range(2000)]
    options = {
        "feed": "f", "timezone": "America/Los_Angeles", "city_codes": {"MKE": "Milwaukee"},
        "default_city": "Seattle", "precision": precision,
    }  # fmt: skip
    codes = (("MKE", "Milwaukee"),)
    expected = [
        rows._merge(
            "f", row.incident_id, [(time.to_utc(row.received, "America/Los_Angeles"), row)],
            codes, "Seattle", precision == "exact",
        )
        for row in page
    ]  # fmt: skip
    assert normalize_rows(page, **options) == expected  # type: ignore[arg-type]
    assert normalize_rows(page, **options) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("precision", ["block", "exact"])
def test_the_one_pass_is_the_grouped_pass(precision: str) -> None:
    """normalize_rows' one pass (every ID once) gives what grouping the rows first gives:
    pages of unique IDs, with a repeated ID (merged), with an ID missing or blank, with an
    unreadable time (the same error), and rows given as a generator."""
    rng = random.Random(f"one pass {precision}")
    options = {
        "feed": "f", "timezone": "America/Los_Angeles", "city_codes": {"MKE": "Milwaukee"},
        "default_city": "Seattle", "precision": precision,
    }  # fmt: skip
    codes = (("MKE", "Milwaukee"),)
    for round_ in range(300):
        size = rng.randint(0, 30)
        page = [_row(rng, f"I{n}") for n in range(size)]
        if page and round_ % 3 == 0:  # a repeated ID, spelled alike or with spaces
            twin = rng.randrange(size)
            page.insert(rng.randint(0, size), _row(rng, rng.choice(["I", " I", "I "]) + str(twin)))
        if page and round_ % 7 == 0:
            page[rng.randrange(len(page))].incident_id = rng.choice(["", "  ", None, "I 1"])
        if page and round_ % 11 == 0:
            page[rng.randrange(len(page))].received = rng.choice(["soon", "2/30/2024 01:00:00"])
        expected = _outcome(
            rows._grouped, page, "f", "America/Los_Angeles", codes, "Seattle", precision == "exact"
        )
        assert _outcome(lambda p: normalize_rows(p, **options), page) == expected
        assert _outcome(lambda p: normalize_rows(iter(p), **options), page) == expected


def _memos() -> list[tuple[str, object]]:
    """Every memo (an object with ``cache_info``) in the normalizer's modules and the import
    row reader."""
    modules = [
        importlib.import_module(f"dispatchwatch.normalize.{info.name}")
        for info in pkgutil.iter_modules(dispatchwatch.normalize.__path__)
    ] + [importlib.import_module("dispatchwatch.imports.rows")]
    found = []
    for module in modules:
        for name, value in vars(module).items():
            if hasattr(value, "cache_info") and not isinstance(value, type):
                found.append((f"{module.__name__}.{name}", value))
    return found


def test_every_memo_is_bounded() -> None:
    memos = _memos()
    names = {name for name, _ in memos}
    for expected in (
        "dispatchwatch.normalize.place.place",
        "dispatchwatch.normalize.place._template_place",
        "dispatchwatch.normalize.postal._shape_labels",
        "dispatchwatch.normalize.time._utc_hour",
        "dispatchwatch.normalize.time._text_to_utc",
    ):
        assert expected in names
    for name, memo in memos:
        assert memo.cache_info().maxsize is not None, f"{name} is unbounded"  # type: ignore[attr-defined]
        assert memo.cache_info().maxsize <= 65536, name  # type: ignore[attr-defined]


def test_memos_stay_within_their_bound_on_a_long_run() -> None:
    """More distinct rows than any memo holds: every memo stops at its bound."""
    largest = max(m.cache_info().maxsize for _, m in _memos())  # type: ignore[attr-defined]
    start = datetime(2024, 1, 1)
    page: list[RawRow] = []
    for n in range(largest + 5000):
        page.append(
            RawRow(
                f"R{n}",
                (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000"),
                address=f"{n % 50} Street Av NE",
                latitude=str(47 + n / 1e7),
                longitude=-122.0,
            )
        )
        if len(page) == 5000:
            normalize_rows(page, feed="f", timezone="America/Los_Angeles")
            page = []
    for name, memo in _memos():
        info = memo.cache_info()  # type: ignore[attr-defined]
        assert info.currsize <= info.maxsize, name
    full = coordinates.round_coordinate.cache_info()  # one distinct latitude a row
    assert full.currsize == full.maxsize


def test_a_memoized_coordinate_is_not_taken_for_a_boolean() -> None:
    coordinates.round_coordinate.cache_clear()
    assert coordinates.round_coordinate(1.0) == 1.0
    assert coordinates.round_coordinate(True) is None
    assert coordinates.round_coordinate(1, exact=True) == 1.0
    assert coordinates.round_coordinate(True, exact=True) is None


def _us_times(rng: random.Random) -> list[str]:
    moment = datetime(1990, 1, 1) + timedelta(seconds=rng.randrange(0, 40 * 365 * 86400))
    if rng.random() < 0.3:  # around the DST changes, both ways
        moment = datetime(2024, rng.choice([3, 11]), rng.randint(1, 14), rng.randint(0, 3),
                          rng.randint(0, 59), rng.randint(0, 59))  # fmt: skip
    date = f"{moment.month}/{moment.day}/{moment.year}"
    twelve = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    return [
        f"{date} {moment:%H:%M:%S}", f"{date} {moment.hour}:{moment:%M}",
        f"{moment:%m/%d/%Y %H:%M:%S}", f"{date} {twelve}:{moment:%M:%S} {meridiem}",
        f"{date} {twelve}:{moment:%M} {meridiem.lower()}", f"{date} {moment:%H:%M:%S}.250",
        f"{date}  {moment:%H:%M}", f"{date} {twelve:02d}:{moment:%M:%S} {meridiem}",
    ]  # fmt: skip


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "America/Chicago", "UTC", "Asia/Kolkata"])
def test_us_fast_path_is_the_general_reader(zone: str) -> None:
    """``M/D/YYYY H:MM[:SS] [AM|PM]`` read per hour gives what the regex reader gives, the
    odd and impossible values included (those the fast path leaves to the general reader)."""
    rng = random.Random(f"us {zone}")
    odd = [
        "2/30/2024 01:00:00", "3/10/2024 24:00:00", "11/3/2024 24:00", "3/10/2024 24:30:00",
        "13/1/2024 00:00:00", "1/1/0001 00:00:00", "12/31/9999 23:59:59", "1/1/0000 00:00:00",
        "3/10/2024 02:30:00", "11/3/2024 01:30:00", "1/1/2024 00:00:60", "1/1/2024 00:60:00",
        "1/1/2024 0:05 AM", "1/1/2024 0:05 PM", "1/1/2024 12:00 AM", "1/1/2024 12:00 PM",
        "1/1/2024 13:00 PM", "1/1/2024 25:00", "00/1/2024 01:00", "1/00/2024 01:00",
        "3/10/2024 2:30 AM", "11/3/2024 1:30:59 AM", "1/1/2024 99:00",
    ]  # fmt: skip
    for text in odd + [t for _ in range(3000) for t in _us_times(rng)]:
        expected = _outcome(time._read_text, text, zone)
        assert time._fast_us(text, zone) in (None, expected), text
        assert _outcome(time.to_utc, text, zone) == expected, text
    if zone != "Asia/Kolkata":  # (an offset of whole hours: the common form is fast)
        assert time._fast_us("7/4/2024 6:30:18 PM", zone) is not None


@pytest.mark.parametrize("zone", ZONES)
def test_us_per_hour_utc_is_exact_around_every_transition(zone: str) -> None:
    """US times all through the hours around each change of offset (as the ISO test above)."""
    time._us_hour.cache_clear()
    time._utc_hour.cache_clear()
    time._US_HEADS.clear()
    tz = ZoneInfo(zone)
    changes = [datetime(2024, 7, 1)]
    for year in (1883, 1918, 1974, 2007, 2024, 2037):
        start = datetime(year, 1, 1)
        offset = tz.utcoffset(start)
        for day in range(366):
            moment = start + timedelta(days=day)
            if tz.utcoffset(moment) != offset:
                changes.append(moment)
                offset = tz.utcoffset(moment)
    checked = 0
    for moment in changes:
        for hour in range(-24, 24):
            for minute, second in ((0, 0), (30, 0), (59, 59)):
                at = moment + timedelta(hours=hour, minutes=minute, seconds=second)
                twelve = at.hour % 12 or 12
                for value in (
                    f"{at.month}/{at.day}/{at.year} {at:%H:%M:%S}",
                    f"{at.month}/{at.day}/{at.year} {twelve}:{at:%M} {at:%p}",
                ):
                    assert _outcome(time.to_utc, value, zone) == _outcome(
                        time._read_text, value, zone
                    ), value
                    checked += 1
    assert checked > 100


@settings(max_examples=400, deadline=None)
@given(
    st.integers(0, 13), st.integers(0, 32), st.sampled_from([1999, 2016, 2024, 9999]),
    st.integers(0, 25), st.integers(0, 61), st.integers(0, 61),
    st.sampled_from(["", " ", "  ", ".5", " AM", " PM", ":", "Z"]),
)  # fmt: skip
def test_us_fast_path_on_generated_times(
    month: int, day: int, year: int, hour: int, minute: int, second: int, tail: str
) -> None:
    """Near-miss US times (out-of-range fields, stray tails): the fast path gives the general
    reader's answer or leaves the value to it."""
    for value in (
        f"{month}/{day}/{year} {hour}:{minute:02d}:{second:02d}{tail}",
        f"{month}/{day}/{year} {hour:02d}:{minute}:{second}{tail}",
        f"{month}/{day}/{year} {hour}:{minute:02d}{tail}",
    ):
        expected = _outcome(time._read_text, value.strip(), "America/Chicago")  # (to_utc strips)
        assert time._fast_us(value, "America/Chicago") in (None, expected), value
        assert _outcome(time.to_utc, value, "America/Chicago") == expected, value


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["2024", "1999", "0000", "9999", "20x4"]), st.integers(0, 13),
    st.integers(0, 32), st.sampled_from(["T", " ", "t", "_"]), st.integers(0, 25),
    st.integers(0, 61), st.integers(0, 61),
    st.sampled_from(["", ".000", "Z", ".000Z", ".5", ".123456Z", " Z", "+00:00", ".0000000"]),
)  # fmt: skip
def test_iso_fast_path_on_generated_times(
    year: str, month: int, day: int, sep: str, hour: int, minute: int, second: int, end: str
) -> None:
    """Near-miss ISO times: the fast path gives the general reader's answer or leaves the
    value to it (and to_utc gives that answer)."""
    value = f"{year}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{end}"
    for zone in ("America/Chicago", "UTC"):
        expected = _outcome(time._read_text, value, zone)
        assert time._fast_iso(value, zone) in (None, expected), value
        assert _outcome(time.to_utc, value, zone) == expected, value


def test_us_hour_memo_is_bounded_per_zone() -> None:
    """The per-zone memo in front of ``_us_hour`` (24-hour ``H:MM:SS`` times) stops at its
    bound, keeps to a bounded number of zones, and stores nothing for an unknown zone."""
    time._US_HEADS.clear()
    start = datetime(2020, 1, 1)
    for hour in range(time._HOURS_MAX + 100):
        at = start + timedelta(hours=hour)
        value = f"{at.month}/{at.day}/{at.year} {at.hour}:05:09"
        assert time._fast_us(value, "America/Chicago") == _outcome(
            time._read_text, value, "America/Chicago"
        )
    assert 0 < len(time._US_HEADS["America/Chicago"]) <= time._HOURS_MAX
    with pytest.raises(ConfigError):
        time._fast_us("1/1/2024 10:00:00", "Nowhere/Atlantis")
    assert not time._US_HEADS.get("Nowhere/Atlantis")
    for n in range(time._ZONES_MAX + 3):
        time._hour_memo(time._US_HEADS, f"Zone/{n}", time._us_24_hour)
        time._hour_memo(time._ISO_HEADS, f"Zone/{n}", time._iso_hour)
    assert len(time._US_HEADS) <= time._ZONES_MAX
    assert len(time._ISO_HEADS) <= time._ZONES_MAX
    time._ISO_HEADS.clear()
    for hour in range(time._HOURS_MAX + 100):
        at = start + timedelta(hours=hour)
        assert time._fast_iso(f"{at:%Y-%m-%dT%H}:05:09.000", "UTC") is not None
    assert 0 < len(time._ISO_HEADS["UTC"]) <= time._HOURS_MAX
    with pytest.raises(ConfigError):
        time._fast_iso("2024-01-01T10:00:00", "Nowhere/Atlantis")
    assert not time._ISO_HEADS.get("Nowhere/Atlantis")


def test_rounded_points_are_round() -> None:
    """The binary rounding is ``round(value, 3)``, sign and ties included."""
    rng = random.Random(3)
    values = [rng.uniform(-180, 180) for _ in range(50_000)]
    values += [rng.uniform(-0.01, 0.01) for _ in range(5_000)]
    # Points as sources write them (a few decimals, so exact ties: 47.6005), and thousandths
    # and half-thousandths with the float just below and above.
    values += [float(f"{rng.uniform(-180, 180):.{rng.randint(3, 7)}f}") for _ in range(50_000)]
    for k in range(-180_000, 180_001, 7):
        for base in (k / 1000, (k + 0.5) / 1000):
            values += [base, math.nextafter(base, -math.inf), math.nextafter(base, math.inf)]
    values += [0.0005, 0.0015, -0.0005, -0.0001, 47.6005, -122.3335, 2.675, 1e6 + 0.0005, 1e20]
    values += [math.inf, -math.inf, 5e-324, -5e-324]
    for value in values:
        got, expected = rows._round3(value), round(value, 3)
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected), value
    assert math.isnan(rows._round3(math.nan))


def test_address_cell_memos_are_bounded() -> None:
    """One memo of address cells per feed settings, a few settings at most (the oldest goes
    first), each bounded as every such memo is."""
    page = [RawRow(f"R{n}", None, address=f"{n} Street Av NE") for n in range(50)]
    for city in range(rows._PLACES_MAX + 5):
        normalize_rows(page, feed="f", timezone="UTC", default_city=f"City {city}")
        assert len(rows._PLACES) <= rows._PLACES_MAX
    assert ((), "City 0", False) not in rows._PLACES
    assert ((), f"City {rows._PLACES_MAX + 4}", False) in rows._PLACES
    assert all(memo.maxsize == rows._PLACE_CELLS for memo in rows._PLACES.values())
    memo = rows._Memo(str.upper, 10)
    for n in range(100):
        assert memo[f"a{n % 37}"] == f"A{n % 37}"
        assert len(memo) <= 10
