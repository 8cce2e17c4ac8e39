"""Checkers for Q13 (masked attention): the padding mask, a masked softmax, the decoder's self-attention mask.

The causal mask's checker is Q4's ``check_subsequent_mask`` (``checks/decoder.py``).
"""

from __future__ import annotations

import torch

from ._core import CheckFailed, call, checker, diagnose, expect_tensor, unchanged

__all__ = ["check_padding_mask", "check_masked_softmax", "check_decoder_self_mask"]

# (tokens, pad_id): right-padded with pad 0, then pad id 3 with real ids 0, 1 and 2, so that a hard-coded 0
# or a ``tokens > pad_id`` comparison shows. Batch and length differ in every case.
_TOKEN_CASES = [(torch.tensor([[5, 6, 7, 0, 0], [8, 0, 0, 0, 0], [4, 5, 6, 7, 9]]), 0),
                (torch.tensor([[0, 1, 9, 3, 3, 3], [2, 7, 4, 1, 0, 3]]), 3)]


def _mask_of(fn, tokens: torch.Tensor, pad_id: int, shape: str, wanted: tuple, shape_mistakes: list):
    """Run ``fn(tokens, pad_id)``; check that it leaves tokens alone and returns a bool mask of shape ``wanted``."""
    with unchanged("Do not modify tokens in place: build a new tensor.", given := tokens.clone()):
        out = fn(given, pad_id)
    expect_tensor(out)
    if out.dtype != torch.bool:
        raise CheckFailed(f"Return a bool mask (True = may attend), not a {out.dtype} one: attention fills the "
                          "scores where the mask is False, and an integer or float 0/1 mask is easy to misuse.")
    diagnose(tuple(out.shape), wanted, shape_mistakes,
             f"{shape} = {wanted}, got {tuple(out.shape)}")
    return out


@checker("padding_mask")
def check_padding_mask(padding_mask) -> None:
    """Check ``padding_mask(tokens, pad_id) -> (batch, 1, 1, len)`` bool, True at real tokens."""
    for tokens, pad_id in _TOKEN_CASES:
        (batch, length), real = tokens.shape, tokens != pad_id  # real: (batch, len)
        mask = _mask_of(padding_mask, tokens, pad_id, "padding_mask must have shape (batch, 1, 1, len)",
                        (batch, 1, 1, length), [
            ((batch, length), f"Shape (batch, len) = {(batch, length)} does not broadcast over heads and queries: "
                              "against scores (batch, heads, q_len, k_len) PyTorch lines dimensions up from the "
                              "right, so your batch would meet q_len. Return (batch, 1, 1, len)."),
            ((batch, 1, length, 1), "Shape (batch, 1, len, 1) masks queries (rows) instead of keys (columns): every "
                                    "query would still read the pads, and a pad query would see nothing. Put len "
                                    "last: (batch, 1, 1, len)."),
        ])
        diagnose(mask[:, 0, 0], real, [
            (~real, "The mask is inverted: True must mark the real tokens (may attend), False the pads. True on the "
                    "pads is nn.MultiheadAttention's key_padding_mask polarity, not ours."),
            (tokens != 0, f"Use the pad_id argument (here {pad_id}) instead of a hard-coded 0: with this vocabulary "
                          "0 is a real token."),
            (tokens > pad_id, "Compare with != pad_id: ids smaller than pad_id are real tokens too."),
        ], f"padding_mask({tokens.tolist()}, pad_id={pad_id})[:, 0, 0] should be {real.tolist()}, got "
           f"{mask[:, 0, 0].tolist()}")


def _softmax_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(scores, mask): scores (batch 2, heads 3, q_len 4, k_len 5), then the same with one row fully masked,
    then a float16 (q_len 3, k_len 6) case with a fully masked row."""
    g = torch.Generator().manual_seed(13)
    scores = torch.randn(2, 3, 4, 5, generator=g) * 2  # (batch, heads, q_len, k_len)
    keys = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None, :]  # (batch, 1, 1, k_len)
    near = torch.ones(4, 5, dtype=torch.bool).tril(diagonal=1)[None, None]  # (1, 1, q_len, k_len)
    mask = keys & near  # (batch, 1, q_len, k_len): every row keeps key 0
    empty_row = mask.clone()
    empty_row[0, 0, 2] = False  # batch 0, query 2: no allowed key, in every head
    half = (torch.randn(3, 6, generator=g) * 3).half()  # (q_len, k_len)
    half_mask = torch.tensor([[1, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 1, 1]], dtype=torch.bool)
    return [(scores, mask), (scores, empty_row), (half, half_mask)]


@checker("masked_softmax")
def check_masked_softmax(masked_softmax) -> None:
    """Check ``masked_softmax(scores, mask)``: weights over the last axis, 0 on masked keys, finite everywhere."""
    for scores, mask in _softmax_cases():
        with unchanged("Do not modify scores or mask in place (masked_fill_, +=): use masked_fill, which returns a "
                       "copy.", scores, mask):
            out = call(masked_softmax, scores, mask, errors={} if scores.dtype != torch.float16 else {
                "overflow": "A fixed large negative number such as −1e9 does not fit in float16 (its most negative "
                            "value is −65504). Use torch.finfo(scores.dtype).min, which fits every dtype."})
        min_value = torch.finfo(scores.dtype).min
        expected = scores.masked_fill(~mask, min_value).softmax(dim=-1)
        empty = ~mask.expand(scores.shape).any(dim=-1)  # (..., q_len): rows with no allowed key
        nan = torch.isnan(out) if isinstance(out, torch.Tensor) and out.shape == scores.shape else None
        diagnose(out, expected, [
            (lambda: bool(empty.any() and nan[empty].all() and not nan[~empty].any()),
             "A row whose keys are all masked came out NaN: the softmax of a row of −∞ is 0/0. Fill with "
             "torch.finfo(scores.dtype).min instead of −inf (a fixed −1e9 also becomes −inf in float16); the row "
             "then stays finite."),
            (lambda: bool(nan.any()), "Your weights contain NaN. Fill the masked scores with "
                                      "torch.finfo(scores.dtype).min."),
            (scores.masked_fill(mask, min_value).softmax(dim=-1),
             "The mask is inverted: True means *may attend*, so fill the scores where the mask is False (~mask)."),
            (scores.softmax(dim=-1).masked_fill(~mask, 0.0),
             "Zeroing the masked weights after the softmax leaves rows that no longer sum to 1. Mask the scores "
             "before the softmax so that the remaining weights renormalise."),
            (scores.masked_fill(~mask, min_value).softmax(dim=-2),
             "Take the softmax over the keys (the last axis, dim=-1): each query's row must sum to 1. You "
             "normalised over the queries."),
            ((scores * mask).softmax(dim=-1),
             "Multiplying the scores by the mask sets masked scores to 0, and e⁰ = 1 still gives them weight. Fill "
             "them with a very large negative number instead (torch.finfo(scores.dtype).min)."),
            (scores.softmax(dim=-1), "You ignored the mask: masked keys must get weight 0."),
            (expected.masked_fill(empty[..., None], 0.0),
             "A row with no allowed key should follow the course's convention: filling with torch.finfo(dtype).min "
             "gives it equal weights 1/k_len. You returned zeros (what F.scaled_dot_product_attention does); drop "
             "the special case."),
        ], "your weights differ from softmax(scores filled with torch.finfo(dtype).min where the mask is False)",
            shape="return weights of the scores' shape", atol=1e-3 if scores.dtype == torch.float16 else 1e-5,
            rtol=1e-3)


@checker("decoder_self_mask")
def check_decoder_self_mask(decoder_self_mask) -> None:
    """Check ``decoder_self_mask(tokens, pad_id) -> (batch, 1, len, len)``: causal AND not padding."""
    for tokens, pad_id in _TOKEN_CASES:
        batch, length = tokens.shape
        mask = _mask_of(decoder_self_mask, tokens, pad_id, "decoder_self_mask must have shape (batch, 1, len, len)",
                        (batch, 1, length, length), [
            ((batch, length, length), f"Keep a dimension for the heads: return (batch, 1, len, len) = "
                                      f"{(batch, 1, length, length)}, not (batch, len, len), so the mask broadcasts "
                                      "over (batch, heads, q_len, k_len)."),
            ((batch, 1, 1, length), "That is the padding mask alone, (batch, 1, 1, len). AND it with the causal "
                                    "mask (1, 1, len, len) to get (batch, 1, len, len)."),
            ((1, 1, length, length), "That is the causal mask alone, the same for every sentence. AND it with the "
                                     "padding mask (batch, 1, 1, len) to get (batch, 1, len, len)."),
        ])
        real = tokens != pad_id  # (batch, len)
        lower = torch.ones(length, length, dtype=torch.bool).tril()  # (len, len)
        keys, queries = real[:, None, :], real[:, :, None]  # (batch, 1, len), (batch, len, 1)
        expected = keys & lower  # (batch, len, len)
        diagnose(mask[:, 0], expected, [
            (~expected, "The mask is inverted: True means *may attend*. You returned the blocked pairs "
                        "(nn.MultiheadAttention's polarity)."),
            (lower.expand(batch, length, length), "Pad keys are still visible: AND the causal mask with the "
                                                  "padding mask (tokens != pad_id) on the keys."),
            (keys.expand(batch, length, length), "Later keys are visible: AND the padding mask with the causal mask "
                                                 "(lower triangle, diagonal included)."),
            (keys | lower, "Combine the two masks with & (AND): a key must be real *and* not in the future. With | "
                           "(OR) either one is enough."),
            (queries & lower,  # with right padding and the causal mask, equal to keys & queries & lower
             "Hide the pad *keys* (columns, the last dimension), not the pad queries (rows): your pad rows are all "
             "False, fully masked rows that turn into NaN with −inf. The pad queries' outputs are ignored anyway."),
            (keys & lower.T, "Rows are queries and columns keys: query i may see keys 0..i, the lower triangle. You "
                             "used the upper triangle."),
            (keys & lower.tril(diagonal=-1), "The diagonal is missing: a position may see itself (tril with "
                                             "diagonal=0)."),
            ((tokens != 0)[:, None, :] & lower, f"Use the pad_id argument (here {pad_id}) instead of a hard-coded "
                                                "0: with this vocabulary 0 is a real token."),
        ], f"decoder_self_mask({tokens.tolist()}, pad_id={pad_id})[:, 0] should be\n{expected.int()}\ngot\n"
           f"{mask[:, 0].int()}")
