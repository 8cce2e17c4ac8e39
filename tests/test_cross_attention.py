"""Q9: the reverse-odd task and CrossAttentionAligner, which learns an alignment through cross-attention alone."""

import math

import pytest
import torch
import torch.nn.functional as F

from transformer18.cross_attention import CrossAttentionAligner, ideal_alignment, reverse_odd_batch
from transformer18.multihead import MultiHeadAttention
from transformer18.positional import sinusoidal_encoding

VOCAB_SIZE, SRC_LEN, TGT_LEN = 30, 10, 5
SIZES = dict(vocab_size=VOCAB_SIZE, d_model=32, max_src_len=SRC_LEN, max_tgt_len=TGT_LEN, d_k=16)


def make(seed: int = 0, **overrides) -> CrossAttentionAligner:
    torch.manual_seed(seed)
    return CrossAttentionAligner(**{**SIZES, **overrides})


def train(steps: int, seed: int = 0, batch_size: int = 64) -> tuple[CrossAttentionAligner, list[float]]:
    """The notebook's recipe: seeded init and data, Adam 3e-3, a fixed number of steps, one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = make(seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        data = torch.Generator().manual_seed(seed + 1)
        losses = []
        for _ in range(steps):
            src, tgt = reverse_odd_batch(batch_size, SRC_LEN, VOCAB_SIZE, data)
            loss = F.cross_entropy(model(src).flatten(0, 1), tgt.flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    return model.eval(), losses


@pytest.fixture(scope="module")
def trained():
    return train(400)[0]


@pytest.fixture(scope="module")
def held_out():
    return reverse_odd_batch(500, SRC_LEN, VOCAB_SIZE, torch.Generator().manual_seed(2))


# ---------------------------------------------------------------- the task


@pytest.mark.parametrize("src_len, expected", [(10, [9, 7, 5, 3, 1]), (9, [7, 5, 3, 1]), (2, [1]), (3, [1]),
                                               (6, [5, 3, 1])])
def test_ideal_alignment_is_the_odd_positions_reversed(src_len, expected):
    assert ideal_alignment(src_len).tolist() == expected
    assert ideal_alignment(src_len).dtype == torch.long and len(expected) == src_len // 2


@pytest.mark.parametrize("src_len", [0, 1, -4, 2.0, True, "10"])
def test_ideal_alignment_rejects_bad_lengths(src_len):
    with pytest.raises(ValueError, match="src_len must be an int ≥ 2"):
        ideal_alignment(src_len)


def test_batch_targets_are_the_odd_source_positions_reversed():
    src, tgt = reverse_odd_batch(7, SRC_LEN, VOCAB_SIZE, torch.Generator().manual_seed(0))
    assert src.shape == (7, SRC_LEN) and tgt.shape == (7, TGT_LEN)
    assert src.dtype == tgt.dtype == torch.long
    for row in range(7):
        s = src[row].tolist()
        assert tgt[row].tolist() == [s[9], s[7], s[5], s[3], s[1]]  # written out by hand
    assert src.min() >= 4 and src.max() < VOCAB_SIZE  # the four Vocab specials are never drawn


def test_batch_covers_the_whole_id_range_uniformly():
    src, _ = reverse_odd_batch(2000, SRC_LEN, VOCAB_SIZE, torch.Generator().manual_seed(1))
    counts = torch.bincount(src.flatten(), minlength=VOCAB_SIZE)
    assert (counts[:4] == 0).all() and (counts[4:] > 0).all()
    assert counts[4:].max() < 1.25 * counts[4:].float().mean()  # 26 letters, ~770 draws each


def test_batch_is_reproducible_and_depends_on_the_seed():
    first = reverse_odd_batch(4, SRC_LEN, VOCAB_SIZE, torch.Generator().manual_seed(3))
    again = reverse_odd_batch(4, SRC_LEN, VOCAB_SIZE, torch.Generator().manual_seed(3))
    other = reverse_odd_batch(4, SRC_LEN, VOCAB_SIZE, torch.Generator().manual_seed(4))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_batch_first_id_sets_the_lowest_id():
    src, tgt = reverse_odd_batch(50, 7, 6, torch.Generator().manual_seed(0), first_id=4)
    assert set(src.flatten().tolist()) == {4, 5} and tgt.shape == (50, 3)
    src, _ = reverse_odd_batch(50, 7, 3, torch.Generator().manual_seed(0), first_id=0)
    assert set(src.flatten().tolist()) == {0, 1, 2}


@pytest.mark.parametrize("args, message", [
    ((0, 10, 30, torch.Generator()), "batch_size must be a positive int"),
    ((4, 1, 30, torch.Generator()), "src_len must be an int ≥ 2"),
    ((4, 10, 4, torch.Generator()), r"\[4, 4\), which must be a non-empty range"),
    ((4, 10, 30, 0), "generator must be a torch.Generator"),
])
def test_batch_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        reverse_odd_batch(*args)


# ---------------------------------------------------------------- the model


@pytest.mark.parametrize("batch, src_len, tgt_len", [(3, 10, 5), (2, 7, 5), (1, 10, 2), (4, 3, 5), (2, 1, 4)])
def test_forward_shapes_with_q_len_different_from_k_len(batch, src_len, tgt_len):
    model = make()
    src = torch.randint(4, VOCAB_SIZE, (batch, src_len))
    logits = model(src, tgt_len)
    assert logits.shape == (batch, tgt_len, VOCAB_SIZE)
    assert model.attn_weights.shape == (batch, tgt_len, src_len)  # (batch, q_len, k_len)
    torch.testing.assert_close(model.attn_weights.sum(dim=-1), torch.ones(batch, tgt_len))


def test_tgt_len_defaults_to_max_tgt_len_and_a_prefix_gives_the_same_outputs():
    model = make()
    src = torch.randint(4, VOCAB_SIZE, (2, SRC_LEN))
    full = model(src)
    assert full.shape == (2, TGT_LEN, VOCAB_SIZE)
    torch.testing.assert_close(model(src, 3), full[:, :3])  # each output position has its own query


def test_memory_is_scaled_embedding_plus_sinusoidal_positions():
    model = make()
    src = torch.randint(4, VOCAB_SIZE, (2, 7))
    expected = model.embed.lookup.weight[src] * math.sqrt(32) + sinusoidal_encoding(SRC_LEN, 32)[:7]
    torch.testing.assert_close(model.memory(src), expected)


def test_equals_torch_multihead_attention_with_one_head():
    """With d_k = d_model, the model is generator(nn.MultiheadAttention(queries, memory, memory))."""
    model = make(d_k=None)
    one_head = MultiHeadAttention(32, 1)  # Q12's layer with the model's W_Q, W_K, W_V and W_O = I
    one_head.load_state_dict({**model.cross_attn.state_dict(), "w_o.weight": torch.eye(32), "w_o.bias": torch.zeros(32)})
    reference = one_head.to_torch()
    src = torch.randint(4, VOCAB_SIZE, (3, 9))  # k_len 9, q_len 5
    memory = model.memory(src)
    queries = model.queries.expand(3, -1, -1)
    expected, expected_weights = reference(queries, memory, memory)
    torch.testing.assert_close(model(src), model.generator(expected))
    torch.testing.assert_close(model.attn_weights, expected_weights)


def test_the_values_are_the_only_path_from_source_to_outputs():
    model = make()
    with torch.no_grad():
        model.cross_attn.w_v.weight.zero_()
        model.cross_attn.w_v.bias.zero_()
        a, b = torch.randint(4, VOCAB_SIZE, (2, 3, SRC_LEN))
        torch.testing.assert_close(model(a), model(b))
        torch.testing.assert_close(model(a), model.generator.bias.expand(3, TGT_LEN, -1))


def test_without_positions_the_model_cannot_tell_positions_apart():
    model = make()
    model.position.pe.zero_()
    src = torch.randint(4, VOCAB_SIZE, (4, SRC_LEN))
    shuffled = src[:, torch.randperm(SRC_LEN)]
    torch.testing.assert_close(model(shuffled), model(src))


def test_it_trains_loss_falls():
    _, losses = train(80)
    assert losses[0] > 3.0  # ≈ ln 30: nothing learned yet
    assert sum(losses[-10:]) / 10 < 0.7 * losses[0]


def test_training_is_deterministic():
    first_model, first_losses = train(15, seed=0, batch_size=16)
    again_model, again_losses = train(15, seed=0, batch_size=16)
    other_model, other_losses = train(15, seed=1, batch_size=16)
    assert first_losses == again_losses and first_losses != other_losses
    for (name, p), q in zip(first_model.state_dict().items(), again_model.state_dict().values()):
        assert torch.equal(p, q), name
    assert not torch.equal(first_model.queries, other_model.queries)


def test_trained_model_learns_the_alignment(trained, held_out):
    src, tgt = held_out
    with torch.no_grad():
        predictions = trained(src).argmax(dim=-1)
    weights = trained.attn_weights  # (500, q_len, k_len)
    assert (predictions == tgt).all(dim=-1).float().mean() >= 0.95  # exact match
    assert (weights.argmax(dim=-1) == ideal_alignment(SRC_LEN)).float().mean() >= 0.95
    on_ideal = weights[:, torch.arange(TGT_LEN), ideal_alignment(SRC_LEN)]
    assert on_ideal.mean() > 0.5


def test_editing_a_source_token_changes_only_its_aligned_output(trained, held_out):
    src = held_out[0][:100]
    ideal = ideal_alignment(SRC_LEN).tolist()
    with torch.no_grad():
        before = trained(src).argmax(dim=-1)
        for position in range(SRC_LEN):
            changed = src.clone()
            changed[:, position] = 4 + (src[:, position] - 4 + 7) % 26  # always a different letter
            after = trained(changed).argmax(dim=-1)
            expected = before.clone()
            if position in ideal:
                expected[:, ideal.index(position)] = changed[:, position]
            assert torch.equal(after, expected), f"editing position {position}"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("src, message", [
    (torch.tensor([[4, 5, 30]]), r"token ids must lie in \[0, 30\)"),
    (torch.tensor([[4, -1, 5]]), r"token ids must lie in \[0, 30\)"),
    (torch.randint(4, 30, (2, 11)), "max_src_len = 10"),
    (torch.zeros(2, 0, dtype=torch.long), "max_src_len = 10"),
    (torch.randint(4, 30, (10,)), r"\(batch, src_len\)"),
    (torch.rand(2, 10), "integer tensor"),
])
def test_bad_sources_are_value_errors(src, message):
    with pytest.raises(ValueError, match=message):
        make()(src)


@pytest.mark.parametrize("tgt_len", [0, 6, 2.0, True])
def test_bad_target_lengths_are_value_errors(tgt_len):
    with pytest.raises(ValueError, match="tgt_len must be an int in \\[1, max_tgt_len = 5\\]"):
        make()(torch.randint(4, 30, (2, 10)), tgt_len)


@pytest.mark.parametrize("overrides, message", [
    (dict(max_src_len=0), "max_src_len must be a positive int"),
    (dict(max_tgt_len=2.5), "max_tgt_len must be a positive int"),
    (dict(vocab_size=0), "vocab_size and d_model must be positive"),
    (dict(d_k=0), "d_k must be a positive int"),
])
def test_bad_sizes_are_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)
