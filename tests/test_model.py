"""The assembled model (Q17, part 1): parity with PyTorch's layers and nn.Transformer, exact parameter counts,
shapes, causality, padding invariance, gradients, generation, and clear errors for bad input."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer18.checks.model import _scramble_
from transformer18.config import (
    TransformerConfig,
    count_parameters,
    parameter_breakdown,
    torch_reference_model,
)
from transformer18.decoder import greedy_decode, subsequent_mask
from transformer18.masks import decoder_self_mask, padding_mask
from transformer18.model import DecoderLayer, EncoderLayer, Transformer, load_from_torch

PAD = 0


scramble_ = _scramble_  # the checkers' helper: random weights, norm scales near 1, eval mode


def tokens(lengths, total, vocab, seed, first=None):
    """Right-padded random ids in [4, vocab) (0 is the pad), one row per length."""
    generator = torch.Generator().manual_seed(seed)
    out = torch.full((len(lengths), total), PAD)
    for row, n in enumerate(lengths):
        out[row, :n] = torch.randint(4, vocab, (n,), generator=generator)
        if first is not None:
            out[row, 0] = first
    return out


def toy_config(**overrides):
    values = dict(src_vocab_size=13, tgt_vocab_size=14, d_model=12, n_heads=3, n_layers=2, d_ff=20, dropout=0.0,
                  max_len=64)
    return TransformerConfig(**{**values, **overrides})


def batch(src_lengths=(6, 4), src_len=6, tgt_lengths=(7, 5), tgt_len=7, seed=0, tgt_vocab=14):
    src = tokens(src_lengths, src_len, 13, seed)
    tgt = tokens(tgt_lengths, tgt_len, tgt_vocab, seed + 1, first=1)
    return src, tgt, padding_mask(src, PAD), decoder_self_mask(tgt, PAD)


# ---------------------------------------------------------------------------------------- layer parity


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("seed, batch_size, length, d_model, n_heads, d_ff", [
    (0, 2, 6, 12, 3, 20),
    (1, 3, 9, 16, 4, 24),
    (2, 1, 1, 8, 2, 10),
])
def test_encoder_layer_equals_torch(norm_first, seed, batch_size, length, d_model, n_heads, d_ff):
    reference = scramble_(nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True,
                                                     norm_first=norm_first), seed).eval()
    ours = EncoderLayer.from_torch(reference).eval()
    lengths = [max(1, length - i) for i in range(batch_size)]
    mask = padding_mask(tokens(lengths, length, 30, seed), PAD)  # (batch, 1, 1, len)
    x = torch.randn(batch_size, length, d_model, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(ours(x, mask), reference(x, src_key_padding_mask=~mask[:, 0, 0]))
    torch.testing.assert_close(ours(x), reference(x))
    with torch.no_grad():  # PyTorch's fused fast path
        torch.testing.assert_close(ours(x, mask), reference(x, src_key_padding_mask=~mask[:, 0, 0]))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("seed, batch_size, tgt_len, src_len, d_model, n_heads, d_ff", [
    (0, 2, 7, 6, 12, 3, 20),
    (1, 3, 4, 9, 16, 4, 24),
    (2, 1, 1, 3, 8, 2, 10),
])
def test_decoder_layer_equals_torch(norm_first, seed, batch_size, tgt_len, src_len, d_model, n_heads, d_ff):
    reference = scramble_(nn.TransformerDecoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True,
                                                     norm_first=norm_first), seed).eval()
    ours = DecoderLayer.from_torch(reference).eval()
    src = tokens([max(1, src_len - i) for i in range(batch_size)], src_len, 30, seed)
    tgt = tokens([max(1, tgt_len - i) for i in range(batch_size)], tgt_len, 30, seed + 1)
    generator = torch.Generator().manual_seed(seed)
    x, memory = torch.randn(batch_size, tgt_len, d_model, generator=generator), \
        torch.randn(batch_size, src_len, d_model, generator=generator)
    expected = reference(x, memory, tgt_mask=~subsequent_mask(tgt_len)[0, 0], tgt_key_padding_mask=tgt == PAD,
                         memory_key_padding_mask=src == PAD)
    got = ours(x, memory, padding_mask(src, PAD), decoder_self_mask(tgt, PAD))
    torch.testing.assert_close(got, expected)


def test_layers_have_the_contract_names_and_copy_settings():
    reference = nn.TransformerDecoderLayer(12, 3, 20, dropout=0.2, batch_first=True, norm_first=True,
                                           layer_norm_eps=1e-6)
    ours = DecoderLayer.from_torch(reference)
    assert ours.training and ours.norm_first and ours.dropout1.p == 0.2 and ours.self_attn.dropout.p == 0.2
    assert ours.norm1.eps == ours.norm2.eps == ours.norm3.eps == 1e-6
    names = {name.rsplit(".", 1)[0] for name, _ in ours.named_parameters()}
    assert names == {"self_attn.w_q", "self_attn.w_k", "self_attn.w_v", "self_attn.w_o", "cross_attn.w_q",
                     "cross_attn.w_k", "cross_attn.w_v", "cross_attn.w_o", "feed_forward.w_1", "feed_forward.w_2",
                     "norm1", "norm2", "norm3"}
    encoder = EncoderLayer(12, 3, 20)
    assert {n.rsplit(".", 1)[0] for n, _ in encoder.named_parameters()} >= {"norm1", "norm2", "feed_forward.w_1"}
    assert sum(p.numel() for p in EncoderLayer.from_torch(nn.TransformerEncoderLayer(12, 3, 20)).parameters()) == \
        sum(p.numel() for p in nn.TransformerEncoderLayer(12, 3, 20).parameters())


def test_from_torch_rejects_what_our_layers_cannot_hold():
    with pytest.raises(ValueError, match="ReLU"):
        EncoderLayer.from_torch(nn.TransformerEncoderLayer(12, 3, 20, activation="gelu"))
    with pytest.raises(ValueError, match="biases"):
        DecoderLayer.from_torch(nn.TransformerDecoderLayer(12, 3, 20, bias=False))
    with pytest.raises(ValueError, match="TransformerEncoderLayer"):
        EncoderLayer.from_torch(nn.TransformerDecoderLayer(12, 3, 20))


def test_layers_reject_bad_input():
    layer = DecoderLayer(12, 3, 20)
    with pytest.raises(ValueError, match=r"x must be \(batch, len, d_model=12\)"):
        layer(torch.randn(2, 5, 10), torch.randn(2, 4, 12))
    with pytest.raises(ValueError, match="memory must be"):
        layer(torch.randn(2, 5, 12), torch.randn(4, 12))
    with pytest.raises(ValueError, match="divisible"):
        EncoderLayer(12, 5, 20)
    with pytest.raises(ValueError, match="bool"):
        EncoderLayer(12, 3, 20)(torch.randn(2, 5, 12), torch.ones(2, 1, 1, 5))


# ---------------------------------------------------------------------------------------- stack parity


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_transformer_equals_nn_transformer(norm_first, n_layers):
    config = toy_config(n_layers=n_layers, norm_first=norm_first)
    torch.manual_seed(n_layers)
    ours = Transformer(config).eval()
    reference = scramble_(torch_reference_model(config), 7 + n_layers).eval()
    assert load_from_torch(ours, reference) is ours
    src, tgt, src_mask, tgt_mask = batch()
    masks = dict(tgt_mask=~subsequent_mask(tgt.size(1))[0, 0], src_key_padding_mask=src == PAD,
                 tgt_key_padding_mask=tgt == PAD, memory_key_padding_mask=src == PAD)
    x_src, x_tgt = ours.positional(ours.src_embed(src)), ours.positional(ours.tgt_embed(tgt))
    memory = ours.encode(src, src_mask)
    torch.testing.assert_close(memory, reference.encoder(x_src, src_key_padding_mask=src == PAD))
    hidden = reference(x_src, x_tgt, **masks)  # (batch, tgt_len, d_model)
    torch.testing.assert_close(ours.decoder(x_tgt, memory, src_mask, tgt_mask), hidden)
    torch.testing.assert_close(ours(src, tgt, src_mask, tgt_mask), ours.generator(hidden))
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(src, src_mask), reference.encoder(x_src, src_key_padding_mask=src == PAD))


@pytest.mark.parametrize("share", [False, True])
def test_load_from_torch_copies_every_weight_so_the_reference_embeds_alone(share):
    """After load_from_torch the two models hold the same weights: the reference's own embeddings (× √d_model,
    plus the weight-free sinusoids) and generator give our logits."""
    config = toy_config(share_embeddings=share, **({"tgt_vocab_size": 13} if share else {}))
    torch.manual_seed(5)
    ours = Transformer(config).eval()
    reference = scramble_(torch_reference_model(config), 11).eval()
    load_from_torch(ours, reference)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    for our_matrix, their_matrix in ((ours.src_embed.lookup, reference.src_embed),
                                     (ours.tgt_embed.lookup, reference.tgt_embed), (ours.generator, reference.generator)):
        assert torch.equal(our_matrix.weight, their_matrix.weight)
    assert (ours.generator.weight is ours.src_embed.lookup.weight) == share
    src, tgt, src_mask, tgt_mask = batch(tgt_vocab=config.tgt_vocab_size)
    scale = math.sqrt(config.d_model)
    x_src = ours.positional(reference.src_embed(src) * scale)  # (batch, src_len, d_model)
    x_tgt = ours.positional(reference.tgt_embed(tgt) * scale)  # (batch, tgt_len, d_model)
    masks = dict(tgt_mask=~subsequent_mask(tgt.size(1))[0, 0], src_key_padding_mask=src == PAD,
                 tgt_key_padding_mask=tgt == PAD, memory_key_padding_mask=src == PAD)
    with torch.no_grad():
        torch.testing.assert_close(ours(src, tgt, src_mask, tgt_mask), reference.generator(reference(x_src, x_tgt, **masks)))


def test_load_from_torch_refuses_other_embeddings_before_copying_anything():
    ours = Transformer(toy_config())
    before = {name: p.detach().clone() for name, p in ours.state_dict().items()}
    with pytest.raises(ValueError, match="src_embed"):
        load_from_torch(ours, torch_reference_model(toy_config(src_vocab_size=20)))
    with pytest.raises(ValueError, match="share_embeddings"):
        load_from_torch(ours, torch_reference_model(toy_config(share_embeddings=True, tgt_vocab_size=13)))
    assert all(torch.equal(p, before[name]) for name, p in ours.state_dict().items())


def test_torch_reference_model_has_the_papers_final_norms():
    post, pre = torch_reference_model(toy_config()), torch_reference_model(toy_config(norm_first=True))
    assert post.encoder.norm is None and post.decoder.norm is None
    assert isinstance(pre.encoder.norm, nn.LayerNorm) and isinstance(pre.decoder.norm, nn.LayerNorm)
    for config in (toy_config(), toy_config(norm_first=True)):
        stacks = count_parameters(config) - parameter_breakdown(config)["embeddings"]
        reference = torch_reference_model(config)
        assert sum(p.numel() for part in (reference.encoder, reference.decoder) for p in part.parameters()) == stacks


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_plain_nn_transformer_is_ours_plus_a_final_norm():
    plain = scramble_(nn.Transformer(12, 3, 2, 2, 20, dropout=0.0, batch_first=True), 3).eval()
    ours = Transformer(toy_config()).eval()
    with pytest.raises(ValueError, match="torch_reference_model"):
        load_from_torch(ours, plain)
    for our_layer, their_layer in zip(ours.encoder.layers, plain.encoder.layers):
        our_layer.load_state_dict(EncoderLayer.from_torch(their_layer).state_dict())
    src, _, src_mask, _ = batch()
    x_src = ours.positional(ours.src_embed(src))
    torch.testing.assert_close(plain.encoder(x_src, src_key_padding_mask=src == PAD),
                               plain.encoder.norm(ours.encode(src, src_mask)))


def test_load_from_torch_rejects_mismatched_stacks():
    ours = Transformer(toy_config())
    with pytest.raises(ValueError, match="layers"):
        load_from_torch(ours, torch_reference_model(toy_config(n_layers=3)))
    with pytest.raises(ValueError, match="n_heads"):
        load_from_torch(ours, torch_reference_model(toy_config(n_heads=4)))
    with pytest.raises(ValueError, match="final LayerNorm"):
        load_from_torch(ours, torch_reference_model(toy_config(norm_first=True)))


# ---------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("config", [
    TransformerConfig.base(),
    TransformerConfig.big(),
    TransformerConfig.base(norm_first=True),
    TransformerConfig.big(norm_first=True, share_embeddings=False),
    TransformerConfig(32000, 40000, n_layers=2),
    TransformerConfig(13, 14, d_model=12, n_heads=3, n_layers=3, d_ff=20),
    TransformerConfig(13, 13, d_model=12, n_heads=3, n_layers=1, d_ff=20, share_embeddings=True, norm_first=True),
], ids=lambda c: f"d{c.d_model}-N{c.n_layers}-shared{c.share_embeddings}-pre{c.norm_first}")
def test_parameter_count_is_exact(config):
    with torch.device("meta"):
        model = Transformer(config)
    assert sum(p.numel() for p in model.parameters()) == count_parameters(config)


def test_paper_sizes():
    with torch.device("meta"):
        assert sum(p.numel() for p in Transformer(TransformerConfig.base()).parameters()) == 63_082_496
        assert sum(p.numel() for p in Transformer(TransformerConfig.big()).parameters()) == 214_245_376


def test_shared_embeddings_are_one_tensor():
    model = Transformer(TransformerConfig(13, 13, d_model=12, n_heads=3, n_layers=1, d_ff=20, share_embeddings=True))
    assert model.generator.weight is model.src_embed.lookup.weight is model.tgt_embed.lookup.weight
    assert model.generator.bias is None
    separate = Transformer(toy_config())
    assert separate.generator.weight is not separate.tgt_embed.lookup.weight
    assert separate.generator.weight.shape == (14, 12)


def test_state_dict_round_trip():
    src, tgt, src_mask, tgt_mask = batch()
    torch.manual_seed(0)
    a = Transformer(toy_config(share_embeddings=False)).eval()
    torch.manual_seed(1)
    b = Transformer(toy_config(share_embeddings=False)).eval()
    assert not torch.allclose(a(src, tgt, src_mask, tgt_mask), b(src, tgt, src_mask, tgt_mask))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(src, tgt, src_mask, tgt_mask), b(src, tgt, src_mask, tgt_mask), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------- properties


@pytest.mark.parametrize("src_len, tgt_len", [(6, 7), (9, 2), (1, 5)])
def test_shapes_with_different_lengths(src_len, tgt_len):
    model = Transformer(toy_config()).eval()
    src = tokens([src_len, max(1, src_len - 2), src_len], src_len, 13, 0)
    tgt = tokens([tgt_len] * 3, tgt_len, 14, 1, first=1)
    memory = model.encode(src, padding_mask(src, PAD))
    assert memory.shape == (3, src_len, 12)
    logits = model.decode(tgt, memory, padding_mask(src, PAD), decoder_self_mask(tgt, PAD))
    assert logits.shape == (3, tgt_len, 14)
    assert model(src, tgt).shape == (3, tgt_len, 14)
    assert model.decoder.layers[0].cross_attn.attn_weights.shape == (3, 3, tgt_len, src_len)


@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_through_the_whole_model(norm_first):
    model = Transformer(toy_config(norm_first=norm_first, n_layers=3)).eval()
    src, tgt, src_mask, _ = batch()
    for t in range(1, tgt.size(1)):
        changed = tgt.clone()
        changed[:, t] = 4 + (changed[:, t] - 3) % 10  # a different real token at position t
        with torch.no_grad():
            before = model(src, tgt, src_mask, subsequent_mask(tgt.size(1)))
            after = model(src, changed, src_mask, subsequent_mask(tgt.size(1)))
        torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-6)
        assert (after[:, t] - before[:, t]).abs().max() > 1e-4


def test_without_a_target_mask_earlier_positions_see_later_tokens():
    model = Transformer(toy_config()).eval()
    src, tgt, src_mask, _ = batch()
    changed = tgt.clone()
    changed[:, -1] = 4 + (changed[:, -1] - 3) % 10
    with torch.no_grad():
        assert (model(src, changed, src_mask) - model(src, tgt, src_mask))[:, 0].abs().max() > 1e-4


@pytest.mark.parametrize("norm_first", [False, True])
def test_appending_padding_changes_nothing_real(norm_first):
    model = Transformer(toy_config(norm_first=norm_first)).eval()
    src, tgt, src_mask, tgt_mask = batch(src_lengths=(6, 3))
    longer = torch.cat([src, torch.full((2, 4), PAD)], dim=1)
    with torch.no_grad():
        memory, memory_longer = model.encode(src, src_mask), model.encode(longer, padding_mask(longer, PAD))
        for row, n in enumerate((6, 3)):
            torch.testing.assert_close(memory_longer[row, :n], memory[row, :n])
        torch.testing.assert_close(model(longer, tgt, padding_mask(longer, PAD), tgt_mask),
                                   model(src, tgt, src_mask, tgt_mask))


@pytest.mark.parametrize("share", [False, True])
def test_gradient_reaches_every_parameter_but_the_key_biases(share):
    config = toy_config(share_embeddings=share, tgt_vocab_size=13 if share else 14, dropout=0.1)
    torch.manual_seed(0)
    model = Transformer(config).train()
    src, tgt, src_mask, tgt_mask = batch(tgt_vocab=config.tgt_vocab_size)
    target = torch.roll(tgt, -1, dims=1)
    loss = F.cross_entropy(model(src, tgt, src_mask, tgt_mask).flatten(0, 1), target.flatten(), ignore_index=PAD)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        if name.endswith("w_k.bias"):  # softmax ignores a constant added to a row of scores
            assert p.grad.abs().max() < 1e-6, name
        else:
            assert p.grad.abs().max() > 1e-6, name


def test_dropout_is_active_in_training_only():
    model = Transformer(toy_config(dropout=0.3))
    src, tgt, src_mask, tgt_mask = batch()
    model.train()
    assert not torch.equal(model(src, tgt, src_mask, tgt_mask), model(src, tgt, src_mask, tgt_mask))
    model.eval()
    assert torch.equal(model(src, tgt, src_mask, tgt_mask), model(src, tgt, src_mask, tgt_mask))


def test_greedy_decode_runs_on_the_model():
    torch.manual_seed(0)
    model = Transformer(toy_config()).eval()
    src, _, src_mask, _ = batch()
    out = greedy_decode(model, src, max_len=8, bos_id=1, eos_id=2, src_mask=src_mask)
    assert out.dtype == torch.long and out.shape[0] == 2 and 2 <= out.shape[1] <= 8
    assert torch.all(out[:, 0] == 1) and torch.all((out >= 0) & (out < 14))
    with torch.no_grad():
        first = model(src, out[:, :1], src_mask, subsequent_mask(1))[:, 0].argmax(-1)
    assert torch.equal(out[:, 1], first)


def test_transformer_rejects_bad_input():
    model = Transformer(toy_config())
    src, tgt, src_mask, tgt_mask = batch()
    with pytest.raises(ValueError, match="TransformerConfig"):
        Transformer({"d_model": 12})
    with pytest.raises(ValueError, match=r"src must be \(batch, src_len\)"):
        model.encode(src[0])
    with pytest.raises(ValueError, match=r"tgt must be \(batch, tgt_len\)"):
        model(src, tgt[0])
    with pytest.raises(ValueError, match="memory must be"):
        model.decode(tgt, model.encode(src[:1]))
    with pytest.raises(ValueError, match="vocabulary"):
        model(src + 20, tgt)
    with pytest.raises(ValueError, match="max_len"):
        model.encode(torch.full((1, 65), 5))
    with pytest.raises(ValueError, match="broadcast"):
        model(src, tgt, src_mask, tgt_mask[:, :, :3])


def test_from_torch_layer_keeps_reference_untouched():
    reference = scramble_(nn.TransformerEncoderLayer(12, 3, 20, batch_first=True), 0)
    before = copy.deepcopy(reference.state_dict())
    ours = EncoderLayer.from_torch(reference)
    with torch.no_grad():
        ours.feed_forward.w_1.weight.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in reference.state_dict().items())


@pytest.mark.parametrize("norm_first", [False, True])
def test_use_fused_kernels_keeps_the_function_and_switches_back(norm_first):
    from transformer18.model import use_fused_kernels
    from transformer18.multihead import MultiHeadAttention
    from transformer18.norm import LayerNorm

    torch.manual_seed(6)
    config = TransformerConfig(11, 13, d_model=16, n_heads=4, n_layers=2, d_ff=24, dropout=0.0, max_len=20,
                               norm_first=norm_first)
    model = Transformer(config).eval()
    src, tgt = torch.randint(4, 11, (3, 6)), torch.randint(4, 13, (3, 5))
    src[1, 4:] = 0
    src_mask, tgt_mask = padding_mask(src, 0), decoder_self_mask(tgt, 0)
    expected = model(src, tgt, src_mask, tgt_mask)
    assert use_fused_kernels(model) is model
    switchable = [m for m in model.modules() if isinstance(m, (LayerNorm, MultiHeadAttention))]
    assert switchable and all(m.fused for m in switchable)
    torch.testing.assert_close(model(src, tgt, src_mask, tgt_mask), expected)
    use_fused_kernels(model, enabled=False)
    assert not any(m.fused for m in switchable)
    with pytest.raises(ValueError, match="enabled must be True or False"):
        use_fused_kernels(model, enabled=None)
