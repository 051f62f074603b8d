"""zone_transitions: the table from zoneinfo's transition data equals the sampled one."""

from __future__ import annotations

import pytest

from dispatchwatch.publish import zones

# DST zones (north and south), fixed ones, half-hour and 15-minute offsets, a 30-minute DST
# (Lord Howe), negative DST (Dublin), zones whose rules changed (Casablanca, Sao Paulo,
# Nuuk), a rule with transitions at 24:00 or later (Gaza, Santiago), Troll's +2 DST.
ZONES = [
    "America/Los_Angeles", "America/Chicago", "UTC", "Etc/GMT+5", "Asia/Kolkata",
    "Asia/Kathmandu", "Australia/Lord_Howe", "Europe/Dublin", "Europe/London",
    "Africa/Casablanca", "America/Sao_Paulo", "America/Nuuk", "Asia/Gaza", "America/Santiago",
    "Antarctica/Troll", "Pacific/Apia", "Pacific/Chatham",
]  # fmt: skip


@pytest.mark.parametrize("zone", ZONES)
def test_same_rows_as_sampling(zone: str) -> None:
    assert zones.zone_transitions(zone) == zones._sampled_transitions(zone)


@pytest.mark.parametrize("years", [(1900, 1975), (2020, 2040), (2090, 2230)])
@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Europe/Dublin", "Australia/Lord_Howe"])
def test_same_rows_as_sampling_over_other_spans(zone: str, years: tuple[int, int]) -> None:
    assert zones.zone_transitions(zone, years) == zones._sampled_transitions(zone, years)


def test_falls_back_to_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where zoneinfo's transition data cannot be read, the sampled rows, unchanged."""
    expected = zones._sampled_transitions("America/Chicago")

    def broken(*args: object) -> list[int]:
        raise AttributeError("_trans_utc")

    monkeypatch.setattr(zones, "_candidates", broken)
    assert zones.zone_transitions("America/Chicago") == expected


def test_known_rows() -> None:
    rows = zones.zone_transitions("America/Los_Angeles")
    assert rows[0] == ("0000-01-01T00:00:00Z", -28800, "PST", 0)
    assert ("2024-03-10T10:00:00Z", -25200, "PDT", 1) in rows
    assert ("2024-11-03T09:00:00Z", -28800, "PST", 0) in rows
    assert zones.zone_transitions("UTC") == [("0000-01-01T00:00:00Z", 0, "UTC", 0)]
