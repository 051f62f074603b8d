"""Ingest's parse-ahead process: the same pages, parses and archive as reading them here.

``dispatchwatch ingest`` parses page n + 1 in a forked child while it archives page n
(parseahead.py). These tests run both ways on Socrata pages (with a page that does not parse,
one archived before the run and one listed twice) and compare what comes out: the parsed
pages, then every row the archive holds.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dispatchwatch import pagestore, parseahead, pipeline
from dispatchwatch.archive import Archive, StoredIncidents
from dispatchwatch.config import parse_config
from dispatchwatch.errors import DispatchwatchError
from dispatchwatch.parseahead import ParseFailure, parse_outcome, read_ahead
from dispatchwatch.pipeline import ingest_files
from dispatchwatch.scraper import Request

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork here"
)

START = datetime(2024, 11, 2, 12, 0, 0)  # through a fall-back hour
FEED = parse_config("feeds:\n  seattle-fire-open-data: {}\n").feeds["seattle-fire-open-data"]


def _rows(page: int) -> list[dict[str, object]]:
    rows = []
    for i in range(page * 40, page * 40 + 60):  # pages overlap: later ones change rows
        rows.append({
            "address": f"{100 + i * 7} Summit Av" if i % 4 else "Pine St / 3rd Av",
            "type": ["Aid Response", "Medic Response", " Rubbish  Fire"][(i + page) % 3],
            "datetime": (START + timedelta(seconds=i * 599)).isoformat() + ".000",
            "latitude": f"{47.5 + i / 1000:.6f}", "longitude": "-122.3",
            "report_location": {"type": "Point", "coordinates": [-122.3 - i / 1e4, 47.5]},
            "incident_number": f"F24{i:07d}", "unit": f"E{i % 9}" if i % 2 else "",
            ":@computed_region_x": "1",
        })  # fmt: skip
    return rows


@pytest.fixture
def pages(tmp_path: Path) -> list[Path]:
    files = []
    for number in range(7):
        path = tmp_path / f"page_{number}.json"
        body = json.dumps(_rows(number)) if number != 3 else '{"error": true, "message": "x"}'
        path.write_text(body)
        files.append(path)
    files.append(files[1])  # listed twice: archived once
    return files


def _force_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parseahead, "_can_fork", lambda count: True)
    # No page handed over whole (that depends on timing): see the test of it below.
    monkeypatch.setattr(parseahead, "_hand_over", lambda idle, cost: False)


def _no_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parseahead, "_can_fork", lambda count: False)


def _comparable(parsed: object) -> object:
    """``parsed`` with its incidents as stored columns: a page the child normalized comes as
    :class:`StoredIncidents`, one it left to this process as incidents (timing decides)."""
    incidents = getattr(parsed, "incidents", None)
    if incidents is None:
        return parsed
    if not isinstance(incidents, StoredIncidents):
        incidents = StoredIncidents.of(incidents)
    return (replace(parsed, incidents=[]), [list(column) for column in incidents.columns])


def test_the_child_parses_what_parsing_here_gives(
    pages: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    archived = {parseahead.hashlib.sha256(pages[5].read_bytes()).hexdigest()}
    _force_fork(monkeypatch)
    ahead = read_ahead(FEED, pages, archived)
    got = [next(ahead)]
    assert multiprocessing.active_children(), "the parse-ahead child is not running"
    got += list(ahead)
    assert [p.path for p in got] == pages
    for page in got:
        assert page.body == page.path.read_bytes()
        assert page.sha256 == parseahead.hashlib.sha256(page.body).hexdigest()
        if page.sha256 in archived:
            assert page.parsed is None
            continue
        expected = parse_outcome(FEED, page.body)
        if not isinstance(expected, ParseFailure):
            expected.follow = []
        assert _comparable(page.parsed) == _comparable(expected)
    assert isinstance(got[3].parsed, ParseFailure)
    assert got[3].parsed.kind == "layout_changed"
    assert len(got[0].parsed.incidents) == 60
    assert not multiprocessing.active_children()


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    skip = {"started_at", "duration_ms", "first_at", "last_at", "updated_at"}
    out = {}
    for table in ("incidents", "incident_versions", "polls", "pages", "poll_pages", "feed_state"):
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in skip]
        out[table] = conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1, 2"
        ).fetchall()
    conn.close()
    return out


def test_ingest_archives_the_same_either_way(
    pages: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dumps, outcomes, compressed = [], [], []
    real_compress = pagestore._compress

    def counted(body: bytes, base: bytes | None) -> bytes:
        compressed.append(base is not None)  # (the child's count stays in the child)
        return real_compress(body, base)

    monkeypatch.setattr(pagestore, "_compress", counted)
    # The child compresses ahead when it is the faster stage (here: always).
    monkeypatch.setattr(parseahead, "_parent_busy", lambda waiting: True)
    for fork, name in ((True, "ahead.db"), (False, "here.db")):
        (_force_fork if fork else _no_fork)(monkeypatch)
        with Archive(tmp_path / name) as archive:
            summaries = ingest_files(archive, FEED, pages)
        outcomes.append([(s.outcome, s.new, s.changed, s.error_kind) for s in summaries])
        dumps.append(_dump(tmp_path / name))
    assert outcomes[0] == outcomes[1]
    assert [o[0] for o in outcomes[0]] == ["new"] * 3 + ["error"] + ["new"] * 3 + [
        "already_archived"
    ]
    assert dumps[0] == dumps[1]  # the compressed pages too
    # With the child, this process compressed only the first page (no base to guess): the
    # child's blobs of the next five pages were taken; without it, all six here.
    assert compressed == [False] + [False] + [True] * 5
    assert len(dumps[0]["pages"]) == 6
    assert len(dumps[0]["incidents"]) == 300 - 20  # rows 140-159 are only on page 3
    assert sum(v[3] == 2 for v in dumps[0]["incident_versions"]) == 80  # rewritten rows


@pytest.mark.parametrize("one_pass", [True, False])
def test_a_child_slower_than_the_archive_leaves_it_normalizing_and_compressing(
    pages: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_pass: bool
) -> None:
    """... what is left to normalize: with a scraper that reads a page in one pass
    (pipeline.stored_page: cheaper than its parse alone) only the pages that pass declines;
    without, every page that scraped."""
    waiting = multiprocessing.get_context("fork").RawValue("b", 0)
    assert parseahead._parent_busy(waiting)
    waiting.value = 1  # the parent waits for a page: the child is the slower stage
    assert not parseahead._parent_busy(waiting)
    rows = _rows(9)
    rows[5]["datetime"] = "not a time"  # scrapes, then fails to normalize (here)
    bad = tmp_path / "page_bad.json"
    bad.write_text(json.dumps(rows))
    files = [*pages[:5], bad, *pages[5:]]
    compressed, normalized = [], []
    real_compress, real_normalized = pagestore._compress, parseahead.normalized_outcome

    def counted(body: bytes, base: bytes | None) -> bytes:
        compressed.append(base is not None)
        return real_compress(body, base)

    def normalized_here(*args):  # type: ignore[no-untyped-def]
        normalized.append(1)
        return real_normalized(*args)

    monkeypatch.setattr(pagestore, "_compress", counted)
    monkeypatch.setattr(parseahead, "normalized_outcome", normalized_here)
    if not one_pass:
        monkeypatch.setattr(pipeline, "stored_page", lambda *args, **kwargs: None)
    _force_fork(monkeypatch)
    monkeypatch.setattr(parseahead, "_parent_busy", lambda waiting: False)
    outcomes = []
    for fork, name in ((True, "slow.db"), (False, "here.db")):
        (_force_fork if fork else _no_fork)(monkeypatch)
        with Archive(tmp_path / name) as archive:
            summaries = ingest_files(archive, FEED, files)
        outcomes.append([(s.outcome, s.new, s.changed, s.error_kind, s.error) for s in summaries])
        if fork:  # every page that scraped normalized here (the one listed twice too; the
            # first, parsed here before the fork, as a whole); in one pass, the child read
            # all but the page with a bad time (which that pass leaves to parse())
            assert len(normalized) == (1 if one_pass else 7)
            assert compressed == [False] + [True] * 5
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][5][:2] == ("error", 0) and "not a time" in outcomes[0][5][4]
    assert _dump(tmp_path / "slow.db") == _dump(tmp_path / "here.db")


def test_a_file_gone_mid_run_stops_there(
    pages: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _force_fork(monkeypatch)
    os.remove(pages[4])
    seen = []
    with pytest.raises(DispatchwatchError, match=r"cannot read .*page_4\.json"):
        for page in read_ahead(FEED, pages, set()):
            seen.append(page.path)
    assert seen == pages[:4]
    assert not multiprocessing.active_children()


def test_a_child_that_dies_leaves_the_rest_to_this_process(
    pages: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _force_fork(monkeypatch)
    real_child = parseahead._child

    def dies_after_two(feed, files, archived, *args):  # type: ignore[no-untyped-def]
        real_child(feed, files[:2], archived, *args)
        os._exit(1)

    monkeypatch.setattr(parseahead, "_child", dies_after_two)
    got = list(read_ahead(FEED, pages, set()))
    assert [p.path for p in got] == pages
    # The first page is parsed here, before the fork; the child parses two, then dies.
    assert [p.parsed is not None for p in got] == [True, True, True] + [False] * 5


def test_a_file_changed_after_the_child_read_it_is_parsed_here(
    pages: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent reads each body again (not through the pipe): when the bytes are not the
    ones the child parsed, what the child made of them is dropped."""
    _force_fork(monkeypatch)
    changed = json.dumps(_rows(9)).encode()
    real_read = parseahead._read

    def read(path: Path) -> bytes:  # (runs in this process only: the child reads itself)
        return changed if path == pages[2] else real_read(path)

    monkeypatch.setattr(parseahead, "_read", read)
    got = list(read_ahead(FEED, pages, set()))
    assert got[2].body == changed and got[2].parsed is None
    assert got[2].sha256 == parseahead.hashlib.sha256(changed).hexdigest()
    assert all(page.parsed is not None for i, page in enumerate(got) if i != 2)


def test_messages_go_as_marshal_else_pickle(pages: list[Path]) -> None:
    flat = parseahead._flat(parse_outcome(FEED, pages[0].read_bytes()))
    message = ("page", "ab" * 32, flat, None)
    packed = parseahead._pack(message)
    assert packed[:1] == b"m" and parseahead._unpack(packed) == message
    follow = parseahead._flat(parse_outcome(FEED, pages[0].read_bytes(), normalized=False))
    follow = (*follow[:5], [Request("https://example.org/next")], *follow[6:])  # not marshal's
    packed = parseahead._pack(("page", "x", follow, None))
    assert packed[:1] == b"p" and parseahead._unpack(packed)[2] == follow


def test_pages_handed_over_whole_are_parsed_here_the_same(
    pages: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the parent has waited as long as a page takes the child, it takes the next page
    whole: sent unparsed, parsed here, archived the same."""
    assert not parseahead._hand_over(5.0, None)  # nothing measured yet
    assert parseahead._hand_over(0.02, 0.02) and not parseahead._hand_over(0.019, 0.02)
    _force_fork(monkeypatch)
    monkeypatch.setattr(parseahead, "_hand_over", lambda idle, cost: cost is not None)
    got = list(read_ahead(FEED, pages, set()))
    # Page 0 is parsed here (before the fork); the child parses page 1 (no cost measured
    # before), then hands over every page.
    assert [p.parsed is not None for p in got] == [True, True] + [False] * 6
    assert all(p.body == p.path.read_bytes() for p in got)
    dumps = []
    for fork, name in ((True, "whole.db"), (False, "here.db")):
        (_force_fork if fork else _no_fork)(monkeypatch)
        if fork:
            monkeypatch.setattr(parseahead, "_hand_over", lambda idle, cost: cost is not None)
        with Archive(tmp_path / name) as archive:
            ingest_files(archive, FEED, pages)
        dumps.append(_dump(tmp_path / name))
    assert dumps[0] == dumps[1]


@pytest.mark.skipif(not hasattr(__import__("fcntl"), "F_GETPIPE_SZ"), reason="Linux only")
def test_the_pipe_holds_several_pages_so_the_child_runs_ahead(
    pages: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child sends page after page without waiting for this process to read them: with
    the parent not reading at all, it still gets several pages' messages into the pipe."""
    import fcntl

    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    try:
        default = fcntl.fcntl(sender.fileno(), fcntl.F_GETPIPE_SZ)
        parseahead._widen(sender)
        widened = fcntl.fcntl(sender.fileno(), fcntl.F_GETPIPE_SZ)
    finally:
        receiver.close()
        sender.close()
    assert widened >= min(parseahead.PIPE_BYTES // 4, 4 * default) and widened > default
    many = [pages[0].parent / f"more_{n}.json" for n in range(6)]
    for n, path in enumerate(many):  # 1,000 incidents a page: ~70 kB a message
        rows = [{**_rows(n)[k % 60], "incident_number": f"G{n}{k:06d}"} for k in range(1000)]
        path.write_text(json.dumps(rows))
    _force_fork(monkeypatch)
    sent = multiprocessing.get_context("fork").Value("i", 0)
    real_pack = parseahead._pack

    def counted(message):  # type: ignore[no-untyped-def]
        with sent.get_lock():  # (runs in the child)
            sent.value += 1
        return real_pack(message)

    monkeypatch.setattr(parseahead, "_pack", counted)
    ahead = read_ahead(FEED, many, set())
    try:
        assert next(ahead).path == many[0]  # the first is parsed here; the child starts
        for _ in range(200):  # the child parses and sends the other five, unread
            if sent.value == len(many) - 1:
                break
            parseahead.time.sleep(0.05)
        assert sent.value == len(many) - 1
        assert [page.path for page in ahead] == many[1:]
    finally:
        ahead.close()


def test_the_page_after_one_handed_over_comes_compressed_against_it(
    pages: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page handed over whole is parsed and compressed here; the child still compresses
    the next one against it (the base the page store will pick when it parsed)."""
    compressed: list[bool] = []
    real_compress = pagestore._compress

    def counted(body: bytes, base: bytes | None) -> bytes:
        compressed.append(base is not None)  # (the child's count stays in the child)
        return real_compress(body, base)

    calls = []

    def fifth_only(idle: float, cost: float | None) -> bool:  # (called in the child)
        calls.append(1)
        return len(calls) == 5  # files[1:][4]: page 5

    monkeypatch.setattr(pagestore, "_compress", counted)
    _force_fork(monkeypatch)
    monkeypatch.setattr(parseahead, "_hand_over", fifth_only)
    monkeypatch.setattr(parseahead, "_parent_busy", lambda waiting: True)
    with Archive(tmp_path / "ahead.db") as archive:
        ingest_files(archive, FEED, pages)
    # Here: page 0 (before the fork, no base) and page 5 (handed over); page 6 came from
    # the child, compressed against page 5.
    assert compressed == [False, True]
    _no_fork(monkeypatch)
    with Archive(tmp_path / "here.db") as archive:
        ingest_files(archive, FEED, pages)
    assert _dump(tmp_path / "ahead.db") == _dump(tmp_path / "here.db")


def test_a_child_with_time_to_spare_sends_the_incidents_as_stored(
    pages: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Normalized in the child, a page's incidents come as the archive stores them (their
    columns, extra as JSON text): the same poll as the incidents; one the archive cannot
    encode comes as incidents (the error is raised where the archive encodes)."""
    from dispatchwatch.archive import StoredIncidents

    _force_fork(monkeypatch)
    monkeypatch.setattr(parseahead, "_parent_busy", lambda waiting: True)
    got = list(read_ahead(FEED, pages, set()))
    for page in got[1:]:  # (the first is parsed here, before the fork)
        expected = parse_outcome(FEED, page.body)
        if isinstance(expected, ParseFailure):
            assert page.parsed == expected
            continue
        assert isinstance(page.parsed.incidents, StoredIncidents)
        assert _comparable(page.parsed) == _comparable(expected)
        assert page.parsed.as_of == expected.as_of
    real_of = StoredIncidents.of

    def refuses_page_5(incidents):  # type: ignore[no-untyped-def]
        if any(i.incident_id == "F240000210" for i in incidents):
            raise ValueError("cannot encode")
        return real_of(incidents)

    monkeypatch.setattr(StoredIncidents, "of", staticmethod(refuses_page_5))
    # (A page read in one pass is stored columns from the start: see pipeline.stored_page.)
    monkeypatch.setattr(pipeline, "stored_page", lambda *args, **kwargs: None)
    got = list(read_ahead(FEED, pages, set()))
    assert isinstance(got[5].parsed.incidents, list)
    assert got[5].parsed == parse_outcome(FEED, pages[5].read_bytes())
