"""The Seattle Fire Real-Time 911 day log, simulated.

:class:`SeattleModel` keeps one row per dispatch, newest incident first, ``td class="active"``
turning ``closed``, and starts an empty page at local midnight.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Literal

from .common import LOS_ANGELES, Event, EventKind, check_start, poisson_gap, weighted

__all__ = [
    "REAL_EXTRA_DISPATCHES",
    "REAL_RATE_PER_HOUR",
    "SeattleIncident",
    "SeattleModel",
    "seattle_pages",
]

#: The real day page of 3/31/2024 (/work/shared/real-pages/seattle/), captured at 6:33:30 PM
#: Pacific, lists 220 incidents received since midnight (18.56 hours): ~11.9 an hour.
REAL_RATE_PER_HOUR = 220 / 18.56
#: ... in 267 dispatch rows: 185 incidents have one row, 26 two, 7 three, 1 four, 1 five.
#: ``(extra dispatch rows, weight)`` (1.21 rows an incident; the model's default draws
#: ``0, 0, 0, 0, 1, 1, 2``: 1.57).
REAL_EXTRA_DISPATCHES: tuple[tuple[int, float], ...] = ((0, 185), (1, 26), (2, 7), (3, 1), (4, 1))

SEA_TYPES: tuple[tuple[str, float], ...] = (
    ("Aid Response", 45),
    ("Medic Response", 14),
    ("Medic Response, 6 per Rule", 3),
    ("Medic Response, 7 per Rule", 2),
    ("Medic Response, Overdose", 2),
    ("Low Acuity Response", 5),
    ("Auto Fire Alarm", 4),
    ("Automatic Fire Alarm Resd", 2),
    ("Automatic Fire Alarm False", 1),
    ("Automatic Medical Alarm", 2),
    ("Rescue Elevator", 1),
    ("Rescue Lock In/Out", 1),
    ("Rubbish Fire", 2),
    ("Car Fire", 1),
    ("Dumpster Fire", 1),
    ("Encampment Fire", 1),
    ("Illegal Burn", 1),
    ("Electrical Problem", 1),
    ("Fuel Spill", 1),
    ("MVI - Motor Vehicle Incident", 3),
    ("MVI Freeway", 1),
    ("Alarm Bell", 1),
    ("Hang-Up, Aid", 1),
    ("Investigate Out Of Service", 1),
    ("Water Job Minor", 1),
    ("Scenes Of Violence 7", 1),
    ("Advised Incident", 1),
    ("1RED 1 Unit", 1),
)
SEA_STREETS = (
    "Summit Ave",
    "Holman Rd Nw",
    "NE 95TH ST",
    "3rd Ave",
    "E Yesler Way",
    "Brooklyn Ave Ne",
    "Pine St",
    "Aurora Ave N",
    "10th Ave E",
    "S Orcas St",
    "Sw Henderson St",
    "6th Ave S",
    "Crestwood Dr S",
    "43rd Ave E",
    "N 62nd St",
    "Rainier Ave S",
    "15th Ave Nw",
    "Lake City Way Ne",
    "California Ave Sw",
    "Broadway E",
    "12th Ave",
    "Holman Rd N",
    "Martin Luther King Jr Way S",
    "Delridge Way Sw",
    "Greenwood Ave N",
    "University Way Ne",
)
SEA_PLACES = (
    "Nb I5 At Mid Boeing Field",
    "Sb I5 At Mercer St",
    "Westlake Center",
    "Seattle Center",
    "Sr99 Nb At Battery St Tunnel",
)


def _sea_location(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.03:
        return rng.choice(SEA_PLACES)
    if roll < 0.13:
        first, second = rng.sample(SEA_STREETS, 2)
        return f"{first} / {second}"
    return f"{rng.randint(100, 12999)} {rng.choice(SEA_STREETS)}"


def _sea_units(rng: random.Random, call_type: str, count: int) -> list[str]:
    if call_type.startswith("Medic"):
        pools = ("M", "E", "A")
    elif call_type.startswith(("Aid", "Low", "Hang", "Automatic Medical")):
        pools = ("A", "E", "E")
    else:
        pools = ("E", "L", "B")
    top = {"A": 31, "E": 41, "M": 44, "L": 13, "B": 6}
    return [f"{p}{rng.randint(1, top[p])}" for p in rng.choices(pools, k=count)]


def _sea_time(local: datetime) -> str:
    hour = local.hour % 12 or 12
    half = "AM" if local.hour < 12 else "PM"
    return (
        f"{local.month}/{local.day}/{local.year} {hour}:{local.minute:02d}:"
        f"{local.second:02d} {half}"
    )


def _sea_date(day: date) -> str:
    return f"{day.month}/{day.day}/{day.year}"


@dataclass(frozen=True, slots=True)
class SeattleIncident:
    """One incident as the Seattle page shows it, its dispatch rows merged."""

    incident_id: str
    received: datetime  # aware, America/Los_Angeles
    level: str
    units: tuple[str, ...]  # unique, first-seen order
    location: str
    call_type: str
    status: Literal["active", "closed"]
    rows: int


@dataclass(slots=True)
class _SeaDispatch:
    at: datetime  # UTC, when the row appears (the row shows the incident's time)
    units: str
    gap: int  # row ids the real site skips before this row


@dataclass(slots=True)
class _SeaIncident:
    incident_id: str
    received: datetime  # UTC
    day: date  # local date of ``received``: the day page that lists it
    level: str
    location: str
    call_type: str
    closed_at: datetime  # UTC
    dispatches: list[_SeaDispatch]
    # The cells before and after the units cell, rendered once; _CLASS marks the td class.
    head: str
    tail: str


_SEA_HEAD = "\r\n".join(
    [
        '<meta http-equiv="refresh" content="60">',
        "<html>",
        "<head>",
        "    ",
        "<title>Seattle Fire Real-Time 911</title>",
        '<link REL="stylesheet" HREF="fontStyles.css" TYPE="text/css">',
        "",
        "",
        '<script Language="javascript">',
        "<!--",
        "",
        '\tvar ltgray = "#E0E0E0";',
        '\tvar white = "#FFFFFF";',
        "",
        "\t// Change row color when MouseOver occurs",
        "\tfunction rowOn(obj)",
        "\t{",
        "\t\tobj.style.backgroundColor = ltgray;",
        "\t}",
        "\t",
        "\tfunction rowOff(obj)\t",
        "\t{",
        "\t\tobj.style.backgroundColor = white;",
        "\t}",
        "//-->",
        "</script>",
        '<script src="/gatc/www-gatc.js"></script>',
        "",
        "</head>",
        "<body leftmargin=0 topmargin=0 marginwidth=0 marginheight=0>",
        "",
        "",
    ]
)
_SEA_TABLE_HEAD = "\r\n".join(
    [
        " ",
        '<table width="100%" bgcolor=#FFFFFF border=0 cellspacing=0 cellpadding=4>',
        "  <tr>",
        '  \t<td class="regtext" width=100% colspan="6">',
        '      <table border="0" cellspacing="0" width="100%">',
        "         <tr>",
        '            <td width="19%" class="regtext">',
        '\t\t\t<img border="0" src="grsq.gif"> = Active Incident</td>',
        '            <td width="25%" class="regtext">',
        '\t\t\t<img border="0" src="blsq.gif"> = Closed Incident</td>',
        '            <td width="18%" class="regtext">&nbsp;</td>',
        '            <td width="38%" class="regtext">',
        "       \t\t\t&nbsp;Automatic Refresh in:  ",
        '\t\t\t\t<script language="JavaScript">',
        "\t\t\t\t\tvar dt = new Date();",
        "\t\t\t\t\tTargetDate = dt.setSeconds(dt.getSeconds() + 60);",
        '\t\t\t\t\tBackColor = "#999966";',
        '\t\t\t\t\tForeColor = "navy";',
        "\t\t\t\t\tCountActive = true;",
        '\t\t\t\t\tDisplayFormat = "%%S%%";',
        '\t\t\t\t\tFinishMessage = "";',
        "\t\t\t\t</script>",
        '\t\t\t\t<script language="JavaScript" src="autoRefresh.js"></script>',
        '\t\t\t\t&nbsp;<span class="regsmall">Seconds</span>',
        "\t\t\t",
        "\t\t\t  </td>",
        "         </tr>",
        "      </table>",
        "    </td>",
        "  </tr>",
        "  <tr>",
        '  \t<td class="regbold" width=16%>Date/Time</td>',
        '  \t<td class="regbold" width=10%>Incident #</td>',
        '  \t<td class="regbold" width=7%>Level</td>',
        '  \t<td class="regbold" width=17%>Units</td>',
        '  \t<td class="regbold" width=36%>Location</td>',
        '  \t<td class="regbold" width=14%>Type</td>',
        "  </tr>",
        "  <tr>",
        '  \t<td colspan="6">',
        "  \t",
        '  \t\t<table width="100%" border="0" cellpadding="1" bgcolor="#990000">',
        "  \t\t\t<tr>",
        '  \t\t\t\t<td valign="top">',
        '    \t\t\t\t<table width="100%" border=0 cellpadding="2" cellspacing="0" '
        'bgcolor="#FFFFFF">',
        "    \t\t\t\t\t",
        "    ",
        "",
    ]
)
_SEA_TABLE_TAIL = "\r\n".join(
    [
        "  ",
        "  ",
        "  </table>",
        "  </table>",
        "  </td>",
        "  </tr>",
        "  </table>",
        "  <font face='Arial,Helvetica,Sans-Serif' Size='2'>&nbsp;Retrieved {n} dispatch messages "
        "for {day}&nbsp;&nbsp;&nbsp;<i>(screen automatically refreshes every 60 seconds)</i><br>"
        "</font>",
        "",
        "  </body>",
        "  </html>",
        "",
    ]
)
_SEA_NO_RECORDS = "\r\n".join(
    [
        "<br>Sorry, no records found for {day}",
        "  ",
        "  ",
        "  </table>",
        "  </table>",
        "  </td>",
        "  </tr>",
        "  </table>",
        "  ",
        "",
        "  </body>",
        "  </html>",
        "",
    ]
)
_CLASS = "\x00"


def _sea_cells(cells: Sequence[tuple[str, str]]) -> str:
    return "".join(
        f'            <td class="{_CLASS}" width={width} valign="top">'
        f"{escape(text, quote=False)}</td>\r\n"
        for width, text in cells
    )


class SeattleModel:
    """The Seattle Fire day log: incidents arrive, get one to a few dispatch rows (extra
    units), go from active to closed, and the page starts empty again at local midnight."""

    def __init__(
        self,
        seed: int = 0,
        start: datetime = datetime(2024, 3, 31, 18, 33, 30, tzinfo=LOS_ANGELES),
        rate_per_hour: float = 30.0,
        extra_dispatches: Sequence[tuple[int, float]] | None = None,
    ) -> None:
        """``rate_per_hour``: incidents received an hour (Poisson). ``extra_dispatches``:
        ``(count, weight)`` of the dispatch rows an incident gets after its first (None: the
        historical draw, 0.57 on average; :data:`REAL_EXTRA_DISPATCHES` is the real page's).
        With :data:`REAL_RATE_PER_HOUR` and :data:`REAL_EXTRA_DISPATCHES` a page has the real
        page's rows for the hour of day (bytes a row already match: ~545)."""
        if rate_per_hour <= 0:
            raise ValueError("rate_per_hour must be positive")
        self.seed = seed
        self.rate_per_hour = rate_per_hour
        self._extra = (
            None if extra_dispatches is None else tuple(zip(*extra_dispatches, strict=True))
        )
        self.start = start.astimezone(LOS_ANGELES)
        self._rng = random.Random(seed)
        self._now = check_start(start)
        self._incidents: list[_SeaIncident] = []  # in arrival order
        self._seq = 44000 + self._rng.randint(0, 900)
        # The day log starts at local midnight: generate the day so far.
        midnight = datetime.combine(self.start.date(), time(0), LOS_ANGELES).astimezone(UTC)
        self._next_arrival = midnight + poisson_gap(self._rng, rate_per_hour)
        self.events: list[Event] = []
        self._arrive_until(self._now)

    @property
    def now(self) -> datetime:
        return self._now.astimezone(LOS_ANGELES)

    @property
    def day(self) -> date:
        """The local date the page is for."""
        return self.now.date()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        old, new = self._now, self._now + timedelta(seconds=seconds)
        self._arrive_until(new)
        found: list[Event] = []
        for inc in self._incidents:
            # A day page lists only its own day: an incident's rows leave at the next local
            # midnight, and what happens to it afterwards shows on no page.
            day_ends = datetime.combine(inc.day + timedelta(days=1), time(0), LOS_ANGELES)
            changes = [(d.at, "units: +" + d.units) for d in inc.dispatches[1:]]
            changes.append((inc.closed_at, "status: active -> closed"))
            first = inc.dispatches[0].at
            if old < first <= new:
                found.append(self._event(first, "new", inc.incident_id))
            for at, detail in changes:
                if old < at <= new and at < day_ends:
                    found.append(self._event(at, "changed", inc.incident_id, detail))
            if old < day_ends <= new:
                found.append(self._event(day_ends, "gone", inc.incident_id, "day ended"))
        found.sort(key=lambda e: e.at)
        self.events.extend(found)
        self._now = new
        # Keep yesterday too: its day page is still served (the daemon reads it after
        # midnight to see how the calls active at midnight ended).
        yesterday = self.day - timedelta(days=1)
        self._incidents = [i for i in self._incidents if i.day >= yesterday]

    @staticmethod
    def _event(at: datetime, kind: EventKind, incident_id: str, detail: str = "") -> Event:
        return Event(at.astimezone(LOS_ANGELES), kind, incident_id, detail)

    def _arrive_until(self, until: datetime) -> None:
        while self._next_arrival <= until:
            self._incidents.append(self._new_incident(self._next_arrival))
            self._next_arrival += poisson_gap(self._rng, self.rate_per_hour)

    def _new_incident(self, received: datetime) -> _SeaIncident:
        rng = self._rng
        local = received.astimezone(LOS_ANGELES)
        self._seq = (self._seq + rng.choice((1, 1, 1, 2))) % 10_000_000
        prefix = weighted(rng, (("F", 98), ("M", 1), ("V", 0.5), ("B", 0.5)))
        incident_id = f"{prefix}{local:%y}{self._seq:07d}"
        call_type = weighted(rng, SEA_TYPES)
        level = "1" if rng.random() < 0.85 else ""
        location = _sea_location(rng)
        dispatches = [
            _SeaDispatch(
                received,
                " ".join(_sea_units(rng, call_type, rng.choice((1, 1, 1, 2)))),
                rng.choice((0, 0, 1, 2)),
            )
        ]
        at = received
        if self._extra is None:
            extra = rng.choice((0, 0, 0, 0, 1, 1, 2))
        else:
            extra = rng.choices(*self._extra)[0]
        for _ in range(extra):
            at += timedelta(seconds=rng.uniform(20, 480))
            units = " ".join(_sea_units(rng, call_type, rng.choice((1, 1, 2, 3))))
            dispatches.append(_SeaDispatch(at, units, rng.choice((0, 0, 1, 2))))
        closed_at = at + timedelta(minutes=rng.uniform(8, 75))
        head = _sea_cells((("16%", _sea_time(local)), ("10%", incident_id), ("7%", level)))
        tail = _sea_cells((("36%", location), ("14%", call_type)))
        return _SeaIncident(
            incident_id,
            received,
            local.date(),
            level,
            location,
            call_type,
            closed_at,
            dispatches,
            head,
            tail,
        )

    def _visible(self, now: datetime, day: date) -> list[_SeaIncident]:
        shown = [i for i in self._incidents if i.day == day and i.received <= now]
        # Newest incident first; its dispatch rows in the order they were sent.
        shown.sort(key=lambda i: (i.received, i.incident_id), reverse=True)
        return shown

    def incidents(self) -> list[SeattleIncident]:
        """The incidents on the current page, newest first, rows merged."""
        now = self._now
        out = []
        for inc in self._visible(now, self.day):
            rows = [d for d in inc.dispatches if d.at <= now]
            units = dict.fromkeys(u for d in rows for u in d.units.split())
            status: Literal["active", "closed"] = "closed" if now >= inc.closed_at else "active"
            out.append(
                SeattleIncident(
                    inc.incident_id,
                    inc.received.astimezone(LOS_ANGELES),
                    inc.level,
                    tuple(units),
                    inc.location,
                    inc.call_type,
                    status,
                    len(rows),
                )
            )
        return out

    def listed_ids(self) -> list[str]:
        return [i.incident_id for i in self._visible(self._now, self.day)]

    def snapshot(self) -> dict[str, SeattleIncident]:
        """Incident number -> merged incident, for :func:`diff`."""
        return {i.incident_id: i for i in self.incidents()}

    def row_count(self) -> int:
        now = self._now
        return sum(1 for i in self._visible(now, self.day) for d in i.dispatches if d.at <= now)

    def page(self, day: date | None = None) -> bytes:
        """The real ``getRecsForDatePub.asp`` day page (or its "no records" page) of today,
        or of ``day`` (yesterday or today; older days show no records)."""
        now = self._now
        shown = day or self.day
        day_text = _sea_date(shown)
        parts = [_SEA_HEAD]
        row_id = 0
        count = 0
        for inc in self._visible(now, shown):
            status = "closed" if now >= inc.closed_at else "active"
            head, tail = inc.head.replace(_CLASS, status), inc.tail.replace(_CLASS, status)
            for dispatch in inc.dispatches:
                if dispatch.at > now:
                    break
                row_id += 1 + dispatch.gap
                count += 1
                parts.append(
                    f"        <tr id=row_{row_id} onMouseOver='rowOn(row_{row_id})' "
                    f"onMouseOut='rowOff(row_{row_id})'>\r\n{head}"
                    f'            <td class="{status}" width=17% valign="top">'
                    f"{dispatch.units}</td>\r\n{tail}        </tr>\r\n      \r\n"
                )
        if count == 0:
            parts.append(_SEA_NO_RECORDS.format(day=day_text))
        else:
            parts.insert(1, _SEA_TABLE_HEAD)
            parts.append(_SEA_TABLE_TAIL.format(n=count, day=day_text))
        return "".join(parts).encode("ascii", "xmlcharrefreplace")


def seattle_pages(count: int, seed: int = 0, every: float = 60.0) -> Iterator[bytes]:
    """``count`` consecutive Seattle day pages, ``every`` simulated seconds apart."""
    model = SeattleModel(seed)
    for index in range(count):
        if index:
            model.advance(every)
        yield model.page()
