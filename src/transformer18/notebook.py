"""Helpers every chapter notebook uses in its setup cell: seeding, Colab detection, device choice."""

from __future__ import annotations

import os
import random
import sys

import torch

__all__ = ["IN_COLAB", "BOOK_BUILD_ENV", "building_book", "set_seed", "device", "setup"]

#: True when the notebook runs inside Google Colab.
IN_COLAB: bool = "google.colab" in sys.modules

#: Environment variable the book build sets (``ci/build.sh``): widgets then publish static figures.
BOOK_BUILD_ENV = "T18_BOOK_BUILD"


def building_book() -> bool:
    """True while Jupyter Book executes the notebook to publish it."""
    return os.environ.get(BOOK_BUILD_ENV, "") == "1"


def set_seed(seed: int = 0) -> torch.Generator:
    """Seed Python's, NumPy's (if installed) and PyTorch's random generators; return a torch Generator."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with matplotlib
        pass
    else:
        np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``prefer`` if given, else CUDA when present, else the CPU."""
    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup(seed: int = 0) -> torch.device:
    """The standard start of a chapter: seed everything, quiet plots, return :func:`device`."""
    set_seed(seed)
    try:
        import matplotlib

        matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.max_open_warning": 0})
    except ImportError:  # pragma: no cover
        pass
    return device()
