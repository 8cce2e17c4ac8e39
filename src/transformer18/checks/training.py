"""Checkers for Q17 (training): the label-smoothed target distribution and the warm-up schedule."""

from __future__ import annotations

import math

import torch

from ._core import CheckFailed, call, checker, diagnose, expect, expect_tensor, unchanged

__all__ = ["check_label_smoothing", "check_noam_schedule"]


# ---------------------------------------------------------------- label smoothing


def _smoothing_cases() -> list[tuple[torch.Tensor, int, float, int]]:
    """(target, vocab_size, smoothing, pad_id): batch, V and ε differ in every case; the second uses pad id 2
    (so a hard-coded 0 shows) and the third ε = 0 (plain one-hot rows)."""
    return [
        (torch.tensor([3, 0, 6, 1, 0]), 7, 0.1, 0),
        (torch.tensor([4, 2, 0, 8, 2, 1, 5]), 9, 0.25, 2),
        (torch.tensor([1, 3, 0]), 5, 0.0, 0),
    ]


def _variant(target: torch.Tensor, vocab_size: int, smoothing: float, pad_id: int, *, spread: str = "V-1",
             true_share: bool = True, pad_class: bool = False, pad_rows: bool = False) -> torch.Tensor:
    """Target distributions, with switches that reproduce the common mistakes (and the other variants).

    spread: "V-1" (ours), "V" (ε/V), "V-2" (the Annotated Transformer's, over the non-pad wrong classes);
    true_share: the correct class also gets its share of ε (otherwise exactly 1 − ε);
    pad_class: the pad class receives smoothing mass; pad_rows: rows whose target is pad are kept.
    """
    batch = target.shape[0]
    denominator = {"V-1": vocab_size - 1, "V": vocab_size, "V-2": vocab_size - 2}[spread]
    q = torch.full((batch, vocab_size), smoothing / denominator)  # (batch, V)
    if not pad_class:
        q[:, pad_id] = 0.0
    rows = torch.arange(batch)
    if true_share:
        q[rows, target] += 1.0 - smoothing
    else:
        q[rows, target] = 1.0 - smoothing
    if not pad_rows:
        q[target == pad_id] = 0.0
    return q


@checker("label_smoothing")
def check_label_smoothing(smoothed_targets) -> None:
    """Check ``smoothed_targets(target, vocab_size, smoothing, pad_id) -> (batch, vocab_size)``: this course's
    variant, ε/(V − 1) on every non-pad class, 1 − ε more on the correct one, 0 on the pad class and in
    pad rows."""
    for target, vocab_size, smoothing, pad_id in _smoothing_cases():
        with unchanged("Do not modify target in place: build a new tensor.", target):
            q = smoothed_targets(target, vocab_size, smoothing, pad_id)
        expect_tensor(q)
        expect(tuple(q.shape) == (len(target), vocab_size), "return one distribution per position, shape (batch, "
               f"vocab_size) = {(len(target), vocab_size)}, got {tuple(q.shape)}")
        expect(q.dtype.is_floating_point, f"return a float tensor of probabilities, got {q.dtype}")
        q, real = q.detach().float(), target != pad_id  # real: (batch,)

        def variant(pad=pad_id, **switches):  # its rows of real (non-pad) targets
            return _variant(target, vocab_size, smoothing, pad, **switches)[real]

        sums = q[real].sum(dim=-1)
        diagnose(q[real], variant(), [
            (variant(pad=0), f"Use the pad_id argument (here {pad_id}) instead of a hard-coded 0."),
            (variant(spread="V", pad_class=True), "You gave smoothing mass to the pad token: that is PyTorch's "
                                                  "variant (ε/V on every class). Here the pad class gets 0 and the "
                                                  "others ε/(V − 1)."),
            (bool((q[real][:, pad_id].abs() > 1e-6).any()), "You gave smoothing mass to the pad token: set the pad_id "
                                                             "column to 0, no target should ever predict padding."),
            (variant(spread="V"), "You spread ε/V, but the pad class is excluded, so ε is shared by V − 1 classes: "
                                  "each gets ε/(V − 1) (this exercise asks for that variant; ε/V with mass on the pad "
                                  "is PyTorch's)."),
            (variant(spread="V-2", true_share=False), "That is the Annotated Transformer's variant (1 − ε on the "
                                                      "correct class, ε/(V − 2) on the others). This exercise asks "
                                                      "for ε/(V − 1) on every non-pad class, the correct one "
                                                      "included, plus 1 − ε on the correct class."),
            (variant(true_share=False), "The correct class got exactly 1 − ε, without its own share ε/(V − 1), so "
                                        "the rows sum to less than 1. Add 1 − ε on top of the uniform ε/(V − 1)."),
            (not torch.allclose(sums, torch.ones_like(sums), atol=1e-5),
             "Every row of a real (non-pad) position must sum to 1; yours sum to "
             f"{[round(v, 4) for v in sums.tolist()]}."),
        ], f"smoothed_targets({target.tolist()}, {vocab_size}, {smoothing}, pad_id={pad_id}) differs on the non-pad "
           "rows", atol=1e-6, rtol=1e-5)
        expect(not (q[~real].abs() > 1e-6).any(), "Rows whose target is the pad token must be all zeros: a pad "
                                                  "position is not a real token and must not count in the loss.")


# ---------------------------------------------------------------- the warm-up schedule


def _noam(step, d_model, warmup, *, warm_power=1.5, decay_power=0.5, scale=True, pick=min, shift=0):
    """Eq. 3 of the paper, with switches that reproduce the common mistakes."""
    step = step + shift
    value = pick(step**-decay_power, step * warmup**-warm_power)
    return (d_model**-0.5 if scale else 1.0) * value


_SCHEDULES = [(512, 4000), (64, 200), (1024, 1000)]


def _points(warmup: int) -> list[int]:
    return sorted({1, 2, 7, warmup // 2, warmup - 1, warmup, warmup + 1, 2 * warmup, 9 * warmup, 100 * warmup})


@checker("noam_schedule")
def check_noam_schedule(noam) -> None:
    """Check ``noam(step, d_model, warmup) -> float``: d_model^−0.5 · min(step^−0.5, step · warmup^−1.5),
    steps counting from 1 (step 0 raises ValueError)."""
    mistakes = [
        (dict(warm_power=1.0), "The warm-up term is step · warmup^−1.5, not step · warmup^−1: with warmup^−1 the peak "
                               "is √warmup times too high and the two terms no longer meet at step = warmup."),
        (dict(warm_power=2.0), "The warm-up term is step · warmup^−1.5, not step · warmup^−2: that makes the warm-up "
                               "peak √warmup times too low."),
        (dict(decay_power=1.0), "After warm-up the rate decays as step^−0.5 (inverse square root), not step^−1."),
        (dict(scale=False), "Multiply by d_model^−0.5: wider models get smaller learning rates."),
        (dict(pick=max), "Use min, not max: the rate is the smaller of the two terms (linear rise, then decay)."),
        (dict(shift=1), "Off by one: steps count from 1 (the first update is step 1), so use step as given, not "
                        "step + 1."),
    ]
    for d_model, warmup in _SCHEDULES:
        points, got = _points(warmup), []
        for step in points:
            value = call(noam, step, d_model, warmup, errors={ZeroDivisionError: (
                f"noam({step}, {d_model}, {warmup}) divided by zero: steps count from 1, use step as given.")})
            number = f"return a number, got {type(value).__name__}"
            got.append(call(float, value, errors={(TypeError, ValueError): number}))
        expected = [_noam(s, d_model, warmup) for s in points]
        bad = next((i for i, (g, e) in enumerate(zip(got, expected)) if not math.isclose(g, e, rel_tol=1e-6)), 0)
        diagnose(got, expected, [(lambda switches=switches: [_noam(s, d_model, warmup, **switches) for s in points],
                                  hint) for switches, hint in mistakes],
                 f"noam({points[bad]}, {d_model}, {warmup}) should be {expected[bad]:.6g}, got {got[bad]:.6g}",
                 atol=0.0, rtol=1e-6)
    try:
        value = call(noam, 0, 512, 4000, errors={ZeroDivisionError: "noam(0, …) raised ZeroDivisionError: steps "
                     "count from 1, so check step < 1 first and raise a ValueError that says so."})
    except ValueError:
        return
    raise CheckFailed(f"noam(0, 512, 4000) returned {value!r}: steps count from 1, so step 0 must raise a "
                      "ValueError (PyTorch's schedulers count from 0, the paper from 1).")
