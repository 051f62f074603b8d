"""Never a traceback, never someone else's file (issue 8, items 7, 8, 9 and 12).

Bad values are config or usage errors with one line; exit codes mean one thing each. Every
test runs the installed command (or the library) on real files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatchwatch import database, exitcodes
from dispatchwatch.archive import Archive, utc_now
from dispatchwatch.cli import cli
from dispatchwatch.config import default_feed, parse_config, parse_duration, parse_size
from dispatchwatch.errors import ConfigError
from dispatchwatch.pipeline import ingest_files, process_page


def dispatchwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    command = shutil.which("dispatchwatch", path=str(Path(sys.executable).parent))
    assert command, "the dispatchwatch console script is not installed next to this Python"
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def one_line_error(done: subprocess.CompletedProcess[str], code: int = exitcodes.ERROR) -> str:
    """The single stderr line of a clean failure with exit ``code``."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# --- 9. bad values are config errors ---------------------------------------------------------

#: The values that crashed ``run`` with a traceback, as written in config.yaml.
CRASHING_INTERVALS = ["1.0e+308", ".inf", ".nan", "100000000000d", "99999999999999999999"]


@pytest.mark.parametrize("value", CRASHING_INTERVALS)
def test_an_interval_out_of_bounds_is_a_config_error(tmp_path: Path, value: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"feeds:\n  seattle-fire:\n    url: http://127.0.0.1:9/\n    interval: {value}\n"
    )
    line = one_line_error(dispatchwatch("run", "--once", "--config", str(config), cwd=tmp_path))
    assert f"{config}, line 4: feeds.seattle-fire.interval:" in line
    assert not (tmp_path / "dispatch.db").exists()  # refused before anything was opened


def test_a_nan_timeout_is_refused_at_load_not_at_every_poll(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "feeds:\n  seattle-fire:\n    url: http://127.0.0.1:9/\n    connect_timeout: .nan\n"
    )
    line = one_line_error(dispatchwatch("run", "--once", "--config", str(config), cwd=tmp_path))
    assert "line 4: feeds.seattle-fire.connect_timeout: not a duration: nan" in line
    assert not (tmp_path / "dispatch.db").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("interval", "50ms", "must be between 100ms and 7d, got '50ms'"),
        ("interval", "8d", "must be between 100ms and 7d"),
        ("interval", "-.inf", "must be positive"),
        ("interval", "0", "must be positive"),
        ("read_timeout", ".inf", "must be between 1ms and 1h"),
        ("read_timeout", "2h", "must be between 1ms and 1h"),
        ("connect_timeout", "1.0e-9", "must be between 1ms and 1h"),
        ("timeout", ".nan", "not a duration"),
        ("max_bytes", "2GB", "size must be at most 1024MB"),
        ("max_bytes", "99999999999999999999", "size must be at most"),
        ("max_bytes", "1.0e+308", "size must be at most"),
        ("max_bytes", ".inf", "size must be at most"),
        ("max_bytes", ".nan", "not a size"),
        ("max_bytes", "0.5", "size must be positive"),
        ("max_bytes", "0", "size must be positive"),
    ],
)
def test_every_duration_and_size_is_bounded(option: str, value: str, message: str) -> None:
    text = f"feeds:\n  seattle-fire:\n    {option}: {value}\n"
    with pytest.raises(ConfigError, match=rf"line 3: feeds\.seattle-fire\.{option}: .*{message}"):
        parse_config(text, Path("config.yaml"))
    # ... and the same under defaults:
    with pytest.raises(ConfigError, match=rf"line 2: defaults\.{option}: .*{message}"):
        parse_config(f"defaults:\n  {option}: {value}\nfeeds: {{}}\n", Path("config.yaml"))


@pytest.mark.parametrize("value", [".inf", ".nan", "1.0e+308", "100000000000d"])
def test_adapter_durations_go_through_the_same_bounds(value: str) -> None:
    text = (
        "feeds:\n  cincy:\n    adapter: socrata\n"
        "    url: https://data.cincinnati-oh.gov/resource/gexm-h6bt.json\n"
        "    timezone: America/New_York\n"
        "    fields: {incident_id: event_number, received: create_time_incident}\n"
        f"    look_back: {value}\n"
    )
    with pytest.raises(ConfigError, match=r"line 7: feeds.cincy: look_back must be a duration"):
        parse_config(text, Path("config.yaml"))


def test_values_within_bounds_load() -> None:
    config = parse_config(
        "feeds:\n  seattle-fire:\n    interval: 7d\n    timeout: 1h\n    max_bytes: 1GB\n"
        "  milwaukee-police:\n    interval: 100ms\n    connect_timeout: 1ms\n"
    )
    sea, mke = config.feeds["seattle-fire"], config.feeds["milwaukee-police"]
    assert (sea.interval, sea.connect_timeout, sea.read_timeout) == (7 * 86400, 3600, 3600)
    assert sea.max_bytes == 1024**3
    assert (mke.interval, mke.connect_timeout) == (0.1, 0.001)


def test_parse_duration_and_size_refuse_what_is_not_finite() -> None:
    for value in (float("nan"), float("inf"), 10**400, "1" * 400, "100000000000d"):
        with pytest.raises(ValueError):
            parse_duration(value)
    assert parse_duration("36500d") == 36500 * 86400  # the general ceiling is ~100 years
    for value in (float("nan"), float("inf"), 10**400, "1" * 400 + "GB"):
        with pytest.raises(ValueError):
            parse_size(value)


def test_duplicate_keys_are_an_error_naming_both_lines() -> None:
    text = "feeds:\n  seattle-fire:\n    interval: 1m\n    enabled: true\n    interval: 2m\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("config.yaml"))
    assert str(caught.value) == (
        "config.yaml, line 5: duplicate key 'interval' (also at line 3; keep one)"
    )
    # A feed configured twice, and a top-level key given twice:
    twice = (
        "feeds:\n  seattle-fire: {}\n  milwaukee-police: {}\n  seattle-fire:\n    interval: 1m\n"
    )
    with pytest.raises(ConfigError, match=r"line 4: duplicate key 'seattle-fire' \(also at line 2"):
        parse_config(twice, Path("config.yaml"))
    with pytest.raises(ConfigError, match=r"line 3: duplicate key 'database' \(also at line 1"):
        parse_config("database: a.db\nfeeds: {}\ndatabase: b.db\n", Path("config.yaml"))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("feeds:\n  seattle-fire:\n    interval: 1m\n   enabled: [true\n", "line 4, column 4"),
        ("feeds: {\n", "line 2, column 1"),
        ("feeds:\n  seattle-fire:\n    url: 'http://x\n", "line 4, column 1"),
        ("feeds:\n  seattle-fire:\n    interval: 1m\x07\n", "line 3, column 17"),
        (
            "feeds:\n  seattle-fire:\n    interval: !!python/name:os.system 1m\n",
            "line 3, column 15",
        ),
    ],
)
def test_broken_yaml_is_one_line_with_line_and_column(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("config.yaml"))
    message = str(caught.value)
    assert message.startswith(f"config.yaml, {where}: not valid YAML: "), message
    assert "\n" not in message


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(b"feeds:\n  seattle-fire:\n    url: http://127.0.0.1/\xff\n")
    line = one_line_error(dispatchwatch("feeds", "--config", str(config), cwd=tmp_path))
    assert "not UTF-8 text" in line


def test_a_contact_that_cannot_be_an_http_header_is_a_config_error() -> None:
    for contact in ('"ops@example.org\\nX-Evil: 1"', "opérations@example.org"):
        with pytest.raises(ConfigError, match="line 1: contact must be one line of printable"):
            parse_config(f"contact: {contact}\nfeeds: {{}}\n", Path("config.yaml"))


def test_a_plugin_that_exits_at_import_is_a_clear_error(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "quitter.py").write_text("import sys\nsys.exit(3)\n")
    line = one_line_error(dispatchwatch("feeds", "--plugins-dir", str(plugins), cwd=tmp_path))
    assert f"plugin {plugins / 'quitter.py'} called sys.exit(3) while loading" in line
    config = tmp_path / "config.yaml"
    config.write_text(f"plugins_dir: {plugins}\nfeeds:\n  seattle-fire: {{}}\n")
    line = one_line_error(dispatchwatch("run", "--once", "--config", str(config), cwd=tmp_path))
    assert "called sys.exit(3)" in line


def test_a_plugin_declaring_an_impossible_interval_is_named(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "eager.py").write_text(
        "from dispatchwatch.scraper import Scraper\n"
        "scraper = Scraper(slug='eager', name='Eager', agency='A', city='C',\n"
        "    url='http://127.0.0.1:9/', timezone='UTC', interval='.nan',\n"
        "    parse=lambda page: [])\n"
    )
    line = one_line_error(
        dispatchwatch("parse", "eager", "-", "--plugins-dir", str(plugins), cwd=tmp_path)
    )
    assert "scraper 'eager': interval: not a duration" in line


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["run", "--workers", "0"], "--workers"),
        (["run", "--workers", "100000"], "--workers"),
        (["run", "--stop-timeout", "nan"], "--stop-timeout"),
        (["run", "--stop-timeout", "2h"], "--stop-timeout"),
        (["run", "--backoff-max", "100000000000d"], "--backoff-max"),
        (["status", "--stale", ".inf"], "--stale"),
        (["status", "--stale", "99999999999999999999"], "--stale"),
        (["demo", "--duration", "1.0e+308"], "--duration"),
        (["demo", "--interval", "1ms"], "--interval"),
        (["demo", "--speed", "nan"], "--speed"),
        (["demo", "--speed", "inf"], "--speed"),
        (["demo", "--port", "70000"], "--port"),
        (["simulate", "--speed", "nan"], "--speed"),
        (["serve", "--port", "-1"], "--port"),
    ],
)
def test_command_line_values_out_of_bounds_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], option: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == exitcodes.USAGE, result.output
    assert isinstance(result.exception, SystemExit)  # not a crash
    assert f"Invalid value for '{option}'" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


# --- 12. exit codes mean one thing each ------------------------------------------------------

STATUS_CONFIG = """
database: {db}
feeds:
  seattle-fire:
    interval: 60s
    url: http://127.0.0.1:9/seattle
"""


def test_exit_codes_of_status_are_distinct(tmp_path: Path) -> None:
    db = tmp_path / "dispatch.db"
    config_path = tmp_path / "config.yaml"
    config_path.write_text(STATUS_CONFIG.format(db=db))
    config = parse_config(config_path.read_text(), config_path)
    with Archive(db) as archive:
        archive.register_feed(config.feeds["seattle-fire"].record())
        archive.record_error("seattle-fire", error_kind="timeout", error="slow")

    # Registered a moment ago, never succeeded: not ok (it said "ok" before), and not the
    # usage-error code 2 either.
    done = dispatchwatch("status", "--db", str(db), cwd=tmp_path)
    assert done.returncode == exitcodes.UNHEALTHY == 3, done.stdout + done.stderr
    assert "NEVER SUCCEEDED" in done.stdout.splitlines()[1]

    with Archive(db) as archive:
        archive.record_success("seattle-fire", [], observed_at=utc_now())
    done = dispatchwatch("status", "--db", str(db), cwd=tmp_path)
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert done.stdout.splitlines()[1].split()[:2] == ["seattle-fire", "ok"]

    # Stale (a success, but too long ago for the threshold): 3 as well.
    done = dispatchwatch("status", "--db", str(db), "--stale", "1ms", "--json", cwd=tmp_path)
    assert done.returncode == exitcodes.UNHEALTHY, done.stdout + done.stderr

    # A configured feed the archive never saw: never succeeded.
    other = tmp_path / "other.yaml"
    other.write_text(STATUS_CONFIG.format(db=db).replace("seattle-fire", "milwaukee-police"))
    done = dispatchwatch("status", "--config", str(other), "--json", cwd=tmp_path)
    assert done.returncode == exitcodes.UNHEALTHY
    assert '"state": "never succeeded"' in done.stdout

    # An error is 1, a usage error is 2: never confused with unhealthy.
    assert dispatchwatch("status", "--db", str(tmp_path / "none.db"), cwd=tmp_path).returncode == 1
    assert dispatchwatch("status", "--no-such-option", cwd=tmp_path).returncode == 2


def test_exit_codes_are_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### Exit codes") :]
    for code, word in [
        (exitcodes.OK, "done"),
        (exitcodes.ERROR, "error"),
        (exitcodes.USAGE, "usage"),
        (exitcodes.UNHEALTHY, "unhealthy"),
        (exitcodes.POLLS_FAILED, "some polls failed"),
    ]:
        assert f"| **{code}** | {word}" in table
    codes = [exitcodes.OK, exitcodes.ERROR, exitcodes.USAGE, exitcodes.UNHEALTHY]
    assert len({*codes, exitcodes.POLLS_FAILED}) == 5


# --- 7. foreign SQLite files are left alone --------------------------------------------------

MKE_PAGES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "milwaukee").glob("seq_0*"))


def _other_app(path: Path) -> None:
    """Another application's SQLite database, in WAL mode, with an id of its own."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA application_id = 1598903374")  # what a Fossil repository carries
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.commit()
    conn.close()


def _rss_reader(path: Path) -> None:
    """A SQLite file with its own ``feeds`` and ``polls`` tables, and no application id."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE feeds (url TEXT PRIMARY KEY, title TEXT)")
    conn.execute("CREATE TABLE polls (url TEXT, at TEXT, status INTEGER)")
    conn.execute("INSERT INTO feeds VALUES ('https://example.org/rss', 'Example')")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()


FOREIGN_FILES = {
    "other-app-sqlite": _other_app,
    "rss-reader-sqlite": _rss_reader,
    "text": lambda path: path.write_text("feed,incident\nseattle-fire,F1\n"),
    "binary": lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40),
    "short-binary": lambda path: path.write_bytes(b"SQLite"),
}


def _state(path: Path) -> tuple[str, int, list[str]]:
    """The file's checksum and mtime, and what its folder holds (no -wal/-shm may appear)."""
    return (
        hashlib.sha256(path.read_bytes()).hexdigest(),
        path.stat().st_mtime_ns,
        sorted(p.name for p in path.parent.iterdir()),
    )


def _foreign(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "dispatch.db"
    FOREIGN_FILES[kind](path)
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    return path


@pytest.mark.parametrize("kind", FOREIGN_FILES)
def test_every_command_leaves_a_foreign_file_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    path = _foreign(tmp_path, kind)
    before = _state(path)
    monkeypatch.chdir(tmp_path)
    db = str(path)
    commands = [
        ["ingest", "milwaukee-police", str(MKE_PAGES[0]), "--db", db],
        ["stats", "--db", db],
        ["status", "--db", db],
        ["metadata", "--db", db],
        ["serve", "--db", db, "--port", "1"],
        ["snapshot", str(tmp_path / "copy.db"), "--db", db],
        ["export", "-f", "csv", "-o", "-", "--db", db],
        ["coverage", "--db", db],
    ]
    for args in commands:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == exitcodes.ERROR, (args, result.output)
        assert isinstance(result.exception, SystemExit), (args, result.exception)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "is not a dispatchwatch archive" in lines[0], (args, lines)
        assert _state(path) == before, args
    assert not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize("kind", ["other-app-sqlite", "rss-reader-sqlite", "text"])
def test_run_leaves_a_foreign_file_unchanged(tmp_path: Path, kind: str) -> None:
    path = _foreign(tmp_path, kind)
    before = _state(path)
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {path}\nfeeds:\n  seattle-fire:\n    url: http://127.0.0.1:9/\n")
    line = one_line_error(dispatchwatch("run", "--once", "--config", str(config), cwd=tmp_path))
    assert f"{path} is not a dispatchwatch archive" in line and "left this one unchanged" in line
    assert _state(path) == before


def test_demo_never_deletes_a_foreign_file(tmp_path: Path) -> None:
    """``demo`` deletes a previous demo archive (all its feeds on 127.0.0.1). A foreign file
    with an empty ``feeds`` table has no feed elsewhere either: it must still be kept."""
    path = tmp_path / "data" / "dispatch.db"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE feeds (url TEXT PRIMARY KEY, title TEXT)")
    conn.commit()
    conn.close()
    before = _state(path)
    line = one_line_error(
        dispatchwatch("demo", "--db", str(path), "--duration", "1s", cwd=tmp_path)
    )
    assert "is not a previous demo archive" in line
    assert _state(path) == before


def test_only_new_empty_or_own_files_are_written(tmp_path: Path) -> None:
    page = str(MKE_PAGES[0])
    zero = tmp_path / "zero.db"
    zero.touch()
    blank = tmp_path / "blank.db"  # a SQLite file with no schema (an interrupted first run)
    sqlite3.connect(blank).execute("PRAGMA journal_mode = WAL").fetchone()
    for path in (tmp_path / "new.db", zero, blank):
        done = dispatchwatch("ingest", "milwaukee-police", page, "--db", str(path), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert database.identify(path)[0] == database.ARCHIVE
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA application_id").fetchone()[0] == database.APPLICATION_ID
        conn.close()


def test_an_archive_made_before_the_application_id_is_still_ours(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    done = dispatchwatch(
        "ingest", "milwaukee-police", str(MKE_PAGES[0]), "--db", str(path), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 0")  # as every archive was before
    conn.commit()
    conn.close()
    assert database.identify(path)[0] == database.ARCHIVE
    before = _state(path)
    assert dispatchwatch("stats", "--db", str(path), cwd=tmp_path).returncode == 0
    assert _state(path)[:2] == before[:2]  # reading does not stamp it
    done = dispatchwatch(
        "ingest", "milwaukee-police", str(MKE_PAGES[1]), "--db", str(path), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == database.APPLICATION_ID
    conn.close()


def test_status_and_serve_on_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = _foreign(tmp_path, "text")
    for args in (["status", "--db", str(path)], ["serve", "--db", str(path), "--port", "1"]):
        line = one_line_error(dispatchwatch(*args, cwd=tmp_path))
        assert line == f"Error: {path} is not a dispatchwatch archive (not a SQLite database)"


# --- 8. read-only users ----------------------------------------------------------------------

NOBODY = 65534


#: Tests run as root: the reader is ``nobody`` (setpriv). Otherwise the reader is this user
#: and the folder is made read-only to it (``chmod``; :func:`_read_only` checks it holds).
AS_ROOT = os.geteuid() == 0


@pytest.fixture
def as_reader() -> Iterator[tuple[Path, Callable[..., subprocess.CompletedProcess[str]]]]:
    """A folder every user can enter, and a way to run a command there as a user who may read
    the archive but not write its folder (real privileges, not a mock): ``nobody`` when the
    tests run as root, else this user once :func:`_read_only` took the folder's write
    permission away (``run.other_user`` says which)."""
    drop: list[str] = []
    if AS_ROOT:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, and no setpriv to run the reader as another user")
        drop = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        probe = subprocess.run([*drop, sys.executable, "-c", "import dispatchwatch"], timeout=60)
        if probe.returncode != 0:
            pytest.skip("user nobody cannot run this Python (its install is not world-readable)")
    root = Path(tempfile.mkdtemp(prefix="dispatchwatch-ro-", dir="/tmp"))
    root.chmod(0o755)

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*drop, sys.executable, "-m", "dispatchwatch", *args],
            capture_output=True, text=True, timeout=120, cwd=root,
        )  # fmt: skip

    run.drop = drop  # type: ignore[attr-defined]
    run.other_user = bool(drop)  # type: ignore[attr-defined]
    try:
        yield root, run
    finally:
        for folder, _dirs, _files in os.walk(root):
            Path(folder).chmod(0o755)
        shutil.rmtree(root)


def _archive(folder: Path, pages: int = 3) -> Path:
    folder.mkdir(mode=0o755)
    path = folder / "dispatch.db"
    feed = default_feed("milwaukee-police")
    with Archive(path) as archive:  # the daemon's (live) polls: status judges a feed by them
        archive.register_feed(feed.record())
        for page in MKE_PAGES[:pages]:
            process_page(archive, feed, page.read_bytes(), source=feed.url)
    path.chmod(0o644)
    assert sorted(p.name for p in folder.iterdir()) == ["dispatch.db"]  # the daemon stopped
    return path


def _read_only(folder: Path) -> None:
    """Take away the write permission on ``folder``, and check the reader really lacks it."""
    folder.chmod(0o555)
    if not AS_ROOT:  # (root may write anywhere: its reader is nobody, who may not)
        assert not os.access(folder, os.W_OK), f"{folder} is still writable by this user"


def _needs_another_user(run: Callable[..., object]) -> None:
    if not run.other_user:  # type: ignore[attr-defined]
        pytest.skip("needs root, to run the reader as nobody beside a writer (two users)")


def _count(path: Path, sql: str) -> int:
    conn = sqlite3.connect(path)  # as the owner: leaves no -wal/-shm behind when it closes
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_every_read_only_command_works_for_a_user_who_cannot_write_the_folder(
    as_reader: tuple[Path, Callable[..., subprocess.CompletedProcess[str]]],
) -> None:
    root, run = as_reader
    path = _archive(root / "archive")
    incidents = _count(path, "SELECT count(*) FROM incidents")
    out = root / "out"
    out.mkdir()
    out.chmod(0o777)
    _read_only(path.parent)
    before = _state(path)

    done = run("stats", "--db", str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert f'"incidents": {incidents},' in done.stdout

    done = run("status", "--db", str(path))
    assert done.returncode == exitcodes.OK, done.stderr
    assert done.stdout.startswith("feed ") and "milwaukee-police  ok" in done.stdout

    done = run("snapshot", str(out / "copy.db"), "--db", str(path))
    assert done.returncode == 0, done.stderr
    assert _count(out / "copy.db", "SELECT count(*) FROM incidents") == incidents

    done = run("metadata", "--db", str(path), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "Milwaukee" in done.stdout

    done = run("export", "-f", "csv", "-o", "-", "--db", str(path), "-q")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == incidents + 1  # and the header

    done = run("coverage", "--db", str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert '"feed": "milwaukee-police"' in done.stdout

    # Serving live needs the WAL index, which this user cannot create: said exactly.
    done = run("serve", "--db", str(path), "--port", "1")
    line = one_line_error(done)
    assert "cannot serve" in line and "dispatch.db-shm" in line and "snapshot" in line

    assert _state(path) == before  # nothing written, nothing created beside it


def test_a_reader_sees_a_running_daemons_latest_commit(
    as_reader: tuple[Path, Callable[..., subprocess.CompletedProcess[str]]],
) -> None:
    root, run = as_reader
    _needs_another_user(run)
    path = _archive(root / "archive", pages=1)
    _read_only(path.parent)
    with Archive(path) as archive:  # the daemon (root) is running: -wal and -shm exist
        ingest_files(archive, default_feed("milwaukee-police"), MKE_PAGES[1:3])
        polls = archive.conn.execute("SELECT count(*) FROM polls").fetchone()[0]
        assert polls == 3 and _state(path)[2] == [
            "dispatch.db",
            "dispatch.db-shm",
            "dispatch.db-wal",
        ]
        done = run("stats", "--db", str(path), "--json")
        assert done.returncode == 0, done.stderr
        assert '"polls": 3,' in done.stdout  # read through the WAL, not only the file


def test_a_reader_is_told_why_when_the_wal_cannot_be_read(
    as_reader: tuple[Path, Callable[..., subprocess.CompletedProcess[str]]],
) -> None:
    root, run = as_reader
    path = _archive(root / "archive", pages=1)
    crashed = root / "crashed"
    crashed.mkdir()
    with Archive(path) as archive:  # commits in the WAL, as a daemon killed -9 leaves them
        ingest_files(archive, default_feed("milwaukee-police"), MKE_PAGES[1:2])
        for name in ("dispatch.db", "dispatch.db-wal"):  # the -shm was lost (a reboot)
            shutil.copy2(path.parent / name, crashed / name)
    _read_only(crashed)
    for command in ("stats", "status", "metadata"):
        line = one_line_error(run(command, "--db", str(crashed / "dispatch.db")))
        assert "dispatch.db-wal holds commits not yet merged" in line, line
        assert "dispatch.db-shm is missing and cannot be created" in line
    assert sorted(p.name for p in crashed.iterdir()) == ["dispatch.db", "dispatch.db-wal"]


READER = """
import sys
from dispatchwatch.database import connect_read_only
conn = connect_read_only(sys.argv[1])
print(type(conn).__name__, conn.execute("SELECT count(*) FROM polls").fetchone()[0], flush=True)
sys.stdin.readline()
try:
    conn.close()
except Exception as exc:
    print(type(exc).__name__, exc, flush=True)
else:
    print("closed", flush=True)
"""


@pytest.mark.parametrize("writer_starts", [False, True])
def test_an_unlocked_read_is_refused_when_a_writer_started_meanwhile(
    as_reader: tuple[Path, Callable[..., subprocess.CompletedProcess[str]]], writer_starts: bool
) -> None:
    root, run = as_reader
    if writer_starts:
        _needs_another_user(run)
    path = _archive(root / "archive", pages=1)
    _read_only(path.parent)
    reader = subprocess.Popen(
        [*run.drop, sys.executable, "-c", READER, str(path)],  # type: ignore[attr-defined]
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    assert reader.stdin is not None and reader.stdout is not None
    try:
        assert reader.stdout.readline().split() == ["_ImmutableConnection", "1"]
        if writer_starts:
            with Archive(path) as archive:
                ingest_files(archive, default_feed("milwaukee-police"), MKE_PAGES[1:2])
        reader.stdin.write("\n")
        reader.stdin.flush()
        last = reader.stdout.readline()
    finally:
        reader.stdin.close()
        reader.wait(timeout=60)
        reader.stdout.close()
    if writer_starts:
        assert last.startswith("ArchiveError") and "was written while it was read" in last
    else:
        assert last.strip() == "closed"
