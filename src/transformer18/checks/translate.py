"""Checkers for the capstone's translator (part 2): input checking, and masks in PyTorch's polarity."""

from __future__ import annotations

import torch

from ._core import CheckFailed, checker, diagnose, expect

__all__ = ["check_input_check", "check_torch_masks"]

_KNOWN = set("0123456789 ,.abcdefghijklmnopqrstuvwyzéû年月日")


def _refuses(check_text, text: str, max_len: int) -> str | None:
    """The message of the ValueError ``check_text`` raises for ``text``, or None if it accepts it."""
    try:
        result = check_text(text, _KNOWN, max_len)
    except ValueError as error:
        return str(error)
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 - a wrong exception type is the reader's bug to hear about
        raise CheckFailed(f"{text!r} raised {type(error).__name__}: {error}. Raise a ValueError instead.") from None
    expect(result is None, f"Return None for a text the model can read, got {result!r} for {text!r}.")
    return None


@checker("check_text")
def check_input_check(check_text) -> None:
    """Check ``check_text(text, known_chars, max_len)``: None for a readable text, else a ValueError naming
    the problem (empty or blank; unknown characters, quoted; longer than ``max_len``)."""
    for text in ("21 novembre 2026", "2026年11月21日", "3.5.1968", "dimanche 1 mai 1950"):
        expect(_refuses(check_text, text, 35) is None,
               f"{text!r} uses only known characters and is short enough: accept it.")
    expect(_refuses(check_text, "1" * 35, 35) is None,
           "A text of exactly max_len characters fits: refuse only texts longer than max_len.")
    for blank in ("", "   "):
        expect(_refuses(check_text, blank, 35) is not None, f"{blank!r} holds no date: refuse empty and blank texts.")
    for text, bad in (("21 listopada 2026 ł", "ł"), ("2026-11-21", "-"), ("21 NOVEMBRE 2026", "N")):
        message = _refuses(check_text, text, 35)
        expect(message is not None, f"{text!r} contains {bad!r}, which is not a known character: the model has "
                                    "no embedding for it (Vocab would silently map it to <unk>). Refuse it.")
        expect(repr(bad) in message, f"The message for {text!r} should quote the unknown character, {bad!r}, so the "
                                     f"reader knows what to change; got: {message}")
    expect(_refuses(check_text, "1" * 36, 35) is not None,
           "A text of 36 characters does not fit max_len=35: the positional table has no row for it.")


@checker("torch_masks")
def check_torch_masks(torch_masks) -> None:
    """Check ``torch_masks(src, tgt_len, pad_id) -> (src_key_padding_mask, tgt_mask)`` in PyTorch's polarity."""
    src = torch.tensor([[5, 6, 7, 2, 2], [8, 2, 2, 2, 2], [4, 5, 6, 7, 9]])  # pad id 2, lengths 3, 1, 5
    padding, causal = torch_masks(src, 4, 2)
    expect(isinstance(padding, torch.Tensor) and isinstance(causal, torch.Tensor), "Return two tensors.")
    expect(padding.dtype == torch.bool and causal.dtype == torch.bool, "Both masks must be bool tensors.")
    expect(tuple(padding.shape) == (3, 5),
           f"src_key_padding_mask is (batch, src_len) = (3, 5) for nn.Transformer, got {tuple(padding.shape)}; "
           "the course's (batch, 1, 1, src_len) shape is for its own attention.")
    diagnose(padding, src == 2, [
        (src != 2, "The padding mask is inverted: in PyTorch's key_padding_mask True marks padding (may NOT attend)."),
    ], "src_key_padding_mask must be True exactly where src == pad_id.")
    future = torch.ones(4, 4, dtype=torch.bool).triu(diagonal=1)
    diagnose(causal, future, [
        (~future, "tgt_mask has the course's polarity (True = may attend); nn.Transformer wants True = may NOT "
                  "attend."),
        (future | torch.eye(4, dtype=torch.bool), "tgt_mask also hides the diagonal: query i must see key i itself, so "
                                                  "mask only j > i (triu(diagonal=1))."),
    ], "tgt_mask must be True exactly above the diagonal (key j after query i).",
        shape="tgt_mask is (tgt_len, tgt_len)")
    padding, causal = torch_masks(torch.tensor([[1, 0, 0]]), 2, 0)
    diagnose(padding, torch.tensor([[False, True, True]]), otherwise="Use pad_id, not a fixed id, for the padding.")
