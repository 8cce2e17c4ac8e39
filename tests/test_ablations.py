"""The ablations of Q18: each removes exactly one term (parity with PyTorch where an equivalent exists, the
formula by hand elsewhere), keeps every other weight, works on the fused path, and trains; the autograd
memory counter; clear errors for bad input."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer18.ablations import (
    ABLATIONS,
    NoFeedForward,
    NoLayerNorm,
    NoPositionalEncoding,
    NoResidualDecoderLayer,
    NoResidualEncoderLayer,
    UnscaledMultiHeadAttention,
    ablate,
    autograd_saved_bytes,
    one_head,
    without_residual,
)
from transformer18.checks.model import _scramble_
from transformer18.config import TransformerConfig
from transformer18.decoder import subsequent_mask
from transformer18.feedforward import PositionwiseFeedForward
from transformer18.masks import decoder_self_mask, padding_mask
from transformer18.model import DecoderLayer, EncoderLayer, Transformer, use_fused_kernels
from transformer18.multihead import MultiHeadAttention
from transformer18.norm import LayerNorm
from transformer18.positional import PositionalEncoding
from transformer18.rnn import ElmanRNN

PAD = 0


def toy_model(seed=0, **overrides) -> Transformer:
    values = dict(src_vocab_size=13, tgt_vocab_size=11, d_model=12, n_heads=3, n_layers=2, d_ff=20, dropout=0.0,
                  max_len=32)
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(**{**values, **overrides})).eval()


def toy_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 13, (2, 6), generator=g)  # (batch, src_len)
    src[1, 4:] = PAD
    tgt = torch.randint(4, 11, (2, 5), generator=g)  # (batch, tgt_len)
    tgt[:, 0] = 1
    return src, tgt, padding_mask(src, PAD), decoder_self_mask(tgt, PAD)


def scrambled_layer(kind=EncoderLayer, norm_first=False, seed=0, d_model=12, n_heads=3, d_ff=20):
    torch.manual_seed(seed)
    return _scramble_(kind(d_model, n_heads, d_ff, dropout=0.0, norm_first=norm_first), seed)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------- ablate


def test_the_names_and_what_they_remove():
    assert list(ABLATIONS) == ["full", "no positional encoding", "no residual", "no layer norm", "one head", "no FFN",
                               "no scaling"]
    assert all("§3" in what for what in ABLATIONS.values())


@pytest.mark.parametrize("name, message", [("no positions", "unknown ablation 'no positions'"),
                                           ("No FFN", "unknown ablation"), ("", "unknown ablation")])
def test_unknown_names_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        ablate(toy_model(), name)


def test_non_modules_and_models_without_the_part_are_refused():
    with pytest.raises(ValueError, match="ablate takes an nn.Module, got dict"):
        ablate({}, "no FFN")
    with pytest.raises(ValueError, match="'no FFN' removes PositionwiseFeedForward, and the model has none"):
        ablate(nn.Linear(3, 4), "no FFN")
    with pytest.raises(ValueError, match="removes EncoderLayer or DecoderLayer"):
        ablate(MultiHeadAttention(8, 2), "no residual")
    assert isinstance(ablate(nn.Linear(3, 4), "full"), nn.Linear)  # "full" removes nothing, from anything


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_ablate_returns_a_copy_and_leaves_the_model_alone(name):
    model = toy_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    types = [type(m) for m in model.modules()]
    ablated = ablate(model, name)
    assert ablated is not model
    assert [type(m) for m in model.modules()] == types
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        for p in ablated.parameters():
            p.add_(1.0)  # the copy owns its parameters
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_every_kept_parameter_equals_the_original(name):
    model = toy_model(seed=3)
    full = model.state_dict()
    ablated = ablate(model, name).state_dict()
    assert set(ablated) <= set(full)
    assert all(torch.equal(tensor, full[key]) for key, tensor in ablated.items())
    norms = sum(n_params(m) for m in model.modules() if isinstance(m, LayerNorm))
    ffns = sum(n_params(m) for m in model.modules() if isinstance(m, PositionwiseFeedForward))
    dropped = {"no layer norm": norms, "no FFN": ffns}.get(name, 0)
    assert n_params(ablate(model, name)) == n_params(model) - dropped
    assert norms == 10 * 2 * 12 and ffns == 4 * (2 * 12 * 20 + 20 + 12)


@pytest.mark.parametrize("name, present, absent", [
    ("no positional encoding", NoPositionalEncoding, None),
    ("no residual", NoResidualEncoderLayer, None),
    ("no layer norm", NoLayerNorm, LayerNorm),
    ("no FFN", NoFeedForward, PositionwiseFeedForward),
    ("no scaling", UnscaledMultiHeadAttention, None),
])
def test_each_ablation_swaps_every_module_of_its_kind(name, present, absent):
    model = ablate(toy_model(), name)
    kinds = [type(m) for m in model.modules()]
    assert present in kinds
    if absent is not None:
        assert absent not in kinds
    if name == "no residual":
        assert kinds.count(NoResidualEncoderLayer) == kinds.count(NoResidualDecoderLayer) == 2
        assert EncoderLayer not in kinds and DecoderLayer not in kinds
    if name == "no scaling":
        assert kinds.count(UnscaledMultiHeadAttention) == 6 and MultiHeadAttention not in kinds


def test_one_head_keeps_the_matrices_and_cuts_one_head():
    model = ablate(toy_model(), "one head")
    attention = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    assert len(attention) == 6 and all(m.n_heads == 1 and m.d_k == 12 for m in attention)


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_changes_the_output_except_full(name):
    model = toy_model(seed=1)
    src, tgt, src_mask, tgt_mask = toy_batch()
    with torch.no_grad():
        expected = model(src, tgt, src_mask, tgt_mask)
        got = ablate(model, name)(src, tgt, src_mask, tgt_mask)
    assert got.shape == expected.shape == (2, 5, 11)
    assert torch.equal(got, expected) == (name == "full")
    assert (got - expected).abs().max() > 1e-3 or name == "full"


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_fused_and_explicit_paths_agree_for_every_ablation(name):
    explicit = ablate(toy_model(seed=2), name)
    fused = use_fused_kernels(copy.deepcopy(explicit))
    src, tgt, src_mask, tgt_mask = toy_batch(seed=1)
    with torch.no_grad():
        torch.testing.assert_close(fused(src, tgt, src_mask, tgt_mask), explicit(src, tgt, src_mask, tgt_mask),
                                   atol=1e-5, rtol=1e-4)
    kept = ablate(use_fused_kernels(toy_model(seed=2)), name)  # ablating a fused model keeps the switch
    assert all(m.fused for m in kept.modules() if isinstance(m, (MultiHeadAttention, LayerNorm)))


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_every_ablated_model_gets_a_gradient_everywhere_and_learns(name):
    model = ablate(toy_model(seed=4), name).train()
    src, tgt, src_mask, tgt_mask = toy_batch(seed=2)
    labels = torch.roll(tgt, -1, dims=1)  # (batch, tgt_len)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(src, tgt, src_mask, tgt_mask).flatten(0, 1), labels.flatten())
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_ablate_keeps_the_training_mode():
    model = toy_model().train()
    for name in ABLATIONS:
        assert all(m.training for m in ablate(model, name).modules())
    model.eval()
    for name in ABLATIONS:
        assert not any(m.training for m in ablate(model, name).modules())


# ---------------------------------------------------------------------------------------- positions


def test_no_positional_encoding_returns_the_embeddings():
    pe = NoPositionalEncoding(12, max_len=8)
    x = torch.randn(2, 20, 12)  # longer than max_len: without positions no length limit applies
    assert torch.equal(pe(x), x)
    reference = PositionalEncoding(12, 8)
    reference.pe.zero_()
    torch.testing.assert_close(pe(x[:, :8]), reference(x[:, :8]))
    with pytest.raises(ValueError, match=r"x must be \(batch, len, d_model=12\), got \(2, 5, 10\)"):
        pe(torch.randn(2, 5, 10))


def test_without_positions_the_encoder_is_permutation_equivariant():
    src = torch.tensor([[5, 9, 4, 12, 7, 6]])  # (1, 6)
    perm = torch.tensor([2, 5, 0, 4, 1, 3])
    for name, equivariant in (("no positional encoding", True), ("full", False)):
        model = ablate(toy_model(seed=5), name)
        with torch.no_grad():
            memory, permuted = model.encode(src), model.encode(src[:, perm])
        assert torch.allclose(permuted, memory[:, perm], atol=1e-5) == equivariant


# ---------------------------------------------------------------------------------------- residuals, norms, FFN


@pytest.mark.parametrize("norm_first", [False, True])
def test_without_residual_is_add_and_norm_without_the_add(norm_first):
    x = torch.randn(3, 4, 6)
    norm = _scramble_(LayerNorm(6), 1)
    sublayer = nn.Linear(6, 6)
    with torch.no_grad():
        got = without_residual(x, sublayer, norm, nn.Dropout(0.0), norm_first)
        expected = sublayer(norm(x)) if norm_first else norm(sublayer(x))
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(without_residual(x, sublayer, norm, None, norm_first), expected)


@pytest.mark.parametrize("norm_first", [False, True])
def test_no_residual_encoder_layer_by_hand(norm_first):
    layer = scrambled_layer(EncoderLayer, norm_first, seed=6)
    x = torch.randn(2, 5, 12)
    mask = padding_mask(torch.tensor([[3, 4, 5, 6, 7], [3, 4, 5, 0, 0]]), PAD)
    attn = lambda h: layer.self_attn(h, h, h, mask)  # noqa: E731
    with torch.no_grad():
        if norm_first:
            expected = layer.feed_forward(layer.norm2(attn(layer.norm1(x))))
        else:
            expected = layer.norm2(layer.feed_forward(layer.norm1(attn(x))))
        got = ablate(layer, "no residual")(x, mask)
    torch.testing.assert_close(got, expected)
    assert type(layer) is EncoderLayer


@pytest.mark.parametrize("norm_first", [False, True])
def test_no_residual_decoder_layer_by_hand(norm_first):
    layer = scrambled_layer(DecoderLayer, norm_first, seed=7)
    x, memory = torch.randn(2, 4, 12), torch.randn(2, 6, 12)
    src_mask = padding_mask(torch.tensor([[3, 4, 5, 6, 7, 8], [3, 4, 5, 6, 0, 0]]), PAD)
    tgt_mask = subsequent_mask(4)
    n1, n2, n3 = layer.norm1, layer.norm2, layer.norm3
    with torch.no_grad():
        if norm_first:
            y = layer.self_attn(n1(x), n1(x), n1(x), tgt_mask)
            y = layer.cross_attn(n2(y), memory, memory, src_mask)
            expected = layer.feed_forward(n3(y))
        else:
            y = n1(layer.self_attn(x, x, x, tgt_mask))
            y = n2(layer.cross_attn(y, memory, memory, src_mask))
            expected = n3(layer.feed_forward(y))
        torch.testing.assert_close(ablate(layer, "no residual")(x, memory, src_mask, tgt_mask), expected)
    with pytest.raises(ValueError, match=r"memory must be \(batch, len, d_model=12\)"):
        NoResidualDecoderLayer(12, 3, 20)(x, torch.randn(2, 6, 8))
    with pytest.raises(ValueError, match=r"x must be \(batch, len, d_model=12\)"):
        NoResidualEncoderLayer(12, 3, 20)(torch.randn(2, 6))


def test_no_layer_norm_is_x_plus_sublayer():
    layer = scrambled_layer(EncoderLayer, seed=8)
    x = torch.randn(2, 5, 12)
    with torch.no_grad():
        y = x + layer.self_attn(x, x, x)
        torch.testing.assert_close(ablate(layer, "no layer norm")(x), y + layer.feed_forward(y))


@pytest.mark.parametrize("norm_first", [False, True])
def test_no_ffn_equals_torch_with_a_zero_second_linear(norm_first):
    reference = _scramble_(nn.TransformerEncoderLayer(12, 3, 20, dropout=0.0, batch_first=True,
                                                      norm_first=norm_first), 9)
    ours = ablate(EncoderLayer.from_torch(reference), "no FFN").eval()
    with torch.no_grad():
        reference.linear2.weight.zero_()
        reference.linear2.bias.zero_()
        x = torch.randn(3, 7, 12)
        torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize("removed", [NoLayerNorm, NoFeedForward])
def test_removed_sublayers_keep_the_shape_and_check_the_width(removed):
    x = torch.randn(3, 7, 12)
    assert torch.equal(removed(12)(x), x if removed is NoLayerNorm else torch.zeros_like(x))
    with pytest.raises(ValueError, match="x must end with d_model=12 features"):
        removed(12)(torch.randn(2, 5))


# ---------------------------------------------------------------------------------------- heads and scaling


@pytest.mark.parametrize("norm_first", [False, True])
def test_one_head_equals_torch_single_head_layer(norm_first):
    reference = _scramble_(nn.TransformerEncoderLayer(12, 3, 20, dropout=0.0, batch_first=True,
                                                      norm_first=norm_first), 10)
    single = nn.TransformerEncoderLayer(12, 1, 20, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    single.load_state_dict(reference.state_dict())  # the same tensors serve any number of heads
    ours = ablate(EncoderLayer.from_torch(reference), "one head").eval()
    x = torch.randn(2, 6, 12)
    tokens = torch.tensor([[3, 4, 5, 6, 7, 8], [3, 4, 5, 0, 0, 0]])
    with torch.no_grad():
        got = ours(x, padding_mask(tokens, PAD))
        expected = single(x, src_key_padding_mask=tokens == PAD)
        torch.testing.assert_close(got, expected)
        assert not torch.allclose(EncoderLayer.from_torch(reference)(x, padding_mask(tokens, PAD)), expected)


def test_one_head_function_copies_weights_mode_and_fused_switch():
    attention = MultiHeadAttention(12, 4, dropout=0.1, fused=True).train()
    single = one_head(attention)
    assert single.n_heads == 1 and single.fused and single.training and single.dropout.p == 0.1
    assert all(torch.equal(a, b) for a, b in zip(single.parameters(), attention.parameters()))
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(single.parameters(), attention.parameters()))


@pytest.mark.parametrize("fused", [False, True])
def test_unscaled_attention_equals_torch_with_q_scaled_by_root_dk(fused):
    torch.manual_seed(11)
    ours = ablate(MultiHeadAttention(12, 3), "no scaling")
    ours.fused = fused
    reference = ours.to_torch()
    with torch.no_grad():
        reference.in_proj_weight[:12] *= 2.0  # W_Q, and its bias below, times √d_k = 2
        reference.in_proj_bias[:12] *= 2.0
        query, memory = torch.randn(2, 4, 12), torch.randn(2, 5, 12)
        mask = padding_mask(torch.tensor([[4, 5, 6, 7, 8], [4, 5, 6, 0, 0]]), PAD)
        got = ours(query, memory, memory, mask)
        expected, _ = reference(query, memory, memory, key_padding_mask=~mask[:, 0, 0])
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert (ours.attn_weights is None) == fused


def test_unscaled_attention_weights_are_softmax_of_raw_dot_products():
    torch.manual_seed(12)
    ours = ablate(MultiHeadAttention(16, 2), "no scaling")
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        ours(x, x, x, subsequent_mask(5))
        q = ours.w_q(x).reshape(3, 5, 2, 8).transpose(1, 2)  # (batch, heads, len, d_k)
        k = ours.w_k(x).reshape(3, 5, 2, 8).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)).masked_fill(~subsequent_mask(5), float("-inf"))  # no / √d_k
        torch.testing.assert_close(ours.attn_weights, scores.softmax(-1))
    assert math.isclose(ours.attn_weights[0, 0, 3].sum().item(), 1.0, rel_tol=1e-6)


def test_unscaled_attention_refuses_bad_input():
    attention = UnscaledMultiHeadAttention(12, 3)
    x = torch.randn(2, 4, 12)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        attention(x, x, x, torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"key must be \(batch, len, d_model=12\), got shape \(2, 4, 10\)"):
        attention(x, torch.randn(2, 4, 10), x)
    with pytest.raises(ValueError, match="3-D mask"):  # Q12's checks, since it only replaces Q12's attend step
        attention(x, x, x, torch.ones(2, 4, 4, dtype=torch.bool))


# ---------------------------------------------------------------------------------------- autograd_saved_bytes


def test_saved_bytes_of_simple_operations():
    linear, x = nn.Linear(5, 7), torch.randn(3, 5, requires_grad=True)
    assert autograd_saved_bytes(lambda: linear(x)) == 3 * 5 * 4 + 7 * 5 * 4  # the input and the weight
    assert autograd_saved_bytes(lambda: linear(x), exclude=linear.parameters()) == 3 * 5 * 4
    assert autograd_saved_bytes(lambda: torch.tanh(x)) == 3 * 5 * 4  # tanh saves its output
    assert autograd_saved_bytes(lambda: x.view(15) * x.view(15)) == 3 * 5 * 4  # one storage, counted once
    assert autograd_saved_bytes(lambda: x.double().exp()) == 3 * 5 * 8
    assert autograd_saved_bytes(lambda: x + x) == 0  # addition needs nothing for its gradient
    with torch.no_grad():
        assert autograd_saved_bytes(lambda: torch.tanh(linear(x))) == 0


def test_saved_bytes_refuses_a_non_function():
    with pytest.raises(ValueError, match="fn must be a function of no arguments, got Tensor"):
        autograd_saved_bytes(torch.ones(3))


@pytest.mark.parametrize("batch, n, d_model, n_heads", [(2, 7, 12, 3), (1, 33, 16, 4), (3, 10, 8, 1)])
def test_explicit_attention_saves_the_weights_and_five_activations(batch, n, d_model, n_heads):
    attention = MultiHeadAttention(d_model, n_heads)
    x = torch.randn(batch, n, d_model, requires_grad=True)
    got = autograd_saved_bytes(lambda: attention(x, x, x), exclude=attention.parameters())
    assert got == 4 * (batch * n_heads * n * n + 5 * batch * n * d_model)


def test_fused_attention_and_the_recurrent_layer_save_linear_memory():
    fused, rnn = MultiHeadAttention(16, 4, fused=True), ElmanRNN(16, 16)
    for layer, call in ((fused, lambda m, x: m(x, x, x)), (rnn, lambda m, x: m(x))):
        sizes = []
        for n in (32, 64, 128):
            x = torch.randn(1, n, 16, requires_grad=True)
            sizes.append(autograd_saved_bytes(lambda: call(layer, x), exclude=layer.parameters()))
        assert sizes[2] - sizes[1] == 2 * (sizes[1] - sizes[0]) > 0  # equal steps per token: linear in n
