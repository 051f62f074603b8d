"""Publishing an archive with Datasette: views, metadata, snapshots and ``serve``.

- :mod:`.zones`: the ``zone_offsets`` lookup table (:func:`ensure_zone_offsets`) and the SQL
  that turns a UTC time into the feed's local time with it.
- :mod:`.views`: :func:`install_views` creates the views ``incidents_local`` and
  ``incident_timeline`` (run by schema migration 2).
- :mod:`.queries`: the canned queries (:data:`CANNED_QUERIES`).
- :mod:`.metadata`: :func:`build_metadata` writes Datasette metadata (titles, descriptions,
  facets, canned queries) from the archive's ``feeds`` table; :func:`dump_metadata`.
- :mod:`.snapshots`: :func:`snapshot` copies a live archive with SQLite's online backup API,
  optionally limited to some feeds and a date range, ready for ``datasette publish``.
- :mod:`.serve`: :func:`datasette_command`, :func:`prepare_live_archive` and
  :func:`run_datasette` for ``dispatchwatch serve``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Each name is imported from its module on first use (PEP 562): the archive needs only
# ``ensure_zone_offsets`` and ``install_views``, and ``dispatchwatch ingest`` should not pay
# for Datasette's metadata, snapshots and ``serve``.
_MODULES = {
    "TABLE_DOCS": "metadata", "TABLE_OPTIONS": "metadata", "build_metadata": "metadata",
    "dump_metadata": "metadata", "CANNED_QUERIES": "queries",
    "datasette_command": "serve", "prepare_live_archive": "serve", "run_datasette": "serve",
    "SnapshotResult": "snapshots", "parse_bound": "snapshots", "snapshot": "snapshots",
    "INCIDENT_TIMELINE_SQL": "views", "INCIDENTS_LOCAL_SQL": "views", "VIEWS": "views",
    "install_views": "views", "_local": "zones", "ensure_zone_offsets": "zones",
    "zone_transitions": "zones",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    if name.isidentifier() and not name.startswith("__"):  # a submodule: publish.zones
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})


__all__ = [
    "CANNED_QUERIES",
    "INCIDENTS_LOCAL_SQL",
    "INCIDENT_TIMELINE_SQL",
    "TABLE_DOCS",
    "TABLE_OPTIONS",
    "VIEWS",
    "SnapshotResult",
    "_local",
    "build_metadata",
    "datasette_command",
    "dump_metadata",
    "ensure_zone_offsets",
    "install_views",
    "parse_bound",
    "prepare_live_archive",
    "run_datasette",
    "snapshot",
    "zone_transitions",
]
