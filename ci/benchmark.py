#!/usr/bin/env python3
"""Benchmark the course's components against PyTorch's and write one markdown report.

    python ci/benchmark.py [--out benchmarks/latest.md] [--seeds 0,1,2] [--quick]

Four parts, all measured on the machine that runs it:

1. The capstone, side by side: the course's Transformer on its explicit path (the Eq. 1 the reader wrote),
   the same model on PyTorch's fused kernels, and ``nn.Transformer``, each trained by ``train_date_translator``
   with one recipe (Q17's) from the same initial weights and on the same batches, for each seed: milliseconds
   per step, steps to 99% validation exact match, test exact match; then the median and range over seeds.
2. ``MultiHeadAttention`` (explicit and fused) against ``nn.MultiheadAttention``: forward and backward,
   self-attention at several sequence lengths.
3. A profile of one training step of each implementation (``torch.profiler``).
4. Every notebook's execution time, from the last book build's cache (run ``bash ci/build.sh`` first).

It is not part of CI (it takes several minutes and its numbers depend on the machine); the README links
the latest report, which is committed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))


def _spread(values: list[float], fmt: str) -> str:
    """The median and, with more than one value, the range: "31.2 (30.8–32.0)"."""
    if not values:
        return "—"
    median = statistics.median(values)
    return format(median, fmt) if len(values) == 1 else f"{median:{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def capstone(seeds: list[int], steps: int) -> list[str]:
    """Every implementation × every seed, one recipe: ``train_date_translator`` with its defaults (Q17's recipe),
    the same initial weights for one seed (``date_model``), the same batches, the same evaluation."""
    from transformer18.date_translator import IMPLEMENTATIONS, train_date_translator
    from transformer18.dates import make_date_data

    runs = {name: [] for name in IMPLEMENTATIONS}  # name -> [(seed, ms per step, steps to 99%, test accuracy)]
    lines = ["| implementation | seed | ms per step | steps to 99% | steps trained | test exact match |",
             "|---|---|---|---|---|---|"]
    for seed in seeds:
        data = make_date_data(seed)
        test = [data.test[i] for i in range(len(data.test))]
        for name in IMPLEMENTATIONS:
            translator = train_date_translator(seed, data=data, implementation=name, steps=steps, progress=False)
            run = translator.run
            row = (seed, run.seconds_per_step * 1000, run.history.first_step_reaching(0.99), translator.accuracy(test))
            runs[name].append(row)
            lines.append(f"| {name} | {seed} | {row[1]:.1f} | {row[2] or '—'} | {run.history.steps} | {row[3]:.2%} |")
            print(lines[-1], flush=True)
    nn_ms = {seed: ms for seed, ms, _, _ in runs["nn.Transformer"]}
    summary = ["", f"Over the {len(seeds)} seeds: median (range).", "",
               "| implementation | ms per step | step time / nn.Transformer's | steps to 99% | test exact match |",
               "|---|---|---|---|---|"]
    for name, rows in runs.items():
        ratios = [ms / nn_ms[seed] for seed, ms, _, _ in rows]
        summary.append(f"| {name} | {_spread([r[1] for r in rows], '.1f')} | {_spread(ratios, '.2f')}× | "
                       f"{_spread([float(r[2]) for r in rows if r[2]], '.0f')} | "
                       f"{_spread([100 * r[3] for r in rows], '.2f')}% |")
    return lines + summary


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


def profile(steps: int = 20, top: int = 8) -> list[str]:
    """Where a training step's time goes: ``torch.profiler`` over ``steps`` steps of each implementation (one
    batch of 64, Q17's loss, Adam), the ``top`` operators by self CPU time, after 5 steps of warm-up."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from transformer18.date_translator import IMPLEMENTATIONS, date_batches, date_config, date_model
    from transformer18.dates import make_date_data
    from transformer18.training import label_smoothed_cross_entropy

    data = make_date_data(0)
    config = date_config(data)
    batch = next(date_batches(data.train, data.src_vocab, data.tgt_vocab, 64, seed=0))
    lines = [f"`torch.profiler`, {steps} training steps on one batch of 64 (forward, loss, backward, Adam), after 5 of "
             f"warm-up; the {top} operators with the most self CPU time, in ms per step. The explicit path computes "
             "Eq. 1 as separate passes over the score matrix (`bmm`, `div`, `masked_fill_`, `_softmax` and their "
             "backward) and LayerNorm as element-wise operations (`div`, `mul`, `sum`, `sqrt`); the fused kernels "
             "(`_scaled_dot_product_flash_attention_for_cpu`, `native_layer_norm`) make one pass each.", ""]
    for name in IMPLEMENTATIONS:
        model = date_model(config, name, seed=0).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            logits = model(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)  # (batch, tgt_len, tgt_vocab)
            loss = label_smoothed_cross_entropy(logits, batch.tgt_out, 0.1, data.tgt_vocab.pad_id)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        for _ in range(5):
            step()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events) / steps / 1000
        lines += [f"**{name}**: {total:.1f} ms of operator time per step.", "",
                  "| operator | calls per step | self ms per step |", "|---|---|---|"]
        lines += [f"| `{e.key}` | {e.count / steps:.0f} | {e.self_cpu_time_total / steps / 1000:.2f} |" for e in events[:top]]
        lines.append("")
        print("\n".join(lines[-top - 4:]), flush=True)
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
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds for the capstone comparison")
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
        sections += ["", "## Capstone: the course's Transformer vs nn.Transformer, one recipe", "",
                     "`train_date_translator` with its defaults (Q17's recipe: label smoothing 0.1, Adam β = (0.9, 0.999), "
                     "ε = 1e-9, warm-up to the peak rate, then decay ∝ step^−0.5) for every implementation. For one seed all "
                     "three start from the same weights and see the same batches and the same evaluation (2,000 validation "
                     "pairs every 100 steps, stop at 99.5%). Milliseconds per step are training time only; test exact match is "
                     "over all 32,868 held-out-day test pairs.", "",
                     *capstone([int(s) for s in args.seeds.split(",")], args.steps)]
    sections += ["", "## Multi-head attention vs nn.MultiheadAttention", "",
                 *attention([int(n) for n in args.lengths.split(",")])]
    sections += ["", "## Where a training step's time goes", "", *profile()]
    sections += ["", "## Notebook execution times (last book build)", "", *notebooks()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header + sections) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
