"""A stopping import (``--on-error stop``) that holds the run lock archives its batches as they
come, in ONE transaction (each poll a savepoint of it), instead of spooling the file first:
the archive and the report are the spooled import's, row for row; readers see nothing until
the commit; a bad row, an unreadable file or Ctrl-C leaves nothing of the file."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_bulkload
from test_bulkload import bulkload_off, dump
from test_import_ahead import _foia, _nola

from dispatchwatch import bulkload
from dispatchwatch.archive import Archive
from dispatchwatch.config import default_feed
from dispatchwatch.imports import ahead, run
from dispatchwatch.imports.ahead import Piece
from dispatchwatch.imports.mapping import load_mapping
from dispatchwatch.imports.readers import ImportFileError
from dispatchwatch.imports.run import FileReport, import_file, import_files
from dispatchwatch.incident import Incident
from dispatchwatch.runlock import AlreadyRunningError, RunLock
from dispatchwatch.scraper import RawRow

BATCH = 150


@pytest.fixture(autouse=True)
def _a_spare_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead, "spare_core", lambda: True)


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def _one(
    db: Path, feed: str, path: Path, mapping: str, *, single: bool, fork: bool = False, **options
) -> FileReport:
    with pytest.MonkeyPatch.context() as patch, Archive(db) as archive:
        patch.setattr(run, "can_fork", lambda size: fork)
        report = import_file(
            archive,
            default_feed(feed),
            path,
            load_mapping(mapping),
            batch_size=BATCH,
            single_transaction=single,
            **options,
        )
    report.seconds, report.ahead = 0.0, False
    return report


fork_either_way = pytest.mark.parametrize(
    "fork",
    [
        False,
        pytest.param(
            True, marks=pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork")
        ),
    ],
)


@fork_either_way
@pytest.mark.parametrize("which", ["foia", "nola"])
def test_one_transaction_archives_what_the_spool_does(
    tmp_path: Path, which: str, fork: bool
) -> None:
    if which == "foia":  # incidents listed on two rows, across batch cuts
        path = _foia(tmp_path / "foia.csv", 2000, bad=False)
        args = ("chicago-police", path, "chicago-oemc-foia")
    else:  # a row function read many at a time
        path = _nola(tmp_path / "nola.csv", 1500)
        args = ("new-orleans-police", path, "new-orleans-socrata-csv")
    spooled = _one(tmp_path / "spooled.db", *args, single=False)
    single = _one(tmp_path / "single.db", *args, single=True, fork=fork)
    assert single == spooled
    assert single.outcome == "imported" and single.polls > 5
    assert dump(tmp_path / "single.db") == dump(tmp_path / "spooled.db")


@fork_either_way
def test_a_bad_row_rolls_the_whole_file_back(tmp_path: Path, fork: bool) -> None:
    path = _foia(tmp_path / "foia.csv", 3000, bad=True)
    args = ("chicago-police", path, "chicago-oemc-foia")
    spooled = _one(tmp_path / "spooled.db", *args, single=False)
    single = _one(tmp_path / "single.db", *args, single=True, fork=fork)
    assert single == spooled
    assert single.outcome == "failed" and single.bad > 10 and single.imported == 0
    assert single.polls == single.new == single.incidents == 0
    assert "nothing of this file was imported" in (single.error or "")
    for table in ("incidents", "incident_versions", "polls", "imports", "feeds"):
        assert _count(tmp_path / "single.db", table) == 0, table
    # The archive is left usable: the same file imported with skip goes in.
    report = _one(tmp_path / "single.db", *args, single=True, on_error="skip")
    assert report.outcome == "imported" and _count(tmp_path / "single.db", "polls") > 5


def test_readers_see_nothing_until_the_commit(tmp_path: Path) -> None:
    path = _nola(tmp_path / "nola.csv", 1500)
    db = tmp_path / "single.db"
    seen: list[tuple[int, int]] = []

    def look(_fraction: float) -> None:
        seen.append((_count(db, "incidents"), _count(db, "polls")))

    report = _one(
        db, "new-orleans-police", path, "new-orleans-socrata-csv", single=True, on_progress=look
    )
    assert len(seen) > 5 and set(seen) == {(0, 0)}
    assert _count(db, "incidents") == report.incidents == 1500
    assert _count(db, "polls") == report.polls


@fork_either_way
def test_ctrl_c_or_an_unreadable_file_leaves_nothing(tmp_path: Path, fork: bool) -> None:
    path = _foia(tmp_path / "foia.csv", 3000, bad=False)
    db = tmp_path / "single.db"
    calls = [0]

    def interrupt(_fraction: float) -> None:
        calls[0] += 1
        if calls[0] == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _one(db, "chicago-police", path, "chicago-oemc-foia", single=True, fork=fork,
             on_progress=interrupt)  # fmt: skip
    assert _count(db, "polls") == _count(db, "incidents") == 0
    # Bytes that are not UTF-8 far into the file: the error, and nothing written before it.
    data = path.read_bytes()
    cut = data.index(b"\n", len(data) * 3 // 4) + 1
    path.write_bytes(data[:cut] + b"16\xff\xfe9999,1/1/2016 00:00:00\n" + data[cut:])
    with pytest.raises(ImportFileError, match="cannot read past row"):
        _one(db, "chicago-police", path, "chicago-oemc-foia", single=True, fork=fork)
    assert _count(db, "polls") == _count(db, "incidents") == _count(db, "imports") == 0


@pytest.mark.parametrize("case", ["deferred", "small", "daemon"])
def test_import_files_takes_one_transaction_when_it_holds_the_run_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The run lock held (deferred indexes, or taken for the job: a small one): one
    transaction a file, and the archive the normal path leaves; a daemon holding the lock:
    the spool, and readers see each poll as it commits."""
    if case == "deferred":
        monkeypatch.setattr(bulkload, "MIN_ROWS", 10)
    paths = [_nola(tmp_path / f"nola{n}.csv", 700, seed=n) for n in range(2)]
    feed, mapping = default_feed("new-orleans-police"), load_mapping("new-orleans-socrata-csv")
    db = tmp_path / "import.db"
    seen: list[int] = []
    during: list[str] = []

    def look(_path: Path, _fraction: float) -> None:
        seen.append(_count(db, "polls"))
        if case != "daemon" and not during:
            with pytest.raises(AlreadyRunningError, match="a bulk import"):
                RunLock(db).acquire()  # `dispatchwatch run` cannot start meanwhile
            during.append("checked")

    daemon = RunLock(db)
    if case == "daemon":
        daemon.acquire()
    try:
        with Archive(db) as archive:
            reports = import_files(
                archive, feed, paths, mapping, batch_size=BATCH, on_progress=look
            )
    finally:
        daemon.release()
    assert [r.outcome for r in reports] == ["imported", "imported"]
    # One transaction a file: the first file's polls appear only once it is done.
    polls = reports[0].polls
    assert (set(seen) <= {0, polls}) is (case != "daemon"), seen
    normal = tmp_path / "normal.db"
    with RunLock(normal), Archive(normal) as archive, bulkload_off():  # (the spool)
        import_files(archive, feed, paths, mapping, batch_size=BATCH)
    assert dump(db) == dump(normal)
    with RunLock(db):  # released
        pass


def test_a_poll_inside_the_outer_transaction_is_a_savepoint(tmp_path: Path) -> None:
    """A poll that fails inside :meth:`Archive.outer_transaction` undoes only its own writes;
    the outer one commits the rest."""
    db = tmp_path / "outer.db"
    with Archive(db) as archive:
        archive.conn.execute("CREATE TABLE t (name TEXT)")
        with archive.outer_transaction():
            with archive.transaction() as conn:
                conn.execute("INSERT INTO t VALUES ('a')")
            with pytest.raises(RuntimeError), archive.transaction() as conn:
                conn.execute("INSERT INTO t VALUES ('b')")
                raise RuntimeError
            assert _count(db, "t") == 0  # (another connection: not yet)
        assert archive.conn.execute("SELECT name FROM t").fetchall() == [("a",)]
        assert not archive.conn.in_transaction
        with pytest.raises(RuntimeError), archive.outer_transaction():
            with archive.transaction() as conn:
                conn.execute("INSERT INTO t VALUES ('c')")
            raise RuntimeError
    assert _count(db, "t") == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="no fork here (not Linux)")
@pytest.mark.parametrize("offload", ["always", "never"])
def test_the_archive_is_the_same_wherever_batches_are_normalized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offload: str
) -> None:
    """Each batch normalized by the child, or sent as mapped rows and normalized here."""
    monkeypatch.setattr(ahead, "_offload", lambda waiting: offload == "always")
    path = _foia(tmp_path / "foia.csv", 2000, bad=False)
    args = ("chicago-police", path, "chicago-oemc-foia")
    spooled = _one(tmp_path / "spooled.db", *args, single=False)
    single = _one(tmp_path / "single.db", *args, single=True, fork=True)
    assert single == spooled
    assert dump(tmp_path / "single.db") == dump(tmp_path / "spooled.db")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="no fork here (not Linux)")
@pytest.mark.parametrize("slower", ["child", "parent"])
def test_the_process_that_waits_normalizes(slower: str) -> None:
    """A piece is finished (normalized) by the child unless the parent is waiting for it:
    a slow child leaves every piece to the parent; a slow parent, all but the first (which it
    waits for) to the child."""
    parent, pieces = os.getpid(), 5

    def produce(resume: int | None) -> Iterator[Piece]:
        for n in range(pieces):
            time.sleep(0.15 if slower == "child" else 0.02)
            yield Piece([(RawRow(f"E{n}", None), None)], n, n, 1, resume=n + 1)
        yield Piece(None, 0, 0, 0, resume=pieces, done=True)

    def finish(piece: Piece) -> Piece:
        raw, _ = piece.data[0]
        piece.data = [Incident("by", raw.incident_id, received_at=str(os.getpid()))]
        return piece

    where = []
    made = ahead.pieces_ahead(produce, fork=True, finish=finish)
    for piece in made:
        if piece.data is not None:
            where.append("parent" if piece.data[0].received_at == str(parent) else "child")
            if slower == "parent":
                time.sleep(0.15)
    assert len(where) == pieces
    if slower == "child":
        assert where == ["parent"] * pieces
    else:
        assert where[0] == "parent" and where[1:].count("child") >= pieces - 2


def test_the_child_offloads_when_the_parent_is_waiting() -> None:
    waiting = multiprocessing.get_context().RawValue("b", 0)
    waited = multiprocessing.get_context().RawValue("d", 0.0)
    balance = ahead._Balance(waiting, waited)
    assert not ahead._offload(balance)
    waiting.value = 1
    assert ahead._offload(balance)


def test_the_child_offloads_when_the_parent_has_waited_long_enough() -> None:
    """Not waiting at this moment, but since the last piece left to it, half as long as the
    child takes to finish one: the next piece is the parent's."""
    waiting = multiprocessing.get_context().RawValue("b", 0)
    waited = multiprocessing.get_context().RawValue("d", 0.0)
    balance = ahead._Balance(waiting, waited)
    waited.value = 5.0  # (before the child knows what a piece costs: no)
    assert not ahead._offload(balance)
    balance.finished(0.2)
    assert ahead._offload(balance)  # 5 s since the start
    waited.value += 0.05
    assert not ahead._offload(balance)
    waited.value += 0.1
    assert ahead._offload(balance)


#: test_bulkload's process that stops itself after DIE_AFTER polls, reading ahead whatever
#: the file's size and the machine's load.
KILLER = (
    "from dispatchwatch.imports import ahead\n"
    "ahead.MIN_BYTES = 0\n"
    "ahead.spare_core = lambda: True\n" + test_bulkload.KILLER
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals, fork")
@pytest.mark.parametrize("how", ["INT", "KILL"])
def test_a_command_interrupted_or_killed_midway_leaves_nothing_of_the_file(
    tmp_path: Path, how: str
) -> None:
    """``dispatchwatch import`` (read ahead in a child) stopped by Ctrl-C after three polls:
    it rolls back, rebuilds the indexes and exits 1; killed (``kill -9``): the next open
    repairs the indexes. Either way the archive holds nothing of the file, and a second run
    imports it whole."""
    path = _nola(tmp_path / "nola.csv", 1500)
    db, errors = tmp_path / "import.db", tmp_path / "stderr.txt"
    command = [sys.executable, "-c", KILLER, "import", str(path), "--feed", "new-orleans-police",
               "--mapping", "new-orleans-socrata-csv", "--db", str(db), "--batch-size", "150"]  # fmt: skip
    with open(errors, "w") as stderr:
        process = subprocess.Popen(
            command,
            env={**os.environ, "SIGNAL": how, "DIE_AFTER": "3"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
        status = process.wait(timeout=120)
    deadline = time.monotonic() + 5
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # its read-ahead child ends with it
    if _group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the read-ahead process outlived the import")
    if how == "INT":
        assert status == 1 and errors.read_text().strip() == "Aborted!"
    else:
        assert status == -signal.SIGKILL
    with Archive(db):  # (repairs what a killed job left deferred)
        pass
    for table in ("incidents", "incident_versions", "polls", "imports", "deferred_schema"):
        assert _count(db, table) == 0, table
    with Archive(db) as archive, bulkload_off():
        import_files(archive, default_feed("new-orleans-police"), [path],
                     load_mapping("new-orleans-socrata-csv"), batch_size=BATCH)  # fmt: skip
    normal = tmp_path / "normal.db"
    with Archive(normal) as archive, bulkload_off():
        import_files(archive, default_feed("new-orleans-police"), [path],
                     load_mapping("new-orleans-socrata-csv"), batch_size=BATCH)  # fmt: skip
    assert dump(db) == dump(normal)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_archive_in_memory_takes_one_transaction_and_no_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _nola(tmp_path / "nola.csv", 400)
    monkeypatch.chdir(tmp_path)
    with Archive(":memory:") as archive:
        (report,) = import_files(archive, default_feed("new-orleans-police"), [path],
                                 load_mapping("new-orleans-socrata-csv"), batch_size=BATCH)  # fmt: skip
        assert report.imported == 400
        assert archive.conn.execute("SELECT count(*) FROM incidents").fetchone()[0] == 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nola.csv"]
