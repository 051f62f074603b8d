"""Start-up: the order of the first polls."""

from __future__ import annotations

from dispatchwatch.config import parse_config
from dispatchwatch.daemon.feeds import FeedState
from dispatchwatch.daemon.schedule import first_order
from dispatchwatch.daemon.settings import host_of


def test_first_polls_take_turns_over_the_hosts() -> None:
    hosts = ["a.example", "a.example", "a.example", "b.example", "c.example", "b.example"]
    lines = ["database: dispatch.db", "contact: tests@example.org", "feeds:"]
    for n, host in enumerate(hosts):
        lines += [
            f"  f{n}:",
            "    scraper: seattle-fire",
            f"    url: http://{host}/day/{n}",
            "    interval: 1m",
        ]
    feeds = parse_config("\n".join(lines) + "\n").enabled_feeds
    states = [FeedState(feed, host=host_of(feed.url)) for feed in feeds]
    order = [state.feed.slug for state in first_order(states)]
    # Each host's feeds keep their config order; consecutive polls go to different hosts.
    assert order == ["f0", "f3", "f4", "f1", "f5", "f2"]
    assert sorted(order) == [state.feed.slug for state in states]
