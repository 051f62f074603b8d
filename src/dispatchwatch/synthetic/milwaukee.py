"""The Milwaukee Police "Dispatched Calls for Service" snapshot page, simulated.

:class:`MilwaukeeModel` lists the calls dispatched 30 to 90 minutes before its "Updated:" time
and renders the real page byte for byte (CRLF, inline styles, header texts).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

from .common import CHICAGO, Event, EventKind, check_start, ordinal, poisson_gap, weighted

__all__ = ["MilwaukeeCall", "MilwaukeeModel", "milwaukee_pages"]

MKE_LISTED_FROM = timedelta(minutes=30)
MKE_LISTED_UNTIL = timedelta(minutes=90)

MKE_IN_PROGRESS = "Service in Progress"
MKE_FINAL_STATUSES: tuple[tuple[str, float], ...] = (
    ("Assignment Completed", 40),
    ("Advised", 15),
    ("Unable to Locate Complainant", 15),
    ("To be Filed", 8),
    ("Cleared by Arrest", 6),
    ("City Citation(s) Issued", 10),
    ("Citation(s) Issued", 6),
)
MKE_NATURES: tuple[tuple[str, float], ...] = (
    ("TRAFFIC STOP", 14),
    ("OUT OF SERVICE", 8),
    ("SPECIAL ASSIGN", 6),
    ("TRBL W/SUBJ", 6),
    ("SHOTSPOTTER", 4),
    ("RETURN STATION", 4),
    ("MED RUN", 4),
    ("THEFT VEHICLE", 3),
    ("FOLLOW UP", 3),
    ("TRAFFIC LASER", 2),
    ("REPORTS", 3),
    ("RECK USE OF WEAP", 2),
    ("ASSIGNMENT", 2),
    ("SUBJ STOP", 2),
    ("ADDL INFO", 2),
    ("CRUELTY ANIMAL", 1),
    ("INVESTIGATION", 2),
    ("PROPERTY DAMAGE", 2),
    ("CALL FOR POLICE", 2),
    ("SUSP PERS/AUTO", 2),
    ("FAMILY TROUBLE", 3),
    ("STOLEN VEHICLE", 2),
    ("WELFARE CITIZEN", 2),
    ("ACC PI", 2),
    ("THREAT", 1),
    ("INJ PERSON/SICK", 2),
    ("FIGHT", 2),
    ("THEFT", 2),
    ("BATTERY", 2),
    ("PARK AND WALK", 2),
    ("ABAND/STOLEN PRO", 1),
    ("ENTRY TO AUTO", 1),
    ("BURGLARY-RES", 1),
    ("SHOTS FIRED", 1),
    ("ACC PD", 2),
)
MKE_DISTRICTS: tuple[tuple[str, float], ...] = (
    ("1", 8),
    ("2", 10),
    ("3", 16),
    ("4", 12),
    ("5", 14),
    ("6", 14),
    ("7", 16),
    ("SPD", 1.5),
    ("CITY", 1),
    ("OUT", 1),
    ("CIB", 0.5),
    ("NTF", 0.5),
)
# Streets run N/S (numbered) or E/W (named); hundred-blocks are the archive's business.
MKE_NAMED_STREETS = (
    "W OREGON ST",
    "W MORGAN AV",
    "W SILVER SPRING DR",
    "W VLIET ST",
    "E BAY ST",
    "W LISBON AV",
    "W FOND DU LAC AV",
    "S HOWELL AV",
    "W LINCOLN AV",
    "W ALLYN CT",
    "W CHAMBERS ST",
    "N TEUTONIA AV",
    "W JUNEAU AV",
    "W WALNUT ST",
    "W STATE ST",
    "W OKLAHOMA AV",
    "W ROBERTS ST",
    "W OLIVE ST",
    "N VEL R PHILLIPS AV",
    "W CAPITOL DR",
    "W NORTH AV",
    "W BURLEIGH ST",
    "W CENTER ST",
    "E BRADY ST",
    "W GREENFIELD AV",
    "S KINNICKINNIC AV",
    "W WRIGHT ST",
    "W HAMPTON AV",
    "W GOOD HOPE RD",
    "S 1ST ST",
)
MKE_SUFFIXES: tuple[tuple[str, float], ...] = (
    (",MKE", 90),
    (",WMW", 2),
    (",WA", 2),
    (",GFD", 1.5),
    (",STF", 1.5),
    ("", 3),
)
MKE_FREE_TEXT = (
    "PAB",
    "CJF",
    "HOC",
    "DISTRICT 5 STATION",
    "MITCHELL INTL AIRPORT",
    "I 94 EB / N 35TH ST",
)


def _mke_street(rng: random.Random) -> str:
    if rng.random() < 0.45:
        return f"{rng.choice('NS')} {ordinal(rng.randint(1, 124))} ST"
    return rng.choice(MKE_NAMED_STREETS)


def _mke_location(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.02:
        return rng.choice(MKE_FREE_TEXT)
    suffix = weighted(rng, MKE_SUFFIXES)
    if roll < 0.14:
        return f"{_mke_street(rng)} / {_mke_street(rng)}{suffix}"
    return f"{rng.randint(1, 9999)} {_mke_street(rng)}{suffix}"


def _mke_time(local: datetime) -> str:
    return local.strftime("%m/%d/%Y %I:%M:%S %p")


@dataclass(frozen=True, slots=True)
class MilwaukeeCall:
    """One call as the MPD page shows it (the ground truth a parse must reproduce)."""

    call_number: str
    dispatched: datetime  # aware, America/Chicago
    location: str
    district: str
    nature: str
    status: str


@dataclass(slots=True)
class _MkeCall:
    call_number: str
    dispatched: datetime  # UTC
    location: str
    district: str
    nature: str
    status: str
    new_status: str | None
    change_at: datetime | None  # UTC; inside the listed window when set
    row_head: str  # the first five cells, rendered once

    def status_at(self, now: datetime) -> str:
        if self.change_at is not None and now >= self.change_at:
            assert self.new_status is not None
            return self.new_status
        return self.status


_MKE_TD = "\t\t\t\t\t\t<td style='border: 1px solid black; border-collapse: collapse;'>"
_MKE_TD_CENTER = (
    "\t\t\t\t\t\t<td style='border: 1px solid black; border-collapse: collapse; "
    "text-align: center;'>"
)
_MKE_TR = "\t\t\t\t\t<tr style='border-style: none; border-collapse: collapse;'>\r\n"
_MKE_TR_END = "</td>\r\n\t\t\t\t\t</tr>\r\n"
_MKE_TH = "\t\t\t\t\t\t<th style='border: 1px solid black; border-collapse: collapse;'>"

# The real page's markup, with the site's long "Directory" drop-down cut to its first group.
_MKE_HEAD = "\r\n".join(
    [
        "<!DOCTYPE HTML>",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "<html>",
        "",
        "\t<head>",
        "\t\t<title>Milwaukee Police Department: Call for Service</title>",
        "\t\t<meta http-equiv='X-UA-Compatible' content='IE=edge'><meta name='viewport' "
        "content='width=device-width, initial-scale=1'><link rel='stylesheet' "
        "href='/ItmdScripts/css/redesign.css' type='text/css' /><link rel='stylesheet' "
        "href='/ItmdScripts/css/city-various.css' type='text/css' /><script "
        "src='/ItmdScripts/js/jquery.min.js'></script><script src='/ItmdScripts/js/message.js'>"
        "</script><script src='/ItmdScripts/js/mil-default.js'></script>",
        "\t</head>",
        "\t<body>",
        "\t\t<div id='bg-div'><div data-role='page' class='main'><div data-role='header' "
        "class='redesign-header'><a id='lnk-citylogo' href='http://city.milwaukee.gov'><img "
        "alt='City of Milwaukee' src='//itmdapps.milwaukee.gov/templates/2014/city2013_logo.png'/>"
        "</a><div class='city-title'>Official Website of the City of Milwaukee</div><div "
        "id='city-navbar-div'><div style='position: relative'><ul class='city-navbar'><li "
        "class='navFirst'><a id='lnk-mildirectory' href='#'>Directory</a><div id='directory-dd'>"
        "<ul><li class='listhdr'><h4>Health, Safety and Services</h4></li><li><a "
        "href='http://city.milwaukee.gov/mfd'>Fire Department</a></li><li><a "
        "href='http://city.milwaukee.gov/Directory/police'>Police Department</a></li></ul>"
        "</div></li><li><a href='http://city.milwaukee.gov/Residents.htm'>Residents</a></li><li>"
        "<a href='http://city.milwaukee.gov/Business.htm'>Business</a></li><li><a "
        "href='http://city.milwaukee.gov/Visitors.htm'>Visitors</a></li></ul></div></div><div "
        "id='searchBarContainer'><div id='callForActionTitle'>CALL for Action (414) 286-CITY | "
        "<a href='http://www.milwaukee.gov/clickforservice'>Click for Action</a></div><br "
        "style='clear: both'/><div id='searchFormContainer'><form method='GET' "
        "action='//city.milwaukee.gov/Search-Results.htm'><input type='text' id='searchTerms' "
        "name='Search_Keywords' maxlength='200'><input type='submit' value='Search' "
        "id='searchGo'></form></div></div></div><div class='heading'>Dispatched Calls for "
        "Service</div>",
        "\t\t<div class='content' style='padding: 5px;'>",
        "\t\t\t<p>This page displays a summary of Calls for Service made to a 911 operator and "
        "dispatched to the Milwaukee Police Department (MPD). Calls displayed represent calls "
        "dispatch 30 - 90 minutes prior to the updated date below.</p>",
        "\t\t\t<p><strong>If the site is down please contact the Milwaukee Police Department IT "
        "Help Desk ANd ITMD Help Desk at <a href = 'mailto: MPDHELP@milwaukee.gov;"
        "UCCWebHelp@milwaukee.gov'>MPDHELP@milwaukee.gov;UCCWebHelp@milwaukee.gov</a>.</strong>"
        "</p>",
        "\t\t\t<dl style='margin: 0px;'>",
        "\t\t\t\t<dt><strong>How to modify the list of calls</strong></dt>",
        "\t\t\t\t<dd>",
        "\t\t\t\t\t<dl style='margin: 0px;'>",
        "\t\t\t\t\t\t<dt><strong>To change the Police District...</strong></dt>",
        "\t\t\t\t\t\t<dd>Select the MPD Police District from <strong>Police District</strong> "
        "drop-down list. For more information, click <a "
        "href='//city.milwaukee.gov/Directory/police/Police-Districts.htm' target='_new'>here</a>."
        "</dd>",
        "\t\t\t\t\t\t<dt><strong>To update the data...</strong></dt>",
        "\t\t\t\t\t\t<dd>Click the <strong>Refresh</strong> button to update the list of calls."
        "</dd>",
        "\t\t\t\t\t\t<dd>The system is updated every 5 minutes.</dd>",
        "\t\t\t\t\t\t<dt><strong>Not all call types shown</strong></dt>",
        "\t\t\t\t\t</dl>",
        "\t\t\t\t</dd>",
        "\t\t\t</dl>",
        "\t\t\t<table style='margin: auto; border-style: none; border-collapse: collapse;'>",
        "\t\t\t\t<thead style='border-style: none; border-collapse: collapse;'>",
        "\t\t\t\t\t<tr>",
        "\t\t\t\t\t\t<th colspan='6'>",
        "\t\t\t\t\t\t\t<form action='index.jsp' method='get'>",
        "\t\t\t\t\t\t\t\tPolice District ",
        "\t\t\t\t\t\t\t\t<select name='district'>",
        "\t\t\t\t\t\t\t\t\t<option value='All' selected='selected'>All</option>",
        *(f"\t\t\t\t\t\t\t\t\t<option value='{d}'>{d}</option>" for d in range(1, 8)),
        "\t\t\t\t\t\t\t\t</select>",
        "\t\t\t\t\t\t\t\t<input type='submit' value='Refresh'/> Updated: ",
    ]
)
_MKE_AFTER_UPDATED = "\r\n".join(
    [
        "",
        "\t\t\t\t\t\t\t</form>",
        "\t\t\t\t\t\t</th>",
        "\t\t\t\t\t</tr>",
        "\t\t\t\t\t<tr style='border-style: none; border-collapse: collapse;'>",
        *(
            f"{_MKE_TH}{h}</th>"
            for h in (
                "Call Number",
                "Date/Time",
                "Location",
                "Police District",
                "Nature of Call",
                "Status",
            )
        ),
        "\t\t\t\t\t</tr>",
        "\t\t\t\t</thead>",
        "\t\t\t\t<tbody style='border-style: none; border-collapse: collapse;'>",
        "",
    ]
)
_MKE_TAIL = "\r\n".join(
    [
        "\t\t\t\t</tbody>",
        "\t\t\t</table>",
        "\t\t\t<dl style='margin: 0px;'>",
        "\t\t\t\t<dt>PPS</dt>",
        "\t\t\t\t<dd>Prisoner Processing Section</dd>",
        "\t\t\t\t<dt>CJF</dt>",
        "\t\t\t\t<dd>Criminal Justice Facility</dd>",
        "\t\t\t\t<dt>PAB</dt>",
        "\t\t\t\t<dd>Police Administration Building</dd>",
        "\t\t\t\t<dt>PA</dt>",
        "\t\t\t\t<dd>Police Academy</dd>",
        "\t\t\t\t<dt>HOC</dt>",
        "\t\t\t\t<dd>House of Correction</dd>",
        "\t\t\t\t<dt>CIB</dt>",
        "\t\t\t\t<dd>Criminal Investigation Bureau</dd>",
        "\t\t\t\t<dt>MG</dt>",
        "\t\t\t\t<dd>Municipal Garage</dd>",
        "\t\t\t\t<dt>ID</dt>",
        "\t\t\t\t<dd>Identification Division</dd>",
        "\t\t\t</dl>",
        "\t\t\t<p>",
        "\t\t\t\t<a href='disclaimer.jsp' target='_new'>Disclaimer:</a>This document is "
        "intended for illustrative purposes only. The City of Milwaukee makes no warranty, "
        "representation or guaranty as to the content, accuracy, timeliness or completeness of "
        "any of the information presented, due to data collection methods. The city of "
        "Milwaukee assumes no liability.",
        "\t\t\t</p>",
        "\t\t\t<p>",
        "\t\t\t\tNote: Calls for Service past 90 minutes can be obtained with an Open Record "
        "request at: <a href='//city.milwaukee.gov/police/Obtain-Accident-Reports.htm' "
        "target='_new'>Open Records</a>",
        "\t\t\t</p>",
        # A commented-out block, as on the real page: scrapers must not read rows from comments.
        "\t\t\t<!--  removed per yari 2019.07.03",
        "\t\t\t<p style='color: red;'>",
        "\t\t\t\tExperiencing problems with this application? Please check: <a "
        "href='//city.milwaukee.gov/PublicApplications/ErrorPage.htm' target='_new'>Dispatched "
        "Calls for Service</a> for known service outages.",
        "\t\t\t</p>",
        "\t\t\t-->",
        "\t\t</div>",
        "\t\t<div data-role='footer' class='footer'><ul><li><a "
        "href='http://city.milwaukee.gov/Mayor'>Mayor</a></li><li><a "
        "href='http://city.milwaukee.gov/CommonCouncil'>Common Council</a></li></ul><div "
        "class='art-museum'>Design by City of Milwaukee</div><div "
        "id='google_translate_element'></div></div><div style='display: none' id='was-box'>$box$"
        "</div></div></div><div id='darkbg'></div>",
        "\t</body>",
        "</html>",
    ]
)


class MilwaukeeModel:
    """The MPD snapshot feed: calls arrive, are listed 30-90 minutes after dispatch, about
    30% change status while listed, then leave the list."""

    def __init__(
        self,
        seed: int = 0,
        start: datetime = datetime(2023, 1, 21, 16, 54, 13, tzinfo=CHICAGO),
        rate_per_hour: float = 60.0,
    ) -> None:
        if rate_per_hour <= 0:
            raise ValueError("rate_per_hour must be positive")
        self.seed = seed
        self.rate_per_hour = rate_per_hour
        self.start = start.astimezone(CHICAGO)
        self._rng = random.Random(seed)
        self._now = check_start(start)
        self._calls: list[_MkeCall] = []  # in dispatch order
        self._seq_day: date | None = None
        self._seq = 0
        # Begin the history 90 minutes back so the first page is already full.
        self._next_arrival = self._now - MKE_LISTED_UNTIL + poisson_gap(self._rng, rate_per_hour)
        self.events: list[Event] = []
        self._arrive_until(self._now)

    @property
    def now(self) -> datetime:
        """The model's current time (the page's "Updated:"), America/Chicago."""
        return self._now.astimezone(CHICAGO)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        old, new = self._now, self._now + timedelta(seconds=seconds)
        self._arrive_until(new)
        found: list[Event] = []
        for call in self._calls:
            listed_at = call.dispatched + MKE_LISTED_FROM
            gone_at = call.dispatched + MKE_LISTED_UNTIL
            if old < listed_at <= new:
                found.append(self._event(listed_at, "new", call.call_number))
            if call.change_at is not None and old < call.change_at <= new:
                found.append(
                    self._event(
                        call.change_at,
                        "changed",
                        call.call_number,
                        f"status: {call.status} -> {call.new_status}",
                    )
                )
            if old < gone_at <= new:
                found.append(self._event(gone_at, "gone", call.call_number))
        found.sort(key=lambda e: e.at)
        self.events.extend(found)
        self._now = new
        # Calls past the window can never show again.
        cutoff = new - MKE_LISTED_UNTIL
        keep = bisect.bisect_left([c.dispatched for c in self._calls], cutoff)
        del self._calls[:keep]

    @staticmethod
    def _event(at: datetime, kind: EventKind, call_id: str, detail: str = "") -> Event:
        return Event(at.astimezone(CHICAGO), kind, call_id, detail)

    def _arrive_until(self, until: datetime) -> None:
        while self._next_arrival <= until:
            self._calls.append(self._new_call(self._next_arrival))
            self._next_arrival += poisson_gap(self._rng, self.rate_per_hour)

    def _new_call(self, dispatched: datetime) -> _MkeCall:
        rng = self._rng
        local = dispatched.astimezone(CHICAGO)
        if local.date() != self._seq_day:
            self._seq_day, self._seq = local.date(), rng.randint(1, 40)
        # Not every call is published: the sequence skips numbers, as the real one does.
        self._seq = (self._seq + rng.choice((1, 1, 1, 2, 3))) % 10000
        number = f"{local:%y}{local.timetuple().tm_yday:03d}{self._seq:04d}"
        location = _mke_location(rng)
        district = weighted(rng, MKE_DISTRICTS)
        nature = weighted(rng, MKE_NATURES)
        change_at = new_status = None
        if rng.random() < 0.3:
            status = MKE_IN_PROGRESS
            new_status = weighted(rng, MKE_FINAL_STATUSES)
            change_at = (
                dispatched
                + MKE_LISTED_FROM
                + timedelta(
                    seconds=rng.uniform(1.0, (MKE_LISTED_UNTIL - MKE_LISTED_FROM).total_seconds())
                )
            )
        elif rng.random() < 0.4:
            status = MKE_IN_PROGRESS
        else:
            status = weighted(rng, MKE_FINAL_STATUSES)
        row_head = (
            f"{_MKE_TR}{_MKE_TD}{number}</td>\r\n{_MKE_TD}{_mke_time(local)}</td>\r\n"
            f"{_MKE_TD}{escape(location, quote=False)}</td>\r\n{_MKE_TD_CENTER}{district}"
            f"</td>\r\n{_MKE_TD}{escape(nature, quote=False)}</td>\r\n{_MKE_TD}"
        )
        return _MkeCall(
            number, dispatched, location, district, nature, status, new_status, change_at, row_head
        )

    def _listed(self) -> list[_MkeCall]:
        now = self._now
        lo, hi = now - MKE_LISTED_UNTIL, now - MKE_LISTED_FROM
        calls = [c for c in self._calls if lo < c.dispatched <= hi]
        calls.reverse()  # newest first, as the real page
        return calls

    def listed(self) -> list[MilwaukeeCall]:
        """The calls on the current page, in page order (newest dispatch first)."""
        now = self._now
        return [
            MilwaukeeCall(
                c.call_number,
                c.dispatched.astimezone(CHICAGO),
                c.location,
                c.district,
                c.nature,
                c.status_at(now),
            )
            for c in self._listed()
        ]

    def listed_ids(self) -> list[str]:
        return [c.call_number for c in self._listed()]

    def snapshot(self) -> dict[str, MilwaukeeCall]:
        """Call number -> call, for :func:`diff`."""
        return {c.call_number: c for c in self.listed()}

    def page(self) -> bytes:
        """The current list as the real MPD page (ASCII, CRLF)."""
        now = self._now
        parts = [_MKE_HEAD, _mke_time(self.now), _MKE_AFTER_UPDATED]
        for call in self._listed():
            parts.append(call.row_head)
            parts.append(call.status_at(now))
            parts.append(_MKE_TR_END)
        parts.append(_MKE_TAIL)
        return "".join(parts).encode("ascii", "xmlcharrefreplace")


def milwaukee_pages(count: int, seed: int = 0, every: float = 300.0) -> Iterator[bytes]:
    """``count`` consecutive MPD pages, ``every`` simulated seconds apart (5 min, as MPD)."""
    model = MilwaukeeModel(seed)
    for index in range(count):
        if index:
            model.advance(every)
        yield model.page()
