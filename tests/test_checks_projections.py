"""The Q8 checkers accept the reference solutions and reject known-wrong code with the right hint."""

import math

import pytest
import torch
from conftest import rejects, variant

from transformer18 import checks
from transformer18.checks import CheckFailed

# ---------------------------------------------------------------- single_head_attention


def attend(x, w_q, w_k, w_v, *, q_from="x", k_from="x", v_from="x", scale="sqrt_d_k", norm=-1):
    """Self-attention with switches for every known mistake."""
    q = x @ w_q if q_from == "x" else x
    k = {"x": lambda: x @ w_k, "q": lambda: q @ w_k, "raw": lambda: x}[k_from]()
    v = {"x": lambda: x @ w_v, "k": lambda: k @ w_v, "q": lambda: q @ w_v, "raw": lambda: x}[v_from]()
    d_k = w_q.shape[1]
    divisor = {"sqrt_d_k": math.sqrt(d_k), "none": 1.0, "d_k": d_k, "sqrt_d_model": math.sqrt(x.shape[-1]),
               "sqrt_d_v": math.sqrt(w_v.shape[1])}[scale]
    scores = q @ k.transpose(-2, -1) / divisor
    weights = scores if norm is None else scores.softmax(dim=norm)
    return weights @ v


@pytest.mark.parametrize("solution", [
    attend,
    lambda x, w_q, w_k, w_v: torch.nn.functional.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v),
    lambda x, w_q, w_k, w_v: torch.softmax(torch.einsum("bid,bjd->bij", x @ w_q, x @ w_k) / w_q.shape[1] ** 0.5,
                                           dim=2) @ (x @ w_v),
    lambda x, w_q, w_k, w_v: attend(x.double(), w_q.double(), w_k.double(), w_v.double()),
])
def test_single_head_attention_accepts_correct_code(solution, accepts):
    accepts(checks.check_single_head_attention, solution)


@pytest.mark.parametrize("wrong, hint", [
    (variant(attend, k_from="q"), r"keys are projected from the queries \(K = \(x W_Q\) W_K\): chained"),
    (variant(attend, v_from="k"), r"values are projected from the keys \(V = K W_V\): chained"),
    (variant(attend, v_from="q"), r"values are projected from the queries"),
    (variant(attend, k_from="q", v_from="k"),
     r"2 problems:(?s:.*)keys are projected(?s:.*)values are projected from the keys"),
    (variant(attend, norm=None), "Apply a softmax"),
    (variant(attend, norm=-2), r"softmax over the keys \(the last axis, dim=-1\)"),
    (variant(attend, norm=1), "you normalised over the queries"),
    (variant(attend, scale="none"), "Divide the scores by √d_k"),
    (variant(attend, scale="d_k"), "not by d_k"),
    (variant(attend, scale="sqrt_d_model"), "not by √d_model"),
    (variant(attend, scale="sqrt_d_v"), "not by √d_v"),
    (variant(attend, v_from="raw"), "x itself as the values"),
    (variant(attend, k_from="raw"), "x itself as the keys"),
    (variant(attend, q_from="raw"), "x itself as the queries"),
    (variant(attend, norm=None, scale="none"), r"2 problems:(?s:.*)Divide the scores(?s:.*)Apply a softmax"),
    (lambda x, w_q, w_k, w_v: (attend(x, w_q, w_k, w_v), None), "not a tuple"),
    (lambda x, w_q, w_k, w_v: attend(x, w_q, w_k, w_v).tolist(), "return a tensor, got list"),
    (lambda x, w_q, w_k, w_v: ((x @ w_q) @ (x @ w_k).transpose(-2, -1) / math.sqrt(w_q.shape[1])).softmax(-1),
     "You returned the attention weights"),
    (lambda x, *w: attend(x, *w).transpose(0, 1), r"return shape \(batch, len, d_v\)"),
    (lambda x, *w: attend(x, *w) + 0.01, "differs from softmax"),
    (lambda x, *w: attend(x, *w) if x.shape[-1] == 6 else attend(x, *w) * 1.1, "with d_model = 12, d_k = 4"),
    (lambda x, *w: attend(x, *w) if x.shape[-1] == 6 else x, "values are x W_V, not x"),
])
def test_single_head_attention_rejects_wrong_code(wrong, hint):
    rejects(checks.check_single_head_attention, wrong, hint)


def test_single_head_attention_names_every_bug_of_the_articles_code():
    """Q8's exercise: the self-attention of a widely shared article (chained projections, no Q Kᵀ, a softmax
    over the features, no weighted sum). The checker names each bug still in the code as it is fixed."""
    def article(x, w_q, w_k, w_v):
        x = x @ w_q
        x = x @ w_k
        x = x @ w_v
        return torch.softmax(x * w_q.shape[1] ** -0.5, dim=-1)

    def unchained(x, w_q, w_k, w_v):
        return torch.softmax(x @ w_v * w_q.shape[1] ** -0.5, dim=-1)

    def scores_without_values(x, w_q, w_k, w_v):
        return torch.softmax((x @ w_q) @ (x @ w_k).transpose(1, 2) * w_q.shape[1] ** -0.5, dim=-1)

    with pytest.raises(CheckFailed) as failure:
        checks.check_single_head_attention(article)
    message = str(failure.value)
    assert message.startswith("3 problems:")
    for hint in ("keys are projected from the queries", "values are projected from the keys", "There are no scores"):
        assert hint in message
    rejects(checks.check_single_head_attention, unchained, r"^There are no scores")
    rejects(checks.check_single_head_attention, scores_without_values, "You returned the attention weights")


def test_single_head_attention_finds_all_four_bugs_of_a_chained_head():
    def chained(x, w_q, w_k, w_v):
        query = x @ w_q
        key = query @ w_k
        value = key @ w_v
        return torch.softmax(query @ key.transpose(1, 2) / query.size(-1), dim=1) @ value

    with pytest.raises(CheckFailed) as failure:
        checks.check_single_head_attention(chained)
    message = str(failure.value)
    assert message.startswith("4 problems:")
    for hint in ("keys are projected from the queries", "values are projected from the keys", "not by d_k",
                 "normalised over the queries"):
        assert hint in message


def test_chained_projections_crash_with_a_hint_when_the_widths_differ():
    def chained_but_correct_when_square(x, w_q, w_k, w_v):
        if w_q.shape[1] == x.shape[-1]:
            return attend(x, w_q, w_k, w_v)
        return attend(x, w_q, w_k, w_v, k_from="q")  # raises: (…, 4) @ (12, 4)

    rejects(checks.check_single_head_attention, chained_but_correct_when_square, "Each projection must read x itself")


# ---------------------------------------------------------------- projection_parameters


def projection_parameters(d_model, d_k, d_v):
    return 2 * (d_model * d_k + d_k) + d_model * d_v + d_v


def test_projection_parameters_accepts_the_reference(accepts):
    accepts(checks.check_projection_parameters, projection_parameters)


@pytest.mark.parametrize("wrong, hint", [
    (lambda d, k, v: d * (2 * k + v), "Count the biases"),
    (lambda d, k, v: d * (2 * k + v) + 3 * d, "one entry per output, not per input"),
    (lambda d, k, v: 3 * (d * k + k), "maps d_model → d_v, not d_k"),
    (lambda d, k, v: 3 * (d * v + v), "query and key projections map d_model → d_k, not d_v"),
    (lambda d, k, v: 3 * (d * d + d), "not to d_model"),
    (lambda d, k, v: 2 * (d * k + k), "forget the value projection"),
    (lambda d, k, v: projection_parameters(d, k, v) + v * d + d, "no output projection W_O"),
    (lambda d, k, v: d * k + k, "you counted one"),
    (lambda d, k, v: projection_parameters(d, k, v) + 1, "has .* parameters, you returned"),
    (lambda d, k, v: float(projection_parameters(d, k, v)), "return an int"),
])
def test_projection_parameters_rejects_wrong_code(wrong, hint):
    rejects(checks.check_projection_parameters, wrong, hint)


# ---------------------------------------------------------------- score_matrix


@pytest.mark.parametrize("solution", [
    lambda w_q, w_k: w_q @ w_k.T,
    lambda w_q, w_k: torch.einsum("ik,jk->ij", w_q, w_k),
    lambda w_q, w_k: (w_k @ w_q.T).T,
])
def test_score_matrix_accepts_correct_code(solution, accepts):
    accepts(checks.check_score_matrix, solution)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w_q, w_k: w_k @ w_q.T, "gives score\\(j, i\\)"),
    (lambda w_q, w_k: w_q.T @ w_k, "product in the wrong order"),
    (lambda w_q, w_k: w_q @ w_q.T, "used W_Q twice"),
    (lambda w_q, w_k: w_k @ w_k.T, "used W_K twice"),
    (lambda w_q, w_k: w_q @ w_k, "Transpose W_K"),
    (lambda w_q, w_k: w_q @ w_k.T * 2, "x_i M x_jᵀ differs from the score"),
    (lambda w_q, w_k: (w_q @ w_k.T).tolist(), "return a tensor"),
])
def test_score_matrix_rejects_wrong_code(wrong, hint):
    rejects(checks.check_score_matrix, wrong, hint)


def test_score_matrix_reports_a_shape_error():
    rejects(checks.check_score_matrix, lambda w_q, w_k: w_q @ w_k.T if w_q.shape[0] == w_q.shape[1] else w_q @ w_k,
            "transpose one of them")
