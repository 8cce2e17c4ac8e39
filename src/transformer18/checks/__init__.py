"""Exercise checkers (DESIGN §5).

Each ``check_<thing>(reader_fn)`` runs the reader's function on known cases and

* prints "not implemented yet" while the stub still raises ``NotImplementedError``, so an untouched
  exercise shows no traceback;
* raises :class:`CheckFailed` (an ``AssertionError``) with a specific hint for wrong code;
* prints a ✓ line for correct code.

Checkers live in one module per concept (``recurrence``, ``parameters``, …); every ``check_*`` name of
every module in this package is available here, so chapters write
``from transformer18.checks import check_rnn_forward``.
"""

import importlib
import pkgutil

from ._core import CheckFailed, checker, expect, expect_close

__all__ = ["CheckFailed", "checker", "expect", "expect_close"]

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
    if _info.name.startswith("_"):
        continue
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", []):
        if _name.startswith("check_"):
            globals()[_name] = getattr(_module, _name)
            __all__.append(_name)
