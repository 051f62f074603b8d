"""How ``incident_versions`` is stored (schema 9) and read back whole.

Since schema version 9 ``incident_versions`` is a *view* with the columns it always had (``id,
feed, incident_id, version, poll_id, observed_at, changed``, the tracked fields, ``gone_at``),
every row a whole version, over two compact tables:

- ``version_log``: one row per version: ``id`` (orders versions as archived), ``incident``
  (the ``rowid`` of the incident in ``incidents``, an integer instead of feed + id text),
  ``version``, ``poll_id``, and only what the poll does not already say: its time is the
  poll's ``observed_at`` (``version_times`` holds the rare one that is not, from an older
  archive), ``changed`` is NULL for ``["new"]`` and for a gone version's ``["gone_at"]``, and
  ``gone`` is 1 for a gone version (its ``gone_at`` is its ``observed_at``).
- ``version_values``: the tracked fields (``received_at`` ... ``extra``) of a version, keyed by
  its ``id``, stored only when they are not the incident's current values. A version without a
  row here has the values its incident has now in ``incidents``: the latest version that is not
  gone, and the gone versions after it (a gone version's fields are the version's before it).
  When a newer version that is not gone supersedes them, the writer stores their values (the
  incident's current ones, before it updates them) in the same transaction. So a poll writes
  one small ``version_log`` row per new incident, and values only for incidents that changed.

Writers: the archive writes the two tables directly; anything else (``reparse``, ``merge``,
a user's SQL) may ``INSERT`` whole rows into or ``DELETE`` rows from the ``incident_versions``
view: its ``INSTEAD OF`` triggers store the values whole (always right), and
:data:`COMPACT_VALUES` then drops those that are the incident's current values. The incident a
version belongs to must be in ``incidents`` before its versions are inserted.

The integer key relies on ``incidents``' rowids staying put, as the full-text index
(``content="incidents"``) already does: ``VACUUM`` keeps them; rebuilding the table by copying
its rows (``sqlite-utils transform``) would not.
"""

from __future__ import annotations

from collections.abc import Sequence

from .incident import TRACKED_FIELDS

#: The columns of ``incident_versions`` (the view, as the table of migration 1 had them).
VERSION_COLUMNS: tuple[str, ...] = (
    "id", "feed", "incident_id", "version", "poll_id", "observed_at", "changed",
    *TRACKED_FIELDS, "gone_at",
)  # fmt: skip

NEW = '["new"]'
GONE = '["gone_at"]'

_FIELDS = ", ".join(TRACKED_FIELDS)

#: The storage of versions (migration 9).
CREATE_TABLES = (
    """CREATE TABLE version_log (
  id INTEGER PRIMARY KEY,
  incident INTEGER NOT NULL,
  version INTEGER NOT NULL,
  poll_id INTEGER REFERENCES polls(id),
  changed TEXT,
  gone INTEGER
)""",
    "CREATE TABLE version_values (\n  id INTEGER PRIMARY KEY REFERENCES version_log(id),\n  "
    + ",\n  ".join(
        f"{name} {'REAL' if name in ('latitude', 'longitude') else 'TEXT'}"
        for name in TRACKED_FIELDS
    )
    + "\n)",
    # A version's time when it is not its poll's (none that this dispatchwatch writes).
    "CREATE TABLE version_times (\n  id INTEGER PRIMARY KEY REFERENCES version_log(id),\n"
    "  observed_at TEXT\n)",
    # One incident's versions (in id order, which is version order): the history of an
    # incident, the writer storing superseded values, the previous version. Not unique on
    # (incident, version): the writer numbers versions under its write lock, and the
    # version number in every entry cost 16 kB of 2.9 MB (bench/size.py).
    "CREATE INDEX idx_version_log_incident ON version_log (incident)",
    # The incidents a poll saw first (alerts, after every poll). Only those: a feed's versions
    # by poll (reparse) are found through its incidents, and the index of every version
    # by poll cost as much as the versions of new incidents themselves (bench/size.py).
    "CREATE INDEX idx_version_log_new ON version_log (poll_id) "
    "WHERE changed IS NULL AND gone IS NULL",
)


def _observed(times: str = "t", poll: str = "p") -> str:
    return f"coalesce({times}.observed_at, {poll}.observed_at)"


#: The ids of the versions of incidents poll ``?`` saw first (``changed`` ``["new"]``).
NEW_IN_POLL = "SELECT id FROM version_log WHERE poll_id = ? AND changed IS NULL AND gone IS NULL"

#: The whole versions, as the table of schema 8 and before showed them.
INCIDENT_VERSIONS_SQL = f"""
SELECT
    l.id,
    i.feed,
    i.incident_id,
    l.version,
    l.poll_id,
    {_observed()} AS observed_at,
    coalesce(l.changed, CASE WHEN l.gone THEN '{GONE}' ELSE '{NEW}' END) AS changed,
    {", ".join(f"CASE WHEN x.id IS NULL THEN i.{n} ELSE x.{n} END AS {n}" for n in TRACKED_FIELDS)},
    CASE WHEN l.gone THEN {_observed()} END AS gone_at
FROM version_log l
JOIN incidents i ON i.rowid = l.incident
LEFT JOIN version_values x ON x.id = l.id
LEFT JOIN version_times t ON t.id = l.id
LEFT JOIN polls p ON p.id = l.poll_id
"""

_NEW_FIELDS = ", ".join(f"NEW.{name}" for name in TRACKED_FIELDS)

#: ``incident_versions`` as a view, and the triggers that let ``INSERT`` / ``DELETE`` use it.
CREATE_VIEW = (
    f"CREATE VIEW incident_versions AS {INCIDENT_VERSIONS_SQL}",
    f"""CREATE TRIGGER incident_versions_insert INSTEAD OF INSERT ON incident_versions BEGIN
  INSERT INTO version_log (id, incident, version, poll_id, changed, gone) VALUES (
    NEW.id,
    (SELECT rowid FROM incidents WHERE feed = NEW.feed AND incident_id = NEW.incident_id),
    NEW.version, NEW.poll_id,
    CASE WHEN NEW.changed IS (CASE WHEN NEW.gone_at IS NULL THEN '{NEW}' ELSE '{GONE}' END)
      THEN NULL ELSE NEW.changed END,
    CASE WHEN NEW.gone_at IS NOT NULL THEN 1 END
  );
  INSERT INTO version_values (id, {_FIELDS}) VALUES (last_insert_rowid(), {_NEW_FIELDS});
  INSERT INTO version_times (id, observed_at) SELECT last_insert_rowid(), NEW.observed_at
    WHERE NEW.observed_at IS NOT (SELECT observed_at FROM polls WHERE id = NEW.poll_id);
END""",
    """CREATE TRIGGER incident_versions_delete INSTEAD OF DELETE ON incident_versions BEGIN
  DELETE FROM version_values WHERE id = OLD.id;
  DELETE FROM version_times WHERE id = OLD.id;
  DELETE FROM version_log WHERE id = OLD.id;
END""",
)

#: Drops the stored values that are the incident's current ones and that no later version
#: (not gone) supersedes: they read the same from ``incidents`` (after a migration, a merge,
#: a reparse: anything that inserted whole versions through the view).
COMPACT_VALUES = f"""DELETE FROM version_values WHERE id IN (
  SELECT x.id FROM version_values x
  JOIN version_log l ON l.id = x.id
  JOIN incidents i ON i.rowid = l.incident
  WHERE NOT EXISTS (SELECT 1 FROM version_log n WHERE n.incident = l.incident
                    AND n.version > l.version AND n.gone IS NULL)
  AND {" AND ".join(f"x.{n} IS i.{n}" for n in TRACKED_FIELDS)}
)"""

#: Stores the current values of every version of the staged incidents (the changed ones of a
#: poll of feed ``?``) that has none: run before ``incidents`` is updated from the stage.
STORE_SUPERSEDED = f"""INSERT INTO version_values (id, {_FIELDS})
SELECT l.id, {", ".join(f"i.{n}" for n in TRACKED_FIELDS)}
FROM temp.dw_poll_rows s
JOIN incidents i ON i.feed = ? AND i.incident_id = s.incident_id
JOIN version_log l ON l.incident = i.rowid
WHERE s.changed IS NOT NULL AND NOT EXISTS (SELECT 1 FROM version_values x WHERE x.id = l.id)"""


#: Stores the current values of every version of a feed (``?``) that has none, before a
#: writer changes the incidents' values other than by a new version (``reparse``).
STORE_CURRENT = f"""INSERT INTO version_values (id, {_FIELDS})
SELECT l.id, {", ".join(f"i.{n}" for n in TRACKED_FIELDS)}
FROM incidents i JOIN version_log l ON l.incident = i.rowid
WHERE i.feed = ? AND NOT EXISTS (SELECT 1 FROM version_values x WHERE x.id = l.id)"""


def whole_versions(columns: Sequence[str] = VERSION_COLUMNS) -> str:
    """A parenthesized subquery of whole versions with ``columns`` (any of
    :data:`VERSION_COLUMNS`): ``SELECT ... FROM {whole_versions()} AS v WHERE ...``.

    Since schema 9 the ``incident_versions`` view is whole already; kept for callers."""
    return f"(SELECT {', '.join(f'[{name}]' for name in columns)} FROM incident_versions)"


#: Schema 8's upgrade (on the table of schema 7): empties the tracked fields of gone versions.
EMPTY_GONE_VERSIONS = (
    "UPDATE incident_versions SET "
    + ", ".join(f"{name} = NULL" for name in TRACKED_FIELDS)
    + " WHERE gone_at IS NOT NULL AND ("
    + " OR ".join(f"{name} IS NOT NULL" for name in TRACKED_FIELDS)
    + ")"
)
