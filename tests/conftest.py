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
