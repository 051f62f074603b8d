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

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import __version__
from .archive import FeedRecord
from .errors import ConfigError, UnknownFeedError
from .pagestore import DEFAULT_RETENTION, Retention, parse_retention
from .plugins import get_scraper
from .scraper import Scraper

if TYPE_CHECKING:
    import yaml  # imported where a config is parsed: ~0.1 s of instructions at import

DEFAULT_CONFIG = "config.yaml"
DEFAULT_DATABASE = "dispatch.db"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
MIN_INTERVAL = 0.1  # seconds; anything faster is a typo, not a feed
MAX_INTERVAL = 7 * 86400.0  # seconds; a feed polled less than weekly is not live
MIN_TIMEOUT = 0.001  # seconds
MAX_TIMEOUT = 3600.0  # seconds; a request that may hang for more than an hour is a typo
MAX_SIZE = 1024**3  # bytes; a response is held in memory, so 1 GiB at most
#: The longest duration any option takes (about 100 years): longer ones overflow datetime
#: arithmetic and timers, and are typos anyway. Options have tighter bounds of their own.
MAX_DURATION = 100 * 365 * 86400.0
DEFAULT_MASS_GONE = 0.5

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


def format_duration(seconds: float) -> str:
    """Seconds as the shortest duration text that reads back the same: ``100ms``, ``7d``."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNIT_SECONDS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds * 1000:g}ms"


def parse_duration(
    value: Any, *, minimum: float | None = None, maximum: float = MAX_DURATION
) -> float:
    """``500ms``, ``30s``, ``2m``, ``1h``, ``7d`` (or a bare number of seconds) -> seconds.

    Raises :class:`ValueError` unless the result is finite, positive and within
    [``minimum``, ``maximum``] seconds (``maximum`` defaults to :data:`MAX_DURATION`).
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 30s, 2m, 1h)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if math.isnan(seconds):
        raise ValueError(f"not a duration: {value!r}")
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    low = minimum if minimum is not None else 0.0
    if not low <= seconds <= maximum:
        if minimum is None:
            raise ValueError(f"duration must be at most {format_duration(maximum)}, got {value!r}")
        raise ValueError(
            f"must be between {format_duration(low)} and {format_duration(maximum)}, got {value!r}"
        )
    return seconds


def parse_size(value: Any, *, maximum: int = MAX_SIZE) -> int:
    """``10MB``, ``512k`` or a number of bytes -> bytes, at least 1 and at most ``maximum``."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int | float):
        number = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"not a size: {value!r} (use e.g. 10MB, 512KB)")
        number = float(match.group(1)) * _SIZE_BYTES[(match.group(2) or "b").lower()]
    if isinstance(number, float) and math.isnan(number):
        raise ValueError(f"not a size: {value!r}")
    size = int(number) if number <= maximum else maximum + 1
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    if size > maximum:
        raise ValueError(f"size must be at most {maximum // 1024**2}MB, got {value!r}")
    return size


def scraper_interval(scraper: Scraper) -> float:
    """A scraper's default interval in seconds; raises :class:`ConfigError` naming the
    scraper when a plugin declares one out of bounds."""
    try:
        return parse_duration(scraper.interval, minimum=MIN_INTERVAL, maximum=MAX_INTERVAL)
    except ValueError as exc:
        raise ConfigError(f"scraper {scraper.slug!r}: interval: {exc}") from None


def parse_share(value: Any) -> float | None:
    """``50%``, ``0.5`` -> 0.5; ``off`` / ``false`` -> None (a share of a list, 0 to 1)."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a share: {value!r} (use e.g. 50% or off)")
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"not a share: {value!r} (use e.g. 50% or off)") from None
    if not 0 < share <= 1:  # also rejects nan
        raise ValueError(f"must be above 0% and at most 100%, got {value!r}")
    return share


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
    #: A snapshot poll that would mark more than this share of the list gone at once waits
    #: for the next poll to confirm it (None: believe every poll at once).
    mass_gone_share: float | None = DEFAULT_MASS_GONE
    #: Other hosts the feed's server may redirect to (e.g. a CDN); any other is an error.
    redirect_hosts: tuple[str, ...] = ()
    #: How much of the raw pages to keep (``keep_pages:``; see :mod:`dispatchwatch.pagestore`).
    keep_pages: Retention = DEFAULT_RETENTION
    #: Scraper or adapter options from config.yaml (a Socrata dataset, a field mapping...),
    #: over the scraper's own ``options``; scrapers read them in ``plan`` via the context.
    options: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def import_only(self) -> bool:
        """No URL, never polled: filled by ``dispatchwatch import`` only."""
        return bool(self.scraper.options.get("import_only"))

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
    #: Watch rules by name (:class:`dispatchwatch.alerts.AlertRule`), from ``alerts:``.
    alerts: dict[str, Any] = field(default_factory=dict)

    @property
    def user_agent(self) -> str:
        contact = f"; {self.contact}" if self.contact else ""
        return (
            f"dispatchwatch/{__version__} (+https://github.com/dispatchwatch/dispatchwatch"
            f"{contact})"
        )

    @property
    def enabled_feeds(self) -> list[Feed]:
        return [feed for feed in self.feeds.values() if feed.enabled and not feed.import_only]


def default_feed(slug: str, plugins_dir: Path | None = None) -> Feed:
    """A feed named after a scraper, with that scraper's defaults (for ``parse``/``ingest``)."""
    scraper = get_scraper(slug, plugins_dir)
    return Feed(slug=slug, scraper=scraper, url=scraper.url, interval=scraper_interval(scraper))


# --- validation ------------------------------------------------------------------------------


def _where(node: yaml.Node | None, path: Path | None) -> str:
    name = str(path) if path else "config"
    if node is None:
        return name
    return f"{name}, line {node.start_mark.line + 1}"


def _mapping(node: yaml.Node) -> dict[Any, tuple[yaml.Node, yaml.Node]]:
    """A YAML mapping node as {key as loaded: (key node, value node)}: keyed like the
    loaded data, so keys YAML reads as non-text (``off``, ``123``) are found too."""
    import yaml

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


#: What describes an import-only feed (``import_only: true``: no URL, never polled).
IMPORT_ONLY_KEYS = ("name", "agency", "city")
TOP_LEVEL_KEYS = {"database", "contact", "feeds", "plugins_dir", "defaults", "alerts"}
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
    "mass_gone",
    "import_only",
    "redirect_hosts",
    "keep_pages",
}
DEFAULT_KEYS = FEED_KEYS - {"scraper", "url", "import_only"}
#: (least, most) seconds of every duration option, checked at load.
DURATION_BOUNDS = {
    "interval": (MIN_INTERVAL, MAX_INTERVAL),
    "connect_timeout": (MIN_TIMEOUT, MAX_TIMEOUT),
    "read_timeout": (MIN_TIMEOUT, MAX_TIMEOUT),
    "timeout": (MIN_TIMEOUT, MAX_TIMEOUT),
}


def load_config(path: str | Path) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` naming the key and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_config(text, path)


def _yaml_error(exc: yaml.YAMLError, text: str, path: Path | None) -> str:
    """A YAML parser error as one line: where (line and column) and what."""
    import yaml

    name = str(path) if path else "config"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem and mark is exc.problem_mark:
            problem = f"{problem} ({exc.context})"
        where = f"{name}, line {mark.line + 1}, column {mark.column + 1}" if mark else name
    elif isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        where = f"{name}, line {line}, column {column}"
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"character U+{char:04X} is not allowed"
    else:
        where, problem = name, str(exc)
    return f"{where}: not valid YAML: {' '.join(str(problem).split())}"


def _check_duplicate_keys(root: yaml.Node, path: Path | None) -> None:
    """PyYAML keeps the last of two equal keys silently; a config with both is a mistake."""
    import yaml

    constructor = yaml.constructor.SafeConstructor()
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias repeats a node
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            for key_node, value_node in node.value:
                stack.append(value_node)
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                key = constructor.construct_object(key_node)
                if key in first:
                    raise ConfigError(
                        f"{_where(key_node, path)}: duplicate key {key_node.value!r} "
                        f"(also at line {first[key].start_mark.line + 1}; keep one)"
                    )
                first[key] = key_node


def _load_yaml(text: str, loader_class: Any, path: Path | None) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (checked for duplicate keys) and its data, in one parse."""
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_duplicate_keys(root, path)
        return root, loader.construct_document(root)
    finally:
        loader.dispose()


def parse_config(text: str, path: Path | None = None) -> Config:
    import yaml

    # LibYAML's loader when PyYAML was built with it: a config of 1,000 feeds loads in
    # ~0.15 s instead of ~1.1 s (the daemon's start-up waits for it).
    fast_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root, data = _load_yaml(text, fast_loader, path)
    except yaml.YAMLError:
        try:  # the error as PyYAML's own loader words and places it
            root, data = _load_yaml(text, yaml.SafeLoader, path)
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_error(exc, text, path)) from None
    if root is None:
        raise ConfigError(f"{path or 'config'}: the file is empty (it needs a 'feeds:' mapping)")
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
        if not re.fullmatch(r"[ -~]*", contact):  # it goes into an HTTP header
            raise ConfigError(
                f"{_where(node_of('contact'), path)}: contact must be one line of printable "
                "ASCII (an e-mail address or URL)"
            )
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
        described: dict[str, str] = {}
        if options.get("import_only") is True:  # its description is the engine's, not an adapter's
            described = {k: options[k] for k in IMPORT_ONLY_KEYS if k in options}
            for key, value in described.items():
                _typed(f"feeds.{slug}.{key}", value_node, value, str, where)
            options = {k: v for k, v in options.items() if k not in described}
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
        if values.pop("import_only", False):
            scraper = _import_only(slug, scraper_slug, described, values, plugins_dir, where)
        elif adapter is not None and "adapter" in options:
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
            interval=values.pop("interval", None) or scraper_interval(scraper),
            options=feed_options,
            **values,
        )
    alerts = {}
    if data.get("alerts") is not None:  # (the alerts module only when there are rules)
        from .alerts import parse_alerts

        alerts = parse_alerts(data.get("alerts"), node_of("alerts"), path, set(feeds))
    return Config(
        database=database if database.is_absolute() else base / database,
        contact=contact,
        feeds=feeds,
        plugins_dir=plugins_dir,
        path=path,
        alerts=alerts,
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


def _import_only(
    slug: str,
    scraper_slug: str,
    described: dict[str, Any],
    values: dict[str, Any],
    plugins_dir: Path | None,
    where: str,
) -> Scraper:
    """The scraper of an import-only feed: a scraper of that name (e.g. the built-in
    ``chicago-police``), else one made from ``name``, ``agency``, ``city`` and ``timezone``."""
    from dataclasses import replace

    from .imports.feeds import import_only_scraper

    try:
        scraper = get_scraper(scraper_slug, plugins_dir)
    except UnknownFeedError:
        if "timezone" not in values:
            raise ConfigError(f"{where}: import-only feed {slug!r} needs a timezone") from None
        return import_only_scraper(
            slug,
            name=described.get("name"),
            agency=described.get("agency", ""),
            city=described.get("city", ""),
            timezone=values["timezone"],
        )
    overrides = {k: v for k, v in described.items() if k in ("name", "agency", "city")}
    return replace(scraper, options={**scraper.options, "import_only": True}, **overrides)


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
        if key == "import_only":
            _typed(name, value_node, value, bool, where)
            values[key] = value
        elif key == "enabled":
            _typed(name, value_node, value, bool, where)
            values["enabled"] = value
        elif key in DURATION_BOUNDS:
            low, high = DURATION_BOUNDS[key]
            convert = partial(parse_duration, minimum=low, maximum=high)
            seconds = _converted(name, value, convert, where)
            if key == "timeout":
                values["connect_timeout"] = values["read_timeout"] = seconds
            else:
                values[key] = seconds
        elif key == "max_bytes":
            values["max_bytes"] = _converted(name, value, parse_size, where)
        elif key == "redirect_hosts":
            if not isinstance(value, list) or not all(
                isinstance(h, str) and re.fullmatch(r"[A-Za-z0-9.-]+", h) for h in value
            ):
                raise ConfigError(f"{where}: {name} must be a list of host names, got {value!r}")
            values["redirect_hosts"] = tuple(value)
        elif key == "mass_gone":
            values["mass_gone_share"] = _converted(name, value, parse_share, where)
        elif key == "keep_pages":
            values["keep_pages"] = _converted(name, value, parse_retention, where)
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
