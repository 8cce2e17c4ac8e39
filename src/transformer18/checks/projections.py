"""Checkers for Q8 (where Q, K and V come from): a self-attention head written with plain tensor
operations, the parameter count of a head, and the score written as one bilinear matrix."""

from __future__ import annotations

import itertools
import math

import torch

from ..projections import SingleHeadAttention
from ._core import call, checker, diagnose, expect

__all__ = ["check_single_head_attention", "check_projection_parameters", "check_score_matrix"]


# ---------------------------------------------------------------- single_head_attention

#: Each known mistake: (switch, value) -> the hint shown when the reader's output matches it.
HINTS = {
    ("q_src", "x"): "You used x itself as the queries: project them, Q = x W_Q.",
    ("k_src", "q"): "The keys are projected from the queries (K = (x W_Q) W_K): chained projections. "
                    "Each projection reads x itself: K = x W_K.",
    ("k_src", "x"): "You used x itself as the keys: project them, K = x W_K.",
    ("v_src", "k"): "The values are projected from the keys (V = K W_V): chained projections. "
                    "Each projection reads x itself: V = x W_V.",
    ("v_src", "q"): "The values are projected from the queries (V = Q W_V): chained projections. "
                    "Each projection reads x itself: V = x W_V.",
    ("v_src", "x"): "You used x itself as the values: V = x W_V. What a position hands over is learned too.",
    ("scale", "none"): "Divide the scores by √d_k before the softmax.",
    ("scale", "d_k"): "Scale the scores by √d_k, not by d_k.",
    ("scale", "sqrt_d_model"): "Scale by √d_k, the width of the queries and keys, not by √d_model.",
    ("scale", "sqrt_d_v"): "Scale by √d_k, the width of the queries and keys, not by √d_v.",
    ("norm", "none"): "Apply a softmax to the scaled scores: without it the weights are not positive and do "
                      "not sum to 1.",
    ("norm", "queries"): "Take the softmax over the keys (the last axis, dim=-1) so that each query's weights "
                         "sum to 1; you normalised over the queries (dim=1, i.e. dim=-2).",
    ("form", "weights"): "You returned the attention weights; return their weighted sum of the values, "
                         "weights @ V, of shape (batch, len, d_v).",
    ("form", "no_scores"): "There are no scores: you took a softmax of a projection of x over its features, so no "
                           "query is ever compared with a key. Compute the scores Q Kᵀ (one per query-key "
                           "pair), a softmax over the keys, and the weighted sum of the values, weights @ V.",
}
CORRECT = {"q_src": "proj", "k_src": "proj", "v_src": "proj", "scale": "sqrt_d_k", "norm": "keys", "form": "attention"}


def _variant(x, w_q, w_k, w_v, *, q_src="proj", k_src="proj", v_src="proj", scale="sqrt_d_k", norm="keys",
             form="attention"):
    """Self-attention with switches that reproduce known mistakes (for the hints). ``form="no_scores"`` is the
    shape of the self-attention of one widely shared article (Q8's exercise): softmax(V × scale) over the
    features, no Q Kᵀ and no weighted sum."""
    q = x @ w_q if q_src == "proj" else x  # (batch, len, d_k)
    k = {"proj": lambda: x @ w_k, "q": lambda: q @ w_k, "x": lambda: x}[k_src]()  # (batch, len, d_k)
    v = {"proj": lambda: x @ w_v, "k": lambda: k @ w_v, "q": lambda: q @ w_v, "x": lambda: x}[v_src]()
    divisor = {"sqrt_d_k": math.sqrt(w_q.shape[1]), "none": 1.0, "d_k": float(w_q.shape[1]),
               "sqrt_d_model": math.sqrt(x.shape[-1]), "sqrt_d_v": math.sqrt(w_v.shape[1])}[scale]
    if form == "no_scores":
        return (v / divisor).softmax(dim=-1)  # (batch, len, d_v): a softmax over features, not over keys
    scores = q @ k.transpose(-2, -1) / divisor  # (batch, len, len)
    weights = {"keys": lambda: scores.softmax(dim=-1), "queries": lambda: scores.softmax(dim=-2),
               "none": lambda: scores}[norm]()
    return weights if form == "weights" else weights @ v  # (batch, len, len) or (batch, len, d_v)


def _combinations() -> list[tuple[dict, str]]:
    """Every combination of mistakes that runs when d_model = d_k = d_v, fewest first, with its hint."""
    options = {"q_src": ["proj", "x"], "k_src": ["proj", "q", "x"], "v_src": ["proj", "k", "q", "x"],
               "scale": ["sqrt_d_k", "none", "d_k"], "norm": ["keys", "queries", "none"],
               "form": ["attention", "weights", "no_scores"]}
    combos = [dict(zip(options, values)) for values in itertools.product(*options.values())]
    found = []
    for combo in sorted(combos, key=lambda c: sum(c[name] != CORRECT[name] for name in c))[1:]:
        bugs = [HINTS[(name, value)] for name, value in combo.items() if value != CORRECT[name]]
        found.append((combo, bugs[0] if len(bugs) == 1 else f"{len(bugs)} problems:\n" + "\n".join(f"- {bug}"
                                                                                                  for bug in bugs)))
    return found


def _case(seed: int, batch: int, length: int, d_model: int, d_k: int, d_v: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, d_model, generator=g)  # (batch, len, d_model)
    # w_q, w_k: (d_model, d_k); w_v: (d_model, d_v)
    return x, *(torch.randn(d_model, width, generator=g) / math.sqrt(d_model) for width in (d_k, d_k, d_v))


def _check_case(self_attention, args, mistakes: list[tuple[dict, str]]) -> None:
    x, w_q, w_k, w_v = args
    sizes = f"d_model = {x.size(-1)}, d_k = {w_q.size(1)}, d_v = {w_v.size(1)}"
    out = call(self_attention, *(a.clone() for a in args), errors={RuntimeError: lambda error: (
        f"With {sizes} your code raised an error ({error}). Each projection must read x itself, which is d_model "
        "wide: Q = x W_Q, K = x W_K, V = x W_V. (Chained projections only run when every width equals d_model.)")})
    expected = _variant(*args)
    diagnose(out, expected, [
        (isinstance(out, tuple), "Return only the output tensor (batch, len, d_v), not a tuple."),
        (lambda: _variant(*args, form="weights"), HINTS[("form", "weights")]),  # any widths, not only square
        (lambda: out.shape != expected.shape and out.shape == x.shape,
         "Your output is d_model wide; it should be d_v wide, (batch, len, d_v): the values are x W_V, not x."),
        *[(lambda switches=switches: _variant(*args, **switches), hint) for switches, hint in mistakes],
    ], f"with {sizes} your output differs from softmax(Q Kᵀ / √d_k) V", shape="return shape (batch, len, d_v)")


@checker("single_head_attention")
def check_single_head_attention(self_attention) -> None:
    """Check ``self_attention(x, w_q, w_k, w_v) -> (batch, len, d_v)`` against softmax(QKᵀ/√d_k)V."""
    # 1. Square weights (d_model = d_k = d_v): chained projections and x-as-values still run, so the
    #    output can be compared with every combination of known mistakes.
    _check_case(self_attention, _case(0, batch=2, length=5, d_model=6, d_k=6, d_v=6), _combinations())
    # 2. Every width different: d_k ≠ d_v ≠ d_model.
    scalings = [(dict(scale=scale), HINTS[("scale", scale)]) for scale in ("sqrt_d_model", "sqrt_d_v", "none", "d_k")]
    for seed, (batch, length) in [(1, (3, 7)), (2, (1, 2))]:
        _check_case(self_attention, _case(seed, batch=batch, length=length, d_model=12, d_k=4, d_v=6), scalings)


# ---------------------------------------------------------------- projection_parameters


@checker("projection_parameters")
def check_projection_parameters(projection_parameters) -> None:
    """Check ``projection_parameters(d_model, d_k, d_v) -> int`` against ``SingleHeadAttention``."""
    for d_model, d_k, d_v in [(12, 4, 6), (10, 2, 7), (512, 64, 64), (16, 8, 3)]:
        with torch.device("meta"):
            expected = sum(p.numel() for p in SingleHeadAttention(d_model, d_k, d_v).parameters())
        got = projection_parameters(d_model, d_k, d_v)
        expect(isinstance(got, int) and not isinstance(got, bool), f"return an int, got {type(got).__name__}")
        one = "A head has three projections, W_Q, W_K and W_V; you counted one."
        diagnose(got, expected, [
            (d_model * (2 * d_k + d_v), "Count the biases: each projection is an nn.Linear with one bias per output "
                                        "(d_k, d_k and d_v)."),
            (d_model * (2 * d_k + d_v) + 3 * d_model, "A Linear's bias has one entry per output, not per input: d_k, "
                                                      "d_k and d_v, not d_model each."),
            (3 * (d_model * d_k + d_k), "The value projection maps d_model → d_v, not d_k: its weight is d_model × d_v "
                                        "and its bias has d_v entries."),
            (3 * (d_model * d_v + d_v), "The query and key projections map d_model → d_k, not d_v."),
            (3 * (d_model * d_model + d_model), "The projections map d_model to d_k (queries, keys) and d_v (values), "
                                                "not to d_model."),
            (2 * (d_model * d_k + d_k), "Don't forget the value projection W_V (d_model × d_v weights, d_v biases)."),
            (expected + d_v * d_model + d_model, "A single head has no output projection W_O here (Q12 adds one when "
                                                 "it concatenates heads); count W_Q, W_K and W_V only."),
            (d_model * d_k + d_k, one),
            (d_model * d_v + d_v, one),
        ], f"SingleHeadAttention({d_model}, {d_k}, {d_v}) has {expected:,} parameters, you returned {got:,}.")


# ---------------------------------------------------------------- score_matrix


@checker("score_matrix")
def check_score_matrix(score_matrix) -> None:
    """Check ``score_matrix(w_q, w_k) -> M`` with x_i M x_jᵀ = (x_i W_Q)·(x_j W_K) for all x: M = W_Q W_Kᵀ."""
    for seed, d_model, d_k in [(0, 6, 6), (1, 12, 4), (2, 9, 1)]:
        g = torch.Generator().manual_seed(seed)
        w_q = torch.randn(d_model, d_k, generator=g)  # (d_model, d_k)
        w_k = torch.randn(d_model, d_k, generator=g)  # (d_model, d_k)
        m = call(score_matrix, w_q.clone(), w_k.clone(), errors={RuntimeError: lambda error: (
            f"With d_model = {d_model}, d_k = {d_k} your code raised an error ({error}). Both matrices are "
            "(d_model, d_k): transpose one of them.")})
        diagnose(m, w_q @ w_k.T, [
            (lambda: d_k != d_model and m.shape == (d_k, d_k),
             "M acts on d_model-wide vectors (x_i M x_jᵀ), so it is (d_model, d_model); W_Qᵀ W_K is (d_k, d_k)."),
            (w_k @ w_q.T, "That is Mᵀ = W_K W_Qᵀ, which gives score(j, i): the scores transposed. score(i, j) = "
                          "x_i W_Q (x_j W_K)ᵀ = x_i (W_Q W_Kᵀ) x_jᵀ."),
            (w_q.T @ w_k, "M acts on d_model-wide vectors; W_Qᵀ W_K is the (d_k, d_k) product in the wrong order."),
            (w_q @ w_q.T, "M needs both matrices: W_Q on the query side, W_K on the key side (you used W_Q twice)."),
            (w_k @ w_k.T, "M needs both matrices: W_Q on the query side, W_K on the key side (you used W_K twice)."),
            (lambda: w_q @ w_k, "Transpose W_K: (x_j W_K)ᵀ = W_Kᵀ x_jᵀ, so M = W_Q W_Kᵀ."),
        ], "M differs from W_Q W_Kᵀ, so x_i M x_jᵀ differs from the score (x_i W_Q)·(x_j W_K)",
            shape="M must be (d_model, d_model)", atol=1e-4, rtol=1e-4)
