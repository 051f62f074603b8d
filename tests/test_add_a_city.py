"""The README's "Add a city" tutorial works as written, and plugins load from a folder."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatchwatch.cli import cli
from dispatchwatch.config import default_feed
from dispatchwatch.errors import LayoutError
from dispatchwatch.pipeline import parse_page
from dispatchwatch.plugins import load_scrapers

README = Path(__file__).resolve().parents[1] / "README.md"

PAGE = """<html><body><h1>Active calls</h1>
<table>
 <tr><th>Incident</th><th>Time received</th><th>Type</th><th>Location</th></tr>
 <tr><td>SPR-001</td><td>3/9/2024 11:58:02 PM</td><td>ALARM</td><td>742 Evergreen Ter</td></tr>
 <tr><td>SPR-002</td><td>3/10/2024 12:03:40 AM</td><td>NOISE</td><td>Main St / 2nd St</td></tr>
 <tr><td></td><td></td><td></td><td></td></tr>
</table></body></html>"""


def tutorial_module() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Add a city") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the tutorial's code block is missing"
    return textwrap.dedent(match.group(1))


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    folder = tmp_path / "my_scrapers"
    folder.mkdir()
    (folder / "springfield_police.py").write_text(tutorial_module(), encoding="utf-8")
    load_scrapers.cache_clear()
    yield folder
    load_scrapers.cache_clear()


def test_the_tutorial_scraper_parses_its_page(plugins: Path) -> None:
    feed = default_feed("springfield-police", plugins)
    incidents = parse_page(feed, PAGE.encode()).incidents
    assert [(i.incident_id, i.received_at, i.address) for i in incidents] == [
        ("SPR-001", "2024-03-10T05:58:02Z", "7XX EVERGREEN TER"),
        ("SPR-002", "2024-03-10T06:03:40Z", "MAIN ST / 2ND ST"),
    ]


def test_the_tutorial_scraper_refuses_a_changed_page(plugins: Path) -> None:
    feed = default_feed("springfield-police", plugins)
    with pytest.raises(LayoutError, match="time received"):
        parse_page(feed, PAGE.replace("Time received", "When").encode())


def test_the_tutorial_commands(plugins: Path, tmp_path: Path) -> None:
    page = tmp_path / "springfield.html"
    page.write_text(PAGE)
    runner = CliRunner()
    listed = runner.invoke(cli, ["feeds", "--plugins-dir", str(plugins)])
    assert "springfield-police" in listed.output
    parsed = runner.invoke(
        cli, ["parse", "springfield-police", str(page), "--plugins-dir", str(plugins)]
    )
    assert parsed.exit_code == 0, parsed.output
    assert len(parsed.output.splitlines()) == 2


def test_a_broken_plugin_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "oops.py").write_text("import does_not_exist\n")
    load_scrapers.cache_clear()
    result = CliRunner().invoke(cli, ["feeds", "--plugins-dir", str(folder)])
    load_scrapers.cache_clear()
    assert result.exit_code == 1
    assert "oops.py failed to load" in result.output and "Traceback" not in result.output
