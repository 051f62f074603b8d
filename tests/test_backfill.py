"""``dispatchwatch backfill``: Seattle's day pages and a web archive's captures, served on
127.0.0.1, archived day by day through the real CLI into a real SQLite file."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DAY = (FIXTURES / "seattle" / "day_2024-07-04.html").read_bytes().decode()
NO_RECORDS = (FIXTURES / "seattle" / "no_records.html").read_bytes().decode()
MKE = sorted((FIXTURES / "milwaukee").glob("seq_0*.html"))


def _day_page(month: int, day: int) -> str:
    """The 7/4/2024 fixture re-dated to ``month/day/2024``, incident numbers made unique."""
    text = DAY.replace("7/4/2024", f"{month}/{day}/2024")
    return re.sub(r"\b([FVBM])24(\d{2})(\d{5})\b", rf"\g<1>24{day:02d}\3", text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.server.seen.append(self.path)
        if parts.path == "/cdx":
            rows = [["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest"]]
            for n, _page in enumerate(MKE):
                rows.append(
                    ["k", f"2024031423{n}000", query["url"][0], "text/html", "200", f"D{n}"]
                )
            self._send(json.dumps(rows).encode())
        elif parts.path.startswith("/web/"):
            n = int(parts.path.split("/")[2][10])  # the capture's minute digit
            self._send(MKE[n].read_bytes())
        elif "incDate" in query:
            month, day, _year = (int(x) for x in query["incDate"][0].split("/"))
            page = NO_RECORDS.replace("2/14/2004", f"{month}/{day}/2024") if day == 6 else None
            self._send((page or _day_page(month, day)).encode())
        else:
            self._send(b"<html>today</html>")

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.seen = []
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _run(tmp_path: Path, srv: _Server, *args: str) -> subprocess.CompletedProcess[str]:
    port = srv.server_port
    config = tmp_path / "config.yaml"
    config.write_text(
        "database: dispatch.db\ncontact: tests@example.org\nfeeds:\n"
        "  seattle-fire:\n"
        f"    url: http://127.0.0.1:{port}/sfd/getRecsForDatePub.asp?action=Today&incDate=&rad1=des\n"
        "  milwaukee-police:\n"
        f"    url: http://127.0.0.1:{port}/mke/\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "dispatchwatch", "backfill", *args, "-c", str(config),
         "--delay", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def test_seven_day_pages_then_nothing_new(tmp_path: Path, server: _Server) -> None:
    result = _run(
        tmp_path, server, "seattle-fire", "--since", "2024-07-01", "--until", "2024-07-07"
    )
    assert result.returncode == 0, result.stderr
    assert "7 archived, 0 already complete" in result.stdout
    days = [parse_qs(urlsplit(p).query)["incDate"][0] for p in server.seen]
    assert days == [f"7/{d}/2024" for d in range(1, 8)]  # one request per day, oldest first
    db = tmp_path / "dispatch.db"
    assert _query(db, "SELECT count(*), min(day), max(day) FROM day_logs") == [
        (7, "2024-07-01", "2024-07-07")
    ]
    # 19 incidents a day, except the day with no records.
    assert _query(db, "SELECT count(*) FROM incidents") == [(6 * 19,)]
    assert _query(db, "SELECT DISTINCT kind FROM polls") == [("backfill",)]
    assert _query(db, "SELECT count(*) FROM incidents WHERE gone_at IS NOT NULL") == [(0,)]
    assert _query(db, "SELECT count(*) FROM feed_state WHERE key = 'day'") == [(0,)]

    # Again: every day is complete, nothing is fetched.
    server.seen.clear()
    again = _run(tmp_path, server, "seattle-fire", "--since", "2024-07-01", "--until", "2024-07-07")
    assert again.returncode == 0, again.stderr
    assert "0 archived, 7 already complete" in again.stdout
    assert server.seen == []


def test_newest_first_and_resuming_after_a_partial_run(tmp_path: Path, server: _Server) -> None:
    first = _run(tmp_path, server, "seattle-fire", "--since", "2024-07-03", "--until", "2024-07-04")
    assert first.returncode == 0, first.stderr
    server.seen.clear()
    result = _run(
        tmp_path, server, "seattle-fire", "--since", "2024-07-01", "--until", "2024-07-05",
        "--newest-first",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    days = [parse_qs(urlsplit(p).query)["incDate"][0] for p in server.seen]
    assert days == ["7/5/2024", "7/2/2024", "7/1/2024"]
    assert "3 archived, 2 already complete" in result.stdout


def test_a_feed_that_cannot_look_back_is_one_line(tmp_path: Path, server: _Server) -> None:
    result = _run(tmp_path, server, "milwaukee-police", "--since", "2024-07-01")
    assert result.returncode != 0
    assert "cannot look back" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_web_archive_captures_are_archived_oldest_first(tmp_path: Path, server: _Server) -> None:
    base = f"http://127.0.0.1:{server.server_port}"
    args = ["milwaukee-police", "--from-web-archive", "--cdx-url", f"{base}/cdx",
            "--wayback-url", f"{base}/web"]  # fmt: skip
    result = _run(tmp_path, server, *args)
    assert result.returncode == 0, result.stderr
    assert "5 archived" in result.stdout
    cdx = [p for p in server.seen if p.startswith("/cdx")]
    assert len(cdx) == 1 and "mke" in cdx[0]
    db = tmp_path / "dispatch.db"
    # The same incidents as ingesting the five pages, but nothing marked gone.
    assert _query(db, "SELECT count(*) FROM incidents") == [(15,)]
    assert _query(db, "SELECT count(*) FROM incidents WHERE gone_at IS NOT NULL") == [(0,)]
    sources = [row[0] for row in _query(db, "SELECT source FROM polls ORDER BY id")]
    assert sources == sorted(sources) and all("id_/" in s for s in sources)
    server.seen.clear()
    again = _run(tmp_path, server, *args)
    assert "0 archived, 5 already complete" in again.stdout
