"""The Q3 checkers accept the reference solutions and reject known-wrong code with the right hint."""

import copy

import pytest
import torch
from conftest import keeps_rng, rejects
from torch import nn

from transformer18 import checks
from transformer18.checks import CheckFailed

# ---------------------------------------------------------------- clone_layers


def clone_layers(layer, n_layers):
    return nn.ModuleList(copy.deepcopy(layer) for _ in range(n_layers))


def reinitialised(layer, n_layers):
    copies = clone_layers(layer, n_layers)
    with torch.no_grad():
        for p in copies.parameters():
            p.normal_()
    return copies


def fresh_layers(layer, n_layers):
    """Build new layers of the same kind instead of copying (new random weights)."""
    if isinstance(layer, nn.Linear):
        return nn.ModuleList(nn.Linear(layer.in_features, layer.out_features) for _ in range(n_layers))
    return nn.ModuleList(nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, batch_first=True).eval()
                         for _ in range(n_layers))


def test_clone_layers_accepts_the_reference(accepts):
    accepts(checks.check_clone_layers, clone_layers)


def test_the_checkers_leave_the_global_rng_alone(accepts):
    keeps_rng(accepts, checks.check_clone_layers, clone_layers)
    keeps_rng(accepts, checks.check_encoder_forward, encoder_forward)


@pytest.mark.parametrize("wrong, hint", [
    (lambda layer, n: nn.ModuleList([layer] * n), "same module object several times"),
    (lambda layer, n: nn.ModuleList([copy.deepcopy(layer)] * n), "same module object several times"),
    (lambda layer, n: nn.ModuleList([layer] + [copy.deepcopy(layer) for _ in range(n - 1)]),
     "contains the original layer itself"),
    (lambda layer, n: [copy.deepcopy(layer) for _ in range(n)], "not a Python list"),
    (lambda layer, n: tuple(copy.deepcopy(layer) for _ in range(n)), "not a Python list"),
    (lambda layer, n: nn.Sequential(*(copy.deepcopy(layer) for _ in range(n))), "return an nn.ModuleList, got Sequential"),
    (lambda layer, n: clone_layers(layer, n + 1), "must hold .* layers, yours holds"),
    (lambda layer, n: clone_layers(layer, n - 1), "must hold 3 layers, yours holds 2"),
    (lambda layer, n: nn.ModuleList(copy.copy(layer) for _ in range(n)), "share parameter tensors"),
    (reinitialised, "different weights from the layer you were given"),
    (fresh_layers, "different weights from the layer you were given"),
])
def test_clone_layers_rejects_wrong_code(wrong, hint):
    rejects(checks.check_clone_layers, wrong, hint)


def test_clone_layers_must_not_change_the_layer():
    def clobbering(layer, n_layers):
        copies = clone_layers(layer, n_layers)
        with torch.no_grad():
            next(layer.parameters()).add_(1.0)
        return copies

    with pytest.raises(CheckFailed, match="must not change the layer"):
        checks.check_clone_layers(clobbering)


# ---------------------------------------------------------------- encoder_forward


def encoder_forward(layers, x, norm=None):
    for layer in layers:
        x = layer(x)
    return x if norm is None else norm(x)


def norm_after_every_layer(layers, x, norm=None):
    for layer in layers:
        x = layer(x)
        if norm is not None:
            x = norm(x)
    return x


def norm_forgotten(layers, x, norm=None):
    for layer in layers:
        x = layer(x)
    return x


def norm_before(layers, x, norm=None):
    if norm is not None:
        x = norm(x)
    for layer in layers:
        x = layer(x)
    return x


def not_chained(layers, x, norm=None):
    for layer in layers:
        out = layer(x)  # every layer reads the original input
    return out if norm is None else norm(out)


def returns_in_the_loop(layers, x, norm=None):
    for layer in layers:
        x = layer(x)
        return x if norm is None else norm(x)


def reversed_order(layers, x, norm=None):
    for layer in reversed(layers):
        x = layer(x)
    return x if norm is None else norm(x)


def norm_always_called(layers, x, norm=None):
    for layer in layers:
        x = layer(x)
    return norm(x)


def test_encoder_forward_accepts_the_reference(accepts):
    accepts(checks.check_encoder_forward, encoder_forward)


@pytest.mark.parametrize("wrong, hint", [
    (norm_after_every_layer, "after every layer"),
    (norm_forgotten, "forgot the final norm"),
    (norm_before, "after the layers, not before them"),
    (not_chained, "the last layer's alone"),
    (returns_in_the_loop, "the first layer's alone"),
    (reversed_order, "reverse order"),
    (norm_always_called, "norm may be None"),
    (lambda layers, x, norm=None: encoder_forward(layers, x, norm).transpose(1, 2), r"expected \(batch, len, d_model\)"),
    (lambda layers, x, norm=None: (encoder_forward(layers, x, norm), None), "return a tensor, got tuple"),
    (lambda layers, x, norm=None: encoder_forward(layers, x, norm) * 1.01, "differs from nn.TransformerEncoder"),
])
def test_encoder_forward_rejects_wrong_code(wrong, hint):
    rejects(checks.check_encoder_forward, wrong, hint)
