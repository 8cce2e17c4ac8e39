"""Checkers for Q16 (the position-wise feed-forward network): Eq. 2 with plain tensor operations, and the
same network rebuilt as two convolutions of kernel size 1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._core import CheckFailed, call, checker, diagnose, expect, expect_tensor, seeded

__all__ = ["check_feed_forward", "check_to_conv1d"]

_LAYOUT_HINT = ("nn.Linear stores its weight as (out_features, in_features): w_1 is (d_ff, d_model) and "
                "w_2 is (d_model, d_ff), so the two layers are x @ w_1.T + b_1 and h @ w_2.T + b_2.")


def _ffn(x, w_1, b_1, w_2, b_2, *, act=torch.relu, out_act=None, transpose_1=True, transpose_2=True):
    """Eq. 2, with switches that reproduce common mistakes (for the hints)."""
    hidden = act(x @ (w_1.T if transpose_1 else w_1) + b_1)  # (batch, len, d_ff)
    out = hidden @ (w_2.T if transpose_2 else w_2) + b_2  # (batch, len, d_model)
    return out if out_act is None else out_act(out)


def _call(feed_forward, x, weights):
    def hint(error):
        return f"Your function raised a shape error ({error}). {_LAYOUT_HINT}"

    with torch.no_grad():
        return call(feed_forward, x.clone(), *(w.clone() for w in weights), errors=dict.fromkeys(
            ("cannot be multiplied", "must match the size", "size mismatch", "shape"), hint))


@checker("feed_forward")
def check_feed_forward(feed_forward) -> None:
    """Check ``feed_forward(x, w_1, b_1, w_2, b_2)`` against Eq. 2 computed with ``F.linear``."""
    # (batch, len, d_model, d_ff). In the first case every size differs, so a weight used without its
    # transpose fails with a shape error; in the second d_ff = d_model, so it runs and gives wrong numbers.
    for seed, (batch, length, d_model, d_ff) in enumerate([(2, 5, 12, 48), (3, 4, 6, 6), (1, 7, 8, 20)]):
        g = torch.Generator().manual_seed(seed)
        weights = (torch.randn(d_ff, d_model, generator=g) / d_model**0.5, torch.randn(d_ff, generator=g) * 0.5,
                   torch.randn(d_model, d_ff, generator=g) / d_ff**0.5, torch.randn(d_model, generator=g) * 0.5)
        w_1, b_1, w_2, b_2 = weights  # shaped like nn.Linear's: (d_ff, d_model), (d_ff,), (d_model, d_ff), (d_model,)
        x = torch.randn(batch, length, d_model, generator=torch.Generator().manual_seed(100 + seed))
        expected = F.linear(F.relu(F.linear(x, w_1, b_1)), w_2, b_2)  # (batch, len, d_model)
        out = _call(feed_forward, x, weights)
        expect_tensor(out)
        # Position-wise: change one position of the input; only that position's output may move.
        changed_at, others = length // 2, []
        if out.shape == expected.shape:
            x_changed = x.clone()
            x_changed[:, changed_at] += torch.randn(batch, d_model, generator=torch.Generator().manual_seed(7))
            moved = (_call(feed_forward, x_changed, weights) - out).abs().amax(dim=(0, 2)) > 1e-6  # (len,)
            others = [t for t in range(length) if moved[t] and t != changed_at]
        zero_1, zero_2 = torch.zeros_like(b_1), torch.zeros_like(b_2)
        diagnose(out, expected, [
            (tuple(out.shape) == (batch, length, d_ff) and d_ff != d_model, "You returned the hidden layer (batch, "
             "len, d_ff). Apply the second layer, h @ w_2.T + b_2, to come back to d_model features."),
            (bool(others), f"Only position {changed_at} of the input changed, yet your outputs at positions {others} "
             "changed too. The FFN treats every position separately and identically: work on the last dimension "
             "(d_model) only, and never sum, average, normalise or multiply along the len axis."),
            (lambda: _ffn(x, *weights, act=lambda z: z, out_act=torch.relu),
             "Apply the ReLU between the two layers, not after the second one."),
            (lambda: _ffn(x, *weights, out_act=torch.relu), "There is no ReLU after the second layer: Eq. 2 ends with "
             "… W_2 + b_2, so the FFN's output may be negative (it is added to the residual stream)."),
            (lambda: _ffn(x, *weights, act=lambda z: z), "Apply the ReLU, max(0, ·), between the two layers. Without "
             "it the two layers collapse into one linear map."),
            (lambda: _ffn(x, *weights, act=F.gelu), "Eq. 2 uses the ReLU, max(0, ·), not GELU."),
            (lambda: _ffn(x, *weights, transpose_1=False), f"Transpose w_1: {_LAYOUT_HINT}"),
            (lambda: _ffn(x, *weights, transpose_2=False), f"Transpose w_2: {_LAYOUT_HINT}"),
            (lambda: _ffn(x, *weights, transpose_1=False, transpose_2=False), f"Transpose both weights: {_LAYOUT_HINT}"),
            (_ffn(x, w_1, zero_1, w_2, zero_2), "Add both biases: b_1 after the first layer and b_2 after the second."),
            (_ffn(x, w_1, zero_1, w_2, b_2), "Add the first layer's bias b_1 (before the ReLU)."),
            (_ffn(x, w_1, b_1, w_2, zero_2), "Add the second layer's bias b_2 (after the second matrix product)."),
        ], "your output differs from FFN(x) = max(0, x W_1 + b_1) W_2 + b_2",
            shape="the output has the wrong shape, expected (batch, len, d_model)")


def _check_conv_weight(name: str, weight: torch.Tensor, linear: nn.Linear) -> None:
    """Explain a Conv1d weight that is not ``linear.weight.unsqueeze(-1)``."""
    w, lin = linear.weight.detach(), "w_1" if name == "the first Conv1d" else "w_2"
    (out_features, in_features), shape = w.shape, tuple(weight.shape)
    diagnose(weight, w.unsqueeze(-1), [
        (weight.dim() == 2, f"{name}.weight is 2-D {shape}. Conv1d weights are (out_channels, in_channels, "
                            f"kernel_size): add the kernel dimension with {lin}.weight.unsqueeze(-1)."),
        (shape == (in_features, out_features, 1) and in_features != out_features,
         f"{name}.weight has shape {shape}: you transposed it. nn.Linear and nn.Conv1d both store (out, in, …); only "
         "add the kernel dimension: .unsqueeze(-1)."),
        (w.T.unsqueeze(-1), f"{name}.weight holds the transposed matrix. nn.Linear and nn.Conv1d both store (out, in, "
                            "…): copy the weight as it is and only add the kernel dimension, .unsqueeze(-1)."),
        (w.T.reshape(out_features, in_features, 1), f"{name}.weight is the transposed matrix reshaped: reshape does "
         "not transpose, it scrambles the numbers. Keep nn.Linear's (out, in) layout and add the kernel dimension "
         "with .unsqueeze(-1)."),
    ], f"{name}.weight is not {lin}.weight.unsqueeze(-1): copy the FFN's weights into the convolutions.",
        shape=f"{name}.weight must be {lin}.weight.unsqueeze(-1), expected (out_channels, in_channels, kernel_size)")


@checker("to_conv1d")
def check_to_conv1d(to_conv1d) -> None:
    """Check ``to_conv1d(ffn) -> nn.Sequential`` (Conv1d, ReLU, Conv1d with kernel size 1) on (batch, d_model, len)."""
    from ..feedforward import PositionwiseFeedForward

    # (d_model, d_ff, batch, len): every size differs in the first case; the second is square (d_ff = d_model),
    # where a transposed weight has the right shape and only its numbers are wrong.
    for seed, (d_model, d_ff, batch, length) in enumerate([(12, 48, 2, 5), (6, 6, 3, 4), (8, 20, 1, 9)]):
        with seeded(seed), torch.no_grad():  # the reader's own RNG state is left alone
            ffn = PositionwiseFeedForward(d_model, d_ff).eval()
            ffn.w_1.bias.normal_(0.0, 0.5)  # biases large enough that forgetting one is visible
            ffn.w_2.bias.normal_(0.0, 0.5)
        module = call(to_conv1d, ffn, errors={RuntimeError: lambda error: (
            f"Building the convolutions failed ({error}). A Conv1d weight is (out_channels, in_channels, "
            "kernel_size): copy w_1.weight.unsqueeze(-1), of shape (d_ff, d_model, 1), and w_2.weight.unsqueeze(-1).")})
        expect(isinstance(module, nn.Sequential), f"return an nn.Sequential, got {type(module).__name__}")
        layers = list(module)
        convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv1d)]
        expect(len(convs) == 2, f"the nn.Sequential needs exactly two nn.Conv1d layers, found {len(convs)}")
        relus = [i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]
        expect(bool(relus), "Put an nn.ReLU() between the two convolutions: without it the two layers collapse "
                            "into one linear map.")
        expect(any(convs[0] < i < convs[1] for i in relus),
               "The nn.ReLU() goes between the two convolutions, not before or after them.")
        first = layers[convs[0]]
        if (first.in_channels, first.out_channels) != (d_model, d_ff) and first.weight.dim() == 3:
            raise CheckFailed(f"the first Conv1d maps {first.in_channels} → {first.out_channels} channels; it "
                              f"must map d_model = {d_model} → d_ff = {d_ff}.")
        for place, i, linear, bias in (("first", convs[0], ffn.w_1, "b_1"), ("second", convs[1], ffn.w_2, "b_2")):
            name, conv = f"the {place} Conv1d", layers[i]
            expect(conv.kernel_size == (1,), f"{name} has kernel_size={conv.kernel_size[0]}. The FFN is a "
                   "convolution with kernel size 1: each output position sees its own input position only.")
            expect(conv.stride == (1,) and conv.dilation == (1,) and conv.padding in ((0,), "valid", "same")
                   and conv.groups == 1, f"{name} must have stride 1, no padding, no dilation and groups=1")
            expect(conv.bias is not None, f"{name} has no bias: keep bias=True and copy the FFN's b_1 and b_2.")
            _check_conv_weight(name, conv.weight.detach(), linear)
            expect(torch.allclose(conv.bias.detach(), linear.bias.detach()),
                   f"Copy the biases too: the {place} Conv1d's bias must be the FFN's {bias}.")
        x = torch.randn(batch, d_model, length, generator=torch.Generator().manual_seed(50 + seed))
        with torch.no_grad():
            out = call(module.eval(), x.clone(), errors={RuntimeError: lambda error: (
                f"Your module failed on a (batch, d_model, len) = {tuple(x.shape)} input ({error}). nn.Conv1d reads "
                "(batch, channels, len) with the d_model features as channels on dim 1: do not transpose inside the "
                "module.")})
        diagnose(out, ffn(x.transpose(1, 2)).transpose(1, 2), [  # expected: (batch, d_model, len)
            (tuple(out.shape) == (batch, length, d_model) and length != d_model, "Your module returns (batch, len, "
             "d_model). Keep Conv1d's layout: (batch, d_model, len) in, (batch, d_model, len) out."),
        ], "your convolutions differ from the FFN applied at every position",
            shape="the output has the wrong shape, expected (batch, d_model, len)")
