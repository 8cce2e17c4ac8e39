"""The exercise framework: the ``checker`` decorator and the ``expect`` helpers."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

__all__ = ["CheckFailed", "checker", "expect", "expect_close"]


class CheckFailed(AssertionError):
    """Raised by a checker for wrong code; its message is the hint shown to the reader."""


def expect(condition: bool, hint: str) -> None:
    """Fail the check with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(hint)


def expect_close(actual, expected, hint: str, *, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Fail with ``hint`` (and the largest difference) unless ``actual`` matches ``expected``."""
    actual = torch.as_tensor(actual)
    expected = torch.as_tensor(expected)
    if actual.shape != expected.shape:
        raise CheckFailed(f"{hint} (shape {tuple(actual.shape)}, expected {tuple(expected.shape)})")
    try:
        torch.testing.assert_close(actual.to(expected.dtype), expected, atol=atol, rtol=rtol)
    except AssertionError:
        diff = (actual.to(expected.dtype) - expected).abs().max().item()
        raise CheckFailed(f"{hint} (largest difference {diff:.3g})") from None


def checker(title: str) -> Callable[[Callable], Callable[[Callable], None]]:
    """Turn ``body(reader_fn)`` (which raises :class:`CheckFailed` on wrong code) into a checker."""

    def decorate(body: Callable) -> Callable[[Callable], None]:
        @functools.wraps(body)
        def check(reader_fn: Callable) -> None:
            if not callable(reader_fn):
                raise TypeError(f"{body.__name__} takes your function itself, got {type(reader_fn).__name__}")
            try:
                body(reader_fn)
            except NotImplementedError:
                print(f"… {title}: not implemented yet. Replace `raise NotImplementedError` with your code.")
                return
            print(f"✓ {title}: all checks passed.")

        check.title = title
        return check

    return decorate
