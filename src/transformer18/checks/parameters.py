"""Checkers for Q2 (the whole architecture): counting parameters by hand."""

from __future__ import annotations

import torch
from torch import nn

from ._core import checker, diagnose, expect

__all__ = ["check_attention_parameters", "check_encoder_layer_parameters"]


def _numel(build) -> int:
    with torch.device("meta"):  # shapes only, no memory
        return sum(p.numel() for p in build().parameters())


@checker("attention_parameters")
def check_attention_parameters(attention_parameters) -> None:
    """Check ``attention_parameters(d_model, n_heads) -> int`` against ``nn.MultiheadAttention``."""
    for d, n_heads in [(8, 2), (64, 4), (512, 8), (96, 3)]:
        expected, d_k = _numel(lambda: nn.MultiheadAttention(d, n_heads)), d // n_heads
        got = attention_parameters(d, n_heads)
        expect(isinstance(got, int), f"return an int, got {type(got).__name__}")
        one_head = "You counted one head. All heads together project d_model → d_model."
        diagnose(got, expected, [
            (4 * d * d, "Count the biases: each of W_Q, W_K, W_V, W_O is a Linear with a bias of d_model."),
            (3 * d * d + 3 * d, "Don't forget the output projection W_O (d_model × d_model plus bias)."),
            (4 * d * d_k + 4 * d_k, one_head), (4 * d * d_k + 4 * d, one_head),
            (lambda: attention_parameters(d, 1) != got, "The count must not depend on n_heads: h heads of d_k = "
                                                        "d_model/h add up to the same d_model × d_model matrices."),
        ], f"nn.MultiheadAttention({d}, {n_heads}) has {expected:,} parameters, you returned {got:,}.")


@checker("encoder_layer_parameters")
def check_encoder_layer_parameters(encoder_layer_parameters) -> None:
    """Check ``encoder_layer_parameters(d_model, d_ff) -> int`` against ``nn.TransformerEncoderLayer``."""
    for d, d_ff in [(8, 32), (64, 256), (512, 2048), (48, 80)]:
        expected = _numel(lambda: nn.TransformerEncoderLayer(d, 4, d_ff))
        got = encoder_layer_parameters(d, d_ff)
        expect(isinstance(got, int), f"return an int, got {type(got).__name__}")
        diagnose(got, expected, [
            (expected - 4 * d, "Count the two LayerNorms: each has a weight and a bias of d_model."),
            (expected - 2 * d, "There are two LayerNorms per encoder layer (after attention and after the FFN)."),
            (expected - d_ff - d, "The FFN's two Linears have biases too: d_ff for the first, d_model for the second."),
            (expected - 4 * d - d_ff - d, "Count the FFN's biases and the two LayerNorms' weights and biases."),
            (expected - 2 * d_ff * d - d_ff - d, "Count the feed-forward network too: 2·d_model·d_ff weights plus "
                                                 "d_ff + d_model biases."),
        ], f"nn.TransformerEncoderLayer({d}, d_ff={d_ff}) has {expected:,} parameters, you returned {got:,}.")
