"""check_positional_encoding accepts correct tables and rejects the classic mistakes with the right hint."""

import math

import pytest
import torch
from conftest import rejects, variant

from transformer18 import checks
from transformer18.checks import CheckFailed, check_positional_encoding
from transformer18.positional import sinusoidal_encoding


def table(max_len, d_model, *, even=torch.sin, odd=torch.cos, power=lambda j: 2 * (j // 2), divide=True):
    """A vectorised encoding with switches for the mistakes; the defaults give the paper's table."""
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(d_model).unsqueeze(0)
    scale = 10000.0 ** (power(j).double() / d_model)
    angle = pos / scale if divide else pos * scale
    return torch.where(j % 2 == 0, even(angle), odd(angle)).float()


def loops(max_len, d_model):
    out = torch.zeros(max_len, d_model)
    for pos in range(max_len):
        for i in range(d_model // 2):
            out[pos, 2 * i] = math.sin(pos / 10000 ** (2 * i / d_model))
            out[pos, 2 * i + 1] = math.cos(pos / 10000 ** (2 * i / d_model))
    return out


def roles_swapped(max_len, d_model):
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(d_model).unsqueeze(0)
    angle = (j // 2).double() / 10000.0 ** (2 * pos / d_model)
    return torch.where(j % 2 == 0, angle.sin(), angle.cos())


def test_the_checker_is_exported():
    assert "check_positional_encoding" in checks.__all__


@pytest.mark.parametrize("correct", [
    sinusoidal_encoding,
    table,
    loops,
    lambda max_len, d_model: table(max_len, d_model).double(),
    lambda max_len, d_model: table(max_len, d_model).half(),
    lambda max_len, d_model: table(max_len, d_model).bfloat16(),
], ids=["package", "vectorised", "loops", "float64", "float16", "bfloat16"])
def test_accepts_correct_tables_of_any_float_dtype(correct, accepts):
    accepts(check_positional_encoding, correct)


def test_float32_values_must_be_float32_accurate():
    def slightly_off(max_len, d_model):
        out = table(max_len, d_model)
        out[1:, 1::3] += 3e-4  # row 0 is right, later rows are off by three times the tolerance
        return out

    with pytest.raises(CheckFailed, match="differs from PE"):
        check_positional_encoding(slightly_off)


@pytest.mark.parametrize("wrong, hint", [
    (lambda L, d: table(L, d, even=torch.cos, odd=torch.sin), "Even dimensions hold the sine"),
    (lambda L, d: table(L, d, power=lambda j: j), "exponent must use 2i.*raw dimension index j"),
    (lambda L, d: table(L, d, power=lambda j: j // 2), "exponent is 2i/d_model, not i/d_model"),
    (lambda L, d: table(L, d).T, "transposed"),
    (roles_swapped, "swapped in the formula"),
    (lambda L, d: table(L, d, divide=False), "Divide the position"),
    (lambda L, d: table(L, d).unsqueeze(0), "without a leading batch dimension"),
    (lambda L, d: table(L, d).numpy(), "return a torch tensor"),
    (lambda L, d: (table(L, d) * 100).long(), "floating-point values"),
    (lambda L, d: table(L, d)[:-1], "has shape"),
    (lambda L, d: table(L, d) + 0.5, r"PE\[0\] must be \[0, 1, 0, 1"),
    (lambda L, d: table(L, d, power=lambda j: 2 * (j // 2) * 1.1), "differs from PE"),
])
def test_rejects_wrong_tables_with_the_right_hint(wrong, hint):
    rejects(check_positional_encoding, wrong, hint)


def _article(max_len, d_model, *, sine=False, dimension=False, cosine=False):
    """The published encoding of Q6's exercise, with switches that fix one of its bugs each."""
    out = torch.zeros(max_len, d_model, dtype=torch.float64)
    for pos in range(max_len):
        for dim in range(d_model):
            if dimension:  # the pair's frequency, the position as the numerator
                angle = pos / 10000.0 ** ((dim - dim % 2) / d_model)
            else:
                angle = 10000.0 ** (2 * pos / d_model + dim % 2)
            value = math.sin(angle) if sine else angle
            if dim % 2 == 0:
                out[pos, dim] = value
            else:
                out[pos, dim] = math.cos(angle) if cosine and sine else -value
    return out


def test_every_bug_of_the_published_encoding_is_named_until_it_is_fixed():
    with pytest.raises(CheckFailed) as failure:
        check_positional_encoding(_article)
    message = str(failure.value)
    assert message.startswith("3 problems:")
    for hint in ("No sine and no cosine", "The dimension barely matters", "Negation is not a cosine"):
        assert hint in message
    rejects(check_positional_encoding, variant(_article, sine=True, cosine=True),
            "^The dimension barely matters")  # sines and cosines, still of the article's angles
    rejects(check_positional_encoding, variant(_article, dimension=True), "^2 problems:(?s:.*)No sine(?s:.*)Negation")
    rejects(check_positional_encoding, variant(_article, dimension=True, sine=True), "^Negation is not a cosine")


def test_the_published_encoding_with_every_bug_fixed_is_accepted(accepts):
    accepts(check_positional_encoding, variant(_article, dimension=True, sine=True, cosine=True))
