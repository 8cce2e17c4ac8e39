"""Checkers for Q15 (Norm): layer normalisation from scratch, and where the norm goes in a pre-norm block."""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ._core import CheckFailed, checker, expect, expect_close

__all__ = ["check_layer_norm", "check_norm_placement"]


# ---------------------------------------------------------------- layer_norm


def _layer_norm_cases() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """(x, weight, bias, eps): 2-D, 3-D and 4-D inputs with distinct sizes, token scales from 0.2 to 3 and a
    non-zero mean, random weight and bias. The first case has eps = 0.1, so that √(var + eps), std + eps and
    the unbiased variance all give visibly different outputs."""
    g = torch.Generator().manual_seed(15)
    cases = []
    for shape, eps in (((4, 6), 0.1), ((3, 5, 7), 1e-5), ((2, 3, 4, 9), 1e-3)):
        scale = torch.rand(shape[:-1] + (1,), generator=g) * 2.8 + 0.2  # one scale per token
        x = torch.randn(shape, generator=g) * scale + torch.randn(shape[:-1] + (1,), generator=g) * 2 + 1
        d_model = shape[-1]
        weight = torch.rand(d_model, generator=g) + 0.5
        bias = torch.randn(d_model, generator=g)
        cases.append((x, weight, bias, eps))
    return cases


def _normalise(x: torch.Tensor, dims, eps: float, *, unbiased: bool = False, eps_outside: bool = False):
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, correction=1 if unbiased else 0, keepdim=True)
    if eps_outside:
        return (x - mean) / (var.sqrt() + eps)
    return (x - mean) / torch.sqrt(var + eps)


def _layer_norm_mistakes(x, weight, bias, eps) -> list[tuple[str, torch.Tensor]]:
    """Known-wrong versions of layer_norm(x, weight, bias, eps), each with the hint that names the mistake."""
    last = (-1,)
    unbiased = ("x.var() and x.std() divide by d_model − 1 by default (the unbiased estimate). Layer norm uses the "
                "biased variance, divided by d_model: x.var(dim=-1, correction=0, keepdim=True) or "
                "((x - mean) ** 2).mean(dim=-1, keepdim=True).")
    outside = ("eps belongs inside the square root: divide by √(var + eps), not by std + eps. The two differ for "
               "tokens whose features barely vary.")
    both = ("This is the LayerNorm of many tutorials: x.std() is unbiased and eps is added outside the root. "
            "nn.LayerNorm divides by √(var + eps) with the biased variance (divided by d_model).")
    axis = ("You took the statistics over the {axis} axis: that is batch normalisation, one statistic per feature "
            "across tokens. Layer norm takes the mean and variance of each token over its own features: dim=-1.")
    scale_shift = "Apply the learned scale and shift after normalising: x̂ * weight + bias."
    whole = ("Subtract each token's own mean, x.mean(dim=-1, keepdim=True), not the mean of the whole tensor "
             "(and divide by each token's own standard deviation).")
    mistakes = [
        (unbiased, _normalise(x, last, eps, unbiased=True) * weight + bias),
        (outside, _normalise(x, last, eps, eps_outside=True) * weight + bias),
        (both, _normalise(x, last, eps, unbiased=True, eps_outside=True) * weight + bias),
        (scale_shift, _normalise(x, last, eps)),
        (scale_shift, _normalise(x, last, eps) * weight),
        (scale_shift, _normalise(x, last, eps) + bias),
        ("weight is the scale and bias the shift: x̂ * weight + bias, not x̂ * bias + weight.",
         _normalise(x, last, eps) * bias + weight),
        (whole, _normalise(x, tuple(range(x.dim())), eps) * weight + bias),
        (whole, (x - x.mean()) / torch.sqrt(x.var(dim=-1, correction=0, keepdim=True) + eps) * weight + bias),
    ]
    if x.dim() >= 2:
        mistakes.append((axis.format(axis="batch (first)"), _normalise(x, (0,), eps) * weight + bias))
    if x.dim() >= 3:
        mistakes.append((axis.format(axis="sequence (second)"), _normalise(x, (1,), eps) * weight + bias))
        mistakes.append((axis.format(axis="batch and sequence"), _normalise(x, tuple(range(x.dim() - 1)), eps)
                         * weight + bias))
    return mistakes


class _FromScratch(Exception):
    pass


@contextmanager
def _without_torch_layer_norm():
    """Make F.layer_norm and torch.layer_norm (which nn.LayerNorm calls) raise while the reader's code runs."""
    def refuse(*args, **kwargs):
        raise _FromScratch

    saved = F.layer_norm, torch.layer_norm
    F.layer_norm = torch.layer_norm = refuse
    try:
        yield
    finally:
        F.layer_norm, torch.layer_norm = saved


def _call_layer_norm(layer_norm, x, weight, bias, eps):
    try:
        with _without_torch_layer_norm():
            return layer_norm(x, weight, bias, eps)
    except NotImplementedError:  # the untouched stub (NotImplementedError is a RuntimeError)
        raise
    except _FromScratch:
        raise CheckFailed("Write it from scratch with mean, var (or sums) and sqrt: F.layer_norm and nn.LayerNorm "
                          "are what your function is compared with.") from None
    except RuntimeError as error:
        raise CheckFailed(f"Your function raised RuntimeError: {error}. Did you keep the reduced dimension "
                          "(keepdim=True), so that each token's mean and variance broadcast over its features?") from None


@checker("layer_norm")
def check_layer_norm(layer_norm) -> None:
    """Check ``layer_norm(x, weight, bias, eps=1e-5) -> like x`` against ``F.layer_norm``, values and gradients."""
    for x, weight, bias, eps in _layer_norm_cases():
        d_model = x.size(-1)
        expected = F.layer_norm(x, (d_model,), weight, bias, eps)
        original = x.clone()
        out = _call_layer_norm(layer_norm, x, weight, bias, eps)
        expect(torch.equal(x, original), "Do not modify x in place (no x -= mean): compute a new tensor.")
        expect(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}")
        expect(out.shape == x.shape, f"the output must have the input's shape {tuple(x.shape)}, got {tuple(out.shape)}")
        if not torch.allclose(out, expected, atol=1e-5, rtol=1e-4):
            for hint, wrong in _layer_norm_mistakes(x, weight, bias, eps):
                if wrong.shape == out.shape and torch.allclose(out, wrong, atol=1e-5, rtol=1e-4):
                    raise CheckFailed(hint)
            expect_close(out, expected, f"your output differs from F.layer_norm (input shape {tuple(x.shape)}, "
                                        f"eps={eps})")
        # Gradients: the function must stay differentiable in x, weight and bias.
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        ref_leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(d_model))
        out = _call_layer_norm(layer_norm, *leaves, eps)
        expect(out.requires_grad, "Your output carries no gradient: do not detach, use .item()/.numpy() or "
                                  "torch.no_grad() inside the function.")
        (out * upstream).sum().backward()
        (F.layer_norm(ref_leaves[0], (d_model,), ref_leaves[1], ref_leaves[2], eps) * upstream).sum().backward()
        for name, ours, ref in zip(("x", "weight", "bias"), leaves, ref_leaves):
            expect(ours.grad is not None, f"No gradient reached {name}: keep every step differentiable.")
            expect_close(ours.grad, ref.grad, f"the gradient with respect to {name} differs from F.layer_norm's: "
                                              "keep every step differentiable (no .detach() of the statistics)")


# ---------------------------------------------------------------- pre_norm_block


class _Counted(nn.Module):
    """Wraps a module and counts its calls."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, x):
        self.calls += 1
        return self.module(x)


def _placement_case(seed: int, shape: tuple[int, int, int]):
    g = torch.Generator().manual_seed(seed)
    d_model = shape[-1]
    x = torch.randn(shape, generator=g) * 2 + 0.5
    linear = nn.Linear(d_model, d_model)
    norm = nn.LayerNorm(d_model)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(d_model, d_model, generator=g) / d_model**0.5)
        linear.bias.copy_(torch.randn(d_model, generator=g))
        norm.weight.copy_(torch.rand(d_model, generator=g) + 0.5)
        norm.bias.copy_(torch.randn(d_model, generator=g))
    return x, nn.Sequential(linear, nn.Tanh()), norm


@checker("pre_norm_block")
def check_norm_placement(pre_norm_block) -> None:
    """Check ``pre_norm_block(x, sublayer, norm) = x + sublayer(norm(x))`` and name the misplaced norms."""
    for seed, shape in ((0, (2, 5, 12)), (1, (3, 4, 8))):
        x, sublayer, norm = _placement_case(seed, shape)
        original = x.clone()
        counted_sublayer, counted_norm = _Counted(sublayer), _Counted(norm)
        with torch.no_grad():
            out = pre_norm_block(x, counted_sublayer, counted_norm)
            expected = x + sublayer(norm(x))
            mistakes = [
                ("That is post-norm, the paper's LayerNorm(x + Sublayer(x)). Pre-norm moves the norm onto the "
                 "sub-layer's input and leaves the sum alone: x + Sublayer(LayerNorm(x)).", norm(x + sublayer(x))),
                ("You normalised the sum after the residual as well (the norm ran twice). In pre-norm the output "
                 "x + Sublayer(LayerNorm(x)) is left unnormalised; a pre-norm stack normalises once more at the very "
                 "end.", norm(x + sublayer(norm(x)))),
                ("You applied the norm twice to the sub-layer's input: normalise once, "
                 "x + Sublayer(LayerNorm(x)).", x + sublayer(norm(norm(x)))),
                ("You normalised the sub-layer's output. Pre-norm normalises its input: x + Sublayer(LayerNorm(x)).",
                 x + norm(sublayer(x))),
                ("The skip path must carry the raw x: x + Sublayer(LayerNorm(x)), not LayerNorm(x) + ….",
                 norm(x) + sublayer(norm(x))),
                ("Add the residual: return x + Sublayer(LayerNorm(x)), not only the sub-layer's output.",
                 sublayer(norm(x))),
                ("Apply the norm: pre-norm feeds the sub-layer LayerNorm(x), not x.", x + sublayer(x)),
            ]
        expect(torch.equal(x, original), "Do not modify x in place: compute a new tensor.")
        expect(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}")
        expect(out.shape == x.shape, f"the output must have the input's shape {tuple(x.shape)}, got {tuple(out.shape)}")
        if not torch.allclose(out, expected, atol=1e-5, rtol=1e-4):
            for hint, wrong in mistakes:
                if torch.allclose(out, wrong, atol=1e-5, rtol=1e-4):
                    raise CheckFailed(hint)
            expect_close(out, expected, "your block differs from x + sublayer(norm(x))")
        expect(counted_norm.calls == 1, f"Call norm exactly once per block (you called it {counted_norm.calls} times).")
        expect(counted_sublayer.calls == 1,
               f"Call the sub-layer exactly once per block (you called it {counted_sublayer.calls} times).")
