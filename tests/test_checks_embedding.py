"""The Q5 checkers accept the reference solutions and reject known-wrong code with the right hint."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import keeps_rng, rejects

from transformer18 import checks

# ---------------------------------------------------------------- one_hot_lookup


def one_hot_lookup(ids, weight):
    return F.one_hot(ids, num_classes=weight.shape[0]).to(weight.dtype) @ weight


@pytest.mark.parametrize("solution", [
    one_hot_lookup,
    lambda ids, weight: weight[ids],
    lambda ids, weight: F.embedding(ids, weight),
    lambda ids, weight: torch.einsum("blv,vd->bld", F.one_hot(ids, weight.shape[0]).float(), weight),
])
def test_one_hot_lookup_accepts_correct_code(solution, accepts):
    accepts(checks.check_one_hot_lookup, solution)


@pytest.mark.parametrize("wrong, hint", [
    (lambda ids, w: F.one_hot(ids, w.shape[0]).float() @ w.T, "not weight.T"),
    (lambda ids, w: one_hot_lookup(ids, w) * math.sqrt(w.shape[1]), "the scale comes in TokenEmbedding"),
    (lambda ids, w: F.one_hot(ids, ids.shape[-1]).float() @ w, "not the sequence length"),
    (lambda ids, w: F.one_hot(ids).float() @ w, "num_classes=weight.shape\\[0\\]"),
    (lambda ids, w: F.one_hot(ids, w.shape[0]) @ w, "convert the one-hot tensor"),
    (lambda ids, w: ids.float(), "shape \\(batch, len, d_model\\)"),
    (lambda ids, w: ids, "return the float embeddings"),
    (lambda ids, w: F.one_hot(ids, w.shape[0]).float(), "You returned the one-hot vectors"),
    (lambda ids, w: one_hot_lookup(ids, w).transpose(0, 1), "shape \\(batch, len, d_model\\)"),
    (lambda ids, w: one_hot_lookup(ids, w).tolist(), "return a tensor, got list"),
    (lambda ids, w: one_hot_lookup(ids, w) + 0.1, "differ from F.embedding"),
])
def test_one_hot_lookup_rejects_wrong_code(wrong, hint):
    rejects(checks.check_one_hot_lookup, wrong, hint)


# ---------------------------------------------------------------- pad_batch


def pad_batch(sequences, pad_id):
    longest = max(len(seq) for seq in sequences)
    batch = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        batch[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return batch


def padded_lists(sequences, pad_id, left=False, fill=None):
    longest = max(len(seq) for seq in sequences)
    value = pad_id if fill is None else fill
    return [[value] * (longest - len(s)) + list(s) if left else list(s) + [value] * (longest - len(s))
            for s in sequences]


def in_place(sequences, pad_id):
    longest = max(len(seq) for seq in sequences)
    for seq in sequences:
        seq.extend([pad_id] * (longest - len(seq)))
    return torch.tensor(sequences)


def test_pad_batch_accepts_the_reference(capsys):
    checks.check_pad_batch(pad_batch)
    checks.check_pad_batch(lambda seqs, pad_id: torch.tensor(padded_lists(seqs, pad_id), dtype=torch.long))
    assert capsys.readouterr().out.count("✓ pad_batch") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda s, p: torch.tensor(padded_lists(s, p, left=True)), "Pad on the right"),
    (lambda s, p: torch.tensor(padded_lists(s, p, fill=0)), "Fill with pad_id \\(here 3\\), not with 0"),
    (lambda s, p: torch.tensor([q[: min(map(len, s))] for q in s]), "cut them to the shortest"),
    (lambda s, p: padded_lists(s, p), "not a list of lists"),
    (lambda s, p: torch.tensor(padded_lists(s, p), dtype=torch.float32), "must be torch.long .* got torch.float32"),
    (lambda s, p: torch.tensor(padded_lists(s, p), dtype=torch.int32), "got torch.int32"),
    (in_place, "Don't modify the input lists"),
    (lambda s, p: torch.tensor(padded_lists(s, p)).T, "must be \\(batch, longest\\)"),
    (lambda s, p: torch.tensor([row[:-1] + [p] if len(row) > 1 else row for row in padded_lists(s, p)]),
     "should be \\[\\[5, 6, 7\\], \\[8, 3, 3\\], \\[0, 9, 3\\], \\[1, 3, 3\\]\\]"),
])
def test_pad_batch_rejects_wrong_code(wrong, hint):
    rejects(checks.check_pad_batch, wrong, hint)


def test_pad_batch_checker_uses_a_nonzero_pad_id_and_an_empty_sequence():
    seen = []

    def spy(sequences, pad_id):
        seen.append((copy.deepcopy(sequences), pad_id))
        return pad_batch(sequences, pad_id)

    checks.check_pad_batch(spy)
    assert any(pad_id != 0 for _, pad_id in seen)
    assert any(any(len(seq) == 0 for seq in seqs) for seqs, _ in seen)


# ---------------------------------------------------------------- tied_logits


def tied_logits(h, embedding):
    return h @ embedding.lookup.weight.T


@pytest.mark.parametrize("solution", [
    tied_logits,
    lambda h, e: F.linear(h, e.lookup.weight),
    lambda h, e: torch.einsum("bld,vd->blv", h, e.lookup.weight),
])
def test_tied_logits_accepts_correct_code(solution, accepts):
    accepts(checks.check_tied_logits, solution)


def fresh_linear(h, e):
    generator = torch.nn.Linear(e.d_model, e.vocab_size, bias=False)
    with torch.no_grad():
        generator.weight.copy_(e.lookup.weight)
    return generator(h)


@pytest.mark.parametrize("wrong, hint", [
    (lambda h, e: tied_logits(h, e) * math.sqrt(e.d_model), "No √d_model here"),
    (lambda h, e: tied_logits(h, e).softmax(-1), "not probabilities"),
    (lambda h, e: tied_logits(h, e).log_softmax(-1), "not probabilities"),
    (lambda h, e: h @ e.lookup.weight, "multiply h by embedding.lookup.weight.T"),
    (lambda h, e: e(h), "embedding\\(\\.\\.\\.\\) looks token ids up"),
    (lambda h, e: h @ e.lookup.weight.detach().T, "Gradients must reach embedding.lookup.weight"),
    (lambda h, e: h @ e.lookup.weight.data.T, "Gradients must reach embedding.lookup.weight"),
    (fresh_linear, "Gradients must reach embedding.lookup.weight"),
    (lambda h, e: torch.nn.Linear(e.d_model, e.vocab_size, bias=False)(h), "embedding's own matrix"),
    (lambda h, e: tied_logits(h, e).transpose(1, 2), "\\(batch, len, vocab_size\\)"),
    (lambda h, e: tied_logits(h, e).detach().numpy(), "return a tensor"),
])
def test_tied_logits_rejects_wrong_code(wrong, hint):
    rejects(checks.check_tied_logits, wrong, hint)


def test_tied_logits_checker_leaves_the_random_state_alone(accepts):
    keeps_rng(accepts, checks.check_tied_logits, tied_logits)
