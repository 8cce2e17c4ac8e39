"""Q17 (part 2): the label-smoothed loss, the warm-up schedule, Adam, padded batches, the training loop,
beam search and the evaluation helpers."""

import math

import pytest
import torch
import torch.nn.functional as F

from transformer18.config import TransformerConfig
from transformer18.decoder import greedy_decode, subsequent_mask
from transformer18.embedding import Vocab
from transformer18.masks import decoder_self_mask, padding_mask
from transformer18.model import Transformer
from transformer18.training import (
    Batch,
    TrainingHistory,
    beam_search,
    exact_match,
    label_smoothed_cross_entropy,
    make_batch,
    make_optimizer,
    noam_lr,
    noam_scheduler,
    train,
    translate,
    trim_output,
)

# ---------------------------------------------------------------- label_smoothed_cross_entropy


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.35])
@pytest.mark.parametrize("shape", [(5,), (2, 6), (3, 2, 4)])
def test_without_pad_id_equals_pytorch_label_smoothing(smoothing, shape):
    g = torch.Generator().manual_seed(len(shape))
    vocab = 7
    logits = torch.randn(*shape, vocab, generator=g) * 3
    target = torch.randint(0, vocab, shape, generator=g)
    ours = label_smoothed_cross_entropy(logits, target, smoothing)
    theirs = F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1), label_smoothing=smoothing)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(label_smoothed_cross_entropy(logits, target, smoothing, reduction="sum"),
                               F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1),
                                               label_smoothing=smoothing, reduction="sum"))


@pytest.mark.parametrize("pad_id", [0, 3])
def test_with_zero_smoothing_equals_cross_entropy_with_ignore_index(pad_id):
    g = torch.Generator().manual_seed(pad_id)
    logits = torch.randn(2, 5, 9, generator=g)
    target = torch.randint(0, 9, (2, 5), generator=g)
    target[0, 3:] = pad_id
    ours = label_smoothed_cross_entropy(logits, target, 0.0, pad_id=pad_id)
    torch.testing.assert_close(ours, F.cross_entropy(logits.reshape(-1, 9), target.reshape(-1), ignore_index=pad_id))


def test_pad_variant_by_hand():
    # V = 4, pad 0, ε = 0.3: q = (0, 0.1, 0.1 + 0.7, 0.1) for target 2; the pad position does not count.
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.3, 0.0, 0.0, 9.0]])
    target = torch.tensor([2, 0])
    log_p = [v - math.log(sum(math.exp(u) for u in (1.0, 2.0, 0.5, -1.0))) for v in (1.0, 2.0, 0.5, -1.0)]
    expected = -(0.1 * log_p[1] + 0.8 * log_p[2] + 0.1 * log_p[3])
    got = label_smoothed_cross_entropy(logits, target, 0.3, pad_id=0)
    assert math.isclose(got.item(), expected, rel_tol=1e-6)
    assert math.isclose(label_smoothed_cross_entropy(logits, target, 0.3, pad_id=0, reduction="sum").item(),
                        expected, rel_tol=1e-6)
    none = label_smoothed_cross_entropy(logits, target, 0.3, pad_id=0, reduction="none")
    assert none.shape == (2,) and none[1] == 0 and math.isclose(none[0].item(), expected, rel_tol=1e-6)


def explicit_targets(target, vocab, smoothing, pad_id):
    q = torch.full((*target.shape, vocab), smoothing / (vocab - 1))
    q[..., pad_id] = 0
    q += (1 - smoothing) * F.one_hot(target, vocab)
    return q * (target != pad_id)[..., None]


@pytest.mark.parametrize("seed", range(3))
def test_pad_variant_equals_the_explicit_sum_over_q(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 7, 11, generator=g)
    target = torch.randint(1, 11, (3, 7), generator=g)
    target[1, 4:] = 0
    target[2, 2:] = 0
    q = explicit_targets(target, 11, 0.1, 0)
    torch.testing.assert_close(q.sum(-1), (target != 0).float())
    expected = -(q * logits.log_softmax(-1)).sum() / (target != 0).sum()
    torch.testing.assert_close(label_smoothed_cross_entropy(logits, target, 0.1, pad_id=0), expected)


def test_pad_positions_are_ignored_and_get_no_gradient():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 5, 6, generator=g, requires_grad=True)
    target = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])
    loss = label_smoothed_cross_entropy(logits, target, 0.1, pad_id=0)
    loss.backward()
    assert (logits.grad[target == 0] == 0).all() and (logits.grad[target != 0] != 0).any()
    changed = logits.detach().clone()
    changed[target == 0] = 100.0
    torch.testing.assert_close(label_smoothed_cross_entropy(changed, target, 0.1, pad_id=0), loss.detach())


def test_pad_class_gets_no_smoothing_mass_unlike_pytorch_with_ignore_index():
    logits = torch.zeros(1, 5)
    logits[0, 0] = -50.0  # the model puts (almost) nothing on the pad class
    target = torch.tensor([2])
    ours = label_smoothed_cross_entropy(logits, target, 0.2, pad_id=0)
    theirs = F.cross_entropy(logits, target, ignore_index=0, label_smoothing=0.2)
    assert ours < 2.0 < theirs  # PyTorch still asks for ε/V on the pad class and pays -log(~e^-50)


def test_the_minimum_is_the_entropy_of_q():
    vocab, eps, pad = 12, 0.1, 0
    q = explicit_targets(torch.tensor([5]), vocab, eps, pad)[0]
    entropy = -(q[q > 0] * q[q > 0].log()).sum()
    optimum = torch.where(q > 0, q.log(), torch.tensor(-60.0))[None]
    torch.testing.assert_close(label_smoothed_cross_entropy(optimum, torch.tensor([5]), eps, pad_id=pad), entropy)
    assert math.isclose(entropy.item(), 0.5140, abs_tol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(logits=torch.zeros(2, 3, 5), target=torch.zeros(2, 4, dtype=torch.long)), "same leading shape"),
    (dict(logits=torch.zeros(5), target=torch.zeros((), dtype=torch.long)), "same leading shape"),
    (dict(logits=torch.zeros(2, 5), target=torch.zeros(2)), "integer token ids"),
    (dict(logits=torch.zeros(2, 5, dtype=torch.long), target=torch.zeros(2, dtype=torch.long)), "floating point"),
    (dict(smoothing=1.0), r"smoothing must be a number in \[0, 1\)"),
    (dict(smoothing=-0.1), r"smoothing must be a number in \[0, 1\)"),
    (dict(pad_id=5), r"pad_id must be None or an int in \[0, 5\)"),
    (dict(reduction="max"), "reduction must be"),
    (dict(target=torch.tensor([1, 5])), r"target ids must lie in \[0, 5\)"),
    (dict(target=torch.tensor([0, 0]), pad_id=0), "every target position is padding"),
])
def test_label_smoothing_rejects_bad_input(kwargs, message):
    args = dict(logits=torch.zeros(2, 5), target=torch.tensor([1, 2]), smoothing=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        label_smoothed_cross_entropy(**args)


# ---------------------------------------------------------------- the schedule and the optimiser


@pytest.mark.parametrize("d_model, warmup", [(512, 4000), (64, 200), (1024, 333)])
def test_schedule_peaks_at_warmup_rises_linearly_and_decays_as_inverse_sqrt(d_model, warmup):
    peak = d_model**-0.5 * warmup**-0.5
    assert math.isclose(noam_lr(warmup, d_model, warmup), peak, rel_tol=1e-12)
    assert max(noam_lr(s, d_model, warmup) for s in range(1, 3 * warmup)) == noam_lr(warmup, d_model, warmup)
    for s in (1, 2, warmup // 3, warmup - 1):
        assert math.isclose(noam_lr(s, d_model, warmup), s * peak / warmup, rel_tol=1e-12)
    for s in (warmup, warmup + 1, 5 * warmup):
        assert math.isclose(noam_lr(s, d_model, warmup), d_model**-0.5 * s**-0.5, rel_tol=1e-12)
        assert math.isclose(noam_lr(4 * s, d_model, warmup), noam_lr(s, d_model, warmup) / 2, rel_tol=1e-12)
    assert math.isclose(noam_lr(7, d_model, warmup, factor=2.5), 2.5 * noam_lr(7, d_model, warmup), rel_tol=1e-12)


def test_the_papers_numbers():
    assert math.isclose(noam_lr(4000, 512, 4000), 6.9877e-4, rel_tol=1e-4)
    assert math.isclose(noam_lr(100_000, 512, 4000), 1.3975e-4, rel_tol=1e-4)


@pytest.mark.parametrize("args, message", [
    ((0, 512, 4000), "step counts from 1"), ((-3, 512, 4000), "step counts from 1"),
    ((0.5, 512, 4000), "step counts from 1"), ((True, 512, 4000), "step counts from 1"),
    ((1, 0, 4000), "d_model must be a positive int"), ((1, 512, 0), "warmup must be a positive int"),
    ((1, 512.0, 4000), "d_model must be a positive int"), ((1, 512, 4000, 0.0), "factor must be a positive"),
])
def test_schedule_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        noam_lr(*args)


def rates_seen(optimizer, scheduler, n):
    parameter = optimizer.param_groups[0]["params"][0]
    seen = []
    for _ in range(n):
        seen.append(optimizer.param_groups[0]["lr"])
        parameter.grad = torch.ones_like(parameter)
        optimizer.step()
        scheduler.step()
    return seen


def test_scheduler_gives_update_i_the_rate_of_step_i():
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model)
    scheduler = noam_scheduler(optimizer, d_model=32, warmup=4, factor=1.5)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
    assert rates_seen(optimizer, scheduler, 10) == pytest.approx([noam_lr(i, 32, 4, 1.5) for i in range(1, 11)],
                                                                 rel=1e-12)


def test_scheduler_multiplies_the_base_rate():
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model, lr=0.5)
    scheduler = noam_scheduler(optimizer, d_model=32, warmup=4)
    assert rates_seen(optimizer, scheduler, 6) == pytest.approx([0.5 * noam_lr(i, 32, 4) for i in range(1, 7)])


def test_scheduler_validates_at_once():
    with pytest.raises(ValueError, match="warmup must be a positive int"):
        noam_scheduler(make_optimizer(torch.nn.Linear(2, 2)), d_model=32, warmup=0)


def test_make_optimizer_is_adam_with_the_papers_settings():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    optimizer = make_optimizer(model)
    assert type(optimizer) is torch.optim.Adam
    group = optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.98) and group["eps"] == 1e-9 and group["lr"] == 1.0
    assert group["weight_decay"] == 0
    assert {id(p) for p in group["params"]} == {id(p) for p in model.parameters()}
    other = make_optimizer(model, lr=3e-4, betas=(0.9, 0.999), eps=1e-8).param_groups[0]
    assert other["betas"] == (0.9, 0.999) and other["eps"] == 1e-8 and other["lr"] == 3e-4


@pytest.mark.parametrize("kwargs", [dict(lr=0.0), dict(eps=0.0), dict(betas=(0.9, 1.0)), dict(betas=(0.9,))])
def test_make_optimizer_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match="need lr > 0"):
        make_optimizer(torch.nn.Linear(2, 2), **kwargs)
    with pytest.raises(ValueError, match="nn.Module"):
        make_optimizer([torch.zeros(2, requires_grad=True)])


# ---------------------------------------------------------------- make_batch


def test_make_batch_shapes_padding_and_teacher_forcing():
    src = [[5, 6, 7], [8], [9, 10, 11, 12]]
    tgt = [[7, 6], [8, 8, 8, 8], []]
    b = make_batch(src, tgt, 0, 1, 2)
    assert isinstance(b, Batch)
    assert b.src.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [9, 10, 11, 12]]
    assert b.tgt_in.tolist() == [[1, 7, 6, 0, 0], [1, 8, 8, 8, 8], [1, 0, 0, 0, 0]]
    assert b.tgt_out.tolist() == [[7, 6, 2, 0, 0], [8, 8, 8, 8, 2], [2, 0, 0, 0, 0]]
    assert b.src.dtype == b.tgt_in.dtype == b.tgt_out.dtype == torch.long
    assert b.src_mask.shape == (3, 1, 1, 4) and b.tgt_mask.shape == (3, 1, 5, 5)
    assert torch.equal(b.src_mask, padding_mask(b.src, 0))
    assert torch.equal(b.tgt_mask, decoder_self_mask(b.tgt_in, 0))
    assert b.n_tokens == 3 + 5 + 1
    moved = b.to("cpu")
    assert torch.equal(moved.tgt_out, b.tgt_out) and torch.equal(moved.tgt_mask, b.tgt_mask)


def test_make_batch_takes_the_ids_of_a_vocab_not_the_vocab():
    vocab = Vocab("abc")
    ids = vocab.pad_id, vocab.bos_id, vocab.eos_id
    b = make_batch([vocab.encode("abc"), vocab.encode("b")], [vocab.encode("cb"), vocab.encode("a")], *ids)
    assert b.tgt_in[:, 0].eq(vocab.bos_id).all() and b.tgt_out[0, 2] == vocab.eos_id
    assert b.src[1, 1:].eq(vocab.pad_id).all()
    with pytest.raises(ValueError, match="pad_id must be a non-negative int"):
        make_batch([[4]], [[5]], vocab, 1, 2)


@pytest.mark.parametrize("args, message", [
    (([[4]], [[5], [6]], 0, 1, 2), "one target per source"),
    (([], [], 0, 1, 2), "one target per source"),
    (([[]], [[5]], 0, 1, 2), "source sequence is empty"),
    (([[4, 0]], [[5]], 0, 1, 2), "contains the pad id 0"),
    (([[4]], [[5, 3]], 3, 1, 2), "contains the pad id 3"),
    (([[4, -1]], [[5]], 0, 1, 2), "negative id"),
    (([[4]], [[5]], 0, None, 2), "bos_id must be a non-negative int"),
    (([[4]], [[5]], -1, 1, 2), "pad_id must be a non-negative int"),
])
def test_make_batch_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        make_batch(*args)


def tiny_model(vocab_size=9, seed=0, d_model=16, n_layers=1, dropout=0.0):
    torch.manual_seed(seed)
    config = TransformerConfig(vocab_size, vocab_size, d_model=d_model, n_heads=2, n_layers=n_layers,
                               d_ff=2 * d_model, dropout=dropout, max_len=32)
    return Transformer(config)


def test_padding_does_not_change_a_sequences_logits():
    model = tiny_model().eval()
    batch = make_batch([[3, 4, 5, 6, 7], [8, 3]], [[7, 6, 5], [3, 8, 8, 8, 8, 4]], 0, 1, 2)
    alone = make_batch([[8, 3]], [[3, 8, 8, 8, 8, 4]], 0, 1, 2)
    with torch.no_grad():
        together = model(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)
        single = model(alone.src, alone.tgt_in, alone.src_mask, alone.tgt_mask)
    torch.testing.assert_close(together[1], single[0])


# ---------------------------------------------------------------- train


def copy_batches(seed, batch_size=16, vocab_size=9):
    g = torch.Generator().manual_seed(seed)

    def next_batch():
        sources = [torch.randint(3, vocab_size, (int(torch.randint(2, 6, (1,), generator=g)),), generator=g).tolist()
                   for _ in range(batch_size)]
        return make_batch(sources, sources, 0, 1, 2)

    return next_batch


def test_training_smoke_loss_falls():
    model = tiny_model(d_model=32, dropout=0.1)
    optimizer = make_optimizer(model, betas=(0.9, 0.999))
    scheduler = noam_scheduler(optimizer, 32, warmup=20, factor=0.5)
    history = train(model, copy_batches(1), optimizer, scheduler, pad_id=0, steps=120, progress=False,
                    num_threads=1)
    assert isinstance(history, TrainingHistory) and history.steps == 120 and history.stopped_by == "steps"
    first, last = sum(history.losses[:10]) / 10, sum(history.losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)
    assert history.learning_rates == pytest.approx([noam_lr(i, 32, 20, 0.5) for i in range(1, 121)])
    assert history.tokens > 120 * 16 * 2
    assert model.training  # the mode it came in


def test_training_is_deterministic_and_restores_mode_and_threads():
    threads = torch.get_num_threads()
    runs = []
    for _ in range(2):
        model = tiny_model().eval()
        optimizer = make_optimizer(model, lr=1e-3)
        runs.append(train(model, copy_batches(2), optimizer, pad_id=0, steps=8, progress=False, num_threads=1).losses)
        assert not model.training
    assert runs[0] == runs[1]
    assert torch.get_num_threads() == threads


def test_the_loss_is_the_label_smoothed_loss_on_the_batch():
    model = tiny_model()
    batch = copy_batches(3)()
    with torch.no_grad():
        expected = label_smoothed_cross_entropy(model(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask),
                                                batch.tgt_out, 0.2, pad_id=0).item()
    history = train(model, [batch], make_optimizer(model, lr=1e-3), pad_id=0, steps=5, smoothing=0.2,
                    progress=False)
    assert history.losses == [pytest.approx(expected, rel=1e-6)]
    assert history.stopped_by == "batches" and history.tokens == batch.n_tokens


def test_evaluations_run_in_eval_mode_every_k_steps_and_at_the_end():
    model = tiny_model(dropout=0.1)
    modes = []

    def evaluate(m):
        modes.append((m.training, torch.is_grad_enabled()))
        return 0.25

    history = train(model, copy_batches(4), make_optimizer(model, lr=1e-3), pad_id=0, steps=7, eval_every=3,
                    evaluate=evaluate, progress=False)
    assert history.evaluations == [(3, 0.25), (6, 0.25), (7, 0.25)]
    assert modes == [(False, False)] * 3
    assert history.first_step_reaching(0.25) == 3 and history.first_step_reaching(0.5) is None


def test_training_stops_at_a_target_score_and_at_max_seconds():
    model = tiny_model()
    scores = iter([0.5, 0.9, 1.0, 1.0])
    history = train(model, copy_batches(5), make_optimizer(model, lr=1e-3), pad_id=0, steps=50, eval_every=2,
                    evaluate=lambda m: next(scores), target=0.9, progress=False)
    assert history.steps == 4 and history.stopped_by == "target" and history.evaluations[-1] == (4, 0.9)
    history = train(model, copy_batches(5), make_optimizer(model, lr=1e-3), pad_id=0, steps=10_000,
                    max_seconds=1e-9, progress=False)
    assert history.steps == 1 and history.stopped_by == "max_seconds"


def test_gradient_clipping_bounds_the_update():
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    before = [p.detach().clone() for p in model.parameters()]
    train(model, copy_batches(6), optimizer, pad_id=0, steps=1, clip_norm=0.01, progress=False)
    moved = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert moved <= 0.01 + 1e-6


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps must be a positive int"), (dict(eval_every=0), "eval_every must be a positive int"),
    (dict(max_seconds=0), "max_seconds must be positive"), (dict(clip_norm=-1.0), "clip_norm must be positive"),
])
def test_train_rejects_bad_settings(kwargs, message):
    model = tiny_model()
    args = dict(pad_id=0, steps=3, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        train(model, copy_batches(7), make_optimizer(model), **args)


# ---------------------------------------------------------------- beam search


@pytest.fixture(scope="module")
def sources():
    src = torch.tensor([[3, 4, 5, 6, 7, 8], [5, 5, 6, 0, 0, 0], [8, 7, 0, 0, 0, 0]])
    return src, padding_mask(src, 0)


def teacher_forced(model, src, src_mask, tokens, eos_id):
    with torch.no_grad():
        log_p = model(src, tokens[:, :-1], src_mask, subsequent_mask(tokens.shape[1] - 1)).log_softmax(-1)
    picked = log_p.gather(-1, tokens[:, 1:, None])[..., 0]
    eos = (tokens[:, 1:] == eos_id).int()
    return picked.masked_fill(eos.cumsum(-1) - eos > 0, 0.0).sum(-1)


@pytest.mark.parametrize("seed", range(3))
def test_beam_size_one_is_greedy_decoding(seed, sources):
    model = tiny_model(seed=seed).eval()
    src, mask = sources
    greedy = greedy_decode(model, src, 9, 1, 2, mask)
    tokens, scores = beam_search(model, src, 9, 1, 2, beam_size=1, src_mask=mask)
    assert tokens.shape == (3, 1, greedy.shape[1]) and torch.equal(tokens[:, 0], greedy)
    torch.testing.assert_close(scores[:, 0], teacher_forced(model, src, mask, greedy, 2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("beam_size, length_penalty", [(2, 0.0), (4, 0.0), (5, 0.6)])
def test_every_beams_score_is_its_teacher_forced_log_probability(beam_size, length_penalty, sources):
    model = tiny_model(seed=1, n_layers=2).eval()
    src, mask = sources
    tokens, scores = beam_search(model, src, 8, 1, 2, beam_size, mask, length_penalty)
    assert tokens.shape[:2] == (3, beam_size) and scores.shape == (3, beam_size)
    flat = tokens.reshape(3 * beam_size, -1)
    expected = teacher_forced(model, src.repeat_interleave(beam_size, 0), mask.repeat_interleave(beam_size, 0),
                              flat, 2)
    torch.testing.assert_close(scores.reshape(-1), expected, atol=1e-5, rtol=1e-5)
    assert all(len(set(map(tuple, row.tolist()))) == beam_size for row in tokens)  # distinct hypotheses


def generated_lengths(tokens, eos_id):
    eos = tokens[..., 1:] == eos_id
    return torch.where(eos.any(-1), eos.int().argmax(-1) + 1, tokens.shape[-1] - 1)


def test_beams_are_sorted_end_at_eos_and_respect_max_len(sources):
    model = tiny_model(seed=2).eval()
    src, mask = sources
    for max_len in (1, 2, 5, 12):
        tokens, scores = beam_search(model, src, max_len, 1, 2, 3, mask)
        assert tokens.shape[-1] <= max_len and (tokens[..., 0] == 1).all()
        if max_len > 1:
            assert (scores[:, :-1] >= scores[:, 1:]).all()  # best first
            eos = tokens[..., 1:] == 2
            ended = eos.any(-1)
            assert (ended | (tokens.shape[-1] == max_len)).all()
            after = eos.int().cumsum(-1) > 0  # from the first <eos> on, only <eos>
            assert (tokens[..., 1:][after] == 2).all()
    ranked, raw = beam_search(model, src, 12, 1, 2, 3, mask, length_penalty=1.0)
    lengths = generated_lengths(ranked, 2)
    normalised = raw / ((5.0 + lengths) / 6.0)
    assert (normalised[:, :-1] >= normalised[:, 1:] - 1e-6).all()


def test_a_finished_beam_keeps_its_score():
    class Scripted(torch.nn.Module):
        """A fake model: <eos> is the most probable token at the first step, never again."""

        def encode(self, src, src_mask=None):
            return torch.zeros(src.shape[0], src.shape[1], 4)

        def decode(self, tgt, memory, src_mask=None, tgt_mask=None):
            logits = torch.zeros(tgt.shape[0], tgt.shape[1], 5)
            logits[:, :, 2] = 3.0 if tgt.shape[1] == 1 else -3.0
            logits[:, :, 4] = 1.0
            return logits

    tokens, scores = beam_search(Scripted(), torch.tensor([3, 3]), 4, 1, 2, beam_size=2)
    log_p_first = torch.tensor([0.0, 0.0, 3.0, 0.0, 1.0]).log_softmax(0)
    assert tokens[0].tolist() == [1, 2, 2, 2] and math.isclose(scores[0].item(), log_p_first[2].item(), rel_tol=1e-6)
    assert tokens[1].tolist() == [1, 4, 4, 4] and scores[1] < scores[0]


def test_single_source_and_bad_input():
    model = tiny_model().eval()
    tokens, scores = beam_search(model, torch.tensor([3, 4, 5]), 6, 1, 2, beam_size=2)
    batched, batched_scores = beam_search(model, torch.tensor([[3, 4, 5]]), 6, 1, 2, beam_size=2)
    assert torch.equal(tokens, batched[0]) and torch.equal(scores, batched_scores[0])
    for kwargs, message in [(dict(max_len=0), "max_len must be a positive int"),
                            (dict(beam_size=0), "beam_size must be a positive int"),
                            (dict(length_penalty=-0.1), "length_penalty must be a number"),
                            (dict(beam_size=10), "exceeds the vocabulary of 9")]:
        args = dict(max_len=6, beam_size=2) | kwargs
        with pytest.raises(ValueError, match=message):
            beam_search(model, torch.tensor([[3, 4]]), bos_id=1, eos_id=2, **args)
    with pytest.raises(ValueError, match=r"src must be \(batch, src_len\)"):
        beam_search(model, torch.zeros(1, 2, 3, dtype=torch.long), 5, 1, 2)


# ---------------------------------------------------------------- evaluation helpers


def test_trim_output_and_exact_match():
    tokens = torch.tensor([[1, 5, 6, 2, 2], [1, 7, 7, 7, 7], [1, 2, 2, 2, 2]])
    assert trim_output(tokens, 1, 2) == [[5, 6], [7, 7, 7, 7], []]
    assert trim_output(torch.tensor([1, 9, 2]), 1, 2) == [[9]]
    assert exact_match([[5, 6], [7], []], [[5, 6], [7, 7], []]) == pytest.approx(2 / 3)
    assert exact_match(["ab", torch.tensor([1, 2])], ["ab", [1, 2]]) == 1.0
    with pytest.raises(ValueError, match="as many predictions"):
        exact_match([[1]], [[1], [2]])
    with pytest.raises(ValueError, match="as many predictions"):
        exact_match([], [])
    with pytest.raises(ValueError, match=r"\(batch, len\) or \(len,\)"):
        trim_output(torch.zeros(1, 2, 3), 1, 2)


def test_translate_equals_decoding_each_source_alone_and_restores_the_mode():
    model = tiny_model(seed=3, dropout=0.1)
    sources = [[3, 4, 5, 6], [7], [8, 8, 3], [5, 6]]
    outputs = translate(model, sources, pad_id=0, bos_id=1, eos_id=2, max_len=7, batch_size=3)
    assert model.training
    model.eval()
    for source, output in zip(sources, outputs):
        alone = greedy_decode(model, torch.tensor([source]), 7, 1, 2)
        assert output == trim_output(alone, 1, 2)[0]
    beam = translate(model, sources, pad_id=0, bos_id=1, eos_id=2, max_len=7, beam_size=3)
    src = make_batch(sources, sources, 0, 1, 2)
    best, _ = beam_search(model, src.src, 7, 1, 2, 3, src.src_mask)
    assert beam == trim_output(best[:, 0], 1, 2)
    with pytest.raises(ValueError, match="non-empty and free of the pad id"):
        translate(model, [[3, 0]], pad_id=0, bos_id=1, eos_id=2, max_len=5)
