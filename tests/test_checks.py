"""Every checker accepts the reference solution and rejects known-wrong code with the right hint."""

import pytest
import torch
from conftest import rejects

from transformer18 import checks
from transformer18.checks import CheckFailed

# ---------------------------------------------------------------- the framework


def test_an_untouched_stub_prints_not_implemented(capsys):
    @checks.checker("thing")
    def check_thing(fn):
        fn()

    def stub():
        raise NotImplementedError

    assert check_thing(stub) is None
    assert "thing: not implemented yet" in capsys.readouterr().out


def test_correct_code_prints_a_tick_and_wrong_code_raises_the_hint(capsys):
    @checks.checker("double")
    def check_double(fn):
        checks.expect(fn(2) == 4, "Multiply by two.")

    check_double(lambda x: 2 * x)
    assert "✓ double: all checks passed." in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="Multiply by two"):
        check_double(lambda x: x + 1)
    assert issubclass(CheckFailed, AssertionError)


@pytest.mark.parametrize("name", [name for name in checks.__all__ if name.startswith("check_")])
def test_every_checker_reports_an_untouched_stub(name, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError

    check = getattr(checks, name)
    before = torch.random.get_rng_state()
    assert check(stub) is None
    assert f"… {check.title}: not implemented yet." in capsys.readouterr().out
    assert torch.equal(torch.random.get_rng_state(), before), "a checker changed the reader's global RNG"


def test_a_check_gives_the_reader_back_their_rng(capsys):
    @checks.checker("draws")
    def check_draws(fn):
        torch.randn(3)  # the checker draws
        checks.expect(fn() is None, "return None")

    before = torch.random.get_rng_state()
    check_draws(lambda: torch.manual_seed(123) and None)  # and so does (even reseeds) the reader's code
    assert torch.equal(torch.random.get_rng_state(), before)
    assert "✓ draws" in capsys.readouterr().out


def test_a_checker_needs_the_function_itself():
    with pytest.raises(TypeError, match="your function itself"):
        checks.check_rnn_forward(3)


def test_expect_close_reports_shape_and_difference():
    with pytest.raises(CheckFailed, match=r"shape \(2,\), expected \(3,\)"):
        checks.expect_close(torch.zeros(2), torch.zeros(3), "off")
    with pytest.raises(CheckFailed, match="largest difference 0.5"):
        checks.expect_close(torch.zeros(3), torch.tensor([0.0, 0.5, 0.0]), "off")
    checks.expect_close(torch.ones(3), torch.ones(3), "never")



def test_expect_tensor_names_what_came_back():
    checks.expect_tensor(torch.zeros(2))
    with pytest.raises(CheckFailed, match="^return a tensor, got list$"):
        checks.expect_tensor([0.0, 0.0])


# ---------------------------------------------------------------- call, unchanged, seeded


def test_call_returns_the_result_and_turns_named_exceptions_into_hints():
    assert checks.call(lambda a, b=0: a + b, 2, b=3, errors={}) == 5
    with pytest.raises(CheckFailed, match="^by type$"):
        checks.call(lambda: 1 / 0, errors={ZeroDivisionError: "by type"})
    with pytest.raises(CheckFailed, match="^by tuple$"):
        checks.call(lambda: [][0], errors={(KeyError, IndexError): "by tuple"})
    with pytest.raises(CheckFailed, match="^by fragment$"):  # entries are tried in order
        checks.call(lambda: int("x"), errors={"invalid literal": "by fragment", ValueError: "by type"})
    with pytest.raises(CheckFailed, match="^quoted: RuntimeError$") as raised:
        checks.call(torch.broadcast_to, torch.ones(3), (2,),
                    errors={RuntimeError: lambda error: f"quoted: {type(error).__name__}"})
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize("error", [NotImplementedError(), CheckFailed("the reader's own hint"),
                                   RuntimeError("unrelated"), ValueError("shape")])
def test_call_lets_the_stub_hints_and_unnamed_exceptions_through(error):
    def raising():
        raise error

    with pytest.raises(type(error)) as raised:
        checks.call(raising, errors={RuntimeError: "named"} if isinstance(error, ValueError) else {
            TypeError: "named", "fragment": "named"})
    assert raised.value is error


def test_call_never_names_the_untouched_stub(capsys):
    @checks.checker("stub")
    def check_stub(fn):
        checks.call(fn, errors={RuntimeError: "a RuntimeError", "": "any message"})

    def stub():
        raise NotImplementedError  # a RuntimeError whose message contains ""

    check_stub(stub)
    assert "stub: not implemented yet" in capsys.readouterr().out


def test_unchanged_fails_with_the_hint_when_an_input_changes_in_place():
    x, days = torch.ones(3, requires_grad=True), [1, [2, 3]]
    with checks.unchanged("never", x, days):
        (x * 2).sum().backward()
    with pytest.raises(CheckFailed, match="^tensor changed$"):
        with checks.unchanged("tensor changed", torch.zeros(2), x):
            with torch.no_grad():
                x += 1
    with pytest.raises(CheckFailed, match="^list changed$"):
        with checks.unchanged("list changed", x, days):
            days[1].append(4)  # deep: a nested list counts too


def test_seeded_seeds_the_block_and_restores_the_global_rng():
    torch.manual_seed(123)
    state, expected = torch.get_rng_state(), torch.randn(3)
    torch.set_rng_state(state)
    with checks.seeded(5):
        inside = torch.randn(2)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.randn(3), expected)
    torch.manual_seed(5)
    assert torch.equal(inside, torch.randn(2))


# ---------------------------------------------------------------- diagnose: mistakes as data

MISTAKES = [(torch.tensor([1.0, 2.0]), "first"), (torch.tensor([1.0, 2.0]), "second"),
            (torch.tensor([0.0, 0.0]), "zeros")]


def test_diagnose_passes_the_expected_value():
    checks.diagnose(torch.tensor([1.0, 1.0 + 1e-7]), torch.ones(2), MISTAKES, "never")
    checks.diagnose(3, 3, [(3, "never")])


def test_diagnose_names_the_first_matching_mistake():
    with pytest.raises(CheckFailed, match="^first$"):
        checks.diagnose(torch.tensor([1.0, 2.0]), torch.ones(2), MISTAKES, "otherwise")
    with pytest.raises(CheckFailed, match="^zeros$"):
        checks.diagnose(torch.zeros(2), torch.ones(2), MISTAKES, "otherwise")


def test_diagnose_falls_back_to_otherwise_with_the_largest_difference():
    with pytest.raises(CheckFailed, match=r"^otherwise \(largest difference 2\)$"):
        checks.diagnose(torch.tensor([3.0, 1.0]), torch.ones(2), MISTAKES, "otherwise")
    with pytest.raises(CheckFailed, match="^otherwise$"):
        checks.diagnose(torch.tensor([True, False]), torch.tensor([True, True]), [], "otherwise")
    with pytest.raises(CheckFailed, match="^off by one$"):
        checks.diagnose(5, 4, [(3, "never")], "off by one")


def test_diagnose_reports_a_shape_mismatch_after_the_mistakes():
    with pytest.raises(CheckFailed, match=r"^must be \(n,\) = \(2,\), got \(1, 2\)$"):
        checks.diagnose(torch.ones(1, 2), torch.ones(2), MISTAKES, "otherwise", shape="must be (n,)")
    with pytest.raises(CheckFailed, match=r"^otherwise \(shape \(3,\), expected \(2,\)\)$"):
        checks.diagnose(torch.ones(3), torch.ones(2), MISTAKES, "otherwise")
    with pytest.raises(CheckFailed, match="^too long$"):  # a mistake may have another shape than the answer
        checks.diagnose(torch.ones(3), torch.ones(2), [(torch.ones(3), "too long")], "otherwise")
    with pytest.raises(CheckFailed, match="^return a tensor, got list$"):
        checks.diagnose([1.0, 1.0], torch.ones(2), MISTAKES, "otherwise")


def test_diagnose_never_blames_a_mistake_that_gives_the_right_answer_here():
    with pytest.raises(CheckFailed, match="^zeros$"):
        checks.diagnose(torch.zeros(2), torch.ones(2), [(torch.ones(2), "same as right"), *MISTAKES], "otherwise")


def test_diagnose_conditions_and_lazy_variants():
    computed = []

    def lazy():
        computed.append(1)
        return torch.zeros(2)

    checks.diagnose(torch.ones(2), torch.ones(2), [(lazy, "zeros")])
    assert not computed  # a lazy variant runs only for a wrong answer
    with pytest.raises(CheckFailed, match="^zeros$"):
        checks.diagnose(torch.zeros(2), torch.ones(2), [(False, "no"), (lambda: 1 / 0, "cannot run"), (lazy, "zeros")])
    with pytest.raises(CheckFailed, match="^condition$"):
        checks.diagnose(torch.zeros(2), torch.ones(2), [(True, "condition"), (lazy, "zeros")])


def test_diagnose_tolerances_and_exact_tensors():
    checks.diagnose(torch.tensor([1.001]), torch.tensor([1.0]), otherwise="never", atol=1e-2)
    with pytest.raises(CheckFailed, match="never"):
        checks.diagnose(torch.tensor([1.001]), torch.tensor([1.0]), otherwise="never", atol=0, rtol=0)
    assert checks.matches(torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))
    assert not checks.matches(torch.tensor([[1, 2]]), torch.tensor([1, 2]))
    assert checks.matches(0.1 + 0.2, 0.3) and not checks.matches("0.3", 0.3) and not checks.matches(True, 1)
    assert checks.matches(9.0, 9) and checks.matches(4, 4) and not checks.matches(4.0 + 1e-3, 4)
    assert checks.matches((torch.ones(2), [1, 2.0]), [torch.ones(2), (1, 2)])
    assert not checks.matches((torch.ones(2),), (torch.ones(2), 1)) and not checks.matches(torch.ones(1), (1.0,))


# ---------------------------------------------------------------- Q1: rnn_forward


def rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, *, act=torch.tanh, carry=True, transpose=False, biases=(1, 1),
                last_only=False):
    h, states = h0, []
    for t in range(x.shape[1]):
        prev = h if carry else h0
        h = act(x[:, t] @ w_ih.T + biases[0] * b_ih + prev @ (w_hh if transpose else w_hh.T) + biases[1] * b_hh)
        states.append(h)
    return h if last_only else torch.stack(states, dim=1)


def variant(**kw):
    return lambda *args: rnn_forward(*args, **kw)


def test_rnn_forward_accepts_the_reference(accepts):
    accepts(checks.check_rnn_forward, rnn_forward)


@pytest.mark.parametrize("wrong, hint", [
    (variant(act=lambda z: z), "apply tanh"),
    (variant(carry=False), "not h0 again"),
    (variant(transpose=True), "w_hh transposed"),
    (variant(biases=(1, 0)), "both biases"),
    (variant(biases=(0, 1)), "both biases"),
    (variant(last_only=True), "only the last hidden state"),
    (lambda x, *a: rnn_forward(x, *a).transpose(0, 1), "expected \\(batch, len, hidden\\)"),
    (variant(act=torch.sigmoid), "differ from torch.nn.RNN"),
])
def test_rnn_forward_rejects_wrong_code(wrong, hint):
    rejects(checks.check_rnn_forward, wrong, hint)


# ---------------------------------------------------------------- Q1: receptive_field


def receptive_field(n_layers, kernel_size, dilated=False):
    return kernel_size**n_layers if dilated else 1 + n_layers * (kernel_size - 1)


def test_receptive_field_accepts_the_reference(accepts):
    accepts(checks.check_receptive_field, receptive_field)


@pytest.mark.parametrize("wrong, hint", [
    (lambda L, k, dilated=False: L * k, "adds kernel_size − 1"),
    (lambda L, k, dilated=False: L * (k - 1), "count the position itself"),
    (lambda L, k, dilated=False: 1 + L * (k - 1), "dilated=True"),
    (lambda L, k, dilated=False: k ** L if dilated else L + k, "see .* positions \\(measured\\)"),
    (lambda L, k, dilated=False: receptive_field(L, k) if not dilated else k ** L + 1, "dilated convolutions"),
])
def test_receptive_field_rejects_wrong_code(wrong, hint):
    rejects(checks.check_receptive_field, wrong, hint)


# ---------------------------------------------------------------- Q2: attention_parameters


def test_attention_parameters_accepts_the_reference(accepts):
    accepts(checks.check_attention_parameters, lambda d, h: 4 * d * d + 4 * d)


@pytest.mark.parametrize("wrong, hint", [
    (lambda d, h: 4 * d * d, "Count the biases"),
    (lambda d, h: 3 * d * d + 3 * d, "output projection W_O"),
    (lambda d, h: 4 * d * (d // h) + 4 * (d // h), "counted one head"),
    (lambda d, h: h * (4 * d * d + 4 * d), "must not depend on n_heads"),
    (lambda d, h: 4 * d * d + 4 * d + 1, "has .* parameters, you returned"),
    (lambda d, h: float(4 * d * d + 4 * d), "return an int"),
])
def test_attention_parameters_rejects_wrong_code(wrong, hint):
    rejects(checks.check_attention_parameters, wrong, hint)


# ---------------------------------------------------------------- Q2: encoder_layer_parameters



def layer(d, f, *, norms=2, ffn_bias=True, ffn=True):
    return (4 * d * d + 4 * d) + ffn * (2 * d * f + ffn_bias * (f + d)) + norms * 2 * d


def test_encoder_layer_parameters_accepts_the_reference(accepts):
    accepts(checks.check_encoder_layer_parameters, layer)


@pytest.mark.parametrize("wrong, hint", [
    (lambda d, f: layer(d, f, norms=0), "Count the two LayerNorms"),
    (lambda d, f: layer(d, f, norms=1), "two LayerNorms per encoder layer"),
    (lambda d, f: layer(d, f, ffn_bias=False), "biases too"),
    (lambda d, f: layer(d, f, ffn_bias=False, norms=0), "FFN's biases and the two LayerNorms"),
    (lambda d, f: layer(d, f, ffn=False), "feed-forward network too"),
    (lambda d, f: layer(d, f, norms=3), "has .* parameters, you returned"),
])
def test_encoder_layer_parameters_rejects_wrong_code(wrong, hint):
    rejects(checks.check_encoder_layer_parameters, wrong, hint)
