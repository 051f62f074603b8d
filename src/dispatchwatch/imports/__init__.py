"""History imports: exported files (CSV, TSV, Excel, JSON, NDJSON) through a mapping
(:mod:`.run`), releases of counts into ``call_counts`` (:mod:`.counts`), and import-only
feeds (:mod:`.feeds`).

Nothing is imported here on purpose: scraper modules import :mod:`.feeds` while plugins
load, before the rest of dispatchwatch is ready.
"""
