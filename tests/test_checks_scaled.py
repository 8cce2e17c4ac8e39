"""Q11's checkers accept the reference solutions and reject each known mistake with its hint."""

import math
import re

import pytest
import torch
from conftest import rejects, variant

from transformer18.checks import check_scaled_dot_product_attention, check_score_variance

# ---------------------------------------------------------------- scaled_dot_product_attention


def attend(query, key, value, mask=None, *, divisor="sqrt", dim=-1, invert=False, fill="finfo", after=False,
           output_only=False, swapped=False):
    """The reference, with switches that reproduce the mistakes the checker must name."""
    d_k = query.size(-1)
    scores = query @ key.transpose(-2, -1)
    if divisor == "sqrt":
        scores = scores / math.sqrt(d_k)
    elif divisor == "d_k":
        scores = scores / d_k
    if mask is not None:
        allowed = ~mask if invert else mask
        if not after:
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min if fill == "finfo" else fill)
    weights = scores.softmax(dim=dim)
    if mask is not None and after:
        weights = weights * allowed
    output = weights @ value
    if output_only:
        return output
    return (weights, output) if swapped else (output, weights)


def test_accepts_the_reference_a_large_finite_fill_and_the_course_function(accepts):
    from transformer18.scaled import scaled_dot_product_attention

    accepts(check_scaled_dot_product_attention, attend, variant(attend, fill=-1e9), scaled_dot_product_attention)


@pytest.mark.parametrize("wrong, hint", [
    (variant(attend, divisor="none"), "Divide the scores by √d_k before the softmax"),
    (variant(attend, divisor="d_k"), "not by d_k itself"),
    (variant(attend, dim=-2), "The softmax runs over the keys (the last axis, dim=-1)"),
    (variant(attend, invert=True), "True means *may attend* here"),
    (variant(attend, fill=float("-inf")),
     "gave NaN: softmax of a row of −inf is 0/0. Fill masked scores with torch.finfo(dtype).min"),
    (variant(attend, after=True), "Apply the mask to the scores before the softmax"),
    (variant(attend, output_only=True), "Return both the output and the weights"),
    (variant(attend, swapped=True), "Return (output, weights) in that order"),
    (variant(attend, fill=0.0), "differs from torch.nn.functional.scaled_dot_product_attention"),
])
def test_rejects_each_known_mistake_with_its_hint(wrong, hint):
    rejects(check_scaled_dot_product_attention, wrong, re.escape(hint))


def test_a_fully_masked_row_that_is_finite_but_not_uniform_is_named():
    def zero_row(query, key, value, mask=None):
        output, weights = attend(query, key, value, mask)
        if mask is not None:
            dead = ~mask.any(-1, keepdim=True)  # (..., q_len, 1)
            output, weights = output.masked_fill(dead, 0.0), weights.masked_fill(dead, 0.0)  # PyTorch's zeros
        return output, weights

    rejects(check_scaled_dot_product_attention, zero_row, "A fully masked row must stay finite with uniform weights")


def test_right_output_with_wrong_weights_is_named():
    def scores_as_weights(query, key, value, mask=None):
        output, _ = attend(query, key, value, mask)
        return output, query @ key.transpose(-2, -1)

    rejects(check_scaled_dot_product_attention, scores_as_weights, "The output is right but the weights are not")


# ---------------------------------------------------------------- score_variance


def test_score_variance_accepts_the_formula_and_a_sampled_answer(accepts):
    def sampled(d_k, sigma):
        g = torch.Generator().manual_seed(123)
        q, k = sigma * torch.randn(50_000, d_k, generator=g), sigma * torch.randn(50_000, d_k, generator=g)
        return (q * k).sum(-1).var()  # a 0-d tensor is accepted too

    accepts(check_score_variance, lambda d_k, sigma: d_k * sigma**4, sampled)


@pytest.mark.parametrize("wrong, hint", [
    (lambda d_k, sigma: d_k, "so σ must appear in your answer"),
    (lambda d_k, sigma: d_k * sigma**2, "= σ⁴, not σ²"),
    (lambda d_k, sigma: math.sqrt(d_k) * sigma**2, "That is the standard deviation"),
    (lambda d_k, sigma: sigma**4, "multiply by d_k"),
    (lambda d_k, sigma: d_k**2 * sigma**4, "not d_k²"),
    (lambda d_k, sigma: 3.0, "measured on 40,000 pairs"),
    (lambda d_k, sigma: "d_k", "return a number"),
])
def test_score_variance_rejects_each_known_mistake_with_its_hint(wrong, hint):
    rejects(check_score_variance, wrong, re.escape(hint))
