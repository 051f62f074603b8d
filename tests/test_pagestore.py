"""The raw page store: every parsed body kept (compressed, deduplicated, delta-chained),
linked to its poll in order, pruned by retention, and left out of published copies."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatchwatch.archive import Archive
from dispatchwatch.config import default_feed, parse_config
from dispatchwatch.daemon import Daemon
from dispatchwatch.errors import ConfigError
from dispatchwatch.pagestore import (
    CHAIN,
    OFF,
    Retention,
    page_stats,
    parse_retention,
    poll_responses,
    prune,
)
from dispatchwatch.pipeline import ingest_files, process_page
from dispatchwatch.publish import snapshot
from dispatchwatch.synthetic import milwaukee_pages

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, OFF),
        ("0", OFF),
        (False, OFF),
        ("90d", Retention(age=90 * 86400.0)),
        ("12h", Retention(age=12 * 3600.0)),
        ("500MB", Retention(size=500 * 1024**2)),
        ("30d 1GB", Retention(age=30 * 86400.0, size=1024**3)),
        ("2gb, 7d", Retention(age=7 * 86400.0, size=2 * 1024**3)),
    ],
)
def test_retention_values(text: object, expected: Retention) -> None:
    assert parse_retention(text) == expected


@pytest.mark.parametrize("text", ["forever", "1d 2d", "1GB 2MB", "-3d", True])
def test_bad_retention_values_raise(text: object) -> None:
    with pytest.raises(ValueError):
        parse_retention(text)


def test_keep_pages_in_the_config_is_checked_with_its_line() -> None:
    config = parse_config(
        "defaults:\n  keep_pages: 30d\nfeeds:\n  seattle-fire: {}\n"
        "  milwaukee-police:\n    keep_pages: 0\n"
    )
    assert config.feeds["seattle-fire"].keep_pages == Retention(age=30 * 86400.0)
    assert not config.feeds["milwaukee-police"].keep_pages.keeps
    assert default_feed("seattle-fire").keep_pages == Retention(age=90 * 86400.0)
    with pytest.raises(ConfigError, match=r"line 3.*keep_pages.*not a retention"):
        parse_config("feeds:\n  seattle-fire:\n    keep_pages: forever\n")


def _pages(n: int) -> list[bytes]:
    return list(milwaukee_pages(n, seed=3))


def test_every_parsed_body_is_stored_once_and_comes_back_exactly(tmp_path: Path) -> None:
    feed = default_feed("milwaukee-police")
    bodies = _pages(CHAIN + 8)  # more than one chain
    with Archive(tmp_path / "a.db") as archive:
        archive.register_feed(feed.record())
        polls = [process_page(archive, feed, body, url=feed.url) for body in bodies]
        # The same body again right away is "unchanged" (not parsed, not stored); after
        # another page it is parsed again but stored once.
        again = process_page(archive, feed, bodies[-1], url=feed.url)
        assert again.outcome == "unchanged"
        process_page(archive, feed, bodies[0], url=feed.url)
        conn = archive.conn
        distinct = len(set(bodies))
        assert conn.execute("SELECT count(*) FROM pages").fetchone()[0] == distinct
        assert conn.execute("SELECT count(*) FROM poll_pages").fetchone()[0] == len(bodies) + 1
        # Chains: self-contained heads, deltas at most CHAIN - 1 deep.
        heads = conn.execute("SELECT count(*) FROM pages WHERE base IS NULL").fetchone()[0]
        assert heads == -(-distinct // CHAIN)
        assert conn.execute("SELECT max(depth) FROM pages").fetchone()[0] == CHAIN - 1
        for summary, body in zip(polls, bodies, strict=True):
            (response,) = poll_responses(conn, summary.poll_id) or []
            assert response.body == body
            assert response.url == feed.url
        versions = conn.execute(
            "SELECT outcome, scraper_version, count(*) FROM polls GROUP BY 1, 2"
        ).fetchall()  # an unchanged poll parsed nothing
        # (the first page again is older than the archive: kept as history, "partial")
        assert versions == [
            ("new", feed.scraper.version, len(bodies)),
            ("partial", feed.scraper.version, 1),
            ("unchanged", None, 1),
        ]
        stats = page_stats(conn)
    assert stats["raw_bytes"] == sum(len(b) for b in set(bodies))
    # Consecutive pages share most bytes: deltas keep far less than plain zstd (~10x).
    assert stats["ratio"] > 30


def test_keep_pages_0_stores_nothing(tmp_path: Path) -> None:
    feed = dataclasses.replace(default_feed("milwaukee-police"), keep_pages=OFF)
    path = FIXTURES / "milwaukee" / "seq_01.html"
    with Archive(tmp_path / "a.db") as archive:
        (summary,) = ingest_files(archive, feed, [path])
        assert summary.outcome == "new"
        assert archive.conn.execute("SELECT count(*) FROM pages").fetchone()[0] == 0


def test_prune_deletes_whole_chains_by_age_and_by_size(tmp_path: Path) -> None:
    feed = default_feed("milwaukee-police")
    bodies = _pages(3 * CHAIN)
    with Archive(tmp_path / "a.db") as archive:
        archive.register_feed(feed.record())
        ids = [process_page(archive, feed, b, url=feed.url).poll_id for b in bodies]
        conn = archive.conn
        # Age the first chain's pages by hand: the rest were used just now.
        conn.execute("UPDATE pages SET last_at = '2020-01-01T00:00:00.000Z' WHERE chain = 1")
        result = prune(archive, {feed.slug: Retention(age=86400.0)})
        assert (result.chains, result.pages) == (1, CHAIN)
        assert poll_responses(conn, ids[0]) is None  # its page is gone, and its link
        assert conn.execute(
            "SELECT count(*) FROM poll_pages WHERE poll_id = ?", [ids[0]]
        ).fetchone() == (0,)
        assert poll_responses(conn, ids[-1])[0].body == bodies[-1]  # type: ignore[index]
        # Size: keep at most one chain's worth -> the oldest remaining chain goes.
        newest = conn.execute(
            "SELECT sum(length(body)) FROM pages WHERE chain = (SELECT max(chain) FROM pages)"
        ).fetchone()[0]
        result = prune(archive, {feed.slug: Retention(size=newest)})
        assert result.chains == 1
        assert conn.execute("SELECT count(DISTINCT chain) FROM pages").fetchone() == (1,)
        assert poll_responses(conn, ids[-1])[0].body == bodies[-1]  # type: ignore[index]
        # Everything is within a far-future cut-off... until it is not.
        later = datetime.now(UTC) + timedelta(days=2)
        assert prune(archive, {feed.slug: Retention(age=86400.0)}, now=later).pages == CHAIN
        # A new page after pruning starts a fresh chain and reads back.
        poll = process_page(archive, feed, bodies[0], url=feed.url)
        assert poll_responses(conn, poll.poll_id)[0].body == bodies[0]  # type: ignore[index]


def test_the_daemon_prunes_keep_pages_0_feeds(tmp_path: Path) -> None:
    feed = default_feed("milwaukee-police")
    with Archive(tmp_path / "a.db") as archive:
        archive.register_feed(feed.record())
        for body in _pages(5):
            process_page(archive, feed, body, url=feed.url)
        off = dataclasses.replace(feed, keep_pages=OFF)
        daemon = Daemon([off], archive, fetcher=None)  # type: ignore[arg-type]
        daemon._prune_pages()
        assert archive.conn.execute("SELECT count(*) FROM pages").fetchone() == (0,)
        assert archive.conn.execute("SELECT count(*) FROM polls").fetchone() == (5,)


def test_snapshots_leave_pages_out_unless_asked(tmp_path: Path) -> None:
    feed = default_feed("milwaukee-police")
    with Archive(tmp_path / "a.db") as archive:
        ingest_files(archive, feed, sorted((FIXTURES / "milwaukee").glob("seq_*.html")))
    snapshot(tmp_path / "a.db", tmp_path / "public.db")
    snapshot(tmp_path / "a.db", tmp_path / "full.db", with_pages=True)
    for name, expected in (("public.db", 0), ("full.db", 5)):
        conn = sqlite3.connect(tmp_path / name)
        try:
            assert conn.execute("SELECT count(*) FROM pages").fetchone() == (expected,)
            assert conn.execute("SELECT count(*) FROM poll_pages").fetchone() == (expected,)
        finally:
            conn.close()
    from dispatchwatch.publish.metadata import TABLE_DOCS

    assert TABLE_DOCS["pages"]["hidden"] and TABLE_DOCS["poll_pages"]["hidden"]


def test_a_paged_poll_keeps_each_response_with_its_request(tmp_path: Path) -> None:
    import threading

    from test_paging import _feed, _Handler, _rows, _Server  # the paged JSON feed over 127.0.0.1

    from dispatchwatch.config import Config
    from dispatchwatch.fetch import Fetcher

    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.rows, srv.seen, srv.broken_offsets = _rows(7), [], set()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        feed = _feed(srv)
        with (
            Fetcher(Config(contact="ops@example.org").user_agent) as fetcher,
            Archive(tmp_path / "a.db") as archive,
        ):
            report = Daemon([feed], archive, fetcher).poll(feed)
            assert report is not None and report.outcome == "new"
            responses = poll_responses(archive.conn, report.poll_id) or []
    finally:
        srv.shutdown()
        srv.server_close()
    assert [r.seq for r in responses] == [0, 1, 2]
    assert [len(json.loads(r.body)) for r in responses] == [3, 3, 1]
    assert [r.request.meta["offset"] for r in responses if r.request] == [0, 3, 6]
    assert [r.request.label for r in responses if r.request] == ["page 1", "page 2", "page 3"]
    # Kept: the few headers a parse may read (content type, validators, date), nothing else.
    assert all(r.headers["content-type"] == "application/json" for r in responses)
    assert all(
        set(r.headers) <= {"content-type", "date", "etag", "last-modified"} for r in responses
    )
    assert all(r.status == 200 for r in responses)
