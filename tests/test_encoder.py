import copy

import pytest
import torch
from torch import nn

from transformer18.config import TransformerConfig, parameter_breakdown
from transformer18.encoder import Encoder


def encoder_layer(d_model=12, n_heads=3, d_ff=20, norm_first=False):
    return nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first)


def distinct_weights_(module, seed):
    """Give every weight matrix fresh values, so that the copies in a stack differ from each other."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p, generator=generator)
    return module


def pair(layer, n_layers, norm, seed):
    """Our Encoder and nn.TransformerEncoder with the same (layer-wise distinct) weights, in eval mode."""
    ours = distinct_weights_(Encoder(layer, n_layers, norm=copy.deepcopy(norm)), seed).eval()
    theirs = nn.TransformerEncoder(layer, n_layers, norm=copy.deepcopy(norm), enable_nested_tensor=False).eval()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def random_norm(d_model, seed):
    norm = nn.LayerNorm(d_model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5, generator=generator)
        norm.bias.uniform_(-0.5, 0.5, generator=generator)
    return norm


@pytest.mark.parametrize("with_norm", [False, True])
@pytest.mark.parametrize("seed, batch, length, d_model, n_heads, d_ff, n_layers, norm_first", [
    (0, 2, 5, 12, 3, 20, 4, False),
    (1, 3, 1, 8, 2, 16, 2, False),
    (2, 1, 17, 16, 4, 24, 6, True),
    (3, 4, 9, 6, 1, 10, 3, True),
])
def test_equals_nn_transformer_encoder(with_norm, seed, batch, length, d_model, n_heads, d_ff, n_layers, norm_first):
    torch.manual_seed(seed)
    norm = random_norm(d_model, seed) if with_norm else None
    ours, theirs = pair(encoder_layer(d_model, n_heads, d_ff, norm_first), n_layers, norm, seed)
    x = torch.randn(batch, length, d_model)
    torch.testing.assert_close(ours(x), theirs(x))
    with torch.no_grad():  # PyTorch's inference fast path
        torch.testing.assert_close(ours(x), theirs(x))


def test_starts_with_the_same_weights_and_names_as_nn_transformer_encoder():
    layer = encoder_layer()
    ours = Encoder(layer, 3, norm=nn.LayerNorm(12))
    theirs = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(12), enable_nested_tensor=False)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(a[f"layers.{i}.linear1.weight"], layer.linear1.weight) for i in range(3))


@pytest.mark.parametrize("lengths", [(5, 3), (4, 1, 2), (6, 6)])
def test_padding_mask_is_passed_through(lengths):
    torch.manual_seed(len(lengths))
    max_len, d_model = max(lengths), 12
    ours, theirs = pair(encoder_layer(d_model), 3, random_norm(d_model, 0), seed=5)
    pad = torch.arange(max_len) >= torch.tensor(lengths)[:, None]  # (batch, len): True = padding
    x = torch.randn(len(lengths), max_len, d_model)
    out = ours(x, src_key_padding_mask=pad)
    torch.testing.assert_close(out, theirs(x, src_key_padding_mask=pad))
    for i, n in enumerate(lengths):  # real tokens see only real tokens: as if encoded alone
        torch.testing.assert_close(out[i, :n], ours(x[i:i + 1, :n])[0], atol=1e-5, rtol=1e-4)


def test_attention_mask_positional_or_keyword_equals_nn_transformer_encoder():
    torch.manual_seed(0)
    ours, theirs = pair(encoder_layer(), 2, None, seed=6)
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)  # PyTorch: True = may not attend
    x = torch.randn(2, 5, 12)
    expected = theirs(x, mask=causal)
    torch.testing.assert_close(ours(x, causal), expected)
    torch.testing.assert_close(ours(x, src_mask=causal), expected)
    changed = x.clone()
    changed[:, -1] += 1.0  # a causal mask: earlier positions never see the last one
    torch.testing.assert_close(ours(changed, causal)[:, :-1], ours(x, causal)[:, :-1])


class RecordingLayer(nn.Module):
    """A layer in the course's convention, forward(x, mask), that records what it is given."""

    def __init__(self, d_model):
        super().__init__()
        self.linear = nn.Linear(d_model, d_model)
        self.calls = []

    def forward(self, x, mask, scale=1.0):
        self.calls.append((mask, scale))
        return scale * self.linear(x).masked_fill(~mask[..., None], 0.0)


def test_forwards_any_arguments_to_every_layer_unchanged():
    encoder = Encoder(RecordingLayer(4), 3)
    x, mask = torch.randn(2, 5, 4), torch.rand(2, 5) > 0.3  # mask: True = may attend, the course's polarity
    out = encoder(x, mask, scale=2.0)
    assert out.shape == x.shape
    for layer in encoder.layers:
        assert len(layer.calls) == 1 and layer.calls[0][0] is mask and layer.calls[0][1] == 2.0
    expected = x
    for layer in encoder.layers:
        expected = 2.0 * layer.linear(expected).masked_fill(~mask[..., None], 0.0)
    torch.testing.assert_close(out, expected)


def test_any_module_can_be_stacked():
    torch.manual_seed(0)
    encoder = distinct_weights_(Encoder(nn.Linear(6, 6), 3, norm=nn.LayerNorm(6)), 1)
    x = torch.randn(2, 4, 6)
    expected = encoder.norm(encoder.layers[2](encoder.layers[1](encoder.layers[0](x))))
    torch.testing.assert_close(encoder(x), expected)


def test_one_layer_is_the_layer_then_the_norm():
    torch.manual_seed(0)
    layer, norm = encoder_layer().eval(), random_norm(12, 1)
    x = torch.randn(3, 7, 12)
    torch.testing.assert_close(Encoder(layer, 1)(x), layer(x))
    torch.testing.assert_close(Encoder(layer, 1, norm=norm)(x), norm(layer(x)))
    assert len(Encoder(layer, 1).layers) == 1


def test_copies_are_independent_of_each_other_and_of_the_template():
    layer = encoder_layer()
    template = copy.deepcopy(layer.state_dict())
    encoder = Encoder(layer, 4)
    assert len({id(m) for m in encoder.layers}) == 4 and all(m is not layer for m in encoder.layers)
    with torch.no_grad():
        encoder.layers[1].linear1.weight.add_(1.0)
    for i in (0, 2, 3):
        torch.testing.assert_close(encoder.layers[i].linear1.weight, template["linear1.weight"])
    torch.testing.assert_close(layer.linear1.weight, template["linear1.weight"])
    with torch.no_grad():
        layer.linear2.bias.add_(1.0)  # editing the template afterwards does not reach the stack
    assert all(not torch.equal(m.linear2.bias, layer.linear2.bias) for m in encoder.layers)


def test_the_final_norm_is_kept_as_given():
    norm = nn.LayerNorm(12)
    assert Encoder(encoder_layer(), 2, norm=norm).norm is norm
    assert Encoder(encoder_layer(), 2).norm is None


@pytest.mark.parametrize("norm_first", [False, True])
def test_parameter_count_matches_the_config_formula(norm_first):
    config = TransformerConfig(100, 100, d_model=48, n_heads=4, n_layers=5, d_ff=80, norm_first=norm_first)
    layer = encoder_layer(config.d_model, config.n_heads, config.d_ff, norm_first=norm_first)
    encoder = Encoder(layer, config.n_layers, norm=nn.LayerNorm(config.d_model) if norm_first else None)
    expected = sum(n for name, n in parameter_breakdown(config).items() if name.startswith("encoder"))
    assert sum(p.numel() for p in encoder.parameters()) == expected


def test_paper_base_encoder_has_six_parameter_sets():
    base = TransformerConfig.base()
    with torch.device("meta"):
        layer = encoder_layer(base.d_model, base.n_heads, base.d_ff)
        encoder = Encoder(layer, base.n_layers)
    one = sum(p.numel() for p in layer.parameters())
    assert sum(p.numel() for p in encoder.parameters()) == 6 * one == 18_914_304


def test_gradients_reach_every_layer_and_the_norm():
    torch.manual_seed(0)
    encoder = distinct_weights_(Encoder(encoder_layer(), 3, norm=random_norm(12, 2)), 3)
    x = torch.randn(2, 5, 12, requires_grad=True)
    (encoder(x) - torch.randn(2, 5, 12)).square().mean().backward()
    for name, p in encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad is not None and x.grad.abs().sum() > 0
    first = [m.linear1.weight.grad for m in encoder.layers]
    assert not torch.allclose(first[0], first[1]) and not torch.allclose(first[1], first[2])


def test_shape_in_equals_shape_out_for_any_length():
    encoder = Encoder(encoder_layer(), 2, norm=nn.LayerNorm(12)).eval()
    for batch, length in [(1, 1), (2, 5), (3, 40)]:
        assert encoder(torch.randn(batch, length, 12)).shape == (batch, length, 12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_layers=0), "n_layers must be a positive int, got 0"),
    (dict(n_layers=-2), "n_layers must be a positive int, got -2"),
    (dict(n_layers=2.0), "n_layers must be a positive int, got 2.0"),
    (dict(n_layers=True), "n_layers must be a positive int, got True"),
    (dict(layer=lambda x: x), "layer must be an nn.Module, got function"),
    (dict(layer=[nn.Linear(4, 4)]), "layer must be an nn.Module, got list"),
    (dict(norm=torch.ones(4)), "norm must be an nn.Module or None, got Tensor"),
])
def test_bad_arguments_are_value_errors(kwargs, message):
    arguments = dict(layer=nn.Linear(4, 4), n_layers=2) | kwargs
    with pytest.raises(ValueError, match=message):
        Encoder(**arguments)


@pytest.mark.parametrize("shape", [(5, 12), (1, 2, 5, 12)])
def test_input_must_be_batch_len_d_model(shape):
    with pytest.raises(ValueError, match=r"x must be \(batch, len, d_model\)"):
        Encoder(encoder_layer(), 2)(torch.randn(*shape))
