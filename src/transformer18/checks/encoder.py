"""Checkers for Q3 (the encoder): cloning a layer N times and running the stack."""

from __future__ import annotations

import torch
from torch import nn

from ._core import call, checker, diagnose, expect, seeded

__all__ = ["check_clone_layers", "check_encoder_forward"]

D_MODEL, N_HEADS, D_FF = 8, 2, 12


def _encoder_layer(seed: int) -> nn.TransformerEncoderLayer:
    """A small post-norm encoder layer with seeded weights, dropout 0, in evaluation mode."""
    with seeded(seed):
        layer = nn.TransformerEncoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, batch_first=True)
    return layer.eval()


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


@checker("clone_layers")
def check_clone_layers(clone_layers) -> None:
    """Check ``clone_layers(layer, n_layers) -> nn.ModuleList`` of independent deep copies of ``layer``."""
    with seeded(7):
        linear = nn.Linear(5, 7)
    for layer, n_layers in [(_encoder_layer(0), 3), (_encoder_layer(1), 1), (linear, 4)]:
        before = _snapshot(layer)
        out = clone_layers(layer, n_layers)
        expect(not isinstance(out, (list, tuple)), "Return an nn.ModuleList, not a Python list: modules in a plain "
               "list are not registered, so .parameters(), .to(device) and the optimiser never see them.")
        expect(isinstance(out, nn.ModuleList), f"return an nn.ModuleList, got {type(out).__name__}")
        expect(len(out) == n_layers, f"clone_layers(layer, {n_layers}) must hold {n_layers} layers, yours holds "
                                     f"{len(out)}.")
        expect(len({id(module) for module in out}) == len(out), "Your list holds the same module object several "
               "times, so all its 'layers' share one set of parameters (training one trains them all). Make every "
               "entry its own copy.deepcopy(layer).")
        expect(all(module is not layer for module in out), "Your list contains the original layer itself, which "
               "the caller still holds and may change. Put n_layers deep copies in the list: copy.deepcopy(layer).")
        params = [p for module in out for p in module.parameters()] + list(layer.parameters())
        expect(len({id(p) for p in params}) == len({p.data_ptr() for p in params}) == len(params), "Your copies "
               "share parameter tensors with each other or with the layer (a shallow copy such as copy.copy does "
               "that): use copy.deepcopy(layer) so that every copy owns its parameters.")
        for module in out:
            expect(type(module) is type(layer), f"every entry must be a {type(layer).__name__} like the layer, "
                                                f"got a {type(module).__name__}")
            state = module.state_dict()
            expect(state.keys() == before.keys(), "your copies have different parameters from the layer's")
            expect(all(torch.equal(state[name], value) for name, value in before.items()), "Your copies hold "
                   "different weights from the layer you were given: copy it (copy.deepcopy) instead of building or "
                   "re-initialising fresh layers. The stack must start from exactly the layer passed in.")
        expect(all(torch.equal(layer.state_dict()[name], value) for name, value in before.items()),
               "clone_layers must not change the layer it is given.")


def _reference(seed: int, n_layers: int, with_norm: bool) -> nn.TransformerEncoder:
    """nn.TransformerEncoder whose layers all differ (so order matters) and whose norm is non-trivial."""
    norm = nn.LayerNorm(D_MODEL) if with_norm else None
    reference = nn.TransformerEncoder(_encoder_layer(seed), n_layers, norm=norm, enable_nested_tensor=False)
    generator = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for p in reference.layers.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p, generator=generator)
        if norm is not None:
            norm.weight.uniform_(0.5, 1.5, generator=generator)
            norm.bias.uniform_(-0.5, 0.5, generator=generator)
    return reference.eval()


def _stack(layers, x, norm, *, order=None, norm_each=False, norm_first=False, final_norm=True):
    """The stack run with switches that reproduce common mistakes (for the hints)."""
    h = norm(x) if norm is not None and norm_first else x
    for i in range(len(layers)) if order is None else order:
        h = layers[i](h)
        if norm is not None and norm_each:
            h = norm(h)
    if norm is not None and final_norm and not norm_each and not norm_first:
        h = norm(h)
    return h


@checker("encoder_forward")
def check_encoder_forward(encoder_forward) -> None:
    """Check ``encoder_forward(layers, x, norm=None)`` against ``nn.TransformerEncoder``."""
    cases = [(0, 3, True, (2, 5)), (1, 4, False, (3, 4)), (2, 3, True, (1, 7))]
    for seed, n_layers, with_norm, (batch, length) in cases:
        reference = _reference(seed, n_layers, with_norm)
        layers, norm = reference.layers, reference.norm
        x = torch.randn(batch, length, D_MODEL, generator=torch.Generator().manual_seed(200 + seed))
        with torch.no_grad():
            expected = reference(x)  # (batch, len, d_model)
            out = call(encoder_forward, layers, x.clone(), norm, errors={} if norm is not None else {
                "NoneType": "norm may be None (no final norm): apply it only when one is given."})
            last = n_layers - 1
            diagnose(out, expected, [
                (lambda: _stack(layers, x, norm, norm_each=True), "You applied the norm after every layer. It is the "
                 "stack's final norm: apply it once, after the last layer."),
                (lambda: _stack(layers, x, norm, final_norm=False), "You forgot the final norm: after the last layer, "
                 "apply norm (when one is given)."),
                (lambda: _stack(layers, x, norm, norm_first=True), "Apply the final norm after the layers, not before "
                 "them."),
                (lambda: _stack(layers, x, norm, order=[last]), "Your output is the last layer's alone: feed each "
                 "layer's output into the next (x = layer(x)) instead of applying every layer to the original input."),
                (lambda: _stack(layers, x, norm, order=[0]), "Your output is the first layer's alone: did you return "
                 "inside the loop? Run all the layers, then return."),
                (lambda: _stack(layers, x, norm, order=range(last, -1, -1)), "You applied the layers in reverse "
                 "order: layers[0] reads the input, layers[-1] comes last."),
            ], "your output differs from nn.TransformerEncoder's",
                shape="the output has the wrong shape, expected (batch, len, d_model)")
