"""transformer18.date_translator: batches, the translator (checks, save/load, attention), the three implementations
from one set of weights, the schedule, training."""

import datetime as dt

import pytest
import torch
from torch import nn

from transformer18.config import count_parameters
from transformer18.date_translator import (
    IMPLEMENTATIONS,
    DateTranslator,
    TorchDateModel,
    TrainingRun,
    date_batches,
    date_config,
    date_model,
    date_schedule,
    train_date_translator,
)
from transformer18.dates import make_date_data
from transformer18.model import Transformer
from transformer18.training import TrainingHistory, noam_lr


@pytest.fixture(scope="module")
def data():
    return make_date_data(seed=0, locales=("fr_FR", "zh_CN"), formats=("long",), first=dt.date(2000, 1, 1),
                          last=dt.date(2001, 12, 31))


@pytest.fixture(scope="module")
def tiny(data):
    torch.manual_seed(0)
    return DateTranslator(Transformer(date_config(data, d_model=16, n_heads=2, n_layers=1, d_ff=32)),
                          data.src_vocab, data.tgt_vocab)


def texts(batch, vocab):
    return [vocab.decode(row) for row in batch.src]


def test_batches_are_seeded_shaped_and_endless(data):
    first = next(date_batches(data.train, data.src_vocab, data.tgt_vocab, 8, seed=1))
    again = next(date_batches(data.train, data.src_vocab, data.tgt_vocab, 8, seed=1))
    other = next(date_batches(data.train, data.src_vocab, data.tgt_vocab, 8, seed=2))
    assert torch.equal(first.src, again.src) and not torch.equal(first.src, other.src)
    assert first.tgt_in.shape == first.tgt_out.shape == (8, 11)
    assert first.src_mask.shape == (8, 1, 1, first.src.shape[1]) and first.tgt_mask.shape == (8, 1, 11, 11)
    stream = date_batches(data.train, data.src_vocab, data.tgt_vocab, 64, seed=0)
    n_per_epoch = len(data.train) // 64
    seen = [next(stream) for _ in range(n_per_epoch + 2)]  # runs into the second epoch
    assert len(seen) == n_per_epoch + 2


def test_two_ranks_draw_exactly_one_processes_batch(data):
    whole = next(date_batches(data.train, data.src_vocab, data.tgt_vocab, 10, seed=3))
    halves = [next(date_batches(data.train, data.src_vocab, data.tgt_vocab, 5, seed=3, rank=r, world_size=2))
              for r in (0, 1)]
    vocab = data.src_vocab
    assert sorted(texts(halves[0], vocab) + texts(halves[1], vocab)) == sorted(texts(whole, vocab))
    assert not set(texts(halves[0], vocab)) & set(texts(halves[1], vocab))


@pytest.mark.parametrize("kwargs, match", [({"batch_size": 0}, "batch_size"), ({"rank": 2, "world_size": 2}, "rank")])
def test_batches_bad_arguments(data, kwargs, match):
    args = {"batch_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        next(date_batches(data.train, data.src_vocab, data.tgt_vocab, **args))


def test_translator_refuses_what_it_cannot_read(tiny):
    with pytest.raises(ValueError, match="never saw in training: 'ł'"):
        tiny.translate(["21 łistopada 2026"])
    with pytest.raises(ValueError, match="reads at most"):
        tiny.translate(["1" * (tiny.model.config.max_len + 1)])
    with pytest.raises(ValueError, match="non-empty"):
        tiny.translate(["  "])
    with pytest.raises(ValueError, match="list of texts"):
        tiny.translate("21 novembre 2026")
    with pytest.raises(ValueError, match="Transformer or a TorchDateModel"):
        DateTranslator(nn.Linear(2, 2), tiny.src_vocab, tiny.tgt_vocab)


def test_translate_returns_one_string_per_text_and_restores_the_mode(tiny):
    tiny.model.train()
    out = tiny.translate(["21 novembre 2001", "2001年1月2日", "3 mai 2000"], batch_size=2)
    assert len(out) == 3 and all(isinstance(o, str) and len(o) <= 11 for o in out)
    assert tiny.model.training


def test_attention_rows_are_distributions_over_the_input(tiny):
    iso, weights = tiny.attention("21 novembre 2001")
    assert weights.shape == (len(iso) + 1, len("21 novembre 2001"))
    torch.testing.assert_close(weights.sum(-1), torch.ones(len(iso) + 1))


def test_attention_maps_hold_every_layer_and_head_as_distributions(tiny):
    maps = tiny.attention_maps("21 novembre 2001")
    n_layers, n_heads = tiny.model.config.n_layers, tiny.model.config.n_heads
    rows, src_len = len(maps["iso"]) + 1, len("21 novembre 2001")
    assert maps["encoder"].shape == (n_layers, n_heads, src_len, src_len)
    assert maps["decoder"].shape == (n_layers, n_heads, rows, rows)
    assert maps["cross"].shape == (n_layers, n_heads, rows, src_len)
    for key in ("encoder", "decoder", "cross"):
        torch.testing.assert_close(maps[key].sum(-1), torch.ones(maps[key].shape[:-1]))
    assert torch.equal(maps["decoder"].triu(1), torch.zeros_like(maps["decoder"]))  # causal: nothing ahead
    iso, mean = tiny.attention("21 novembre 2001", layer=0)
    assert iso == maps["iso"] and torch.equal(mean, maps["cross"][0].mean(dim=0))


def test_attention_keeps_fused_layers_fused(data):
    translator = train_date_translator(0, data=data, steps=2, target=None, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                       eval_size=8, progress=False, implementation="fused")
    before = [m.fused for m in translator.model.modules() if hasattr(m, "fused")]
    translator.attention("3 mai 2000")
    assert before and all(before) and [m.fused for m in translator.model.modules() if hasattr(m, "fused")] == before


def test_save_and_load_round_trip(tiny, tmp_path):
    tiny.save(tmp_path / "t.pt")
    loaded = DateTranslator.load(tmp_path / "t.pt")
    assert isinstance(loaded.model, Transformer)
    for a, b in zip(tiny.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
    texts_ = ["21 novembre 2001", "2000年3月4日"]
    assert loaded.translate(texts_) == tiny.translate(texts_) and loaded.src_vocab.tokens == tiny.src_vocab.tokens


def test_load_refuses_foreign_and_mismatched_files(tiny, tmp_path):
    torch.save(tiny.model, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match="not a file written by DateTranslator.save: it holds pickled Python objects"):
        DateTranslator.load(tmp_path / "pickled.pt")
    tiny.save(tmp_path / "ok.pt")
    saved = torch.load(tmp_path / "ok.pt", weights_only=True)
    torch.save({**saved, "config": {**saved["config"], "d_ff": 64}}, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="consistent translator"):
        DateTranslator.load(tmp_path / "mismatch.pt")
    torch.save({"state_dict": saved["state_dict"]}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="found None"):
        DateTranslator.load(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("not a model")
    with pytest.raises(ValueError, match="not a file written"):
        DateTranslator.load(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError):
        DateTranslator.load(tmp_path / "missing.pt")


def test_torch_date_model_is_nn_transformer_with_embeddings(data):
    torch.manual_seed(1)
    config = date_config(data, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    model = TorchDateModel(config).eval()
    t = model.transformer
    assert isinstance(t, nn.Transformer) and t.encoder.norm is None and t.decoder.norm is None  # post-norm, §3.1
    assert sum(p.numel() for p in model.parameters()) == count_parameters(config)
    batch = next(date_batches(data.train, data.src_vocab, data.tgt_vocab, 4, seed=0))
    with torch.no_grad():
        got = model(batch.src, batch.tgt_in, batch.src_mask)
        x = t.src_embed(batch.src) * 4 + model.pe[: batch.src.shape[1]]
        y = t.tgt_embed(batch.tgt_in) * 4 + model.pe[:11]
        causal = torch.ones(11, 11, dtype=torch.bool).triu(1)
        expected = t.generator(t(x, y, tgt_mask=causal, src_key_padding_mask=batch.src == 0,
                                 memory_key_padding_mask=batch.src == 0))
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="need the course's Transformer"):
        DateTranslator(model, data.src_vocab, data.tgt_vocab).attention("3 mai 2000")


def test_one_seed_gives_the_three_implementations_the_same_weights_and_function(data):
    config = date_config(data, d_model=16, n_heads=2, n_layers=2, d_ff=32)
    models = {name: date_model(config, name, seed=3).eval() for name in IMPLEMENTATIONS}
    assert isinstance(models["explicit"], Transformer) and isinstance(models["nn.Transformer"], TorchDateModel)
    assert not any(m.fused for m in models["explicit"].modules() if hasattr(m, "fused"))
    assert all(m.fused for m in models["fused"].modules() if hasattr(m, "fused"))
    ours, theirs = models["explicit"], models["nn.Transformer"].transformer
    torch.testing.assert_close(ours.src_embed.lookup.weight, theirs.src_embed.weight, rtol=0, atol=0)
    torch.testing.assert_close(ours.generator.weight, theirs.generator.weight, rtol=0, atol=0)
    torch.testing.assert_close(ours.encoder.layers[0].feed_forward.w_1.weight, theirs.encoder.layers[0].linear1.weight,
                               rtol=0, atol=0)
    batch = next(date_batches(data.train, data.src_vocab, data.tgt_vocab, 4, seed=0))
    with torch.no_grad():
        outs = {name: m(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask) for name, m in models.items()}
    for name in ("fused", "nn.Transformer"):
        torch.testing.assert_close(outs[name], outs["explicit"], atol=1000 * torch.finfo(torch.float32).eps, rtol=0)
    again = date_model(config, "explicit", seed=3)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), ours.state_dict().values()))
    with pytest.raises(ValueError, match="implementation must be one of"):
        date_model(config, "cuda", seed=0)


def test_float64_training_of_the_two_models_agrees_step_by_step(data):
    kwargs = dict(data=data, steps=20, target=None, d_model=16, n_heads=2, n_layers=1, d_ff=32, warmup=5,
                  eval_every=20, eval_size=8, progress=False, dtype=torch.float64)
    runs = [train_date_translator(2, implementation=name, **kwargs) for name in ("explicit", "nn.Transformer")]
    assert all(p.dtype == torch.float64 for run in runs for p in run.model.parameters())
    losses = [torch.tensor(run.run.history.losses, dtype=torch.float64) for run in runs]  # (20,) each
    torch.testing.assert_close(losses[0], losses[1], rtol=1e6 * torch.finfo(torch.float64).eps, atol=0)
    assert losses[0][-1] < losses[0][0]


def test_torch_baseline_translator_saves_and_loads(data, tmp_path):
    translator = train_date_translator(0, data=data, steps=3, target=None, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                       eval_size=8, progress=False, implementation="nn.Transformer")
    assert isinstance(translator.model, TorchDateModel) and translator.run.history.steps == 3
    translator.save(tmp_path / "b.pt")
    loaded = DateTranslator.load(tmp_path / "b.pt")
    assert isinstance(loaded.model, TorchDateModel)
    assert loaded.translate(["3 mai 2000"]) == translator.translate(["3 mai 2000"])


def test_training_is_deterministic_for_a_seed(data):
    kwargs = dict(data=data, steps=12, target=None, d_model=16, n_heads=2, n_layers=1, d_ff=32, eval_every=6,
                  eval_size=16, progress=False, num_threads=1)
    first, second = train_date_translator(4, **kwargs), train_date_translator(4, **kwargs)
    assert first.run.history.losses == second.run.history.losses
    assert first.run.history.evaluations == second.run.history.evaluations
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert first.run.history.steps == 12 and [s for s, _ in first.run.history.evaluations] == [6, 12]
    assert len(first.run.eval_seconds) == 2 and 0 < first.run.eval_seconds[0] < first.run.eval_seconds[1]


def test_a_short_run_learns_something(data):
    translator = train_date_translator(0, data=data, steps=150, target=None, d_model=32, n_heads=2, n_layers=1,
                                       d_ff=64, warmup=30, eval_every=150, eval_size=64, progress=False)
    losses = translator.run.history.losses
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10


def test_training_run_timings():
    history = TrainingHistory([1.0] * 300, [0.1] * 300, [(100, 0.5), (200, 0.995), (300, 1.0)])
    run = TrainingRun(history, [1.0, 2.0, 3.0], 3.3)
    assert run.seconds_to(0.99) == 2.0 and run.seconds_to(1.01) is None
    assert run.seconds_per_step == pytest.approx(0.011)


def test_date_schedule_is_q17s_noam_schedule_with_its_peak_named():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = date_schedule(opt, 64, lr=2e-3, warmup=4)
    rates = []
    for _ in range(16):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[3] == pytest.approx(2e-3) and max(rates) == rates[3]  # the peak, at step = warmup
    assert rates[:4] == pytest.approx([5e-4, 1e-3, 1.5e-3, 2e-3])  # linear warm-up
    assert rates[15] == pytest.approx(2e-3 * (4 / 16) ** 0.5)  # then ∝ step^-0.5
    factor = 2e-3 * (64 * 4) ** 0.5
    assert rates == pytest.approx([noam_lr(i, 64, 4, factor) for i in range(1, 17)])
    for bad in (dict(lr=0.0, warmup=4), dict(lr=1e-3, warmup=0), dict(lr=1e-3, warmup=2.5)):
        with pytest.raises(ValueError):
            date_schedule(opt, 64, **bad)


def test_batch_size_must_split_over_processes(data, monkeypatch):
    import transformer18.date_translator as t
    monkeypatch.setattr(t, "_rank_and_world", lambda: (0, 3))
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        t.train_date_translator(0, data=data, batch_size=64, steps=1, progress=False)
