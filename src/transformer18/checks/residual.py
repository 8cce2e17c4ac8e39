"""Checkers for Q14 (Add): the residual connection, the gradient through a stack, a layer that starts as the
identity."""

from __future__ import annotations

import math
from unittest import mock

import torch
from torch import nn

from ..multihead import MultiHeadAttention
from ._core import CheckFailed, call, checker, diagnose, expect, seeded, unchanged

__all__ = ["check_residual", "check_input_gradient_norm", "check_start_as_identity"]


def _tanh_sublayer(seed: int, d_model: int):
    """A fixed non-linear map (batch, len, d_model) → (batch, len, d_model): tanh(y Wᵀ + b)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d_model, d_model, generator=g, dtype=torch.float64) / math.sqrt(d_model)
    b = 0.3 * torch.randn(d_model, generator=g, dtype=torch.float64)
    return lambda y: torch.tanh(y @ w.T + b)


# (batch, len, d_model): every size differs within a case
_ADD_CASES = [(2, 5, 12), (3, 4, 8), (1, 7, 6)]


@checker("add")
def check_residual(add) -> None:
    """Check ``add(x, sublayer) -> x + sublayer(x)`` (the residual connection without dropout)."""
    for seed, shape in enumerate(_ADD_CASES):
        fn = _tanh_sublayer(seed, shape[-1])
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
        sublayer = mock.Mock(wraps=fn)  # it counts its calls
        with unchanged("You changed x in place (x += …). That overwrites the caller's tensor, which autograd "
                       "still needs for the backward pass; return a new tensor: x + sublayer(x).", x):
            out = add(x, sublayer)
        calls = sublayer.call_count
        expect(calls > 0, "You never called sublayer: the residual is x + sublayer(x).")
        expect(calls == 1, f"You called the sublayer {calls} times. Call it once, on x, and add its output to x: "
                           "x + sublayer(x) (not x + sublayer(sublayer(x)), not a second call for the same value: "
                           "with dropout inside, two calls differ).")
        doubled = [tuple(s * 2 if j == i else s for j, s in enumerate(shape)) for i in range(len(shape))]
        diagnose(out, x + fn(x), [
            (lambda: tuple(out.shape) in doubled,
             f"The output has shape {tuple(getattr(out, 'shape', ()))} for an input of shape {shape}: you "
             "concatenated x and sublayer(x). The residual connection adds them, so the width stays d_model and "
             "the next sub-layer fits."),
            (fn(x), "You returned sublayer(x) alone: there is no skip. The residual adds the input back: "
                    "x + sublayer(x)."),
            (x * fn(x), "You multiplied x by sublayer(x). The residual connection adds: x + sublayer(x)."),
            (fn(x + x), "You applied the sublayer to x + x. Apply it to x, then add x: x + sublayer(x)."),
        ], "add(x, sublayer) must equal x + sublayer(x)", shape="The output must have the input's shape",
            atol=1e-9, rtol=1e-9)

    # The gradient must flow through both paths: d sum(x + f(x)) / dx = 1 + J_fᵀ 1.
    fn = _tanh_sublayer(7, 12)
    x = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(7), dtype=torch.float64).requires_grad_()
    out = add(x, fn)
    expect(out.requires_grad, "Your output is cut off from the graph (detach() or torch.no_grad()): no gradient "
                              "could reach x or the sub-layer's weights.")
    (got,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    expect(got is not None, "No gradient reaches x through your output.")
    (through_f,) = torch.autograd.grad(fn(x).sum(), x)
    diagnose(got, 1 + through_f, [
        (through_f, "The gradient skips the identity path: did you add x.detach()? The skip must carry the gradient "
                    "too: ∂(x + f(x))/∂x = I + ∂f/∂x."),
        (torch.ones_like(got), "The gradient does not go through the sub-layer: did you detach its output?"),
    ], "the gradient of sum(add(x, f)) must be 1 + ∂ sum f(x)/∂x", atol=1e-9, rtol=1e-9)


def _tanh_blocks(seed: int, n_blocks: int, d_model: int) -> list[nn.Module]:
    with seeded(seed):
        return [nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh()).double() for _ in range(n_blocks)]


def _gradient_norm(blocks, x, use_residual: bool, *, whole: bool = False, detach_skip: bool = False,
                   reduce: str = "sum", squared: bool = False, output: bool = False) -> float:
    """‖∂ sum(output)/∂x‖, with switches that reproduce common mistakes (for the hints)."""
    x0 = x.detach().clone().requires_grad_()
    h = x0
    for block in blocks:
        if use_residual and not whole:
            h = (h.detach() if detach_skip else h) + block(h)
        else:
            h = block(h)
    if use_residual and whole:
        h = x0 + h
    if output:
        return h.norm().item()
    loss = h.sum() if reduce == "sum" else h.mean()
    (g,) = torch.autograd.grad(loss, x0)
    return g.norm().item() ** (2 if squared else 1)


def _as_number(value, what: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{what} returned a tensor of shape {tuple(value.shape)}. Return the norm of the "
                              "gradient, one number: grad.norm().item().")
        return value.item()
    expect(isinstance(value, (int, float)), f"{what} must return a number, got {type(value).__name__}")
    return float(value)


_MISTAKES = [  # (switches of _gradient_norm that reproduce a mistake, its hint)
    (dict(whole=True), "Wrap every block in its own residual (h = h + block(h) inside the loop), not the whole stack "
                       "once (x + stack(x))."),
    (dict(detach_skip=True), "The skip must carry the gradient: do not detach h when you add it back."),
    (dict(reduce="mean"), "Differentiate the sum of the outputs, not their mean."),
    (dict(squared=True), "Return the norm ‖g‖, not its square."),
    (dict(output=True), "You returned the norm of the output. Return the norm of the gradient ∂ sum(output)/∂x."),
]


@checker("input_gradient_norm")
def check_input_gradient_norm(input_gradient_norm) -> None:
    """Check ``input_gradient_norm(blocks, x, use_residual) -> ‖∂ sum(output)/∂x‖`` through a stack of blocks."""
    for seed, (n_blocks, shape) in enumerate([(4, (2, 5, 12)), (3, (3, 4, 8))]):
        blocks = _tanh_blocks(seed, n_blocks, shape[-1])
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(50 + seed), dtype=torch.float64)
        with unchanged("Do not change the values of x.", x):
            with_skip, without, again = (_as_number(input_gradient_norm(blocks, x, flag), f"input_gradient_norm("
                                                    f"blocks, x, {flag})") for flag in (True, False, True))
        expect(math.isclose(again, with_skip, rel_tol=1e-6, abs_tol=1e-12),
               f"The same call gave {with_skip:.6g}, then {again:.6g}: gradients accumulate in x.grad across calls. "
               "Work on a fresh copy, x.detach().clone().requires_grad_(), or use torch.autograd.grad, which does "
               "not accumulate.")
        skip, plain = _gradient_norm(blocks, x, True), _gradient_norm(blocks, x, False)
        diagnose((with_skip, without), (skip, plain), [
            ((plain, skip), "use_residual is the wrong way round: with use_residual=True every block's input is added "
                            "back (h = h + block(h)); with False, h = block(h)."),
            ((plain, plain), "use_residual=True gives the same number as False: with the skip, each step is "
                             "h = h + block(h)."),
            ((skip, skip), "use_residual=False must apply the blocks without the skip: h = block(h)."),
            *[((_gradient_norm(blocks, x, True, **switches), _gradient_norm(blocks, x, False, **switches)), hint)
              for switches, hint in _MISTAKES],
        ], f"with the skip the gradient norm is {skip:.6g} and without it {plain:.6g}; you returned {with_skip:.6g} "
           f"and {without:.6g}", atol=1e-12, rtol=1e-6)


class _FeedForward(nn.Module):
    """w_2(relu(w_1 x)), the shape of Q16's position-wise feed-forward block."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.w_2(torch.relu(self.w_1(x)))


def _all_zero(*tensors) -> bool:
    return all(bool((t == 0).all()) for t in tensors)


def _gets_gradient(linear: nn.Linear) -> bool:
    return linear.weight.grad is not None and not _all_zero(linear.weight.grad)


@checker("start_as_identity")
def check_start_as_identity(start_as_identity) -> None:
    """Check ``start_as_identity(attention, feed_forward)``: the residual layer is then exactly the identity,
    and the weight matrices of both sub-layers still receive gradients."""
    with seeded(0):  # the reader's own RNG state is left alone
        attention, feed_forward = MultiHeadAttention(12, 3), _FeedForward(12, 48)
    call(start_as_identity, attention, feed_forward, errors={
        "leaf Variable that requires grad": "Changing a parameter in place needs `with torch.no_grad():` around it "
                                            "(or nn.init.zeros_, which does that for you)."})
    for name, module in (("attention", attention), ("feed_forward", feed_forward)):
        for pname, p in module.named_parameters():
            expect(p.requires_grad, f"{name}.{pname} no longer requires a gradient: the layer must stay trainable.")
    expect(sum(1 for _ in attention.parameters()) == 8 and sum(1 for _ in feed_forward.parameters()) == 4,
           "Keep every parameter (w_q, w_k, w_v, w_o, w_1, w_2 with their biases); set values, do not remove them.")

    x = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(1))  # (batch, len, d_model)
    o, q, k, w_1, w_2 = attention.w_o, attention.w_q, attention.w_k, feed_forward.w_1, feed_forward.w_2
    diagnose(attention(x, x, x), torch.zeros_like(x), [
        (_all_zero(o.weight) and not _all_zero(o.bias), "w_o's weight is zero but its bias is still added to every "
                                                        "position: zero w_o.bias too."),
        (_all_zero(q.weight, q.bias) or _all_zero(k.weight, k.bias),
         "A zero w_q or w_k makes every score 0, so the attention weights become uniform, not zero: the sub-layer "
         "still adds the average of the values. Zero what comes last: the output projection w_o."),
    ], "The attention sub-layer still outputs something non-zero, so x + attention(x) ≠ x. Its output is "
       "w_o(heads): what makes that exactly zero for every input?", atol=1e-7)
    diagnose(feed_forward(x), torch.zeros_like(x), [
        (_all_zero(w_2.weight) and not _all_zero(w_2.bias), "w_2's weight is zero but its bias is still added: zero "
                                                            "w_2.bias too."),
        (_all_zero(w_1.weight, w_1.bias) and not _all_zero(w_2.bias),
         "With w_1 zero, relu(0) = 0, but w_2 still adds its bias: the FFN outputs b_2, not zero."),
    ], "The feed-forward sub-layer still outputs something non-zero, so x + ffn(x) ≠ x.", atol=1e-7)

    probe = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(2))  # a random loss direction
    h = x + attention(x, x, x)  # (batch, len, d_model)
    out = h + feed_forward(h)  # (batch, len, d_model)
    (out * probe).sum().backward()
    expect(any(_gets_gradient(w) for w in (q, k, attention.w_v, o)),
           "The attention sub-layer is the identity, but no weight matrix of it gets a gradient: you zeroed too much "
           "(zero values and a zero w_o block each other). Only a bias would ever move, so the layer could never "
           "learn to attend. Zero only w_o (weight and bias).")
    expect(_gets_gradient(w_1) or _gets_gradient(w_2) or not _all_zero(w_1.weight, w_1.bias),
           "With w_1 zero every ReLU input is 0, where ReLU outputs 0 and has gradient 0: no weight of the "
           "feed-forward block gets a gradient, ever. Zero only w_2 (weight and bias).")
    expect(_gets_gradient(w_1) or _gets_gradient(w_2), "The feed-forward sub-layer is the identity, but none of its "
                                                       "weight matrices gets a gradient: you zeroed too much. Zero "
                                                       "only w_2 (weight and bias).")
