"""PageMemo: consecutive pages normalized with the rows of the page before memoized give
exactly what normalize_rows gives (incidents, order, errors), page after page."""

from __future__ import annotations

import dataclasses

import pytest

from dispatchwatch.config import default_feed
from dispatchwatch.errors import PageError
from dispatchwatch.normalize import normalize_rows
from dispatchwatch.normalize.pagememo import PageMemo
from dispatchwatch.pipeline import normalize, parse_page
from dispatchwatch.scraper import Page, RawRow
from dispatchwatch.synthetic import milwaukee_pages

SETTINGS = {"feed": "f", "timezone": "America/Chicago", "city_codes": {"MKE": "Milwaukee"}}


def _row(number: int, **changes: object) -> RawRow:
    row = RawRow(
        incident_id=f"24{number:07d}",
        received=f"2024-03-10 0{number % 10}:15:00",  # through a spring-forward gap
        call_type="TRAFFIC STOP",
        status="Service in Progress",
        address=f"{1000 + number * 17} N 35TH ST,MKE",
        district=str(number % 7 + 1),
    )
    return dataclasses.replace(row, **changes)


def _same_pages(pages: list[list[RawRow]], memo: PageMemo, **settings: object) -> None:
    options = {**SETTINGS, **settings}
    for rows in pages:
        assert memo.normalize_rows(rows, **options) == normalize_rows(rows, **options)


def test_synthetic_milwaukee_pages_normalize_the_same_and_mostly_from_the_memo() -> None:
    feed = default_feed("milwaukee-police")
    memo = PageMemo()
    rows = 0
    for body in milwaukee_pages(40, seed=3):
        result = feed.scraper.parse(Page(body))
        rows += len(result.rows)
        assert normalize(feed, result.rows, result.as_of, memo) == normalize(
            feed, result.rows, result.as_of
        )
        assert parse_page(feed, body, memo=memo) == parse_page(feed, body)
    assert memo.hits > rows // 2  # (each page twice: the second pass is all hits)
    assert memo.misses > 0


def test_rows_that_change_merge_or_carry_extra_or_numbers() -> None:
    first = [_row(n) for n in range(12)]
    second = [
        *first[:3],
        _row(3, status="Assignment Completed"),  # changed: normalized again
        _row(4),
        _row(4, status="Advised", received="2024-03-10 05:20:00"),  # listed twice: merged
        _row(5, extra={"note": "x"}),  # extra: never memoized
        _row(6, latitude=43.05, longitude=-87.95),  # numbers: never memoized
        _row(20),  # new
        *first[7:],
        _row(0),  # an incident listed again further down: merged with the first
    ]
    third = [*second[:7], _row(6, latitude=True, longitude=-87.95), *second[8:]]
    memo = PageMemo()
    _same_pages([first, second, third, second, first, []], memo)
    assert memo.hits > 0


def test_order_is_the_pages_first_appearance_order() -> None:
    rows = [_row(n) for n in range(8)]
    memo = PageMemo()
    _same_pages([rows, rows[::-1], rows[3:] + rows[:3]], memo)


def test_errors_are_those_of_the_whole_page() -> None:
    rows = [_row(n) for n in range(6)]
    memo = PageMemo()
    memo.normalize_rows(rows, **SETTINGS)
    for bad in (
        [*rows[:4], _row(9, incident_id="  "), *rows[4:]],  # no ID: the row number is the page's
        [*rows[:4], _row(9, received="not a time"), *rows[4:]],
    ):
        with pytest.raises(PageError) as expected:
            normalize_rows(bad, **SETTINGS)
        with pytest.raises(PageError) as got:
            memo.normalize_rows(bad, **SETTINGS)
        assert str(got.value) == str(expected.value)
    _same_pages([rows], memo)  # and it goes on


def test_other_settings_never_reuse_the_memo() -> None:
    rows = [_row(n) for n in range(6)]
    memo = PageMemo()
    _same_pages([rows], memo)
    _same_pages([rows], memo, precision="exact")
    _same_pages([rows], memo, timezone="America/New_York")
    _same_pages([rows], memo, city_codes={})
    _same_pages([rows], memo, default_city="Milwaukee")
    _same_pages([rows], memo, feed="g")


def test_incidents_are_fresh_objects() -> None:
    rows = [_row(n) for n in range(3)]
    memo = PageMemo()
    first = memo.normalize_rows(rows, **SETTINGS)
    second = memo.normalize_rows(rows, **SETTINGS)
    assert memo.hits == 3
    second[0].extra["x"] = 1
    second[1].status = "changed"
    assert memo.normalize_rows(rows, **SETTINGS) == first


def test_pages_of_new_calls_only_are_normalized_straight_and_the_memo_comes_back() -> None:
    # A bulk ingest's pages share no incident: the memo is not kept (nothing could be found
    # in it); as soon as a page shares one with the page before, it is kept again.
    pages = [[_row(n) for n in range(start, start + 5)] for start in (0, 5, 10, 15)]
    memo = PageMemo()
    _same_pages(pages, memo)
    assert (memo.hits, memo.misses) == (0, 20)
    _same_pages([pages[3], pages[3], pages[3]], memo)  # the first builds it again
    assert memo.hits == 5 + 5 and memo.misses == 20 + 5
    # Page 0 shares nothing with page 3: straight; the next shares two rows with it: built
    # (nothing to find yet); page 0 again finds those two.
    _same_pages([pages[0], [*pages[0][:2], _row(40)], pages[0]], memo)
    assert memo.hits == 10 + 2


def test_ids_that_are_not_text_go_the_memo_way() -> None:
    rows = [_row(n) for n in range(3)]
    memo = PageMemo()
    odd = [_row(3, incident_id=7), _row(4, incident_id=["x"])]  # (a number; unhashable)
    _same_pages([rows, [*rows, odd[0]], [*rows, odd[1]], rows], memo)  # type: ignore[list-item]
    assert memo.hits > 0
