"""The Q16 checkers accept the reference solutions and reject known-wrong code with the right hint."""

import pytest
import torch
import torch.nn.functional as F
from conftest import keeps_rng, rejects
from torch import nn

from transformer18 import checks
from transformer18.checks import CheckFailed

# ---------------------------------------------------------------- feed_forward


def feed_forward(x, w_1, b_1, w_2, b_2, *, act=torch.relu, out_act=None, t1=True, t2=True, biases=(1, 1)):
    """The reference, with switches for the mistakes the checker names."""
    hidden = act(x @ (w_1.T if t1 else w_1) + biases[0] * b_1)
    out = hidden @ (w_2.T if t2 else w_2) + biases[1] * b_2
    return out if out_act is None else out_act(out)


def variant(**kw):
    return lambda *args: feed_forward(*args, **kw)


def guess_orientation(x, w_1, b_1, w_2, b_2):
    """Transposes a weight only when its shape does not fit: wrong whenever d_ff = d_model."""
    w_1 = w_1 if w_1.shape[0] == x.shape[-1] else w_1.T
    hidden = torch.relu(x @ w_1 + b_1)
    w_2 = w_2 if w_2.shape[0] == hidden.shape[-1] else w_2.T
    return hidden @ w_2 + b_2


def guess_first_orientation(x, w_1, b_1, w_2, b_2):
    w_1 = w_1 if w_1.shape[0] == x.shape[-1] else w_1.T
    return torch.relu(x @ w_1 + b_1) @ w_2.T + b_2


def guess_second_orientation(x, w_1, b_1, w_2, b_2):
    hidden = torch.relu(x @ w_1.T + b_1)
    w_2 = w_2 if w_2.shape[0] == hidden.shape[-1] else w_2.T
    return hidden @ w_2 + b_2


@pytest.mark.parametrize("solution", [
    feed_forward,
    lambda x, w_1, b_1, w_2, b_2: F.linear(F.relu(F.linear(x, w_1, b_1)), w_2, b_2),
    lambda x, w_1, b_1, w_2, b_2: torch.einsum("blf,df->bld", torch.einsum("bld,fd->blf", x, w_1).add(b_1).clamp(min=0),
                                               w_2) + b_2,
])
def test_feed_forward_accepts_correct_code(solution, accepts):
    accepts(checks.check_feed_forward, solution)


@pytest.mark.parametrize("wrong, hint", [
    (variant(out_act=torch.relu), "no ReLU after the second layer"),
    (variant(act=lambda z: z, out_act=torch.relu), "between the two layers, not after the second one"),
    (variant(act=lambda z: z), r"Apply the ReLU, max\(0, ·\), between the two layers"),
    (variant(act=F.gelu), "not GELU"),
    (variant(t1=False), r"shape error .*nn.Linear stores its weight as \(out_features, in_features\)"),
    (variant(t2=False), r"shape error .*nn.Linear stores its weight as \(out_features, in_features\)"),
    (lambda x, w_1, b_1, w_2, b_2: torch.relu(x @ w_1.T.T + b_1) @ w_2.T + b_2, "shape error"),  # transposed twice
    (guess_first_orientation, "Transpose w_1"),
    (guess_second_orientation, "Transpose w_2"),
    (guess_orientation, "Transpose both weights"),
    (variant(biases=(0, 1)), "first layer's bias b_1"),
    (variant(biases=(1, 0)), "second layer's bias b_2"),
    (variant(biases=(0, 0)), "Add both biases"),
    (lambda *a: feed_forward(*a).softmax(dim=1), "Only position .* changed"),  # softmax over positions
    (lambda *a: feed_forward(*a) / feed_forward(*a).abs().sum(dim=1, keepdim=True), "Only position .* changed"),
    (lambda x, *a: feed_forward(x + x.mean(dim=1, keepdim=True), *a), "Only position .* changed"),
    (lambda x, *a: feed_forward(x.cumsum(dim=1), *a), "Only position .* changed"),
    (lambda x, w_1, b_1, w_2, b_2: torch.relu(x @ w_1.T + b_1), "returned the hidden layer"),
    (lambda *a: feed_forward(*a).transpose(1, 2), r"expected \(batch, len, d_model\)"),
    (lambda *a: feed_forward(*a).tolist(), "return a tensor"),
    (variant(act=torch.tanh), "differs from FFN"),
    (lambda *a: 2 * feed_forward(*a), "differs from FFN"),
])
def test_feed_forward_rejects_wrong_code(wrong, hint):
    rejects(checks.check_feed_forward, wrong, hint)


def test_feed_forward_lets_unrelated_errors_through():
    def broken(x, *args):
        raise RuntimeError("something unrelated")

    with pytest.raises(RuntimeError, match="something unrelated"):
        checks.check_feed_forward(broken)


# ---------------------------------------------------------------- to_conv1d


class Transpose(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


def to_conv1d(ffn, *, kernel_size=1, relu="between", weight=lambda w: w.unsqueeze(-1), assign=False,
              copy_bias=True, bias=True, before=(), after=()):
    """The reference, with switches for the mistakes the checker names."""
    convs = []
    for linear in (ffn.w_1, ffn.w_2):
        conv = nn.Conv1d(linear.in_features, linear.out_features, kernel_size, padding=kernel_size // 2, bias=bias)
        with torch.no_grad():
            value = weight(linear.weight.detach())
            if assign:
                conv.weight = nn.Parameter(value.clone())
            elif kernel_size == 1:
                conv.weight.copy_(value)
            else:  # the right numbers in the middle tap of a wider kernel
                conv.weight.zero_()
                conv.weight[..., kernel_size // 2] = linear.weight
            if bias and copy_bias:
                conv.bias.copy_(linear.bias)
        convs.append(conv)
    layers = {"between": [convs[0], nn.ReLU(), convs[1]], "none": convs, "after": [*convs, nn.ReLU()],
              "gelu": [convs[0], nn.GELU(), convs[1]]}[relu]
    return nn.Sequential(*before, *layers, *after)


def conv_variant(**kw):
    return lambda ffn: to_conv1d(ffn, **kw)


def test_to_conv1d_accepts_the_reference(capsys):
    checks.check_to_conv1d(to_conv1d)
    checks.check_to_conv1d(conv_variant(weight=lambda w: w.reshape(*w.shape, 1), assign=True))
    assert capsys.readouterr().out.count("✓ to_conv1d") == 2


def test_to_conv1d_leaves_the_global_rng_alone(accepts):
    def without_rng(ffn):  # the reference, minus its own draws from the RNG (nn.Conv1d's initial weights)
        with torch.random.fork_rng(devices=[]):
            return to_conv1d(ffn)

    keeps_rng(accepts, checks.check_to_conv1d, without_rng)


@pytest.mark.parametrize("wrong, hint", [
    (conv_variant(weight=lambda w: w), "Building the convolutions failed .*unsqueeze"),  # copy_ of a 2-D weight
    (conv_variant(weight=lambda w: w, assign=True), "is 2-D .*unsqueeze"),
    (conv_variant(weight=lambda w: w.T.unsqueeze(-1), assign=True), "you transposed it"),
    (conv_variant(weight=lambda w: w.T.reshape(*w.shape, 1)), "transposed matrix reshaped"),
    (conv_variant(weight=lambda w: w.unsqueeze(0), assign=True), r"expected \(out_channels, in_channels, kernel_size\)"),
    (conv_variant(weight=lambda w: 0.5 * w.unsqueeze(-1)), "copy the FFN's weights"),
    (conv_variant(relu="none"), r"Put an nn.ReLU\(\) between"),
    (conv_variant(relu="gelu"), r"Put an nn.ReLU\(\) between"),
    (conv_variant(relu="after"), "goes between the two convolutions"),
    (conv_variant(kernel_size=3), "kernel_size=3"),
    (conv_variant(copy_bias=False), "Copy the biases too"),
    (conv_variant(bias=False), "has no bias"),
    (conv_variant(before=[Transpose()], after=[Transpose()]), r"nn.Conv1d reads \(batch, channels, len\)"),
    (conv_variant(after=[Transpose()]), r"returns \(batch, len, d_model\)"),
    (lambda ffn: nn.Sequential(to_conv1d(ffn)[0], nn.ReLU()), "exactly two nn.Conv1d"),
    (lambda ffn: list(to_conv1d(ffn)), "return an nn.Sequential"),
])
def test_to_conv1d_rejects_wrong_code(wrong, hint):
    rejects(checks.check_to_conv1d, wrong, hint)


def test_to_conv1d_rejects_a_transposed_square_weight():
    """With d_ff = d_model the transposed weight has the right shape; only its numbers give it away."""
    def transposed_if_square(ffn):
        module = to_conv1d(ffn)
        if ffn.w_1.in_features == ffn.w_1.out_features:
            with torch.no_grad():
                module[0].weight.copy_(ffn.w_1.weight.T.unsqueeze(-1))
        return module

    with pytest.raises(CheckFailed, match="holds the transposed matrix"):
        checks.check_to_conv1d(transposed_if_square)
