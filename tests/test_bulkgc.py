"""fewer_collections: collects less during a bulk run, and puts everything back after it."""

from __future__ import annotations

import gc

import pytest

from dispatchwatch.bulkgc import BULK_THRESHOLD, fewer_collections


def test_thresholds_and_frozen_objects_come_back() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == BULK_THRESHOLD
        assert gc.get_freeze_count() > 0
        with fewer_collections():  # reentrant: the inner one changes nothing
            assert gc.get_threshold()[0] == BULK_THRESHOLD
        assert gc.get_threshold()[0] == BULK_THRESHOLD
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_an_error_inside_still_restores() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_inside_are_still_collected() -> None:
    with fewer_collections():
        for _ in range(10):
            a: list[object] = []
            a.append(a)
        del a
        assert gc.collect() >= 10
