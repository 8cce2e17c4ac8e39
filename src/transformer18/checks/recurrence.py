"""Checkers for Q1 (why the Transformer): the recurrent loop and the receptive field of a CNN."""

from __future__ import annotations

import torch
from torch import nn

from ._core import CheckFailed, checker, expect, expect_close

__all__ = ["check_rnn_forward", "check_receptive_field"]


def _rnn_case(seed: int, batch: int = 3, length: int = 7, input_size: int = 5, hidden_size: int = 4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, input_size, generator=g)
    h0 = torch.randn(batch, hidden_size, generator=g)
    w_ih = torch.randn(hidden_size, input_size, generator=g) * 0.5
    w_hh = torch.randn(hidden_size, hidden_size, generator=g) * 0.5
    b_ih = torch.randn(hidden_size, generator=g) * 0.1
    b_hh = torch.randn(hidden_size, generator=g) * 0.1
    return x, h0, w_ih, w_hh, b_ih, b_hh


def _loop(x, h0, w_ih, w_hh, b_ih, b_hh, *, act=torch.tanh, carry=True, transpose_hh=False):
    """The recurrence, with switches that reproduce common mistakes (for the hints)."""
    w = w_hh if transpose_hh else w_hh.T
    h, outputs = h0, []
    for t in range(x.shape[1]):
        prev = h if carry else h0
        h = act(x[:, t] @ w_ih.T + b_ih + prev @ w + b_hh)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


@checker("rnn_forward")
def check_rnn_forward(rnn_forward) -> None:
    """Check ``rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh) -> (batch, len, hidden)`` against ``nn.RNN``."""
    for seed in range(3):
        args = _rnn_case(seed, length=5 + seed)
        x, h0, w_ih, w_hh, b_ih, b_hh = args
        reference = nn.RNN(x.shape[-1], h0.shape[-1], batch_first=True)
        with torch.no_grad():
            for name, value in zip(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"], args[2:]):
                getattr(reference, name).copy_(value)
            expected, _ = reference(x, h0.unsqueeze(0))  # h0 as (layers=1, batch, hidden)
            out = rnn_forward(*(a.clone() for a in args))
        expect(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}")
        if out.shape == h0.shape:
            raise CheckFailed("You returned only the last hidden state. Return every step's state, "
                              "stacked on dim 1: (batch, len, hidden).")
        expect(out.shape == expected.shape,
               f"the output has shape {tuple(out.shape)}, expected (batch, len, hidden) = {tuple(expected.shape)}")
        wrong = {
            "Did you apply tanh? Without the non-linearity the recurrence is a linear map.":
                _loop(*args, act=lambda z: z),
            "Each step must read the previous step's hidden state h_{t-1}, not h0 again.":
                _loop(*args, carry=False),
            "Multiply the hidden state by w_hh transposed (h @ w_hh.T), as nn.RNN does.":
                _loop(*args, transpose_hh=True),
            "Add both biases, b_ih and b_hh.": _loop(x, h0, w_ih, w_hh, b_ih, torch.zeros_like(b_hh)),
            "Add both biases, b_ih and b_hh. ": _loop(x, h0, w_ih, w_hh, torch.zeros_like(b_ih), b_hh),
        }
        for hint, variant in wrong.items():
            if torch.allclose(out, variant, atol=1e-5):
                raise CheckFailed(hint.strip())
        expect_close(out, expected, "your states differ from torch.nn.RNN's")


def _measured_receptive_field(n_layers: int, kernel_size: int, dilated: bool) -> int:
    """Stack real Conv1d layers and count the input positions that reach one output position."""
    layers = [nn.Conv1d(1, 1, kernel_size, dilation=kernel_size**i if dilated else 1, bias=False)
              for i in range(n_layers)]
    span = 1 + sum((kernel_size - 1) * layer.dilation[0] for layer in layers)
    x = torch.zeros(1, 1, span + 4, requires_grad=True)
    y = x
    for layer in layers:
        nn.init.constant_(layer.weight, 1.0)
        y = layer(y)
    y[0, 0, 0].backward()  # the first output position; count the inputs with a gradient
    return int((x.grad != 0).sum())


@checker("receptive_field")
def check_receptive_field(receptive_field) -> None:
    """Check ``receptive_field(n_layers, kernel_size, dilated=False) -> int`` against real Conv1d stacks."""
    for kernel_size in (2, 3, 5):
        for n_layers in (1, 2, 4):
            expected = _measured_receptive_field(n_layers, kernel_size, dilated=False)
            got = receptive_field(n_layers, kernel_size)
            if got == n_layers * kernel_size and got != expected:
                raise CheckFailed("Neighbouring layers' windows overlap: each new layer adds kernel_size − 1 "
                                  "positions, not kernel_size.")
            if got == n_layers * (kernel_size - 1) and got != expected:
                raise CheckFailed("Almost: count the position itself too (one layer of kernel k sees k positions).")
            expect(got == expected, f"{n_layers} stacked convolutions of kernel {kernel_size} see {expected} "
                                    f"positions (measured), you returned {got}.")
    for kernel_size in (2, 3):
        for n_layers in (1, 2, 3, 4):
            expected = _measured_receptive_field(n_layers, kernel_size, dilated=True)
            got = receptive_field(n_layers, kernel_size, dilated=True)
            if got == _measured_receptive_field(n_layers, kernel_size, dilated=False) and got != expected:
                raise CheckFailed("With dilated=True, layer l skips kernel_size**l positions between taps, "
                                  "so it adds (kernel_size − 1)·kernel_size**l positions.")
            expect(got == expected, f"{n_layers} dilated convolutions of kernel {kernel_size} see {expected} "
                                    f"positions (measured), you returned {got}.")
