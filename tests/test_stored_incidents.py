"""``Archive.record_success`` given a poll's incidents as their stored columns
(:class:`~dispatchwatch.archive.StoredIncidents`, what an import's read-ahead child sends)
archives what it archives given the :class:`Incident` list; an all-new poll listed once is
staged without comparing (``archive._all_new``), and gives what comparing gives: polls with
IDs listed twice, changes, returns, history and earlier sightings; imports with incidents
repeated within and across batches, changed or not, in one process and with the child."""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_bulkload import dump
from test_import import NOLA_HEADER

from dispatchwatch import archive as archive_module
from dispatchwatch.archive import Archive, StoredIncidents, format_time
from dispatchwatch.config import default_feed
from dispatchwatch.imports import ahead, run
from dispatchwatch.imports.mapping import load_mapping
from dispatchwatch.imports.run import import_file
from dispatchwatch.incident import Incident

FEED = "seattle-fire"


def _incident(rng: random.Random, incident_id: str, at: datetime) -> Incident:
    extra = rng.choice([{}, {"units": "E1"}, {"b": "x", "a": 1.5}, {"note": None, "n": [1, 2]}])
    return Incident(
        FEED, incident_id, format_time(at - timedelta(minutes=rng.randint(0, 30))),
        rng.choice(["Aid Response", "Medic Response"]), rng.choice(["1", "2", None]),
        rng.choice(["open", "closed", None]), None,
        f"{rng.randint(1, 9)}XX {rng.choice(['PINE', 'PIKE', 'UNION'])} ST",
        "Seattle", rng.choice([None, "5"]), None, rng.choice([None, "E1 M2"]),
        rng.choice([None, 47.61, 47.6]), rng.choice([None, -122.33]), dict(extra),
    )  # fmt: skip


def _polls(seed: int) -> list[tuple[list[Incident], dict[str, object]]]:
    """Polls of a few IDs: some listed twice in a poll, changed, gone and back, imports of
    gone ones, history pages, pages older than what the archive saw."""
    rng = random.Random(seed)
    at = datetime(2024, 4, 1, 12)
    polls = []
    for _ in range(40):
        at += timedelta(minutes=rng.randint(1, 20))
        observed = at - timedelta(hours=3) if rng.random() < 0.15 else at
        ids = [f"F{rng.randint(0, 25):03d}" for _ in range(rng.randint(0, 12))]
        options: dict[str, object] = {
            "observed_at": format_time(observed),
            "started_at": format_time(at),
            "snapshot": rng.random() < 0.5,
            "kind": rng.choice([None, "import", "ingest"]),
        }
        if rng.random() < 0.1:
            options["history_only"] = "older than the archive"
        polls.append(([_incident(rng, i, observed) for i in ids], options))
    return polls


def _tables(db: Path) -> dict[str, object]:
    """:func:`test_bulkload.dump` but the coverage views (their open spans end now)."""
    return {k: v for k, v in dump(db).items() if not k.startswith("coverage")}


def _record(db: Path, polls: list[tuple[list[Incident], dict[str, object]]], stored: bool) -> None:
    with Archive(db) as archive:
        archive.register_feed(default_feed(FEED).record())
        for incidents, options in polls:
            given = StoredIncidents.of(incidents) if stored else incidents
            archive.record_success(FEED, given, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stored_columns_and_comparing_archive_what_incidents_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    polls = _polls(seed)
    _record(tmp_path / "list.db", polls, stored=False)
    _record(tmp_path / "stored.db", polls, stored=True)
    monkeypatch.setattr(archive_module, "_all_new", lambda known, unique, ids: False)
    _record(tmp_path / "compared.db", polls, stored=True)
    expected, stored, compared = (
        _tables(tmp_path / name) for name in ("list.db", "stored.db", "compared.db")
    )
    assert stored == expected
    assert compared == expected


def test_stored_incidents_of_nothing_is_an_empty_poll(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.db") as archive:
        archive.register_feed(default_feed(FEED).record())
        summary = archive.record_success(
            FEED, StoredIncidents.of([]), observed_at="2024-04-01T12:00:00Z"
        )
    assert (summary.incidents, summary.new, summary.outcome) == (0, 0, "new")


def _nola_with_repeats(path: Path, rows: int, seed: int = 5) -> Path:
    """New Orleans rows where a tenth repeat an earlier ID (close by: the same batch, or
    far: a later one), half of those changed (another disposition, a later time)."""
    rng = random.Random(seed)
    moment = datetime(2016, 1, 1)
    written: list[list[str]] = []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(NOLA_HEADER)
        for n in range(rows):
            moment += timedelta(seconds=rng.randint(1, 600))
            if written and rng.random() < 0.1:
                cells = list(rng.choice(written[-5:] if rng.random() < 0.5 else written))
                if rng.random() < 0.5:
                    cells[14] = rng.choice(["GONE ON ARRIVAL", "REPORT TO FOLLOW"])
                    cells[12] = f"{moment.month}/{moment.day}/{moment.year} {moment:%H:%M:%S}"
            else:
                cells = [
                    f"A{n:07d}16", "21", "COMPLAINT OTHER", "1H", "21", "COMPLAINT OTHER", "1H",
                    "3670000", "530000", f"{moment.month}/{moment.day}/{moment.year} "
                    f"{moment:%H:%M:%S}", "", "", "", "NAT", "Necessary Action Taken", "N",
                    "1A01", f"{rng.randint(1, 99):03d}XX Canal St", "70112", "1",
                    f"({29.9 + rng.random() / 10:.7f}, {-90.1 + rng.random() / 10:.7f})",
                ]  # fmt: skip
                written.append(cells)
            writer.writerow(cells)
    return path


@pytest.mark.parametrize("fork", [False, True])
def test_an_import_staged_as_it_came_is_the_compared_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    monkeypatch.setattr(ahead, "spare_core", lambda: True)
    monkeypatch.setattr(run, "can_fork", lambda size: fork)
    data = _nola_with_repeats(tmp_path / "calls.csv", 1500)
    mapping = load_mapping("new-orleans-socrata-csv")
    feed = default_feed("new-orleans-police")

    def archived(db: Path, **options: object) -> dict[str, object]:
        with Archive(db) as archive:
            report = import_file(archive, feed, data, mapping, batch_size=100, **options)  # type: ignore[arg-type]
        assert report.outcome == "imported" and report.changed > 0
        return dump(db)

    fast = archived(tmp_path / "fast.db")
    with Archive(tmp_path / "fast.db") as archive:  # again: nothing new, nothing changed
        again = import_file(archive, feed, data, mapping, batch_size=100, force=True)
    assert (again.new, again.changed) == (0, 0)
    with monkeypatch.context() as patch:
        patch.setattr(archive_module, "_all_new", lambda known, unique, ids: False)
        assert archived(tmp_path / "compared.db") == fast
