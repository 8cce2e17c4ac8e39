"""The Q17 (training) checkers accept the reference solutions and reject known-wrong code with the right hint."""

import pytest
import torch
from conftest import rejects

from transformer18 import checks

# ---------------------------------------------------------------- smoothed_targets


def smoothed_targets(target, vocab_size, smoothing, pad_id, *, spread="V-1", true_share=True, pad_class=False,
                     pad_rows=False, hard_pad=False, in_place=False):
    """The reference, with switches that reproduce the mistakes the checker names."""
    pad = 0 if hard_pad else pad_id
    denominator = {"V-1": vocab_size - 1, "V": vocab_size, "V-2": vocab_size - 2}[spread]
    q = torch.full((target.shape[0], vocab_size), smoothing / denominator)
    if not pad_class:
        q[:, pad] = 0.0
    rows = torch.arange(target.shape[0])
    if true_share:
        q[rows, target] += 1.0 - smoothing
    else:
        q[rows, target] = 1.0 - smoothing
    if not pad_rows:
        q[target == pad] = 0.0
    if in_place:
        target.fill_(1)
    return q


def variant(**switches):
    return lambda target, vocab_size, smoothing, pad_id: smoothed_targets(target, vocab_size, smoothing, pad_id,
                                                                          **switches)


def test_label_smoothing_accepts_the_reference(accepts):
    def with_one_hot(target, vocab_size, smoothing, pad_id):
        q = (1 - smoothing) * torch.nn.functional.one_hot(target, vocab_size).double()
        q += smoothing / (vocab_size - 1)
        q[:, pad_id] = 0
        return q * (target != pad_id)[:, None]

    accepts(checks.check_label_smoothing, smoothed_targets, with_one_hot)


@pytest.mark.parametrize("wrong, hint", [
    (variant(spread="V", pad_class=True), "smoothing mass to the pad token: that is PyTorch's variant"),
    (variant(spread="V", pad_class=True, pad_rows=True), "smoothing mass to the pad token: that is PyTorch's"),
    (variant(pad_class=True), "smoothing mass to the pad token: set the pad_id column to 0"),
    (variant(spread="V"), r"You spread ε/V, but the pad class is excluded.*ε/\(V − 1\)"),
    (variant(true_share=False), r"exactly 1 − ε, without its own share"),
    (variant(spread="V-2", true_share=False), "Annotated Transformer's variant"),
    (variant(pad_rows=True), "Rows whose target is the pad token must be all zeros"),
    (variant(hard_pad=True), "instead of a hard-coded 0"),
    (variant(in_place=True), "Do not modify target in place"),
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


def schedule(**switches):
    return lambda step, d_model, warmup: noam(step, d_model, warmup, **switches)


def test_noam_accepts_the_reference_and_tensors(accepts):
    from transformer18.training import noam_lr

    accepts(checks.check_noam_schedule, noam, lambda s, d, w: torch.tensor(noam(s, d, w), dtype=torch.float64), noam_lr)


@pytest.mark.parametrize("wrong, hint", [
    (schedule(warm_power=1.0), r"not step · warmup\^−1: with warmup\^−1 the peak"),
    (schedule(warm_power=2.0), r"not step · warmup\^−2"),
    (schedule(decay_power=1.0), r"decays as step\^−0.5 \(inverse square root\), not step\^−1"),
    (schedule(scale=False), r"Multiply by d_model\^−0.5"),
    (schedule(pick=max), "Use min, not max"),
    (schedule(shift=1), r"not step \+ 1"),
    (schedule(shift=-1), "divided by zero: steps count from 1"),
    (schedule(validate=False), "raised ZeroDivisionError"),
    (lambda s, d, w: noam(s, d, w) if s >= 1 else 0.0, "step 0 must raise a ValueError"),
    (lambda s, d, w: str(noam(s, d, w)) + "x", "return a number"),
    (lambda s, d, w: noam(s, d, w) * (1.01 if s == w else 1.0), r"noam\(4000, 512, 4000\) should be"),
])
def test_noam_rejects_wrong_code(wrong, hint):
    rejects(checks.check_noam_schedule, wrong, hint)
