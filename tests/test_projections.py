import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer18.attention import attention
from transformer18.multihead import MultiHeadAttention
from transformer18.projections import SingleHeadAttention


def projected(head, query, key, value):
    return head.w_q(query), head.w_k(key), head.w_v(value)


@pytest.mark.parametrize("seed, batch, q_len, k_len, d_model, d_k, d_v", [
    (0, 2, 5, 5, 12, 4, 6),  # self-attention shapes
    (1, 3, 4, 9, 8, 8, 8),
    (2, 1, 1, 6, 10, 3, 7),  # one query
    (3, 2, 7, 2, 6, 16, 2),  # d_k wider than d_model
])
def test_equals_sdpa_on_the_projected_tensors(seed, batch, q_len, k_len, d_model, d_k, d_v):
    torch.manual_seed(seed)
    head = SingleHeadAttention(d_model, d_k, d_v)
    query, memory = torch.randn(batch, q_len, d_model), torch.randn(batch, k_len, d_model)
    out = head(query, memory, memory)
    expected = F.scaled_dot_product_attention(*projected(head, query, memory, memory))
    assert out.shape == (batch, q_len, d_v)
    torch.testing.assert_close(out, expected)


def copy_into_mha(head: SingleHeadAttention) -> nn.MultiheadAttention:
    """One head as nn.MultiheadAttention: Q12's one-head layer with the head's W_Q, W_K, W_V and W_O = I."""
    one_head = MultiHeadAttention(head.d_model, 1)
    one_head.load_state_dict({**head.state_dict(), "w_o.weight": torch.eye(head.d_model),
                              "w_o.bias": torch.zeros(head.d_model)})
    return one_head.to_torch()


@pytest.mark.parametrize("seed, batch, q_len, k_len, d_model", [(0, 2, 5, 5, 12), (1, 3, 4, 9, 8), (2, 1, 6, 2, 16)])
@pytest.mark.parametrize("masked", [False, True])
def test_equals_one_head_multihead_attention_with_identity_out_proj(seed, batch, q_len, k_len, d_model, masked):
    torch.manual_seed(seed)
    head = SingleHeadAttention(d_model, d_model, d_model)
    mha = copy_into_mha(head)
    query, memory = torch.randn(batch, q_len, d_model), torch.randn(batch, k_len, d_model)
    mask = None
    if masked:
        mask = torch.rand(q_len, k_len) > 0.4
        mask[:, 0] = True  # every query may attend somewhere
    expected, expected_weights = mha(query, memory, memory, attn_mask=None if mask is None else ~mask)
    out = head(query, memory, memory, mask=mask)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(head.attn_weights, expected_weights)


def test_self_attention_equals_multihead_attention_and_gradients_match():
    torch.manual_seed(4)
    head = SingleHeadAttention(10, 10, 10)
    mha = copy_into_mha(head)
    x = torch.randn(2, 7, 10)
    head(x, x, x).square().sum().backward()
    mha(x, x, x)[0].square().sum().backward()
    torch.testing.assert_close(head.w_k.weight.grad, mha.in_proj_weight.grad[10:20])
    torch.testing.assert_close(head.w_v.bias.grad, mha.in_proj_bias.grad[20:])


def test_cross_attention_with_different_lengths_and_widths():
    head = SingleHeadAttention(12, 4, 6)
    query, memory = torch.randn(2, 5, 12), torch.randn(2, 7, 12)
    out = head(query, memory, memory)
    assert out.shape == (2, 5, 6)
    assert head.attn_weights.shape == (2, 5, 7)
    assert head.w_q.weight.shape == head.w_k.weight.shape == (4, 12) and head.w_v.weight.shape == (6, 12)


def test_weights_are_kept_and_rows_sum_to_one():
    head = SingleHeadAttention(9, 3, 5)
    assert head.attn_weights is None
    head(torch.randn(4, 6, 9), torch.randn(4, 8, 9), torch.randn(4, 8, 9))
    assert head.attn_weights.shape == (4, 6, 8)
    assert (head.attn_weights >= 0).all()
    torch.testing.assert_close(head.attn_weights.sum(-1), torch.ones(4, 6))


@pytest.mark.parametrize("mask_shape", [(5, 7), (2, 1, 7), (2, 5, 7)])
def test_mask_passes_through_like_sdpa(mask_shape):
    torch.manual_seed(5)
    head = SingleHeadAttention(12, 4, 6)
    query, memory = torch.randn(2, 5, 12), torch.randn(2, 7, 12)
    mask = torch.rand(mask_shape) > 0.5
    mask[..., 2] = True  # no query is left without a key
    out = head(query, memory, memory, mask=mask)
    expected = F.scaled_dot_product_attention(*projected(head, query, memory, memory), attn_mask=mask)
    torch.testing.assert_close(out, expected)
    assert (head.attn_weights.masked_select(~mask.expand(2, 5, 7)) == 0).all()


def test_fully_masked_row_stays_finite():
    head = SingleHeadAttention(6, 2, 3)
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1] = False
    out = head(torch.randn(1, 4, 6), torch.randn(1, 5, 6), torch.randn(1, 5, 6), mask=mask)
    assert torch.isfinite(out).all()


def test_hand_computed_zero_query_gives_the_mean_value():
    """A query projection of zeros scores every key 0: uniform weights, output = mean of the values."""
    head = SingleHeadAttention(6, 2, 3)
    with torch.no_grad():
        head.w_q.weight.zero_()
        head.w_q.bias.zero_()
    memory = torch.randn(2, 5, 6)
    out = head(torch.randn(2, 4, 6), memory, memory)
    torch.testing.assert_close(head.attn_weights, torch.full((2, 4, 5), 0.2))
    torch.testing.assert_close(out, head.w_v(memory).mean(dim=1, keepdim=True).expand(2, 4, 3))


def test_identity_projections_give_raw_attention_at_temperature_sqrt_d_model():
    head = SingleHeadAttention(8, 8, 8)
    with torch.no_grad():
        for linear in (head.w_q, head.w_k, head.w_v):
            linear.weight.copy_(torch.eye(8))
            linear.bias.zero_()
    x = torch.randn(3, 5, 8)
    expected, weights = attention(x, x, x, temperature=math.sqrt(8))
    torch.testing.assert_close(head(x, x, x), expected)
    torch.testing.assert_close(head.attn_weights, weights)
    scores = x @ x.transpose(-2, -1)
    torch.testing.assert_close(scores, scores.transpose(-2, -1))  # raw X: symmetric scores


def test_projections_make_the_scores_asymmetric():
    torch.manual_seed(6)
    head = SingleHeadAttention(8, 4, 4)
    x = torch.randn(1, 6, 8)
    scores = head.w_q(x) @ head.w_k(x).transpose(-2, -1)
    assert (scores - scores.transpose(-2, -1)).abs().max() > 0.1


@pytest.mark.parametrize("d_model, d_k, d_v", [(12, 4, 6), (512, 64, 64), (10, 2, 7)])
def test_parameter_count(d_model, d_k, d_v):
    head = SingleHeadAttention(d_model, d_k, d_v)
    assert sum(p.numel() for p in head.parameters()) == 2 * (d_model * d_k + d_k) + d_model * d_v + d_v


def test_three_separate_projections():
    head = SingleHeadAttention(6, 3, 3)
    assert len({id(head.w_q.weight), id(head.w_k.weight), id(head.w_v.weight)}) == 3
    assert not torch.equal(head.w_q.weight, head.w_k.weight)


@pytest.mark.parametrize("sizes, name", [((0, 4, 4), "d_model"), ((8, -1, 4), "d_k"), ((8, 4, 0), "d_v"),
                                         ((8, 2.5, 4), "d_k"), ((True, 4, 4), "d_model")])
def test_bad_sizes_are_value_errors(sizes, name):
    with pytest.raises(ValueError, match=f"{name} must be a positive int"):
        SingleHeadAttention(*sizes)


@pytest.mark.parametrize("which", ["query", "key", "value"])
def test_wrong_input_width_is_a_value_error(which):
    head = SingleHeadAttention(8, 4, 4)
    inputs = {"query": torch.randn(2, 3, 8), "key": torch.randn(2, 5, 8), "value": torch.randn(2, 5, 8)}
    inputs[which] = torch.randn(*inputs[which].shape[:2], 7)
    with pytest.raises(ValueError, match=f"{which} has last dimension 7, expected d_model=8"):
        head(**inputs)


def test_key_and_value_lengths_must_agree():
    head = SingleHeadAttention(8, 4, 4)
    with pytest.raises(ValueError, match="same k_len"):
        head(torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 6, 8))


@pytest.mark.parametrize("mask", [torch.ones(3, 5), torch.ones(3, 5, dtype=torch.long)])
def test_non_bool_mask_is_a_value_error(mask):
    head = SingleHeadAttention(8, 4, 4)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        head(torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8), mask=mask)


def test_mask_of_the_wrong_shape_is_a_value_error():
    head = SingleHeadAttention(8, 4, 4)
    with pytest.raises(ValueError, match="does not broadcast"):
        head(torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8), mask=torch.ones(5, 3, dtype=torch.bool))
