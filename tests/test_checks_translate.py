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


def test_the_references_pass(accepts):
    accepts(checks.check_input_check, check_text)
    accepts(checks.check_torch_masks, torch_masks)


TEXT, MASKS = checks.check_input_check, checks.check_torch_masks


@pytest.mark.parametrize("check, wrong, hint", [
    (TEXT, variant(check_text, blank_ok=True), "refuse empty and blank"),
    (TEXT, variant(check_text, unk_ok=True), "not a known character"),
    (TEXT, variant(check_text, quote=False), "quote the unknown character"),
    (TEXT, variant(check_text, off_by_one=True), "exactly max_len"),
    (TEXT, variant(check_text, length_ok=True), "does not fit max_len"),
    (TEXT, variant(check_text, type_error=True), "Raise a ValueError instead"),
    (TEXT, variant(check_text, returns=True), "Return None"),
    (TEXT, variant(check_text, space_bad=True), "accept it"),
    (MASKS, variant(torch_masks, course_padding=True), "padding mask is inverted"),
    (MASKS, variant(torch_masks, course_causal=True), "course's polarity"),
    (MASKS, variant(torch_masks, diagonal=True), "hides the diagonal"),
    (MASKS, variant(torch_masks, shape4=True), r"\(batch, src_len\) = \(3, 5\)"),
    (MASKS, variant(torch_masks, fixed_pad=True), "True exactly where src == pad_id"),
    (MASKS, variant(torch_masks, as_float=True), "bool tensors"),
])
def test_wrong_code_is_rejected_with_the_right_hint(check, wrong, hint):
    rejects(check, wrong, hint)
