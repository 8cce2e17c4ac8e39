import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer18.decoder import Decoder, greedy_decode, subsequent_mask

BOS, EOS = 1, 2

# ---------------------------------------------------------------- subsequent_mask


@pytest.mark.parametrize("size", [1, 2, 5, 9])
def test_subsequent_mask_is_the_lower_triangle_with_its_diagonal(size):
    mask = subsequent_mask(size)
    assert mask.shape == (1, 1, size, size) and mask.dtype == torch.bool
    for i in range(size):
        for j in range(size):
            assert bool(mask[0, 0, i, j]) == (j <= i), (i, j)


def test_subsequent_mask_by_hand():
    expected = torch.tensor([[True, False, False, False],
                             [True, True, False, False],
                             [True, True, True, False],
                             [True, True, True, True]])
    assert torch.equal(subsequent_mask(4)[0, 0], expected)
    assert torch.equal(subsequent_mask(1), torch.ones(1, 1, 1, 1, dtype=torch.bool))


@pytest.mark.parametrize("size", [1, 3, 8])
def test_subsequent_mask_is_pytorchs_mask_in_the_other_polarity(size):
    additive = nn.Transformer.generate_square_subsequent_mask(size)  # 0 = allowed, -inf = blocked
    assert torch.equal(subsequent_mask(size)[0, 0], additive == 0)
    assert torch.equal(~subsequent_mask(size)[0, 0], additive == float("-inf"))


def test_subsequent_mask_broadcasts_and_equals_is_causal_attention():
    q, k, v = torch.randn(3, 2, 4, 6, 5).unbind(0)  # (batch, heads, len, d_k)
    mask = subsequent_mask(6)
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))
    scores = torch.randn(2, 4, 6, 6).masked_fill(~mask, torch.finfo(torch.float32).min)
    weights = scores.softmax(dim=-1)
    assert torch.all(weights.triu(diagonal=1) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 6))


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3", None])
def test_subsequent_mask_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="size must be a positive int"):
        subsequent_mask(bad)


# ---------------------------------------------------------------- Decoder


def decoder_layer(d_model, n_heads, d_ff, norm_first=False):
    return nn.TransformerDecoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first)


def perturbed_pair(layer, n_layers, norm):
    """Our Decoder and nn.TransformerDecoder with identical, layer-by-layer different weights."""
    ours = Decoder(layer, n_layers, norm=copy.deepcopy(norm))
    reference = nn.TransformerDecoder(layer, n_layers, norm=copy.deepcopy(norm))
    assert list(ours.state_dict()) == list(reference.state_dict())
    for a, b in zip(ours.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b), "both start as deep copies of the same layer"
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.2 * torch.randn_like(p))
    reference.load_state_dict(ours.state_dict())
    return ours, reference


@pytest.mark.parametrize("with_norm", [False, True])
@pytest.mark.parametrize("seed, batch, tgt_len, src_len, d_model, n_heads, d_ff, n_layers", [
    (0, 2, 6, 9, 12, 3, 20, 4),
    (1, 1, 1, 1, 8, 2, 16, 1),
    (2, 3, 7, 4, 16, 4, 24, 2),
    (3, 5, 11, 13, 10, 5, 6, 3),
])
def test_equals_torch_transformer_decoder(with_norm, seed, batch, tgt_len, src_len, d_model, n_heads, d_ff,
                                          n_layers):
    torch.manual_seed(seed)
    ours, reference = perturbed_pair(decoder_layer(d_model, n_heads, d_ff), n_layers,
                                     nn.LayerNorm(d_model) if with_norm else None)
    x = torch.randn(batch, tgt_len, d_model)
    memory = torch.randn(batch, src_len, d_model)
    blocked = ~subsequent_mask(tgt_len)[0, 0]
    out = ours(x, memory, tgt_mask=blocked)
    assert out.shape == (batch, tgt_len, d_model)
    torch.testing.assert_close(out, reference(x, memory, tgt_mask=blocked))
    torch.testing.assert_close(ours(x, memory), reference(x, memory))
    padding = torch.zeros(batch, src_len, dtype=torch.bool)
    padding[0, src_len - 1:] = src_len > 1
    torch.testing.assert_close(ours(x, memory, tgt_mask=blocked, memory_key_padding_mask=padding),
                               reference(x, memory, tgt_mask=blocked, memory_key_padding_mask=padding))


def test_equals_torch_with_pre_norm_layers_and_gradients():
    torch.manual_seed(7)
    ours, reference = perturbed_pair(decoder_layer(12, 3, 20, norm_first=True), 3, nn.LayerNorm(12))
    x = torch.randn(2, 5, 12)
    memory = torch.randn(2, 8, 12)
    blocked = ~subsequent_mask(5)[0, 0]
    out, expected = ours(x, memory, tgt_mask=blocked), reference(x, memory, tgt_mask=blocked)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, p), q in zip(ours.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_layers_are_independent_deep_copies():
    layer = decoder_layer(8, 2, 16)
    decoder = Decoder(layer, 3)
    assert len(decoder.layers) == 3 and decoder.norm is None
    weights = [block.linear1.weight for block in decoder.layers] + [layer.linear1.weight]
    assert len({w.data_ptr() for w in weights}) == 4
    assert all(torch.equal(w, layer.linear1.weight) for w in weights)
    with torch.no_grad():
        decoder.layers[0].linear1.weight.add_(1.0)
    assert not torch.equal(decoder.layers[0].linear1.weight, decoder.layers[1].linear1.weight)
    assert sum(p.numel() for p in decoder.parameters()) == 3 * sum(p.numel() for p in layer.parameters())


class Tagged(nn.Module):
    """A stand-in layer that records how it is called and leaves a trace of the order."""

    def __init__(self):
        super().__init__()
        self.tag = 0
        self.calls = []

    def forward(self, x, memory, *args, **kwargs):
        self.calls.append((args, kwargs))
        return x * 10 + self.tag + 0 * memory.sum()


def test_runs_every_layer_in_order_then_the_norm_and_forwards_extra_arguments():
    decoder = Decoder(Tagged(), 3, norm=nn.Identity())
    for i, layer in enumerate(decoder.layers):
        layer.tag = i + 1
    x, memory = torch.zeros(2, 4, 3), torch.randn(2, 5, 3)
    marker = object()
    out = decoder(x, memory, "positional", marker, tgt_mask="mask", other=marker)
    assert torch.equal(out, torch.full((2, 4, 3), 123.0))  # ((0·10 + 1)·10 + 2)·10 + 3
    for layer in decoder.layers:
        assert layer.calls == [(("positional", marker), {"tgt_mask": "mask", "other": marker})]
    decoder.norm = nn.LayerNorm(3)
    torch.testing.assert_close(decoder(x, memory), nn.functional.layer_norm(torch.full((2, 4, 3), 123.0), (3,)))


def test_is_causal_through_the_whole_stack():
    torch.manual_seed(0)
    decoder = Decoder(decoder_layer(12, 3, 20), 4)
    x, memory = torch.randn(2, 7, 12), torch.randn(2, 5, 12)
    changed = x.clone()
    changed[:, 4] = torch.randn(2, 12)
    blocked = ~subsequent_mask(7)[0, 0]
    with torch.no_grad():
        a, b = decoder(x, memory, tgt_mask=blocked), decoder(changed, memory, tgt_mask=blocked)
        c, d = decoder(x, memory), decoder(changed, memory)
    assert torch.equal(a[:, :4], b[:, :4])
    assert (a[:, 4:] - b[:, 4:]).abs().amax(dim=(0, 2)).min() > 1e-4
    assert (c[:, :4] - d[:, :4]).abs().amax(dim=(0, 2)).min() > 1e-4


@pytest.mark.parametrize("n_layers", [0, -2, 1.5, True])
def test_bad_n_layers_is_a_value_error(n_layers):
    with pytest.raises(ValueError, match="n_layers must be a positive int"):
        Decoder(decoder_layer(8, 2, 16), n_layers)


def test_bad_input_rank_is_a_value_error():
    decoder = Decoder(decoder_layer(8, 2, 16), 2)
    with pytest.raises(ValueError, match=r"\(batch, len, d_model\)"):
        decoder(torch.randn(4, 8), torch.randn(1, 3, 8))
    with pytest.raises(ValueError, match=r"\(batch, len, d_model\)"):
        decoder(torch.randn(1, 4, 8), torch.randn(3, 8))


# ---------------------------------------------------------------- greedy_decode with hand-written models


class Scripted:
    """A hand-written model: after reading a prefix of length L, sequence b's next token is script[b][L - 1].

    Every earlier position predicts a token that never occurs in the scripts (0), so decoding from any
    position but the last would show. It records every call.
    """

    def __init__(self, script, vocab_size=10):
        self.script, self.vocab_size = script, vocab_size
        self.encoded, self.decoded = [], []

    def encode(self, src, src_mask):
        self.encoded.append((src, src_mask))
        return src.float()[..., None]  # (batch, src_len, 1)

    def decode(self, tgt, memory, src_mask, tgt_mask):
        self.decoded.append((tgt.clone(), memory, src_mask, tgt_mask))
        batch, length = tgt.shape
        logits = torch.zeros(batch, length, self.vocab_size)
        logits[:, :, 0] = 1.0
        for b in range(batch):
            logits[b, -1, 0] = 0.0
            logits[b, -1, self.script[b][length - 1]] = 5.0
        return logits


def test_stops_early_when_the_sequence_ends():
    model = Scripted([[3, 4, EOS, 5, 6, 7]])
    out = greedy_decode(model, torch.tensor([[7, 8, 9]]), max_len=10, bos_id=BOS, eos_id=EOS)
    assert out.tolist() == [[BOS, 3, 4, EOS]]
    assert len(model.encoded) == 1 and len(model.decoded) == 3


def test_sequences_finishing_at_different_steps_are_filled_with_eos():
    script = [[3, EOS, 5, 6, 7], [4, 5, 6, EOS, 3], [EOS, 9, 9, 9, 9]]
    model = Scripted(script)
    out = greedy_decode(model, torch.zeros(3, 2, dtype=torch.long), max_len=20, bos_id=BOS, eos_id=EOS)
    assert out.tolist() == [[BOS, 3, EOS, EOS, EOS], [BOS, 4, 5, 6, EOS], [BOS, EOS, EOS, EOS, EOS]]
    assert len(model.decoded) == 4


@pytest.mark.parametrize("max_len", [1, 2, 5, 9])
def test_never_returns_more_than_max_len_tokens(max_len):
    model = Scripted([[3] * 20, [4] * 20])
    out = greedy_decode(model, torch.zeros(2, 3, dtype=torch.long), max_len=max_len, bos_id=BOS, eos_id=EOS)
    assert out.shape == (2, max_len)
    assert out[:, 0].tolist() == [BOS, BOS]
    assert out[:, 1:].tolist() == [[3] * (max_len - 1), [4] * (max_len - 1)]
    assert len(model.decoded) == max_len - 1


def test_max_len_one_is_only_bos():
    model = Scripted([[3]])
    out = greedy_decode(model, torch.tensor([[5, 6]]), max_len=1, bos_id=7, eos_id=EOS)
    assert out.tolist() == [[7]] and out.dtype == torch.long and model.decoded == []


def test_follows_the_contract_of_encode_and_decode():
    model = Scripted([[3, 4, 5, EOS], [6, EOS, 0, 0]])
    src = torch.tensor([[3, 4, 0], [5, 0, 0]])
    src_mask = (src != 0)[:, None, None, :]
    out = greedy_decode(model, src, max_len=8, bos_id=BOS, eos_id=EOS, src_mask=src_mask)
    assert model.encoded[0][0] is src and model.encoded[0][1] is src_mask
    memory = model.encode(src, src_mask)
    for step, (tgt, seen_memory, seen_src_mask, tgt_mask) in enumerate(model.decoded, start=1):
        assert torch.equal(tgt, out[:, :step]), "decode reads the prefix produced so far"
        assert torch.equal(seen_memory, memory) and seen_src_mask is src_mask
        assert tgt_mask.dtype == torch.bool and torch.equal(tgt_mask, subsequent_mask(step))


def test_uses_the_argmax_of_the_last_position_only():
    model = Scripted([[8, 7, 6, EOS]])
    out = greedy_decode(model, torch.tensor([[1]]), max_len=10, bos_id=BOS, eos_id=EOS)
    assert out.tolist() == [[BOS, 8, 7, 6, EOS]]  # every earlier position votes for token 0


class WithWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(6, 4)
        self.out = nn.Linear(4, 6)
        self.grad_enabled = []

    def encode(self, src, src_mask):
        return self.embed(src)

    def decode(self, tgt, memory, src_mask, tgt_mask):
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.out(self.embed(tgt) + memory.mean(1, keepdim=True))


def test_runs_without_gradients():
    model = WithWeights()
    out = greedy_decode(model, torch.tensor([[1, 2, 3]]), max_len=4, bos_id=0, eos_id=5)
    assert not out.requires_grad and model.grad_enabled and not any(model.grad_enabled)
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("max_len", [0, -3, 2.5, True])
def test_bad_max_len_is_a_value_error(max_len):
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        greedy_decode(Scripted([[3]]), torch.tensor([[1]]), max_len=max_len, bos_id=BOS, eos_id=EOS)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 1)])
def test_src_must_be_batch_by_length(shape):
    with pytest.raises(ValueError, match=r"src must be \(batch, src_len\)"):
        greedy_decode(Scripted([[3]]), torch.ones(shape, dtype=torch.long), max_len=3, bos_id=BOS, eos_id=EOS)


def test_a_decode_with_the_wrong_output_shape_is_a_value_error():
    class Flat(Scripted):
        def decode(self, tgt, memory, src_mask, tgt_mask):
            return super().decode(tgt, memory, src_mask, tgt_mask)[:, -1]  # (batch, vocab): forgot the positions

    with pytest.raises(ValueError, match="decode must return"):
        greedy_decode(Flat([[3, EOS]]), torch.tensor([[1]]), max_len=3, bos_id=BOS, eos_id=EOS)


# ---------------------------------------------------------------- greedy_decode with a real (random) Transformer


class Tiny(nn.Module):
    """Random embeddings, nn.TransformerEncoder and our Decoder; encode/decode take the course's masks."""

    def __init__(self, vocab_size=9, d_model=16, n_heads=2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(32, d_model)
        args = dict(d_model=d_model, nhead=n_heads, dim_feedforward=24, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**args), 1, enable_nested_tensor=False)
        self.decoder = Decoder(nn.TransformerDecoderLayer(**args), 2)
        self.generator = nn.Linear(d_model, vocab_size)
        self.steps = []

    def vectors(self, ids):
        return self.embed(ids) + self.position(torch.arange(ids.shape[1]))

    def encode(self, src, src_mask):
        padding = None if src_mask is None else ~src_mask[:, 0, 0]
        return self.encoder(self.vectors(src), src_key_padding_mask=padding)

    def decode(self, tgt, memory, src_mask, tgt_mask):
        padding = None if src_mask is None else ~src_mask[:, 0, 0]
        h = self.decoder(self.vectors(tgt), memory, tgt_mask=~tgt_mask[0, 0], memory_key_padding_mask=padding)
        logits = self.generator(h)
        self.steps.append(logits[:, -1].detach().clone())
        return logits


def test_batched_decoding_equals_decoding_each_sequence_alone():
    torch.manual_seed(3)
    model = Tiny().eval()
    src = torch.randint(3, 9, (4, 6))
    batched = greedy_decode(model, src, max_len=9, bos_id=BOS, eos_id=EOS)
    for row in range(4):
        alone = greedy_decode(model, src[row:row + 1], max_len=9, bos_id=BOS, eos_id=EOS)[0]
        length = alone.shape[0]
        assert torch.equal(batched[row, :length], alone)
        assert torch.all(batched[row, length:] == EOS)


def test_step_by_step_logits_equal_one_teacher_forced_pass():
    torch.manual_seed(4)
    model = Tiny().eval()
    src = torch.randint(3, 9, (3, 5))
    out = greedy_decode(model, src, max_len=7, bos_id=BOS, eos_id=EOS)
    step_logits = torch.stack(model.steps, dim=1)  # (batch, steps, vocab)
    with torch.no_grad():
        one_pass = model.decode(out[:, :-1], model.encode(src, None), None, subsequent_mask(out.shape[1] - 1))
    torch.testing.assert_close(step_logits, one_pass, rtol=1e-4, atol=1e-5)
