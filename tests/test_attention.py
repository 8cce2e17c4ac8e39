import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer18.attention import AdditiveScore, attention, dot_product_score

# ---------------------------------------------------------------- hand-computed values


def test_two_keys_by_hand():
    """Scores ln 3 and 0 give weights 3/4 and 1/4; the output is the matching blend of the values."""
    query = torch.tensor([[math.log(3.0), 0.0]])  # (q_len=1, d_k=2)
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # (k_len=2, d_k=2)
    values = torch.tensor([[4.0, 0.0, 1.0], [0.0, 8.0, 1.0]])  # (k_len=2, d_v=3)
    out, weights = attention(query, keys, values)
    torch.testing.assert_close(weights, torch.tensor([[0.75, 0.25]]))
    torch.testing.assert_close(out, torch.tensor([[3.0, 2.0, 1.0]]))


def test_toy_lookup_of_the_chapter():
    keys = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    values = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]])
    out, weights = attention(keys[:1], keys, values)
    z = math.exp(2) + math.exp(1) + 1
    torch.testing.assert_close(weights[0], torch.tensor([math.exp(2) / z, math.exp(1) / z, 1 / z]))
    torch.testing.assert_close(out[0], torch.tensor([4 * math.exp(1) / z, 3 / z]))


def test_dot_product_score_is_every_pairwise_dot_product():
    query, key = torch.randn(2, 5, 3), torch.randn(2, 7, 3)
    scores = dot_product_score(query, key)
    assert scores.shape == (2, 5, 7)
    torch.testing.assert_close(scores, torch.einsum("bid,bjd->bij", query, key))
    torch.testing.assert_close(scores[1, 4, 6], query[1, 4] @ key[1, 6])


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("score", ["dot", "additive"])
def test_rows_are_distributions(score):
    torch.manual_seed(0)
    query, key, value = 3 * torch.randn(2, 5, 6), 3 * torch.randn(2, 7, 6), torch.randn(2, 7, 4)
    fn = dot_product_score if score == "dot" else AdditiveScore(6, 6, 8)
    out, weights = attention(query, key, value, score=fn)
    assert out.shape == (2, 5, 4) and weights.shape == (2, 5, 7)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5))
    torch.testing.assert_close(out, weights @ value)


def test_output_is_inside_the_range_of_the_values():
    torch.manual_seed(1)
    value = torch.randn(9, 2)
    out, _ = attention(torch.randn(4, 3), torch.randn(9, 3), value)
    assert (out >= value.min(0).values).all() and (out <= value.max(0).values).all()


def test_gradients_reach_query_key_and_value():
    query, key, value = (torch.randn(2, 3, 4, requires_grad=True) for _ in range(3))
    attention(query, key, value)[0].square().sum().backward()
    for t in (query, key, value):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_permuting_the_key_value_pairs_permutes_only_the_weights():
    torch.manual_seed(2)
    query, key, value = torch.randn(3, 4), torch.randn(6, 4), torch.randn(6, 5)
    perm = torch.randperm(6)
    out, weights = attention(query, key, value)
    out_p, weights_p = attention(query, key[perm], value[perm])
    torch.testing.assert_close(out_p, out)
    torch.testing.assert_close(weights_p, weights[:, perm])


# ---------------------------------------------------------------- parity with PyTorch


@pytest.mark.parametrize("seed, batch, heads, q_len, k_len, d_k, d_v",
                         [(0, 2, 3, 5, 7, 6, 4), (1, 1, 1, 1, 1, 1, 1), (2, 3, 2, 9, 4, 8, 5), (3, 2, 4, 6, 11, 16, 3)])
@pytest.mark.parametrize("masked", [False, True])
def test_equals_torch_scaled_dot_product_attention(seed, batch, heads, q_len, k_len, d_k, d_v, masked):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, heads, q_len, d_k, generator=g)
    key = torch.randn(batch, heads, k_len, d_k, generator=g)
    value = torch.randn(batch, heads, k_len, d_v, generator=g)
    mask = None
    if masked:
        mask = torch.rand(batch, 1, q_len, k_len, generator=g) < 0.5
        mask[..., seed % k_len] = True  # no fully masked row (PyTorch and we differ there by design)
    out, weights = attention(query, key, value, dot_product_score, temperature=math.sqrt(d_k), mask=mask)
    expected = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    reference = query @ key.transpose(-2, -1) / math.sqrt(d_k)
    if mask is not None:
        reference = reference.masked_fill(~mask, float("-inf"))
    torch.testing.assert_close(weights, reference.softmax(-1))


def test_gradients_equal_torch():
    g = torch.Generator().manual_seed(4)
    tensors = [torch.randn(2, 3, 5, 6, generator=g), torch.randn(2, 3, 7, 6, generator=g),
               torch.randn(2, 3, 7, 4, generator=g)]
    ours = [t.clone().requires_grad_() for t in tensors]
    theirs = [t.clone().requires_grad_() for t in tensors]
    attention(*ours, temperature=math.sqrt(6))[0].square().sum().backward()
    F.scaled_dot_product_attention(*theirs).square().sum().backward()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.grad, b.grad)


# ---------------------------------------------------------------- additive score


def test_additive_score_equals_a_loop_over_pairs():
    torch.manual_seed(5)
    score = AdditiveScore(d_query=3, d_key=4, d_hidden=6)
    query, key = torch.randn(2, 5, 3), torch.randn(2, 7, 4)
    with torch.no_grad():
        fast = score(query, key)
        w_q, w_k, v = score.w_q.weight, score.w_k.weight, score.v.weight[0]
        slow = torch.tensor([[[float(v @ torch.tanh(w_q @ query[b, i] + w_k @ key[b, j])) for j in range(7)]
                              for i in range(5)] for b in range(2)])
    assert fast.shape == (2, 5, 7)
    torch.testing.assert_close(fast, slow)


def test_additive_attention_shapes_and_parameters():
    score = AdditiveScore(d_query=3, d_key=4, d_hidden=6)
    assert sum(p.numel() for p in score.parameters()) == 6 * (3 + 4 + 1)
    out, weights = attention(torch.randn(2, 5, 3), torch.randn(2, 7, 4), torch.randn(2, 7, 8), score=score)
    assert out.shape == (2, 5, 8) and weights.shape == (2, 5, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5))


def test_additive_score_rejects_wrong_widths_and_sizes():
    score = AdditiveScore(3, 4, 6)
    with pytest.raises(ValueError, match="expected query width 3 and key width 4"):
        score(torch.randn(5, 4), torch.randn(7, 4))
    with pytest.raises(ValueError, match="sizes must be positive"):
        AdditiveScore(3, 0, 6)


# ---------------------------------------------------------------- temperature


def test_temperature_limits():
    query, key = torch.tensor([[1.0]]), torch.tensor([[2.0], [1.0], [0.0], [-1.0]])
    value = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0], [4.0, 3.0]])
    out, weights = attention(query, key, value, temperature=0.02)
    torch.testing.assert_close(weights, torch.tensor([[1.0, 0.0, 0.0, 0.0]]), atol=1e-12, rtol=0)
    torch.testing.assert_close(out[0], value[0])
    out, weights = attention(query, key, value, temperature=1e4)
    torch.testing.assert_close(weights, torch.full((1, 4), 0.25), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[0], value.mean(0), atol=1e-3, rtol=0)


def test_temperature_keeps_the_order_and_sharpens_monotonically():
    torch.manual_seed(6)
    query, key, value = torch.randn(1, 4), torch.randn(6, 4), torch.randn(6, 2)
    tops = [attention(query, key, value, temperature=t)[1].max().item() for t in (0.1, 0.5, 1.0, 2.0, 10.0)]
    assert tops == sorted(tops, reverse=True)
    orders = {tuple(attention(query, key, value, temperature=t)[1].argsort().tolist()[0]) for t in (0.3, 1.0, 5.0)}
    assert len(orders) == 1


def test_temperature_is_a_rescaled_query():
    query, key, value = torch.randn(3, 5), torch.randn(4, 5), torch.randn(4, 2)
    torch.testing.assert_close(attention(query / 2.5, key, value)[0], attention(query, key, value, temperature=2.5)[0])


# ---------------------------------------------------------------- masks and dropout


def test_masked_keys_get_zero_weight_and_a_fully_masked_row_stays_finite():
    query, key, value = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    mask[0, 1, 2:] = False
    mask[1, 2] = False  # a query that may attend to nothing
    out, weights = attention(query, key, value, mask=mask)
    assert (weights[0, 1, 2:] == 0).all()  # a partly masked row: exactly 0 on the masked keys
    torch.testing.assert_close(weights[0, 1, :2].sum(), torch.tensor(1.0))
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    torch.testing.assert_close(weights[1, 2], torch.full((5,), 0.2))  # every score equal: a uniform row
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))


def test_a_mask_broadcasts_over_batch_and_queries():
    query, key, value = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    keep = torch.tensor([True, True, False, True, False])
    out_a, _ = attention(query, key, value, mask=keep)  # (k_len,)
    out_b, _ = attention(query, key[:, keep], value[:, keep])
    torch.testing.assert_close(out_a, out_b)


def test_dropout_acts_on_the_weights():
    torch.manual_seed(7)
    query, key, value = torch.randn(3, 4), torch.randn(8, 4), torch.randn(8, 2)
    _, clean = attention(query, key, value)
    drop = nn.Dropout(0.5)
    out, dropped = attention(query, key, value, dropout=drop)
    kept = dropped != 0
    assert (~kept).any() and kept.any()
    torch.testing.assert_close(dropped[kept], 2 * clean[kept])  # survivors rescaled by 1 / (1 - p)
    torch.testing.assert_close(out, dropped @ value)
    drop.eval()
    torch.testing.assert_close(attention(query, key, value, dropout=drop)[1], clean)


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    query, key, value = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    with pytest.raises(ValueError, match="key and value need the same k_len, got 5 and 4"):
        attention(query, key, value[:, :4])
    with pytest.raises(ValueError, match="query and key need the same width, got 3 and 4"):
        attention(query[..., :3], key, value)
    with pytest.raises(ValueError, match="query and key need the same width"):
        dot_product_score(torch.randn(3, 2), torch.randn(5, 4))
    for t in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature must be positive"):
            attention(query, key, value, temperature=t)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        attention(query, key, value, mask=torch.ones(2, 3, 5))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 3\) does not broadcast"):
        attention(query, key, value, mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask of shape \(4, 2, 3, 5\) does not broadcast"):
        attention(query, key, value, mask=torch.ones(4, 2, 3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least 2-D"):
        attention(torch.randn(4), key[0], value[0])
