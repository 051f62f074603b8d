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

from .metadata import TABLE_DOCS, TABLE_OPTIONS, build_metadata, dump_metadata
from .queries import CANNED_QUERIES
from .serve import datasette_command, prepare_live_archive, run_datasette
from .snapshots import SnapshotResult, parse_bound, snapshot
from .views import INCIDENT_TIMELINE_SQL, INCIDENTS_LOCAL_SQL, VIEWS, install_views
from .zones import _local, ensure_zone_offsets, zone_transitions

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
