"""Checkers for Q15 (Norm): layer normalisation from scratch, and where the norm goes in a pre-norm block."""

from __future__ import annotations

from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

from ._core import call, checker, diagnose, expect, unchanged

__all__ = ["check_layer_norm", "check_norm_placement"]

UNBIASED = ("x.var() and x.std() divide by d_model − 1 by default (the unbiased estimate). Layer norm uses the "
            "biased variance, divided by d_model: x.var(dim=-1, correction=0, keepdim=True) or "
            "((x - mean) ** 2).mean(dim=-1, keepdim=True).")
OUTSIDE = ("eps belongs inside the square root: divide by √(var + eps), not by std + eps. The two differ for "
           "tokens whose features barely vary.")
TUTORIAL = ("This is the LayerNorm of many tutorials: x.std() is unbiased and eps is added outside the root. "
            "nn.LayerNorm divides by √(var + eps) with the biased variance (divided by d_model).")
AXIS = ("You took the statistics over the {} axis: that is batch normalisation, one statistic per feature "
        "across tokens. Layer norm takes the mean and variance of each token over its own features: dim=-1.")
SCALE_SHIFT = "Apply the learned scale and shift after normalising: x̂ * weight + bias."
WHOLE = ("Subtract each token's own mean, x.mean(dim=-1, keepdim=True), not the mean of the whole tensor "
         "(and divide by each token's own standard deviation).")


def _layer_norm_cases() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """(x, weight, bias, eps): 2-D, 3-D and 4-D inputs with distinct sizes, token scales from 0.2 to 3 and a
    non-zero mean, random weight and bias. The first case has eps = 0.1, so that √(var + eps), std + eps and
    the unbiased variance all give visibly different outputs."""
    g = torch.Generator().manual_seed(15)
    cases = []
    for shape, eps in (((4, 6), 0.1), ((3, 5, 7), 1e-5), ((2, 3, 4, 9), 1e-3)):
        scale = torch.rand(shape[:-1] + (1,), generator=g) * 2.8 + 0.2  # one scale per token
        x = torch.randn(shape, generator=g) * scale + torch.randn(shape[:-1] + (1,), generator=g) * 2 + 1
        weight, bias = torch.rand(shape[-1], generator=g) + 0.5, torch.randn(shape[-1], generator=g)
        cases.append((x, weight, bias, eps))
    return cases


def _normalise(x: torch.Tensor, dims, eps: float, *, unbiased: bool = False, eps_outside: bool = False):
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, correction=1 if unbiased else 0, keepdim=True)
    return (x - mean) / (var.sqrt() + eps if eps_outside else torch.sqrt(var + eps))


def _layer_norm_mistakes(x, weight, bias, eps) -> list[tuple[torch.Tensor, str]]:
    """Known-wrong versions of layer_norm(x, weight, bias, eps), each with the hint that names the mistake."""
    right = _normalise(x, -1, eps)
    every = tuple(range(x.dim()))
    return [
        (_normalise(x, -1, eps, unbiased=True) * weight + bias, UNBIASED),
        (_normalise(x, -1, eps, eps_outside=True) * weight + bias, OUTSIDE),
        (_normalise(x, -1, eps, unbiased=True, eps_outside=True) * weight + bias, TUTORIAL),
        *[(wrong, SCALE_SHIFT) for wrong in (right, right * weight, right + bias)],
        (right * bias + weight, "weight is the scale and bias the shift: x̂ * weight + bias, not x̂ * bias + weight."),
        (_normalise(x, every, eps) * weight + bias, WHOLE),
        ((x - x.mean()) / torch.sqrt(x.var(dim=-1, correction=0, keepdim=True) + eps) * weight + bias, WHOLE),
        (_normalise(x, 0, eps) * weight + bias, AXIS.format("batch (first)")),  # on 2-D x, dim 1 is the answer
        (_normalise(x, 1, eps) * weight + bias, AXIS.format("sequence (second)")),
        (_normalise(x, every[:-1], eps) * weight + bias, AXIS.format("batch and sequence")),
    ]


class _FromScratch(Exception):
    pass


def _call_layer_norm(layer_norm, x, weight, bias, eps):
    """The reader's function, with F.layer_norm and torch.layer_norm (which nn.LayerNorm calls) refused."""
    with mock.patch.object(F, "layer_norm", side_effect=_FromScratch), \
            mock.patch.object(torch, "layer_norm", side_effect=_FromScratch):
        return call(layer_norm, x, weight, bias, eps, errors={
            _FromScratch: "Write it from scratch with mean, var (or sums) and sqrt: F.layer_norm and nn.LayerNorm "
                          "are what your function is compared with.",
            RuntimeError: lambda error: (f"Your function raised RuntimeError: {error}. Did you keep the reduced "
                                         "dimension (keepdim=True), so that each token's mean and variance "
                                         "broadcast over its features?")})


@checker("layer_norm")
def check_layer_norm(layer_norm) -> None:
    """Check ``layer_norm(x, weight, bias, eps=1e-5) -> like x`` against ``F.layer_norm``, values and gradients."""
    for x, weight, bias, eps in _layer_norm_cases():
        with unchanged("Do not modify x in place (no x -= mean): compute a new tensor.", x):
            out = _call_layer_norm(layer_norm, x, weight, bias, eps)
        diagnose(out, F.layer_norm(x, x.shape[-1:], weight, bias, eps), _layer_norm_mistakes(x, weight, bias, eps),
                 f"your output differs from F.layer_norm (input shape {tuple(x.shape)}, eps={eps})",
                 shape="the output must have the input's shape")
        # Gradients: the function must stay differentiable in x, weight and bias.
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        out = _call_layer_norm(layer_norm, *leaves, eps)
        expect(out.requires_grad, "Your output carries no gradient: do not detach, use .item()/.numpy() or "
                                  "torch.no_grad() inside the function.")
        upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(x.size(-1)))
        grads = torch.autograd.grad((out * upstream).sum(), leaves, allow_unused=True)
        expected = torch.autograd.grad((F.layer_norm(leaves[0], x.shape[-1:], *leaves[1:], eps) * upstream).sum(),
                                       leaves)
        for name, got, want in zip(("x", "weight", "bias"), grads, expected):
            expect(got is not None, f"No gradient reached {name}: keep every step differentiable.")
            diagnose(got, want, otherwise=f"the gradient with respect to {name} differs from F.layer_norm's: keep "
                                          "every step differentiable (no .detach() of the statistics)")


# ---------------------------------------------------------------- pre_norm_block


def _placement_case(seed: int, shape: tuple[int, int, int]):
    g = torch.Generator().manual_seed(seed)
    d_model = shape[-1]
    x = torch.randn(shape, generator=g) * 2 + 0.5
    linear, norm = nn.Linear(d_model, d_model), nn.LayerNorm(d_model)
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
        x, f, norm = _placement_case(seed, shape)
        counted_sublayer, counted_norm = mock.Mock(wraps=f), mock.Mock(wraps=norm)  # they count their calls
        with torch.no_grad():
            with unchanged("Do not modify x in place: compute a new tensor.", x):
                out = pre_norm_block(x, counted_sublayer, counted_norm)
            diagnose(out, x + f(norm(x)), [
                (norm(x + f(x)), "That is post-norm, the paper's LayerNorm(x + Sublayer(x)). Pre-norm moves the norm "
                                 "onto the sub-layer's input and leaves the sum alone: x + Sublayer(LayerNorm(x))."),
                (norm(x + f(norm(x))), "You normalised the sum after the residual as well (the norm ran twice). In "
                                       "pre-norm the output x + Sublayer(LayerNorm(x)) is left unnormalised; a "
                                       "pre-norm stack normalises once more at the very end."),
                (x + f(norm(norm(x))), "You applied the norm twice to the sub-layer's input: normalise once, "
                                       "x + Sublayer(LayerNorm(x))."),
                (x + norm(f(x)), "You normalised the sub-layer's output. Pre-norm normalises its input: "
                                 "x + Sublayer(LayerNorm(x))."),
                (norm(x) + f(norm(x)), "The skip path must carry the raw x: x + Sublayer(LayerNorm(x)), not "
                                       "LayerNorm(x) + …."),
                (f(norm(x)), "Add the residual: return x + Sublayer(LayerNorm(x)), not only the sub-layer's output."),
                (x + f(x), "Apply the norm: pre-norm feeds the sub-layer LayerNorm(x), not x."),
            ], "your block differs from x + sublayer(norm(x))", shape="the output must have the input's shape")
        expect(counted_norm.call_count == 1,
               f"Call norm exactly once per block (you called it {counted_norm.call_count} times).")
        expect(counted_sublayer.call_count == 1,
               f"Call the sub-layer exactly once per block (you called it {counted_sublayer.call_count} times).")
