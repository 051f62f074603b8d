"""Datasette metadata (titles, descriptions, facets, canned queries) from the ``feeds`` table."""

from __future__ import annotations

import html
import importlib.util
import json
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .dashboards import DASHBOARD, build_dashboards
from .feeds import _connect_readonly, _feed_rows
from .queries import CANNED_QUERIES

_INCIDENT_FIELD_DOCS = {
    "feed": "Feed slug (see the feeds table), e.g. seattle-fire",
    "incident_id": "The source's own incident ID",
    "received_at": "When the call was received: shown in the feed's local time, stored in "
    "UTC (ISO 8601, Z)",
    "call_type": "The source's call type or nature",
    "priority": "The source's priority or level",
    "status": "The source's status (active/closed, Service in Progress, ...)",
    "disposition": "Final disposition, where the source has one",
    "address": "Block-level location (15XX SUMMIT AVE); never an exact address",
    "city": "City or jurisdiction split off the address",
    "district": "The source's district",
    "beat": "The source's beat or response area",
    "units": "Units dispatched, space-separated, in first-seen order",
    "latitude": "Latitude, rounded to about 100 m unless the feed is exact",
    "longitude": "Longitude, rounded to about 100 m unless the feed is exact",
    "extra": "The source's other fields, as a JSON object",
}
_LOCAL_DOC = "{} in the feed's local time, ISO 8601 with the UTC offset"

TABLE_DOCS: dict[str, dict[str, Any]] = {
    "incidents": {
        "title": "Incidents",
        "description": "Every call, as the source shows it now. Times in the feed's local "
        "time (UTC in the tooltip and in JSON/CSV); a row's version links to its history.",
        "columns": {
            **_INCIDENT_FIELD_DOCS,
            "first_seen_at": "When dispatchwatch first saw the incident, UTC",
            "last_seen_at": "When dispatchwatch last saw it listed, UTC",
            "gone_at": "When it left a snapshot feed's list of active calls, UTC",
            "version": "Number of versions in incident_versions",
        },
    },
    "incident_versions": {
        "title": "Incident versions",
        "description": "Append-only history: a full copy of an incident each time it is "
        "first seen, changes or comes back. A version that records it leaving the active "
        "list (gone_at set) stores no fields: they are the previous version's, and "
        "incident_timeline shows them.",
        "columns": {
            "id": "Row ID",
            **{k: v for k, v in _INCIDENT_FIELD_DOCS.items()},
            "version": "1 for the first sighting, then 2, 3, ...",
            "poll_id": "The poll that saw this version",
            "observed_at": "When the source showed this version, UTC",
            "changed": 'JSON list of the columns that changed (["new"] for version 1)',
            "gone_at": "Set when this version records the incident leaving the list",
        },
    },
    "polls": {
        "title": "Polls",
        "description": "One row per poll of a feed, successful or not: when (local time), "
        "which feed, how it went, what changed and why it failed first, then the details.",
        "columns": {
            "id": "Poll ID",
            "feed": "Feed slug",
            "started_at": "When the poll started, UTC",
            "observed_at": "The page's own 'as of' time, else the fetch time, UTC",
            "duration_ms": "How long the poll took",
            "outcome": "new (parsed and archived), unchanged (same body), not_modified "
            "(HTTP 304) or error",
            "http_status": "HTTP status of the response",
            "bytes": "Size of the response body",
            "sha256": "SHA-256 of the response body",
            "etag": "The response's ETag",
            "last_modified": "The response's Last-Modified",
            "incidents": "Incidents on the page",
            "new": "Incidents seen for the first time",
            "changed": "Incidents whose fields changed",
            "gone": "Incidents that left the active list",
            "returned": "Incidents that came back to the list",
            "error_kind": "The kind of failure (network, http, layout, ...)",
            "error": "The error message",
            "source": "Where the page came from (URL or file)",
            "kind": "empty or live: the daemon; ingest, backfill, import or reparse otherwise",
            "requests": "HTTP requests the poll made (pages of a paged query)",
            "scraper_version": "Version of the scraper that parsed the page",
        },
    },
    "feeds": {
        "title": "Feeds",
        "description": "The dispatch feeds in this archive, with their sources and licenses.",
        "columns": {
            "slug": "Short name used in every other table",
            "name": "Human name of the feed",
            "agency": "The agency that publishes it",
            "city": "City",
            "state": "State or region",
            "scraper": "The dispatchwatch scraper that reads it",
            "url": "The page dispatchwatch polls",
            "homepage": "The agency's page about the feed",
            "timezone": "IANA time zone of the source's times",
            "snapshot": "1 if the feed lists only active calls (so calls leave it)",
            "interval_seconds": "Seconds between polls",
            "precision": "block (rounded locations) or exact",
            "license": "License or terms of the source data",
            "source_notes": "Notes about the source",
            "added_at": "When the feed was added to the archive, UTC",
            "updated_at": "When its description was last updated, UTC",
        },
    },
    "incidents_local": {
        "title": "Incidents in local time",
        "description": "The incidents table with every time also in the feed's own time "
        "zone (DST-aware), beside the UTC original.",
        "columns": {
            **_INCIDENT_FIELD_DOCS,
            "received_local": _LOCAL_DOC.format("received_at"),
            "timezone": "The feed's IANA time zone",
            "first_seen_at": "When dispatchwatch first saw the incident, UTC",
            "first_seen_local": _LOCAL_DOC.format("first_seen_at"),
            "last_seen_at": "When dispatchwatch last saw it listed, UTC",
            "last_seen_local": _LOCAL_DOC.format("last_seen_at"),
            "gone_at": "When it left a snapshot feed's list, UTC",
            "gone_local": _LOCAL_DOC.format("gone_at"),
            "version": "Number of versions in incident_versions",
        },
    },
    "incident_timeline": {
        "title": "Incident timeline",
        "description": "One row per version of each incident: what happened (new, changed, "
        "gone, back), what changed from the previous version, and the poll that saw it.",
        "columns": {
            "id": "Row ID in incident_versions; orders versions as they were archived",
            "feed": "Feed slug",
            "incident_id": "The source's incident ID",
            "version": "1 for the first sighting, then 2, 3, ...",
            "event": "new, changed, gone (left the active list) or back (listed again)",
            "observed_at": "When the source showed this version, UTC",
            "observed_local": _LOCAL_DOC.format("observed_at"),
            "poll_id": "The poll that saw this version",
            "changes": "What changed from the previous version: field: old → new",
            "changed_columns": "JSON list of the changed columns",
            **{k: v for k, v in _INCIDENT_FIELD_DOCS.items() if k not in ("feed", "extra")},
            "gone_at": "Set when this version records the incident leaving the list",
            "source": "Where the page of that poll came from",
        },
    },
    "incident_points": {
        "title": "Map of calls",
        "description": "Incidents that have coordinates, on a map: points rounded to about "
        "100 m (block level) whatever the feed's precision; the popup shows the call type "
        "and the local time.",
        "columns": {
            "feed": "Feed slug",
            "incident_id": "The source's incident ID",
            "local_time": "When the call was received, the feed's local time and zone",
            "call_type": "The source's call type or nature",
            "address": "Block-level location",
            "status": "The source's status",
            "latitude": "Latitude rounded to 3 decimals (about 100 m)",
            "longitude": "Longitude rounded to 3 decimals (about 100 m)",
            "popup": "What the map's popup shows (JSON: title, description)",
            "received_at": "When the call was received, UTC",
        },
    },
    "poll_log": {
        "title": "Poll log",
        "description": "Every poll, what matters first: when (the feed's local time), which "
        "feed, the outcome, what changed and any error. The polls table has every detail.",
        "columns": {
            "id": "Poll ID (the polls table's row)",
            "local_time": "When the poll started, the feed's local time and zone",
            "feed": "Feed slug",
            "outcome": "new, unchanged, not_modified (HTTP 304), partial or error",
            "new": "Incidents seen for the first time",
            "changed": "Incidents whose fields changed",
            "gone": "Incidents that left the active list",
            "incidents": "Incidents on the page",
            "error_kind": "The kind of failure (network, http, layout, ...)",
            "error": "The error message",
            "duration_ms": "How long the poll took",
            "http_status": "HTTP status of the response",
            "bytes": "Size of the response body",
            "started_at": "When the poll started, UTC",
        },
    },
    "pages": {
        "title": "Raw pages",
        "description": "Compressed raw bodies of parsed responses (for reparse).",
        "hidden": True,
    },
    "poll_pages": {
        "title": "Pages of each poll",
        "description": "Which raw pages each poll parsed, in order.",
        "hidden": True,
    },
    "version_log": {
        "title": "Versions (storage)",
        "description": "How incident_versions is stored: one compact row per version "
        "(read the incident_versions view for whole versions).",
        "hidden": True,
    },
    "version_values": {
        "title": "Version fields (storage)",
        "description": "The fields of versions that are not their incident's current ones "
        "(read the incident_versions view for whole versions).",
        "hidden": True,
    },
    "version_times": {
        "title": "Version times (storage)",
        "description": "The time of a version when it is not its poll's (older archives).",
        "hidden": True,
    },
    "deferred_schema": {
        "title": "Deferred indexes (bookkeeping)",
        "description": "Indexes and triggers a large bulk job dropped until it ends, "
        "rebuilt from here if it was killed; empty otherwise.",
        "hidden": True,
    },
    "zone_offsets": {
        "title": "Time zone offsets",
        "description": "UTC offsets of each feed's time zone between DST transitions "
        "(from the tz database); used by the local-time views.",
        "hidden": True,
    },
}

#: Table options beyond the docs: default sort, facets, sortable columns.
TABLE_OPTIONS: dict[str, dict[str, Any]] = {
    "incidents": {
        "sort_desc": "received_at",
        "facets": ["feed", "call_type", "status", "district"],
        "facet_size": 4,
        "sortable_columns": [
            "received_at",
            "first_seen_at",
            "last_seen_at",
            "gone_at",
            "feed",
            "call_type",
            "priority",
            "status",
            "district",
            "address",
            "version",
        ],
    },
    "incidents_local": {
        "sort_desc": "received_at",
        "facets": ["feed", "call_type", "status", "district"],
        "sortable_columns": [
            "received_at",
            "received_local",
            "feed",
            "call_type",
            "priority",
            "status",
            "district",
            "address",
            "version",
        ],
    },
    "incident_timeline": {
        # id, not observed_at: versions are appended in order and id is the rowid, so the
        # newest page needs no sort of the whole history.
        "sort_desc": "id",
        "facets": ["feed", "event"],
        "sortable_columns": ["id", "observed_at", "feed", "incident_id", "version", "event"],
    },
    "incident_versions": {"sort_desc": "id", "facets": ["feed"]},
    "polls": {
        "sort_desc": "id",
        "facets": ["feed", "outcome", "error_kind"],
        "sortable_columns": [
            "id",
            "started_at",
            "duration_ms",
            "bytes",
            "incidents",
            "new",
            "changed",
            "gone",
            "feed",
            "outcome",
        ],
    },
    "incident_points": {
        "sort_desc": "received_at",
        "facets": ["feed", "call_type"],
        "facet_size": 5,
    },
    "poll_log": {
        "sort_desc": "id",
        "facets": ["feed", "outcome", "error_kind"],
        "sortable_columns": ["id", "started_at", "feed", "outcome", "duration_ms", "new"],
    },
    "coverage": {"sort_desc": "starts_at", "facets": ["feed", "kind"]},
    "coverage_days": {"sort_desc": "day", "facets": ["feed", "day_log"]},
    # Rows and facets link a feed by its short slug; the feed's long name would otherwise be
    # picked (Datasette labels by any "name" column) and swamp the incidents table.
    "feeds": {"label_column": "slug"},
}


#: Datasette 0.65 lists column descriptions one per line above the rows, which pushes a
#: 19-column table below the fold. Lay them out three to a line instead. A data: URL, so
#: the style travels with the metadata to a published copy (no static files to ship).
_COMPACT_COLUMN_DESCRIPTIONS_CSS = (
    "dl.column-descriptions{display:grid;"
    "grid-template-columns:repeat(3,max-content minmax(0,1fr));"
    "gap:0.1em 0.8em;font-size:0.8em;margin-bottom:1em}"
    "dl.column-descriptions dt{font-weight:bold}"
    "dl.column-descriptions dd{margin:0;color:#555}"
    "@media (max-width:800px){dl.column-descriptions{grid-template-columns:max-content 1fr}}"
)

#: Long text (a feed's license or notes, an incident's extra JSON, an error) takes at most
#: two lines in a table's rows (the whole text is in the cell's tooltip and on the row's
#: page); local times never wrap. The classes come from the dispatchwatch Datasette plugin.
_CELL_CSS = (
    "body.table .dw-clamp{display:-webkit-box;-webkit-line-clamp:2;line-clamp:2;"
    "-webkit-box-orient:vertical;overflow:hidden;min-width:14em;max-width:32em}"
    ".dw-local,.rows-and-columns td.col-local_time,.rows-and-columns td[class*=_local]"
    "{white-space:nowrap}"
    "details.dw-columns{margin:0.3em 0 0.6em}details.dw-columns summary{cursor:pointer;"
    "color:#555;font-size:0.9em}details.dw-columns dl.column-descriptions{margin-top:0.5em}"
    # On a wide screen the search box, the filter and Apply share one line, so the rows
    # come into the first screen.
    "@media (min-width:1000px){body.table form.filters{display:flex;flex-wrap:wrap;"
    "align-items:center;gap:0.4em 1.2em}body.table form.filters .search-row,"
    "body.table form.filters .filter-row{margin:0}"
    "body.table form.filters .search-row input[type=search]{width:16em}}"
)

#: On every page of a simulated archive.
_SIMULATED_CSS = (
    'body::before{content:"SIMULATED DATA from dispatchwatch demo: invented calls, not real '
    'ones";display:block;padding:0.4em 1em;background:#ffd33d;color:#000;font-weight:bold;'
    "text-align:center}"
)

#: ``source_notes`` of the feeds ``dispatchwatch demo`` writes; an archive whose feeds all
#: carry it is labelled simulated on every page.
SIMULATED_NOTE = "Simulated by dispatchwatch demo: invented calls in the format of the real feed."


def is_simulated(feed: dict[str, Any]) -> bool:
    """True for a feed row written by ``dispatchwatch demo``."""
    return (feed.get("source_notes") or "").startswith(SIMULATED_NOTE)


def _css_url(css: str) -> str:
    return "data:text/css," + urllib.parse.quote(css, safe=":;,().")


def _link(url: str | None, text: str) -> str:
    # Only http(s) becomes a link: the feeds table is data, not trusted HTML.
    if url and url.startswith(("http://", "https://")):
        return f'<a href="{html.escape(url)}">{html.escape(text)}</a>'
    return html.escape(text)


def _feed_item(feed: dict[str, Any]) -> str:
    place = ", ".join(p for p in (feed.get("city"), feed.get("state")) if p)
    parts = [
        _link(feed.get("homepage") or feed.get("url"), feed.get("name") or feed["slug"])
        + f" (<code>{html.escape(feed['slug'])}</code>)"
    ]
    if feed.get("agency") or place:
        parts.append(html.escape(" — ".join(p for p in (feed.get("agency"), place) if p)))
    if feed.get("url"):
        label = "simulated source" if is_simulated(feed) else "source"
        parts.append(f"{label}: " + _link(feed["url"], feed["url"]))
    parts.append("license: " + html.escape(feed.get("license") or "not stated by the source"))
    if feed.get("source_notes"):
        parts.append(html.escape(feed["source_notes"]))
    return "<li>" + "; ".join(parts) + "</li>"


def _start_here(
    name: str,
    *,
    dashboards: bool,
    points: bool,
    coverage: bool,
    feeds: list[str],
    alerts: dict[str, str] | None = None,
) -> str:
    """Links to what a person opens first. Relative (``dispatch/incidents``), so they work
    from the home page and the database page alike, under any ``base_url``."""
    db = urllib.parse.quote(name)

    def link(path: str, text: str) -> str:
        return f'<a href="{html.escape(path)}">{html.escape(text)}</a>'

    pages = [link(f"{db}/incidents", "Incidents")]
    pages += [link(f"{db}/{key}", q["title"]) for key, q in CANNED_QUERIES.items()]
    pages += [
        link(f"{db}/incident_timeline", "Timeline of changes"),
        link(f"{db}/polls", "Polls"),
    ]
    if points:
        pages.append(link(f"{db}/incident_points", "Map of calls with coordinates"))
    if coverage:
        pages.append(link(f"{db}/coverage", "Coverage: when the archive was blind"))
        pages.append(link(f"{db}/coverage_days", "Coverage per day"))
    text = "<p><strong>Start here:</strong> " + " · ".join(pages) + "</p>"
    if alerts:
        text += (
            "<p><strong>Watch rules</strong> (new matching calls; each an Atom feed): "
            + ", ".join(
                link(f"{db}/{query}", rule) + " (" + link(f"{db}/{query}.atom", "Atom") + ")"
                for rule, query in alerts.items()
            )
            + "</p>"
        )
    if dashboards:
        board = f"-/dashboards/{DASHBOARD}"
        per_feed = [
            link(f"{board}?{urllib.parse.urlencode({'feed': slug})}", slug) for slug in feeds
        ]
        text += (
            "<p><strong>Dashboards:</strong> "
            + link(board, "Calls and feed health, all feeds")
            + (" · per feed: " + ", ".join(per_feed) if per_feed else "")
            + " · "
            + link("-/dashboards", "all dashboards")
            + "</p>"
        )
    return text


def _archive_facts(conn: Any) -> tuple[bool, list[str] | None]:
    """(whether any incident has coordinates, the columns of a ``coverage`` view or table
    if the archive has one)."""
    points = bool(
        conn.execute(
            "SELECT EXISTS (SELECT 1 FROM incidents"
            " WHERE latitude IS NOT NULL AND longitude IS NOT NULL)"
        ).fetchone()[0]
    )
    coverage = [row[1] for row in conn.execute("PRAGMA table_info(coverage)")]
    return points, coverage or None


def _has_dashboards_plugin() -> bool:
    return importlib.util.find_spec("datasette_dashboards") is not None


#: No map where there are no points: datasette-cluster-map draws a map on any page with
#: latitude and longitude columns, even when none of its rows has a point (as with every
#: feed that publishes no coordinates). It is pointed at columns no table has, and only
#: ``incident_points`` (incidents that have coordinates) gets the real ones.
_NO_MAP = {"latitude_column": "map_latitude", "longitude_column": "map_longitude"}
_MAP = {"latitude_column": "latitude", "longitude_column": "longitude"}


def build_metadata(
    path: str | Path,
    *,
    database_name: str | None = None,
    title: str | None = None,
    alert_rules: Iterable[str] = (),
) -> dict[str, Any]:
    """Datasette metadata for the archive at ``path``, read from its ``feeds`` table.

    ``database_name`` is the name Datasette gives the file (its stem, the default). The
    metadata configures the dispatchwatch Datasette plugin (local times), datasette-cluster-map
    (a map only of incidents with coordinates, and only when there are some) and
    datasette-dashboards (when installed). ``alert_rules``: the names of the configured watch
    rules, each given its Atom feed (``alerts_<rule>``) even before it fires; rules that
    fired in this archive have one anyway. Raises ``FileNotFoundError`` without a file and
    ``ValueError`` for a file that is not an archive.
    """
    conn = _connect_readonly(path)
    try:
        feeds = _feed_rows(conn)
        points, coverage = _archive_facts(conn)
        from ..alerts import atom_queries, atom_query_name, rule_names

        simulated = bool(feeds) and all(is_simulated(f) for f in feeds)
        alert_queries = atom_queries(conn, alert_rules, simulated=simulated)
        alerts = {rule: atom_query_name(rule) for rule in rule_names(conn, alert_rules)}
    finally:
        conn.close()
    name = database_name or Path(path).stem
    dashboards = _has_dashboards_plugin()
    cities = list(dict.fromkeys(f["city"] for f in feeds if f.get("city")))
    if title is None:
        title = "Dispatch archive"
        if 0 < len(cities) <= 4:
            title += ": " + ", ".join(cities)
    if simulated and "SIMULATED" not in title.upper():
        title = f"SIMULATED {title} (dispatchwatch demo, not real calls)"
    start = _start_here(
        name,
        dashboards=dashboards,
        points=points,
        coverage=bool(coverage),
        feeds=[f["slug"] for f in feeds],
        alerts=alerts,
    )
    description = ""
    if simulated:
        description += (
            "<p><strong>SIMULATED DATA.</strong> Every call here was invented by "
            "<code>dispatchwatch demo</code> in the format of a real feed, served on "
            "127.0.0.1 and archived by the real daemon. No call, address or time here is "
            "real.</p>"
        )
    description += (
        "<p>Police and fire dispatch calls archived by dispatchwatch from public feeds. "
        "Addresses are at block level and coordinates rounded. Times are shown in each "
        "feed's local time with its zone (PDT, CST, ...; the UTC original is in each time's "
        "tooltip); they are stored, filtered, sorted and exported in UTC.</p>"
    )
    description += start
    if feeds:
        description += "<ul>" + "".join(_feed_item(f) for f in feeds) + "</ul>"
    licenses = {f.get("license") or "" for f in feeds}
    metadata: dict[str, Any] = {
        "title": title,
        "description_html": description,
    }
    if len(licenses) == 1 and "" not in licenses:
        metadata["license"] = licenses.pop()
    elif len(licenses) > 1:
        metadata["license"] = "Varies by feed (see the feeds table)"
    if simulated:
        metadata["source"] = "Simulated by dispatchwatch demo: not real calls"
    elif feeds:
        metadata["source"] = "; ".join(dict.fromkeys(f.get("agency") or f["name"] for f in feeds))
        if len(feeds) == 1 and (feeds[0].get("homepage") or feeds[0].get("url")):
            metadata["source_url"] = feeds[0].get("homepage") or feeds[0]["url"]
    metadata["about"] = "dispatchwatch"
    css = _COMPACT_COLUMN_DESCRIPTIONS_CSS + _CELL_CSS + (_SIMULATED_CSS if simulated else "")
    metadata["extra_css_urls"] = [_css_url(css)]
    tables = {}
    for table, docs in TABLE_DOCS.items():
        tables[table] = {**docs, **TABLE_OPTIONS.get(table, {})}
    if points:
        tables["incident_points"]["plugins"] = {"datasette-cluster-map": _MAP}
    else:
        tables["incident_points"]["hidden"] = True
    from ..imports.schema import metadata_tables  # history imports: call_counts, imports

    tables.update(metadata_tables())
    if coverage:
        from ..coverage import VIEW_DOCS  # lazy: coverage imports publish

        for view, docs in VIEW_DOCS.items():
            tables[view] = {**docs, **TABLE_OPTIONS.get(view, {})}
    queries = {
        key: {
            "title": q["title"],
            "description": q["description"],
            "sql": q["sql"].strip() + "\n",
            "hide_sql": True,
            **({"params": q["params"]} if "params" in q else {}),
        }
        for key, q in CANNED_QUERIES.items()
    }
    queries.update(alert_queries)
    metadata["databases"] = {
        name: {
            "description_html": (
                "<p>Dispatch calls, their change history and the polls that saw them.</p>" + start
            ),
            "tables": tables,
            "queries": queries,
            "plugins": {
                "dispatchwatch": {"local_times": True},
                "datasette-cluster-map": _NO_MAP,
            },
        }
    }
    if dashboards:
        metadata["plugins"] = {
            "datasette-dashboards": build_dashboards(
                name, coverage_columns=coverage, simulated=simulated
            )
        }
    return metadata


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the SQL) as ``|`` blocks, so the YAML stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def dump_metadata(metadata: dict[str, Any], fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.dump(
            metadata, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100
        )
    raise ValueError(f"unknown metadata format {fmt!r} (use yaml or json)")
