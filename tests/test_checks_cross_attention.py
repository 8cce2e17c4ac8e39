"""Q9's checkers accept the reference solutions and reject each known mistake with its own hint."""

import math
from functools import partial

import pytest
import torch
from conftest import rejects

from transformer18.checks import (
    CheckFailed,
    check_alignment_accuracy,
    check_cross_attention,
    check_published_cross_attention,
    check_read_alignment,
)

# ---------------------------------------------------------------- published_cross_attention


def published(dec, mem, w_q, w_k, w_v, *, scores=False, matmul=False):
    """The published cross-attention of Q9's exercise (no scores; `* value`), with a switch per fix."""
    x = dec @ w_q
    key, value = mem @ w_k, mem @ w_v
    scale = w_q.shape[1] ** -0.5
    x = torch.softmax((x @ key.transpose(1, 2) if scores else x) * scale, dim=-1)
    return x @ value if matmul else x * value


def test_published_cross_attention_names_every_bug_until_each_is_fixed(accepts):
    with pytest.raises(CheckFailed, match=r"^2 problems:(?s:.*)never used(?s:.*)entry by entry"):
        check_published_cross_attention(published)
    rejects(check_published_cross_attention, partial(published, scores=True), r"^`\* V` multiplies entry by entry")
    rejects(check_published_cross_attention, partial(published, matmul=True), r"^The key projection is computed")
    accepts(check_published_cross_attention, partial(published, scores=True, matmul=True))
    accepts(check_published_cross_attention, lambda *args: attend(*args)[0])


@pytest.mark.parametrize("wrong, hint", [
    (lambda *args: attend(*args), "Return the output alone"),
    (lambda *args: attend(*args)[0].tolist(), "return a tensor"),
    (lambda *args: attend(*args, scale="none")[0], "differs from softmax"),
    (lambda *args: attend(*args, softmax_dim=-2)[0], "differs from softmax"),
    (lambda *args: attend(*args)[0] if args[0].shape[1] == 4 else attend(*args)[0][:, :1], "should be"),
    (lambda dec, mem, *w: published(dec, mem, *w, scores=True, matmul=True) + (dec.shape[1] != mem.shape[1]),
     "with q_len = 3, k_len = 7"),
])
def test_published_cross_attention_rejects_other_wrong_code(wrong, hint):
    rejects(check_published_cross_attention, wrong, hint)


# ---------------------------------------------------------------- cross_attention


def attend(dec, mem, w_q, w_k, w_v, *, q="dec", k="mem", v="mem", scale="d_k", softmax_dim=-1,
           project_values=True, transpose_w=False):
    """Cross-attention with switches for the mistakes; the defaults compute it correctly."""
    side = {"dec": dec, "mem": mem}
    if transpose_w:
        w_q, w_k, w_v = w_q.T, w_k.T, w_v.T
    queries, keys = side[q] @ w_q, side[k] @ w_k
    values = side[v] @ w_v if project_values else side[v]
    divisor = {"d_k": math.sqrt(w_k.shape[-1]), "none": 1.0, "d_model": math.sqrt(dec.shape[-1]),
               "d_v": math.sqrt(w_v.shape[-1]), "d_k itself": float(w_k.shape[-1])}[scale]
    weights = (queries @ keys.transpose(-2, -1) / divisor).softmax(dim=softmax_dim)
    return weights @ values, weights


def variant(**switches):
    return lambda *args: attend(*args, **switches)


def test_cross_attention_accepts_the_reference(accepts):
    accepts(check_cross_attention, attend)


@pytest.mark.parametrize("wrong, hint", [
    # queries and keys swapped: the weights come out (batch, k_len, q_len)
    (variant(q="mem", k="dec", v="dec"), r"weights are \(batch, k_len, q_len\): the queries came from the memory"),
    # … and with the values still from the memory it crashes when q_len ≠ k_len; the square probe names it
    (variant(q="mem", k="dec", v="mem"), "the queries came from the memory"),
    # keys and values from the decoder: self-attention
    (variant(k="dec", v="dec"), "keys and values from decoder_states make this self-attention"),
    (variant(q="mem"), "self-attention over the source"),
    # values from the queries' side: crashes with q_len ≠ k_len, named by the square probe
    (variant(v="dec"), "The values must come from memory"),
    (variant(softmax_dim=-2), r"take the softmax over the keys \(dim=-1\), not over the queries"),
    (variant(scale="none"), "you did not scale them"),
    (variant(scale="d_model"), "not √d_model"),
    (variant(scale="d_v"), "not √d_v"),
    (variant(scale="d_k itself"), "not by d_k itself"),
    (variant(project_values=False), "V = memory @ w_v"),
    (variant(transpose_w=True), "failed with q_len = 3 ≠ k_len = 7"),
    (lambda *args: attend(*args)[::-1], r"return \(output, weights\)"),
    (lambda *args: (attend(*args)[0], attend(*args)[1].transpose(-2, -1)), "weights are transposed"),
    (lambda *args: attend(*args)[0], "return a tuple"),
    (lambda *args: (attend(*args)[0] + 0.1, attend(*args)[1]), "your output differs"),
    (lambda *args: (attend(*args)[0], (attend(*args)[1] + 0.05).softmax(-1)), "your weights differ"),
])
def test_cross_attention_rejects_wrong_code(wrong, hint):
    rejects(check_cross_attention, wrong, hint)


# ---------------------------------------------------------------- read_alignment


@pytest.mark.parametrize("good", [lambda w: w.argmax(dim=-1), lambda w: w.max(dim=2).indices])
def test_read_alignment_accepts_the_reference(good, accepts):
    accepts(check_read_alignment, good)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w: w.argmax(dim=1), r"argmax over the queries \(dim 1\)"),
    (lambda w: w.argmax(dim=0), r"argmax over the batch \(dim 0\)"),
    (lambda w: w[0].argmax(dim=-1), "Keep the batch dimension"),
    (lambda w: w.max(dim=-1).values, r"largest weight \(max\)"),
    (lambda w: w.argmax(dim=-1).float(), "as a LongTensor"),
    (lambda w: w.argmin(dim=-1), r"\(argmin\)"),
    (lambda w: w.argmax(dim=-1).int(), r"LongTensor \(int64\)"),
    (lambda w: w.argmax(dim=-1).flip(-1), "some queries got the wrong key"),
    (lambda w: w.argmax(dim=-1).tolist(), "return a tensor"),
])
def test_read_alignment_rejects_wrong_code(wrong, hint):
    rejects(check_read_alignment, wrong, hint)


# ---------------------------------------------------------------- alignment_accuracy


def accuracy(weights, ideal):
    return (weights.argmax(dim=-1) == ideal).float().mean().item()


@pytest.mark.parametrize("good", [accuracy, lambda w, i: (w.argmax(-1) == i).float().mean(),
                                  lambda w, i: (w.argmax(-1) == i).sum().item() / w.shape[0] / w.shape[1]])
def test_alignment_accuracy_accepts_the_reference(good, accepts):
    accepts(check_alignment_accuracy, good)


def soft(weights, ideal):
    return weights.gather(-1, ideal.expand(weights.shape[:-1]).unsqueeze(-1)).mean().item()


@pytest.mark.parametrize("wrong, hint", [
    # argmax over the query axis: crashes with q_len ≠ k_len, named by the square probe
    (lambda w, i: (w.argmax(dim=1) == i).float().mean().item(), r"argmax over the queries \(dim 1\)"),
    (lambda w, i: (w.argmax(dim=-1) == i).sum().item(), "number of correct queries"),
    (lambda w, i: (w.argmax(dim=-1) == i).all(dim=-1).float().mean().item(), "scored whole examples"),
    (soft, "averaged the weight on the ideal key"),
    (lambda w, i: (w.argmax(dim=-1) == i).float(), "return one number"),
    (lambda w, i: accuracy(w, i) + 0.1, "queries have their largest weight on the ideal key"),
    (lambda w, i: (w.argmax(dim=0) == i).float().mean().item(), "failed with q_len = 3 ≠ k_len = 5"),
])
def test_alignment_accuracy_rejects_wrong_code(wrong, hint):
    rejects(check_alignment_accuracy, wrong, hint)


def test_the_checkers_use_different_query_and_key_lengths():
    """Every mistake above that swaps axes is caught only because q_len ≠ k_len; make sure it stays so."""
    seen = []

    def spy(dec, mem, w_q, w_k, w_v):
        seen.append((dec.shape[1], mem.shape[1]))
        return attend(dec, mem, w_q, w_k, w_v)

    check_cross_attention(spy)
    assert seen and all(q_len != k_len for q_len, k_len in seen)
    shapes = []
    check_read_alignment(lambda w: shapes.append(w.shape) or w.argmax(dim=-1))
    check_alignment_accuracy(lambda w, i: shapes.append(w.shape) or accuracy(w, i))
    assert shapes and all(shape[1] != shape[2] for shape in shapes)
