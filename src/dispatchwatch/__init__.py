"""dispatchwatch: archive near-real-time police and fire dispatch feeds into SQLite."""

__version__ = "0.1.0"
