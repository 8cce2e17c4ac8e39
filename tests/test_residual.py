import re

import pytest
import torch
from torch import nn
from torch.autograd.functional import jacobian

from transformer18.multihead import MultiHeadAttention
from transformer18.residual import residual


def test_hand_computed_values():
    x = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(residual(x, lambda y: 2 * y - 1), torch.tensor([2.0, 5.0, 8.0]))  # 3x − 1
    assert torch.equal(residual(x, torch.zeros_like), x)


@pytest.mark.parametrize("shape", [(2, 5, 12), (3, 4, 8), (5, 12), (2, 3, 5, 6), (7,)])
def test_equals_x_plus_sublayer(shape):
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Linear(shape[-1], shape[-1]), nn.Tanh())
    x = torch.randn(*shape)
    assert torch.equal(residual(x, layer), x + layer(x))


def test_with_self_attention_as_the_sublayer():
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3)
    x = torch.randn(2, 5, 12)  # (batch, len, d_model)
    out = residual(x, lambda y: mha(y, y, y))
    assert out.shape == (2, 5, 12)
    assert torch.equal(out, x + mha(x, x, x))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_rebuilds_torch_encoder_layer_with_its_own_parts(norm_first, mode):
    """nn.TransformerEncoderLayer's two residual connections are exactly ``residual`` with its dropouts."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(12, 3, 48, dropout=0.2, batch_first=True, norm_first=norm_first)
    layer.train(mode == "train")
    x = torch.randn(2, 5, 12)

    def sa(y):
        return layer.self_attn(y, y, y, need_weights=False)[0]

    def ff(y):
        return layer.linear2(layer.dropout(layer.activation(layer.linear1(y))))

    def ours(x):
        if norm_first:  # x + Dropout(Sublayer(LayerNorm(x)))
            h = residual(x, lambda y: sa(layer.norm1(y)), layer.dropout1)
            return residual(h, lambda y: ff(layer.norm2(y)), layer.dropout2)
        h = layer.norm1(residual(x, sa, layer.dropout1))  # LayerNorm(x + Dropout(Sublayer(x)))
        return layer.norm2(residual(h, ff, layer.dropout2))

    torch.manual_seed(1)
    expected = layer(x)
    torch.manual_seed(1)
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-6)


def test_dropout_acts_on_the_sublayer_output_only():
    torch.manual_seed(0)
    sublayer = nn.Linear(12, 12)
    dropout = nn.Dropout(p=0.5)
    x = torch.randn(4, 5, 12)
    with torch.no_grad():
        fx = sublayer(x)
        out = residual(x, sublayer, dropout)  # training mode
    dropped = out - x == 0
    assert 0.3 < dropped.float().mean().item() < 0.7
    assert torch.equal(out[dropped], x[dropped]), "x is never dropped"
    torch.testing.assert_close(out[~dropped] - x[~dropped], 2 * fx[~dropped])  # survivors scaled by 1/(1 − p)
    dropout.eval()
    assert torch.equal(residual(x, sublayer, dropout), x + sublayer(x))
    assert torch.equal(residual(x, sublayer, None), x + sublayer(x))


def test_the_sublayer_is_called_once():
    calls = []

    def sublayer(y):
        calls.append(1)
        return 2 * y

    residual(torch.randn(2, 5, 12), sublayer, nn.Dropout(0.1))
    assert len(calls) == 1


@pytest.mark.parametrize("out_shape", [(2, 5, 48), (2, 1, 12), (1, 5, 12), (5, 12), (2, 5, 12, 1)])
def test_shape_mismatch_raises_naming_both_shapes(out_shape):
    x = torch.randn(2, 5, 12)
    with pytest.raises(ValueError, match=re.escape(f"equal shapes: input (2, 5, 12), sub-layer output {out_shape}")):
        residual(x, lambda y: torch.zeros(out_shape))


def test_message_for_a_too_wide_branch():
    with pytest.raises(ValueError, match=r"input \(2, 5, 12\), sub-layer output \(2, 5, 48\)"):
        residual(torch.randn(2, 5, 12), nn.Linear(12, 48))


def test_a_tuple_from_torch_attention_is_a_type_error():
    mha = nn.MultiheadAttention(12, 3, batch_first=True)
    with pytest.raises(ValueError, match=r"returns \(output, weights\)"):
        residual(torch.randn(2, 5, 12), lambda y: mha(y, y, y))
    out = residual(torch.randn(2, 5, 12), lambda y: mha(y, y, y)[0])
    assert out.shape == (2, 5, 12)


def test_jacobian_is_identity_plus_the_sublayer_jacobian():
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(7, 7), nn.Tanh()).double()
    v = torch.randn(7, dtype=torch.float64)
    eye = torch.eye(7, dtype=torch.float64)
    torch.testing.assert_close(jacobian(lambda u: residual(u, f), v), eye + jacobian(f, v))
    assert torch.equal(jacobian(lambda u: residual(u, torch.zeros_like), v), eye)  # a zero sub-layer: exactly I


def test_gradient_reaches_both_x_and_the_sublayer():
    torch.manual_seed(0)
    layer = nn.Linear(12, 12)
    x = torch.randn(2, 5, 12, requires_grad=True)
    residual(x, layer).sum().backward()
    torch.testing.assert_close(x.grad, 1 + layer.weight.sum(dim=0).expand(2, 5, 12))  # 1 + Wᵀ1 at every position
    assert layer.weight.grad.abs().sum() > 0


def test_a_zero_output_projection_makes_an_attention_layer_the_identity():
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3)
    with torch.no_grad():
        mha.w_o.weight.zero_()
        mha.w_o.bias.zero_()
    x = torch.randn(2, 5, 12)
    assert torch.equal(residual(x, lambda y: mha(y, y, y)), x)


def _input_gradient(blocks, use_residual: bool) -> float:
    x = torch.randn(2, 5, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
    h = x
    for block in blocks:
        h = residual(h, block) if use_residual else block(h)
    (g,) = torch.autograd.grad(h.sum(), x)
    return g.norm().item()


def _tanh_blocks(depth: int):
    torch.manual_seed(0)
    return [nn.Sequential(nn.Linear(12, 12), nn.Tanh()).double() for _ in range(depth)]


def test_measured_gradient_ratio_on_a_deterministic_tanh_stack():
    """At initialisation the skip keeps the input gradient; without it, it vanishes with depth."""
    skip = {d: _input_gradient(_tanh_blocks(d), True) for d in (1, 16)}
    plain = {d: _input_gradient(_tanh_blocks(d), False) for d in (1, 16)}
    assert plain[16] < 1e-2 * plain[1]
    assert 0.5 < skip[16] / skip[1] < 20
    assert skip[16] > 1e3 * plain[16]


def test_measured_gradient_ratio_on_an_attention_stack():
    torch.manual_seed(0)
    blocks = []
    for _ in range(8):
        mha = MultiHeadAttention(12, 3).double()
        ffn = nn.Sequential(nn.Linear(12, 48), nn.ReLU(), nn.Linear(48, 12)).double()
        blocks += [lambda y, mha=mha: mha(y, y, y), ffn]
    assert _input_gradient(blocks, True) > 1e6 * _input_gradient(blocks, False)
