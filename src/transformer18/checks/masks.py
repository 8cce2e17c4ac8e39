"""Checkers for Q13 (masked attention): the padding mask, a masked softmax, the decoder's self-attention mask.

The causal mask's checker is Q4's ``check_subsequent_mask`` (``checks/decoder.py``).
"""

from __future__ import annotations

import torch

from ._core import CheckFailed, checker, expect, expect_close

__all__ = ["check_padding_mask", "check_masked_softmax", "check_decoder_self_mask"]


def _token_cases() -> list[tuple[torch.Tensor, int]]:
    """(tokens, pad_id) pairs: right-padded with pad 0, then pad id 3 with real ids 0, 1 and 2, so that a
    hard-coded 0 or a ``tokens > pad_id`` comparison shows. Batch and length differ in every case."""
    first = (torch.tensor([[5, 6, 7, 0, 0], [8, 0, 0, 0, 0], [4, 5, 6, 7, 9]]), 0)
    second = (torch.tensor([[0, 1, 9, 3, 3, 3], [2, 7, 4, 1, 0, 3]]), 3)
    return [first, second]


def _call_on_tokens(fn, tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    original = tokens.clone()
    out = fn(tokens, pad_id)
    expect(torch.equal(tokens, original), "Do not modify tokens in place: build a new tensor.")
    expect(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}")
    if out.dtype != torch.bool:
        raise CheckFailed(f"Return a bool mask (True = may attend), not a {out.dtype} one: attention fills the "
                          "scores where the mask is False, and an integer or float 0/1 mask is easy to misuse.")
    return out


@checker("padding_mask")
def check_padding_mask(padding_mask) -> None:
    """Check ``padding_mask(tokens, pad_id) -> (batch, 1, 1, len)`` bool, True at real tokens."""
    for tokens, pad_id in _token_cases():
        mask = _call_on_tokens(padding_mask, tokens, pad_id)
        batch, length = tokens.shape
        shape = tuple(mask.shape)
        if shape == (batch, length):
            raise CheckFailed(f"Shape (batch, len) = {shape} does not broadcast over heads and queries: against "
                              "scores (batch, heads, q_len, k_len) PyTorch lines dimensions up from the right, so "
                              "your batch would meet q_len. Return (batch, 1, 1, len).")
        if shape == (batch, 1, length, 1):
            raise CheckFailed("Shape (batch, 1, len, 1) masks queries (rows) instead of keys (columns): every query "
                              "would still read the pads, and a pad query would see nothing. Put len last: "
                              "(batch, 1, 1, len).")
        expect(shape == (batch, 1, 1, length),
               f"padding_mask must have shape (batch, 1, 1, len) = {(batch, 1, 1, length)}, got {shape}")
        real = tokens != pad_id  # (batch, len)
        got = mask[:, 0, 0]
        if torch.equal(got, real):
            continue
        if torch.equal(got, ~real):
            raise CheckFailed("The mask is inverted: True must mark the real tokens (may attend), False the pads. "
                              "True on the pads is nn.MultiheadAttention's key_padding_mask polarity, not ours.")
        if pad_id != 0 and torch.equal(got, tokens != 0):
            raise CheckFailed(f"Use the pad_id argument (here {pad_id}) instead of a hard-coded 0: with this "
                              "vocabulary 0 is a real token.")
        if torch.equal(got, tokens > pad_id):
            raise CheckFailed("Compare with != pad_id: ids smaller than pad_id are real tokens too.")
        raise CheckFailed(f"padding_mask({tokens.tolist()}, pad_id={pad_id})[:, 0, 0] should be {real.tolist()}, "
                          f"got {got.tolist()}")


def _softmax_cases() -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """(scores, mask, has a fully masked row). Scores (batch 2, heads 3, q_len 4, k_len 5), then the same with
    one row fully masked, then a float16 (q_len 3, k_len 6) case with a fully masked row."""
    g = torch.Generator().manual_seed(13)
    scores = torch.randn(2, 3, 4, 5, generator=g) * 2  # (batch, heads, q_len, k_len)
    keys = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None, :]  # (batch, 1, 1, k_len)
    near = torch.ones(4, 5, dtype=torch.bool).tril(diagonal=1)[None, None]  # (1, 1, q_len, k_len)
    mask = keys & near  # (batch, 1, q_len, k_len): every row keeps key 0
    empty_row = mask.clone()
    empty_row[0, 0, 2] = False  # batch 0, query 2: no allowed key, in every head
    half = (torch.randn(3, 6, generator=g) * 3).half()  # (q_len, k_len)
    half_mask = torch.tensor([[1, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 1, 1]], dtype=torch.bool)
    return [(scores, mask, False), (scores, empty_row, True), (half, half_mask, True)]


def _reference_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1)


@checker("masked_softmax")
def check_masked_softmax(masked_softmax) -> None:
    """Check ``masked_softmax(scores, mask)``: weights over the last axis, 0 on masked keys, finite everywhere."""
    for scores, mask, has_empty_row in _softmax_cases():
        original, original_mask = scores.clone(), mask.clone()
        try:
            out = masked_softmax(scores, mask)
        except RuntimeError as error:
            if scores.dtype == torch.float16 and "overflow" in str(error):
                raise CheckFailed("A fixed large negative number such as −1e9 does not fit in float16 (its most "
                                  "negative value is −65504). Use torch.finfo(scores.dtype).min, which fits every "
                                  "dtype.") from None
            raise
        expect(torch.equal(scores, original) and torch.equal(mask, original_mask),
               "Do not modify scores or mask in place (masked_fill_, +=): use masked_fill, which returns a copy.")
        expect(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}")
        expect(tuple(out.shape) == tuple(scores.shape),
               f"return weights of the scores' shape {tuple(scores.shape)}, got {tuple(out.shape)}")
        out = out.detach()
        expected = _reference_softmax(scores, mask)
        empty = ~mask.expand(scores.shape).any(dim=-1)  # (..., q_len): rows with no allowed key
        atol = 1e-3 if scores.dtype == torch.float16 else 1e-5
        if torch.isnan(out).any():
            if has_empty_row and torch.isnan(out[empty]).all() and not torch.isnan(out[~empty]).any():
                raise CheckFailed("A row whose keys are all masked came out NaN: the softmax of a row of −∞ is 0/0. "
                                  "Fill with torch.finfo(scores.dtype).min instead of −inf (a fixed −1e9 also "
                                  "becomes −inf in float16); the row then stays finite.")
            raise CheckFailed("Your weights contain NaN. Fill the masked scores with torch.finfo(scores.dtype).min.")

        def close(a, b) -> bool:
            return torch.allclose(a.float(), b.float(), atol=atol, rtol=1e-3)

        min_value = torch.finfo(scores.dtype).min
        wrong = {
            "The mask is inverted: True means *may attend*, so fill the scores where the mask is False (~mask).":
                scores.masked_fill(mask, min_value).softmax(dim=-1),
            "Zeroing the masked weights after the softmax leaves rows that no longer sum to 1. Mask the scores "
            "before the softmax so that the remaining weights renormalise.":
                scores.softmax(dim=-1).masked_fill(~mask, 0.0),
            "Take the softmax over the keys (the last axis, dim=-1): each query's row must sum to 1. You normalised "
            "over the queries.":
                scores.masked_fill(~mask, min_value).softmax(dim=-2),
            "Multiplying the scores by the mask sets masked scores to 0, and e⁰ = 1 still gives them weight. Fill them "
            "with a very large negative number instead (torch.finfo(scores.dtype).min).":
                (scores * mask).softmax(dim=-1),
            "You ignored the mask: masked keys must get weight 0.": scores.softmax(dim=-1),
        }
        for hint, variant in wrong.items():
            if not close(variant, expected) and close(out, variant):
                raise CheckFailed(hint)
        if has_empty_row:
            zero_rows = expected.masked_fill(empty[..., None], 0.0)
            if close(out, zero_rows) and not close(zero_rows, expected):
                raise CheckFailed("A row with no allowed key should follow the course's convention: filling with "
                                  "torch.finfo(dtype).min gives it equal weights 1/k_len. You returned zeros "
                                  "(what F.scaled_dot_product_attention does); drop the special case.")
        expect_close(out, expected, "your weights differ from softmax(scores filled with torch.finfo(dtype).min "
                                    "where the mask is False)", atol=atol, rtol=1e-3)


@checker("decoder_self_mask")
def check_decoder_self_mask(decoder_self_mask) -> None:
    """Check ``decoder_self_mask(tokens, pad_id) -> (batch, 1, len, len)``: causal AND not padding."""
    for tokens, pad_id in _token_cases():
        mask = _call_on_tokens(decoder_self_mask, tokens, pad_id)
        batch, length = tokens.shape
        shape = tuple(mask.shape)
        if shape == (batch, length, length):
            raise CheckFailed(f"Keep a dimension for the heads: return (batch, 1, len, len) = "
                              f"{(batch, 1, length, length)}, not (batch, len, len), so the mask broadcasts over "
                              "(batch, heads, q_len, k_len).")
        if shape == (batch, 1, 1, length):
            raise CheckFailed("That is the padding mask alone, (batch, 1, 1, len). AND it with the causal mask "
                              "(1, 1, len, len) to get (batch, 1, len, len).")
        if shape == (1, 1, length, length):
            raise CheckFailed("That is the causal mask alone, the same for every sentence. AND it with the padding "
                              "mask (batch, 1, 1, len) to get (batch, 1, len, len).")
        expect(shape == (batch, 1, length, length),
               f"decoder_self_mask must have shape (batch, 1, len, len) = {(batch, 1, length, length)}, got {shape}")
        grid = mask[:, 0]  # (batch, len, len)
        real = tokens != pad_id  # (batch, len)
        lower = torch.ones(length, length, dtype=torch.bool).tril()  # (len, len)
        keys, queries = real[:, None, :], real[:, :, None]  # (batch, 1, len), (batch, len, 1)
        expected = keys & lower  # (batch, len, len)
        if torch.equal(grid, expected):
            continue
        wrong = {
            "The mask is inverted: True means *may attend*. You returned the blocked pairs (nn.MultiheadAttention's "
            "polarity).": ~expected,
            "Pad keys are still visible: AND the causal mask with the padding mask (tokens != pad_id) on the keys.":
                lower.expand(batch, length, length),
            "Later keys are visible: AND the padding mask with the causal mask (lower triangle, diagonal included).":
                keys.expand(batch, length, length),
            "Combine the two masks with & (AND): a key must be real *and* not in the future. With | (OR) either one "
            "is enough.": keys | lower,
            "Hide the pad *keys* (columns, the last dimension), not the pad queries (rows): your pad rows are all "
            "False, fully masked rows that turn into NaN with −inf. The pad queries' outputs are ignored anyway.":
                queries & lower,  # with right padding and the causal mask, equal to keys & queries & lower
            "Rows are queries and columns keys: query i may see keys 0..i, the lower triangle. You used the upper "
            "triangle.": keys & lower.T,
            "The diagonal is missing: a position may see itself (tril with diagonal=0).":
                keys & lower.tril(diagonal=-1),
        }
        if pad_id != 0:
            wrong[f"Use the pad_id argument (here {pad_id}) instead of a hard-coded 0: with this vocabulary 0 is a "
                  "real token."] = (tokens != 0)[:, None, :] & lower
        for hint, variant in wrong.items():
            if torch.equal(grid, variant):
                raise CheckFailed(hint)
        raise CheckFailed(f"decoder_self_mask({tokens.tolist()}, pad_id={pad_id})[:, 0] should be\n"
                          f"{expected.int()}\ngot\n{grid.int()}")
