#!/usr/bin/env python3
"""Measure a notebook's training outcome over several seeds: the margin behind an assert.

    python ci/seed_sweep.py book/q14-add/add.ipynb --cell 22 --show 'final' --shifts 0 1 2 3 4

Runs the notebook's code cells 0 … ``--cell`` (numbered as nbval numbers them: code cells only, from 0)
once per seed shift, in a fresh kernel with one thread, with every seed the notebook sets shifted by the
given amount (``ci/stress_startup.py``, the same patch ``ci/stress.sh seed-1`` uses), and prints each
``--show`` expression evaluated at that point. Shift 0 is the notebook as written. An assert on a
training outcome should keep a margin on every shift; the book says how many seeds back it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    import nbformat
    from nbclient import NotebookClient
except ImportError:
    sys.exit("ci/seed_sweep.py needs nbclient: run it with the project's Python, .venv/bin/python (ci/setup.sh)")


def run(notebook: Path, last_cell: int, shows: list[str], shift: int) -> tuple[dict[str, str], float]:
    """Execute code cells 0 … last_cell with seeds shifted by ``shift``; return each expression's repr."""
    nb = nbformat.read(notebook, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"][: last_cell + 1]
    startup = (ROOT / "ci" / "stress_startup.py").read_text(encoding="utf-8")
    probe = "import json as _json\nprint('T18-SWEEP' + _json.dumps({" + ", ".join(
        f"{expr!r}: repr({expr})" for expr in shows) + "}))"
    nb.cells = [nbformat.v4.new_code_cell(startup), *code, nbformat.v4.new_code_cell(probe)]
    os.environ.update(T18_STRESS_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                      T18_STRESS_SEED_SHIFT=str(shift))
    start = time.perf_counter()
    # allow_errors: a failing assert is what a sweep looks for; the probe still reads the values
    NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    elapsed = time.perf_counter() - start
    failed = [i - 1 for i, cell in enumerate(nb.cells[:-1]) if any(o.output_type == "error" for o in cell.outputs)]
    text = "".join(output.get("text", "") for output in nb.cells[-1].outputs if output.output_type == "stream")
    line = next(line for line in text.splitlines() if line.startswith("T18-SWEEP"))
    values = json.loads(line.removeprefix("T18-SWEEP"))
    values["failing cells"] = repr(failed)
    return values, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--cell", type=int, required=True, help="the last code cell to run (nbval's number)")
    parser.add_argument("--show", action="append", required=True, help="an expression to print (repeatable)")
    parser.add_argument("--shifts", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    for shift in args.shifts:
        values, elapsed = run(args.notebook.resolve(), args.cell, args.show, shift)
        for expr, value in values.items():
            print(f"shift {shift} ({elapsed:.0f} s)  {expr} = {value}", flush=True)


if __name__ == "__main__":
    main()
