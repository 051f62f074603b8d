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
- An incident's ``version`` links to its full history (the ``incident_history`` query), and
  an incident's own page says so under its title.
- Long text (a feed's license and notes, an incident's ``extra``, a poll's error) takes two
  lines at most in a table (CSS from the metadata), the whole text in the tooltip.
- On a canned query's page, the ``feed`` parameter is a list of the archive's feeds instead
  of a free-text box.
- On a table's page the column descriptions fold into one line (and the headers' tooltips),
  so the rows are on the first screen; ``polls`` and ``coverage`` list what matters first
  (:func:`asgi_wrapper`), and a watch rule's Atom feed is valid before it has any entry.

Zone names come from the ``feeds`` table, read at most every :data:`ZONES_TTL` seconds.
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datasette import hookimpl
from datasette.utils.asgi import Request
from markupsafe import Markup, escape

#: Seconds a database's feed -> zone map is reused before the feeds table is read again.
ZONES_TTL = 30.0
#: A stored UTC time: whole seconds (incidents) or milliseconds (polls).
_UTC_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
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
    """``2024-04-01T01:30:18Z`` in ``America/Los_Angeles`` -> ``2024-03-31 18:30:18 PDT``
    (fractions of a second, as polls store them, are left to the UTC tooltip); None for an
    unknown zone."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    moment = datetime.strptime(utc_text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
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
        href = _history_href(datasette, database, feed, incident_id)
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


#: On a table or view page: the column descriptions (one line each, above the rows) fold
#: into a "What the columns mean" line that opens on a click, so the rows come into the
#: first screen; each description is also its column header's tooltip.
_FOLD_COLUMNS_JS = """
(function () {
  var dl = document.querySelector('dl.column-descriptions');
  if (!dl) { return; }
  var terms = dl.querySelectorAll('dt');
  terms.forEach(function (dt) {
    var dd = dt.nextElementSibling;
    var th = document.querySelector('table.rows-and-columns th[data-column="' +
      (window.CSS && CSS.escape ? CSS.escape(dt.textContent) : dt.textContent) + '"]');
    if (dd && th && !th.title) { th.title = dd.textContent; }
  });
  var details = document.createElement('details');
  details.className = 'dw-columns';
  var summary = document.createElement('summary');
  summary.textContent = 'What the ' + terms.length + ' columns mean';
  details.appendChild(summary);
  dl.parentNode.insertBefore(details, dl);
  details.appendChild(dl);
})();
"""


#: On an incident's own page: a link to its history, right under the title.
_HISTORY_LINK_JS = """
(function () {
  var header = document.querySelector('.page-header') || document.querySelector('h1');
  if (!header) { return; }
  var p = document.createElement('p');
  p.className = 'dw-history';
  var a = document.createElement('a');
  a.href = %s;
  a.textContent = 'Its history: every version of this incident, what changed and when';
  p.appendChild(a);
  header.parentNode.insertBefore(p, header.nextSibling);
})();
"""


def _history_href(datasette: Any, database: str, feed: str, incident_id: str) -> str:
    query = urllib.parse.urlencode({"feed": feed, "incident_id": incident_id})
    return f"{datasette.urls.database(database)}/incident_history?{query}"


@hookimpl
def extra_body_script(
    template: str, database: str | None, table: str | None, request: Any, datasette: Any
) -> Any:
    if not _enabled(datasette, database):
        return None
    if template == "table.html":
        return _FOLD_COLUMNS_JS
    if template == "row.html" and table in _HISTORY_TABLES and request is not None:
        from datasette.utils import urlsafe_components

        keys = urlsafe_components(request.url_vars.get("pks") or "")
        if len(keys) != 2:  # (feed, incident_id)
            return None
        assert database is not None
        href = _history_href(datasette, database, keys[0], keys[1])
        return _HISTORY_LINK_JS % json.dumps(href).replace("</", "<\\/")
    if template != "query.html":
        return None

    async def script() -> str:
        assert database is not None
        feeds = sorted(await _feed_zones(datasette, database))
        # json.dumps escapes nothing for HTML: keep "</script>" in a slug from closing the tag.
        return _FEED_SELECT_JS % json.dumps(feeds).replace("</", "<\\/")

    return script


#: The polls table's columns in the order a person reads a poll: when, which feed, how it
#: went, what changed, why it failed; then the details. Columns not named here (a newer
#: schema's) follow in the table's order; the primary key ``id`` always comes first.
POLLS_COLUMNS = (
    "started_at",
    "feed",
    "outcome",
    "kind",
    "new",
    "changed",
    "gone",
    "returned",
    "incidents",
    "error_kind",
    "error",
    "duration_ms",
    "http_status",
    "bytes",
    "observed_at",
    "source",
)
#: The coverage view's columns in the order a reader wants them: which feed, the window in
#: words, how long, what failed; then its bounds (the view's own order is its SQL's).
COVERAGE_COLUMNS = (
    "feed",
    "kind",
    "description",
    "minutes",
    "failed_polls",
    "errors",
    "partial_polls",
    "partial_reasons",
    "starts_at",
    "ends_at",
)
#: Table or view -> the columns its HTML page lists first (every other column follows).
COLUMN_ORDER = {"polls": POLLS_COLUMNS, "coverage": COVERAGE_COLUMNS}
#: Whether datasette-atom (and its feedgen) is installed: without it no ``.atom`` exists.
_HAS_ATOM = importlib.util.find_spec("datasette_atom") is not None
_PASS_THROUGH = {b"_col", b"_nocol", b"_format", b"_shape", b"_json"}


def _query_keys(query_string: bytes) -> set[bytes]:
    return {part.split(b"=", 1)[0] for part in query_string.split(b"&") if part}


async def _ordered_columns(datasette: Any, database: str, table: str) -> list[str]:
    """Every column of ``table`` but its primary key (Datasette puts that first), the
    ones of :data:`COLUMN_ORDER` first."""
    db = datasette.get_database(database)
    columns = await db.table_columns(table)
    pks = await db.primary_keys(table)
    first = [c for c in COLUMN_ORDER[table] if c in columns and c not in pks]
    return first + [c for c in columns if c not in first and c not in pks]


def _empty_atom(url: str, title: str) -> bytes:
    """A valid Atom feed with no entry (RFC 4287: id, title, updated; a self link)."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.id(url)
    fg.title(title)
    fg.link(href=url, rel="self")
    fg.updated(datetime.now(UTC))
    fg.generator(generator="dispatchwatch")
    return fg.atom_str(pretty=True)


async def _route(datasette: Any, scope: dict[str, Any]) -> tuple[str, str, str] | None:
    """What the wrapper does for this request: ``("columns", database, table)`` for the
    HTML page of a table of :data:`COLUMN_ORDER` without a column choice, ``("atom",
    database, query)`` for the Atom feed of a watch rule's query; None for everything
    else."""
    path = scope.get("path") or ""
    table = path.rsplit("/", 1)[-1]
    if table not in COLUMN_ORDER and not path.endswith(".atom"):
        return None
    keys = _query_keys(scope.get("query_string") or b"")
    for name in list(datasette.databases):
        if not _enabled(datasette, name):
            continue
        if (
            table in COLUMN_ORDER
            and path == datasette.urls.table(name, table)
            and not keys & _PASS_THROUGH
        ):
            return ("columns", name, table)
        if not path.endswith(".atom") or not _HAS_ATOM:
            continue
        for query in datasette.metadata("queries", database=name) or {}:
            if query.startswith("alerts_") and path == datasette.urls.query(name, query, "atom"):
                return ("atom", name, query)
    return None


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    """Two adjustments, for databases with our metadata only:

    - ``/<db>/polls`` and ``/<db>/coverage`` (the HTML pages, no ``_col``/``_nocol`` of
      their own) list every column, what matters first (:data:`COLUMN_ORDER`), through
      Datasette's own ``_col``; JSON, CSV and a chosen column set are left as asked.
    - A watch rule's Atom feed (``alerts_<rule>.atom``) before the rule has matched
      anything: datasette-atom cannot render a query with no rows (it takes the feed's
      ``updated`` from the newest row and fails on none), so the empty feed, still valid,
      is written here; with rows, datasette-atom renders it.
    """

    def wrap(app: Any) -> Any:
        async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
            route = await _route(datasette, scope) if scope.get("type") == "http" else None
            if route is None:
                return await app(scope, receive, send)
            kind, database, query = route
            if kind == "columns":
                columns = await _ordered_columns(datasette, database, query)
                extra = urllib.parse.urlencode([("_col", c) for c in columns]).encode()
                query_string = scope.get("query_string") or b""
                query_string = query_string + b"&" + extra if query_string else extra
                return await app({**scope, "query_string": query_string}, receive, send)
            canned = (datasette.metadata("queries", database=database) or {})[query]
            result = await datasette.get_database(database).execute(canned["sql"])
            if result.rows:
                return await app(scope, receive, send)
            url = datasette.absolute_url(
                Request(scope, receive), datasette.urls.query(database, query, "atom")
            )
            body = _empty_atom(url, canned.get("title") or query)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/xml; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        return wrapped

    return wrap
