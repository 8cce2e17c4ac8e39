"""Checkers for Q18 (why it works): an encoder layer without its residual connections, and the size in
bytes of the attention weights that make attention's memory quadratic."""

from __future__ import annotations

import torch

from ..model import EncoderLayer
from ._core import checker, diagnose, expect, seeded, unchanged

__all__ = ["check_no_residual_encoder_layer", "check_attention_weights_bytes"]


# ---------------------------------------------------------------- encoder_layer_without_residual


def _layer_cases() -> list[tuple[EncoderLayer, torch.Tensor, torch.Tensor]]:
    """(layer, x, mask): post-norm layers without dropout, in eval mode, whose two norms have different random
    scales and shifts (so norm1, norm2 and no norm all give different outputs); every dimension has its own
    size, and the padding masks hide the last keys of some sequences."""
    g = torch.Generator().manual_seed(18)
    cases = []
    for d_model, n_heads, d_ff, batch, length in ((12, 3, 20, 2, 5), (8, 2, 14, 3, 6)):
        with seeded(18 + d_model):
            layer = EncoderLayer(d_model, n_heads, d_ff, dropout=0.0).eval()
        with torch.no_grad():
            for norm in (layer.norm1, layer.norm2):
                norm.weight.copy_(torch.rand(d_model, generator=g) + 0.5)
                norm.bias.copy_(torch.rand(d_model, generator=g) - 0.5)
        x = torch.randn(batch, length, d_model, generator=g)  # (batch, len, d_model)
        lengths = torch.tensor([length] + [length - 1 - i for i in range(batch - 1)])  # (batch,)
        mask = (torch.arange(length)[None, :] < lengths[:, None])[:, None, None, :]  # (batch, 1, 1, len)
        cases.append((layer, x, mask))
    return cases


def _mistakes(layer: EncoderLayer, x: torch.Tensor, mask: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    """Known-wrong outputs, each with the hint that names its mistake."""
    def attn(h, m=mask):
        return layer.self_attn(h, h, h, m)

    ffn, norm1, norm2 = layer.feed_forward, layer.norm1, layer.norm2
    keep = ("Keep the layer normalisations: only the residual connections go, so each sub-layer computes "
            "Norm(Sublayer(x)).")
    own = "Each sub-layer has its own norm: norm1 after self-attention, norm2 after the feed-forward network."
    skipped = "Don't skip the feed-forward sub-layer: remove the residual connections, not the FFN."
    return [
        (layer(x, mask), "That is the full layer, residual connections included: remove the x + from both "
                         "sub-layers, so each computes Norm(Sublayer(x))."),
        (norm2(ffn(norm1(x + attn(x)))), "You kept the residual connection around self-attention "
                                         "(norm1(x + attention)): remove it too."),
        (norm2(norm1(attn(x)) + ffn(norm1(attn(x)))), "You kept the residual connection around the feed-forward "
                                                      "network (norm2(y + ffn(y))): remove it too."),
        *[(wrong, keep) for wrong in (ffn(attn(x)), norm2(ffn(attn(x))), ffn(norm1(attn(x))))],
        (ffn(norm2(attn(norm1(x)))), "The paper's layer is post-norm: apply norm1 after self-attention and norm2 "
                                     "after the FFN, not before them."),
        *[(second(ffn(first(attn(x)))), own) for first, second in ((norm1, norm1), (norm2, norm2), (norm2, norm1))],
        *[(wrong, skipped) for wrong in (norm1(attn(x)), norm2(norm1(attn(x))))],
        (norm2(ffn(norm1(attn(x, None)))), "Pass the mask to self-attention: padded keys must not be attended to."),
        (norm2(ffn(norm1(layer.self_attn(x, norm1(x), norm1(x), mask)))),
         "Self-attention attends from x to x itself: query, key and value are all x (the layer's input)."),
    ]


@checker("encoder_layer_without_residual")
def check_no_residual_encoder_layer(encoder_layer_without_residual) -> None:
    """Check ``encoder_layer_without_residual(layer, x, mask) -> (batch, len, d_model)``: a post-norm
    ``EncoderLayer`` with both residual connections removed, norm2(ffn(norm1(self_attn(x, x, x, mask))))."""
    for layer, x, mask in _layer_cases():
        with torch.no_grad():
            with unchanged("Do not modify x in place: build new tensors.", x):
                got = encoder_layer_without_residual(layer, x, mask)
            right = layer.norm2(layer.feed_forward(layer.norm1(layer.self_attn(x, x, x, mask))))
            diagnose(got, right, _mistakes(layer, x, mask), "encoder_layer_without_residual differs from "
                     f"norm2(ffn(norm1(self_attn(x, x, x, mask)))) for d_model={layer.d_model}",
                     shape="return (batch, len, d_model), like x")


# ---------------------------------------------------------------- attention_weights_bytes


_BYTE_CASES = [(2, 3, 5, 7, torch.float32), (1, 8, 16, 16, torch.float16), (4, 1, 9, 3, torch.float64),
               (3, 4, 6, 11, torch.bfloat16)]


@checker("attention_weights_bytes")
def check_attention_weights_bytes(attention_weights_bytes) -> None:
    """Check ``attention_weights_bytes(batch, n_heads, q_len, k_len, dtype) -> int``: the bytes of a
    (batch, n_heads, q_len, k_len) tensor of ``dtype``."""
    for batch, n_heads, q_len, k_len, dtype in _BYTE_CASES:
        size = torch.empty((), dtype=dtype).element_size()
        elements = batch * n_heads * q_len * k_len
        expected = elements * size
        call = f"attention_weights_bytes({batch}, {n_heads}, {q_len}, {k_len}, {dtype})"
        got = attention_weights_bytes(batch, n_heads, q_len, k_len, dtype)
        if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.dtype.is_floating_point:
            got = int(got)
        expect(isinstance(got, (int, float)) and not isinstance(got, bool),
               f"return an int (a number of bytes), got {type(got).__name__}")
        expect(not (isinstance(got, float) and got == expected),
               f"return an int, not a float: {call} = {expected} bytes, a whole number.")
        square = ("The weights are q_len × k_len, one per query and key; they differ in cross-attention, where the "
                  "keys come from the source.")
        diagnose(got, expected, [
            (elements * size * 8, "You counted bits: element_size() (or dtype.itemsize) is already in bytes."),
            (elements, "That is the number of elements; multiply by the bytes per element, "
                       "torch.empty((), dtype=dtype).element_size()."),
            (elements * 4, "Bytes per element depend on the dtype: 4 for float32, 2 for float16 and bfloat16, "
                           "8 for float64. Use torch.empty((), dtype=dtype).element_size()."),
            (batch * q_len * k_len * size, "Count every head: each has its own (q_len, k_len) matrix of weights."),
            (n_heads * q_len * k_len * size, "Count every sequence of the batch: the weights are (batch, n_heads, "
                                             "q_len, k_len)."),
            (batch * n_heads * q_len * q_len * size, square),
            (batch * n_heads * k_len * k_len * size, square),
        ], f"{call} should be {expected:,} bytes, got {got:,}", atol=0, rtol=0)
