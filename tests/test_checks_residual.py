"""The Q14 checkers accept the reference solutions and reject known-wrong code with the right hint."""

import functools

import pytest
import torch
from conftest import keeps_rng, rejects, variant

from transformer18 import checks

# ---------------------------------------------------------------- add


def add(x, sublayer):
    return x + sublayer(x)


def test_add_accepts_the_reference(accepts):
    accepts(checks.check_residual, add, lambda x, f: f(x) + x, lambda x, f: torch.add(x, f(x)))


def in_place(x, sublayer):
    x += sublayer(x)
    return x


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, f: f(x), "there is no skip"),
    (lambda x, f: x * f(x), "You multiplied x by sublayer"),
    (lambda x, f: f(x + x), r"applied the sublayer to x \+ x"),
    (lambda x, f: torch.cat([x, f(x)], dim=-1), "you concatenated x and sublayer"),
    (lambda x, f: torch.cat([x, f(x)], dim=0), "you concatenated x and sublayer"),
    (lambda x, f: x + f(f(x)), "called the sublayer 2 times"),
    (lambda x, f: f(x) + f(x), "called the sublayer 2 times"),
    (in_place, "changed x in place"),
    (lambda x, f: x, "never called sublayer"),
    (lambda x, f: x.detach() + f(x), "skips the identity path"),
    (lambda x, f: x + f(x).detach(), "does not go through the sub-layer"),
    (lambda x, f: (x + f(x)).detach(), "cut off from the graph"),
    (lambda x, f: x + 0.5 * f(x), r"must equal x \+ sublayer\(x\)"),
    (lambda x, f: x[:, :1] + f(x)[:, :1], "must have the input's shape"),
    (lambda x, f: (x + f(x)).tolist(), "return a tensor"),
])
def test_add_rejects_wrong_code(wrong, hint):
    rejects(checks.check_residual, wrong, hint)


# ---------------------------------------------------------------- input_gradient_norm


def input_gradient_norm(blocks, x, use_residual, *, whole=False, detach=False, mean=False, squared=False,
                        output=False, as_tensor=False):
    """The reference (a residual around each block), with switches for the mistakes the checker names."""
    x = x.detach().clone().requires_grad_()

    def step(h, block):
        return (h.detach() if detach else h) + block(h) if use_residual and not whole else block(h)

    h = functools.reduce(step, blocks, x)
    h = x + h if use_residual and whole else h
    if output:
        return h.norm().item()
    (grad,) = torch.autograd.grad(h.mean() if mean else h.sum(), x)
    return grad.norm() if as_tensor else grad.norm().item() ** (2 if squared else 1)


def accumulating(blocks, x, use_residual):
    x.requires_grad_(True)
    h = x
    for block in blocks:
        h = h + block(h) if use_residual else block(h)
    h.sum().backward()
    return x.grad.norm().item()


def test_input_gradient_norm_accepts_the_reference(accepts):
    accepts(checks.check_input_gradient_norm, input_gradient_norm,
            variant(input_gradient_norm, as_tensor=True))  # a 0-dim tensor is a number too


@pytest.mark.parametrize("wrong, hint", [
    (lambda b, x, r: input_gradient_norm(b, x, not r), "wrong way round"),
    (lambda b, x, r: input_gradient_norm(b, x, False), "same number as False"),
    (lambda b, x, r: input_gradient_norm(b, x, True), "use_residual=False must apply the blocks without"),
    (variant(input_gradient_norm, whole=True), "Wrap every block in its own residual"),
    (variant(input_gradient_norm, detach=True), "do not detach h"),
    (variant(input_gradient_norm, mean=True), "not their mean"),
    (variant(input_gradient_norm, squared=True), "not its square"),
    (variant(input_gradient_norm, output=True), "norm of the output"),
    (accumulating, "accumulate in x.grad"),
    (lambda b, x, r: torch.ones(3), r"returned a tensor of shape \(3,\)"),
    (lambda b, x, r: "12", "must return a number"),
    (lambda b, x, r: 2 * input_gradient_norm(b, x, r), "the gradient norm is"),
])
def test_input_gradient_norm_rejects_wrong_code(wrong, hint):
    rejects(checks.check_input_gradient_norm, wrong, hint)


# ---------------------------------------------------------------- start_as_identity


def zero(*layers, weight=True, bias=True):
    with torch.no_grad():
        for layer in layers:
            if weight:
                layer.weight.zero_()
            if bias:
                layer.bias.zero_()


def start_as_identity(attention, feed_forward):
    zero(attention.w_o, feed_forward.w_2)


def zero_values_instead(attention, feed_forward):
    """Also valid: zero values give zero heads; w_o's bias must go too. w_v still learns."""
    zero(attention.w_v, feed_forward.w_2)
    zero(attention.w_o, weight=False)


def test_start_as_identity_accepts_the_reference(accepts):
    accepts(checks.check_start_as_identity, start_as_identity, zero_values_instead)


def test_the_checkers_leave_the_global_rng_alone(accepts):
    keeps_rng(accepts, checks.check_start_as_identity, start_as_identity)
    keeps_rng(accepts, checks.check_input_gradient_norm, input_gradient_norm)


def zero_everything(attention, feed_forward):
    zero(attention.w_q, attention.w_k, attention.w_v, attention.w_o, feed_forward.w_1, feed_forward.w_2)


def zero_attention_everything(attention, feed_forward):
    zero(attention.w_q, attention.w_k, attention.w_v, attention.w_o, feed_forward.w_2)


def weights_only(attention, feed_forward):
    zero(attention.w_o, feed_forward.w_2, bias=False)


def queries_and_keys(attention, feed_forward):
    zero(attention.w_q, attention.w_k, feed_forward.w_2)


def ffn_weight_only(attention, feed_forward):
    zero(attention.w_o)
    zero(feed_forward.w_2, bias=False)


def ffn_first_layer(attention, feed_forward):
    zero(attention.w_o, feed_forward.w_1)


def ffn_first_layer_and_last_bias(attention, feed_forward):
    zero(attention.w_o, feed_forward.w_1)
    zero(feed_forward.w_2, weight=False)


def without_no_grad(attention, feed_forward):
    attention.w_o.weight.zero_()


def frozen(attention, feed_forward):
    start_as_identity(attention, feed_forward)
    attention.w_o.weight.requires_grad_(False)


def removed_bias(attention, feed_forward):
    zero(attention.w_o, weight=True, bias=False)
    attention.w_o.bias = None
    zero(feed_forward.w_2)


def nothing(attention, feed_forward):
    pass


@pytest.mark.parametrize("wrong, hint", [
    (zero_everything, "you zeroed too much"),
    (zero_attention_everything, "you zeroed too much"),
    (weights_only, "zero w_o.bias too"),
    (queries_and_keys, "uniform, not zero"),
    (ffn_weight_only, "zero w_2.bias too"),
    (ffn_first_layer, "but w_2 still adds its bias"),
    (ffn_first_layer_and_last_bias, "ReLU outputs 0 and has gradient 0"),
    (without_no_grad, "torch.no_grad"),
    (frozen, "no longer requires a gradient"),
    (removed_bias, "Keep every parameter"),
    (nothing, "attention sub-layer still outputs something non-zero"),
])
def test_start_as_identity_rejects_wrong_code(wrong, hint):
    rejects(checks.check_start_as_identity, wrong, hint)
