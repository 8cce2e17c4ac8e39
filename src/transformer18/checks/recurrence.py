"""Checkers for Q1 (why the Transformer): the recurrent loop and the receptive field of a CNN."""

from __future__ import annotations

import torch
from torch import nn

from ._core import checker, diagnose

__all__ = ["check_rnn_forward", "check_receptive_field"]


def _loop(x, h0, w_ih, w_hh, b_ih, b_hh, *, act=torch.tanh, carry=True, transpose_hh=False):
    """The recurrence, with switches that reproduce common mistakes (for the hints)."""
    h, outputs = h0, []
    for t in range(x.shape[1]):
        h = act(x[:, t] @ w_ih.T + b_ih + (h if carry else h0) @ (w_hh if transpose_hh else w_hh.T) + b_hh)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


@checker("rnn_forward")
def check_rnn_forward(rnn_forward) -> None:
    """Check ``rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh) -> (batch, len, hidden)`` against ``nn.RNN``."""
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        x, h0 = torch.randn(3, 5 + seed, 5, generator=g), torch.randn(3, 4, generator=g)  # (batch, len, in), (batch, hidden)
        weights = (0.5 * torch.randn(4, 5, generator=g), 0.5 * torch.randn(4, 4, generator=g),
                   0.1 * torch.randn(4, generator=g), 0.1 * torch.randn(4, generator=g))  # w_ih, w_hh, b_ih, b_hh
        w_ih, w_hh, b_ih, b_hh = weights
        reference = nn.RNN(5, 4, batch_first=True)
        with torch.no_grad():
            for name, value in zip(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"], weights):
                getattr(reference, name).copy_(value)
            expected, _ = reference(x, h0.unsqueeze(0))  # h0 as (layers=1, batch, hidden)
            out = rnn_forward(x.clone(), h0.clone(), *(w.clone() for w in weights))
        biases = "Add both biases, b_ih and b_hh."
        diagnose(out, expected, [
            (lambda: out.shape == h0.shape, "You returned only the last hidden state. Return every step's state, "
                                            "stacked on dim 1: (batch, len, hidden)."),
            (_loop(x, h0, *weights, act=lambda z: z), "Did you apply tanh? Without the non-linearity the recurrence "
                                                      "is a linear map."),
            (_loop(x, h0, *weights, carry=False), "Each step must read the previous step's hidden state h_{t-1}, not "
                                                  "h0 again."),
            (_loop(x, h0, *weights, transpose_hh=True), "Multiply the hidden state by w_hh transposed (h @ w_hh.T), "
                                                        "as nn.RNN does."),
            (_loop(x, h0, w_ih, w_hh, b_ih, torch.zeros_like(b_hh)), biases),
            (_loop(x, h0, w_ih, w_hh, torch.zeros_like(b_ih), b_hh), biases),
        ], "your states differ from torch.nn.RNN's",
                 shape="the states have the wrong shape: expected (batch, len, hidden)")


def _measured_receptive_field(n_layers: int, kernel_size: int, dilated: bool) -> int:
    """Stack real Conv1d layers and count the input positions that reach one output position."""
    layers = [nn.Conv1d(1, 1, kernel_size, dilation=kernel_size**i if dilated else 1, bias=False)
              for i in range(n_layers)]
    x = torch.zeros(1, 1, 5 + sum((kernel_size - 1) * layer.dilation[0] for layer in layers), requires_grad=True)
    y = x
    for layer in layers:
        nn.init.constant_(layer.weight, 1.0)
        y = layer(y)
    y[0, 0, 0].backward()  # the first output position; count the inputs with a gradient
    return int((x.grad != 0).sum())


@checker("receptive_field")
def check_receptive_field(receptive_field) -> None:
    """Check ``receptive_field(n_layers, kernel_size, dilated=False) -> int`` against real Conv1d stacks."""
    cases = [(n, k, False) for k in (2, 3, 5) for n in (1, 2, 4)] + [(n, k, True) for k in (2, 3) for n in (1, 2, 3, 4)]
    for n_layers, kernel_size, dilated in cases:
        expected = _measured_receptive_field(n_layers, kernel_size, dilated)
        got = receptive_field(n_layers, kernel_size, dilated=True) if dilated else receptive_field(n_layers, kernel_size)
        diagnose(got, expected, [(_measured_receptive_field(n_layers, kernel_size, False), "With dilated=True, layer "
                                  "l skips kernel_size**l positions between taps, so it adds (kernel_size − 1)·"
                                  "kernel_size**l positions.")] if dilated else [
            (n_layers * kernel_size, "Neighbouring layers' windows overlap: each new layer adds kernel_size − 1 "
                                     "positions, not kernel_size."),
            (n_layers * (kernel_size - 1), "Almost: count the position itself too (one layer of kernel k sees k "
                                           "positions)."),
        ],
            f"{n_layers} {'dilated' if dilated else 'stacked'} convolutions of kernel {kernel_size} see {expected} "
            f"positions (measured), you returned {got}.")
