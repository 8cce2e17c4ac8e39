"""Checkers for Q9 (cross-attention): the computation itself, and reading its weights as an alignment.

Every case uses q_len ≠ k_len, so that a swapped pair of axes cannot hide. Code that crashes on such a
case (a product of a (q_len, k_len) matrix with something of length q_len, say) is re-run on a square
case, where the usual mistakes run, to name the mistake.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._core import CheckFailed, call, checker, diagnose, expect, expect_tensor

__all__ = ["check_cross_attention", "check_published_cross_attention", "check_read_alignment",
           "check_alignment_accuracy"]

D_MODEL, D_K, D_V = 6, 4, 5


def _case(seed: int, batch: int, q_len: int, k_len: int):
    g = torch.Generator().manual_seed(seed)
    decoder_states = torch.randn(batch, q_len, D_MODEL, generator=g)
    memory = torch.randn(batch, k_len, D_MODEL, generator=g)
    w_q = torch.randn(D_MODEL, D_K, generator=g) * 0.8
    w_k = torch.randn(D_MODEL, D_K, generator=g) * 0.8
    w_v = torch.randn(D_MODEL, D_V, generator=g)
    return decoder_states, memory, w_q, w_k, w_v


def _attend(query_side, key_side, value_side, w_q, w_k, w_v, *, scale=math.sqrt(D_K), softmax_dim=-1):
    """Attention with every choice switchable, to reproduce the common mistakes."""
    q, k, v = query_side @ w_q, key_side @ w_k, value_side @ w_v
    weights = (q @ k.transpose(-2, -1) / scale).softmax(dim=softmax_dim)
    return weights @ v, weights


SWAPPED = ("Your weights are (batch, k_len, q_len): the queries came from the memory. In cross-attention the "
           "queries come from decoder_states (one row per target position) and the keys and values from "
           "memory (one column per source position).")
SELF_DECODER = ("Your weights are (batch, q_len, q_len): keys and values from decoder_states make this "
                "self-attention. In cross-attention the keys and values come from memory, the encoder's output.")
SELF_MEMORY = ("Your weights are (batch, k_len, k_len): queries, keys and values all from memory make this "
               "self-attention over the source. The queries must come from decoder_states.")
VALUES_WRONG_SIDE = ("The values must come from memory, the same sequence as the keys: weight (i, j) mixes "
                     "the value of source position j. You took them from decoder_states (the queries' side), "
                     "which only runs when q_len = k_len.")
SOFTMAX_AXIS = ("Each row of the weights (one query) must sum to 1: take the softmax over the keys (dim=-1), "
                "not over the queries.")


def _mistakes(args) -> list:
    """Known wrong variants as (lazy (output, weights), hint), for a case where they all run."""
    dec, mem, w_q, w_k, w_v = args
    sides = [(dec, mem, dec, VALUES_WRONG_SIDE), (mem, dec, dec, SWAPPED), (mem, dec, mem, SWAPPED),
             (dec, dec, dec, SELF_DECODER), (mem, mem, mem, SELF_MEMORY)]
    return [(lambda q=q, k=k, v=v: _attend(q, k, v, w_q, w_k, w_v), hint) for q, k, v, hint in sides] + [
        (lambda: _attend(dec, mem, mem, w_q, w_k, w_v, softmax_dim=-2), SOFTMAX_AXIS)]


def _check_case(cross_attention, args) -> None:
    dec, mem, w_q, w_k, w_v = args
    batch, q_len, k_len = dec.shape[0], dec.shape[1], mem.shape[1]

    def crashed(error) -> str:
        # Crashed with q_len ≠ k_len: run it on a square case, where the usual mistakes run, to name the mistake.
        square = _case(7, 2, 4, 4)
        try:
            result = cross_attention(*(a.clone() for a in square))
        except Exception:  # noqa: BLE001 - any failure here gets the general hint below
            result = None
        hint = (f"Your function failed with q_len = {q_len} ≠ k_len = {k_len} ({type(error).__name__}: {error}). "
                "Only the weights mix the two lengths: Q = decoder_states @ w_q is (batch, q_len, d_k), "
                "K = memory @ w_k is (batch, k_len, d_k) and V = memory @ w_v is (batch, k_len, d_v).")
        diagnose(result, _attend(square[0], square[1], square[1], *square[2:]), _mistakes(square), hint)
        return hint

    result = call(cross_attention, *(a.clone() for a in args),
                  errors={(RuntimeError, IndexError, ValueError): crashed})
    expect(isinstance(result, tuple) and len(result) == 2 and all(isinstance(t, torch.Tensor) for t in result),
           f"return a tuple (output, weights) of two tensors, got {type(result).__name__}")
    output, weights = result
    expected_weights = (dec @ w_q @ (mem @ w_k).transpose(-2, -1) / math.sqrt(D_K)).softmax(dim=-1)
    expected_output = F.scaled_dot_product_attention(dec @ w_q, mem @ w_k, mem @ w_v)  # PyTorch's own
    scalings = {
        "Scale the scores by √d_k before the softmax; you did not scale them.": 1.0,
        "Scale by √d_k, the width of the queries and keys (4 here), not √d_model.": math.sqrt(D_MODEL),
        "Scale by √d_k, the width of the queries and keys (4 here), not √d_v.": math.sqrt(D_V),
        "Scale by the square root of d_k, not by d_k itself.": float(D_K),
    }
    diagnose(weights.float(), expected_weights, [
        (output.shape == expected_weights.shape and weights.shape == expected_output.shape,
         "You returned (weights, output): return (output, weights)."),
        (expected_weights.transpose(-2, -1), "Your weights are transposed: return them as (batch, q_len, k_len), "
                                             "one row per query."),
        (weights.shape == (batch, k_len, q_len), SWAPPED),
        (weights.shape == (batch, q_len, q_len), SELF_DECODER),
        (weights.shape == (batch, k_len, k_len), SELF_MEMORY),
        (_attend(dec, mem, mem, w_q, w_k, w_v, softmax_dim=-2)[1], SOFTMAX_AXIS),
        *[(_attend(dec, mem, mem, w_q, w_k, w_v, scale=scale)[1], hint) for hint, scale in scalings.items()],
        (lambda: not torch.allclose(weights.sum(dim=-1).float(), torch.ones(batch, q_len), atol=1e-5),
         "each row of the weights (one query) should sum to 1: a softmax over the keys"),
    ], "your weights differ from softmax(Q Kᵀ / √d_k)", shape="the weights should be (batch, q_len, k_len)")
    diagnose(output, expected_output, [
        (expected_weights @ mem, "Project the memory with w_v before mixing it: V = memory @ w_v."),
    ], "your output differs from weights @ V (F.scaled_dot_product_attention)")


@checker("cross_attention")
def check_cross_attention(cross_attention) -> None:
    """Check ``cross_attention(decoder_states, memory, w_q, w_k, w_v) -> (output, weights)``, q_len ≠ k_len."""
    _check_case(cross_attention, _case(0, 2, 3, 7))  # batch 2, q_len 3, k_len 7
    _check_case(cross_attention, _case(1, 3, 5, 2))  # batch 3, q_len 5, k_len 2: more queries than keys


NO_SCORES = ("The key projection is computed and never used: there are no scores. A softmax of the queries over "
             "their own features compares nothing with the source. Score every query against every key, "
             "Q Kᵀ / √d_k, and take the softmax over the keys.")
ELEMENTWISE = ("`* V` multiplies entry by entry: target position i meets only source position i, and it runs only "
               "when the two lengths are equal. Every output row is a weighted sum of all the values: weights @ V.")


def _published(dec, mem, w_q, w_k, w_v, *, scores: bool = True, matmul: bool = True) -> torch.Tensor:
    """Cross-attention with the two mistakes of the published code of Q9's exercise as switches: no scores
    (a softmax of the queries over their features) and an elementwise product with the values."""
    q, k, v = dec @ w_q, mem @ w_k, mem @ w_v  # (batch, q_len, d_k), (batch, k_len, d_k), (batch, k_len, d_v)
    scale = math.sqrt(w_q.shape[1])
    weights = (q @ k.transpose(-2, -1) / scale if scores else q / scale).softmax(dim=-1)
    return weights @ v if matmul else weights * v  # (batch, q_len, d_v)


@checker("published_cross_attention")
def check_published_cross_attention(cross_attention) -> None:
    """Check ``cross_attention(decoder_states, memory, w_q, w_k, w_v) -> output (batch, q_len, d_v)``, the fix of
    the published cross-attention of Q9's exercise: names every one of its bugs still in the code."""
    # 1. A square case (q_len = k_len = d_k = d_v = 4), where the published code runs, to name its bugs.
    g = torch.Generator().manual_seed(11)
    square = (torch.randn(2, 4, D_MODEL, generator=g), torch.randn(2, 4, D_MODEL, generator=g),
              *(torch.randn(D_MODEL, 4, generator=g) * 0.8 for _ in range(3)))
    out = call(cross_attention, *(a.clone() for a in square), errors={(RuntimeError, IndexError, ValueError): (
        lambda error: f"With q_len = k_len = d_k = d_v = 4 your function failed ({type(error).__name__}: {error}). "
                      "Q = decoder_states @ w_q, K = memory @ w_k, V = memory @ w_v, then softmax(Q Kᵀ / √d_k) V.")})
    expect(not isinstance(out, tuple), "Return the output alone, (batch, q_len, d_v), not a tuple.")
    expect_tensor(out)
    diagnose(out, _published(*square), [
        (lambda: _published(*square, scores=False, matmul=False), f"2 problems:\n- {NO_SCORES}\n- {ELEMENTWISE}"),
        (lambda: _published(*square, scores=False), NO_SCORES),
        (lambda: _published(*square, matmul=False), ELEMENTWISE),
    ], "with q_len = k_len = 4 your output differs from softmax(Q Kᵀ / √d_k) V", shape="the output should be "
       "(batch, q_len, d_v)")
    # 2. The lengths and widths all differ, as in translation.
    for case in (_case(0, 2, 3, 7), _case(1, 3, 5, 2)):
        dec, mem = case[0], case[1]
        sizes = f"q_len = {dec.shape[1]}, k_len = {mem.shape[1]}"
        out = call(cross_attention, *(a.clone() for a in case), errors={(RuntimeError, IndexError, ValueError): (
            lambda error, sizes=sizes: f"With {sizes} your function failed ({type(error).__name__}: {error}). "
                                       f"Only the weights (batch, q_len, k_len) meet both lengths. {ELEMENTWISE}")})
        expect_tensor(out)
        diagnose(out, _published(*case), [], f"with {sizes} your output differs from softmax(Q Kᵀ / √d_k) V",
                 shape="the output should be (batch, q_len, d_v)")


def _weights(seed: int, batch: int, q_len: int, k_len: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (3 * torch.randn(batch, q_len, k_len, generator=g)).softmax(dim=-1)  # (batch, q_len, k_len)


@checker("read_alignment")
def check_read_alignment(read_alignment) -> None:
    """Check ``read_alignment(weights (batch, q_len, k_len)) -> LongTensor (batch, q_len)``."""
    for seed, (batch, q_len, k_len) in enumerate([(3, 4, 6), (2, 5, 3)]):
        weights = _weights(seed, batch, q_len, k_len)
        expected = weights.argmax(dim=-1)  # (batch, q_len)
        got = read_alignment(weights.clone())
        expect_tensor(got)
        diagnose(tuple(got.shape), tuple(expected.shape), [
            ((batch, k_len), "You took the argmax over the queries (dim 1). Each query picks a key: take the argmax "
                             "over the keys, the last axis, to get one entry per query, (batch, q_len)."),
            ((q_len, k_len), "You took the argmax over the batch (dim 0). Take it over the keys, the last axis."),
            ((q_len,), "Keep the batch dimension: one row of key indices per example, (batch, q_len)."),
        ], f"the alignment should be (batch, q_len) = {tuple(expected.shape)}, got {tuple(got.shape)}")
        if got.is_floating_point():
            expect(not torch.allclose(got, weights.max(dim=-1).values), "You returned the largest weight (max); "
                                                                        "return its position (argmax), the key's index.")
            raise CheckFailed(f"return key indices as a LongTensor, got dtype {got.dtype}")
        expect(not torch.equal(got, weights.argmin(dim=-1)),
               "That is the key each query attends to least (argmin); take the argmax.")
        expect(got.dtype == torch.long, f"return a LongTensor (int64), got dtype {got.dtype}")
        expect(torch.equal(got, expected), "some queries got the wrong key: the key with the largest weight, "
                                           "per query, is weights.argmax(dim=-1)")


def _accuracy_case(seed: int, batch: int, q_len: int, k_len: int, hits: torch.Tensor):
    """Weights and a per-example ideal alignment whose argmax hits exactly where ``hits`` is True."""
    weights = _weights(seed, batch, q_len, k_len)
    best = weights.argmax(dim=-1)  # (batch, q_len)
    ideal = torch.where(hits, best, (best + 1) % k_len)  # (batch, q_len)
    return weights, ideal


@checker("alignment_accuracy")
def check_alignment_accuracy(alignment_accuracy) -> None:
    """Check ``alignment_accuracy(weights, ideal) -> float``: the fraction of queries whose argmax is ideal."""
    hits = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=torch.bool)  # 9 of 12 queries
    weights, per_example = _accuracy_case(0, 4, 3, 5, hits)  # batch 4, q_len 3, k_len 5
    g = torch.Generator().manual_seed(3)
    shared_weights = _weights(2, 4, 3, 5)
    shared = torch.randint(0, 5, (3,), generator=g)  # (q_len,): one alignment for the whole batch
    cases = [(weights, per_example), (shared_weights, shared)]

    def crashed(error) -> str:
        square_weights, square_ideal = _accuracy_case(5, 3, 4, 4, torch.rand(3, 4, generator=g) < 0.5)
        try:
            square = float(alignment_accuracy(square_weights, square_ideal))
        except Exception:  # noqa: BLE001
            square = None
        hint = (f"Your function failed with q_len = 3 ≠ k_len = 5 ({type(error).__name__}: {error}). Compare "
                "weights.argmax(dim=-1), shape (batch, q_len), with ideal.")
        diagnose(square, (square_weights.argmax(dim=-1) == square_ideal).float().mean().item(), [
            ((square_weights.argmax(dim=-2) == square_ideal).float().mean().item(), "You took the argmax over "
             "the queries (dim 1); each query picks a key: argmax over the keys, the last axis."),
        ], hint, atol=1e-6, rtol=0)
        return hint

    for weights, ideal in cases:
        got = call(alignment_accuracy, weights.clone(), ideal.clone(), errors={(RuntimeError, IndexError): crashed})
        value = call(float, got, errors={(TypeError, ValueError, RuntimeError): (
            f"return one number (a float), got {type(got).__name__}"
            f"{' of shape ' + str(tuple(got.shape)) if isinstance(got, torch.Tensor) else ''}")})
        correct = weights.argmax(dim=-1) == ideal  # (batch, q_len)
        expected = correct.float().mean().item()
        diagnose(value, expected, [
            (float(correct.sum().item()), "You returned the number of correct queries; return the fraction (divide "
                                          "by batch × q_len, or take the mean)."),
            (correct.all(dim=-1).float().mean().item(), "You scored whole examples (all queries right); count each "
             "query separately: the fraction of (example, query) pairs whose argmax is the ideal key."),
            (weights.gather(-1, ideal.expand(weights.shape[:-1]).unsqueeze(-1)).mean().item(), "You averaged the "
             "weight on the ideal key. Count a query as right when its largest weight (argmax) is on the ideal key."),
        ], f"{correct.sum().item()} of {correct.numel()} queries have their largest weight on the ideal key, so the "
           f"accuracy is {expected:.4f}; you returned {value:.4f}", atol=1e-6, rtol=0)
