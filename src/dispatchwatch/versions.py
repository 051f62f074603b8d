"""Reading ``incident_versions`` whole.

Since schema version 8 a *gone* version (the one written when an incident leaves a snapshot
feed's list: ``gone_at`` set, ``changed`` ``["gone_at"]``) stores only its key, poll, times
and ``changed``; its tracked fields (``received_at`` ... ``extra``) are NULL, because they are
by definition those of the version before it (``version - 1``, never itself a gone version:
an incident leaves the list only while it is listed). That halves what the most common
version of a snapshot feed costs. Archives upgraded from version 7 have their gone versions
emptied by the migration; a gone version that still holds its fields (merged in from an older
archive) reads the same either way.

:func:`whole_versions` is the SQL that puts the fields back; the ``incident_timeline`` view,
``export`` and ``reparse`` read versions through it (or the same join).
"""

from __future__ import annotations

from collections.abc import Sequence

from .incident import TRACKED_FIELDS

#: The columns of ``incident_versions`` as migration 1 made them.
VERSION_COLUMNS: tuple[str, ...] = (
    "id", "feed", "incident_id", "version", "poll_id", "observed_at", "changed",
    *TRACKED_FIELDS, "gone_at",
)  # fmt: skip

#: A gone version's tracked fields, as stored.
GONE_VALUES: tuple[None, ...] = (None,) * len(TRACKED_FIELDS)


def whole_versions(columns: Sequence[str] = VERSION_COLUMNS) -> str:
    """A parenthesized subquery of ``incident_versions`` with ``columns`` (any of the
    table's), in which a gone version's tracked fields are those of the version before it.

    Use it where the table would go: ``SELECT ... FROM {whole_versions()} AS v WHERE ...``.
    Each gone version costs one lookup in the ``(feed, incident_id, version)`` index."""
    tracked = set(TRACKED_FIELDS)
    select = ", ".join(
        f"CASE WHEN v.gone_at IS NULL OR p.id IS NULL THEN v.[{name}] ELSE p.[{name}] END "
        f"AS [{name}]"
        if name in tracked
        else f"v.[{name}] AS [{name}]"
        for name in columns
    )
    return (
        f"(SELECT {select} FROM incident_versions v LEFT JOIN incident_versions p "
        "ON v.gone_at IS NOT NULL AND p.feed = v.feed AND p.incident_id = v.incident_id "
        "AND p.version = v.version - 1)"
    )


#: Empties the tracked fields of gone versions stored whole (an upgrade, a merge).
EMPTY_GONE_VERSIONS = (
    "UPDATE incident_versions SET "
    + ", ".join(f"{name} = NULL" for name in TRACKED_FIELDS)
    + " WHERE gone_at IS NOT NULL AND ("
    + " OR ".join(f"{name} IS NOT NULL" for name in TRACKED_FIELDS)
    + ")"
)
