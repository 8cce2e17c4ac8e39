"""Exercise checkers (DESIGN §5).

Each ``check_<thing>(reader_fn)`` runs the reader's function on known cases and

* prints "not implemented yet" while the stub still raises ``NotImplementedError``, so an untouched
  exercise shows no traceback;
* raises :class:`CheckFailed` (an ``AssertionError``) with a specific hint for wrong code;
* prints a ✓ line for correct code.

Checkers live in one module per concept (``recurrence``, ``parameters``, …); every ``check_*`` name in the
``__all__`` of a module of this package is available here, so chapters write
``from transformer18.checks import check_rnn_forward``. A checker's module is imported only when one of its
names is asked for (the table below reads each module's ``__all__`` without importing it), so a chapter's
checkers never import the package modules of later chapters.
"""

import ast
import importlib
from pathlib import Path

from . import _core
from ._core import *  # noqa: F403 - the framework, whose names _core.__all__ lists


def _declared(path: Path) -> list[str]:
    """The names in the ``__all__ = [...]`` of a module's source."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return ast.literal_eval(node.value)
    return []


_MODULE_OF = {name: path.stem for path in sorted(Path(__file__).parent.glob("[!_]*.py"))
              for name in _declared(path) if name.startswith("check_")}

__all__ = [*_core.__all__, *_MODULE_OF]


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
