import pytest
import torch
from torch import nn

from transformer18.config import TransformerConfig, parameter_breakdown
from transformer18.feedforward import PositionwiseFeedForward


def _from_encoder_layer(layer: nn.TransformerEncoderLayer) -> PositionwiseFeedForward:
    ffn = PositionwiseFeedForward(layer.linear1.in_features, layer.linear1.out_features, layer.dropout.p)
    with torch.no_grad():
        for ours, theirs in ((ffn.w_1, layer.linear1), (ffn.w_2, layer.linear2)):
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
    return ffn


def _torch_ff_path(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    return layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))


@pytest.mark.parametrize("seed, batch, length, d_model, d_ff",
                         [(0, 1, 1, 1, 1), (1, 2, 5, 12, 48), (2, 3, 7, 8, 20), (3, 4, 2, 16, 16)])
def test_equals_a_pair_of_kernel_size_1_convolutions(seed, batch, length, d_model, d_ff):
    torch.manual_seed(seed)
    conv_1, conv_2 = nn.Conv1d(d_model, d_ff, 1), nn.Conv1d(d_ff, d_model, 1)
    ffn = PositionwiseFeedForward(d_model, d_ff)
    with torch.no_grad():
        for linear, conv in ((ffn.w_1, conv_1), (ffn.w_2, conv_2)):
            linear.weight.copy_(conv.weight.squeeze(-1))
            linear.bias.copy_(conv.bias)
    x = torch.randn(batch, length, d_model)
    expected = conv_2(torch.relu(conv_1(x.transpose(1, 2)))).transpose(1, 2)  # Conv1d wants (batch, d_model, len)
    torch.testing.assert_close(ffn(x), expected)


@pytest.mark.parametrize("seed, batch, length, d_model, n_heads, d_ff",
                         [(0, 2, 5, 12, 3, 48), (1, 3, 4, 8, 2, 20), (2, 1, 9, 16, 4, 16)])
def test_equals_the_feed_forward_path_of_torch_encoder_layer(seed, batch, length, d_model, n_heads, d_ff):
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.1, batch_first=True).eval()
    ffn = _from_encoder_layer(layer).eval()
    x = torch.randn(batch, length, d_model)
    torch.testing.assert_close(ffn(x), _torch_ff_path(layer, x))


def test_dropout_draws_the_same_mask_as_torch_in_training_mode():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(12, 3, 48, dropout=0.3, batch_first=True).train()
    ffn = _from_encoder_layer(layer).train()
    x = torch.randn(2, 5, 12)
    torch.manual_seed(7)
    expected = _torch_ff_path(layer, x)
    torch.manual_seed(7)
    torch.testing.assert_close(ffn(x), expected)


def test_equals_eq_2_written_out():
    torch.manual_seed(0)
    ffn = PositionwiseFeedForward(6, 10)
    x = torch.randn(3, 4, 6)
    w_1, b_1, w_2, b_2 = ffn.w_1.weight.T, ffn.w_1.bias, ffn.w_2.weight.T, ffn.w_2.bias  # the paper's W_1, W_2
    torch.testing.assert_close(ffn(x), torch.clamp(x @ w_1 + b_1, min=0) @ w_2 + b_2)


def test_hand_computed_values():
    ffn = PositionwiseFeedForward(2, 3)
    with torch.no_grad():
        ffn.w_1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        ffn.w_1.bias.copy_(torch.tensor([0.0, 1.0, 0.5]))
        ffn.w_2.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]]))
        ffn.w_2.bias.copy_(torch.tensor([0.5, 0.0]))
    # hidden = (1, -1, -0.5) → ReLU (1, 0, 0) → (1 + 0.5, -1 + 0); no ReLU at the end keeps the -1
    torch.testing.assert_close(ffn(torch.tensor([1.0, -2.0])), torch.tensor([1.5, -1.0]))


def test_is_position_wise():
    torch.manual_seed(0)
    ffn = PositionwiseFeedForward(12, 48)
    x = torch.randn(2, 5, 12)
    out = ffn(x)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(ffn(x[:, perm]), out[:, perm])  # permuting positions permutes outputs
    changed = x.clone()
    changed[:, 2] = torch.randn(2, 12)
    moved = (ffn(changed) - out).abs().amax(dim=(0, 2))
    assert moved[2] > 0 and torch.count_nonzero(moved) == 1  # only the changed position moves
    one_at_a_time = torch.stack([ffn(x[:, t]) for t in range(5)], dim=1)
    torch.testing.assert_close(out, one_at_a_time)


def test_jacobian_is_block_diagonal():
    torch.manual_seed(0)
    ffn = PositionwiseFeedForward(4, 8)
    jac = torch.autograd.functional.jacobian(ffn, torch.randn(5, 4))  # (len, d_model, len, d_model)
    norms = jac.pow(2).sum(dim=(1, 3))
    assert (norms[~torch.eye(5, dtype=torch.bool)] == 0).all()


def test_accepts_any_leading_dimensions():
    torch.manual_seed(0)
    ffn = PositionwiseFeedForward(6, 10)
    x = torch.randn(2, 3, 4, 6)
    assert ffn(x).shape == x.shape and ffn(x[0, 0, 0]).shape == (6,)
    torch.testing.assert_close(ffn(x).reshape(-1, 6), ffn(x.reshape(-1, 6)))


def test_dropout_acts_only_in_training_mode():
    torch.manual_seed(0)
    ffn = PositionwiseFeedForward(12, 48, dropout=0.5)
    plain = PositionwiseFeedForward(12, 48)
    plain.load_state_dict(ffn.state_dict())
    x = torch.randn(4, 30, 12)
    ffn.eval()
    torch.testing.assert_close(ffn(x), plain(x))
    torch.testing.assert_close(ffn(x), ffn(x))
    ffn.train()
    first, second = ffn(x), ffn(x)
    assert not torch.allclose(first, second) and not torch.allclose(first, plain(x))


def test_dropout_zeroes_hidden_units_and_rescales_the_rest():
    torch.manual_seed(0)
    ffn = PositionwiseFeedForward(12, 48, dropout=0.25).train()
    received = []
    ffn.w_2.register_forward_hook(lambda module, inputs, output: received.append(inputs[0]))
    x = torch.randn(8, 50, 12)
    with torch.no_grad():
        ffn(x)
        relu_out = torch.relu(ffn.w_1(x))
    kept = received[0] != 0
    torch.testing.assert_close(received[0][kept], relu_out[kept] / 0.75)
    dropped = ((received[0] == 0) & (relu_out > 0)).sum() / (relu_out > 0).sum()
    assert 0.22 < dropped < 0.28


def test_zero_dropout_in_training_mode_changes_nothing():
    torch.manual_seed(0)
    ffn = PositionwiseFeedForward(6, 10)
    x = torch.randn(2, 3, 6)
    torch.testing.assert_close(ffn.train()(x), ffn.eval()(x))


@pytest.mark.parametrize("d_model, d_ff", [(1, 1), (12, 48), (512, 2048), (1024, 4096), (7, 3)])
def test_parameter_count(d_model, d_ff):
    with torch.device("meta"):
        ffn = PositionwiseFeedForward(d_model, d_ff)
    assert sum(p.numel() for p in ffn.parameters()) == 2 * d_model * d_ff + d_ff + d_model


@pytest.mark.parametrize("config", [TransformerConfig.base(), TransformerConfig.big(), TransformerConfig.base(d_ff=1024)])
def test_parameter_count_matches_the_breakdown(config):
    with torch.device("meta"):
        ffn = PositionwiseFeedForward(config.d_model, config.d_ff)
    per_layer = parameter_breakdown(config)["encoder feed-forward"] // config.n_layers
    assert sum(p.numel() for p in ffn.parameters()) == per_layer


def test_two_thirds_of_an_encoder_layer():
    with torch.device("meta"):
        ffn = PositionwiseFeedForward(512, 2048)
        layer = nn.TransformerEncoderLayer(512, 8, 2048)
    share = sum(p.numel() for p in ffn.parameters()) / sum(p.numel() for p in layer.parameters())
    assert 0.66 < share < 0.67


def test_without_relu_the_layers_collapse_into_one_matrix():
    torch.manual_seed(0)
    ffn = PositionwiseFeedForward(6, 24)
    x = torch.randn(3, 6)
    weight = ffn.w_2.weight @ ffn.w_1.weight
    bias = ffn.w_2.weight @ ffn.w_1.bias + ffn.w_2.bias
    torch.testing.assert_close(ffn.w_2(ffn.w_1(x)), x @ weight.T + bias)
    assert torch.linalg.matrix_rank(weight) == 6
    assert not torch.allclose(ffn(x), x @ weight.T + bias)


def test_gradients_equal_torch_encoder_layer_path():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 20, dropout=0.0, batch_first=True)
    ffn = _from_encoder_layer(layer)
    x = torch.randn(2, 3, 8)
    _torch_ff_path(layer, x).square().sum().backward()
    ffn(x).square().sum().backward()
    torch.testing.assert_close(ffn.w_1.weight.grad, layer.linear1.weight.grad)
    torch.testing.assert_close(ffn.w_2.bias.grad, layer.linear2.bias.grad)


@pytest.mark.parametrize("d_model, d_ff, match", [
    (0, 8, "d_model must be a positive int, got 0"),
    (-3, 8, "d_model must be a positive int, got -3"),
    (8, 0, "d_ff must be a positive int, got 0"),
    (8, -1, "d_ff must be a positive int, got -1"),
    (8.0, 16, "d_model must be a positive int, got 8.0"),
    (True, 16, "d_model must be a positive int, got True"),
])
def test_bad_sizes_raise(d_model, d_ff, match):
    with pytest.raises(ValueError, match=match):
        PositionwiseFeedForward(d_model, d_ff)


@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5])
def test_bad_dropout_raises(dropout):
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
        PositionwiseFeedForward(8, 16, dropout)


@pytest.mark.parametrize("shape", [(2, 5, 7), (2, 8, 5), (12,), ()])
def test_wrong_last_dimension_raises(shape):
    ffn = PositionwiseFeedForward(8, 16)
    with pytest.raises(ValueError, match=r"x must end with d_model=8 features, got shape"):
        ffn(torch.randn(shape))
