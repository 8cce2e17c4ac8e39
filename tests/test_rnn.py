import pytest
import torch
from torch import nn

from transformer18.rnn import ElmanRNN


@pytest.mark.parametrize("seed, batch, length, input_size, hidden_size",
                         [(0, 1, 1, 1, 1), (1, 3, 11, 5, 7), (2, 4, 30, 16, 8), (3, 2, 5, 9, 9)])
def test_equals_torch_rnn_with_copied_weights(seed, batch, length, input_size, hidden_size):
    torch.manual_seed(seed)
    reference = nn.RNN(input_size, hidden_size, batch_first=True)
    ours = ElmanRNN.from_torch(reference)
    x = torch.randn(batch, length, input_size)
    h0 = torch.randn(batch, hidden_size)
    expected, expected_last = reference(x, h0.unsqueeze(0))
    states, last = ours(x, h0)
    torch.testing.assert_close(states, expected)
    torch.testing.assert_close(last, expected_last[0])


def test_gradients_equal_torch_rnn():
    torch.manual_seed(0)
    reference = nn.RNN(4, 6, batch_first=True)
    ours = ElmanRNN.from_torch(reference)
    x = torch.randn(2, 7, 4)
    reference(x)[0].square().sum().backward()
    ours(x)[0].square().sum().backward()
    torch.testing.assert_close(ours.w_hh.weight.grad, reference.weight_hh_l0.grad)
    torch.testing.assert_close(ours.w_ih.bias.grad, reference.bias_ih_l0.grad)


def test_missing_h0_means_zeros():
    rnn = ElmanRNN(3, 4)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(rnn(x)[0], rnn(x, torch.zeros(2, 4))[0])


def test_is_causal_in_time():
    """Changing a later input never changes an earlier state."""
    rnn = ElmanRNN(3, 4)
    x = torch.randn(1, 8, 3)
    y = x.clone()
    y[0, 5:] = torch.randn(3, 3)
    torch.testing.assert_close(rnn(x)[0][:, :5], rnn(y)[0][:, :5])
    assert not torch.allclose(rnn(x)[0][:, 5:], rnn(y)[0][:, 5:])


def test_runs_one_sequential_step_per_token():
    rnn = ElmanRNN(3, 4)
    calls = []
    rnn.w_hh.register_forward_hook(lambda *_: calls.append(1))
    rnn(torch.randn(2, 13, 3))
    assert len(calls) == 13


def test_initialisation_matches_torch_bounds():
    torch.manual_seed(0)
    rnn = ElmanRNN(10, 100)
    for p in rnn.parameters():
        assert p.abs().max() <= 100**-0.5


@pytest.mark.parametrize("sizes", [(0, 4), (3, -1)])
def test_bad_sizes_are_value_errors(sizes):
    with pytest.raises(ValueError, match="sizes must be positive"):
        ElmanRNN(*sizes)


def test_bad_input_rank_is_a_value_error():
    with pytest.raises(ValueError, match=r"\(batch, len, input_size\)"):
        ElmanRNN(3, 4)(torch.randn(5, 3))


@pytest.mark.parametrize("kwargs", [dict(num_layers=2), dict(bidirectional=True), dict(nonlinearity="relu"),
                                    dict(bias=False)])
def test_from_torch_rejects_other_rnns(kwargs):
    with pytest.raises(ValueError, match="one-layer"):
        ElmanRNN.from_torch(nn.RNN(3, 4, batch_first=True, **kwargs))
