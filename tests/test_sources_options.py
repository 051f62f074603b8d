"""The feed-family adapters read their shared options through one module (sources/options.py):
the same option gives the same one-line error, naming the key and its line, in both families."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchwatch.config import parse_config
from dispatchwatch.errors import ConfigError
from dispatchwatch.sources import arcgis, options, socrata

BLOCKS = {
    "socrata": (
        "    adapter: socrata\n"
        "    url: https://data.cincinnati-oh.gov/resource/gexm-h6bt.json\n"
        "    timezone: America/New_York\n"
    ),
    "arcgis": (
        "    adapter: arcgis\n"
        "    url: https://gis.example.org/arcgis/rest/services/Calls/FeatureServer/0\n"
        "    timezone: America/Chicago\n"
    ),
}
FIELDS = "    fields: {incident_id: ID, received: CALL_TIME}\n"
# The same wrong option -> the same message from either adapter.
CASES = {
    "mode: sometimes": "feeds.city: mode must be snapshot or incremental, not 'sometimes'",
    "look_back: soon": "feeds.city: look_back must be a duration like 48h or 30m, not 'soon'",
    "look_back: -5": "feeds.city: look_back must be a duration like 48h or 30m, not -5",
    "page_size: 0": "feeds.city: page_size must be a whole number from 1 to",
    "page_size: true": "feeds.city: page_size must be a whole number from 1 to",
    "name: [a, b]": "feeds.city: name must be text",
    "extra: [1, 2]": "feeds.city: extra must be a list of",
    "colour: blue": "feeds.city: unknown key 'colour' for adapter",
}


@pytest.mark.parametrize("adapter", sorted(BLOCKS))
@pytest.mark.parametrize("line", sorted(CASES))
def test_the_same_option_error_in_both_families(tmp_path: Path, adapter: str, line: str) -> None:
    text = f"feeds:\n  city:\n{BLOCKS[adapter]}    {line}\n{FIELDS}"
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "config.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'config.yaml'}, line 6: "), message
    assert CASES[line] in message, message


@pytest.mark.parametrize(
    ("adapter", "noun"), [(socrata, "a column name"), (arcgis, "an attribute name")]
)
def test_field_mapping_errors_speak_the_family_language(adapter: object, noun: str) -> None:
    base = {"url": "", "timezone": "UTC"}
    base["url"] = (
        "https://data.example.org/resource/abcd-1234.json"
        if adapter is socrata
        else "https://gis.example.org/arcgis/rest/services/C/FeatureServer/0"
    )
    with pytest.raises(ConfigError, match=f"^fields.received must be {noun}$") as info:
        adapter.from_config("x", {**base, "fields": {"incident_id": "ID", "received": "a b"}})  # type: ignore[attr-defined]
    assert info.value.key == "fields"
    with pytest.raises(ConfigError, match="^fields: unknown field 'when'") as info:
        adapter.from_config("x", {**base, "fields": {"incident_id": "ID", "when": "T"}})  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="^unknown time zone 'Mars/Olympus'$") as info:
        adapter.from_config("x", {**base, "timezone": "Mars/Olympus", "fields": {}})  # type: ignore[attr-defined]
    assert info.value.key == "timezone"


def test_builtin_feeds_take_only_their_tunables() -> None:
    with pytest.raises(ConfigError) as info:
        options.check_builtin_keys({"url": "u", "fields": {}}, ("look_back", "page_size"))
    assert info.value.key == "fields"
    assert "Options here: look_back, page_size" in str(info.value)
    options.check_builtin_keys({"_builtin": "x", "url": "u", "look_back": "1h"}, ("look_back",))


def test_readers_return_what_the_adapters_store() -> None:
    assert options.duration("look_back", "48h") == 48 * 3600
    assert options.duration("look_back", 30) == 30
    assert options.page_size(500, 1000) == 500
    assert options.interval_text(90) == "90s"
    assert options.interval_text("2m") == "2m"
    assert options.zone("America/Chicago") == "America/Chicago"
    with pytest.raises(ConfigError) as info:
        options.zone(5)  # not a name at all: still a clean error, not a TypeError
    assert info.value.key == "timezone"
