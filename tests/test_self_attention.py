import pytest
import torch
import torch.nn.functional as F

from transformer18.projections import SingleHeadAttention
from transformer18.self_attention import PATTERNS, SelfAttention, pattern_mask


def as_mask(rows):
    return torch.tensor(rows, dtype=torch.bool)


# ---------------------------------------------------------------- pattern_mask: hand-written values


def test_full_pattern_is_all_true():
    assert torch.equal(pattern_mask(4), torch.ones(4, 4, dtype=torch.bool))
    assert torch.equal(pattern_mask(4, "full", window=0, stride=3), torch.ones(4, 4, dtype=torch.bool))


@pytest.mark.parametrize("window, rows", [
    (0, [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]),
    (1, [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 0, 1, 1]]),
    (2, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1], [0, 0, 1, 1, 1]]),
    (4, [[1] * 5] * 5),
    (9, [[1] * 5] * 5),
])
def test_local_pattern_by_hand(window, rows):
    assert torch.equal(pattern_mask(5, "local", window=window), as_mask(rows))


@pytest.mark.parametrize("stride, rows", [
    (1, [[1] * 5] * 5),
    (2, [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0], [1, 0, 1, 0, 1], [0, 1, 0, 1, 0], [1, 0, 1, 0, 1]]),
    (3, [[1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 0, 0], [1, 0, 0, 1, 0], [0, 1, 0, 0, 1]]),
    (4, [[1, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [1, 0, 0, 0, 1]]),
    (7, [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]),
])
def test_strided_pattern_by_hand(stride, rows):
    assert torch.equal(pattern_mask(5, "strided", stride=stride), as_mask(rows))


def test_size_one_is_a_single_true():
    for pattern in PATTERNS:
        assert torch.equal(pattern_mask(1, pattern), torch.ones(1, 1, dtype=torch.bool))


# ---------------------------------------------------------------- pattern_mask: properties


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("size, window, stride", [(1, 0, 1), (2, 0, 2), (7, 1, 3), (12, 3, 5), (20, 30, 25)])
def test_diagonal_allowed_symmetric_bool_square(pattern, size, window, stride):
    mask = pattern_mask(size, pattern, window=window, stride=stride)
    assert mask.dtype == torch.bool and mask.shape == (size, size)
    assert mask.diagonal().all(), "a token may always attend to itself"
    assert torch.equal(mask, mask.T)


@pytest.mark.parametrize("size, window", [(8, 1), (64, 4), (100, 3), (10, 20)])
def test_local_pair_count(size, window):
    expected = size * size if window >= size else size * (2 * window + 1) - window * (window + 1)
    assert int(pattern_mask(size, "local", window=window).sum()) == expected


@pytest.mark.parametrize("size, stride", [(64, 8), (100, 3), (7, 2), (5, 9)])
def test_strided_pair_count_is_sum_of_squared_group_sizes(size, stride):
    groups = [len(range(r, size, stride)) for r in range(min(stride, size))]
    assert int(pattern_mask(size, "strided", stride=stride).sum()) == sum(g * g for g in groups)


def test_strided_groups_never_meet_when_stacked():
    mask = pattern_mask(12, "strided", stride=3).float()
    assert torch.equal((mask @ mask) > 0, mask > 0)  # the reach of two layers equals that of one


def test_local_reach_grows_by_window_per_layer():
    mask = pattern_mask(16, "local", window=2).float()
    reach = mask
    for layers in range(2, 9):
        reach = ((reach @ mask) > 0).float()
        assert torch.equal(reach > 0, pattern_mask(16, "local", window=2 * layers))


# ---------------------------------------------------------------- pattern_mask: bad input


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_size(size):
    with pytest.raises(ValueError, match="size must be a positive int"):
        pattern_mask(size)


def test_unknown_pattern():
    with pytest.raises(ValueError, match=r"pattern must be one of \('full', 'local', 'strided'\), got 'dilated'"):
        pattern_mask(4, "dilated")


@pytest.mark.parametrize("window", [-1, 1.5])
def test_bad_window(window):
    with pytest.raises(ValueError, match="window must be an int ≥ 0"):
        pattern_mask(4, "local", window=window)


@pytest.mark.parametrize("stride", [0, -2, 2.0])
def test_bad_stride(stride):
    with pytest.raises(ValueError, match="stride must be an int ≥ 1"):
        pattern_mask(4, "strided", stride=stride)


# ---------------------------------------------------------------- SelfAttention


SETTINGS = [("full", 1, 2), ("local", 0, 2), ("local", 1, 2), ("local", 3, 2), ("strided", 1, 2),
            ("strided", 1, 3), ("strided", 1, 5)]
SHAPES = [(0, 1, 1, 3, 2, 5), (1, 2, 9, 12, 4, 6), (2, 3, 16, 8, 5, 7), (3, 2, 40, 24, 16, 10)]


@pytest.mark.parametrize("pattern, window, stride", SETTINGS)
@pytest.mark.parametrize("seed, batch, length, d_model, d_k, d_v", SHAPES)
def test_equals_torch_sdpa_on_the_projections(pattern, window, stride, seed, batch, length, d_model, d_k, d_v):
    torch.manual_seed(seed)
    layer = SelfAttention(d_model, d_k, d_v, pattern=pattern, window=window, stride=stride)
    x = torch.randn(batch, length, d_model)
    out = layer(x)
    assert out.shape == (batch, length, d_v)
    head = layer.head
    expected = F.scaled_dot_product_attention(head.w_q(x), head.w_k(x), head.w_v(x),
                                              attn_mask=pattern_mask(length, pattern, window, stride))
    torch.testing.assert_close(out, expected)


def test_equals_the_q8_head_called_with_x_three_times():
    torch.manual_seed(0)
    layer = SelfAttention(10, 4, 6, pattern="local", window=2)
    assert isinstance(layer.head, SingleHeadAttention)
    x = torch.randn(3, 8, 10)
    torch.testing.assert_close(layer(x), layer.head(x, x, x, mask=pattern_mask(8, "local", window=2)))


def test_four_steps_by_hand():
    torch.manual_seed(1)
    layer = SelfAttention(12, 4, 6)
    x = torch.randn(2, 7, 12)
    q = x @ layer.head.w_q.weight.T + layer.head.w_q.bias
    k = x @ layer.head.w_k.weight.T + layer.head.w_k.bias
    v = x @ layer.head.w_v.weight.T + layer.head.w_v.bias
    weights = (q @ k.transpose(-2, -1) / 2.0).softmax(-1)  # √d_k = 2
    torch.testing.assert_close(layer(x), weights @ v)
    torch.testing.assert_close(layer.attn_weights, weights)


@pytest.mark.parametrize("pattern, window, stride", SETTINGS)
def test_weights_rows_sum_to_one_and_vanish_outside_the_pattern(pattern, window, stride):
    torch.manual_seed(2)
    layer = SelfAttention(8, 5, 3, pattern=pattern, window=window, stride=stride)
    assert layer.attn_weights is None
    layer(torch.randn(4, 11, 8))
    weights = layer.attn_weights
    assert weights.shape == (4, 11, 11)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 11))
    mask = pattern_mask(11, pattern, window, stride)
    assert (weights[:, ~mask] == 0).all()
    assert (weights[:, mask] > 0).all()


@pytest.mark.parametrize("pattern, window, stride", SETTINGS)
def test_gradients_follow_the_pattern(pattern, window, stride):
    """∂ output_i / ∂ x_j is non-zero exactly where the pattern lets query i attend to key j."""
    torch.manual_seed(3)
    layer = SelfAttention(6, 4, 5, pattern=pattern, window=window, stride=stride)
    x = torch.randn(9, 6)
    jacobian = torch.autograd.functional.jacobian(lambda t: layer(t.unsqueeze(0))[0], x)  # (9, 5, 9, 6)
    dependence = jacobian.abs().sum(dim=(1, 3))  # (9, 9)
    assert torch.equal(dependence > 0, pattern_mask(9, pattern, window, stride))


def test_local_outputs_ignore_a_far_token():
    torch.manual_seed(4)
    layer = SelfAttention(8, 4, 4, pattern="local", window=2)
    x = torch.randn(2, 12, 8)
    y = x.clone()
    y[:, 11] = torch.randn(2, 8)  # change only the last token
    before, after = layer(x), layer(y)
    assert torch.equal(before[:, :9], after[:, :9])  # positions more than 2 away: bit-for-bit the same
    assert not torch.allclose(before[:, 9:], after[:, 9:])
    full = SelfAttention(8, 4, 4)
    assert not torch.allclose(full(x)[:, 0], full(y)[:, 0])  # full attention: even position 0 moves


def test_full_attention_is_permutation_equivariant_and_local_is_not():
    torch.manual_seed(5)
    x = torch.randn(1, 10, 8)
    perm = torch.randperm(10)
    full = SelfAttention(8, 4, 4)
    torch.testing.assert_close(full(x[:, perm]), full(x)[:, perm])
    local = SelfAttention(8, 4, 4, pattern="local", window=1)
    assert not torch.allclose(local(x[:, perm]), local(x)[:, perm])


def test_gradients_reach_all_parameters():
    layer = SelfAttention(8, 4, 6, pattern="strided", stride=3)
    layer(torch.randn(2, 7, 8)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_remembers_its_pattern():
    layer = SelfAttention(8, 4, 4, pattern="local", window=3, stride=5)
    assert (layer.pattern, layer.window, layer.stride) == ("local", 3, 5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(pattern="causal"), "pattern must be one of"),
    (dict(pattern="local", window=-1), "window must be an int ≥ 0"),
    (dict(pattern="strided", stride=0), "stride must be an int ≥ 1"),
])
def test_bad_pattern_arguments_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SelfAttention(8, 4, 4, **kwargs)


def test_bad_sizes_are_value_errors():
    with pytest.raises(ValueError, match="d_k"):  # Q8's SingleHeadAttention names the bad size
        SelfAttention(8, 0, 4)


@pytest.mark.parametrize("shape", [(7, 8), (1, 2, 7, 8)])
def test_input_must_be_batch_len_d_model(shape):
    with pytest.raises(ValueError, match=r"x must be \(batch, len, d_model\)"):
        SelfAttention(8, 4, 4)(torch.randn(*shape))
