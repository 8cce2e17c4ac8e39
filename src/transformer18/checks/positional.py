"""Checkers for Q6 (positional encoding): the sinusoidal table of the paper's §3.5."""

from __future__ import annotations

import torch

from ._core import CheckFailed, checker, diagnose, expect

__all__ = ["check_positional_encoding"]

# Sizes the checker tries: every max_len differs from its d_model, so a transposed table cannot hide.
_CASES = [(7, 10), (50, 16), (3, 4), (64, 24)]


def _table(max_len: int, d_model: int, *, swap: bool = False, exponent: str = "2i", divide: bool = True,
           roles_swapped: bool = False) -> torch.Tensor:
    """The sinusoidal table in float64, with switches that reproduce common mistakes (for the hints).

    ``exponent``: "2i" (right: dimensions 2i and 2i+1 share 10000^(2i/d_model)), "j" (the raw dimension
    index, so a cosine gets its own frequency) or "i" (the pair index without the factor 2).
    """
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    dim = torch.arange(d_model, dtype=torch.float64).unsqueeze(0)  # (1, d_model): j
    pair = torch.div(dim, 2, rounding_mode="floor")  # (1, d_model): i = j // 2
    power = {"2i": 2 * pair, "j": dim, "i": pair}[exponent] / d_model  # (1, d_model)
    if roles_swapped:  # the pair index as the numerator, the position in the exponent
        angle = pair / 10000.0 ** (2 * pos / d_model)  # (max_len, d_model)
    elif divide:
        angle = pos / 10000.0**power  # (max_len, d_model)
    else:
        angle = pos * 10000.0**power  # (max_len, d_model)
    even = dim % 2 == 0
    first, second = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    return torch.where(even, first(angle), second(angle))  # (max_len, d_model)


_WRONG = [
    ("Even dimensions hold the sine and odd dimensions the cosine: PE(pos, 2i) = sin(…), "
     "PE(pos, 2i+1) = cos(…). Yours are swapped.", dict(swap=True)),
    ("The exponent must use 2i, the index of the sin/cos pair times two, for both members of a pair: "
     "dimensions 2i and 2i+1 share the frequency 1/10000^(2i/d_model). You used the raw dimension index j, "
     "so each cosine runs at a frequency of its own.", dict(exponent="j")),
    ("The exponent is 2i/d_model, not i/d_model (i = j // 2 is the pair index): with i alone the "
     "frequencies fall too slowly and the wavelengths stop far short of 10000·2π.", dict(exponent="i")),
    ("Positions and dimensions are swapped in the formula: the position is the numerator and the pair "
     "index goes in the exponent, sin(pos / 10000^(2i/d_model)).", dict(roles_swapped=True)),
    ("Divide the position by 10000^(2i/d_model) (or multiply by 10000^(−2i/d_model)). You multiplied, so "
     "the angles explode and the high dimensions no longer vary slowly.", dict(divide=False)),
]


def _structural_bugs(out: torch.Tensor, reference: torch.Tensor) -> list[str]:
    """The mistakes of the published encoding of Q6's spot-the-bug exercise that show in any table, each
    found on its own so that all the ones still there are named together."""
    bugs = []
    largest = out.abs().max().item()
    if largest > 2:  # sines and cosines, even shifted or summed by mistake, stay near [−1, 1]
        bugs.append(f"No sine and no cosine: the entries of §3.5 are sines and cosines, within [−1, 1]; yours reach "
                    f"{largest:.3g}, enough to drown the token embedding they are added to.")
    later = out[1:]  # (max_len - 1, d_model): at position 0 every sine is 0 whatever its frequency
    evens = later[:, 0::2]  # (max_len - 1, d_model / 2)
    if evens.shape[1] > 1 and torch.allclose(evens, evens[:, :1].expand_as(evens), rtol=1e-6, atol=0):
        bugs.append("The dimension barely matters: in every row all even dimensions hold one number, so only the "
                    "dimension's parity enters. Each pair i needs its own frequency, 1/10000^(2i/d_model).")
    odd, even = out[:, 1::2], out[:, 0::2]  # (max_len, d_model / 2) each
    nonzero = even.abs() > 1e-12
    if odd.shape == even.shape and nonzero.any():
        ratio = odd[nonzero] / even[nonzero]
        if (ratio < 0).all() and torch.allclose(ratio, ratio[:1].expand_as(ratio), rtol=1e-6, atol=0):
            bugs.append(f"Negation is not a cosine: every odd dimension is {ratio[0].item():.3g} × the even one before "
                        "it. PE(pos, 2i+1) is the cosine of the same angle whose sine is PE(pos, 2i).")
    return bugs


@checker("positional_encoding")
def check_positional_encoding(positional_encoding) -> None:
    """Check ``positional_encoding(max_len, d_model) -> (max_len, d_model)`` against the paper's formula.

    Any floating dtype is accepted (float32, float64, even float16): the values are compared in float64
    with an absolute tolerance of 1e-4 (or the dtype's machine epsilon if larger), loose enough for a
    careful float32 computation and far tighter than any of the mistakes the hints name.
    """
    for max_len, d_model in _CASES:
        out = positional_encoding(max_len, d_model)
        expect(isinstance(out, torch.Tensor), f"return a torch tensor, got {type(out).__name__}")
        expect(out.is_floating_point(), f"return floating-point values (sines and cosines), got dtype {out.dtype}")
        diagnose(tuple(out.shape), (max_len, d_model), [
            ((d_model, max_len), f"Positions and dimensions are transposed: return one row per position, shape "
                                 f"(max_len, d_model) = {(max_len, d_model)}, not {(d_model, max_len)}."),
            ((1, max_len, d_model), "Return the 2-D table (max_len, d_model), without a leading batch dimension."),
        ], f"positional_encoding({max_len}, {d_model}) has shape {tuple(out.shape)}, expected (max_len, d_model) = "
           f"{(max_len, d_model)}")
        atol = max(1e-4, torch.finfo(out.dtype).eps)  # float16 and bfloat16 round more coarsely
        out, reference = out.detach().cpu().to(torch.float64), _table(max_len, d_model)
        bugs = _structural_bugs(out, reference)
        if bugs:
            raise CheckFailed(bugs[0] if len(bugs) == 1 else f"{len(bugs)} problems:\n" + "\n".join(f"- {b}" for b in bugs))
        diagnose(out, reference, [(_table(max_len, d_model, **mistake), hint) for hint, mistake in _WRONG] + [
            (not torch.allclose(out[0], reference[0], atol=atol),
             "At position 0 every sine is 0 and every cosine is 1: PE[0] must be [0, 1, 0, 1, …]."),
        ], f"positional_encoding({max_len}, {d_model}) differs from PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), "
           "PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model))", atol=atol, rtol=0)
