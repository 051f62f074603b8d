"""Address shapes found on real feeds that used to leak or break (issue 8, item 5).

Every input named in the issue is here with the exact value that must be stored; the property
test builds the same shapes around random house numbers, streets and tails and checks that no
house number, unit, ZIP code or coordinate survives. The shared helpers (``assert_block_level``,
the street and house-number strategies) are those of ``test_normalize``.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from test_normalize import STREETS, assert_block_level, house_numbers

from dispatchwatch.normalize import block_address, normalize_rows, split_city
from dispatchwatch.scraper import RawRow


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Numbered routes are not house numbers.
        ("8611 SW LOOP 410, UNIT 520", "86XX SW LOOP 410"),
        ("N LOOP 1604 W", "N LOOP 1604 W"),
        ("94 EB AT N 27TH ST", "94 EB AT N 27TH ST"),
        ("FM 1960", "FM 1960"),
        ("NB MD 300 N AT NB I 95 N", "NB MD 300 N AT NB I 95 N"),
        ("10775 N US 59 FWY", "107XX N US 59 FWY"),
        # A "/" inside a token is no intersection.
        ("SEVEN 1/2 MILE RD", "SEVEN 1/2 MILE RD"),
        ("I 45 N/B", "I 45 N/B"),
        ("I 45 N/B / 1512 ELM ST", "I 45 N/B / 15XX ELM ST"),
        # House numbers glued to a prefix (edge punctuation goes, as it always did).
        ("REAR-1512 ELM ST", "REAR 15XX ELM ST"),
        ("NEAR:1512 ELM ST", "NEAR: 15XX ELM ST"),
        # ... also with no street after it: after NEAR, REAR... a number is a house.
        ("NEAR:1512", "NEAR: 15XX"),
        ("REAR-1512", "REAR 15XX"),
        ("ACROSS FROM 1512", "ACROSS FROM 15XX"),
        ("SB I5 AT 130", "SB I5 AT 130"),  # Seattle's "at NE 130th St" stays
        ("NEAR 94 EB", "NEAR 94 EB"),  # a route before its direction of travel
        # A flag between asterisks is no part of the place, wherever it stands.
        ("**CODE RED**1127 N WATER ST", "11XX N WATER ST"),
        ("**CODE RED** 1127 N WATER ST", "11XX N WATER ST"),
        ("1127 N WATER ST **CODE RED**", "11XX N WATER ST"),
        ("*HOT*1127 N WATER ST / W WELLS ST", "11XX N WATER ST / W WELLS ST"),
        ("**N WATER ST**", "N WATER ST"),  # the whole address starred: kept
        ("**1127 N WATER ST**", "11XX N WATER ST"),
        # Routes keep their numbers, a house number before them is reduced.
        ("9900 E LOOP 820", "99XX E LOOP 820"),
        ("9900 E LOOP 820 S", "99XX E LOOP 820 S"),
        ("1512 FM 1960 RD W", "15XX FM 1960 RD W"),
        ("1512 US HWY 59 N", "15XX US HWY 59 N"),
        ("1512 COUNTY RD 120", "15XX COUNTY RD 120"),
        ("1512 E LOOP 820 SVC RD", "15XX E LOOP 820 SVC RD"),  # after a house: the route's
        ("RT 1512 SUMMIT AVE", "RT 15XX SUMMIT AVE"),  # no house before: a house number
        ("1512 RM 620 N", "15XX RM 620 N"),  # a Texas ranch road, not a room
        ("1512-1520 RM 620 N", "15XX RM 620 N"),  # the same after a range (was "15XX")
        ("0-1 RM 1", "0XX RM 1"),  # found by the route-number property test
        ("1512-A RM 620", "15XX RM 620"),
        ("15XX RM 1", "15XX RM 1"),  # a block already: reducing again changes nothing
        ("1512 ELM ST RM 12", "15XX ELM ST"),  # a room
        ("MM 12 I 5", "MM 12 I 5"),
        ("SR-520 / 1512 ELM ST", "SR-520 / 15XX ELM ST"),  # a route keeps its hyphen
        # ... or to the street.
        ("1512ELM ST", "15XX ELM ST"),
        ("4700BLK S 6TH ST", "47XX S 6TH ST"),
        # Units go entirely, wherever they are.
        ("1512 ELM ST APT 12-B", "15XX ELM ST"),
        ("APT 4 1512 ELM ST", "15XX ELM ST"),
        ("#4 1512 ELM ST", "15XX ELM ST"),
        ("1512 ELM ST APT 12-B, SEATTLE", "15XX ELM ST, SEATTLE"),
        # ZIP codes are dropped, not reduced.
        ("1512 ELM ST SEATTLE WA 98101", "15XX ELM ST SEATTLE WA"),
        ("1512 ELM ST, SEATTLE, WA 98101-1234", "15XX ELM ST, SEATTLE, WA"),
        # Exact coordinates written as text are dropped.
        ("1512 ELM ST LL(47.60164,-122.32766)", "15XX ELM ST"),
        ("LL(47.60164,-122.32766)", None),
        ("1512 ELM ST (47.60164, -122.32766)", "15XX ELM ST"),
        # New Orleans writes blocks zero-padded, and "XX" for 0-99.
        ("054XX Laurel St", "54XX LAUREL ST"),
        ("Approx Loc: 015XX Iberville St", "APPROX LOC: 15XX IBERVILLE ST"),
        ("XX Swan St", "0XX SWAN ST"),
        ("000XX Main St", "0XX MAIN ST"),
    ],
)
def test_block_address_of_the_issue_shapes(text: str, expected: str | None) -> None:
    assert block_address(text) == expected
    assert_block_level(block_address(text))
    assert block_address(expected) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500 E OAK ST, OAKCREEK, WI", ("500 E OAK ST", "OAKCREEK")),
        ("1512 ELM ST, SEATTLE, WA 98101", ("1512 ELM ST", "SEATTLE")),
        ("1512 ELM ST, SEATTLE WA 98101", ("1512 ELM ST", "SEATTLE")),
        ("1512 Elm St, San Antonio, TX", ("1512 Elm St", "SAN ANTONIO")),
        # Without commas, usaddress labels the place name.
        ("3500 AILSA AV BALTIMORE MD", ("3500 AILSA AV", "BALTIMORE")),
        ("1512 ELM ST SAN ANTONIO TX 78245", ("1512 ELM ST", "SAN ANTONIO")),
        # A code of the feed wins ...
        ("6900 W NORTH AV,WA ", ("6900 W NORTH AV", "Wauwatosa")),
        # ... but a state alone after the street is a state, not a city: it goes.
        ("1512 ELM ST, WI", ("1512 ELM ST", None)),
        ("1512 ELM ST,WI 53202", ("1512 ELM ST", None)),
        ("1512 ELM ST, TX 78245-1234", ("1512 ELM ST", None)),
        # Codes that are no state stay the code they were.
        ("1512 ELM ST, XYZ", ("1512 ELM ST", "XYZ")),
        # "WA" ending a Milwaukee street is a way, not Washington.
        ("1 S BREWERS WA", ("1 S BREWERS WA", None)),
        # Junk is not parsed (the parser's time grows with the text).
        ("X " * 5_000 + "BALTIMORE MD", ("X " * 5_000 + "BALTIMORE MD", None)),
    ],
)
def test_split_city_reads_a_city_state_tail(
    text: str, expected: tuple[str | None, str | None]
) -> None:
    assert split_city(text, {"WA": "Wauwatosa"}, None) == expected


def test_normalize_rows_stores_the_issue_shapes() -> None:
    rows = [
        RawRow("1", "3/31/2024 11:04:58 PM", address="8611 SW LOOP 410, UNIT 520"),
        RawRow("2", "3/31/2024 11:04:58 PM", address="500 E OAK ST, OAKCREEK, WI"),
        RawRow("3", "3/31/2024 11:04:58 PM", address="1512 ELM ST, SEATTLE, WA 98101"),
        RawRow("4", "3/31/2024 11:04:58 PM", address="1512 ELM ST LL(47.60164,-122.32766)"),
        RawRow("5", "3/31/2024 11:04:58 PM", address="**CODE RED**1127 N WATER ST"),
        RawRow("6", "3/31/2024 11:04:58 PM", address="1512 ELM ST, WI"),
        RawRow("7", "3/31/2024 11:04:58 PM", address="9900 E LOOP 820"),
    ]
    stored = normalize_rows(rows, feed="f", timezone="America/Chicago", default_city="Dflt")
    assert [(i.address, i.city) for i in stored] == [
        ("86XX SW LOOP 410", "Dflt"),
        ("5XX E OAK ST", "OAKCREEK"),
        ("15XX ELM ST", "SEATTLE"),
        ("15XX ELM ST", "Dflt"),
        ("11XX N WATER ST", "Dflt"),
        ("15XX ELM ST", "Dflt"),
        ("99XX E LOOP 820", "Dflt"),
    ]
    exact = normalize_rows(rows, feed="f", timezone="America/Chicago", precision="exact")
    assert [(i.address, i.city) for i in exact][1:3] == [
        ("500 E OAK ST", "OAKCREEK"),
        ("1512 ELM ST", "SEATTLE"),
    ]


# (written before the house number, how it is stored): prefixes glued to the number.
GLUED_PREFIXES = st.sampled_from(
    [("", ""), ("REAR-", "REAR "), ("NEAR:", "NEAR: "), ("X **CODE RED**", "X ")]
    + [("**CODE RED**", ""), ("*HOT* ", "")]
    + [("APT 4 ", ""), ("#12 ", ""), ("UNIT 5B, ", "")]
)
# (written after the street, the city found): units, "City, ST ZIP" tails, coordinates.
TAILS = st.sampled_from(
    [
        ("", None),
        (" APT 12-B", None),
        (", UNIT 520", None),
        (" APT 3, SEATTLE, WA 98101", "SEATTLE"),
        (", OAKCREEK, WI", "OAKCREEK"),
        (", SAN ANTONIO, TX 78245-1234", "SAN ANTONIO"),
        (" LL(47.60164,-122.32766)", None),
        (" (47.6016, -122.3276)", None),
    ]
)


@given(number=house_numbers(), street=STREETS, prefix=GLUED_PREFIXES, tail=TAILS)
@example(
    number=(8611, "8611"),
    street="SW LOOP 410",
    prefix=("", ""),
    tail=(", UNIT 520", None),
)
def test_no_house_number_unit_zip_or_coordinate_survives(
    number: tuple[int, str],
    street: str,
    prefix: tuple[str, str],
    tail: tuple[str, str | None],
) -> None:
    n, written = number
    before, kept = prefix
    after, city = tail
    text = f"{before}{written} {street}{after}"
    address, found_city = split_city(text, {}, None)
    stored = block_address(address)
    assert found_city == city
    assert stored == f"{kept}{n // 100}XX {street.upper()}"
    assert_block_level(stored)
    assert block_address(stored) == stored


@given(number=house_numbers(), street=STREETS)
def test_a_house_number_glued_to_the_street_is_the_hundred_block(
    number: tuple[int, str], street: str
) -> None:
    n, written = number
    first_word = street.split()[0]
    if not first_word.isalpha() or len(first_word) < 2 or not written.isdigit():
        return  # "1512N 29TH": a letter alone is the house number's; "12TH": an ordinal
    stored = block_address(f"{written}{street}")
    assert stored == f"{n // 100}XX {street.upper()}"


# Words that place a call by a house, with the punctuation sources glue them with.
BY_A_HOUSE = st.sampled_from(["NEAR", "REAR", "BEHIND", "IFO", "OPPOSITE", "ACROSS FROM"])
GLUE = st.sampled_from([" ", ":", "-", ": ", " - "])


@given(number=house_numbers(), word=BY_A_HOUSE, glue=GLUE)
def test_a_number_after_near_or_rear_is_a_house_number(
    number: tuple[int, str], word: str, glue: str
) -> None:
    n, written = number
    stored = block_address(f"{word}{glue}{written}")
    assert stored is not None
    assert f"{n // 100}XX" in stored.split()[-1], stored
    assert not any(ch.isdigit() for ch in stored.replace(f"{n // 100}XX", "")), stored
    assert block_address(stored) == stored


# Numbered routes: the house number before them is reduced, the route's own number never.
ROUTES = st.sampled_from(
    ["LOOP", "FM", "RM", "RR", "SPUR", "HWY", "US HWY", "STATE HWY", "COUNTY RD", "SH", "IH"]
    + ["RT", "ROUTE"]
)
DIRECTIONS = st.sampled_from(["", "N ", "S ", "E ", "W ", "NE ", "SW "])
AFTER_ROUTE = st.sampled_from(
    ["", " N", " E", " W", " S", " RD", " RD W", " FWY", " SVC RD", " FRONTAGE RD", " ACCESS RD"]
)


@given(
    number=house_numbers(),
    direction=DIRECTIONS,
    route=ROUTES,
    route_number=st.integers(1, 9999),
    after=AFTER_ROUTE,
)
def test_a_route_number_is_never_reduced(
    number: tuple[int, str], direction: str, route: str, route_number: int, after: str
) -> None:
    n, written = number
    stored = block_address(f"{written} {direction}{route} {route_number}{after}")
    assert stored == f"{n // 100}XX {direction}{route} {route_number}{after}"
    assert_block_level(stored)


STATE_TAILS = st.sampled_from(["WI", "TX", "WA", "OR", "CT", "IN", "NY"])
ZIPS = st.sampled_from(["", " 53202", " 98101-1234"])


@given(number=house_numbers(), street=STREETS, state=STATE_TAILS, zip_code=ZIPS)
def test_a_state_alone_after_a_comma_is_no_city(
    number: tuple[int, str], street: str, state: str, zip_code: str
) -> None:
    n, written = number
    address, city = split_city(f"{written} {street}, {state}{zip_code}", {}, "Dflt")
    assert city == "Dflt"
    assert block_address(address) == f"{n // 100}XX {street.upper()}"
