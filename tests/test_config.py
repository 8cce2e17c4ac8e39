import dataclasses

import pytest
import torch
from torch import nn

from transformer18.config import (
    TransformerConfig,
    count_parameters,
    parameter_breakdown,
    torch_reference_model,
)


def counted(config):
    with torch.device("meta"):
        return sum(p.numel() for p in torch_reference_model(config).parameters())


def test_the_papers_base_and_big_models():
    assert count_parameters(TransformerConfig.base()) == 63_082_496
    assert count_parameters(TransformerConfig.big()) == 214_245_376


def test_paper_presets():
    base, big = TransformerConfig.base(), TransformerConfig.big()
    assert (base.d_model, base.n_heads, base.n_layers, base.d_ff, base.dropout) == (512, 8, 6, 2048, 0.1)
    assert (big.d_model, big.n_heads, big.n_layers, big.d_ff, big.dropout) == (1024, 16, 6, 4096, 0.3)
    assert base.share_embeddings and base.src_vocab_size == base.tgt_vocab_size == 37000
    assert base.d_k == 64 and big.d_k == 64
    assert TransformerConfig.base(n_layers=2).n_layers == 2


@pytest.mark.parametrize("config", [
    TransformerConfig.base(),
    TransformerConfig.big(),
    TransformerConfig(1000, 700, d_model=64, n_heads=4, n_layers=2, d_ff=128),
    TransformerConfig(50, 60, d_model=48, n_heads=3, n_layers=3, d_ff=80, norm_first=True),
    TransformerConfig.base(100, d_model=32, n_heads=2, n_layers=1, d_ff=16, norm_first=True),
])
def test_formula_equals_a_real_torch_nn_model(config):
    assert count_parameters(config) == counted(config)


def test_breakdown_adds_up_and_heads_do_not_matter():
    config = TransformerConfig.base()
    assert sum(parameter_breakdown(config).values()) == count_parameters(config)
    counts = {count_parameters(dataclasses.replace(config, n_heads=h)) for h in (1, 2, 4, 8, 16, 32)}
    assert len(counts) == 1


def test_stacks_equal_nn_transformer_less_its_final_norms():
    with torch.device("meta"):
        torch_total = sum(p.numel() for p in nn.Transformer(batch_first=True).parameters())
    base = TransformerConfig.base()
    stacks = count_parameters(base) - parameter_breakdown(base)["embeddings"]
    assert torch_total == stacks + 2 * 2 * 512
    assert count_parameters(dataclasses.replace(base, norm_first=True)) == count_parameters(base) + 2 * 2 * 512


def test_sharing_ties_the_three_matrices():
    model = torch_reference_model(TransformerConfig.base(50, d_model=8, n_heads=2, n_layers=1, d_ff=16))
    assert model.src_embed.weight is model.tgt_embed.weight is model.generator.weight
    assert model.generator.bias is None


def test_unshared_embeddings_are_three_matrices():
    shared = TransformerConfig.base(100, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    unshared = dataclasses.replace(shared, share_embeddings=False)
    assert count_parameters(unshared) - count_parameters(shared) == 2 * 100 * 16


@pytest.mark.parametrize("kwargs, message", [
    (dict(d_model=100, n_heads=8), "not divisible by n_heads"),
    (dict(d_model=0), "d_model must be a positive int"),
    (dict(n_layers=-1), "n_layers must be a positive int"),
    (dict(d_ff=2.5), "d_ff must be a positive int"),
    (dict(n_heads=True), "n_heads must be a positive int"),
    (dict(dropout=1.0), "dropout must lie in"),
    (dict(dropout=-0.1), "dropout must lie in"),
    (dict(max_len=0), "max_len must be a positive int"),
])
def test_bad_configurations_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerConfig(100, 100, **kwargs)


def test_sharing_needs_one_vocabulary():
    with pytest.raises(ValueError, match="share_embeddings needs"):
        TransformerConfig(100, 200, share_embeddings=True)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TransformerConfig.base().d_model = 7
