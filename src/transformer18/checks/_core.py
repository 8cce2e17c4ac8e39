"""The exercise framework: the ``checker`` decorator, ``expect`` helpers and ``diagnose``, which states a
checker's known mistakes as data: each a wrong variant of the answer with the hint it earns; ``call``,
``unchanged`` and ``seeded`` for running the reader's code."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping

import torch

__all__ = ["CheckFailed", "call", "checker", "diagnose", "expect", "expect_close", "expect_tensor", "matches", "seeded",
           "unchanged"]


class CheckFailed(AssertionError):
    """Raised by a checker for wrong code; its message is the hint shown to the reader."""


def expect(condition: bool, hint: str) -> None:
    """Fail the check with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(hint)


def expect_tensor(value) -> None:
    """Fail with "return a tensor, got <its type>" unless ``value`` is a tensor."""
    expect(isinstance(value, torch.Tensor), f"return a tensor, got {type(value).__name__}")


def expect_close(actual, expected, hint: str, *, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Fail with ``hint`` (and the largest difference) unless ``actual`` matches ``expected``."""
    diagnose(torch.as_tensor(actual), torch.as_tensor(expected), otherwise=hint, atol=atol, rtol=rtol)


def matches(actual, expected, *, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Whether ``actual`` equals ``expected``: tensors of one shape (their values, not dtypes; close if both are
    floating point), numbers (close if one is a float), tuples and lists item by item, anything else by ``==``."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
            return False
        actual, expected = actual.detach().cpu(), expected.detach().cpu()
        if actual.is_floating_point() and expected.is_floating_point():
            return torch.allclose(actual.double(), expected.double(), atol=atol, rtol=rtol)
        return bool((actual == expected).all())
    if isinstance(expected, (tuple, list)):
        return (isinstance(actual, (tuple, list)) and len(actual) == len(expected)
                and all(matches(a, e, atol=atol, rtol=rtol) for a, e in zip(actual, expected)))
    numbers = [isinstance(x, (int, float)) and not isinstance(x, bool) for x in (actual, expected)]
    if all(numbers) and (isinstance(actual, float) or isinstance(expected, float)):
        return math.isclose(actual, expected, abs_tol=atol, rel_tol=rtol)
    return type(actual) is type(expected) and actual == expected


def diagnose(actual, expected, mistakes: Iterable[tuple[object, str]] = (), otherwise: str = "wrong answer", *,
             shape: str | None = None, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Pass if ``actual`` matches ``expected``; otherwise fail with the hint of the first mistake it shows.

    ``mistakes`` is a catalogue of ``(variant, hint)`` pairs, tried in order. A variant is the value a known
    mistake produces (it names ``actual`` when ``actual`` matches it and ``expected`` does not), a
    zero-argument function computing that value only when needed (skipped if it raises: the mistake cannot
    occur on this case), or a bool: a condition that names the mistake when True. With no mistake found the
    check fails with ``otherwise``; for tensors, with the two shapes if they differ (after ``shape``, the
    wanted shape in words, e.g. "the output must be (batch, len, d_model)"), else with the largest difference.
    """
    if matches(actual, expected, atol=atol, rtol=rtol):
        return
    for variant, hint in mistakes:
        if callable(variant):
            try:
                variant = variant()
            except NotImplementedError:  # the reader's stub, called from a variant
                raise
            except Exception:  # noqa: BLE001 - a variant that cannot be computed here does not apply
                continue
        if variant is True or (not isinstance(variant, bool) and matches(actual, variant, atol=atol, rtol=rtol)
                               and not matches(variant, expected, atol=atol, rtol=rtol)):
            raise CheckFailed(hint)
    if isinstance(expected, torch.Tensor):
        expect_tensor(actual)
        if actual.shape != expected.shape and shape:
            raise CheckFailed(f"{shape} = {tuple(expected.shape)}, got {tuple(actual.shape)}")
        if actual.shape != expected.shape:
            raise CheckFailed(f"{otherwise} (shape {tuple(actual.shape)}, expected {tuple(expected.shape)})")
        if actual.is_floating_point() and expected.is_floating_point():
            diff = (actual.detach().cpu().double() - expected.detach().cpu().double()).abs().max().item()
            raise CheckFailed(f"{otherwise} (largest difference {diff:.3g})")
    raise CheckFailed(otherwise)


def call(fn: Callable, *args, errors: Mapping[object, str | Callable[[Exception], str]], **kwargs):
    """Return ``fn(*args, **kwargs)``, turning the exceptions that ``errors`` names into hints.

    ``errors`` maps an exception type (or a tuple of types) or a fragment of an exception's message to its
    hint, tried in order; the first that names the exception raises :class:`CheckFailed` with the hint (a
    hint may be a function of the exception, to quote it). ``NotImplementedError`` (the untouched stub,
    which ``checker`` reports as such), ``CheckFailed`` and any exception not named pass through untouched.
    """
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, CheckFailed):
        raise
    except Exception as error:
        for key, hint in errors.items():
            if isinstance(error, key) if not isinstance(key, str) else key in str(error):
                raise CheckFailed(hint(error) if callable(hint) else hint) from None
        raise


def _same(a, b) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@contextlib.contextmanager
def unchanged(hint: str, *inputs) -> Iterator[None]:
    """Fail with ``hint`` if the block changes any of ``inputs`` in place (tensors compared exactly, anything
    else, such as lists, by ``==`` with a deep copy)."""
    before = [x.detach().clone() if isinstance(x, torch.Tensor) else copy.deepcopy(x) for x in inputs]
    yield
    expect(all(_same(x.detach() if isinstance(x, torch.Tensor) else x, b) for x, b in zip(inputs, before)), hint)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with PyTorch's global RNG seeded with ``seed`` (for modules that initialise themselves
    from it), and give the reader back their own RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def checker(title: str) -> Callable[[Callable], Callable[[Callable], None]]:
    """Turn ``body(reader_fn)`` (which raises :class:`CheckFailed` on wrong code) into a checker. The body runs
    on a fork of PyTorch's global RNG: whatever the checker (or the reader's code inside it) draws, the
    reader's RNG state afterwards is the one from before the check."""

    def decorate(body: Callable) -> Callable[[Callable], None]:
        @functools.wraps(body)
        def check(reader_fn: Callable) -> None:
            if not callable(reader_fn):
                raise TypeError(f"{body.__name__} takes your function itself, got {type(reader_fn).__name__}")
            try:
                with torch.random.fork_rng(devices=[]):  # CPU only: no CUDA warning, no CUDA state touched
                    body(reader_fn)
            except NotImplementedError:
                print(f"… {title}: not implemented yet. Replace `raise NotImplementedError` with your code.")
                return
            print(f"✓ {title}: all checks passed.")

        check.title = title
        return check

    return decorate
