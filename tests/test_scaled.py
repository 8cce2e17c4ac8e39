"""Q11: scaled dot-product attention equals PyTorch's and keeps the course's conventions."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer18.attention import attention, dot_product_score
from transformer18.decoder import subsequent_mask
from transformer18.scaled import scaled_dot_product_attention


def random_case(seed: int, mask_kind: str):
    """Random sizes (q_len ≠ k_len, d_k ≠ d_v), 3-D or 4-D, and a mask of the given kind."""
    g = torch.Generator().manual_seed(seed)
    four_d = seed % 2 == 0
    batch, heads = int(torch.randint(1, 4, (1,), generator=g)), int(torch.randint(1, 5, (1,), generator=g))
    q_len, k_len = int(torch.randint(1, 9, (1,), generator=g)), int(torch.randint(2, 12, (1,), generator=g))
    d_k, d_v = int(torch.randint(1, 33, (1,), generator=g)), int(torch.randint(1, 17, (1,), generator=g))
    lead = (batch, heads) if four_d else (batch,)
    query = torch.randn(*lead, q_len, d_k, generator=g)
    key = torch.randn(*lead, k_len, d_k, generator=g)
    value = torch.randn(*lead, k_len, d_v, generator=g)
    if mask_kind == "none":
        return query, key, value, None
    if mask_kind == "padding":
        keep = torch.arange(k_len) < torch.randint(1, k_len + 1, (batch, 1), generator=g)  # (batch, k_len)
        mask = keep[:, None, None, :] if four_d else keep[:, None, :]
    elif mask_kind == "shared":
        mask = torch.rand(q_len, k_len, generator=g) > 0.5
    else:
        mask = torch.rand(*lead, q_len, k_len, generator=g) > 0.5
    mask[..., 0] = True  # no fully masked row: PyTorch and the course differ there on purpose
    return query, key, value, mask


CASES = [(seed, kind) for seed in range(6) for kind in ("none", "padding", "shared", "full")]


@pytest.mark.parametrize("seed, mask_kind", CASES)
def test_equals_torch_sdpa(seed, mask_kind):
    query, key, value, mask = random_case(seed, mask_kind)
    output, weights = scaled_dot_product_attention(query, key, value, mask)
    torch.testing.assert_close(output, F.scaled_dot_product_attention(query, key, value, attn_mask=mask))
    identity = torch.eye(key.size(-2)).expand(*key.shape[:-1], key.size(-2))  # weights · I = weights
    torch.testing.assert_close(weights, F.scaled_dot_product_attention(query, key, identity, attn_mask=mask))


def test_there_are_at_least_twenty_parity_cases_with_and_without_masks():
    assert len(CASES) >= 20
    assert {kind for _, kind in CASES} == {"none", "padding", "shared", "full"}


@pytest.mark.parametrize("size", [1, 4, 9])
def test_causal_mask_equals_is_causal(size):
    g = torch.Generator().manual_seed(size)
    query, key, value = (torch.randn(2, 3, size, d, generator=g) for d in (8, 8, 5))
    output, weights = scaled_dot_product_attention(query, key, value, subsequent_mask(size))
    torch.testing.assert_close(output, F.scaled_dot_product_attention(query, key, value, is_causal=True))
    assert (weights.triu(diagonal=1) == 0).all()


def test_is_q7_attention_at_temperature_sqrt_d_k_and_differs_from_unscaled():
    query, key, value, mask = random_case(3, "full")
    ours = scaled_dot_product_attention(query, key, value, mask)
    q7 = attention(query, key, value, dot_product_score, temperature=math.sqrt(query.size(-1)), mask=mask)
    assert torch.equal(ours[0], q7[0]) and torch.equal(ours[1], q7[1])
    unscaled = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=1.0)
    assert not torch.allclose(ours[0], unscaled)


def test_hand_computed_value():
    # q = (1, 0), keys (1, 0) and (0, 1): scores (1, 0) / √2, weights sigmoid(1/√2) and 1 − that.
    query = torch.tensor([[1.0, 0.0]])
    key = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    value = torch.tensor([[1.0], [3.0]])
    output, weights = scaled_dot_product_attention(query, key, value)
    first = 1 / (1 + math.exp(-1 / math.sqrt(2)))
    torch.testing.assert_close(weights, torch.tensor([[first, 1 - first]]))
    torch.testing.assert_close(output, torch.tensor([[first * 1 + (1 - first) * 3]]))
    assert abs(output.item() - 1.6605) < 1e-4


def test_rows_sum_to_one_and_masked_weights_are_zero():
    query, key, value, mask = random_case(4, "full")
    _, weights = scaled_dot_product_attention(query, key, value, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    assert (weights >= 0).all() and (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def test_fully_masked_row_is_finite_with_uniform_weights():
    query, key, value = torch.randn(2, 4, 6), torch.randn(2, 7, 6), torch.randn(2, 7, 3)
    mask = torch.ones(4, 7, dtype=torch.bool)
    mask[2] = False
    output, weights = scaled_dot_product_attention(query, key, value, mask)
    assert torch.isfinite(output).all() and torch.isfinite(weights).all()
    torch.testing.assert_close(weights[:, 2], torch.full((2, 7), 1 / 7))
    torch.testing.assert_close(output[:, 2], value.mean(-2))


def test_permuting_keys_and_values_together_changes_nothing():
    query, key, value, _ = random_case(1, "none")
    perm = torch.randperm(key.size(-2), generator=torch.Generator().manual_seed(0))
    output, weights = scaled_dot_product_attention(query, key, value)
    output_p, weights_p = scaled_dot_product_attention(query, key[..., perm, :], value[..., perm, :])
    torch.testing.assert_close(output_p, output)
    torch.testing.assert_close(weights_p, weights[..., perm])


def test_dropout_acts_on_the_weights_only_in_training_mode():
    torch.manual_seed(0)
    query, key, value = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 9, 8), torch.randn(2, 3, 9, 4)  # d_k ≠ d_v
    dropout = nn.Dropout(p=0.25)
    plain_out, plain_w = scaled_dot_product_attention(query, key, value)
    eval_out, eval_w = scaled_dot_product_attention(query, key, value, dropout=dropout.eval())
    assert torch.equal(eval_out, plain_out) and torch.equal(eval_w, plain_w)
    train_out, train_w = scaled_dot_product_attention(query, key, value, dropout=dropout.train())
    kept = train_w != 0
    assert 0 < kept.sum() < kept.numel()
    torch.testing.assert_close(train_w[kept], plain_w[kept] / 0.75)  # survivors scaled by 1 / (1 − p)
    torch.testing.assert_close(train_out, train_w @ value)  # the output mixes the dropped weights


def test_gradients_match_torch_sdpa():
    query, key, value, mask = random_case(2, "padding")
    ours = [t.clone().requires_grad_() for t in (query, key, value)]
    theirs = [t.clone().requires_grad_() for t in (query, key, value)]
    scaled_dot_product_attention(*ours, mask)[0].square().sum().backward()
    F.scaled_dot_product_attention(*theirs, attn_mask=mask).square().sum().backward()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.grad, b.grad)


def test_scaled_scores_have_unit_variance_whatever_d_k():
    g = torch.Generator().manual_seed(0)
    for d_k in (4, 64, 1024):
        query, key = torch.randn(5000, 1, d_k, generator=g), torch.randn(5000, 1, d_k, generator=g)
        scores = (query @ key.transpose(-2, -1)).flatten()
        assert abs(scores.var().item() / d_k - 1) < 0.06
        assert abs((scores / math.sqrt(d_k)).var().item() - 1) < 0.06


def test_broadcasts_leading_dimensions():
    query = torch.randn(2, 3, 4, 8)  # (batch, heads, q_len, d_k)
    key, value = torch.randn(1, 1, 6, 8), torch.randn(1, 1, 6, 5)  # shared by every batch and head
    output, weights = scaled_dot_product_attention(query, key, value)
    assert output.shape == (2, 3, 4, 5) and weights.shape == (2, 3, 4, 6)


def test_mask_must_be_bool():
    query, key, value, mask = random_case(0, "shared")
    with pytest.raises(ValueError, match="bool"):
        scaled_dot_product_attention(query, key, value, mask.float())


def test_mask_must_broadcast_to_the_scores():
    query, key, value = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 5)
    for bad in (torch.ones(4, 5, dtype=torch.bool), torch.ones(2, 1, 6, 4, dtype=torch.bool),
                torch.ones(1, 2, 3, 4, 6, dtype=torch.bool)):
        with pytest.raises(ValueError, match="broadcast"):
            scaled_dot_product_attention(query, key, value, bad)


def test_query_and_key_widths_must_match():
    with pytest.raises(ValueError, match=r"same width d_k, got 8 and 7"):
        scaled_dot_product_attention(torch.randn(2, 4, 8), torch.randn(2, 6, 7), torch.randn(2, 6, 5))


def test_key_and_value_lengths_must_match():
    with pytest.raises(ValueError, match=r"same length k_len, got 6 and 5"):
        scaled_dot_product_attention(torch.randn(2, 4, 8), torch.randn(2, 6, 8), torch.randn(2, 5, 8))


def test_inputs_need_two_dimensions_and_a_positive_width():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        scaled_dot_product_attention(torch.randn(8), torch.randn(6, 8), torch.randn(6, 5))
    with pytest.raises(ValueError, match="d_k must be positive"):
        scaled_dot_product_attention(torch.randn(4, 0), torch.randn(6, 0), torch.randn(6, 5))
