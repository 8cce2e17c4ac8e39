"""The Q4 checkers accept the reference solutions and reject known-wrong code with the right hint."""

import pytest
import torch
from conftest import rejects

from transformer18 import checks

# ---------------------------------------------------------------- causal_mask (check_subsequent_mask)


def causal_mask(size):
    return torch.ones(size, size, dtype=torch.bool).tril()[None, None]


def test_causal_mask_accepts_the_reference(capsys):
    checks.check_subsequent_mask(causal_mask)
    checks.check_subsequent_mask(lambda n: (torch.arange(n)[None, :] <= torch.arange(n)[:, None])[None, None])
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda n: torch.ones(n, n, dtype=torch.bool).tril(diagonal=-1)[None, None], "a position may see itself"),
    (lambda n: ~causal_mask(n), r"True means \*may attend\*"),
    (lambda n: causal_mask(n).transpose(-2, -1), "upper triangle"),
    (lambda n: causal_mask(n)[0, 0], r"broadcast shape \(1, 1, size, size\)"),
    (lambda n: causal_mask(n).float(), "bool mask"),
    (lambda n: torch.zeros(1, 1, n, n).masked_fill(~causal_mask(n), float("-inf")), "bool mask"),
    (lambda n: causal_mask(n).long(), "bool mask"),
    (lambda n: torch.ones(1, 1, n, n, dtype=torch.bool), "no mask at all"),
    (lambda n: causal_mask(n)[0], r"must have shape \(1, 1, "),
    (lambda n: torch.ones(n, n, dtype=torch.bool).tril(diagonal=1)[None, None] if n > 1 else causal_mask(n),
     "should be"),
    (lambda n: causal_mask(n).tolist(), "return a tensor"),
])
def test_causal_mask_rejects_wrong_code(wrong, hint):
    rejects(checks.check_subsequent_mask, wrong, hint)


# ---------------------------------------------------------------- shift_right


def shift_right(tgt, bos_id):
    return torch.cat([torch.full_like(tgt[:, :1], bos_id), tgt[:, :-1]], dim=1)


def shift_in_place(tgt, bos_id):
    tgt[:, 1:] = tgt[:, :-1].clone()
    tgt[:, 0] = bos_id
    return tgt


def test_shift_right_accepts_the_reference(capsys):
    checks.check_shift_right(shift_right)
    checks.check_shift_right(lambda tgt, bos_id: shift_in_place(tgt.clone(), bos_id))
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda tgt, bos: torch.cat([torch.full_like(tgt[:, :1], bos), tgt], dim=1), "did not drop the last token"),
    (lambda tgt, bos: torch.cat([tgt[:, 1:], torch.full_like(tgt[:, :1], bos)], dim=1), "You shifted left"),
    (lambda tgt, bos: tgt[:, :-1], "BEGIN token is missing"),
    (lambda tgt, bos: torch.cat([torch.zeros_like(tgt[:, :1]), tgt[:, :-1]], dim=1),
     "Position 0 must hold the BEGIN token"),
    (shift_in_place, "Do not modify tgt in place"),
    (lambda tgt, bos: tgt.roll(1, dims=1), "torch.roll wraps"),
    (lambda tgt, bos: torch.cat([torch.full_like(tgt[:1], bos), tgt[:-1]], dim=0), "not along the batch"),
    (lambda tgt, bos: tgt.clone(), "unchanged"),
    (lambda tgt, bos: shift_right(tgt, bos).float(), "dtype"),
    (lambda tgt, bos: shift_right(tgt, bos + 1), "BEGIN token bos_id"),
    (lambda tgt, bos: shift_right(tgt, bos).T, "must have tgt's shape"),
    (lambda tgt, bos: shift_right(tgt, bos).tolist(), "return a tensor"),
])
def test_shift_right_rejects_wrong_code(wrong, hint):
    rejects(checks.check_shift_right, wrong, hint)


# ---------------------------------------------------------------- sequence_log_prob


def lower(length):
    return torch.ones(length, length, dtype=torch.bool).tril()[None, None]


def sequence_log_prob(model, src, tgt, bos_id, pad_id, *, shift=True, mask="course", score="labels",
                      pads=False, reduce="sum", log=True, dim=-1):
    """The reference, with switches that reproduce common mistakes."""
    decoder_input = shift_right(tgt, bos_id) if shift else tgt
    tgt_mask = {"course": lower(tgt.shape[1]), "none": None, "inverted": ~lower(tgt.shape[1]),
                "square": lower(tgt.shape[1])[0, 0], "float": lower(tgt.shape[1]).float()}[mask]
    logits = model.decode(decoder_input, model.encode(src, None), None, tgt_mask)
    values = logits.log_softmax(dim=dim) if log else logits
    picked = values.gather(-1, (tgt if score == "labels" else decoder_input)[..., None])[..., 0]
    if not pads:
        picked = picked.masked_fill(tgt == pad_id, 0.0)
    if reduce == "none":
        return picked
    total = picked.sum(dim=1)
    return total / (tgt != pad_id).sum(dim=1) if reduce == "mean" else total


def stepwise(model, src, tgt, bos_id, pad_id):
    """Right values, but the inference way: one decode call per position."""
    memory = model.encode(src, None)
    decoder_input = shift_right(tgt, bos_id)
    total = torch.zeros(tgt.shape[0])
    for t in range(tgt.shape[1]):
        logits = model.decode(decoder_input[:, :t + 1], memory, None, lower(t + 1))[:, -1]
        total += logits.log_softmax(-1).gather(-1, tgt[:, t:t + 1])[:, 0].masked_fill(tgt[:, t] == pad_id, 0.0)
    return total


def variant(**kw):
    return lambda *args: sequence_log_prob(*args, **kw)


def test_sequence_log_prob_accepts_the_reference(capsys):
    checks.check_sequence_log_prob(sequence_log_prob)
    checks.check_sequence_log_prob(variant(mask="square"))  # a (len, len) bool mask broadcasts too
    assert capsys.readouterr().out.count("✓") == 2


def test_one_pass_equals_the_stepwise_chain_rule():
    """The checker's toy model is causal under the mask, so both ways give the same numbers."""
    from transformer18.checks.decoder import _log_prob_cases, _ToyModel

    for seed, (vocab_size, bos_id, pad_id, src, tgt) in enumerate(_log_prob_cases()):
        torch.testing.assert_close(sequence_log_prob(_ToyModel(vocab_size, seed), src, tgt, bos_id, pad_id),
                                   stepwise(_ToyModel(vocab_size, seed), src, tgt, bos_id, pad_id))


@pytest.mark.parametrize("wrong, hint", [
    (stepwise, "ONE decode call"),
    (variant(shift=False), "shifted right behind BOS"),
    (lambda model, src, tgt, bos, pad: sequence_log_prob(
        model, src, torch.cat([tgt, torch.full_like(tgt[:, :1], pad)], dim=1), bos, pad),
     "decoder input should be"),
    (variant(mask="none"), "Pass tgt_mask=subsequent_mask"),
    (variant(mask="inverted"), "PyTorch's polarity"),
    (variant(mask="float"), "course's bool mask"),
    (variant(score="inputs"), r"the token each position \*reads\*"),
    (variant(log=False), "Normalise first"),
    (lambda *args: sequence_log_prob(*args).exp(), "not the probability"),
    (variant(pads=True), "Leave out the padding"),
    (variant(reduce="mean"), "you averaged"),
    (variant(dim=1), "over the vocabulary"),
    (variant(reduce="none"), r"shape \(batch,\)"),
    (lambda model, src, tgt, bos, pad: torch.zeros(tgt.shape[0]), "Call model.decode"),
    (lambda *args: sequence_log_prob(*args) + 0.5, "differ from the chain-rule sum"),
])
def test_sequence_log_prob_rejects_wrong_code(wrong, hint):
    rejects(checks.check_sequence_log_prob, wrong, hint)
