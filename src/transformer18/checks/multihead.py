"""Checkers for Q12 (multi-head attention): splitting d_model into heads, and the whole layer."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..multihead import MultiHeadAttention
from ._core import checker, diagnose, expect_tensor

__all__ = ["check_split_heads", "check_multi_head_attention"]

# (batch, len, d_model, n_heads): in the first case every size differs (d_k = 4), so a wrong view or a
# transpose of the wrong pair of dimensions always changes the shape.
_SPLIT_CASES = [(2, 5, 12, 3), (3, 4, 8, 2), (1, 7, 24, 4), (2, 3, 6, 1)]


@checker("split_heads")
def check_split_heads(split_heads) -> None:
    """Check ``split_heads(x, n_heads)``: (batch, len, d_model) → (batch, heads, len, d_k)."""
    for seed, (batch, length, d_model, n_heads) in enumerate(_SPLIT_CASES):
        d_k = d_model // n_heads
        x = torch.randn(batch, length, d_model, generator=torch.Generator().manual_seed(seed))
        expected = x.reshape(batch, length, n_heads, d_k).transpose(1, 2)  # (batch, heads, len, d_k)
        out = split_heads(x.clone(), n_heads)
        expect_tensor(out)
        shape = tuple(out.shape) if out.shape != expected.shape else None
        wrong_pairs = {(batch, d_k, n_heads, length), (batch, length, d_k, n_heads), (n_heads, length, batch, d_k),
                       (d_k, length, n_heads, batch), (length, batch, n_heads, d_k)}
        diagnose(out, expected, [
            (shape == (batch, length, n_heads, d_k), "You stopped at the view (batch, len, heads, d_k). "
             "Transpose dims 1 and 2 so that the heads come before the positions: (batch, heads, len, d_k)."),
            (shape in wrong_pairs, "You transposed the wrong pair of dimensions. From the view (batch, "
             "len, heads, d_k), swap len (dim 1) and heads (dim 2): .transpose(1, 2)."),
            (x.reshape(batch, n_heads, length, d_k), "Heads must split d_model, not len. A view straight to (batch, "
             "heads, len, d_k) cuts the sequence into chunks of positions, so each 'head' sees a few whole tokens "
             "instead of d_k features of every token. View as (batch, len, heads, d_k) first, then transpose dims 1 "
             "and 2."),
            (x.reshape(batch, length, d_k, n_heads).permute(0, 3, 1, 2), "Your heads take interleaved columns (head i "
             "gets features i, i + h, i + 2h, …). Head i must take the contiguous block of columns i·d_k … (i+1)·d_k "
             "− 1, as nn.MultiheadAttention does: view as (batch, len, heads, d_k)."),
        ], "head i of position t must hold x[b, t, i·d_k:(i+1)·d_k]", atol=0, rtol=0,
            shape=f"wrong output shape: split_heads(x of shape {tuple(x.shape)}, n_heads={n_heads}) must be (batch, "
                  "heads, len, d_k)")


def _mha(query, key, value, w_q, w_k, w_v, w_o, n_heads, mask=None, *, scale="d_k", split="features",
         merge="transpose", out_proj=True, invert=False, softmax_dim=-1):
    """Multi-head attention with switches that reproduce common mistakes (for the hints)."""
    batch, q_len, d_model = query.shape
    d_k = d_model // n_heads

    def heads(t):  # (batch, len, d_model) → (batch, heads, len, d_k)
        if split == "len":  # the wrong axis: chunks of positions
            return t.reshape(batch, n_heads, t.size(1), d_k)
        return t.reshape(batch, t.size(1), n_heads, d_k).transpose(1, 2)

    q, k, v = heads(w_q(query)), heads(w_k(key)), heads(w_v(value))  # (batch, heads, len, d_k)
    scores = q @ k.transpose(-2, -1) / {"d_k": math.sqrt(d_k), "d_model": math.sqrt(d_model), None: 1.0}[scale]
    if mask is not None:
        scores = scores.masked_fill(mask if invert else ~mask, torch.finfo(scores.dtype).min)
    out = scores.softmax(dim=softmax_dim) @ v  # (batch, heads, q_len, d_k)
    if split != "len" and merge == "transpose":  # reshaping without it scrambles positions and heads
        out = out.transpose(1, 2)  # (batch, q_len, heads, d_k)
    out = out.reshape(batch, q_len, d_model)  # (batch, q_len, d_model)
    return w_o(out) if out_proj else out


def _linears(d_model: int, generator: torch.Generator) -> list[nn.Linear]:
    """Four d_model → d_model layers with weights large enough for peaked (not uniform) attention."""
    layers = [nn.Linear(d_model, d_model) for _ in range(4)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(torch.randn(d_model, d_model, generator=generator) * 1.5 / math.sqrt(d_model))
            layer.bias.copy_(torch.randn(d_model, generator=generator) * 0.1)
    return layers


def _torch_reference(query, key, value, layers, n_heads, mask):
    """The same computation by ``nn.MultiheadAttention`` with copied weights and the mask's polarity flipped."""
    layer = MultiHeadAttention(query.size(-1), n_heads, dropout=0.0)
    for ours, given in zip((layer.w_q, layer.w_k, layer.w_v, layer.w_o), layers):
        ours.load_state_dict(given.state_dict())
    mha = layer.to_torch()
    kwargs = {}
    if mask is not None and mask.dim() == 2:  # (q_len, k_len): True = may attend; nn wants True = blocked
        kwargs["attn_mask"] = ~mask
    elif mask is not None:  # (batch, 1, 1, k_len) padding mask
        kwargs["key_padding_mask"] = ~mask[:, 0, 0]
    with torch.no_grad():
        return mha(query, key, value, need_weights=False, **kwargs)[0]


def _attention_cases():
    """Self-attention without a mask, cross-attention with a (q_len, k_len) mask and with a padding mask.

    Every mask row allows some keys and blocks others, so an inverted mask never blocks a whole row.
    """
    g = torch.Generator().manual_seed(12)
    cases = []
    # (batch, q_len, k_len, d_model, n_heads, mask kind)
    for batch, q_len, k_len, d_model, n_heads, kind in [(2, 5, 5, 12, 3, None), (3, 4, 6, 8, 2, "band"),
                                                         (2, 3, 7, 16, 4, "padding")]:
        query = torch.randn(batch, q_len, d_model, generator=g)
        key = query if kind is None else torch.randn(batch, k_len, d_model, generator=g)
        value = key if kind is None else torch.randn(batch, k_len, d_model, generator=g)
        masks = {None: None, "band": (torch.arange(q_len)[:, None] - torch.arange(k_len)).abs() <= 1,  # (q_len, k_len)
                 "padding": (torch.arange(k_len) < torch.tensor([[5], [4]]))[:, None, None, :]}  # (batch, 1, 1, k_len)
        mask = masks[kind]
        cases.append((query, key, value, _linears(d_model, g), n_heads, mask))
    return cases


_HINTS = [
    ("Did you scale by √d_k of one head, not √d_model? Each head's scores are dot products of d_k numbers, "
     "so divide them by √(d_model / n_heads).", dict(scale="d_model")),
    ("Scale the scores by 1/√d_k before the softmax (d_k = d_model / n_heads).", dict(scale=None)),
    ("Your heads are split along the wrong axis: split d_model into (n_heads, d_k) for every position, "
     "(batch, len, d_model) → (batch, len, heads, d_k) → transpose → (batch, heads, len, d_k), not the "
     "sequence into chunks of positions.", dict(split="len")),
    ("Don't forget the output projection W_O: after concatenating the heads, apply w_o.", dict(out_proj=False)),
    ("When you merge the heads, transpose (batch, heads, q_len, d_k) back to (batch, q_len, heads, d_k) "
     "before reshaping to (batch, q_len, d_model); reshaping directly scrambles heads and positions.",
     dict(merge="reshape")),
    ("The softmax must run over the keys (the last dimension, dim=-1), so that each query's weights sum "
     "to 1; yours runs over the queries.", dict(softmax_dim=-2)),
    ("True means *may attend* here: fill the scores where the mask is False (masked_fill(~mask, …)), "
     "not where it is True.", dict(invert=True)),
]


@checker("multi_head_attention")
def check_multi_head_attention(multi_head_attention) -> None:
    """Check ``multi_head_attention(query, key, value, w_q, w_k, w_v, w_o, n_heads, mask=None)`` against
    ``nn.MultiheadAttention`` (self-attention, cross-attention, a (q_len, k_len) mask, a padding mask)."""
    for query, key, value, layers, n_heads, mask in _attention_cases():
        expected = _torch_reference(query, key, value, layers, n_heads, mask)  # (batch, q_len, d_model)
        args = (query.clone(), key.clone(), value.clone(), *layers, n_heads)
        kind = "self-attention" if mask is None else f"cross-attention with a mask of shape {tuple(mask.shape)}"
        with torch.no_grad():
            out = multi_head_attention(*args) if mask is None else multi_head_attention(*args, mask=mask.clone())
            diagnose(out, expected, [
                (isinstance(out, tuple), "Return only the output tensor (batch, q_len, d_model), not a tuple."),
                *[(lambda switches=switches: _mha(query, key, value, *layers, n_heads, mask, **switches), hint)
                  for hint, switches in _HINTS],
            ], f"your output differs from nn.MultiheadAttention's ({kind}, {n_heads} heads)",
                shape="the output must be (batch, q_len, d_model)")
