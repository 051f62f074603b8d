"""Watch rules (config.yaml ``alerts:``): apprise notifications over real loopback HTTP, at most
once per rule across daemon restarts, retried without blocking polling; Atom per rule."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_publish import Server, atom_entries  # pytest puts tests/ on sys.path

from dispatchwatch import alerts
from dispatchwatch.cli import cli
from dispatchwatch.config import parse_config
from dispatchwatch.daemon import run
from dispatchwatch.errors import ConfigError

pytest.importorskip("apprise")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "milwaukee"


class _Loopback:
    """A ThreadingHTTPServer on 127.0.0.1 with a handler built from ``handle``."""

    def __init__(self, handle: Any) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(self)

            def do_POST(self) -> None:
                handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Feed(_Loopback):
    """Serves fixtures/milwaukee/seq_0N.html: ``page`` chooses N; ``requests`` counts."""

    def __init__(self) -> None:
        self.page = 1
        self.requests = 0

        def handle(h: BaseHTTPRequestHandler) -> None:
            self.requests += 1
            body = (FIXTURES / f"seq_0{self.page}.html").read_bytes()
            h.send_response(200)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

        super().__init__(handle)


class Receiver(_Loopback):
    """A webhook receiver: records JSON bodies it accepts; answers ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[dict[str, Any]] = []
        self.refused = 0

        def handle(h: BaseHTTPRequestHandler) -> None:
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length)
            if self.status == 200:
                self.received.append({"path": h.path, **json.loads(body)})
            else:
                self.refused += 1
            h.send_response(self.status)
            h.send_header("Content-Length", "0")
            h.end_headers()

        super().__init__(handle)


@pytest.fixture
def servers() -> Any:
    feed, receiver = Feed(), Receiver()
    yield feed, receiver
    feed.close()
    receiver.close()


def make_config(tmp_path: Path, feed: Feed, receiver: Receiver, interval: str = "1h") -> Any:
    text = f"""\
database: dispatch.db
feeds:
  milwaukee-police:
    url: http://127.0.0.1:{feed.port}/mke
    interval: {interval}
alerts:
  theft:
    feeds: [milwaukee-police]
    call_types: ["theft vehicle"]
    notify: ["json://127.0.0.1:{receiver.port}/theft"]
  never:
    call_types: ["NO SUCH CALL"]
    districts: ["2"]
    notify: ["json://127.0.0.1:{receiver.port}/never"]
"""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return parse_config(text, path)


def sent_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT rule, feed, incident_id, sent_at IS NOT NULL, attempts, last_error "
            "FROM alerts_sent ORDER BY rule, incident_id"
        ).fetchall()


def test_one_notification_per_new_match_across_restarts(tmp_path: Path, servers: Any) -> None:
    feed, receiver = servers
    config = make_config(tmp_path, feed, receiver)
    db = config.database
    assert run(config, once=True) == 0  # seq_01: nothing matches
    assert receiver.received == []
    feed.page = 2  # adds THEFT VEHICLE 240740531 and FAMILY TROUBLE (district 2) 240740536
    assert run(config, once=True) == 0
    assert [r["path"] for r in receiver.received] == ["/theft"]
    assert "THEFT VEHICLE" in receiver.received[0]["title"]
    assert "240740531" in receiver.received[0]["message"]
    # Restarts: the same incident still listed (seq_02 again, then seq_03) -> no duplicate.
    assert run(config, once=True) == 0
    feed.page = 3
    assert run(config, once=True) == 0
    assert len(receiver.received) == 1
    assert sent_rows(db) == [("theft", "milwaukee-police", "240740531", 1, 1, None)]

    # The Atom feed of the rule, from a real Datasette process.
    server = Server(db, tmp_path / "serve.log", "--config", str(tmp_path / "config.yaml"))
    try:
        [entry] = atom_entries(server.get(f"/{server.db_name}/alerts_theft.atom"))
        assert "THEFT VEHICLE" in entry["title"]
        assert "240740531" in entry["id"]
        # A configured rule that never fired has its feed too: valid, and empty.
        assert atom_entries(server.get(f"/{server.db_name}/alerts_never.atom")) == []
        # The home page links every rule's feed.
        home = server.get("/").text
        for query in ("alerts_theft", "alerts_never"):
            assert f'href="{server.db_name}/{query}.atom"' in home
    finally:
        server.stop()
    # `metadata` reads the same rules from the config (no config: only the fired one).
    for args, expected in (
        (["--config", str(tmp_path / "config.yaml")], {"alerts_never", "alerts_theft"}),
        (["--db", str(db)], {"alerts_theft"}),
    ):
        result = CliRunner().invoke(cli, ["metadata", "--format", "json", *args])
        assert result.exit_code == 0, result.output
        queries = json.loads(result.output)["databases"]["dispatch"]["queries"]
        assert {q for q in queries if q.startswith("alerts_")} == expected


def test_failed_delivery_is_retried_while_polling_continues(
    tmp_path: Path, servers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed, receiver = servers
    monkeypatch.setattr(alerts, "RETRY_BASE", 0.2)
    config = make_config(tmp_path, feed, receiver, interval="300ms")
    db = config.database
    assert run(config, once=True) == 0  # seq_01 recorded first
    receiver.status = 500
    feed.page = 2
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(config,), kwargs={"stop": stop})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while receiver.refused < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.refused >= 2  # retried
        # The worker records an attempt just after the receiver refused it: wait for it.
        rows = sent_rows(db)
        while rows[0][4] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            rows = sent_rows(db)
        assert rows[0][3] == 0 and rows[0][4] >= 2 and rows[0][5]  # not sent, attempts, error
        with sqlite3.connect(db) as conn:
            polls_before = conn.execute("SELECT count(*) FROM polls").fetchone()[0]
        time.sleep(1.0)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM polls").fetchone()[0] > polls_before
        receiver.status = 200  # the receiver comes back: delivered once on a later retry
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    assert [r["path"] for r in receiver.received] == ["/theft"]
    assert sent_rows(db)[0][3] == 1


def test_closed_port_is_a_failed_attempt(tmp_path: Path, servers: Any) -> None:
    feed, receiver = servers
    config = make_config(tmp_path, feed, receiver)
    receiver.close()  # nothing listens any more
    run(config, once=True)
    feed.page = 2
    assert run(config, once=True) == 0  # polling is unaffected
    rows = sent_rows(config.database)
    assert rows == [("theft", "milwaukee-police", "240740531", 0, 1, rows[0][5])]
    assert rows[0][5]
    receiver.close = lambda: None  # already closed


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("  x:\n    notify: []\n", "alerts.x.notify must be a list of texts"),
        ("  x:\n    call_types: [A]\n", "missing key 'notify'"),
        ("  x:\n    color: red\n    notify: [json://127.0.0.1:9]\n", "unknown key 'color'"),
        ("  x:\n    bbox: [1, 2]\n    notify: [json://127.0.0.1:9]\n", "alerts.x.bbox"),
        ("  x:\n    feeds: [nope]\n    notify: [json://127.0.0.1:9]\n", "unknown feed 'nope'"),
        ("  x:\n    notify: ['nosuch://host']\n", "apprise does not accept"),
        ("  x:\n    notify: ['json://${DW_NO_SUCH_VAR}@127.0.0.1']\n", "DW_NO_SUCH_VAR"),
    ],
)
def test_config_errors_name_key_and_line(rule: str, message: str) -> None:
    text = "feeds:\n  milwaukee-police: {}\nalerts:\n" + rule
    with pytest.raises(ConfigError, match="line") as info:
        parse_config(text)
    assert message in str(info.value)


def test_matching() -> None:
    rule = alerts.AlertRule(
        name="r",
        notify=("json://127.0.0.1:9",),
        call_types=("shots",),
        districts=("1",),
        address_prefix="15xx n",
        bbox=(-88.0, 43.0, -87.9, 43.1),
    )
    row = {"call_type": "SHOTS FIRED", "district": "1", "address": "15XX N SUMMIT AV",
           "latitude": 43.05, "longitude": -87.95}  # fmt: skip
    assert rule.matches("f", row)
    assert not rule.matches("f", {**row, "district": "2"})
    assert not rule.matches("f", {**row, "address": "16XX N SUMMIT AV"})
    assert not rule.matches("f", {**row, "latitude": None})
    assert not rule.matches("f", {**row, "longitude": -87.0})
    assert not rule.matches("f", {**row, "call_type": "THEFT"})
