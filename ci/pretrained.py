#!/usr/bin/env python3
"""Train the date translator the package ships and write it into the package.

    python ci/pretrained.py            # train, then write src/transformer18/data/date_translator.pt and .json
    python ci/pretrained.py --check    # train again and compare with the shipped copy (exit 1 if it differs)

The model is the capstone's: ``train_date_translator(seed=0)`` with its defaults (the course's Transformer on
the explicit path, Q17's recipe, stopped at 99.5% validation exact match), on ``make_date_data(0)``, with two
CPU threads. The same seed on the same machine and torch version gives the same weights bit for bit; another
CPU rounds differently and may stop at another evaluation, so ``--check`` reports the largest difference.
The JSON beside the checkpoint records how it was made and what it scored.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "transformer18" / "data"
THREADS = 2


def train_and_save(path: Path) -> dict:
    """Train the shipped translator, save it to ``path``; return the record of the run."""
    from transformer18.date_translator import train_date_translator
    from transformer18.dates import make_date_data

    torch.set_num_threads(THREADS)
    data = make_date_data(0)
    translator = train_date_translator(seed=0, data=data, num_threads=THREADS)
    translator.save(path)
    test = [data.test[i] for i in range(len(data.test))]
    run = translator.run
    return {"made_by": "python ci/pretrained.py", "call": "train_date_translator(seed=0, data=make_date_data(0))",
            "steps": run.history.steps, "stopped_by": run.history.stopped_by,
            "validation_exact_match": run.history.evaluations[-1][1],
            "test_exact_match": round(translator.accuracy(test), 6), "test_pairs": len(test),
            "torch": torch.__version__, "python": platform.python_version(), "threads": THREADS,
            "machine": platform.processor() or platform.machine(),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="train again and compare with the shipped checkpoint")
    args = parser.parse_args(argv)
    shipped = DATA / "date_translator.pt"
    if not args.check:
        DATA.mkdir(parents=True, exist_ok=True)
        record = train_and_save(shipped)
        (DATA / "date_translator.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(json.dumps(record, indent=1))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        record = train_and_save(Path(folder) / "again.pt")
        again = torch.load(Path(folder) / "again.pt", weights_only=True)["state_dict"]
    kept = torch.load(shipped, weights_only=True)["state_dict"]
    largest = max((again[name].double() - kept[name].double()).abs().max().item() for name in kept)
    same = all(torch.equal(again[name], kept[name]) for name in kept)
    print(f"retrained: {record['steps']} steps, test exact match {record['test_exact_match']:.2%}; "
          f"{'identical to' if same else f'largest weight difference {largest:.2e} from'} the shipped checkpoint")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
