"""Q7's checkers accept the reference solutions and reject each known-wrong variant with its hint."""

import math

import pytest
import torch
from conftest import rejects

from transformer18 import checks
from transformer18.checks import CheckFailed, check_attend, check_shuffled_attention, check_softmax


def test_the_checkers_are_discovered():
    for name in ("check_softmax", "check_attend", "check_shuffled_attention"):
        assert name in checks.__all__


# ---------------------------------------------------------------- softmax


def softmax(scores, dim=-1):
    shifted = scores - scores.amax(dim=dim, keepdim=True)
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


def test_softmax_accepts_the_reference(accepts):
    accepts(check_softmax, softmax)


def test_softmax_accepts_an_equivalent_logsumexp_version(accepts):
    accepts(check_softmax, lambda x, dim=-1: (x - x.logsumexp(dim, keepdim=True)).exp())


def naive(scores, dim=-1):
    return scores.exp() / scores.exp().sum(dim=dim, keepdim=True)


def fixed_dim(d):
    return lambda scores, dim=-1: softmax(scores, dim=d)


def log_softmax(scores, dim=-1):
    shifted = scores - scores.amax(dim=dim, keepdim=True)
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


@pytest.mark.parametrize("wrong, hint", [
    (naive, "Subtract each slice's maximum before exp"),
    (fixed_dim(-1), "You normalised along dim 2, but the call asked for dim=1"),
    (fixed_dim(0), "You normalised along dim 0, but the call asked for dim=-1"),
    (lambda x, dim=-1: (x - x.amax(dim, keepdim=True)).exp(), "did not normalise"),
    (lambda x, dim=-1: x.exp(), "did not normalise"),
    (log_softmax, "You returned log-softmax"),
    (lambda x, dim=-1: x / x.sum(dim, keepdim=True), "You divided the raw scores by their sum"),
    (lambda x, dim=-1: (x - x.amax()).exp() / (x - x.amax()).exp().sum(), "normalised over the whole tensor"),
    (lambda x, dim=-1: torch.softmax(x, dim), "your code called PyTorch's softmax"),
    (lambda x, dim=-1: x.softmax(dim), "your code called PyTorch's softmax"),
    (lambda x, dim=-1: torch.nn.functional.softmax(x, dim), "your code called PyTorch's softmax"),
    (lambda x, dim=-1: softmax(x, dim)[..., :-1], "softmax keeps the shape"),
    (lambda x, dim=-1: softmax(x, dim).tolist(), "return a tensor"),
    (lambda x, dim=-1: softmax(x, dim) * 1.01, "differs from torch.softmax"),
])
def test_softmax_rejects(wrong, hint):
    rejects(check_softmax, wrong, hint)


def test_refusing_torch_softmax_is_undone_afterwards():
    with pytest.raises(CheckFailed):
        check_softmax(lambda x, dim=-1: x.softmax(dim))
    x = torch.randn(3, 4)
    torch.testing.assert_close(x.softmax(-1), torch.softmax(x, -1))
    torch.testing.assert_close(torch.nn.functional.softmax(x, -1), torch.special.softmax(x, -1))
    assert "softmax" not in torch.Tensor.__dict__


# ---------------------------------------------------------------- attend


def attend(query, keys, values, *, normalise=True, scale=False, over_keys=True, sum_of="values", order="ow"):
    scores = keys @ query  # (n,)
    if scale:
        scores = scores / math.sqrt(query.shape[-1])
    if not normalise:
        weights = scores
    elif over_keys:
        weights = scores.softmax(-1)
    else:
        weights = (query[None] @ keys.T).softmax(0)[0]  # softmax over the size-1 query axis: all ones
    output = weights @ (values if sum_of == "values" else keys)
    return {"ow": (output, weights), "wo": (weights, output), "ww": (weights, weights)}[order]


def attend_variant(**kw):
    return lambda q, k, v: attend(q, k, v, **kw)


def test_attend_accepts_the_reference(accepts):
    accepts(check_attend, attend)


@pytest.mark.parametrize("wrong, hint", [
    (attend_variant(normalise=False), "Your weights are the raw scores"),
    (attend_variant(over_keys=False), "softmax ran over an axis of size 1"),
    (attend_variant(sum_of="keys"), "weighted sum of the keys"),
    (attend_variant(order="wo"), r"You returned \(weights, output\)"),
    (attend_variant(order="ww"), "The first element must be the output"),
    (attend_variant(scale=True), "without dividing by"),
    (lambda q, k, v: attend(q, k, v)[0], "return a tuple"),
    (lambda q, k, v: (attend(q, k, v)[0], attend(q, k, v)[1][None]), r"as a vector of shape \(n,\)"),
    (lambda q, k, v: (attend(q, k, v)[0], 0.5 * attend(q, k, v)[1]), "Your weights sum to 0.5000"),
    (lambda q, k, v: (attend(q, k, v)[0], (2 * (k @ q)).softmax(-1)), "your weights differ"),
    (lambda q, k, v: (attend(q, k, v)[0] + 0.1, attend(q, k, v)[1]), "your output differs"),
])
def test_attend_rejects(wrong, hint):
    rejects(check_attend, wrong, hint)


# ---------------------------------------------------------------- shuffled attention


def predict(output, weights, perm):
    return output, weights[..., perm]


def test_shuffled_attention_accepts_the_reference(accepts):
    accepts(check_shuffled_attention, predict)


@pytest.mark.parametrize("wrong, hint", [
    (lambda o, w, p: (o, w), "Each weight belongs to its key"),
    (lambda o, w, p: (o, w[..., torch.argsort(p)]), "that is the inverse permutation"),
    (lambda o, w, p: (o.flip(0), w[..., p]), "does reordering the terms of a sum change it"),
    (lambda o, w, p: (o, w.flip(-1)), "your weights differ"),
    (lambda o, w, p: (o, w[..., p].T), r"weights of shape \(3, 6\)"),
    (lambda o, w, p: o, "return a tuple"),
])
def test_shuffled_attention_rejects(wrong, hint):
    rejects(check_shuffled_attention, wrong, hint)
