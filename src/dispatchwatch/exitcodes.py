"""The exit codes of every ``dispatchwatch`` command: each means one thing.

======  =====================================================================================
code    meaning
======  =====================================================================================
0       done: everything asked for worked (``status``: every checked feed is healthy)
1       error: the command could not do its job (bad config, not an archive, unreadable
        file, a page that does not parse); one line on stderr says why
2       usage: an unknown option or a bad option value (click's own code)
3       unhealthy (``status``): a checked feed is stale or has never succeeded
4       some polls failed (``run --once``, ``ingest``): the command ran and recorded them as
        error polls in the archive; the others were archived
======  =====================================================================================
"""

from __future__ import annotations

OK = 0
ERROR = 1
USAGE = 2
UNHEALTHY = 3
POLLS_FAILED = 4
