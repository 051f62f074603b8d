"""fewer_collections: collects less during a bulk run, and puts everything back after it."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dispatchwatch import pipeline
from dispatchwatch.bulkgc import BULK_THRESHOLD, fewer_collections
from dispatchwatch.cli import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_thresholds_and_frozen_objects_come_back() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == BULK_THRESHOLD
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        made_since = [[] for _ in range(100)]
        with fewer_collections():  # reentrant: the inner one only freezes what was made since
            assert gc.get_threshold()[0] == BULK_THRESHOLD
            assert gc.get_freeze_count() >= frozen + len(made_since)
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


def test_an_ingest_in_process_puts_the_collector_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dispatchwatch ingest`` collects less from its start (see cli.py), and leaves the
    collector as it found it (tests and library users run the command in their process)."""
    monkeypatch.chdir(tmp_path)  # (no config.yaml)
    seen: list[tuple[int, int]] = []
    real_ingest_files = pipeline.ingest_files

    def ingest_files(*args: Any, **kwargs: Any) -> Any:
        seen.append((gc.get_threshold()[0], gc.get_freeze_count()))
        return real_ingest_files(*args, **kwargs)

    monkeypatch.setattr(pipeline, "ingest_files", ingest_files)
    before = gc.get_threshold()
    page = FIXTURES / "seattle" / "day_2024-07-04.html"
    result = CliRunner().invoke(
        cli, ["ingest", "seattle-fire", str(page), "--db", str(tmp_path / "x.db")]
    )
    assert result.exit_code == 0, result.output
    assert seen and seen[0][0] == BULK_THRESHOLD and seen[0][1] > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
