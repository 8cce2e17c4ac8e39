"""The Q13 checkers accept the reference solutions and reject known-wrong code with the right hint."""

import pytest
import torch
from conftest import rejects

from transformer18 import checks

# ---------------------------------------------------------------- padding_mask


def padding_mask(tokens, pad_id):
    return (tokens != pad_id)[:, None, None, :]


def test_padding_mask_accepts_the_reference(capsys):
    checks.check_padding_mask(padding_mask)
    checks.check_padding_mask(lambda tokens, pad_id: tokens.ne(pad_id).unsqueeze(1).unsqueeze(1))
    from transformer18.masks import padding_mask as exported

    checks.check_padding_mask(exported)
    assert capsys.readouterr().out.count("✓") == 3


def pad_in_place(tokens, pad_id):
    tokens[tokens == pad_id] = -1
    return (tokens != -1)[:, None, None, :]


@pytest.mark.parametrize("wrong, hint", [
    (lambda t, p: (t == p)[:, None, None, :], "inverted"),
    (lambda t, p: t != p, r"Shape \(batch, len\) .* does not broadcast over heads and queries"),
    (lambda t, p: (t != p)[:, None, :, None], r"masks queries \(rows\) instead of keys"),
    (lambda t, p: (t != 0)[:, None, None, :], "instead of a hard-coded 0"),
    (lambda t, p: (t > p)[:, None, None, :], "ids smaller than pad_id"),
    (lambda t, p: (t != p)[:, None, None, :].float(), "Return a bool mask"),
    (lambda t, p: (t != p)[:, None, None, :].long(), "Return a bool mask"),
    (lambda t, p: (t != p)[:, None, :], r"must have shape \(batch, 1, 1, len\)"),
    (lambda t, p: (t != p)[:, None, None, :].tolist(), "return a tensor"),
    (pad_in_place, "Do not modify tokens in place"),
    (lambda t, p: torch.ones_like(t, dtype=torch.bool)[:, None, None, :], "should be"),
])
def test_padding_mask_rejects_wrong_code(wrong, hint):
    rejects(checks.check_padding_mask, wrong, hint)


# ---------------------------------------------------------------- masked_softmax


def masked_softmax(scores, mask, *, fill="min", after=False, dim=-1, invert=False, multiply=False,
                   ignore=False, zero_empty_rows=False):
    """The reference, with switches that reproduce common mistakes."""
    keep = ~mask if invert else mask
    if ignore:
        return scores.softmax(dim=-1)
    if multiply:
        return (scores * keep).softmax(dim=-1)
    if after:
        return scores.softmax(dim=-1).masked_fill(~keep, 0.0)
    value = {"min": torch.finfo(scores.dtype).min, "-inf": float("-inf"), "-1e9": -1e9}[fill]
    weights = scores.masked_fill(~keep, value).softmax(dim=dim)
    if zero_empty_rows:
        weights = weights.masked_fill(~keep.expand(scores.shape).any(dim=-1, keepdim=True), 0.0)
    return weights


def variant(**kw):
    return lambda scores, mask: masked_softmax(scores, mask, **kw)


def in_place(scores, mask):
    return scores.masked_fill_(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1)


def test_masked_softmax_accepts_the_reference(capsys):
    checks.check_masked_softmax(masked_softmax)
    checks.check_masked_softmax(  # the same with torch.where and an explicit float32 upcast
        lambda s, m: torch.where(m, s.float(), torch.finfo(torch.float32).min).softmax(-1).to(s.dtype))
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("wrong, hint", [
    (variant(fill="-inf"), r"came out NaN: the softmax of a row of −∞ is 0/0\. Fill with torch\.finfo"),
    (variant(fill="-1e9"), "does not fit in float16"),
    (lambda s, m: torch.where(m, s, torch.tensor(-1e9, dtype=s.dtype)).softmax(-1), "came out NaN"),
    (variant(invert=True), "The mask is inverted"),
    (variant(after=True), "without renormalising|no longer sum to 1"),
    (variant(dim=-2), r"over the keys \(the last axis"),
    (variant(multiply=True), "Multiplying the scores by the mask"),
    (variant(ignore=True), "You ignored the mask"),
    (variant(fill="-inf", zero_empty_rows=True), "You returned zeros"),
    (lambda s, m: masked_softmax(s.float() * 1.5, m), "your weights differ"),
    (lambda s, m: masked_softmax(s, m)[..., :-1], "the scores' shape"),
    (in_place, "Do not modify scores or mask in place"),
    (lambda s, m: masked_softmax(s, m).tolist(), "return a tensor"),
    (lambda s, m: masked_softmax(s, m) / 0, "contain NaN"),
])
def test_masked_softmax_rejects_wrong_code(wrong, hint):
    rejects(checks.check_masked_softmax, wrong, hint)


# ---------------------------------------------------------------- decoder_self_mask


def decoder_self_mask(tokens, pad_id):
    positions = torch.arange(tokens.size(1))
    return (tokens != pad_id)[:, None, None, :] & (positions[None, :] <= positions[:, None])


def lower(n, diagonal=0):
    return torch.ones(n, n, dtype=torch.bool).tril(diagonal=diagonal)


def keys(t, p):
    return (t != p)[:, None, None, :]


def test_decoder_self_mask_accepts_the_reference(capsys):
    checks.check_decoder_self_mask(decoder_self_mask)
    from transformer18.masks import decoder_self_mask as exported

    checks.check_decoder_self_mask(exported)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda t, p: ~decoder_self_mask(t, p), "inverted"),
    (lambda t, p: lower(t.size(1)).expand(t.size(0), 1, t.size(1), t.size(1)), "Pad keys are still visible"),
    (lambda t, p: keys(t, p).expand(-1, 1, t.size(1), -1), "Later keys are visible"),
    (lambda t, p: keys(t, p) | lower(t.size(1)), r"with & \(AND\)"),
    (lambda t, p: (t != p)[:, None, :, None] & lower(t.size(1)), r"Hide the pad \*keys\*"),
    (lambda t, p: keys(t, p) & (t != p)[:, None, :, None] & lower(t.size(1)), r"your pad rows are all False"),
    (lambda t, p: keys(t, p) & lower(t.size(1)).T, "upper triangle"),
    (lambda t, p: keys(t, p) & lower(t.size(1), -1), "diagonal is missing"),
    (lambda t, p: decoder_self_mask(t, 0), "instead of a hard-coded 0"),
    (lambda t, p: decoder_self_mask(t, p)[:, 0], r"Keep a dimension for the heads"),
    (lambda t, p: keys(t, p), "padding mask alone"),
    (lambda t, p: lower(t.size(1))[None, None], "causal mask alone"),
    (lambda t, p: decoder_self_mask(t, p).float(), "Return a bool mask"),
    (lambda t, p: decoder_self_mask(t, p)[..., :-1], r"must have shape \(batch, 1, len, len\)"),
    (lambda t, p: keys(t, p) & lower(t.size(1), 1), "should be"),
])
def test_decoder_self_mask_rejects_wrong_code(wrong, hint):
    rejects(checks.check_decoder_self_mask, wrong, hint)
