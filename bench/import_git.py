"""``dispatchwatch import-git`` of a long git-scraping history: streaming, memory, speed.

    python bench/import_git.py                       # 100,000 commits (several minutes)
    python bench/import_git.py --commits 2000 20000  # memory at two sizes

The repository is generated here with ``git fast-import``: one commit per snapshot of
``calls.html``, the five pages of ``fixtures/milwaukee/seq_0*.html`` in turn with their
"Updated:" time (and the commit time) moving on 5 minutes per commit, so every commit is a
different page and the archive gets new, changed and gone calls all along. For each size,
whole process against whole process:

- project: ``dispatchwatch import-git REPO calls.html --feed milwaukee-police`` into a new
  archive;
- baseline: ``git log --reverse --format=%H %ct -- calls.html`` piped into one
  ``git cat-file --batch`` that reads every snapshot (the least work that reads the
  history), in a Python process like the project's.

Printed per size: commits/s of both, the ratio (wall clock, and CPU time: steadier on a
shared machine), and the peak RSS of the project's process tree (``wait4``'s ``ru_maxrss``:
the largest of the process and each of its git children); then the slope of the peak
between the smallest and the largest size, in KiB per 1,000 commits. Streaming means the
slope is about zero.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
PAGES = [p.read_bytes() for p in sorted((ROOT / "fixtures" / "milwaukee").glob("seq_0*.html"))]
UPDATED = re.compile(rb"Updated: \d\d/\d\d/\d{4} \d\d:\d\d:\d\d [AP]M")
CHICAGO = ZoneInfo("America/Chicago")
# After every call on the pages was received (03/14/2024 05:47:33 PM CDT).
START = datetime(2024, 3, 14, 18, 0, 7, tzinfo=CHICAGO)

BASELINE = """
import subprocess, sys
repo = sys.argv[1]
log = subprocess.Popen(["git", "-C", repo, "log", "--reverse", "--format=%H %ct", "--",
                        "calls.html"], stdout=subprocess.PIPE, text=True)
cat = subprocess.Popen(["git", "-C", repo, "cat-file", "--batch"], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE)
n = 0
for line in log.stdout:
    cat.stdin.write(f"{line.split()[0]}:calls.html\\n".encode())
    cat.stdin.flush()
    size = int(cat.stdout.readline().split()[2])
    cat.stdout.read(size + 1)
    n += 1
cat.stdin.close(); cat.wait(); log.wait()
print(n)
"""


def build_repo(path: Path, commits: int) -> None:
    """``commits`` snapshots of calls.html, 5 minutes apart, through one git fast-import."""
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    stream = subprocess.Popen(
        ["git", "-C", str(path), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert stream.stdin is not None
    for n in range(commits):
        at = START + timedelta(minutes=5 * n)
        stamp = at.strftime("%m/%d/%Y %I:%M:%S %p").encode()
        page = UPDATED.sub(b"Updated: " + stamp, PAGES[n % len(PAGES)], count=1)
        message = f"snapshot {n}".encode()
        head = (
            b"commit refs/heads/main\n"
            + f"committer scraper <scraper@example.org> {int(at.timestamp())} +0000\n".encode()
            + b"data %d\n%s\n" % (len(message), message)
            + b"M 644 inline calls.html\n"
            + b"data %d\n" % len(page)
        )
        stream.stdin.write(head + page + b"\n")
    stream.stdin.close()
    if stream.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "-C", str(path), "checkout", "-q", "main"], check=True)


def measure(command: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds (user + system, the process and its waited-for children),
    peak RSS (KiB; ``wait4``: the largest of the process and each of its waited-for
    children, such as git) and its standard output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed ({process.returncode})")
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss, out.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, nargs="+", default=[100_000])
    args = parser.parse_args()
    if shutil.which("git") is None:
        raise SystemExit("git is not installed")
    work = Path(tempfile.mkdtemp(prefix="dw-bench-git-"))
    try:
        print("commits  baseline c/s  import-git c/s  ratio  by CPU   peak RSS (import-git)")
        peaks: list[tuple[int, int]] = []
        for commits in args.commits:
            repo = work / f"repo-{commits}"
            build_repo(repo, commits)
            base_s, base_cpu, _, counted = measure([sys.executable, "-c", BASELINE, str(repo)])
            assert int(counted) == commits, counted
            db = work / f"{commits}.db"
            project = [sys.executable, "-m", "dispatchwatch", "import-git", str(repo),
                       "calls.html", "--feed", "milwaukee-police", "--db", str(db)]  # fmt: skip
            run_s, run_cpu, rss, out = measure(project)
            assert f"{commits} snapshots archived" in out, out
            peaks.append((commits, rss))
            print(
                f"{commits:>7}  {commits / base_s:>12,.0f}  {commits / run_s:>14,.0f}  "
                f"{base_s / run_s:>5.1%}  {base_cpu / run_cpu:>6.1%}   {rss / 1024:,.1f} MiB"
            )
            shutil.rmtree(repo)
            db.unlink()
        if len(peaks) > 1:
            (low, low_rss), (high, high_rss) = min(peaks), max(peaks)
            slope = (high_rss - low_rss) / (high - low) * 1000
            print(
                f"peak RSS slope {low:,} -> {high:,} commits: {slope:+,.1f} KiB per 1,000 commits"
            )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
