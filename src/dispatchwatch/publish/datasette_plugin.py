"""The dispatchwatch Datasette plugin: local times, history links, tidy long text, feed lists.

Registered under Datasette's ``datasette`` entry point, so ``dispatchwatch serve`` (which runs
Datasette in dispatchwatch's environment) always has it; a published copy gets it with
``datasette publish ... --install dispatchwatch``. It acts only on a database whose metadata
turns it on (``plugins: {dispatchwatch: {local_times: true}}``, as ``dispatchwatch
metadata`` writes), so it changes nothing in other databases served from the same place.

- A UTC time (a ``*_at`` column holding ``YYYY-MM-DDTHH:MM:SSZ``) in a row that names its
  feed (a ``feed`` column, or a row of ``feeds``) shows as the feed's local wall-clock time
  and zone abbreviation (``2024-03-31 18:30:18 PDT``), with the UTC original in its tooltip.
  Only the display changes: JSON, CSV, sorting and filters keep the stored UTC text.
- An incident's ``version`` links to its full history (the ``incident_history`` query).
- Long text (a feed's license and notes, an incident's ``extra``, a poll's error) takes two
  lines at most in a table (CSS from the metadata), the whole text in the tooltip.
- On a canned query's page, the ``feed`` parameter is a list of the archive's feeds instead
  of a free-text box.

Zone names come from the ``feeds`` table, read at most every :data:`ZONES_TTL` seconds.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datasette import hookimpl
from markupsafe import Markup, escape

#: Seconds a database's feed -> zone map is reused before the feeds table is read again.
ZONES_TTL = 30.0
_UTC_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
#: Table -> columns whose long text is clamped to two lines.
CLAMPED = {
    "feeds": {"license", "source_notes", "url", "homepage"},
    "incidents": {"extra"},
    "incidents_local": {"extra"},
    "incident_versions": {"extra"},
    "polls": {"error", "source"},
    "poll_log": {"error"},
}
_CLAMP_FROM = 60  # characters
_HISTORY_TABLES = {"incidents", "incidents_local"}
_zones: dict[tuple[int, str], tuple[float, dict[str, str]]] = {}


def local_label(utc_text: str, zone: str) -> str | None:
    """``2024-04-01T01:30:18Z`` in ``America/Los_Angeles`` -> ``2024-03-31 18:30:18 PDT``;
    None for an unknown zone."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    moment = datetime.strptime(utc_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    local = moment.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or "")


_enabled_for: dict[tuple[int, str], bool] = {}


def _enabled(datasette: Any, database: str | None) -> bool:
    """Whether the metadata turns the plugin on for ``database`` (looked up once: a page
    renders thousands of cells, and metadata does not change while Datasette runs)."""
    if not database:
        return False
    key = (id(datasette), database)
    if key not in _enabled_for:
        config = datasette.plugin_config("dispatchwatch", database=database) or {}
        _enabled_for[key] = bool(config.get("local_times"))
    return _enabled_for[key]


async def _feed_zones(datasette: Any, database: str) -> dict[str, str]:
    key = (id(datasette), database)
    now = time.monotonic()
    cached = _zones.get(key)
    if cached is not None and now - cached[0] < ZONES_TTL:
        return cached[1]
    result = await datasette.get_database(database).execute("SELECT slug, timezone FROM feeds")
    zones = {row[0]: row[1] for row in result.rows}
    _zones[key] = (now, zones)
    return zones


def _value_of(row: Any, column: str) -> Any:
    """A cell's value; a table page gives a foreign key (``feed``) as ``{value, label}``."""
    try:
        value = row[column]
    except (IndexError, KeyError):
        return None
    return value.get("value") if isinstance(value, dict) else value


def _row_feed(row: Any, table: str | None) -> str | None:
    feed = _value_of(row, "feed")
    if feed is None and table == "feeds":
        feed = _value_of(row, "slug")
    return feed if isinstance(feed, str) else None


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Any:
    clamp = isinstance(value, str) and len(value) > _CLAMP_FROM
    history = column == "version" and table in _HISTORY_TABLES and isinstance(value, int)
    utc = isinstance(value, str) and column.endswith("_at") and _UTC_TEXT.fullmatch(value)
    if not (clamp or history or utc) or not _enabled(datasette, database):
        return None
    if clamp and column in CLAMPED.get(table or "", ()):
        return Markup(f'<span class="dw-clamp" title="{escape(value)}">{escape(value)}</span>')
    if history:
        feed, incident_id = _value_of(row, "feed"), _value_of(row, "incident_id")
        if feed is None or incident_id is None:
            return None
        query = urllib.parse.urlencode({"feed": feed, "incident_id": incident_id})
        href = f"{datasette.urls.database(database)}/incident_history?{query}"
        return Markup(
            f'<a href="{escape(href)}" title="Every version of this incident">{value} · history</a>'
        )
    if not utc:
        return None
    feed = _row_feed(row, table)
    if feed is None:
        return None

    async def local() -> Markup | None:
        zone = (await _feed_zones(datasette, database)).get(feed)
        label = local_label(value, zone) if zone else None
        if label is None:
            return None
        return Markup(f'<span class="dw-local" title="{escape(value)} UTC">{escape(label)}</span>')

    return local


_FEED_SELECT_JS = """
(function () {
  var feeds = %s;
  var input = document.querySelector('form.sql input[name="feed"]');
  if (!input) { return; }
  var select = document.createElement('select');
  select.name = 'feed';
  select.id = input.id;
  var choices = [['', '(all feeds)']].concat(feeds.map(function (f) { return [f, f]; }));
  if (input.value && feeds.indexOf(input.value) < 0) { choices.push([input.value, input.value]); }
  choices.forEach(function (choice) {
    var option = document.createElement('option');
    option.value = choice[0];
    option.textContent = choice[1];
    select.appendChild(option);
  });
  select.value = input.value;
  input.replaceWith(select);
})();
"""


@hookimpl
def extra_body_script(template: str, database: str | None, datasette: Any) -> Any:
    if template != "query.html" or not _enabled(datasette, database):
        return None

    async def script() -> str:
        assert database is not None
        feeds = sorted(await _feed_zones(datasette, database))
        # json.dumps escapes nothing for HTML: keep "</script>" in a slug from closing the tag.
        return _FEED_SELECT_JS % json.dumps(feeds).replace("</", "<\\/")

    return script
