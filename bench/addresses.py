"""Hand-written address rules against usaddress, on every address of the real pages.

    python bench/addresses.py            # needs ../shared/real-pages
    python bench/addresses.py --show 20  # also print 20 addresses each approach gets wrong

Two ways to store an address at block level, both with the same city split:

- rules: :func:`dispatchwatch.normalize.block_address` (the project's hand-written rules);
- usaddress: every word labelled by usaddress (a CRF parser of US addresses): an
  ``AddressNumber`` becomes its hundred block, units (``Occupancy*``, ``Subaddress*``) and
  ``ZipCode`` go, the rest stays in order (``054XX`` blocks are normalized for it too).

An address is *right* when it equals the value its source states (Dallas ``block`` +
``location``, New Orleans ``BLOCK_ADDRESS``, Baltimore ``incidentLocation``) or, for the
other sources, the plain ``NUMBER STREET`` / ``STREET / STREET`` value of a regular shape;
every result is also checked for a *leak* (a house number, ZIP code or coordinate kept).
Then the city split of Baltimore's ``location`` (``3500 AILSA AV BALTIMORE MD``, no comma):
usaddress's place-name labels (what :func:`split_city` uses) against a hand rule (the words
after the last street suffix). Times are per address, without the per-string caches.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import usaddress

from dispatchwatch.normalize import address as rules
from dispatchwatch.normalize import postal
from dispatchwatch.scraper import Page
from dispatchwatch.scrapers import milwaukee_police, seattle_fire

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-pages"
CODES = {"MKE": "Milwaukee"}

# The shapes named in issue 8 item 5, with the value that must be stored.
ISSUE_SHAPES = {
    "8611 SW LOOP 410, UNIT 520": "86XX SW LOOP 410",
    "N LOOP 1604 W": "N LOOP 1604 W",
    "94 EB AT N 27TH ST": "94 EB AT N 27TH ST",
    "FM 1960": "FM 1960",
    "SEVEN 1/2 MILE RD": "SEVEN 1/2 MILE RD",
    "I 45 N/B": "I 45 N/B",
    "**CODE RED**1127 N WATER ST": "11XX N WATER ST",
    "NEAR:1512": "NEAR: 15XX",
    "9900 E LOOP 820": "99XX E LOOP 820",
    "REAR-1512 ELM ST": "REAR 15XX ELM ST",
    "NEAR:1512 ELM ST": "NEAR: 15XX ELM ST",
    "1512 ELM ST APT 12-B": "15XX ELM ST",
    "APT 4 1512 ELM ST": "15XX ELM ST",
    "1512 ELM ST, SEATTLE, WA 98101": "15XX ELM ST",
    "1512ELM ST": "15XX ELM ST",
    "500 E OAK ST, OAKCREEK, WI": "5XX E OAK ST",
    "1512 ELM ST LL(47.60164,-122.32766)": "15XX ELM ST",
    "054XX Laurel St": "54XX LAUREL ST",
    "Approx Loc: 015XX Iberville St": "APPROX LOC: 15XX IBERVILLE ST",
}


def hundred(digits: str) -> str:
    return (digits[:-2].lstrip("0") or "0") + "XX"


def upper(text: str) -> str:
    return re.sub(r"\s*/\s*", " / ", " ".join(text.upper().split()))


def same(stored: str | None, right: str) -> bool:
    """Equal, but for case and spaces around "/"."""
    key = re.compile(r"\s*/\s*")
    return stored is not None and key.sub("/", stored) == key.sub("/", upper(right))


def regular(text: str) -> str | None:
    """The right value of a regular shape ("1512 ELM ST", "A ST / B AVE"), else None."""
    value = upper(text)
    match = re.fullmatch(r"(\d+) ([A-Z][A-Z0-9 ]*)", value)
    if match and not re.search(r"\d{3,}|\b(?:APT|UNIT|STE|I|SR|HWY|US)\b", match.group(2)):
        return f"{hundred(match.group(1))} {match.group(2)}"
    if not re.search(r"\d{3,}|\d/\d", value):
        parts = value.split(" / ")
        if all(re.fullmatch(r"(?:\d{1,2}(?:ST|ND|RD|TH) )?[A-Z][A-Z0-9 ]*", p) for p in parts):
            return value
    return None


def nola(block: str) -> str:
    value = upper(block)
    value = re.sub(r"(?<!\S)0*(\d*)XX", lambda m: hundred(m.group(1) + "00"), value)
    return re.sub(r"(?<=XX) BLK\b", "", value)


def baltimore(location: str) -> str:
    # "3500 AILSA AV", "700 BLK E NORTH AV", "4200 1/2 FORDS LN", "2400-E BELAIR RD", "200"
    match = re.fullmatch(
        r"(\d+)(?:-[A-Z])?(?: 1/2)?(?: BLK)?((?: .*)?)", " ".join(location.split())
    )
    return f"{hundred(match.group(1))}{match.group(2)}" if match else upper(location)


BALTIMORE = "baltimore/arcgis_911_calls_2021_query_2000_features.json"


def values(name: str, key: str) -> list[str]:
    """The non-empty ``key`` of each feature of a GeoJSON or ArcGIS JSON file."""
    features = json.loads((REAL / name).read_text())["features"]
    found = (f.get("properties") or f.get("attributes") or {} for f in features)
    return [row[key] for row in found if row.get(key)]


def collect() -> Iterator[tuple[str, str, str | None]]:
    """(source, text, right value or None) for every address of the real pages."""
    for name, scraper in (
        ("seattle/realtime911_2024-03-31.html", seattle_fire),
        ("milwaukee/mpd_calls_2023-01-21.html", milwaukee_police),
    ):
        for row in scraper.parse(Page((REAL / name).read_bytes())).rows:
            if row.address:
                yield name.split("/")[0] + " html", row.address, None
    for row in json.loads((REAL / "seattle/socrata_kzjm-xkqj_1000_rows.json").read_text()):
        if row.get("address"):
            yield "seattle socrata", row["address"], None
    for row in json.loads((REAL / "dallas/socrata_9fxf-t2tr_active_calls.json").read_text()):
        if row.get("block"):
            text = f"{row['block']} {row['location']}"
            yield "dallas socrata", text, f"{hundred(row['block'])} {upper(row['location'])}"
        elif row.get("location"):
            yield "dallas socrata", row["location"], upper(row["location"])
    for row in json.loads((REAL / "san_francisco/socrata_gnap-fj3t_realtime.json").read_text()):
        if row.get("intersection_name"):
            yield "sf socrata", row["intersection_name"], upper(row["intersection_name"])
    for path in sorted((REAL / "new_orleans").glob("socrata_*.json")):
        for row in json.loads(path.read_text()):
            if row.get("block_address"):
                yield "new orleans socrata", row["block_address"], nola(row["block_address"])
    for block in values("new_orleans/calls_for_service_2016_first1000.geojson", "BLOCK_ADDRESS"):
        yield "new orleans geojson", block, nola(block)
    for location in values(BALTIMORE, "incidentLocation"):
        yield "baltimore arcgis", location, baltimore(location)
    for key in ("Address", "CrossStreet"):
        for text in values("houston/hec_active_incidents_2026-08-22T2029Z.json", key):
            yield "houston arcgis", text, None
    with (REAL / "milwaukee/accumulated_export_2018-05_first300.csv").open() as stream:
        for row in csv.DictReader(stream):
            if row.get("location"):
                yield "milwaukee csv", row["location"], None


_DROP = {"OccupancyType", "OccupancyIdentifier", "SubaddressType", "SubaddressIdentifier"}
_DROP |= {"ZipCode", "ZipPlus4", "USPSBoxType", "USPSBoxID"}


def by_usaddress(text: str | None) -> str | None:
    """Block level by usaddress's labels alone (see the module docstring)."""
    if not text:
        return None
    try:
        parsed = usaddress.parse(" ".join(text.upper().split()))
    except Exception:  # noqa: BLE001  (usaddress raises its own errors on odd input)
        return upper(text)
    words = []
    for token, label in parsed:
        if label in _DROP:
            continue
        core = token.strip(",")
        xx = re.fullmatch(r"(\d*)XX", core)
        if xx:
            core = hundred(xx.group(1) + "00")
        elif label == "AddressNumber":
            digits = re.search(r"\d+", core)
            core = hundred(digits.group()) if digits else core
        if core:
            words.append(core)
    return upper(" ".join(words)) or None


_LEAK = re.compile(r"(?<![\w.-])\d{3,6}(?![\w/])|\d\.\d{4}")


def leaks(text: str, stored: str | None) -> bool:
    """Does ``stored`` keep a house number, ZIP code or coordinate of ``text``?

    A number of 3-6 digits that was a house number in the regular shapes (first, or after a
    word and before a street) and is still there, a 5-digit ZIP, or a decimal of 4+ places.
    Route numbers (``LOOP 410``, ``US 59``) are allowed by being behind a route word.
    """
    if stored is None:
        return False
    for match in _LEAK.finditer(stored):
        before = stored[: match.start()].split()
        if before and before[-1].strip(",") in rules._ROUTE_WORDS | {"AT", "I5", "NB", "SB"}:
            continue
        if "." in match.group() or match.group() in text:
            return True
    return False


def timed(action: Callable[[str], object], texts: list[str]) -> float:
    start = time.perf_counter()
    for text in texts:
        action(text)
    return (time.perf_counter() - start) / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=0)
    args = parser.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"no real pages at {REAL}")
    items = list(collect())
    items += [("issue 8 shapes", text, right) for text, right in ISSUE_SHAPES.items()]
    approaches = {
        "rules": rules.block_address.__wrapped__,
        "usaddress": by_usaddress,
    }
    print(f"{len(items)} addresses ({len({t for _, t, _ in items})} distinct)")
    header = f"{'source':22}{'n':>6}{'labelled':>9}"
    header += "".join(f"{name + ' right':>16}{'wrong':>7}{'leaks':>7}" for name in approaches)
    print(header)
    totals: dict[str, Counter[str]] = {name: Counter() for name in approaches}
    wrong: dict[str, list[tuple[str, str | None, str | None]]] = {n: [] for n in approaches}
    for source in dict.fromkeys(s for s, _, _ in items):
        rows = [(t, r) for s, t, r in items if s == source]
        line = f"{source:22}{len(rows):6}{sum(r is not None for _, r in rows):9}"
        for name, reduce in approaches.items():
            count: Counter[str] = Counter()
            for text, right in rows:
                address, _city = rules.split_city(text, CODES, None)
                stored = reduce(address) if address else None
                right = right if right is not None else regular(address or "")
                if right is not None:
                    ok = same(stored, right)
                    count["right" if ok else "wrong"] += 1
                    if not ok:
                        wrong[name].append((text, stored, right))
                count["leaks"] += leaks(text, stored)
            totals[name].update(count)
            line += f"{count['right']:16}{count['wrong']:7}{count['leaks']:7}"
        print(line)
    line = f"{'all':22}{len(items):6}{'':9}"
    for name in approaches:
        line += f"{totals[name]['right']:16}{totals[name]['wrong']:7}{totals[name]['leaks']:7}"
    print(line)

    texts = [rules.split_city(t, CODES, None)[0] or "" for _, t, _ in items]
    for name, reduce in approaches.items():
        print(f"{name}: {timed(reduce, texts):.1f} us per address (uncached)")
    cached = rules.block_address
    cached.cache_clear()
    for text in texts:
        cached(text)
    print(f"rules, cached (a poll repeats its addresses): {timed(cached, texts):.2f} us")

    # The city of a comma-less postal tail.
    tails = [(location, "BALTIMORE") for location in values(BALTIMORE, "location")]
    tails += [
        ("8611 SW LOOP 410 SAN ANTONIO TX 78245", "SAN ANTONIO"),
        ("100 BROADWAY NEW YORK NY 10005", "NEW YORK"),
        ("1512 ELM ST OAK CREEK WI", "OAK CREEK"),
        ("1512 N MAIN ST W HARTFORD CT 06107", "W HARTFORD"),
        ("2700 RAINIER AVE S SEATTLE WA 98144", "SEATTLE"),
        ("500 E OAK ST ST PAUL MN", "ST PAUL"),
    ]

    def by_suffix(text: str) -> str | None:
        words = upper(text).split()
        while words and (words[-1] in postal.STATES or words[-1].isdigit()):
            words.pop()
        last = max((i for i, w in enumerate(words) if w in rules._STREET_SUFFIXES), default=-1)
        rest = words[last + 1 :]
        while rest and rest[0] in rules._DIRECTIONS:
            rest = rest[1:]
        return " ".join(rest) or None

    def by_labels(text: str) -> str | None:
        found = postal.split_postal_tail.__wrapped__(upper(text))
        return found[1] if found else None

    print(f"city of a comma-less 'STREET CITY ST [ZIP]' tail, {len(tails)} addresses:")
    for name, split in (("usaddress labels", by_labels), ("hand: after last suffix", by_suffix)):
        right = sum(split(text) == city for text, city in tails)
        per = timed(split, [t for t, _ in tails])
        print(f"  {name:24} {right} right, {len(tails) - right} wrong, {per:.1f} us per address")
    for name in approaches:
        for text, stored, right in wrong[name][: args.show]:
            print(f"{name} wrong: {text!r} -> {stored!r}, right {right!r}")


if __name__ == "__main__":
    main()
