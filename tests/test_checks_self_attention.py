"""The Q10 checkers accept correct masks and reject the classic mistakes with the right hint."""

import numpy as np
import pytest
import torch
from conftest import rejects

from transformer18 import checks
from transformer18.checks import check_local_mask, check_sparse_mask, check_strided_mask
from transformer18.self_attention import pattern_mask


def grid(size):
    return torch.arange(size).unsqueeze(1), torch.arange(size).unsqueeze(0)


def local(size, window):
    i, j = grid(size)
    return (i - j).abs() <= window


def strided(size, stride):
    i, j = grid(size)
    return (i - j) % stride == 0


def local_loops(size, window):
    mask = torch.zeros(size, size, dtype=torch.bool)
    for i in range(size):
        for j in range(max(0, i - window), min(size, i + window + 1)):
            mask[i, j] = True
    return mask


def strided_loops(size, stride):
    return torch.tensor([[abs(i - j) % stride == 0 for j in range(size)] for i in range(size)])


def test_the_checkers_are_exported():
    for name in ("check_local_mask", "check_strided_mask", "check_sparse_mask"):
        assert name in checks.__all__


# ---------------------------------------------------------------- local_mask


@pytest.mark.parametrize("correct", [
    local,
    local_loops,
    lambda size, window: pattern_mask(size, "local", window=window),
    lambda size, window: torch.ones(size, size, dtype=torch.bool).triu(-window).tril(window),
], ids=["vectorised", "loops", "package", "triu-tril"])
def test_local_accepts_correct_masks(correct, accepts):
    accepts(check_local_mask, correct)


@pytest.mark.parametrize("wrong, hint", [
    (lambda s, w: ~local(s, w), "inverted: in this course True means \\*may attend\\*"),
    (lambda s, w: (grid(s)[0] - grid(s)[1]).abs() < w, "The window is inclusive"),
    (lambda s, w: local(s, w) & (grid(s)[1] <= grid(s)[0]), "only one side of the window \\(keys before"),
    (lambda s, w: local(s, w) & (grid(s)[1] >= grid(s)[0]), "only one side of the window \\(keys after"),
    (lambda s, w: grid(s)[0] - grid(s)[1] <= w, "Take the absolute value"),
    (lambda s, w: local(s, w).float(), "dtype torch.float32; return a bool tensor"),
    (lambda s, w: local(s, w).long(), "dtype torch.int64; return a bool tensor"),
    (lambda s, w: local(s, w)[None, None], r"shape \(1, 1, 7, 7\); return one row per query"),
    (lambda s, w: local(s, w)[0], r"shape \(7,\)"),
    (lambda s, w: local(s, w).numpy(), "return a torch tensor, got ndarray"),
    (lambda s, w: local(s, w + 1), r"local_mask\(7, 2\) is wrong: query 0 may not attend to key 3 \(i − j = -3"),
    (lambda s, w: local(s, w) & (grid(s)[0] != grid(s)[1]), r"query 0 may attend to key 0 \(i − j = 0"),
])
def test_local_rejects_mistakes_with_hints(wrong, hint):
    rejects(check_local_mask, wrong, hint)


# ---------------------------------------------------------------- strided_mask


@pytest.mark.parametrize("correct", [
    strided,
    strided_loops,
    lambda size, stride: pattern_mask(size, "strided", stride=stride),
    lambda size, stride: torch.fmod(grid(size)[0] - grid(size)[1], stride) == 0,
    lambda size, stride: (grid(size)[1] - grid(size)[0]) % stride == 0,
], ids=["vectorised", "loops", "package", "fmod", "j-minus-i"])
def test_strided_accepts_correct_masks(correct, accepts):
    accepts(check_strided_mask, correct)


@pytest.mark.parametrize("wrong, hint", [
    (lambda s, k: ~strided(s, k), "inverted"),
    (lambda s, k: (grid(s)[0] + grid(s)[1]) % k == 0, "Use the offset i − j, not the sum i \\+ j"),
    (lambda s, k: (grid(s)[0] % k == 0).expand(s, s), "You tested a position"),
    (lambda s, k: (grid(s)[1] % k == 0).expand(s, s), "You tested a position"),
    (lambda s, k: (grid(s)[0] % k == 0) | (grid(s)[1] % k == 0), r"strided_mask\(9, 3\) is wrong"),
    (lambda s, k: (grid(s)[0] - grid(s)[1]) % (k - 1) == 0, "Off by one.*repeats every 2"),
    (lambda s, k: (grid(s)[0] - grid(s)[1]) % (k + 1) == 0, "Off by one.*repeats every 4"),
    (lambda s, k: strided(s, k) & (grid(s)[1] <= grid(s)[0]), "only the keys before the query"),
    (lambda s, k: strided(s, k).int(), "dtype torch.int32; return a bool tensor"),
    (lambda s, k: strided(s, k).T[:-1], r"shape \(8, 9\)"),
])
def test_strided_rejects_mistakes_with_hints(wrong, hint):
    rejects(check_strided_mask, wrong, hint)


def test_strided_sum_bug_is_caught_even_though_stride_two_hides_it():
    i, j = grid(9)
    assert torch.equal((i + j) % 2 == 0, strided(9, 2))  # why the checker must test other strides
    rejects(check_strided_mask, lambda s, k: (grid(s)[0] + grid(s)[1]) % k == 0, "not the sum")


# ---------------------------------------------------------------- sparse_mask


@pytest.mark.parametrize("correct", [
    lambda s, w, k: local(s, w) | strided(s, k),
    lambda s, w, k: pattern_mask(s, "local", window=w) | pattern_mask(s, "strided", stride=k),
    lambda s, w, k: torch.logical_or(local_loops(s, w), strided_loops(s, k)),
    lambda s, w, k: (local(s, w).int() + strided(s, k).int()) > 0,
], ids=["union", "package", "logical_or", "sum"])
def test_sparse_accepts_correct_masks(correct, accepts):
    accepts(check_sparse_mask, correct)


@pytest.mark.parametrize("wrong, hint", [
    (lambda s, w, k: ~(local(s, w) | strided(s, k)), "inverted"),
    (lambda s, w, k: local(s, w) & strided(s, k), "not the intersection"),
    (lambda s, w, k: local(s, w) ^ strided(s, k), "Exclusive or"),
    (lambda s, w, k: local(s, w), "the local window alone"),
    (lambda s, w, k: strided(s, k), "the strided pattern alone"),
    (lambda s, w, k: (local(s, w) | strided(s, k)).float(), "return a bool tensor"),
    (lambda s, w, k: np.asarray(local(s, w) | strided(s, k)), "return a torch tensor"),
    (lambda s, w, k: local(s, w + 1) | strided(s, k), r"sparse_mask\(12, 1, 4\) is wrong"),
])
def test_sparse_rejects_mistakes_with_hints(wrong, hint):
    rejects(check_sparse_mask, wrong, hint)
