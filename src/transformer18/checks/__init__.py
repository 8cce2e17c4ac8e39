"""Exercise checkers (DESIGN §5).

Each ``check_<thing>(reader_fn)`` runs the reader's function on known cases and

* prints "not implemented yet" while the stub still raises
  ``NotImplementedError``, so an untouched exercise shows no traceback;
* raises :class:`CheckFailed` (an ``AssertionError``) with a specific hint for wrong code;
* prints a ✓ line for correct code.
"""

from ._core import CheckFailed, checker, expect, expect_close
from .parameters import check_attention_parameters, check_encoder_layer_parameters
from .recurrence import check_receptive_field, check_rnn_forward

__all__ = [
    "CheckFailed",
    "checker",
    "expect",
    "expect_close",
    "check_rnn_forward",
    "check_receptive_field",
    "check_attention_parameters",
    "check_encoder_layer_parameters",
]
