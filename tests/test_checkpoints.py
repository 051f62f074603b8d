"""A bulk ingest's WAL checkpoints run in a thread beside it (checkpoints.py): the same
archive as with the automatic ones, the log started over after each, and the automatic
checkpoints back when the run ends."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dispatchwatch import checkpoints
from dispatchwatch.archive import Archive
from dispatchwatch.config import parse_config
from dispatchwatch.pipeline import ingest_files

FEED = parse_config("feeds:\n  seattle-fire-open-data: {}\n").feeds["seattle-fire-open-data"]
START = datetime(2024, 1, 1)


@pytest.fixture
def pages(tmp_path: Path) -> list[Path]:
    files = []
    for number in range(12):
        rows = [
            {
                "incident_number": f"F{number:03d}{i:04d}", "type": "Aid Response",
                "datetime": (START + timedelta(minutes=number * 300 + i)).isoformat() + ".000",
                "address": f"{100 + i * 7} Summit Av", "latitude": "47.6", "longitude": "-122.3",
            }
            for i in range(300)
        ]  # fmt: skip
        path = tmp_path / f"page_{number:02d}.json"
        path.write_text(json.dumps(rows))
        files.append(path)
    return files


def _dump(path: Path) -> list[object]:
    conn = sqlite3.connect(path)
    try:
        return [
            list(conn.execute("SELECT * FROM incidents ORDER BY rowid")),
            list(conn.execute("SELECT incident, version, poll_id FROM version_log ORDER BY id")),
            list(conn.execute("SELECT outcome, incidents, new, sha256 FROM polls ORDER BY id")),
            list(conn.execute("SELECT sha256, base, body FROM pages ORDER BY id")),
        ]
    finally:
        conn.close()


def test_checkpoints_in_a_thread_leave_the_archive_the_automatic_ones_leave(
    pages: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "EVERY", 600)  # every other page
    runs: list[int] = []
    real = checkpoints._checkpointer

    def counted(path, due, done, stop):  # type: ignore[no-untyped-def]
        class Told:
            def set(self) -> None:
                runs.append(1)
                done.set()

        real(path, due, Told(), stop)

    monkeypatch.setattr(checkpoints, "_checkpointer", counted)
    sizes: list[int] = []
    wal = tmp_path / "aside.db-wal"
    with Archive(tmp_path / "aside.db") as archive:
        ingest_files(archive, FEED, pages, on_page=lambda *_: sizes.append(wal.stat().st_size))
        assert archive.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 4000
    assert len(runs) >= 3  # the thread checkpointed, turn after turn
    assert not [t for t in threading.enumerate() if t.name == "dispatchwatch-checkpoints"]
    # The log was started over (written from its start again): the file stopped growing
    # (without a checkpoint, every commit appends to it).
    assert any(later <= earlier for earlier, later in zip(sizes[3:], sizes[4:], strict=False))
    monkeypatch.setattr(checkpoints, "EVERY", 10**9)  # the automatic checkpoints only
    with Archive(tmp_path / "automatic.db") as archive:
        ingest_files(archive, FEED, pages)
    assert _dump(tmp_path / "aside.db") == _dump(tmp_path / "automatic.db")
    assert not os.path.exists(wal)  # (closed: folded back into the file, as ever)
