"""Shared fixtures: a display recorder for widget tests, the repository root."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def displayed(monkeypatch):
    """Record what ``IPython.display.display`` would show, as (object, kwargs) pairs."""
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend((o, kw) for o in objs))
    return shown


@pytest.fixture
def accepts(capsys):
    """``accepts(check, solution, ...)``: the checker prints its ✓ line for every solution."""

    def run(check, *solutions):
        for solution in solutions:
            check(solution)
            assert f"✓ {check.title}: all checks passed." in capsys.readouterr().out

    return run


def rejects(check, wrong, hint: str) -> None:
    """The checker raises ``CheckFailed`` for ``wrong`` with a message that ``hint`` (a regex) matches."""
    from transformer18.checks import CheckFailed

    with pytest.raises(CheckFailed, match=hint):
        check(wrong)


def keeps_rng(accepts, check, *solutions) -> None:
    """The checker accepts every solution and leaves PyTorch's global RNG state as it found it."""
    import torch

    torch.manual_seed(1234)
    state = torch.get_rng_state()
    accepts(check, *solutions)
    assert torch.equal(torch.get_rng_state(), state), f"{check.__name__} changed the global RNG state"


def variant(solution, **switches):
    """``solution`` with keyword ``switches`` set: a reference with switches turned into a known-wrong variant."""
    return lambda *args: solution(*args, **switches)
