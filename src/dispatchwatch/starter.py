"""The starter ``config.yaml`` that ``dispatchwatch init`` writes, and the contact check.

The starter lists every available scraper as a feed, commented, with Seattle Fire and
Milwaukee Police enabled (the others ready to switch on), and is checked by loading it
before it is written, so a new user's first ``dispatchwatch run`` starts from a valid file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import ConfigError

#: What the shipped config.yaml and the docs use as an example address.
PLACEHOLDER_CONTACT = "ops@example.org"
#: Domains reserved for examples (RFC 2606): a contact there reaches nobody.
_EXAMPLE_DOMAIN = re.compile(r"(^|[@./])example\.(org|com|net)\b|\.(example|invalid|test)\b", re.I)
STARTER_ENABLED = ("seattle-fire", "milwaukee-police")


def contact_warning(contact: str | None) -> str | None:
    """A sentence telling the user to set ``contact:``, or None when it is set for real.

    A missing contact, or one at a domain reserved for examples (``ops@example.org``,
    ``you@example.com``), cannot reach anyone, so a city's webmaster who sees the traffic
    can only block it.
    """
    if not contact or not contact.strip():
        return (
            "config.yaml has no contact: set 'contact:' to your e-mail or a URL so the feeds' "
            "operators can reach you instead of blocking you"
        )
    if _EXAMPLE_DOMAIN.search(contact.strip()):
        return (
            f"config.yaml's contact is still the placeholder {contact.strip()!r}: set it to "
            "your e-mail or a URL so the feeds' operators can reach you"
        )
    return None


def check_contact(contact: str) -> str:
    """``contact`` stripped, or :class:`ConfigError` when it cannot be a way to reach you."""
    contact = contact.strip()
    if not contact or any(c in contact for c in "\n\r\t"):
        raise ConfigError("the contact must be an e-mail address or a URL on one line")
    if "@" not in contact and not re.match(r"^https?://\S+$", contact):
        raise ConfigError(f"the contact must be an e-mail address or a URL, got {contact!r}")
    return contact


def starter_config(contact: str, database: str = "dispatch.db") -> str:
    """The text of a commented starter config.yaml (loadable as it is)."""
    from .plugins import load_scrapers

    scrapers = load_scrapers()
    lines = [
        "# dispatchwatch configuration: which feeds to archive, how often, and where.",
        "# Written by `dispatchwatch init`. Reference: the README's 'Configuration' section.",
        "# Durations: 500ms, 30s, 2m, 1h. Sizes: 512KB, 10MB.",
        "",
        "# The SQLite archive, relative to this file. Every command reads it from here",
        "# (run, status, stats, coverage, export, serve, metadata, snapshot).",
        f"database: {json.dumps(database)}",
        "",
        "# Sent in the User-Agent so a city's webmaster can reach you instead of blocking you.",
        f"contact: {json.dumps(contact)}",
        "",
        "# Options for every feed (each may also be set per feed below).",
        "defaults:",
        "  connect_timeout: 10s",
        "  read_timeout: 30s",
        "  max_bytes: 10MB",
        "",
        "# plugins_dir: my_scrapers      # a folder of your own scrapers (see 'Add a city')",
        "",
        "# One entry per feed: the name of a built-in scraper (list them: dispatchwatch feeds),",
        "# or any name with `scraper:` naming one. `enabled: false` keeps a feed configured",
        "# but not polled. Each feed's default interval follows how often its source updates.",
        "feeds:",
    ]
    for slug, scraper in scrapers.items():
        kind = "snapshot of active calls" if scraper.snapshot else "day log"
        lines.append(f"  {slug}:")
        lines.append(
            f"    # {scraper.name} ({scraper.city}; {kind}; default every {scraper.interval})"
        )
        lines.append(f"    interval: {scraper.interval}")
        if slug not in STARTER_ENABLED:
            lines.append("    enabled: false")
    return "\n".join(lines) + "\n"


def write_starter_config(
    path: str | Path, contact: str, *, force: bool = False, database: str = "dispatch.db"
) -> Path:
    """Write :func:`starter_config` to ``path`` (a folder means ``folder/config.yaml``).

    Refuses to overwrite an existing file unless ``force``. The text is loaded and
    validated before it is written. Returns the path written. Raises :class:`ConfigError`.
    """
    from .config import parse_config

    path = Path(path)
    if path.is_dir():
        path = path / "config.yaml"
    if path.exists() and not force:
        raise ConfigError(f"{path} exists: pass --force to overwrite it")
    text = starter_config(check_contact(contact), database)
    parse_config(text, path)  # never write a config that does not load
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
