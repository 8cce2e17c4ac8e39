"""The capstone translator checkers accept the reference solutions and reject known-wrong code with the right hint."""

import pytest
import torch
from conftest import rejects, variant

from transformer18 import checks


def check_text(text, known_chars, max_len, *, blank_ok=False, unk_ok=False, quote=True, off_by_one=False,
               length_ok=False, type_error=False, returns=None, space_bad=False):
    if not text.strip() and not blank_ok:
        raise ValueError("empty")
    unknown = sorted(set(text) - set(known_chars) - ({" "} if space_bad else set()))
    if space_bad and " " in text:
        unknown.append(" ")
    if unknown and not unk_ok:
        if type_error:
            raise TypeError("bad characters")
        raise ValueError("unknown: " + (", ".join(map(repr, unknown)) if quote else "some characters"))
    if not length_ok and (len(text) >= max_len if off_by_one else len(text) > max_len):
        raise ValueError("too long")
    return returns


def test_the_reference_input_check_passes(accepts):
    accepts(checks.check_input_check, check_text)


@pytest.mark.parametrize("options, hint", [
    ({"blank_ok": True}, "refuse empty and blank"),
    ({"unk_ok": True}, "not a known character"),
    ({"quote": False}, "quote the unknown character"),
    ({"off_by_one": True}, "exactly max_len"),
    ({"length_ok": True}, "does not fit max_len"),
    ({"type_error": True}, "Raise a ValueError instead"),
    ({"returns": True}, "Return None"),
    ({"space_bad": True}, "accept it"),
])
def test_wrong_input_checks_are_rejected_with_the_right_hint(options, hint):
    rejects(checks.check_input_check, variant(check_text, **options), hint)


def torch_masks(src, tgt_len, pad_id, *, course_padding=False, course_causal=False, diagonal=False, shape4=False,
                fixed_pad=False, as_float=False):
    pad = 0 if fixed_pad else pad_id
    padding = src != pad if course_padding else src == pad
    if shape4:
        padding = padding[:, None, None, :]
    causal = torch.ones(tgt_len, tgt_len, dtype=torch.bool).triu(diagonal=0 if diagonal else 1)
    if course_causal:
        causal = ~causal
    if as_float:
        causal = causal.float()
    return padding, causal


def test_the_reference_masks_pass(accepts):
    accepts(checks.check_torch_masks, torch_masks)


@pytest.mark.parametrize("options, hint", [
    ({"course_padding": True}, "padding mask is inverted"),
    ({"course_causal": True}, "course's polarity"),
    ({"diagonal": True}, "hides the diagonal"),
    ({"shape4": True}, r"\(batch, src_len\) = \(3, 5\)"),
    ({"fixed_pad": True}, "True exactly where src == pad_id"),
    ({"as_float": True}, "bool tensors"),
])
def test_wrong_masks_are_rejected_with_the_right_hint(options, hint):
    rejects(checks.check_torch_masks, variant(torch_masks, **options), hint)
