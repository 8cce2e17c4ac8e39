"""Checkers for Q7 (what is attention?): softmax from scratch, one query's soft lookup, shuffled pairs."""

from __future__ import annotations

import contextlib
import math
from unittest import mock

import torch

from ._core import CheckFailed, checker, diagnose, expect

__all__ = ["check_softmax", "check_attend", "check_shuffled_attention"]


def _refuse(*args, **kwargs):
    raise CheckFailed("Write softmax from scratch with exp, max and sum: your code called PyTorch's softmax.")


def _softmax_mistakes(scores: torch.Tensor, dim: int, out: torch.Tensor) -> list:
    shifted = scores - scores.amax(dim, keepdim=True)
    no_norm = ("You computed exp but did not normalise: divide by the sum of the exponentials along `dim` "
               "(keepdim=True) so that every slice sums to 1.")
    raw = ("You divided the raw scores by their sum. Exponentiate first: exp makes every weight positive, and "
           "normalising exp(scores) is what softmax means.")
    whole = ("You normalised over the whole tensor. Sum along `dim` only (keepdim=True), so that each slice along "
             "`dim` sums to 1 on its own.")
    return [
        (lambda: bool(scores.abs().max() > 100) and not bool(torch.isfinite(out).all()),
         "Scores of ±1000 give inf or nan: exp(1000) overflows to inf (and inf/inf is nan), exp(-1000) underflows "
         "to 0 (and 0/0 is nan). Subtract each slice's maximum before exp; softmax(x − c) = softmax(x), so the "
         "answer does not change."),
        (torch.log_softmax(scores, dim), "You returned log-softmax (the logarithm of the weights: all ≤ 0). Return "
                                         "the weights themselves, exp(x − max) / sum(exp(x − max))."),
        (scores.exp(), no_norm), (shifted.exp(), no_norm),
        (scores / scores.sum(dim, keepdim=True), raw), (shifted / shifted.sum(dim, keepdim=True), raw),
        (scores.exp() / scores.exp().sum(), whole), (shifted.exp() / shifted.exp().sum(), whole),
        *[(torch.softmax(scores, other), f"You normalised along dim {other}, but the call asked for dim={dim}. Use "
                                         "the `dim` argument for max and sum (with keepdim=True).")
          for other in range(scores.dim()) if other != dim % scores.dim()],
    ]


@checker("softmax")
def check_softmax(softmax) -> None:
    """Check ``softmax(scores, dim=-1)`` against ``torch.softmax``, including scores of size ±1000."""
    scores = 2 * torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))  # distinct sizes: no wrong dim hides
    large = torch.tensor([[1000.0, 999.0, 998.0, 990.0], [-1000.0, -1001.0, -1003.0, -1010.0]])
    for x, kwargs in [(scores, {}), (scores, {"dim": -1}), (scores, {"dim": 1}), (scores, {"dim": 0}), (large, {})]:
        dim = kwargs.get("dim", -1)
        with contextlib.ExitStack() as refusing:  # PyTorch's own softmax raises: the exercise is from scratch
            for owner in (torch, torch.nn.functional, torch.special, torch.Tensor):
                refusing.enter_context(mock.patch.object(owner, "softmax", _refuse))
            out = softmax(x.clone(), **kwargs)
        diagnose(out, torch.softmax(x, dim), _softmax_mistakes(x, dim, out),
                 f"{'with scores of ±1000 ' if x is large else ''}softmax(scores, dim={dim}) differs from "
                 "torch.softmax", shape="softmax keeps the shape of its input, scores.shape")


@checker("attend")
def check_attend(attend) -> None:
    """Check ``attend(query (d,), keys (n, d), values (n, d_v)) -> (output (d_v,), weights (n,))``."""
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        (n, d), d_v = (6, 4), 3
        query, keys, values = torch.randn(d, generator=g), torch.randn(n, d, generator=g), torch.randn(n, d_v, generator=g)
        scores = keys @ query  # (n,)
        weights = scores.softmax(-1)  # (n,)
        result = attend(query.clone(), keys.clone(), values.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2,
               f"return a tuple (output, weights), got {type(result).__name__}")
        out, w = (torch.as_tensor(r) for r in result)
        diagnose(tuple(out.shape), (d_v,), [
            (out.shape == (n,) and w.shape == (d_v,), "You returned (weights, output). Return them in the order "
                                                      "(output, weights)."),
            (out.shape == (n,), f"The first element must be the output, the weighted sum of the values, shape "
                                f"(d_v,) = ({d_v},); you returned something of the weights' shape ({n},) there."),
            (out.shape == (d,) and torch.allclose(out, weights @ keys),
             "You returned the weighted sum of the keys. The keys only decide the weights; the output is the "
             "weighted sum of the values: weights @ values."),
        ], f"the output has shape {tuple(out.shape)}, expected (d_v,) = ({d_v},)")
        diagnose(w, weights, [
            (w.shape != (n,) and w.numel() == n, f"Return the weights as a vector of shape (n,) = ({n},), not "
                                                 f"{tuple(w.shape)}."),
            (scores, "Your weights are the raw scores keys @ query. Pass them through softmax so that they are "
                     "positive and sum to 1."),
            (torch.ones(n), "Every weight is 1: softmax ran over an axis of size 1 (e.g. dim=0 of a (1, n) tensor). "
                            "Normalise over the n keys."),
            ((scores / math.sqrt(d)).softmax(-1), "This exercise uses plain dot-product scores, keys @ query, "
                                                  "without dividing by √d (Q11 adds that scale)."),
            (w.shape == (n,) and not math.isclose(float(w.sum()), 1.0, abs_tol=1e-4),
             f"Your weights sum to {float(w.sum()):.4f}; softmax over the n keys makes them sum to 1. Did you "
             "apply softmax over the right axis?"),
        ], "your weights differ from softmax(keys @ query)", shape="the weights must have shape (n,)")
        diagnose(out, weights @ values, otherwise="your output differs from weights @ values")


@checker("shuffled_attention")
def check_shuffled_attention(predict) -> None:
    """Check ``predict(output, weights, perm)``: the result of attending over ``keys[perm], values[perm]``."""
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        query = torch.randn(3, 4, generator=g)  # (q_len, d)
        keys = torch.randn(6, 4, generator=g)  # (k_len, d)
        values = torch.randn(6, 5, generator=g)  # (k_len, d_v)
        perm = torch.randperm(6, generator=g)
        weights = (query @ keys.T).softmax(-1)  # (q_len, k_len)
        new_weights = (query @ keys[perm].T).softmax(-1)  # (q_len, k_len)
        result = predict((weights @ values).clone(), weights.clone(), perm.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2,
               f"return a tuple (output, weights), got {type(result).__name__}")
        out, w = (torch.as_tensor(r) for r in result)
        expect(out.shape == (3, 5) and w.shape == weights.shape,
               f"return an output of shape (3, 5) and weights of shape {tuple(weights.shape)}; "
               f"got {tuple(out.shape)} and {tuple(w.shape)}")
        diagnose(w, new_weights, [
            (weights, "Each weight belongs to its key, and the keys moved: after the shuffle, position j holds the "
                      "key that was at perm[j]. Move the weights the same way."),
            (weights[:, torch.argsort(perm)], "Close: that is the inverse permutation. New position j holds the old "
                                              "key perm[j], so its weight is weights[:, perm[j]]."),
        ], "your weights differ from those of the shuffled lookup")
        diagnose(out, new_weights @ values[perm], otherwise="your output differs from that of the shuffled lookup. "
                 "The output is Σ_j w_j v_j over the pairs: does reordering the terms of a sum change it?")
