"""The Q17 (training) checkers accept the reference solutions and reject known-wrong code with the right hint."""

import pytest
import torch
from conftest import rejects, variant

from transformer18 import checks

# ---------------------------------------------------------------- smoothed_targets


def smoothed_targets(target, vocab_size, smoothing, pad_id, *, spread="V-1", true_share=True, pad_class=False,
                     pad_rows=False, hard_pad=False, in_place=False):
    """The reference, written with one_hot, with switches that reproduce the mistakes the checker names."""
    pad = 0 if hard_pad else pad_id
    one_hot = torch.nn.functional.one_hot(target, vocab_size).float()  # (batch, V)
    classes = vocab_size - {"V-1": 1, "V": 0, "V-2": 2}[spread]
    uniform = smoothing / classes * (torch.ones_like(one_hot) if true_share else 1 - one_hot)
    if not pad_class:
        uniform[:, pad] = 0.0
    q = uniform + (1 - smoothing) * one_hot
    if not pad_rows:
        q = q * (target != pad)[:, None]
    if in_place:
        target.fill_(1)
    return q


def test_label_smoothing_accepts_the_reference(accepts):
    def with_one_hot(target, vocab_size, smoothing, pad_id):
        q = (1 - smoothing) * torch.nn.functional.one_hot(target, vocab_size).double()
        q += smoothing / (vocab_size - 1)
        q[:, pad_id] = 0
        return q * (target != pad_id)[:, None]

    accepts(checks.check_label_smoothing, smoothed_targets, with_one_hot)


@pytest.mark.parametrize("wrong, hint", [
    (variant(smoothed_targets, spread="V", pad_class=True),
     "smoothing mass to the pad token: that is PyTorch's variant"),
    (variant(smoothed_targets, spread="V", pad_class=True, pad_rows=True),
     "smoothing mass to the pad token: that is PyTorch's"),
    (variant(smoothed_targets, pad_class=True), "smoothing mass to the pad token: set the pad_id column to 0"),
    (variant(smoothed_targets, spread="V"), r"You spread ε/V, but the pad class is excluded.*ε/\(V − 1\)"),
    (variant(smoothed_targets, true_share=False), r"exactly 1 − ε, without its own share"),
    (variant(smoothed_targets, spread="V-2", true_share=False), "Annotated Transformer's variant"),
    (variant(smoothed_targets, pad_rows=True), "Rows whose target is the pad token must be all zeros"),
    (variant(smoothed_targets, hard_pad=True), "instead of a hard-coded 0"),
    (variant(smoothed_targets, in_place=True), "Do not modify target in place"),
    (lambda t, v, s, p: smoothed_targets(t, v, s, p).T, r"shape \(batch, vocab_size\)"),
    (lambda t, v, s, p: smoothed_targets(t, v, s, p).tolist(), "return a tensor"),
    (lambda t, v, s, p: smoothed_targets(t, v, s, p).long(), "float tensor"),
    (lambda t, v, s, p: smoothed_targets(t, v, s, p) * 1.1, "must sum to 1"),
    (lambda t, v, s, p: smoothed_targets(t, v, s, p)[:, [0, 3, 2, 1] + list(range(4, v))], "differs on the non-pad"),
])
def test_label_smoothing_rejects_wrong_code(wrong, hint):
    rejects(checks.check_label_smoothing, wrong, hint)


# ---------------------------------------------------------------- noam


def noam(step, d_model, warmup, *, warm_power=1.5, decay_power=0.5, scale=True, pick=min, shift=0,
         validate=True):
    if validate and step < 1:
        raise ValueError("steps count from 1")
    step = step + shift
    return (d_model**-0.5 if scale else 1.0) * pick(step**-decay_power, step * warmup**-warm_power)


def test_noam_accepts_the_reference_and_tensors(accepts):
    from transformer18.training import noam_lr

    accepts(checks.check_noam_schedule, noam, lambda s, d, w: torch.tensor(noam(s, d, w), dtype=torch.float64), noam_lr)


@pytest.mark.parametrize("wrong, hint", [
    (variant(noam, warm_power=1.0), r"not step · warmup\^−1: with warmup\^−1 the peak"),
    (variant(noam, warm_power=2.0), r"not step · warmup\^−2"),
    (variant(noam, decay_power=1.0), r"decays as step\^−0.5 \(inverse square root\), not step\^−1"),
    (variant(noam, scale=False), r"Multiply by d_model\^−0.5"),
    (variant(noam, pick=max), "Use min, not max"),
    (variant(noam, shift=1), r"not step \+ 1"),
    (variant(noam, shift=-1), "divided by zero: steps count from 1"),
    (variant(noam, validate=False), "raised ZeroDivisionError"),
    (lambda s, d, w: noam(s, d, w) if s >= 1 else 0.0, "step 0 must raise a ValueError"),
    (lambda s, d, w: str(noam(s, d, w)) + "x", "return a number"),
    (lambda s, d, w: noam(s, d, w) * (1.01 if s == w else 1.0), r"noam\(4000, 512, 4000\) should be"),
])
def test_noam_rejects_wrong_code(wrong, hint):
    rejects(checks.check_noam_schedule, wrong, hint)
