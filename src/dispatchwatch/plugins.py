"""Finding scraper plugins.

Three places, later ones overriding earlier ones by slug:

1. the built-in package ``dispatchwatch.scrapers`` (the repository's ``scrapers/`` folder;
   every module in it that defines ``scraper``),
2. installed packages registering the ``dispatchwatch.scrapers`` entry-point group,
3. a plugins folder given by ``--plugins-dir`` or ``plugins_dir:`` in config.yaml, whose
   ``*.py`` files are loaded by path (like Datasette's ``--plugins-dir``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
import sys
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from .errors import ConfigError, UnknownFeedError
from .scraper import Scraper

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dispatchwatch.scrapers"


def _scraper_of(module: ModuleType, origin: str) -> Scraper | None:
    found = getattr(module, "scraper", None)
    if found is None:
        return None
    if not isinstance(found, Scraper):
        raise ConfigError(f"{origin}: 'scraper' must be a dispatchwatch.scraper.Scraper")
    return found


def _builtin() -> list[Scraper]:
    package = importlib.import_module("dispatchwatch.scrapers")
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"dispatchwatch.scrapers.{info.name}")
        scraper = _scraper_of(module, module.__name__)
        if scraper is not None:
            found.append(scraper)
    return found


def _from_entry_points() -> list[Scraper]:
    found = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken third-party plugin must not break the others
            log.warning("scraper plugin %s could not be loaded: %s", entry.name, exc)
            continue
        except SystemExit as exc:  # nor one that exits the process while being imported
            log.warning("scraper plugin %s called sys.exit(%s) while loading", entry.name, exc)
            continue
        scraper = loaded if isinstance(loaded, Scraper) else _scraper_of(loaded, entry.value)
        if scraper is not None:
            found.append(scraper)
    return found


def _from_folder(folder: Path) -> list[Scraper]:
    if not folder.is_dir():
        raise ConfigError(f"plugins folder {folder} does not exist")
    found = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"dispatchwatch_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(f"plugin {path} failed to load: {_one_line(exc)}") from exc
        except SystemExit as exc:  # would end dispatchwatch silently, with the plugin's code
            raise ConfigError(
                f"plugin {path} called sys.exit({exc.code!r}) while loading "
                "(a plugin must raise an exception, not exit)"
            ) from None
        scraper = _scraper_of(module, str(path))
        if scraper is not None:
            found.append(scraper)
    return found


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@cache
def load_scrapers(plugins_dir: Path | None = None) -> dict[str, Scraper]:
    """Every available scraper by slug."""
    scrapers: dict[str, Scraper] = {}
    for scraper in _builtin() + _from_entry_points():
        scrapers[scraper.slug] = scraper
    if plugins_dir is not None:
        for scraper in _from_folder(Path(plugins_dir)):
            scrapers[scraper.slug] = scraper
    return dict(sorted(scrapers.items()))


def get_scraper(slug: str, plugins_dir: Path | None = None) -> Scraper:
    scrapers = load_scrapers(plugins_dir)
    try:
        return scrapers[slug]
    except KeyError:
        known = ", ".join(scrapers) or "none"
        raise UnknownFeedError(f"unknown scraper {slug!r} (available: {known})") from None
