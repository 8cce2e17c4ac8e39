import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer18.embedding import TokenEmbedding, Vocab

DATES = ["21 novembre 2026", "21. November 2026", "2026年11月21日", "2026-11-21", "1 février 1999",
         "3. März 2001", "14 août 2020"]


@pytest.fixture
def vocab():
    return Vocab.from_texts(DATES)


# ---------------------------------------------------------------- Vocab


def test_specials_have_fixed_ids(vocab):
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert (Vocab.pad_id, Vocab.bos_id, Vocab.eos_id, Vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.tokens[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert Vocab([]).tokens == ["<pad>", "<bos>", "<eos>", "<unk>"] and len(Vocab([])) == 4


def test_from_texts_is_the_sorted_set_of_characters(vocab):
    chars = sorted(set("".join(DATES)))
    assert vocab.tokens == ["<pad>", "<bos>", "<eos>", "<unk>"] + chars
    assert len(vocab) == 4 + len(chars)
    assert Vocab.from_texts(reversed(DATES)).tokens == vocab.tokens  # order of the texts does not matter
    assert Vocab.from_texts(["ba", "ab"]).tokens[4:] == ["a", "b"]


def test_chars_keep_their_order_and_first_occurrence():
    vocab = Vocab("cabca")
    assert vocab.tokens == ["<pad>", "<bos>", "<eos>", "<unk>", "c", "a", "b"]
    assert vocab.encode("abc") == [5, 6, 4]


@pytest.mark.parametrize("chars, match", [
    (["a", "bc"], "single characters, got 'bc'"),
    (["a", ""], "single characters, got ''"),
    (["a", 7], "single characters, got 7"),
    (["<unk>"], "'<unk>' is a special token"),
    (["x", "<pad>"], "'<pad>' is a special token"),
])
def test_bad_characters_are_value_errors(chars, match):
    with pytest.raises(ValueError, match=match):
        Vocab(chars)


def test_from_texts_needs_strings():
    with pytest.raises(ValueError, match="iterable of strings"):
        Vocab.from_texts(["abc", 5])


def test_tokens_len_and_contains(vocab):
    assert len(vocab) == len(vocab.tokens)
    assert "年" in vocab and "é" in vocab and "û" in vocab and "<eos>" in vocab
    assert "년" not in vocab and "Z" not in vocab
    vocab.tokens.append("oops")  # a copy: the vocabulary is not changed through it
    assert "oops" not in vocab.tokens
    assert repr(vocab) == f"Vocab({len(vocab)} tokens: 4 specials + {len(vocab) - 4} characters)"


@pytest.mark.parametrize("text", DATES + ["", "2026年", "février", "août 2020"])
def test_encode_decode_round_trip(vocab, text):
    ids = vocab.encode(text)
    assert len(ids) == len(text) and all(4 <= i < len(vocab) for i in ids)
    assert vocab.decode(ids) == text
    assert vocab.decode(torch.tensor(ids, dtype=torch.long)) == text


def test_encode_by_hand():
    vocab = Vocab.from_texts(["2026-11-21"])  # characters '-', '0', '1', '2', '6' → ids 4..8
    assert vocab.encode("2026-11-21") == [7, 5, 7, 8, 4, 6, 6, 4, 7, 6]
    assert vocab.tokens[4:] == ["-", "0", "1", "2", "6"]


def test_unknown_characters_become_unk(vocab):
    ids = vocab.encode("2026년 11월")
    assert ids.count(vocab.unk_id) == 2 and ids[4] == vocab.unk_id and ids[-1] == vocab.unk_id
    assert vocab.decode(ids) == "2026 11"  # unk is a special: skipped
    assert vocab.decode(ids, skip_specials=False) == "2026<unk> 11<unk>"


def test_add_bos_and_eos(vocab):
    plain = vocab.encode("21")
    assert vocab.encode("21", add_bos=True) == [1] + plain
    assert vocab.encode("21", add_eos=True) == plain + [2]
    assert vocab.encode("21", add_bos=True, add_eos=True) == [1] + plain + [2]
    assert vocab.encode("", add_bos=True, add_eos=True) == [1, 2]
    assert vocab.decode(vocab.encode("21", add_bos=True, add_eos=True)) == "21"


def test_encode_needs_a_string(vocab):
    with pytest.raises(ValueError, match="encode takes a str, got list"):
        vocab.encode(["2", "1"])


def test_decode_stops_at_the_first_eos_and_skips_specials(vocab):
    two, one = vocab.encode("21")
    ids = [1, two, 0, one, 2, two, 2, one]
    assert vocab.decode(ids) == "21"
    assert vocab.decode(torch.tensor(ids)) == "21"
    assert vocab.decode(ids, skip_specials=False) == "<bos>2<pad>1<eos>2<eos>1"
    assert vocab.decode([2, two]) == "" and vocab.decode([]) == ""


@pytest.mark.parametrize("ids", [[4, -1], [4, 10_000], [4.0], [None]])
def test_decode_rejects_ids_outside_the_vocabulary(vocab, ids):
    with pytest.raises(ValueError, match=r"outside the vocabulary \[0, \d+\)"):
        vocab.decode(ids)


def test_decode_rejects_ids_outside_the_vocabulary_even_after_eos(vocab):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([5, 2, len(vocab)])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode(torch.tensor([5.0, 6.0]))


def test_decode_rejects_a_2d_tensor(vocab):
    with pytest.raises(ValueError, match=r"1-D tensor of ids, got shape \(2, 2\)"):
        vocab.decode(torch.tensor([[5, 6], [7, 8]]))


def test_pad_batch_right_pads_with_pad_id(vocab):
    batch = vocab.pad_batch([[5, 6, 7], [8], [], [9, 10]])
    assert batch.dtype == torch.long and batch.shape == (4, 3)
    assert batch.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0], [9, 10, 0]]
    assert vocab.pad_batch([[4, 5]]).tolist() == [[4, 5]]
    assert vocab.pad_batch([[], []]).shape == (2, 0)


def test_pad_batch_of_encoded_texts_decodes_back(vocab):
    batch = vocab.pad_batch([vocab.encode(t, add_eos=True) for t in DATES])
    assert batch.shape == (len(DATES), max(map(len, DATES)) + 1)
    assert [vocab.decode(row) for row in batch] == DATES


def test_pad_batch_needs_a_sequence(vocab):
    with pytest.raises(ValueError, match="at least one sequence"):
        vocab.pad_batch([])


# ---------------------------------------------------------------- TokenEmbedding


@pytest.mark.parametrize("vocab_size, d_model, batch, length", [(11, 12, 2, 5), (37, 8, 3, 9), (5, 64, 1, 1)])
def test_forward_is_the_lookup_times_sqrt_d_model(vocab_size, d_model, batch, length):
    torch.manual_seed(0)
    layer = TokenEmbedding(vocab_size, d_model)
    ids = torch.randint(0, vocab_size, (batch, length))
    out = layer(ids)
    assert out.shape == (batch, length, d_model)
    torch.testing.assert_close(out, layer.lookup(ids) * math.sqrt(d_model))
    torch.testing.assert_close(out, layer.lookup.weight[ids] * math.sqrt(d_model))


def test_equals_torch_embedding_with_copied_weights():
    torch.manual_seed(1)
    reference = nn.Embedding(23, 10, padding_idx=0)
    ours = TokenEmbedding(23, 10, padding_idx=0)
    with torch.no_grad():
        ours.lookup.weight.copy_(reference.weight)
    ids = torch.randint(0, 23, (4, 7))
    torch.testing.assert_close(ours(ids), reference(ids) * math.sqrt(10))
    torch.testing.assert_close(ours(ids), F.embedding(ids, reference.weight) * math.sqrt(10))
    assert isinstance(ours.lookup, nn.Embedding) and ours.lookup.padding_idx == 0


def test_hand_computed_values():
    layer = TokenEmbedding(3, 4)
    with torch.no_grad():
        layer.lookup.weight.copy_(torch.arange(12.0).reshape(3, 4))
    out = layer(torch.tensor([[2, 0]]))
    torch.testing.assert_close(out, torch.tensor([[[16.0, 18.0, 20.0, 22.0], [0.0, 2.0, 4.0, 6.0]]]))  # √4 = 2


def test_other_integer_dtypes_and_shapes_work():
    layer = TokenEmbedding(9, 6)
    ids = torch.tensor([[1, 8, 0]])
    for dtype in (torch.int32, torch.int16, torch.int8, torch.uint8):
        torch.testing.assert_close(layer(ids.to(dtype)), layer(ids))
    assert layer(torch.tensor([3, 4])).shape == (2, 6)
    assert layer(torch.zeros(2, 0, dtype=torch.long)).shape == (2, 0, 6)


def test_initialisation_has_unit_variance_after_the_scale():
    torch.manual_seed(0)
    layer = TokenEmbedding(2000, 256)
    assert abs(layer.lookup.weight.std().item() * math.sqrt(256) - 1) < 0.01
    assert abs(layer(torch.arange(2000)[None]).std().item() - 1) < 0.01


def test_padding_row_is_zero_and_gets_no_gradient():
    torch.manual_seed(0)
    layer = TokenEmbedding(10, 6, padding_idx=3)
    assert layer.lookup.weight[3].eq(0).all() and layer.lookup.weight[4].ne(0).any()
    ids = torch.tensor([[3, 5, 3, 7], [1, 3, 3, 3]])
    out = layer(ids)
    assert out[ids == 3].eq(0).all()
    (out * torch.randn(out.shape)).sum().backward()
    grad = layer.lookup.weight.grad
    assert grad[3].eq(0).all() and grad[5].ne(0).any() and grad[0].eq(0).all()


def test_without_padding_idx_the_pad_row_trains():
    layer = TokenEmbedding(10, 6)
    (layer(torch.tensor([[0, 0, 1]])) ** 2).sum().backward()
    assert layer.lookup.weight.grad[0].ne(0).any()


@pytest.mark.parametrize("ids, match", [
    (torch.tensor([[1, 12]]), r"token ids must lie in \[0, 12\) \(the vocabulary\), got ids from 1 to 12"),
    (torch.tensor([[-1, 3]]), r"\[0, 12\) \(the vocabulary\), got ids from -1 to 3"),
    (torch.tensor([[-4, 40]]), "got ids from -4 to 40"),
    (torch.tensor([[1.0, 2.0]]), "token ids must be an integer tensor, got torch.float32"),
    (torch.tensor([[True, False]]), "integer tensor, got torch.bool"),
    ([[1, 2]], "integer tensor, got <class 'list'>"),
])
def test_bad_ids_are_value_errors(ids, match):
    with pytest.raises(ValueError, match=match):
        TokenEmbedding(12, 4)(ids)


@pytest.mark.parametrize("args, match", [
    ((0, 4), "must be positive"), ((5, -1), "must be positive"),
    ((5, 4, 5), r"padding_idx must lie in \[0, 5\), got 5"), ((5, 4, -1), "padding_idx must lie"),
])
def test_bad_sizes_are_value_errors(args, match):
    with pytest.raises(ValueError, match=match):
        TokenEmbedding(*args)


def test_weight_tying_shares_storage_and_accumulates_gradients():
    torch.manual_seed(0)
    embed = TokenEmbedding(13, 8, padding_idx=0)
    generator = nn.Linear(8, 13, bias=False)
    generator.weight = embed.lookup.weight
    assert generator.weight is embed.lookup.weight
    assert generator.weight.data_ptr() == embed.lookup.weight.data_ptr()
    assert sum(p.numel() for p in nn.ModuleList([embed, generator]).parameters()) == 13 * 8  # counted once

    ids = torch.tensor([[4, 5, 6, 0], [7, 7, 8, 9]])
    targets = torch.tensor([5, 6, 0, 0, 7, 8, 9, 1])

    def loss(embedding, output_layer):
        logits = output_layer(torch.tanh(embedding(ids)))  # (batch, len, vocab_size)
        return F.cross_entropy(logits.flatten(0, 1), targets, ignore_index=0)

    h = torch.tanh(embed(ids))
    torch.testing.assert_close(generator(h), h @ embed.lookup.weight.T)
    loss(embed, generator).backward()

    separate_embed, separate_generator = TokenEmbedding(13, 8, padding_idx=0), nn.Linear(8, 13, bias=False)
    with torch.no_grad():
        separate_embed.lookup.weight.copy_(embed.lookup.weight)
        separate_generator.weight.copy_(embed.lookup.weight)
    loss(separate_embed, separate_generator).backward()
    from_input, from_output = separate_embed.lookup.weight.grad, separate_generator.weight.grad
    torch.testing.assert_close(embed.lookup.weight.grad, from_input + from_output)
    assert from_input[0].eq(0).all() and from_output[0].ne(0).any()  # the tied pad row trains through the output
    assert from_input[10:].eq(0).all() and from_output[10:].ne(0).all()  # absent tokens: only the output's share
