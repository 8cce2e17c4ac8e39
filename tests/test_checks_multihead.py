"""The Q12 checkers accept the reference solutions and reject known-wrong code with the right hint."""

import math

import pytest
import torch
from conftest import rejects

from transformer18 import checks

# ---------------------------------------------------------------- split_heads


def split_heads(x, n_heads):
    batch, length, d_model = x.shape
    return x.view(batch, length, n_heads, d_model // n_heads).transpose(1, 2)


def test_split_heads_accepts_the_reference(accepts):
    accepts(checks.check_split_heads, split_heads)


def test_split_heads_accepts_einops_style_permute(accepts):
    accepts(checks.check_split_heads, lambda x, h: x.unflatten(-1, (h, -1)).permute(0, 2, 1, 3))


def _dims(x, n_heads):
    batch, length, d_model = x.shape
    return batch, length, n_heads, d_model // n_heads


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, h: x.view(_dims(x, h)[0], h, x.shape[1], -1), "Heads must split d_model, not len"),
    (lambda x, h: x.view(*_dims(x, h)), r"stopped at the view \(batch, len, heads, d_k\)"),
    (lambda x, h: x.view(*_dims(x, h)).transpose(1, 3), "transposed the wrong pair of dimensions"),
    (lambda x, h: x.view(*_dims(x, h)).transpose(2, 3), "transposed the wrong pair of dimensions"),
    (lambda x, h: x.view(*_dims(x, h)).transpose(0, 2), "transposed the wrong pair of dimensions"),
    (lambda x, h: x.unsqueeze(1), "wrong output shape"),
    (lambda x, h: x.view(*_dims(x, h)).transpose(1, 2).reshape(x.shape[0], h, -1), "wrong output shape"),
    (lambda x, h: x.view(x.shape[0], x.shape[1], -1, h).permute(0, 3, 1, 2), "interleaved columns"),
    (lambda x, h: split_heads(x, h).flip(1), "head i of position t must hold"),
    (lambda x, h: split_heads(x, h).tolist(), "return a tensor"),
])
def test_split_heads_rejects_wrong_code(wrong, hint):
    rejects(checks.check_split_heads, wrong, hint)


# ---------------------------------------------------------------- multi_head_attention


def multi_head_attention(query, key, value, w_q, w_k, w_v, w_o, n_heads, mask=None, *, scale=True,
                         d_model_scale=False, wrong_axis=False, project=True, merge_transposes=True,
                         invert=False, softmax_dim=-1, as_tuple=False):
    """The reference, with switches for the mistakes the checker names."""
    batch, q_len, d_model = query.shape
    d_k = d_model // n_heads

    def split(t):
        if wrong_axis:
            return t.view(batch, n_heads, t.shape[1], d_k)
        return t.view(batch, t.shape[1], n_heads, d_k).transpose(1, 2)

    q, k, v = split(w_q(query)), split(w_k(key)), split(w_v(value))
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(d_model if d_model_scale else d_k)
    if mask is not None:
        scores = scores.masked_fill(mask if invert else ~mask, float("-inf"))
    heads = torch.softmax(scores, dim=softmax_dim) @ v
    if wrong_axis or not merge_transposes:
        merged = heads.reshape(batch, q_len, d_model)
    else:
        merged = heads.transpose(1, 2).reshape(batch, q_len, d_model)
    out = w_o(merged) if project else merged
    return (out, None) if as_tuple else out


def variant(**switches):
    return lambda *args, **kwargs: multi_head_attention(*args, **kwargs, **switches)


def test_multi_head_attention_accepts_the_reference(accepts):
    accepts(checks.check_multi_head_attention, multi_head_attention)


def test_multi_head_attention_accepts_the_course_module(capsys):
    from transformer18.multihead import merge_heads
    from transformer18.multihead import split_heads as course_split
    from transformer18.scaled import scaled_dot_product_attention

    def course(query, key, value, w_q, w_k, w_v, w_o, n_heads, mask=None):
        q, k, v = (course_split(w(t), n_heads) for w, t in ((w_q, query), (w_k, key), (w_v, value)))
        return w_o(merge_heads(scaled_dot_product_attention(q, k, v, mask)[0]))

    checks.check_multi_head_attention(course)
    assert "✓ multi_head_attention" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (variant(d_model_scale=True), "scale by √d_k of one head, not √d_model"),
    (variant(scale=False), r"Scale the scores by 1/√d_k"),
    (variant(wrong_axis=True), "split along the wrong axis"),
    (variant(project=False), "output projection W_O"),
    (variant(merge_transposes=False), "transpose .* back to"),
    (variant(softmax_dim=-2), "softmax must run over the keys"),
    (variant(invert=True), "True means \\*may attend\\*"),
    (variant(as_tuple=True), "not a tuple"),
    (lambda *a, **k: multi_head_attention(*a, **k)[:, :-1], r"must be \(batch, q_len, d_model\)"),
    (lambda *a, **k: multi_head_attention(*a, **k).tolist(), "return a tensor"),
    (variant(d_model_scale=True, project=False), "differs from nn.MultiheadAttention's"),
    (lambda q, k, v, *rest, mask=None: multi_head_attention(q, k, v, *rest), "cross-attention with a mask"),
])
def test_multi_head_attention_rejects_wrong_code(wrong, hint):
    rejects(checks.check_multi_head_attention, wrong, hint)
