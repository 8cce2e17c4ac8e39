"""Checkers for Q11 (scaled dot-product attention): the attention function and the variance of q · k."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._core import CheckFailed, checker, diagnose, expect, matches

__all__ = ["check_scaled_dot_product_attention", "check_score_variance"]


def _attend(query, key, value, mask=None, *, divisor="sqrt", dim=-1, invert=False, after=False):
    """softmax(Q Kᵀ / √d_k) V with switches that reproduce common mistakes (for the hints)."""
    d_k = query.size(-1)
    scale = {"sqrt": math.sqrt(d_k), "none": 1.0, "d_k": float(d_k)}[divisor]
    scores = query @ key.transpose(-2, -1) / scale  # (..., q_len, k_len)
    allowed = None if mask is None else (~mask if invert else mask)
    if allowed is not None and not after:
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=dim)  # (..., q_len, k_len)
    if allowed is not None and after:
        weights = weights * allowed  # zeroed after the softmax, never renormalised
    return weights @ value, weights  # (..., q_len, d_v), (..., q_len, k_len)


WRONG = {
    "Divide the scores by √d_k before the softmax: without the scale they grow with d_k.": dict(divisor="none"),
    "Divide by √d_k, the square root of the width, not by d_k itself.": dict(divisor="d_k"),
    "The softmax runs over the keys (the last axis, dim=-1): each query's weights sum to 1, "
    "not each key's.": dict(dim=-2),
    "True means *may attend* here: fill the scores where the mask is False.": dict(invert=True),
    "Apply the mask to the scores before the softmax. Zeroing weights after the softmax leaves rows "
    "that no longer sum to 1.": dict(after=True),
}


def _cases():
    """(query, key, value, mask) with q_len ≠ k_len, d_k ≠ d_v, and masks with a fully masked row."""
    g = torch.Generator().manual_seed(11)
    # 4-D (batch 2, heads 3, q_len 4, k_len 6, d_k 16, d_v 5) with a (batch, 1, q_len, k_len) mask
    mask = torch.rand(2, 1, 4, 6, generator=g) > 0.4
    mask[..., 0] = True
    mask[1, 0, 2] = False  # batch 1, query 2: every key masked
    yield (torch.randn(2, 3, 4, 16, generator=g), torch.randn(2, 3, 6, 16, generator=g),
           torch.randn(2, 3, 6, 5, generator=g), mask)
    # 3-D (batch 3, q_len 5, k_len 7, d_k 9, d_v 2) with a (q_len, k_len) mask shared by the batch
    mask = torch.rand(5, 7, generator=g) > 0.5
    mask[:, 3] = True
    mask[4] = False  # the last query sees nothing
    yield (torch.randn(3, 5, 9, generator=g), torch.randn(3, 7, 9, generator=g),
           torch.randn(3, 7, 2, generator=g), mask)
    # 4-D without a mask (batch 2, heads 2, q_len 3, k_len 8, d_k 4, d_v 6): the default mask=None
    yield (torch.randn(2, 2, 3, 4, generator=g), torch.randn(2, 2, 8, 4, generator=g),
           torch.randn(2, 2, 8, 6, generator=g), None)


@checker("scaled_dot_product_attention")
def check_scaled_dot_product_attention(scaled_dot_product_attention) -> None:
    """Check ``scaled_dot_product_attention(query, key, value, mask=None) -> (output, weights)``.

    Compared with ``torch.nn.functional.scaled_dot_product_attention`` on every row that may attend to
    at least one key; a fully masked row must come out finite with uniform weights (the course's rule).
    """
    for query, key, value, mask in _cases():
        args = (query.clone(), key.clone(), value.clone())
        result = scaled_dot_product_attention(*args) if mask is None else scaled_dot_product_attention(*args, mask)
        expect(not isinstance(result, torch.Tensor), "Return both the output and the weights, as a tuple (output, "
                                                     "weights).")
        expect(isinstance(result, (tuple, list)) and len(result) == 2,
               f"return a tuple (output, weights), got {type(result).__name__}")
        output, weights = result
        q_len, k_len, d_v = query.size(-2), key.size(-2), value.size(-1)
        out_shape, w_shape = (*query.shape[:-2], q_len, d_v), (*query.shape[:-2], q_len, k_len)
        expect((tuple(output.shape), tuple(weights.shape)) != (w_shape, out_shape),
               "Return (output, weights) in that order.")
        expect(tuple(output.shape) == out_shape,
               f"the output has shape {tuple(output.shape)}, expected (..., q_len, d_v) = {out_shape}")
        expect(tuple(weights.shape) == w_shape,
               f"the weights have shape {tuple(weights.shape)}, expected (..., q_len, k_len) = {w_shape}")
        live = torch.ones(out_shape[:-1], dtype=torch.bool) if mask is None else mask.any(-1).expand(out_shape[:-1])
        if not (torch.isfinite(output).all() and torch.isfinite(weights).all()):
            expect(bool(live.all()), "A fully masked row gave NaN: softmax of a row of −inf is 0/0. Fill masked scores "
                                     "with torch.finfo(dtype).min instead of −inf.")
            raise CheckFailed("Your output contains NaN or inf.")
        expected_output, expected_weights = _attend(query, key, value, mask)
        torch_output = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        # The reference itself agrees with PyTorch wherever a row may attend to something.
        torch.testing.assert_close(expected_output[live], torch_output[live], atol=1e-5, rtol=1e-4)
        diagnose((output, weights), (expected_output, expected_weights), [
            *[(_attend(query, key, value, mask, **switches), hint) for hint, switches in WRONG.items()],
            (matches((output[live], weights[live]), (expected_output[live], expected_weights[live])),
             "A fully masked row must stay finite with uniform weights 1/k_len (its output is the mean of the "
             "values): fill masked scores with torch.finfo(dtype).min."),
            (matches(output, expected_output), "The output is right but the weights are not: return "
                                               "softmax(Q Kᵀ / √d_k) with masked entries filled, the matrix you "
                                               "multiplied by V."),
        ], "Your output differs from torch.nn.functional.scaled_dot_product_attention (largest difference "
           f"{(output - torch_output).abs().nan_to_num(0.0).max().item():.3g}).")


def _measured_variance(d_k: int, sigma: float, n_pairs: int = 40_000) -> float:
    g = torch.Generator().manual_seed(d_k)
    q = sigma * torch.randn(n_pairs, d_k, generator=g)  # (pairs, d_k)
    k = sigma * torch.randn(n_pairs, d_k, generator=g)  # (pairs, d_k)
    return (q * k).sum(-1).var().item()


@checker("score_variance")
def check_score_variance(score_variance) -> None:
    """Check ``score_variance(d_k, sigma) -> float``: Var(q · k) for entries i.i.d. with mean 0, std sigma."""
    for d_k, sigma in [(4, 1.0), (64, 0.5), (100, 2.0), (16, 1.5)]:
        got = score_variance(d_k, sigma)
        expect(isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1),
               f"return a number, got {type(got).__name__}")
        got, expected = float(got), d_k * sigma**4
        if math.isclose(got, expected, rel_tol=0.05):  # before diagnose: its message measures the variance
            continue
        diagnose(got, expected, [
            (d_k, "Each product q_i k_i has variance σ²·σ² = σ⁴, so σ must appear in your answer."),
            (d_k * sigma**2, "Each product q_i k_i has variance Var(q_i)·Var(k_i) = σ²·σ² = σ⁴, not σ²."),
            (math.sqrt(d_k) * sigma**2, "That is the standard deviation of q · k; the variance is its square."),
            (sigma**4, "q · k is a sum of d_k independent terms, and variances of independent terms add: multiply by "
                       "d_k."),
            (d_k**2 * sigma**4, "Variances of independent terms add: d_k terms give d_k times one term's "
                                       "variance, not d_k²."),
        ], f"For d_k = {d_k}, σ = {sigma} the variance of q · k is {_measured_variance(d_k, sigma):.4g} (measured on "
           f"40,000 pairs), you returned {got:.4g}. Work it out by hand, Var(Σ q_i k_i), or sample more pairs.",
            atol=0.0, rtol=0.05)
