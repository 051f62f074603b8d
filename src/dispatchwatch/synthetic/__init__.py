"""Seeded, evolving synthetic dispatch feeds rendered as the real pages.

Two models of calls for service that evolve over simulated time and render byte-for-byte in
the markup of the real sources (CRLF, inline styles, header texts), so the real scrapers,
the archive, the simulation server and the benchmarks all run without the internet:

- :class:`MilwaukeeModel`: the MPD "Dispatched Calls for Service" *snapshot* page, which
  lists the calls dispatched 30 to 90 minutes before its "Updated:" time.
- :class:`SeattleModel`: the Seattle Fire Real-Time 911 *day log*, one row per dispatch,
  newest incident first, ``td class="active"`` turning ``closed``.

Everything is pure and deterministic: a model draws every attribute of a call from its own
``random.Random(seed)`` when the call arrives, so the state after ``advance(600)`` equals the
state after ten ``advance(60)``. Rendering draws nothing, and uses string templates only (the
bench renders thousands of pages).

Ground truth for exact-count tests: ``snapshot()`` (what the page shows now, per incident),
``listed_ids()``, ``events`` (everything that happened since ``start``) and :func:`diff`.

One file per job: ``common.py`` (events, diffs, seeded draws), ``milwaukee.py`` and
``seattle.py`` (one model and its page renderer each), ``socrata.py`` (a SODA dataset that
grows and rewrites rows) and ``arcgis.py`` (Houston's active-incidents layer).
"""

from .arcgis import ArcGISModel
from .common import CHICAGO, LOS_ANGELES, Diff, Event, diff
from .milwaukee import MilwaukeeCall, MilwaukeeModel, milwaukee_pages
from .seattle import SeattleIncident, SeattleModel, seattle_pages
from .socrata import SocrataModel

__all__ = [
    "CHICAGO",
    "LOS_ANGELES",
    "ArcGISModel",
    "Diff",
    "Event",
    "MilwaukeeCall",
    "MilwaukeeModel",
    "SeattleIncident",
    "SeattleModel",
    "SocrataModel",
    "diff",
    "milwaukee_pages",
    "seattle_pages",
]
