"""The Q18 checkers accept the reference solutions and reject every known-wrong variant with its hint."""

import pytest
import torch
from conftest import keeps_rng, rejects

from transformer18 import checks
from transformer18.ablations import ablate

# ---------------------------------------------------------------- encoder_layer_without_residual


def reference(layer, x, mask):
    return layer.norm2(layer.feed_forward(layer.norm1(layer.self_attn(x, x, x, mask))))


def test_no_residual_accepts_the_reference_and_the_ablation(accepts):
    accepts(checks.check_no_residual_encoder_layer, reference,
            lambda layer, x, mask: ablate(layer, "no residual")(x, mask))


def test_no_residual_leaves_the_global_rng_alone(accepts):
    keeps_rng(accepts, checks.check_no_residual_encoder_layer, reference)


def attn(layer, x, mask):
    return layer.self_attn(x, x, x, mask)


def in_place(layer, x, mask):
    out = reference(layer, x, mask)
    x.zero_()
    return out


@pytest.mark.parametrize("wrong, hint", [
    (lambda layer, x, mask: layer(x, mask), "That is the full layer, residual connections included"),
    (lambda layer, x, mask: layer.norm2(layer.feed_forward(layer.norm1(x + attn(layer, x, mask)))),
     "kept the residual connection around self-attention"),
    (lambda layer, x, mask: (lambda y: layer.norm2(y + layer.feed_forward(y)))(layer.norm1(attn(layer, x, mask))),
     "kept the residual connection around the feed-forward network"),
    (lambda layer, x, mask: layer.feed_forward(attn(layer, x, mask)), "Keep the layer normalisations"),
    (lambda layer, x, mask: layer.norm2(layer.feed_forward(attn(layer, x, mask))), "Keep the layer normalisations"),
    (lambda layer, x, mask: layer.feed_forward(layer.norm1(attn(layer, x, mask))), "Keep the layer normalisations"),
    (lambda layer, x, mask: layer.feed_forward(layer.norm2(attn(layer, layer.norm1(x), mask))),
     "The paper's layer is post-norm"),
    (lambda layer, x, mask: layer.norm1(layer.feed_forward(layer.norm1(attn(layer, x, mask)))),
     "Each sub-layer has its own norm"),
    (lambda layer, x, mask: layer.norm2(layer.feed_forward(layer.norm2(attn(layer, x, mask)))),
     "Each sub-layer has its own norm"),
    (lambda layer, x, mask: layer.norm1(layer.feed_forward(layer.norm2(attn(layer, x, mask)))),
     "Each sub-layer has its own norm"),
    (lambda layer, x, mask: layer.norm1(attn(layer, x, mask)), "Don't skip the feed-forward sub-layer"),
    (lambda layer, x, mask: layer.norm2(layer.norm1(attn(layer, x, mask))), "Don't skip the feed-forward sub-layer"),
    (lambda layer, x, mask: reference(layer, x, None), "Pass the mask to self-attention"),
    (lambda layer, x, mask: layer.norm2(layer.feed_forward(layer.norm1(
        layer.self_attn(x, layer.norm1(x), layer.norm1(x), mask)))), "query, key and value are all x"),
    (in_place, "Do not modify x in place"),
    (lambda layer, x, mask: reference(layer, x, mask).tolist(), "return a tensor"),
    (lambda layer, x, mask: reference(layer, x, mask)[:, :-1], r"return \(batch, len, d_model\)"),
    (lambda layer, x, mask: reference(layer, x, mask) * 1.01, "differs from norm2"),
])
def test_no_residual_rejects_wrong_code(wrong, hint):
    rejects(checks.check_no_residual_encoder_layer, wrong, hint)


# ---------------------------------------------------------------- attention_weights_bytes


def weights_bytes(batch, n_heads, q_len, k_len, dtype):
    return batch * n_heads * q_len * k_len * torch.empty((), dtype=dtype).element_size()


def test_attention_bytes_accepts_the_reference_and_variants(accepts):
    accepts(checks.check_attention_weights_bytes, weights_bytes,
            lambda b, h, q, k, dtype: torch.empty(b, h, q, k, dtype=dtype).nbytes,
            lambda b, h, q, k, dtype: b * h * q * k * dtype.itemsize,
            lambda b, h, q, k, dtype: torch.tensor(weights_bytes(b, h, q, k, dtype)))


@pytest.mark.parametrize("wrong, hint", [
    (lambda b, h, q, k, dtype: 8 * weights_bytes(b, h, q, k, dtype), "You counted bits"),
    (lambda b, h, q, k, dtype: b * h * q * k, "That is the number of elements"),
    (lambda b, h, q, k, dtype: b * h * q * k * 4, "Bytes per element depend on the dtype"),
    (lambda b, h, q, k, dtype: weights_bytes(b, 1, q, k, dtype), "Count every head"),
    (lambda b, h, q, k, dtype: weights_bytes(1, h, q, k, dtype), "Count every sequence of the batch"),
    (lambda b, h, q, k, dtype: weights_bytes(b, h, q, q, dtype), "The weights are q_len × k_len"),
    (lambda b, h, q, k, dtype: weights_bytes(b, h, k, k, dtype), "The weights are q_len × k_len"),
    (lambda b, h, q, k, dtype: float(weights_bytes(b, h, q, k, dtype)), "return an int, not a float"),
    (lambda b, h, q, k, dtype: str(weights_bytes(b, h, q, k, dtype)), "return an int"),
    (lambda b, h, q, k, dtype: weights_bytes(b, h, q, k, dtype) + 1, r"should be 840 bytes, got 841"),
])
def test_attention_bytes_rejects_wrong_code(wrong, hint):
    rejects(checks.check_attention_weights_bytes, wrong, hint)
