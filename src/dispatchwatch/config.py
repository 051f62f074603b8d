"""Loading and validating config.yaml.

The file is a mapping of feed slug to options (see the README's config reference)::

    database: dispatch.db
    contact: ops@example.org
    feeds:
      seattle-fire:
        interval: 60s
      my-mirror:
        scraper: milwaukee-police
        url: http://127.0.0.1:8080/mke
        enabled: false

Every error names the offending key and, where the YAML parser knows it, the line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from . import __version__
from .archive import FeedRecord
from .errors import ConfigError, UnknownFeedError
from .plugins import get_scraper
from .scraper import Scraper

DEFAULT_CONFIG = "config.yaml"
DEFAULT_DATABASE = "dispatch.db"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
MIN_INTERVAL = 0.1  # seconds; anything faster is a typo, not a feed

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.I)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|k|m|g)?\s*$", re.I)
_SIZE_BYTES = {
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
}


def parse_duration(value: Any) -> float:
    """``500ms``, ``30s``, ``2m``, ``1h`` (or a bare number of seconds) -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 30s, 2m, 1h)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


def parse_size(value: Any) -> int:
    """``10MB``, ``512k`` or a number of bytes -> bytes."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"not a size: {value!r} (use e.g. 10MB, 512KB)")
        size = int(float(match.group(1)) * _SIZE_BYTES[(match.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return size


@dataclass(frozen=True)
class Feed:
    """One configured feed: a scraper plus where and how often to poll it."""

    slug: str
    scraper: Scraper
    url: str
    interval: float
    enabled: bool = True
    timezone: str = ""
    precision: str = "block"
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    #: Scraper or adapter options from config.yaml (a Socrata dataset, a field mapping...),
    #: over the scraper's own ``options``; scrapers read them in ``plan`` via the context.
    options: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def zone(self) -> str:
        return self.timezone or self.scraper.timezone

    def record(self) -> FeedRecord:
        """The feed's row for the archive's ``feeds`` table."""
        s = self.scraper
        return FeedRecord(
            slug=self.slug,
            name=s.name,
            agency=s.agency,
            city=s.city,
            scraper=s.slug,
            url=self.url,
            timezone=self.zone,
            snapshot=s.snapshot,
            interval_seconds=self.interval,
            state=s.state,
            homepage=s.homepage,
            precision=self.precision,
            license=s.license,
            source_notes=s.source_notes,
        )


@dataclass(frozen=True)
class Config:
    database: Path = Path(DEFAULT_DATABASE)
    contact: str | None = None
    feeds: dict[str, Feed] = field(default_factory=dict)
    plugins_dir: Path | None = None
    path: Path | None = None

    @property
    def user_agent(self) -> str:
        contact = f"; {self.contact}" if self.contact else ""
        return (
            f"dispatchwatch/{__version__} (+https://github.com/dispatchwatch/dispatchwatch"
            f"{contact})"
        )

    @property
    def enabled_feeds(self) -> list[Feed]:
        return [feed for feed in self.feeds.values() if feed.enabled]


def default_feed(slug: str, plugins_dir: Path | None = None) -> Feed:
    """A feed named after a scraper, with that scraper's defaults (for ``parse``/``ingest``)."""
    scraper = get_scraper(slug, plugins_dir)
    return Feed(
        slug=slug, scraper=scraper, url=scraper.url, interval=parse_duration(scraper.interval)
    )


# --- validation ------------------------------------------------------------------------------


def _where(node: yaml.Node | None, path: Path | None) -> str:
    name = str(path) if path else "config"
    if node is None:
        return name
    return f"{name}, line {node.start_mark.line + 1}"


def _mapping(node: yaml.Node) -> dict[Any, tuple[yaml.Node, yaml.Node]]:
    """A YAML mapping node as {key as loaded: (key node, value node)}: keyed like the
    loaded data, so keys YAML reads as non-text (``off``, ``123``) are found too."""
    constructor = yaml.constructor.SafeConstructor()
    return {constructor.construct_object(k): (k, v) for k, v in node.value}


def _typed(
    key: str, node: yaml.Node, value: Any, expected: type | tuple[type, ...], where: str
) -> Any:
    if (
        isinstance(value, bool)
        and expected is not bool
        and bool not in (expected if isinstance(expected, tuple) else (expected,))
    ):
        raise ConfigError(f"{where}: {key} must be {_type_name(expected)}, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: {key} must be {_type_name(expected)}, got {value!r}")
    return value


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {
        str: "text",
        bool: "true or false",
        int: "a number",
        float: "a number",
        dict: "a mapping",
    }
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def _converted(key: str, value: Any, convert: Callable[[Any], Any], where: str) -> Any:
    try:
        return convert(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {key}: {exc}") from None


TOP_LEVEL_KEYS = {"database", "contact", "feeds", "plugins_dir", "defaults"}
FEED_KEYS = {
    "scraper",
    "url",
    "interval",
    "enabled",
    "timezone",
    "precision",
    "connect_timeout",
    "read_timeout",
    "timeout",
    "max_bytes",
}
DEFAULT_KEYS = FEED_KEYS - {"scraper", "url"}


def load_config(path: str | Path) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` naming the key and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | None = None) -> Config:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path or 'config'}: not valid YAML: {exc}") from None
    if root is None:
        raise ConfigError(f"{path or 'config'}: the file is empty (it needs a 'feeds:' mapping)")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{_where(root, path)}: the top level must be a mapping")
    nodes = _mapping(root)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(
                f"{_where(nodes[key][0], path)}: unknown key {key!r} "
                f"(expected one of: {', '.join(sorted(TOP_LEVEL_KEYS))})"
            )
    base = path.parent if path else Path.cwd()

    def node_of(key: str) -> yaml.Node | None:
        return nodes[key][1] if key in nodes else None

    database = Path(
        _typed(
            "database",
            node_of("database"),
            data.get("database", DEFAULT_DATABASE),
            str,
            _where(node_of("database"), path),
        )
    )
    contact = data.get("contact")
    if contact is not None:
        _typed("contact", node_of("contact"), contact, str, _where(node_of("contact"), path))
    plugins_dir = data.get("plugins_dir")
    if plugins_dir is not None:
        _typed(
            "plugins_dir",
            node_of("plugins_dir"),
            plugins_dir,
            str,
            _where(node_of("plugins_dir"), path),
        )
        plugins_dir = (base / plugins_dir).resolve()

    defaults: dict[str, Any] = {}
    if "defaults" in data:
        defaults_node = node_of("defaults")
        _typed("defaults", defaults_node, data["defaults"], dict, _where(defaults_node, path))
        assert isinstance(defaults_node, yaml.MappingNode)
        defaults = _feed_options(
            "defaults", data["defaults"], _mapping(defaults_node), path, DEFAULT_KEYS
        )

    feeds_node = node_of("feeds")
    raw_feeds = data.get("feeds")
    if raw_feeds is None:
        raise ConfigError(f"{_where(root, path)}: missing key 'feeds'")
    _typed("feeds", feeds_node, raw_feeds, dict, _where(feeds_node, path))
    assert isinstance(feeds_node, yaml.MappingNode)
    feed_nodes = _mapping(feeds_node)
    feeds: dict[str, Feed] = {}
    for slug, options in raw_feeds.items():
        key_node, value_node = feed_nodes[slug]
        where = _where(key_node, path)
        if not isinstance(slug, str):
            raise ConfigError(
                f"{where}: feed name {key_node.value!r} is read by YAML as "
                f'{type(slug).__name__}; quote it: "{key_node.value}":'
            )
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", slug):
            raise ConfigError(
                f"{where}: feed name {slug!r} must be lower-case letters, digits, - or _"
            )
        if options is None:
            options = {}
        _typed(f"feeds.{slug}", value_node, options, dict, where)
        option_nodes = _mapping(value_node) if isinstance(value_node, yaml.MappingNode) else {}
        # Keys the engine does not know belong to the feed's adapter (Socrata, ArcGIS), which
        # validates them itself: a config-only city, or options of a built-in adapter feed.
        engine_options = {k: v for k, v in options.items() if k in FEED_KEYS}
        adapter_options = {k: v for k, v in options.items() if k not in FEED_KEYS}
        adapter = adapter_options.pop("adapter", None)
        if adapter is None and adapter_options and "scraper" not in options:
            builtin = _maybe_scraper(slug, plugins_dir)
            if builtin is not None and builtin.adapter:
                adapter = builtin.adapter
        if adapter is None:
            engine_options = options  # unknown keys are reported as such below
        values = {
            **defaults,
            **_feed_options(f"feeds.{slug}", engine_options, option_nodes, path, FEED_KEYS),
        }
        scraper_slug = values.pop("scraper", slug)
        feed_options: dict[str, Any] = {}
        if adapter is not None and "adapter" in options:
            scraper = _adapter_scraper(
                slug, adapter, {**adapter_options, **_engine_view(values)}, option_nodes,
                key_node, path,
            )  # fmt: skip
        else:
            try:
                scraper = get_scraper(scraper_slug, plugins_dir)
            except UnknownFeedError as exc:
                node = option_nodes.get("scraper", (key_node,))[0]
                raise ConfigError(f"{_where(node, path)}: feeds.{slug}: {exc}") from None
            if adapter_options:
                # Options over a built-in adapter feed (an app token variable, a look-back):
                # checked by building the scraper they would make, then passed to its plan.
                _adapter_scraper(
                    slug, adapter or scraper.adapter,
                    {**scraper.options, **adapter_options, **_engine_view(values)},
                    option_nodes, key_node, path,
                )  # fmt: skip
                feed_options = adapter_options
        feeds[slug] = Feed(
            slug=slug,
            scraper=scraper,
            url=values.pop("url", scraper.url),
            interval=values.pop("interval", None) or parse_duration(scraper.interval),
            options=feed_options,
            **values,
        )
    return Config(
        database=database if database.is_absolute() else base / database,
        contact=contact,
        feeds=feeds,
        plugins_dir=plugins_dir,
        path=path,
    )


def _maybe_scraper(slug: str, plugins_dir: Path | None) -> Scraper | None:
    try:
        return get_scraper(slug, plugins_dir)
    except UnknownFeedError:
        return None


def _engine_view(values: dict[str, Any]) -> dict[str, Any]:
    """The engine options an adapter also needs to build a scraper (its URL, zone...)."""
    return {k: values[k] for k in ("url", "timezone", "interval") if k in values}


def _adapter_scraper(
    slug: str,
    adapter: Any,
    options: dict[str, Any],
    option_nodes: dict[Any, tuple[yaml.Node, yaml.Node]],
    key_node: yaml.Node,
    path: Path | None,
) -> Scraper:
    """Build a feed's scraper from its adapter, turning the adapter's complaints into config
    errors that name the key and its line."""
    from .sources import build_scraper

    if not isinstance(adapter, str):
        node = option_nodes.get("adapter", (key_node,))[0]
        raise ConfigError(f"{_where(node, path)}: feeds.{slug}.adapter must be text")
    try:
        return build_scraper(adapter, slug, options)
    except ConfigError as exc:
        key = getattr(exc, "key", None)
        node = option_nodes.get(key, option_nodes.get("adapter", (key_node,)))[0]
        raise ConfigError(f"{_where(node, path)}: feeds.{slug}: {exc}") from None


def _feed_options(
    prefix: str,
    options: dict[str, Any],
    nodes: dict[str, tuple[yaml.Node, yaml.Node]],
    path: Path | None,
    allowed: set[str],
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in options.items():
        key_node, value_node = nodes.get(key, (None, None))
        where = _where(key_node, path)
        name = f"{prefix}.{key}"
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {name!r} (expected one of: {', '.join(sorted(allowed))})"
            )
        if key in ("scraper", "url", "timezone", "precision"):
            _typed(name, value_node, value, str, where)
        if key == "enabled":
            _typed(name, value_node, value, bool, where)
            values["enabled"] = value
        elif key == "interval":
            values["interval"] = _converted(name, value, parse_duration, where)
            if values["interval"] < MIN_INTERVAL:
                raise ConfigError(f"{where}: {name} must be at least {MIN_INTERVAL * 1000:g}ms")
        elif key in ("connect_timeout", "read_timeout"):
            values[key] = _converted(name, value, parse_duration, where)
        elif key == "timeout":
            seconds = _converted(name, value, parse_duration, where)
            values["connect_timeout"] = values["read_timeout"] = seconds
        elif key == "max_bytes":
            values["max_bytes"] = _converted(name, value, parse_size, where)
        elif key == "timezone":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"{where}: {name}: unknown time zone {value!r}") from None
            values["timezone"] = value
        elif key == "precision":
            if value not in ("block", "exact"):
                raise ConfigError(f"{where}: {name} must be 'block' or 'exact', got {value!r}")
            values["precision"] = value
        elif key == "url":
            if not re.match(r"^https?://", value):
                raise ConfigError(f"{where}: {name} must be an http(s) URL, got {value!r}")
            values["url"] = value
        elif key == "scraper":
            values["scraper"] = value
    return values
