import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer18.decoder import subsequent_mask
from transformer18.embedding import Vocab
from transformer18.masks import decoder_self_mask, padding_mask
from transformer18.multihead import MultiHeadAttention, split_heads
from transformer18.scaled import scaled_dot_product_attention

PAD = 0

# ---------------------------------------------------------------- padding_mask


def test_padding_mask_values_shape_and_dtype():
    tokens = torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0], [4, 5, 6, 7]])
    mask = padding_mask(tokens, PAD)
    assert mask.shape == (3, 1, 1, 4) and mask.dtype == torch.bool
    assert torch.equal(mask[:, 0, 0], torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool))


def test_padding_mask_uses_the_given_pad_id():
    tokens = torch.tensor([[0, 1, 9, 3, 3], [2, 3, 0, 1, 3]])
    mask = padding_mask(tokens, 3)
    assert torch.equal(mask[:, 0, 0], tokens != 3)
    assert mask[0, 0, 0, 0] and not mask[0, 0, 0, 3]  # id 0 is a real token here


def test_padding_mask_of_a_vocab_batch():
    vocab = Vocab.from_texts(["key", "mask", "softmax"])
    tokens = vocab.pad_batch([vocab.encode(w) for w in ["key", "mask", "softmax"]])  # (3, 7)
    mask = padding_mask(tokens, vocab.pad_id)
    assert mask[:, 0, 0].sum(dim=1).tolist() == [3, 4, 7]
    assert torch.broadcast_shapes(mask.shape, (3, 2, 5, 7)) == (3, 2, 5, 7)  # any number of queries and heads


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([5, 6, 0]), r"\(batch, len\) tensor of ids, got \(3,\)"),
    (torch.zeros(2, 3, 4, dtype=torch.long), r"\(batch, len\) tensor of ids, got \(2, 3, 4\)"),
    ([[5, 6, 0]], r"\(batch, len\) tensor of ids, got list"),
    (torch.tensor([[5.0, 0.0]]), "integer ids, got dtype torch.float32"),
    (torch.tensor([[True, False]]), "integer ids, got dtype torch.bool"),
])
def test_padding_mask_rejects_bad_tokens(bad, message):
    with pytest.raises(ValueError, match=message):
        padding_mask(bad, PAD)


@pytest.mark.parametrize("bad", [0.0, None, True, "0"])
def test_padding_mask_rejects_a_bad_pad_id(bad):
    with pytest.raises(ValueError, match="pad_id must be an int"):
        padding_mask(torch.tensor([[1, 0]]), bad)


# ---------------------------------------------------------------- decoder_self_mask


@pytest.mark.parametrize("pad_id", [0, 3])
def test_decoder_self_mask_is_padding_and_causal(pad_id):
    tokens = torch.tensor([[5, 6, 7, pad_id, pad_id], [8, pad_id, pad_id, pad_id, pad_id], [4, 5, 6, 7, 9]])
    mask = decoder_self_mask(tokens, pad_id)
    assert mask.shape == (3, 1, 5, 5) and mask.dtype == torch.bool
    assert torch.equal(mask, padding_mask(tokens, pad_id) & subsequent_mask(5))
    lengths = [3, 1, 5]
    for b in range(3):
        for i in range(5):
            for j in range(5):
                assert bool(mask[b, 0, i, j]) == (j <= i and j < lengths[b]), (b, i, j)


def test_decoder_self_mask_rejects_non_2d_tokens():
    with pytest.raises(ValueError, match=r"\(batch, len\)"):
        decoder_self_mask(torch.tensor([1, 2, 0]), PAD)


def test_left_padding_makes_fully_masked_rows():
    tokens = torch.tensor([[0, 0, 5, 6], [7, 8, 9, 4]])
    mask = decoder_self_mask(tokens, PAD)
    assert (~mask.any(dim=-1))[:, 0].tolist() == [[True, True, False, False], [False] * 4]


# ---------------------------------------------------------------- properties through MultiHeadAttention


SHAPES = [(3, 7, 10, 2), (2, 9, 12, 4), (1, 5, 8, 1), (4, 6, 12, 3)]  # (batch, len, d_model, heads)


def layer_and_input(seed, shape):
    """A seeded MultiHeadAttention in eval mode and an input (batch, len, d_model) for one of SHAPES."""
    batch, length, d_model, heads = shape
    torch.manual_seed(seed)
    return MultiHeadAttention(d_model, heads).eval(), torch.randn(batch, length, d_model)


@pytest.mark.parametrize("seed, shape", list(enumerate(SHAPES)))
def test_a_future_token_never_changes_an_earlier_output(seed, shape):
    mha, x = layer_and_input(seed, shape)
    batch, length, d_model = x.shape
    for t in range(1, length):
        changed = x.clone()
        changed[:, t] = torch.randn(batch, d_model)
        with torch.no_grad():
            masked = mha(x, x, x, mask=subsequent_mask(length)), mha(changed, changed, changed, mask=subsequent_mask(length))
            unmasked = mha(x, x, x), mha(changed, changed, changed)
        assert torch.equal(masked[0][:, :t], masked[1][:, :t]), f"position {t} reached an earlier output"
        assert not torch.equal(masked[0][:, t:], masked[1][:, t:])
        assert (unmasked[0][:, :t] - unmasked[1][:, :t]).abs().max() > 1e-4, "without the mask it must change"


@pytest.mark.parametrize("seed, shape", list(enumerate(SHAPES)))
def test_one_masked_pass_equals_the_prefix_runs(seed, shape):
    mha, x = layer_and_input(seed, shape)
    length = x.size(1)
    with torch.no_grad():
        one_pass = mha(x, x, x, mask=subsequent_mask(length))
        prefixes = torch.stack([mha(x[:, :t + 1], x[:, :t + 1], x[:, :t + 1])[:, t] for t in range(length)], dim=1)
    torch.testing.assert_close(one_pass, prefixes)


def random_tokens(batch, length, seed, pad_id=PAD, vocab_size=20):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(4, vocab_size, (batch, length), generator=g)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length  # one sentence without padding
    tokens[torch.arange(length)[None, :] >= lengths[:, None]] = pad_id
    return tokens


@pytest.mark.parametrize("seed, shape", list(enumerate(SHAPES)))
@pytest.mark.parametrize("make_mask", [padding_mask, decoder_self_mask])
def test_appending_padding_never_changes_a_real_output(seed, shape, make_mask):
    batch, length, d_model, heads = shape
    torch.manual_seed(seed)
    mha = MultiHeadAttention(d_model, heads).eval()
    embed = nn.Embedding(20, d_model)
    tokens = random_tokens(batch, length, seed)
    real = tokens != PAD
    with torch.no_grad():
        x = embed(tokens)
        base = mha(x, x, x, mask=make_mask(tokens, PAD))
        base_unmasked = mha(x, x, x)
        for extra in (1, 3):
            longer = torch.cat([tokens, torch.full((batch, extra), PAD)], dim=1)
            x_long = embed(longer)
            out = mha(x_long, x_long, x_long, mask=make_mask(longer, PAD))[:, :length]
            torch.testing.assert_close(out[real], base[real], rtol=0, atol=1e-6)
            unmasked = mha(x_long, x_long, x_long)[:, :length]
            assert (unmasked[real] - base_unmasked[real]).abs().max() > 1e-4, "without the mask padding matters"


def test_masked_keys_get_exactly_zero_weight_and_rows_sum_to_one():
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3).eval()
    tokens = random_tokens(4, 6, seed=1)
    mask = decoder_self_mask(tokens, PAD)
    x = torch.randn(4, 6, 12)
    with torch.no_grad():
        mha(x, x, x, mask=mask)
    weights = mha.attn_weights  # (batch, heads, q_len, k_len)
    assert torch.all(weights.masked_select(~mask.expand_as(weights)) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 3, 6))


# ---------------------------------------------------------------- fully masked rows


def test_fully_masked_rows_stay_finite_with_our_convention():
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3).eval()
    tokens = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 5, 6, 7], [5, 6, 7, 8, 0]])  # all pads; left-padded; right-padded
    x = torch.randn(3, 5, 12)
    with torch.no_grad():
        for mask in (padding_mask(tokens, PAD), decoder_self_mask(tokens, PAD)):
            out = mha(x, x, x, mask=mask)
            assert torch.isfinite(out).all() and torch.isfinite(mha.attn_weights).all()
    empty = ~decoder_self_mask(tokens, PAD).any(dim=-1)  # (batch, 1, q_len)
    uniform = mha.attn_weights[empty.expand(3, 3, 5)]
    torch.testing.assert_close(uniform, torch.full_like(uniform, 0.2))  # equal weights 1/k_len


def test_minus_infinity_turns_a_fully_masked_row_into_nan():
    scores = torch.randn(2, 4)
    mask = torch.tensor([[True, False, True, False], [False] * 4])
    assert torch.isnan(scores.masked_fill(~mask, float("-inf")).softmax(-1)[1]).all()
    weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(-1)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights[0], scores[0].masked_fill(~mask[0], float("-inf")).softmax(-1))


# ---------------------------------------------------------------- parity with PyTorch (flipped polarity)


@pytest.mark.parametrize("seed, shape", list(enumerate(SHAPES)))
def test_equal_to_nn_multihead_attention_with_flipped_masks(seed, shape):
    batch, length, d_model, heads = shape
    torch.manual_seed(seed)
    ours = MultiHeadAttention(d_model, heads).eval()
    twin = ours.to_torch().eval()
    tokens = random_tokens(batch, length, seed)
    x = torch.randn(batch, length, d_model)
    causal, pad, both = subsequent_mask(length), padding_mask(tokens, PAD), decoder_self_mask(tokens, PAD)
    per_head = (~both).expand(batch, heads, length, length).reshape(batch * heads, length, length)
    float_causal = nn.Transformer.generate_square_subsequent_mask(length)
    with torch.no_grad():
        pairs = [
            (ours(x, x, x, mask=causal), twin(x, x, x, attn_mask=~causal[0, 0])[0]),
            (ours(x, x, x, mask=causal), twin(x, x, x, attn_mask=float_causal)[0]),
            (ours(x, x, x, mask=pad), twin(x, x, x, key_padding_mask=~pad[:, 0, 0])[0]),
            (ours(x, x, x, mask=both), twin(x, x, x, attn_mask=~causal[0, 0], key_padding_mask=~pad[:, 0, 0])[0]),
            (ours(x, x, x, mask=both), twin(x, x, x, attn_mask=per_head)[0]),
        ]
    largest = max((a - b).abs().max().item() for a, b in pairs)
    print(f"largest difference from nn.MultiheadAttention: {largest:.2e}")
    for a, b in pairs:
        torch.testing.assert_close(a, b)
    assert largest < 1e-5


def test_our_mask_unflipped_gives_nn_multihead_attention_the_wrong_answer():
    torch.manual_seed(0)
    ours = MultiHeadAttention(12, 3).eval()
    twin = ours.to_torch().eval()
    x = torch.randn(2, 5, 12)
    with torch.no_grad():
        right = ours(x, x, x, mask=subsequent_mask(5))
        wrong = twin(x, x, x, attn_mask=subsequent_mask(5)[0, 0])[0]
    assert (wrong[:, :-1] - right[:, :-1]).abs().max() > 1e-2
    assert torch.isnan(wrong[:, -1]).all(), "the last query is forbidden every key"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_functional_sdpa_with_bool_and_additive_masks(seed):
    torch.manual_seed(seed)
    q, k, v = torch.randn(3, 2, 3, 6, 4).unbind(0)  # (batch, heads, len, d_k)
    tokens = random_tokens(2, 6, seed)
    mask = decoder_self_mask(tokens, PAD)
    additive = torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
    ours, _ = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=additive))
    causal, _ = scaled_dot_product_attention(q, k, v, subsequent_mask(6))
    torch.testing.assert_close(causal, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_padding_mask_serves_cross_attention():
    torch.manual_seed(0)
    ours = MultiHeadAttention(12, 3).eval()
    twin = ours.to_torch().eval()
    src_tokens = random_tokens(2, 7, seed=5)
    memory, queries = torch.randn(2, 7, 12), torch.randn(2, 4, 12)  # src_len 7, tgt_len 4
    pad = padding_mask(src_tokens, PAD)
    with torch.no_grad():
        out = ours(queries, memory, memory, mask=pad)
        assert ours.attn_weights.shape == (2, 3, 4, 7)
        torch.testing.assert_close(out, twin(queries, memory, memory, key_padding_mask=~pad[:, 0, 0])[0])
    q = split_heads(ours.w_q(queries), 3)
    assert q.shape == (2, 3, 4, 4)
