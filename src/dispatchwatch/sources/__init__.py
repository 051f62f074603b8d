"""Feed-family adapters: generic plan/parse pairs for portals many cities share.

A city on one of these families is a few lines: a small module in ``scrapers/`` that calls the
adapter's ``scraper(...)`` factory (built-in feeds), or a block in config.yaml naming
``adapter:`` (a user's own city)::

    feeds:
      cincinnati-police:
        adapter: socrata
        url: https://data.cincinnati-oh.gov/resource/gexm-h6bt.json
        ...

Each adapter module defines ``from_config(slug, options) -> Scraper``: it validates its own
options (raising :class:`~dispatchwatch.errors.ConfigError` naming the key) and returns a
:class:`~dispatchwatch.scraper.Scraper` whose ``plan`` and ``parse`` are pure functions.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..scraper import Scraper

#: Adapter name -> module (imported on first use).
ADAPTERS = {
    "socrata": "dispatchwatch.sources.socrata",
    "arcgis": "dispatchwatch.sources.arcgis",
}


def build_scraper(adapter: str, slug: str, options: Mapping[str, Any]) -> Scraper:
    """The scraper for a config-only feed ``slug`` on ``adapter`` with ``options`` (every key
    of the feed's config block other than the engine's own). Raises :class:`ConfigError`."""
    module_name = ADAPTERS.get(adapter)
    if module_name is None:
        raise ConfigError(f"unknown adapter {adapter!r} (available: {', '.join(sorted(ADAPTERS))})")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # not built yet, or an extra not installed
        raise ConfigError(f"adapter {adapter!r} is not available: {exc}") from None
    return module.from_config(slug, options)
