"""Q15's checkers accept the reference solutions and reject every known-wrong variant with its hint."""

import pytest
import torch
import torch.nn.functional as F
from conftest import rejects
from torch import nn

from transformer18 import checks

# ---------------------------------------------------------------- check_layer_norm


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def normalise_over(dims):
    def wrong(x, weight, bias, eps=1e-5):
        d = dims(x)
        mean = x.mean(dim=d, keepdim=True)
        var = x.var(dim=d, correction=0, keepdim=True)
        return (x - mean) / torch.sqrt(var + eps) * weight + bias
    return wrong


def unbiased(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + eps) * weight + bias


def eps_outside(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    return (x - mean) / (x.std(-1, correction=0, keepdim=True) + eps) * weight + bias


def annotated_transformer(x, weight, bias, eps=1e-5):
    return weight * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps) + bias


def whole_tensor_mean(x, weight, bias, eps=1e-5):
    var = x.var(-1, correction=0, keepdim=True)
    return (x - x.mean()) / torch.sqrt(var + eps) * weight + bias


def whole_tensor_statistics(x, weight, bias, eps=1e-5):
    return (x - x.mean()) / torch.sqrt(x.var(correction=0) + eps) * weight + bias


def no_keepdim(x, weight, bias, eps=1e-5):
    mean, var = x.mean(-1), x.var(-1, correction=0)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def detached_statistics(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True).detach()
    var = x.var(-1, correction=0, keepdim=True).detach()
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def under_no_grad(x, weight, bias, eps=1e-5):
    with torch.no_grad():
        return layer_norm(x, weight, bias, eps)


def in_place(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, correction=0, keepdim=True)
    x = x.detach() if x.requires_grad else x
    x -= mean.detach()
    return x / torch.sqrt(var + eps) * weight + bias


def test_layer_norm_accepts_the_reference(accepts):
    accepts(checks.check_layer_norm, layer_norm)


@pytest.mark.parametrize("wrong, hint", [
    (unbiased, "unbiased estimate"),
    (eps_outside, "eps belongs inside the square root"),
    (annotated_transformer, "LayerNorm of many tutorials"),
    (normalise_over(lambda x: 0), "over the batch \\(first\\) axis: that is batch normalisation"),
    (normalise_over(lambda x: 1 if x.dim() >= 3 else -1), "over the sequence \\(second\\) axis"),
    (normalise_over(lambda x: tuple(range(x.dim() - 1))), "over the batch (and sequence|\\(first\\)) axis"),
    (lambda x, w, b, eps=1e-5: layer_norm(x, torch.ones_like(w), torch.zeros_like(b), eps), "scale and shift"),
    (lambda x, w, b, eps=1e-5: layer_norm(x, w, torch.zeros_like(b), eps), "scale and shift"),
    (lambda x, w, b, eps=1e-5: layer_norm(x, torch.ones_like(w), b, eps), "scale and shift"),
    (lambda x, w, b, eps=1e-5: layer_norm(x, b, w, eps), "weight is the scale and bias the shift"),
    (whole_tensor_mean, "not the mean of the whole tensor"),
    (whole_tensor_statistics, "not the mean of the whole tensor"),
    (no_keepdim, "keepdim=True"),
    (lambda x, w, b, eps=1e-5: F.layer_norm(x, x.shape[-1:], w, b, eps), "from scratch"),
    (lambda x, w, b, eps=1e-5: nn.functional.layer_norm(x, x.shape[-1:], w, b, eps), "from scratch"),
    (lambda x, w, b, eps=1e-5: torch.layer_norm(x, x.shape[-1:], w, b, eps), "from scratch"),
    (detached_statistics, "gradient with respect to x differs"),
    (under_no_grad, "carries no gradient"),
    (in_place, "Do not modify x in place"),
    (lambda x, w, b, eps=1e-5: layer_norm(x, w, b, eps)[..., :-1], "the input's shape"),
    (lambda x, w, b, eps=1e-5: layer_norm(x, w, b, eps) * 1.01, "differs from F.layer_norm"),
])
def test_layer_norm_rejects_wrong_code_with_a_hint(wrong, hint):
    rejects(checks.check_layer_norm, wrong, hint)


def test_layer_norm_checker_restores_torch_layer_norm():
    fn, torch_fn = F.layer_norm, torch.layer_norm
    rejects(checks.check_layer_norm, lambda x, w, b, eps=1e-5: F.layer_norm(x, x.shape[-1:], w, b, eps), "from scratch")
    assert F.layer_norm is fn and torch.layer_norm is torch_fn
    nn.LayerNorm(4)(torch.randn(2, 4))  # still works


def test_torch_module_layer_norm_is_refused_too():
    def with_module(x, weight, bias, eps=1e-5):
        norm = nn.LayerNorm(x.shape[-1], eps=eps)
        with torch.no_grad():
            norm.weight.copy_(weight)
            norm.bias.copy_(bias)
        return norm(x)

    rejects(checks.check_layer_norm, with_module, "from scratch")


# ---------------------------------------------------------------- check_norm_placement


def pre_norm_block(x, sublayer, norm):
    return x + sublayer(norm(x))


def sublayer_twice(x, sublayer, norm):
    normed = norm(x)
    sublayer(normed)
    return x + sublayer(normed)


def norm_called_twice(x, sublayer, norm):
    normed = norm(x)
    norm(x)
    return x + sublayer(normed)


def in_place_block(x, sublayer, norm):
    x += sublayer(norm(x))
    return x


def test_norm_placement_accepts_the_reference(accepts):
    accepts(checks.check_norm_placement, pre_norm_block)


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, s, n: n(x + s(x)), "That is post-norm"),
    (lambda x, s, n: n(x + s(n(x))), "normalised the sum after the residual as well"),
    (lambda x, s, n: x + s(n(n(x))), "applied the norm twice to the sub-layer's input"),
    (lambda x, s, n: x + n(s(x)), "normalised the sub-layer's output"),
    (lambda x, s, n: n(x) + s(n(x)), "skip path must carry the raw x"),
    (lambda x, s, n: s(n(x)), "Add the residual"),
    (lambda x, s, n: x + s(x), "Apply the norm"),
    (sublayer_twice, "Call the sub-layer exactly once"),
    (norm_called_twice, "Call norm exactly once"),
    (in_place_block, "Do not modify x in place"),
    (lambda x, s, n: (x + s(n(x)))[:, :-1], "the input's shape"),
    (lambda x, s, n: x - s(n(x)), "differs from x \\+ sublayer\\(norm\\(x\\)\\)"),
])
def test_norm_placement_rejects_wrong_code_with_a_hint(wrong, hint):
    rejects(checks.check_norm_placement, wrong, hint)


def test_checkers_are_exported():
    assert {"check_layer_norm", "check_norm_placement"} <= set(checks.__all__)
