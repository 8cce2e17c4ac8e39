#!/usr/bin/env python3
"""Print each notebook's execution time from the book build's execution cache, as a markdown table.

    python ci/notebook_times.py [--budget SECONDS]

Reads ``_build/.jupyter_cache`` (written by ``ci/build.sh``). With ``--budget`` it exits 1 when a
notebook took longer than the budget (chapters whose plan allows more are listed in ``BUDGETS``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = {  # notebooks whose chapter plan allows more than the default budget (seconds)
    "q17": 180,
    "q18": 180,
    "capstone": 720,
}


def notebook_times(cache: Path = ROOT / "_build" / ".jupyter_cache") -> dict[str, float]:
    from jupyter_cache import get_cache

    times = {}
    for record in get_cache(str(cache)).list_cache_records():
        path = Path(record.uri)
        try:
            path = path.relative_to(ROOT)
        except ValueError:
            pass
        times[path.as_posix()] = float(record.data.get("execution_seconds", float("nan")))
    return dict(sorted(times.items()))


def budget_for(path: str, default: float) -> float:
    return next((seconds for key, seconds in BUDGETS.items() if f"/{key}" in f"/{path}"), default)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=None, help="default per-notebook budget in seconds")
    args = parser.parse_args(argv)
    times = notebook_times()
    print("| notebook | execution time (s) |\n|---|---|")
    for path, seconds in times.items():
        print(f"| {path} | {seconds:.1f} |")
    print(f"| **total** | **{sum(times.values()):.1f}** |")
    if args.budget is not None:
        over = {p: s for p, s in times.items() if s > budget_for(p, args.budget)}
        if over:
            print("over budget: " + ", ".join(f"{p} ({s:.0f} s)" for p, s in over.items()), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
