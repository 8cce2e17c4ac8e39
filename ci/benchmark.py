#!/usr/bin/env python3
"""Benchmark the course's components against PyTorch's and write one markdown report.

    python ci/benchmark.py [--out benchmarks/latest.md] [--seeds 0] [--lrs 1e-3,2e-3] [--quick]

Three parts, all measured on the machine that runs it:

1. The capstone, side by side: the course's Transformer (``train_date_translator``) and ``nn.Transformer``
   of the same size (``train_torch_baseline``) on the same data and batches, for each seed and learning
   rate: steps and training seconds to 99% validation exact match, milliseconds per step, test exact match.
2. ``MultiHeadAttention`` (explicit and fused) against ``nn.MultiheadAttention``: forward and backward,
   self-attention at several sequence lengths.
3. Every notebook's execution time, from the last book build's cache (run ``bash ci/build.sh`` first).

It is not part of CI (it takes several minutes and its numbers depend on the machine); the README links
the latest report, which is committed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))


def capstone(seeds: list[int], lrs: list[float], steps: int) -> list[str]:
    from transformer18.date_translator import train_date_translator, train_torch_baseline
    from transformer18.dates import make_date_data

    lines = ["| model | seed | lr | ms per step | steps to 99% | training s to 99% | test exact match |",
             "|---|---|---|---|---|---|---|"]
    for seed in seeds:
        data = make_date_data(seed)
        test = [data.test[i] for i in range(len(data.test))]
        for lr in lrs:
            for name, trainer in (("course Transformer (fused)", train_date_translator),
                                  ("nn.Transformer, AdamW", train_torch_baseline)):
                translator = trainer(seed, data=data, lr=lr, steps=steps, progress=False)
                run = translator.run
                accuracy = translator.accuracy(test)
                reached = run.history.first_step_reaching(0.99)
                seconds = run.seconds_to(0.99)
                lines.append(f"| {name} | {seed} | {lr:g} | {run.seconds_per_step * 1000:.1f} | {reached or '—'} | "
                             f"{'—' if seconds is None else f'{seconds:.1f}'} | {accuracy:.2%} |")
                print(lines[-1], flush=True)
    return lines


def _median_time(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def attention(lengths: list[int], batch: int = 8, d_model: int = 64, n_heads: int = 4) -> list[str]:
    from transformer18.multihead import MultiHeadAttention

    lines = [f"Self-attention, batch {batch}, d_model {d_model}, {n_heads} heads; forward + backward, median ms.", "",
             "| length | ours, explicit | ours, fused | nn.MultiheadAttention | explicit / nn | fused / nn |",
             "|---|---|---|---|---|---|"]
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
    explicit = MultiHeadAttention.from_torch(reference)
    fused = MultiHeadAttention.from_torch(reference)
    fused.fused = True
    for length in lengths:
        x = torch.randn(batch, length, d_model, requires_grad=True)
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        repeats = max(5, min(50, 20000 // length))
        times = {
            "explicit": _median_time(lambda: explicit(x, x, x, causal).sum().backward(), repeats),
            "fused": _median_time(lambda: fused(x, x, x, causal).sum().backward(), repeats),
            "nn": _median_time(lambda: reference(x, x, x, attn_mask=~causal, need_weights=False)[0].sum().backward(),
                               repeats),
        }
        lines.append(f"| {length} | {times['explicit'] * 1e3:.2f} | {times['fused'] * 1e3:.2f} | {times['nn'] * 1e3:.2f} | "
                     f"{times['explicit'] / times['nn']:.2f}× | {times['fused'] / times['nn']:.2f}× |")
        print(lines[-1], flush=True)
    return lines


def notebooks() -> list[str]:
    from notebook_times import notebook_times

    cache = ROOT / "_build" / ".jupyter_cache"
    if not cache.exists():
        return ["No book build found: run `bash ci/build.sh` first to include notebook times."]
    times = notebook_times(cache)
    return (["| notebook | execution time (s) |", "|---|---|"] + [f"| {p} | {s:.1f} |" for p, s in times.items()]
            + [f"| **total** | **{sum(times.values()):.1f}** |"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "latest.md"))
    parser.add_argument("--seeds", default="0", help="comma-separated seeds for the capstone comparison")
    parser.add_argument("--lrs", default="1e-3,2e-3", help="comma-separated peak learning rates, tried for both models")
    parser.add_argument("--steps", type=int, default=6000, help="step limit of each training run")
    parser.add_argument("--lengths", default="16,64,256,1024", help="sequence lengths for the attention timing")
    parser.add_argument("--quick", action="store_true", help="skip the capstone training (attention and notebooks only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    header = [
        "# Benchmarks",
        "",
        f"Written by `python ci/benchmark.py` on {dt.date.today().isoformat()}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, "
        f"torch {torch.__version__}. Times are wall-clock on that machine; rerun the script to measure yours.",
    ]
    sections = []
    if not args.quick:
        sections += ["", "## Capstone: the course's Transformer vs nn.Transformer", "",
                     "Same data, same batches, same evaluation (2,000 validation pairs every 100 steps, stop at 99.5%); training time "
                     "excludes evaluation. Test exact match is over all 32,868 held-out-day test pairs.", "",
                     *capstone([int(s) for s in args.seeds.split(",")], [float(x) for x in args.lrs.split(",")],
                               args.steps)]
    sections += ["", "## Multi-head attention vs nn.MultiheadAttention", "",
                 *attention([int(n) for n in args.lengths.split(",")])]
    sections += ["", "## Notebook execution times (last book build)", "", *notebooks()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header + sections) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
