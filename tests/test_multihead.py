import math

import pytest
import torch
from torch import nn

from transformer18.multihead import MultiHeadAttention, merge_heads, split_heads


def random_case(seed: int):
    """Random sizes, self- or cross-attention, and one of four mask kinds (no row fully masked)."""
    g = torch.Generator().manual_seed(seed)

    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=g))]

    batch, n_heads, d_k = pick([1, 2, 3]), pick([1, 2, 3, 4, 6]), pick([1, 2, 3, 5])
    d_model = n_heads * d_k
    q_len = pick([1, 2, 4, 7])
    cross = seed % 2 == 1
    k_len = pick([1, 3, 5, 8]) if cross else q_len
    kind = ["none", "pattern", "padding", "per-sequence"][(seed // 2) % 4]
    query = torch.randn(batch, q_len, d_model, generator=g)
    key = torch.randn(batch, k_len, d_model, generator=g) if cross else query
    value = torch.randn(batch, k_len, d_model, generator=g) if cross else query

    def ensure_rows(mask):  # every query may attend to at least one key
        rows = mask.reshape(-1, k_len)
        rows[torch.arange(rows.size(0)), torch.randint(k_len, (rows.size(0),), generator=g)] = True
        return rows.reshape(mask.shape)

    torch_kwargs, mask = {}, None
    if kind == "pattern":
        mask = ensure_rows(torch.rand(q_len, k_len, generator=g) < 0.6)  # (q_len, k_len)
        torch_kwargs["attn_mask"] = ~mask
    elif kind == "padding":
        lengths = torch.randint(1, k_len + 1, (batch,), generator=g)
        mask = (torch.arange(k_len) < lengths[:, None])[:, None, None, :]  # (batch, 1, 1, k_len)
        torch_kwargs["key_padding_mask"] = ~mask[:, 0, 0]
    elif kind == "per-sequence":
        mask = ensure_rows(torch.rand(batch, 1, q_len, k_len, generator=g) < 0.6)  # (batch, 1, q_len, k_len)
        expanded = (~mask).expand(batch, n_heads, q_len, k_len).reshape(batch * n_heads, q_len, k_len)
        torch_kwargs["attn_mask"] = expanded
    return d_model, n_heads, (query, key, value), mask, torch_kwargs


@pytest.mark.parametrize("seed", range(24))
def test_equals_nn_multihead_attention(seed):
    d_model, n_heads, (query, key, value), mask, torch_kwargs = random_case(seed)
    torch.manual_seed(seed)
    ours = MultiHeadAttention(d_model, n_heads).eval()
    reference = ours.to_torch()
    with torch.no_grad():
        expected, expected_weights = reference(query, key, value, average_attn_weights=False, **torch_kwargs)
        out = ours(query, key, value, mask=mask)
    assert out.shape == (query.size(0), query.size(1), d_model)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(ours.attn_weights, expected_weights)


def test_gradients_equal_nn_multihead_attention():
    torch.manual_seed(0)
    ours = MultiHeadAttention(12, 3)
    reference = ours.to_torch()
    query, memory = torch.randn(2, 4, 12), torch.randn(2, 6, 12)
    ours(query, memory, memory).square().sum().backward()
    reference(query, memory, memory, need_weights=False)[0].square().sum().backward()
    torch.testing.assert_close(torch.cat([ours.w_q.weight.grad, ours.w_k.weight.grad, ours.w_v.weight.grad]),
                               reference.in_proj_weight.grad)
    torch.testing.assert_close(ours.w_o.bias.grad, reference.out_proj.bias.grad)


def test_from_torch_copies_the_weights():
    torch.manual_seed(1)
    reference = nn.MultiheadAttention(10, 5, batch_first=True)
    nn.init.normal_(reference.in_proj_bias)  # nn starts with zero biases: make them matter
    ours = MultiHeadAttention.from_torch(reference)
    x, memory = torch.randn(3, 4, 10), torch.randn(3, 2, 10)
    torch.testing.assert_close(ours(x, memory, memory), reference(x, memory, memory, need_weights=False)[0])
    assert (ours.d_model, ours.n_heads, ours.d_k) == (10, 5, 2)


@pytest.mark.parametrize("kwargs", [dict(bias=False), dict(kdim=6), dict(add_bias_kv=True), dict(add_zero_attn=True)])
def test_from_torch_rejects_other_layouts(kwargs):
    with pytest.raises(ValueError, match="from_torch needs"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, batch_first=True, **kwargs))


def test_two_heads_by_hand():
    """d_model 2, two heads of d_k = 1, identity projections: each head attends along one coordinate."""
    layer = MultiHeadAttention(2, 2)
    with torch.no_grad():
        for linear in (layer.w_q, layer.w_k, layer.w_v, layer.w_o):
            linear.weight.copy_(torch.eye(2))
            linear.bias.zero_()
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (batch=1, len=2, d_model=2)
    s = math.e / (1 + math.e)  # softmax([1, 0])[0]
    # head 1 (column 0): token 1 scores [1, 0] → s on itself; token 2 scores [0, 0] → 1/2 each
    # head 2 (column 1): token 1 scores [0, 0] → 1/2 each; token 2 scores [0, 1] → s on itself
    torch.testing.assert_close(layer(x, x, x), torch.tensor([[[s, 0.5], [0.5, s]]]))
    torch.testing.assert_close(layer.attn_weights[0, 0], torch.tensor([[s, 1 - s], [0.5, 0.5]]))
    torch.testing.assert_close(layer.attn_weights[0, 1], torch.tensor([[0.5, 0.5], [1 - s, s]]))
    # one head of width 2 must share one softmax: the scores are q·k/√2 over both coordinates
    single = MultiHeadAttention(2, 1)
    single.load_state_dict(layer.state_dict())
    t = math.exp(1 / math.sqrt(2)) / (1 + math.exp(1 / math.sqrt(2)))
    torch.testing.assert_close(single(x, x, x), torch.tensor([[[t, 1 - t], [1 - t, t]]]))


@pytest.mark.parametrize("d_model", [24, 48])
def test_parameter_count_does_not_depend_on_heads(d_model):
    counts = set()
    for n_heads in [h for h in range(1, d_model + 1) if d_model % h == 0]:
        ours = sum(p.numel() for p in MultiHeadAttention(d_model, n_heads).parameters())
        reference = sum(p.numel() for p in nn.MultiheadAttention(d_model, n_heads).parameters())
        assert ours == reference
        counts.add(ours)
    assert counts == {4 * d_model * d_model + 4 * d_model}


@pytest.mark.parametrize("mask_shape", [None, (6, 9), (2, 1, 1, 9), (2, 1, 6, 9)])
def test_attention_weights_shape_rows_and_masked_zeros(mask_shape):
    torch.manual_seed(2)
    layer = MultiHeadAttention(20, 4)
    query, memory = torch.randn(2, 6, 20), torch.randn(2, 9, 20)
    mask = None
    if mask_shape is not None:
        mask = torch.rand(mask_shape) < 0.5
        mask[..., 0] = True  # no fully masked row
    out = layer(query, memory, memory, mask=mask)
    assert out.shape == (2, 6, 20)
    weights = layer.attn_weights
    assert weights.shape == (2, 4, 6, 9)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 4, 6))
    assert torch.all(weights >= 0)
    if mask is not None:
        assert torch.all(weights[~mask.expand(2, 4, 6, 9)] == 0)


@pytest.mark.parametrize("seed, n_pad", [(0, 1), (1, 3), (2, 8)])
def test_masked_padding_keys_never_change_the_output(seed, n_pad):
    torch.manual_seed(seed)
    layer = MultiHeadAttention(16, 4)
    query, memory = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    padded = torch.cat([memory, 100 * torch.randn(3, n_pad, 16)], dim=1)  # (batch, 7 + n_pad, d_model)
    mask = (torch.arange(7 + n_pad) < 7)[None, None, None, :].expand(3, 1, 1, -1)  # (batch, 1, 1, k_len)
    torch.testing.assert_close(layer(query, padded, padded, mask=mask), layer(query, memory, memory))
    # self-attention over a padded sequence: the real positions' outputs do not change either
    x = memory
    x_padded = torch.cat([x, torch.randn(3, n_pad, 16)], dim=1)
    torch.testing.assert_close(layer(x_padded, x_padded, x_padded, mask=mask)[:, :7], layer(x, x, x))


def test_each_head_reads_only_its_block_of_w_q():
    torch.manual_seed(3)
    layer = MultiHeadAttention(12, 3)
    x = torch.randn(2, 5, 12)
    layer(x, x, x)
    before = layer.attn_weights.detach().clone()
    with torch.no_grad():
        layer.w_q.weight[4:8] += torch.randn(4, 12)  # rows 4-7 produce the second head's queries
    layer(x, x, x)
    after = layer.attn_weights
    torch.testing.assert_close(after[:, [0, 2]], before[:, [0, 2]])
    assert not torch.allclose(after[:, 1], before[:, 1])


# Same shape as test_feedforward's dropout test on purpose: each module's file shows its own dropout contract.
def test_dropout_acts_on_weights_in_training_only():
    torch.manual_seed(4)
    layer = MultiHeadAttention(8, 2, dropout=0.5)
    plain = MultiHeadAttention(8, 2)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 6, 8)
    torch.testing.assert_close(layer.eval()(x, x, x), plain(x, x, x))
    layer.train()(x, x, x)
    weights = layer.attn_weights
    assert torch.any(weights == 0) and torch.any(weights > 1 / 6 * 1.5)  # dropped, and the rest scaled by 2


def test_split_heads_takes_contiguous_column_blocks():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    for i in range(3):
        assert torch.equal(heads[:, i], x[..., 4 * i:4 * (i + 1)])
    assert torch.equal(split_heads(x, 1), x.unsqueeze(1))


@pytest.mark.parametrize("shape, n_heads", [((2, 5, 12), 3), ((1, 1, 8), 8), ((3, 7, 6), 1), ((4, 2, 30), 5)])
def test_split_and_merge_round_trip(shape, n_heads):
    x = torch.randn(shape)
    assert torch.equal(merge_heads(split_heads(x, n_heads)), x)
    heads = torch.randn(shape[0], n_heads, shape[1], shape[2] // n_heads)
    assert torch.equal(split_heads(merge_heads(heads), n_heads), heads)


def test_split_heads_accepts_non_contiguous_input():
    x = torch.randn(2, 12, 5).transpose(1, 2)  # (batch, len, d_model), not contiguous
    torch.testing.assert_close(split_heads(x, 3), split_heads(x.contiguous(), 3))


@pytest.mark.parametrize("make, message", [
    (lambda: MultiHeadAttention(12, 5), "d_model=12 is not divisible by n_heads=5"),
    (lambda: MultiHeadAttention(12, 0), "n_heads must be a positive int"),
    (lambda: MultiHeadAttention(12, 2.0), "n_heads must be a positive int"),
    (lambda: MultiHeadAttention(0, 1), "d_model must be a positive int"),
    (lambda: MultiHeadAttention(12, 3, dropout=1.0), "dropout must lie in"),
    (lambda: split_heads(torch.randn(2, 5, 12), 5), "d_model=12 is not divisible by n_heads=5"),
    (lambda: split_heads(torch.randn(5, 12), 3), r"x must be \(batch, len, d_model\)"),
    (lambda: merge_heads(torch.randn(2, 5, 12)), r"x must be \(batch, heads, len, d_k\)"),
])
def test_bad_construction_is_a_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("mask, message", [
    (torch.ones(5, 7, dtype=torch.int64), "mask must be a bool tensor"),
    (torch.ones(5, 7), "mask must be a bool tensor"),
    (torch.ones(7, 5, dtype=torch.bool), "does not broadcast"),
    (torch.ones(3, 1, 1, 7, dtype=torch.bool), "does not broadcast"),
    (torch.ones(2, 5, 7, dtype=torch.bool), "3-D mask .* is ambiguous"),
    (torch.ones(1, 2, 1, 5, 7, dtype=torch.bool), "does not broadcast"),
])
def test_bad_masks_are_value_errors(mask, message):
    layer = MultiHeadAttention(12, 3)
    query, memory = torch.randn(2, 5, 12), torch.randn(2, 7, 12)
    with pytest.raises(ValueError, match=message):
        layer(query, memory, memory, mask=mask)


@pytest.mark.parametrize("shapes, name", [
    (((2, 5, 10), (2, 7, 12), (2, 7, 12)), "query"),
    (((2, 5, 12), (2, 7, 12, 1), (2, 7, 12)), "key"),
    (((2, 5, 12), (2, 7, 12), (7, 12)), "value"),
])
def test_bad_inputs_are_value_errors(shapes, name):
    layer = MultiHeadAttention(12, 3)
    with pytest.raises(ValueError, match=rf"{name} must be \(batch, len, d_model=12\)"):
        layer(*(torch.randn(s) for s in shapes))


@pytest.mark.parametrize("mask_kind", ["none", "padding", "causal", "band"])
def test_fused_path_equals_the_explicit_one_and_keeps_no_weights(mask_kind):
    torch.manual_seed(4)
    batch, q_len, k_len, d_model, n_heads = 2, 5, 5, 12, 3
    explicit = MultiHeadAttention(d_model, n_heads).eval()
    fused = MultiHeadAttention(d_model, n_heads, fused=True).eval()
    fused.load_state_dict(explicit.state_dict())
    q, kv = torch.randn(batch, q_len, d_model), torch.randn(batch, k_len, d_model)
    mask = {"none": None,
            "padding": (torch.arange(k_len) < torch.tensor([[5], [3]]))[:, None, None, :],
            "causal": torch.ones(q_len, k_len, dtype=torch.bool).tril(),
            "band": (torch.arange(q_len)[:, None] - torch.arange(k_len)).abs() <= 1}[mask_kind]
    torch.testing.assert_close(fused(q, kv, kv, mask), explicit(q, kv, kv, mask))
    assert fused.attn_weights is None and explicit.attn_weights is not None


def test_fused_path_gradients_match():
    torch.manual_seed(5)
    explicit = MultiHeadAttention(8, 2)
    fused = MultiHeadAttention(8, 2, fused=True)
    fused.load_state_dict(explicit.state_dict())
    x = torch.randn(3, 4, 8)
    for m in (explicit, fused):
        m(x, x, x).pow(2).sum().backward()
    for (name, a), b in zip(explicit.named_parameters(), fused.parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=name)


def test_fused_path_refuses_bad_masks_like_the_explicit_one():
    fused = MultiHeadAttention(8, 2, fused=True)
    x = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match="bool"):
        fused(x, x, x, torch.ones(4, 4))
    with pytest.raises(ValueError, match="does not broadcast"):
        fused(x, x, x, torch.ones(3, 3, dtype=torch.bool)[None, None])
    with pytest.raises(ValueError, match="fused must be True or False"):
        MultiHeadAttention(8, 2, fused="yes")


def test_to_torch_is_the_inverse_of_from_torch():
    torch.manual_seed(6)
    ours = MultiHeadAttention(12, 3, dropout=0.25).double().eval()
    theirs = ours.to_torch()
    assert isinstance(theirs, nn.MultiheadAttention) and theirs.batch_first and not theirs.training
    assert theirs.dropout == 0.25 and theirs.in_proj_weight.dtype == torch.float64
    q, kv = torch.randn(2, 5, 12, dtype=torch.float64), torch.randn(2, 7, 12, dtype=torch.float64)
    padding = (torch.arange(7) < torch.tensor([[7], [4]]))[:, None, None, :]  # (batch, 1, 1, k_len)
    expected = theirs(q, kv, kv, key_padding_mask=~padding[:, 0, 0], need_weights=False)[0]
    torch.testing.assert_close(ours(q, kv, kv, padding), expected)
    back = MultiHeadAttention.from_torch(theirs)
    assert all(torch.equal(a, b.to(a)) for a, b in zip(ours.state_dict().values(), back.state_dict().values()))
    assert ours.train().to_torch().training


@pytest.mark.parametrize("mask", [
    torch.tensor([[True, False, True], [False, False, False], [True, True, True], [False, False, False]]),
    torch.tensor([[True, True, False], [False, False, False]])[:, None, None, :],  # sequence 2: no real key
], ids=["two blind queries", "an all-padding sequence"])
def test_a_fully_masked_row_gets_uniform_weights_on_both_paths(mask):
    torch.manual_seed(7)
    explicit = MultiHeadAttention(8, 2).eval()
    fused = MultiHeadAttention(8, 2, fused=True).eval()
    fused.load_state_dict(explicit.state_dict())
    q, kv = torch.randn(2, 4, 8), torch.randn(2, 3, 8)
    out = explicit(q, kv, kv, mask)  # (batch, q_len, d_model)
    torch.testing.assert_close(fused(q, kv, kv, mask), out)
    assert torch.isfinite(out).all()
    blind = ~mask.expand(2, 2, 4, 3).any(dim=-1)  # (batch, heads, q_len): queries with no allowed key
    torch.testing.assert_close(explicit.attn_weights[blind], torch.full((int(blind.sum()), 3), 1 / 3))
    with torch.no_grad():
        average = explicit.w_o(explicit.w_v(kv).mean(dim=1))  # (batch, d_model): uniform weights in every head
    rows = blind.all(dim=1)  # (batch, q_len)
    torch.testing.assert_close(out[rows], average[:, None].expand(2, 4, 8)[rows])
