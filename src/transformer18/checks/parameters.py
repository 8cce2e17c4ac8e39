"""Checkers for Q2 (the whole architecture): counting parameters by hand."""

from __future__ import annotations

import torch
from torch import nn

from ._core import CheckFailed, checker, expect

__all__ = ["check_attention_parameters", "check_encoder_layer_parameters"]


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@checker("attention_parameters")
def check_attention_parameters(attention_parameters) -> None:
    """Check ``attention_parameters(d_model, n_heads) -> int`` against ``nn.MultiheadAttention``."""
    for d_model, n_heads in [(8, 2), (64, 4), (512, 8), (96, 3)]:
        with torch.device("meta"):
            expected = _numel(nn.MultiheadAttention(d_model, n_heads))
        got = attention_parameters(d_model, n_heads)
        expect(isinstance(got, int), f"return an int, got {type(got).__name__}")
        d_k = d_model // n_heads
        if got == 4 * d_model * d_model:
            raise CheckFailed("Count the biases: each of W_Q, W_K, W_V, W_O is a Linear with a bias of d_model.")
        if got == 3 * d_model * d_model + 3 * d_model:
            raise CheckFailed("Don't forget the output projection W_O (d_model × d_model plus bias).")
        if got in (4 * d_model * d_k + 4 * d_k, 4 * d_model * d_k + 4 * d_model):
            raise CheckFailed("You counted one head. All heads together project d_model → d_model.")
        other = attention_parameters(d_model, 1)
        if other != got:
            raise CheckFailed("The count must not depend on n_heads: h heads of d_k = d_model/h "
                              "add up to the same d_model × d_model matrices.")
        expect(got == expected, f"nn.MultiheadAttention({d_model}, {n_heads}) has {expected:,} parameters, "
                                f"you returned {got:,}.")


@checker("encoder_layer_parameters")
def check_encoder_layer_parameters(encoder_layer_parameters) -> None:
    """Check ``encoder_layer_parameters(d_model, d_ff) -> int`` against ``nn.TransformerEncoderLayer``."""
    for d_model, d_ff in [(8, 32), (64, 256), (512, 2048), (48, 80)]:
        with torch.device("meta"):
            expected = _numel(nn.TransformerEncoderLayer(d_model, 4, d_ff))
        got = encoder_layer_parameters(d_model, d_ff)
        expect(isinstance(got, int), f"return an int, got {type(got).__name__}")
        if got == expected - 4 * d_model:
            raise CheckFailed("Count the two LayerNorms: each has a weight and a bias of d_model.")
        if got == expected - 2 * d_model:
            raise CheckFailed("There are two LayerNorms per encoder layer (after attention and after the FFN).")
        if got == expected - d_ff - d_model:
            raise CheckFailed("The FFN's two Linears have biases too: d_ff for the first, d_model for the second.")
        if got == expected - 4 * d_model - d_ff - d_model:
            raise CheckFailed("Count the FFN's biases and the two LayerNorms' weights and biases.")
        if got == expected - 2 * d_ff * d_model - d_ff - d_model:
            raise CheckFailed("Count the feed-forward network too: 2·d_model·d_ff weights plus d_ff + d_model biases.")
        expect(got == expected, f"nn.TransformerEncoderLayer({d_model}, d_ff={d_ff}) has {expected:,} "
                                f"parameters, you returned {got:,}.")
