"""The first hour on the command line: init, the contact warning, the config's database for
serve/metadata/snapshot, --log-file and --quiet, shell completion, the docs the README cites.

Commands run as a new user runs them: the installed module in a subprocess (on a real
pseudo-terminal where a prompt is the point), against the loopback simulation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatchwatch import publish
from dispatchwatch.cli import cli
from dispatchwatch.config import load_config
from dispatchwatch.plugins import load_scrapers
from dispatchwatch.simulate import Simulation
from dispatchwatch.starter import PLACEHOLDER_CONTACT, contact_warning

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatchwatch", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_init_writes_a_commented_config_that_loads(tmp_path: Path) -> None:
    done = run_cli("init", "--contact", "desk@newsroom.org", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.startswith("Wrote config.yaml\n") and "dispatchwatch run --once" in done.stdout
    )
    assert done.stderr == ""  # a real contact: no warning
    text = (tmp_path / "config.yaml").read_text()
    assert text.count("\n#") >= 5  # commented
    config = load_config(tmp_path / "config.yaml")
    assert config.contact == "desk@newsroom.org"
    assert config.database == tmp_path / "dispatch.db"
    assert set(config.feeds) == set(load_scrapers())  # every built-in scraper, ready
    assert {f.slug for f in config.enabled_feeds} == {"seattle-fire", "milwaukee-police"}

    # Never overwritten without --force; --force does; a folder means folder/config.yaml.
    again = run_cli("init", "--contact", "other@newsroom.org", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip() == "Error: config.yaml exists: pass --force to overwrite it"
    assert (tmp_path / "config.yaml").read_text() == text
    forced = run_cli("init", "--contact", "other@newsroom.org", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and "other@newsroom.org" in (tmp_path / "config.yaml").read_text()
    (tmp_path / "etc").mkdir()
    elsewhere = run_cli("init", "etc", "--contact", "https://newsroom.org/contact", cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "dispatchwatch run --config etc/config.yaml" in elsewhere.stdout
    assert load_config(tmp_path / "etc" / "config.yaml").contact == "https://newsroom.org/contact"


def test_init_asks_for_the_contact_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispatchwatch import cli_init

    monkeypatch.setattr(cli_init, "on_terminal", lambda: True)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["init"], input="not a contact\nnight-desk@newsroom.org\n")
    assert result.exit_code == 0, result.output
    prompt = "Contact for the feeds' operators (your e-mail or a URL): "
    assert result.output.count(prompt) == 2  # asked again after a wrong answer
    assert "Error: the contact must be an e-mail address or a URL" in result.output
    assert load_config(tmp_path / "config.yaml").contact == "night-desk@newsroom.org"


def test_init_without_a_terminal_or_contact_warns_about_the_placeholder(tmp_path: Path) -> None:
    done = run_cli("init", cwd=tmp_path)
    assert done.returncode == 0
    assert load_config(tmp_path / "config.yaml").contact == PLACEHOLDER_CONTACT
    assert "Warning: config.yaml's contact is still the placeholder" in done.stderr


@pytest.mark.parametrize(
    ("contact", "warns"),
    [(None, True), ("", True), ("ops@example.org", True), ("you@example.com", True),
     ("https://example.net/about", True), ("ops@newsroom.org", False),
     ("https://newsroom.org/archive", False), ("me@examples.org", False)],
)  # fmt: skip
def test_contact_warning(contact: str | None, warns: bool) -> None:
    assert (contact_warning(contact) is not None) is warns


@pytest.fixture
def simulation() -> Simulation:
    sim = Simulation(seed=1, speed=0.0)
    sim.start()
    yield sim
    sim.stop()


def test_run_warns_about_the_placeholder_and_honours_log_file_and_quiet(
    tmp_path: Path, simulation: Simulation
) -> None:
    url = simulation.url("milwaukee", "first-hour")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: dispatch.db\ncontact: {PLACEHOLDER_CONTACT}\nfeeds:\n"
        f"  milwaukee-police:\n    url: {url}\n    interval: 5m\n"
    )
    # On stderr: the warning, then the poll's INFO line.
    done = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"WARNING config\.yaml's contact is still the placeholder", done.stderr)
    assert re.search(r"INFO milwaukee-police new \d+ incidents", done.stderr)
    # --log-file: the same lines in the file (with their time), nothing on stderr.
    log = tmp_path / "logs" / "dispatchwatch.log"
    log.parent.mkdir()
    done = run_cli("--log-file", str(log), "run", "--once", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = log.read_text().splitlines()
    assert any("WARNING config.yaml's contact" in line for line in lines)
    assert any(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO milwaukee-police (unchanged|not_modified)", line) for line in lines)  # fmt: skip
    # --quiet: warnings only (appended to the same file).
    done = run_cli("--quiet", "--log-file", str(log), "run", "--once", "--config", str(config), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0
    added = log.read_text().splitlines()[len(lines) :]
    assert added and all(" WARNING " in line for line in added), added
    # A log file that cannot be opened is a one-line error.
    done = run_cli("--log-file", str(tmp_path / "no" / "such" / "x.log"), "run", "--once",
                   "--config", str(config), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and "cannot open the log file" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_metadata_and_snapshot_use_the_config_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispatchwatch.archive import Archive

    (tmp_path / "data").mkdir()
    archive = tmp_path / "data" / "newsroom.db"
    Archive(archive).close()
    config = tmp_path / "config.yaml"
    config.write_text("database: data/newsroom.db\ncontact: desk@newsroom.org\nfeeds: {}\n")
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)  # ./config.yaml is found without --config
    meta = runner.invoke(cli, ["metadata", "--format", "json"])
    assert meta.exit_code == 0, meta.output
    assert '"newsroom"' in meta.output  # keyed by the configured file's name
    snap = runner.invoke(cli, ["snapshot", str(tmp_path / "copy.db")])
    assert snap.exit_code == 0, snap.output
    assert snap.output.startswith("Copied data/newsroom.db to ")
    # serve: the Datasette command it starts names the configured archive.
    started: list[list[str]] = []
    monkeypatch.setattr(publish, "run_datasette", lambda command: started.append(command) or 0)
    served = runner.invoke(cli, ["serve", "--config", str(config), "--port", "0"])
    assert served.exit_code == 0, served.output
    assert str(archive) in started[0]
    # --db still wins.
    other = runner.invoke(
        cli, ["snapshot", str(tmp_path / "copy2.db"), "--db", str(tmp_path / "none.db")]
    )
    assert other.exit_code == 1 and "none.db" in other.output


def complete(env: dict[str, str], cwd: Path) -> str:
    """What the installed command prints for shell completion."""
    command = Path(sys.executable).parent / "dispatchwatch"
    done = subprocess.run([str(command)], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_shell_completion(tmp_path: Path) -> None:
    script = complete({"_DISPATCHWATCH_COMPLETE": "bash_source"}, tmp_path)
    assert "_dispatchwatch_completion" in script and "complete " in script
    words = complete({"_DISPATCHWATCH_COMPLETE": "bash_complete",
                      "COMP_WORDS": "dispatchwatch exp", "COMP_CWORD": "1"}, tmp_path)  # fmt: skip
    assert words.split() == ["plain,export"]
    options = complete({"_DISPATCHWATCH_COMPLETE": "bash_complete",
                        "COMP_WORDS": "dispatchwatch export --fo", "COMP_CWORD": "2"}, tmp_path)  # fmt: skip
    assert "plain,--format" in options.split()


def test_the_docs_the_readme_cites_exist() -> None:
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
    for path in (ROOT / "src").rglob("*.py"):
        for target in re.findall(r"docs/[\w.-]+\.md", path.read_text()):
            assert (ROOT / target).exists(), f"{path.name} cites missing {target}"
    assert "docs/daemon.md" in (ROOT / "deploy" / "dispatchwatch.service").read_text()
