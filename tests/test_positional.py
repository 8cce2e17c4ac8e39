import math

import pytest
import torch
from torch import nn

from transformer18.positional import PositionalEncoding, sinusoidal_encoding


def hand_table(max_len, d_model):
    """The paper's §3.5 formulas, one entry at a time, in Python floats."""
    return torch.tensor([[math.sin(pos / 10000 ** (2 * (j // 2) / d_model)) if j % 2 == 0
                          else math.cos(pos / 10000 ** (2 * (j // 2) / d_model)) for j in range(d_model)]
                         for pos in range(max_len)], dtype=torch.float64)


def frequencies(d_model):
    return torch.tensor([10000 ** (-2 * i / d_model) for i in range(d_model // 2)], dtype=torch.float64)


def rotation(k, d_model):
    blocks = [torch.tensor([[math.cos(k * w), -math.sin(k * w)], [math.sin(k * w), math.cos(k * w)]],
                           dtype=torch.float64) for w in frequencies(d_model).tolist()]
    return torch.block_diag(*blocks)


# ---------------------------------------------------------------- sinusoidal_encoding


def test_hand_computed_values():
    d_model = 10
    pe = sinusoidal_encoding(6, d_model)
    assert torch.equal(pe[0], torch.tensor([0.0, 1.0] * 5))
    expected_row_1 = [math.sin(1), math.cos(1), math.sin(1 / 10000 ** (2 / d_model)), math.cos(1 / 10000 ** (2 / d_model)),
                      math.sin(1 / 10000 ** (4 / d_model))]
    torch.testing.assert_close(pe[1, :5], torch.tensor(expected_row_1))
    assert pe[1, 0].item() == pytest.approx(0.8414709848, abs=1e-7)
    assert pe[1, 1].item() == pytest.approx(0.5403023059, abs=1e-7)
    assert pe[5, 9].item() == pytest.approx(math.cos(5 / 10000 ** (8 / d_model)), abs=1e-7)


@pytest.mark.parametrize("max_len, d_model", [(1, 2), (9, 6), (40, 16), (3, 64), (200, 32)])
def test_equals_the_formula_entry_by_entry(max_len, d_model):
    pe = sinusoidal_encoding(max_len, d_model)
    assert pe.shape == (max_len, d_model) and pe.dtype == torch.float32
    torch.testing.assert_close(pe.double(), hand_table(max_len, d_model), atol=1e-7, rtol=0)


def test_long_tables_are_computed_in_double_precision():
    """At position 4999 an all-float32 computation is off by ~1e-4; ours only by float32 rounding."""
    pe = sinusoidal_encoding(5000, 512)
    for pos in (1234, 4321, 4999):
        row = torch.tensor([math.sin(pos / 10000 ** (2 * (j // 2) / 512)) if j % 2 == 0
                            else math.cos(pos / 10000 ** (2 * (j // 2) / 512)) for j in range(512)],
                           dtype=torch.float64)
        assert (pe[pos].double() - row).abs().max() < 1e-7


def test_values_lie_in_minus_one_one_and_pairs_lie_on_the_unit_circle():
    pe = sinusoidal_encoding(300, 48)
    assert pe.abs().max() <= 1.0
    torch.testing.assert_close(pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2, torch.ones(300, 24))
    torch.testing.assert_close(pe.norm(dim=1), torch.full((300,), math.sqrt(24)))


def test_a_longer_table_extends_a_shorter_one():
    torch.testing.assert_close(sinusoidal_encoding(100, 16)[:37], sinusoidal_encoding(37, 16))


def test_positions_are_distinct():
    pe = sinusoidal_encoding(500, 32)
    distances = torch.cdist(pe, pe) + torch.eye(500) * 100
    assert distances.min() > 0.1


@pytest.mark.parametrize("k", [1, 2, 9, 31])
def test_an_offset_is_one_rotation_for_every_position(k):
    d_model = 20
    pe = sinusoidal_encoding(120, d_model).double()
    R = rotation(k, d_model)
    torch.testing.assert_close(pe[k:], pe[:-k] @ R)  # every position at once
    torch.testing.assert_close(R @ R.T, torch.eye(d_model, dtype=torch.float64))
    torch.testing.assert_close(pe[:-k], pe[k:] @ R.T)  # and back


def test_dot_products_depend_only_on_the_offset():
    d_model, n = 18, 70
    pe = sinusoidal_encoding(n, d_model).double()
    gram = pe @ pe.T
    for k in range(n):
        expected = torch.cos(k * frequencies(d_model)).sum()
        torch.testing.assert_close(gram.diagonal(k), expected.expand(n - k))
        torch.testing.assert_close(gram.diagonal(-k), expected.expand(n - k))


def test_wavelengths_are_a_geometric_progression():
    d_model = 64
    pe = sinusoidal_encoding(2, d_model).double()
    omega = torch.atan2(pe[1, 0::2], pe[1, 1::2])  # the angle of position 1 is ω_i itself
    torch.testing.assert_close(omega, frequencies(d_model))
    ratios = omega[:-1] / omega[1:]
    torch.testing.assert_close(ratios, torch.full_like(ratios, 10000 ** (2 / d_model)))


@pytest.mark.parametrize("args, message", [
    ((10, 7), "d_model must be even"),
    ((10, 0), "d_model must be a positive int"),
    ((0, 8), "max_len must be a positive int"),
    ((-3, 8), "max_len must be a positive int"),
    ((10.0, 8), "max_len must be a positive int"),
    ((10, True), "d_model must be a positive int"),
])
def test_bad_sizes_are_value_errors(args, message):
    with pytest.raises(ValueError, match=message):
        sinusoidal_encoding(*args)


# ---------------------------------------------------------------- PositionalEncoding


def test_the_table_is_a_non_persistent_buffer():
    module = PositionalEncoding(d_model=12, max_len=30)
    assert module.pe.shape == (1, 30, 12)
    assert dict(module.named_buffers()).keys() == {"pe"}
    assert module.state_dict() == {} and list(module.parameters()) == []
    torch.testing.assert_close(module.pe[0], sinusoidal_encoding(30, 12))
    module.load_state_dict({})  # nothing to load, nothing missing
    assert module.to(torch.float64).pe.dtype == torch.float64
    assert module.to("meta").pe.device.type == "meta"


def test_forward_adds_exactly_the_first_len_rows():
    torch.manual_seed(0)
    module = PositionalEncoding(d_model=12, max_len=30)
    x = torch.randn(2, 7, 12)
    assert torch.equal(module(x), x + sinusoidal_encoding(30, 12)[:7])
    x = torch.randn(3, 30, 12)  # exactly max_len is allowed
    assert torch.equal(module(x), x + sinusoidal_encoding(30, 12))


def test_forward_keeps_dtype_and_passes_gradients():
    module = PositionalEncoding(d_model=8, max_len=10)
    x = torch.randn(2, 5, 8, dtype=torch.bfloat16)
    assert module(x).dtype == torch.bfloat16
    x = torch.randn(2, 5, 8, requires_grad=True)
    module(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(2, 5, 8))


def test_default_max_len_is_5000():
    module = PositionalEncoding(d_model=4)
    assert module.max_len == 5000 and module.pe.shape == (1, 5000, 4)


@pytest.mark.parametrize("shape, message", [
    ((2, 11, 12), "sequence of length 11 exceeds max_len 10"),
    ((2, 5, 8), "last dimension 8, expected d_model=12"),
    ((5, 12), r"\(batch, len, d_model\)"),
])
def test_bad_input_is_a_value_error(shape, message):
    module = PositionalEncoding(d_model=12, max_len=10)
    with pytest.raises(ValueError, match=message):
        module(torch.randn(*shape))


@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5])
def test_bad_dropout_is_a_value_error(dropout):
    with pytest.raises(ValueError, match="dropout must lie in"):
        PositionalEncoding(d_model=4, dropout=dropout)


def test_odd_d_model_is_a_value_error():
    with pytest.raises(ValueError, match="d_model must be even"):
        PositionalEncoding(d_model=7)


def test_dropout_is_applied_only_in_training_mode():
    torch.manual_seed(0)
    module = PositionalEncoding(d_model=16, max_len=40, dropout=0.25)
    x = torch.randn(4, 40, 16)
    total = x + sinusoidal_encoding(40, 16)
    assert torch.equal(module.eval()(x), total)
    out = module.train()(x)
    kept = out != 0
    torch.testing.assert_close(out[kept], total[kept] / 0.75)
    assert 0.15 < 1 - kept.float().mean() < 0.35


def test_attention_is_permutation_equivariant_without_positions_and_not_with_them():
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(12, 3, batch_first=True).eval()
    add_positions = PositionalEncoding(12, max_len=20)
    x = torch.randn(2, 6, 12)
    perm = torch.tensor([5, 2, 0, 4, 1, 3])
    with torch.no_grad():
        plain = attention(x, x, x)[0]
        torch.testing.assert_close(attention(x[:, perm], x[:, perm], x[:, perm])[0], plain[:, perm])
        y, y_shuffled = add_positions(x), add_positions(x[:, perm])
        with_positions = attention(y, y, y)[0]
        shuffled = attention(y_shuffled, y_shuffled, y_shuffled)[0]
    assert (shuffled - with_positions[:, perm]).abs().max() > 1e-2
