"""config.yaml: the documented shape loads; every mistake names its key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchwatch.config import load_config, parse_config, parse_duration, parse_size
from dispatchwatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_config_loads() -> None:
    config = load_config(REPO / "config.yaml")
    assert {"seattle-fire", "milwaukee-police"} <= set(config.feeds)
    seattle = config.feeds["seattle-fire"]
    assert seattle.scraper.slug == "seattle-fire"
    assert seattle.interval == 60
    assert config.database == REPO / "dispatch.db"  # relative to the config file


def test_the_design_example_loads(tmp_path: Path) -> None:
    config = parse_config(
        """
database: dispatch.db
contact: ops@example.org          # goes into the User-Agent
feeds:
  seattle-fire:
    interval: 60s
  milwaukee-police:
    interval: 5m
    url: https://itmdapps.milwaukee.gov/MPDCallData/
  my-mirror:
    scraper: milwaukee-police
    url: http://127.0.0.1:8080/mke
    enabled: false
""",
        tmp_path / "config.yaml",
    )
    mirror = config.feeds["my-mirror"]
    assert mirror.scraper.slug == "milwaukee-police"
    assert (mirror.url, mirror.enabled) == ("http://127.0.0.1:8080/mke", False)
    assert config.feeds["milwaukee-police"].interval == 300
    assert [f.slug for f in config.enabled_feeds] == ["seattle-fire", "milwaukee-police"]
    assert "ops@example.org" in config.user_agent and "dispatchwatch/" in config.user_agent


def test_defaults_and_per_feed_network_options() -> None:
    config = parse_config(
        """
defaults:
  timeout: 5s
  max_bytes: 2MB
feeds:
  seattle-fire:
    read_timeout: 20s
  milwaukee-police: {}
"""
    )
    seattle, milwaukee = config.feeds["seattle-fire"], config.feeds["milwaukee-police"]
    assert (seattle.connect_timeout, seattle.read_timeout) == (5, 20)
    assert milwaukee.max_bytes == 2 * 1024 * 1024
    assert milwaukee.interval == 300  # the scraper's default


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h", 3600), (45, 45), ("1.5m", 90)],
)
def test_durations(text: object, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "-1s", "0s", "5 minutes", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_sizes() -> None:
    assert parse_size("10MB") == 10 * 1024 * 1024
    assert parse_size("512k") == 512 * 1024
    assert parse_size(1000) == 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "feeds:\n  seattle-fire:\n    intervall: 60s\n",
            r"line 3: unknown key 'feeds.seattle-fire.intervall'",
        ),
        ("feedz: {}\n", r"line 1: unknown key 'feedz'"),
        (
            "feeds:\n  seattle-fire:\n    interval: soon\n",
            r"line 3.*feeds.seattle-fire.interval: not a duration",
        ),
        ("feeds:\n  seattle-fire:\n    interval: 1ms\n", r"interval: must be between 100ms and 7d"),
        (
            "feeds:\n  x:\n    scraper: atlantis-police\n",
            r"line 3.*unknown scraper 'atlantis-police'",
        ),
        ("feeds:\n  atlantis-police: {}\n", r"line 2.*unknown scraper 'atlantis-police'"),
        (
            "feeds:\n  seattle-fire:\n    enabled: yes please\n",
            r"line 3.*enabled must be true or false",
        ),
        ("feeds:\n  seattle-fire:\n    url: ftp://x\n", r"url must be an http\(s\) URL"),
        ("feeds:\n  seattle-fire:\n    timezone: Mars/Olympus\n", r"unknown time zone"),
        (
            "feeds:\n  seattle-fire:\n    precision: street\n",
            r"precision must be 'block' or 'exact'",
        ),
        ("feeds:\n  seattle-fire:\n    max_bytes: lots\n", r"not a size"),
        ("feeds: [seattle-fire]\n", r"feeds must be a mapping"),
        ("database: 3\nfeeds: {}\n", r"line 1: database must be text"),
        ("contact: ops@example.org\n", r"missing key 'feeds'"),
        ("", r"empty"),
        ("feeds: {\n", r"not valid YAML"),
        ("feeds:\n  Seattle Fire: {}\n", r"feed name"),
        ("feeds:\n  off: {}\n", r"line 2: feed name 'off' is read by YAML as bool; quote it"),
        ("feeds:\n  123: {}\n", r"line 2: feed name '123' is read by YAML as int"),
        ("123: x\nfeeds: {}\n", r"line 1: unknown key 123"),
        (
            "feeds:\n  seattle-fire:\n    on: true\n",
            r"line 3: unknown key 'feeds.seattle-fire.True'",
        ),
    ],
)
def test_config_errors_name_the_key_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, Path("config.yaml"))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_plugins_dir_adds_a_scraper(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "springfield.py").write_text(
        "from dispatchwatch.scraper import ParseResult, Scraper\n"
        "def parse(page):\n    return ParseResult(rows=[])\n"
        "scraper = Scraper(slug='springfield-fire', name='Springfield Fire', agency='SFD',\n"
        "    city='Springfield', url='http://127.0.0.1/', timezone='America/Chicago',\n"
        "    parse=parse)\n"
    )
    (tmp_path / "config.yaml").write_text("plugins_dir: plugins\nfeeds:\n  springfield-fire: {}\n")
    config = load_config(tmp_path / "config.yaml")
    assert config.feeds["springfield-fire"].scraper.city == "Springfield"
