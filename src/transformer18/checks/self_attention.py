"""Checkers for Q10 (self-attention): the local, strided and combined (sparse) attention patterns."""

from __future__ import annotations

import torch

from ._core import checker, diagnose, expect

__all__ = ["check_local_mask", "check_strided_mask", "check_sparse_mask"]


def _positions(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Query positions i as a column (size, 1) and key positions j as a row (1, size)."""
    return torch.arange(size).unsqueeze(1), torch.arange(size).unsqueeze(0)


def _local(size: int, window: int) -> torch.Tensor:
    i, j = _positions(size)
    return (i - j).abs() <= window  # (size, size)


def _strided(size: int, stride: int) -> torch.Tensor:
    i, j = _positions(size)
    return (i - j) % stride == 0  # (size, size)


def _check_mask(got, expected: torch.Tensor, call: str, mistakes: list[tuple[torch.Tensor, str]], rule: str) -> None:
    """Shared checks of a (size, size) bool mask; ``mistakes`` lists (the mask a mistake gives, its hint)."""
    size = expected.size(0)
    expect(isinstance(got, torch.Tensor), f"{call}: return a torch tensor, got {type(got).__name__}")
    expect(tuple(got.shape) == (size, size),
           f"{call} has shape {tuple(got.shape)}; return one row per query and one column per key, "
           f"(size, size) = {(size, size)}, with no batch or head dimensions.")
    expect(got.dtype == torch.bool,
           f"{call} has dtype {got.dtype}; return a bool tensor (True = may attend). A comparison such as "
           "`... <= window` or `... == 0` already gives one, so there is no need to convert.")
    wrong = (got.cpu() != expected).nonzero()
    i, j = (int(v) for v in wrong[0]) if len(wrong) else (0, 0)
    diagnose(got.cpu(), expected, mistakes, f"{call} is wrong: query {i} {'may' if expected[i, j] else 'may not'} "
                                            f"attend to key {j} (i − j = {i - j}) ({rule}).")


_INVERTED = ("Your mask is inverted: in this course True means *may attend* (see the notation page), "
             "so the allowed keys must be True and the hidden ones False.")


@checker("local_mask")
def check_local_mask(local_mask) -> None:
    """Check ``local_mask(size, window) -> (size, size) bool``: True where |i − j| ≤ window."""
    for size, window in [(7, 2), (9, 3), (6, 1), (5, 0), (4, 5), (1, 0)]:
        i, j = _positions(size)
        expected = _local(size, window)
        two_sided = "Local attention here is two-sided: query i sees keys i − window … i + window, |i − j| ≤ window."
        _check_mask(local_mask(size, window), expected, f"local_mask({size}, {window})", [
            (~expected, _INVERTED),
            ((i - j).abs() < window, "The window is inclusive: a key exactly `window` positions away may still be "
                                     "attended (|i − j| ≤ window). You used a strict < and lost the two outermost "
                                     "diagonals."),
            ((i - j >= 0) & (i - j <= window), "You kept only one side of the window (keys before the query, as a "
                                               f"causal mask would). {two_sided}"),
            ((j - i >= 0) & (j - i <= window), "You kept only one side of the window (keys after the query). "
                                               f"{two_sided}"),
            (i - j <= window, "Take the absolute value of the offset: without it, i − j ≤ window lets a query see "
                              "every key after it, however far. Use |i − j| ≤ window."),
        ], f"a key is allowed when |i − j| ≤ window = {window}")


@checker("strided_mask")
def check_strided_mask(strided_mask) -> None:
    """Check ``strided_mask(size, stride) -> (size, size) bool``: True where (i − j) mod stride = 0."""
    for size, stride in [(9, 3), (10, 4), (8, 5), (7, 2), (5, 1), (3, 7)]:
        i, j = _positions(size)
        expected = _strided(size, stride)
        positions = ("You tested a position (i % stride or j % stride), which marks whole rows or columns of the "
                     "mask. The pattern is about the offset between query and key: (i − j) % stride == 0.")
        _check_mask(strided_mask(size, stride), expected, f"strided_mask({size}, {stride})", [
            (~expected, _INVERTED),
            ((i + j) % stride == 0, "Use the offset i − j, not the sum i + j: key j is attended when it lies a "
                                    "multiple of `stride` positions away from query i, (i − j) % stride == 0. (For "
                                    "stride 2 the two agree, which is why this bug hides in small tests.)"),
            ((i % stride == 0).expand(size, size), positions),
            ((j % stride == 0).expand(size, size), positions),
            (((i - j) % stride == 0) & (j <= i), "You kept only the keys before the query (as a causal mask would). "
                                                 "The strided pattern here is two-sided: every j with "
                                                 "(i − j) % stride == 0, before or after i."),
            *[((i - j) % other == 0, f"Off by one: keys are exactly `stride` = {stride} positions apart, "
                                     f"(i − j) % stride == 0; your mask repeats every {other}.")
              for other in (stride - 1, stride + 1) if other >= 1],
        ], f"a key is allowed when (i − j) mod stride = 0, stride = {stride}")


@checker("sparse_mask")
def check_sparse_mask(sparse_mask) -> None:
    """Check ``sparse_mask(size, window, stride)``: the union of the local and the strided pattern."""
    for size, window, stride in [(12, 1, 4), (10, 2, 3), (16, 2, 4), (6, 0, 2), (1, 0, 1)]:
        local, strided = _local(size, window), _strided(size, stride)
        expected = local | strided
        _check_mask(sparse_mask(size, window, stride), expected, f"sparse_mask({size}, {window}, {stride})", [
            (~expected, _INVERTED),
            (local & strided, "A key may be attended if it is near the query OR at a multiple of the stride: take the "
                              "union (|) of the two masks, not the intersection (&)."),
            (local ^ strided, "Exclusive or drops the keys both patterns allow (the query itself, for a start): "
                              "combine with | (union), not ^."),
            (local, "Your mask is the local window alone: add the strided keys with | (union), so that some keys far "
                    "away are reachable in one step."),
            (strided, "Your mask is the strided pattern alone: add the local window with | (union), so that every "
                      "query also sees its neighbours."),
        ], f"a key is allowed when |i − j| ≤ {window} or (i − j) mod {stride} = 0")
