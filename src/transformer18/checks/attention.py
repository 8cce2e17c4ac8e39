"""Checkers for Q7 (what is attention?): softmax from scratch, one query's soft lookup, shuffled pairs."""

from __future__ import annotations

import contextlib
import math

import torch

from ._core import CheckFailed, checker, expect, expect_close

__all__ = ["check_softmax", "check_attend", "check_shuffled_attention"]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.to(b.dtype), b, atol=1e-5, rtol=1e-4))


# ---------------------------------------------------------------- softmax


@contextlib.contextmanager
def _builtin_softmax_refused():
    """While the reader's softmax runs, PyTorch's own softmax functions raise (the exercise is from scratch)."""

    def refuse(*args, **kwargs):
        raise CheckFailed("Write softmax from scratch with exp, max and sum: your code called PyTorch's softmax.")

    targets = [(torch, "softmax"), (torch.nn.functional, "softmax"), (torch.special, "softmax"),
               (torch.Tensor, "softmax")]
    saved = [(owner, name, owner.__dict__.get(name)) for owner, name in targets]
    try:
        for owner, name, _ in saved:
            setattr(owner, name, refuse)
        yield
    finally:
        for owner, name, original in saved:
            if original is None:  # the name was inherited (torch.Tensor.softmax): remove our override
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def _run_softmax(softmax, scores: torch.Tensor, **kwargs) -> torch.Tensor:
    with _builtin_softmax_refused():
        out = softmax(scores.clone(), **kwargs)
    expect(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}")
    expect(out.shape == scores.shape,
           f"softmax keeps the shape of its input: expected {tuple(scores.shape)}, got {tuple(out.shape)}")
    return out


def _diagnose_softmax(out: torch.Tensor, scores: torch.Tensor, dim: int) -> None:
    """Raise the specific hint if ``out`` is a known wrong variant of softmax(scores, dim)."""
    shifted = scores - scores.amax(dim, keepdim=True)
    if _close(out, torch.log_softmax(scores, dim)):
        raise CheckFailed("You returned log-softmax (the logarithm of the weights: all ≤ 0). Return the weights "
                          "themselves, exp(x − max) / sum(exp(x − max)).")
    if _close(out, scores.exp()) or _close(out, shifted.exp()):
        raise CheckFailed("You computed exp but did not normalise: divide by the sum of the exponentials along "
                          "`dim` (keepdim=True) so that every slice sums to 1.")
    if _close(out, scores / scores.sum(dim, keepdim=True)) or _close(out, shifted / shifted.sum(dim, keepdim=True)):
        raise CheckFailed("You divided the raw scores by their sum. Exponentiate first: exp makes every weight "
                          "positive, and normalising exp(scores) is what softmax means.")
    if _close(out, scores.exp() / scores.exp().sum()) or _close(out, shifted.exp() / shifted.exp().sum()):
        raise CheckFailed("You normalised over the whole tensor. Sum along `dim` only (keepdim=True), so that each "
                          "slice along `dim` sums to 1 on its own.")
    for other in range(scores.dim()):
        if other != dim % scores.dim() and _close(out, torch.softmax(scores, other)):
            raise CheckFailed(f"You normalised along dim {other}, but the call asked for dim={dim}. Use the `dim` "
                              "argument for max and sum (with keepdim=True).")


@checker("softmax")
def check_softmax(softmax) -> None:
    """Check ``softmax(scores, dim=-1)`` against ``torch.softmax``, including scores of size ±1000."""
    g = torch.Generator().manual_seed(0)
    scores = 2 * torch.randn(2, 3, 5, generator=g)  # distinct sizes, so a wrong dim cannot hide
    for kwargs in ({}, {"dim": -1}, {"dim": 1}, {"dim": 0}):
        dim = kwargs.get("dim", -1)
        out = _run_softmax(softmax, scores, **kwargs)
        _diagnose_softmax(out, scores, dim)
        expect_close(out, torch.softmax(scores, dim), f"softmax(scores, dim={dim}) differs from torch.softmax")
    large = torch.tensor([[1000.0, 999.0, 998.0, 990.0], [-1000.0, -1001.0, -1003.0, -1010.0]])
    out = _run_softmax(softmax, large)
    if not torch.isfinite(out).all():
        raise CheckFailed("Scores of ±1000 give inf or nan: exp(1000) overflows to inf (and inf/inf is nan), "
                          "exp(-1000) underflows to 0 (and 0/0 is nan). Subtract each slice's maximum before exp; "
                          "softmax(x − c) = softmax(x), so the answer does not change.")
    _diagnose_softmax(out, large, -1)
    expect_close(out, torch.softmax(large, -1), "with scores of ±1000 your softmax differs from torch.softmax")


# ---------------------------------------------------------------- one query against n keys


def _attend_case(seed: int, n: int = 6, d: int = 4, d_v: int = 3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g), torch.randn(n, d, generator=g), torch.randn(n, d_v, generator=g)


@checker("attend")
def check_attend(attend) -> None:
    """Check ``attend(query (d,), keys (n, d), values (n, d_v)) -> (output (d_v,), weights (n,))``."""
    for seed in range(3):
        query, keys, values = _attend_case(seed)
        (n, d), d_v = keys.shape, values.shape[1]
        scores = keys @ query  # (n,)
        weights = scores.softmax(-1)  # (n,)
        expected = weights @ values  # (d_v,)
        result = attend(query.clone(), keys.clone(), values.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2,
               f"return a tuple (output, weights), got {type(result).__name__}")
        out, w = (torch.as_tensor(r) for r in result)
        if out.shape == (n,) and w.shape == (d_v,):
            raise CheckFailed("You returned (weights, output). Return them in the order (output, weights).")
        if out.shape == (n,):
            raise CheckFailed(f"The first element must be the output, the weighted sum of the values, shape "
                              f"(d_v,) = ({d_v},); you returned something of the weights' shape ({n},) there.")
        if out.shape == (d,) and _close(out, weights @ keys):
            raise CheckFailed("You returned the weighted sum of the keys. The keys only decide the weights; the "
                              "output is the weighted sum of the values: weights @ values.")
        expect(out.shape == (d_v,), f"the output has shape {tuple(out.shape)}, expected (d_v,) = ({d_v},)")
        if w.shape != (n,) and w.numel() == n:
            raise CheckFailed(f"Return the weights as a vector of shape (n,) = ({n},), not {tuple(w.shape)}.")
        expect(w.shape == (n,), f"the weights have shape {tuple(w.shape)}, expected (n,) = ({n},)")
        if _close(w, scores):
            raise CheckFailed("Your weights are the raw scores keys @ query. Pass them through softmax so that they "
                              "are positive and sum to 1.")
        if _close(w, torch.ones(n)):
            raise CheckFailed("Every weight is 1: softmax ran over an axis of size 1 (e.g. dim=0 of a (1, n) "
                              "tensor). Normalise over the n keys.")
        if _close(w, (scores / math.sqrt(d)).softmax(-1)):
            raise CheckFailed("This exercise uses plain dot-product scores, keys @ query, without dividing by "
                              "√d (Q11 adds that scale).")
        if not math.isclose(float(w.sum()), 1.0, abs_tol=1e-4):
            raise CheckFailed(f"Your weights sum to {float(w.sum()):.4f}; softmax over the n keys makes them sum "
                              "to 1. Did you apply softmax over the right axis?")
        expect_close(w, weights, "your weights differ from softmax(keys @ query)")
        expect_close(out, expected, "your output differs from weights @ values")


# ---------------------------------------------------------------- shuffling the key–value pairs


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
        output = weights @ values  # (q_len, d_v)
        new_weights = (query @ keys[perm].T).softmax(-1)  # (q_len, k_len)
        new_output = new_weights @ values[perm]  # (q_len, d_v)
        result = predict(output.clone(), weights.clone(), perm.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2,
               f"return a tuple (output, weights), got {type(result).__name__}")
        out, w = (torch.as_tensor(r) for r in result)
        expect(out.shape == output.shape and w.shape == weights.shape,
               f"return an output of shape {tuple(output.shape)} and weights of shape {tuple(weights.shape)}; "
               f"got {tuple(out.shape)} and {tuple(w.shape)}")
        if _close(w, weights) and not _close(w, new_weights):
            raise CheckFailed("Each weight belongs to its key, and the keys moved: after the shuffle, position j "
                              "holds the key that was at perm[j]. Move the weights the same way.")
        if _close(w, weights[:, torch.argsort(perm)]) and not _close(w, new_weights):
            raise CheckFailed("Close: that is the inverse permutation. New position j holds the old key perm[j], "
                              "so its weight is weights[:, perm[j]].")
        expect_close(w, new_weights, "your weights differ from those of the shuffled lookup")
        expect_close(out, new_output, "your output differs from that of the shuffled lookup. The output is "
                                      "Σ_j w_j v_j over the pairs: does reordering the terms of a sum change it?")
