"""Checkers for Q17, part 1 (the model assembled): the encoder layer's forward pass, the two masks of a
training batch, and the decoder layer's forward pass in both wirings."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._core import CheckFailed, checker, expect, expect_close

__all__ = ["check_encoder_layer_forward", "check_make_masks", "check_decoder_layer_forward"]

D_MODEL, N_HEADS, D_FF = 12, 3, 20


def _scramble_(module: nn.Module, seed: int) -> nn.Module:
    """Random values for every parameter, norm scales near 1 and non-zero shifts, so no default hides a slip."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p, generator=generator)
            elif "norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5, generator=generator)
            else:
                p.uniform_(-0.5, 0.5, generator=generator)
    return module.eval()


def _no_forward(layer: nn.Module) -> nn.Module:
    """Make ``layer(...)`` fail: the exercise is to write the forward pass from the layer's parts."""

    def forbidden(*args, **kwargs):
        raise CheckFailed("Write the forward pass from the layer's parts (self_attn, feed_forward, the norms) "
                          "instead of calling layer(...) itself.")

    layer.forward = forbidden
    return layer


def _random(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def _first_match(out: torch.Tensor, expected: torch.Tensor, wrong: dict[str, Callable[[], torch.Tensor]]) -> None:
    """Raise the hint of the first wrong variant that ``out`` equals (and the right answer does not)."""
    for hint, variant in wrong.items():
        try:
            value = variant()
        except (RuntimeError, ValueError):  # this variant cannot run on this case's shapes
            continue
        if not _close(value, expected) and _close(out, value):
            raise CheckFailed(hint)


# ------------------------------------------------------------------------------------- encoder layer


@checker("encoder_layer_forward")
def check_encoder_layer_forward(encoder_layer_forward) -> None:
    """Check ``encoder_layer_forward(layer, x, mask)`` (post-norm) against ``nn.TransformerEncoderLayer``."""
    from ..masks import padding_mask
    from ..model import EncoderLayer

    cases = [(0, torch.tensor([[5, 6, 7, 8, 9], [5, 6, 0, 0, 0]])),
             (1, torch.tensor([[4, 9, 0, 0, 0, 0, 0], [7, 7, 7, 7, 7, 7, 7], [8, 5, 6, 4, 0, 0, 0]]))]
    for seed, tokens in cases:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            reference = nn.TransformerEncoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, batch_first=True)
        reference = _scramble_(reference, 10 + seed)
        layer = _no_forward(EncoderLayer.from_torch(reference).eval())
        mask = padding_mask(tokens, 0)  # (batch, 1, 1, len)
        x = _random((*tokens.shape, D_MODEL), 20 + seed)  # (batch, len, d_model)
        with torch.no_grad():
            expected = reference(x, src_key_padding_mask=~mask[:, 0, 0])  # (batch, len, d_model)
            out = encoder_layer_forward(layer, x.clone(), mask)
        expect(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}")
        expect(out.shape == expected.shape, f"the output has shape {tuple(out.shape)}, expected (batch, len, "
                                            f"d_model) = {tuple(expected.shape)}")
        if _close(out, expected):
            continue

        def attn(h, m=mask):
            return layer.self_attn(h, h, h, m)

        ffn, n1, n2 = layer.feed_forward, layer.norm1, layer.norm2
        residual = "A residual connection is missing: every sub-layer's input is added back to its output " \
                   "before the norm, norm(x + sublayer(x))"
        with torch.no_grad():
            _first_match(out, expected, {
                "That is the pre-norm wiring, x + Sublayer(LayerNorm(x)). The paper's layer is post-norm: add "
                "first, then normalise, LayerNorm(x + Sublayer(x)).":
                    lambda: (lambda z: z + ffn(n2(z)))(x + attn(n1(x))),
                f"{residual} (around both sub-layers).": lambda: n2(ffn(n1(attn(x)))),
                f"{residual} (around the self-attention).": lambda: (lambda z: n2(z + ffn(z)))(n1(attn(x))),
                f"{residual} (around the FFN).": lambda: n2(ffn(n1(x + attn(x)))),
                "The norm is applied once for both sub-layers: each sub-layer has its own Add & Norm, norm1 "
                "after the self-attention and norm2 after the FFN.":
                    lambda: (lambda z: n2(z + ffn(z)))(x + attn(x)),
                "The norm is applied once for both sub-layers (norm1 only): add norm2 after the FFN's residual.":
                    lambda: (lambda z: z + ffn(z))(n1(x + attn(x))),
                "You used norm1 twice: norm1 and norm2 are different LayerNorms with their own scale and shift; "
                "norm2 belongs to the FFN.": lambda: (lambda z: n1(z + ffn(z)))(n1(x + attn(x))),
                "You used norm2 twice: norm1 belongs to the self-attention, norm2 to the FFN.":
                    lambda: (lambda z: n2(z + ffn(z)))(n2(x + attn(x))),
                "norm1 and norm2 are swapped: norm1 follows the self-attention, norm2 the FFN.":
                    lambda: (lambda z: n1(z + ffn(z)))(n2(x + attn(x))),
                "The mask was not passed: call self_attn(x, x, x, mask), or real tokens attend to the pads.":
                    lambda: (lambda z: n2(z + ffn(z)))(n1(x + attn(x, None))),
                "The mask is inverted: True means *may attend* in this course; pass it as it is.":
                    lambda: (lambda z: n2(z + ffn(z)))(n1(x + attn(x, ~mask))),
                "The FFN comes before the attention: in the paper's layer (§3.1) self-attention is first, then "
                "the FFN.": lambda: (lambda z: n2(z + attn(z)))(n1(x + ffn(x))),
                "The FFN comes before the attention (and with it the norms): self-attention and norm1 first, "
                "then the FFN and norm2.": lambda: (lambda z: n1(z + attn(z)))(n2(x + ffn(x))),
            })
        expect_close(out, expected, "your output differs from nn.TransformerEncoderLayer's")


# ------------------------------------------------------------------------------------- make_masks


def _mask_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(src, tgt, pad_id): right-padded with pad 0, then pad id 3 with real ids 0–2; src_len ≠ tgt_len."""
    first = (torch.tensor([[5, 6, 7, 8, 9], [5, 6, 0, 0, 0]]), torch.tensor([[1, 4, 5, 6], [1, 7, 0, 0]]), 0)
    second = (torch.tensor([[0, 1, 9, 3, 3, 3], [2, 7, 4, 1, 0, 3], [5, 3, 3, 3, 3, 3]]),
              torch.tensor([[1, 0, 2, 5, 3, 3, 3], [1, 9, 8, 7, 6, 5, 4], [1, 2, 3, 3, 3, 3, 3]]), 3)
    return [first, second]


def _check_bool(mask, name: str) -> None:
    expect(isinstance(mask, torch.Tensor), f"{name} must be a tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise CheckFailed(f"{name} must be a bool mask (True = may attend), not {mask.dtype}.")


@checker("make_masks")
def check_make_masks(make_masks) -> None:
    """Check ``make_masks(src, tgt, pad_id) -> (src_mask (batch, 1, 1, src_len), tgt_mask (batch, 1, tgt_len,
    tgt_len))``, bool with True = may attend."""
    for src, tgt, pad_id in _mask_cases():
        originals = src.clone(), tgt.clone()
        result = make_masks(src, tgt, pad_id)
        expect(torch.equal(src, originals[0]) and torch.equal(tgt, originals[1]),
               "Do not modify src or tgt in place.")
        expect(isinstance(result, tuple) and len(result) == 2, "return a pair (src_mask, tgt_mask)")
        src_mask, tgt_mask = result
        _check_bool(src_mask, "src_mask")
        _check_bool(tgt_mask, "tgt_mask")
        batch, src_len = src.shape
        tgt_len = tgt.size(1)
        if tuple(src_mask.shape) == (batch, 1, tgt_len, tgt_len) and tuple(tgt_mask.shape) == (batch, 1, 1, src_len):
            raise CheckFailed("The masks are swapped: return (src_mask, tgt_mask), source first.")
        _check_src_mask(src_mask, src, tgt, pad_id)
        _check_tgt_mask(tgt_mask, tgt, src, pad_id)


def _check_src_mask(mask: torch.Tensor, src: torch.Tensor, tgt: torch.Tensor, pad_id: int) -> None:
    (batch, src_len), tgt_len = src.shape, tgt.size(1)
    shape = tuple(mask.shape)
    if shape == (batch, 1, src_len, 1):
        raise CheckFailed("src_mask is laid over the queries, (batch, 1, src_len, 1): it must hide the pad *keys*, "
                          "so put src_len last, (batch, 1, 1, src_len).")
    if shape == (batch, 1, src_len, src_len):
        raise CheckFailed("src_mask (batch, 1, src_len, src_len) fits the encoder's self-attention but not the "
                          "cross-attention, whose queries are tgt_len target positions: keep the query dimension "
                          "1, (batch, 1, 1, src_len).")
    if shape == (batch, 1, 1, tgt_len) and tgt_len != src_len:
        raise CheckFailed("src_mask has the target's length: build it from src, not tgt.")
    if shape == (batch, src_len):
        raise CheckFailed("src_mask (batch, src_len) does not broadcast over heads and queries: return (batch, 1, 1, "
                          "src_len).")
    expect(shape == (batch, 1, 1, src_len), f"src_mask must have shape (batch, 1, 1, src_len) = "
                                            f"{(batch, 1, 1, src_len)}, got {shape}")
    real = src != pad_id  # (batch, src_len)
    got = mask[:, 0, 0]
    if torch.equal(got, real):
        return
    if torch.equal(got, ~real):
        raise CheckFailed("src_mask is inverted: True must mark the real tokens (may attend), False the pads.")
    if pad_id != 0 and torch.equal(got, src != 0):
        raise CheckFailed(f"Use the pad_id argument (here {pad_id}) instead of a hard-coded 0.")
    raise CheckFailed(f"src_mask[:, 0, 0] should be src != pad_id = {real.tolist()}, got {got.tolist()}")


def _check_tgt_mask(mask: torch.Tensor, tgt: torch.Tensor, src: torch.Tensor, pad_id: int) -> None:
    batch, tgt_len = tgt.shape
    shape = tuple(mask.shape)
    if shape == (batch, 1, 1, tgt_len):
        raise CheckFailed("tgt_mask is the target's padding mask without causality: AND it with the causal mask "
                          "(lower triangle) so that no position sees a later one, (batch, 1, tgt_len, tgt_len).")
    if shape == (1, 1, tgt_len, tgt_len):
        raise CheckFailed("tgt_mask is the causal mask without padding, the same for every sentence: AND it with the "
                          "target's padding mask, (batch, 1, tgt_len, tgt_len).")
    if shape == (batch, tgt_len, tgt_len):
        raise CheckFailed("Keep a dimension for the heads: tgt_mask must be (batch, 1, tgt_len, tgt_len).")
    if shape == (batch, 1, src.size(1), src.size(1)) and src.size(1) != tgt_len:
        raise CheckFailed("tgt_mask has the source's length: build it from tgt, not src.")
    expect(shape == (batch, 1, tgt_len, tgt_len), f"tgt_mask must have shape (batch, 1, tgt_len, tgt_len) = "
                                                  f"{(batch, 1, tgt_len, tgt_len)}, got {shape}")
    grid = mask[:, 0]  # (batch, tgt_len, tgt_len)
    keys = (tgt != pad_id)[:, None, :]  # (batch, 1, tgt_len)
    lower = torch.ones(tgt_len, tgt_len, dtype=torch.bool).tril()  # (tgt_len, tgt_len)
    expected = keys & lower
    if torch.equal(grid, expected):
        return
    wrong = {
        "tgt_mask is inverted: True means *may attend*; you returned the blocked pairs (nn.Transformer's "
        "polarity).": ~expected,
        "tgt_mask has no causality: a position can see later target tokens. AND the padding mask with the lower "
        "triangle (diagonal included).": keys.expand(batch, tgt_len, tgt_len),
        "tgt_mask has no padding: pad keys are visible. AND the causal mask with tgt != pad_id on the keys.":
            lower.expand(batch, tgt_len, tgt_len),
        "Combine padding and causality with & (AND), not | (OR).": keys | lower,
        "tgt_mask uses the upper triangle: query i (row) may see keys 0..i, the lower triangle.": keys & lower.T,
        "tgt_mask hides the diagonal: a position may see itself.": keys & lower.tril(diagonal=-1),
        "tgt_mask hides pad queries (rows) instead of pad keys (columns).": (tgt != pad_id)[:, :, None] & lower,
    }
    if pad_id != 0:
        wrong[f"Use the pad_id argument (here {pad_id}) instead of a hard-coded 0."] = (tgt != 0)[:, None, :] & lower
    for hint, variant in wrong.items():
        if torch.equal(grid, variant):
            raise CheckFailed(hint)
    raise CheckFailed(f"tgt_mask[:, 0] should be\n{expected.int()}\ngot\n{grid.int()}")


# ------------------------------------------------------------------------------------- decoder layer


def _decoder_run(layer, x, memory, src_mask, tgt_mask, *, pre: bool, order=("self", "cross", "ffn"),
                 self_mask="tgt", cross_mask="src", cross_from_memory=False, cross_module="cross_attn",
                 norm_memory=False) -> torch.Tensor:
    """The decoder layer with switches that reproduce common mistakes."""
    masks = {"tgt": tgt_mask, "src": src_mask, None: None}
    cross = getattr(layer, cross_module)

    def self_sub(h):
        return layer.self_attn(h, h, h, masks[self_mask])

    def cross_sub(h):
        m = layer.norm2(memory) if norm_memory else memory
        return cross(m, h, h, masks[cross_mask]) if cross_from_memory else cross(h, m, m, masks[cross_mask])

    subs = {"self": (self_sub, layer.norm1), "cross": (cross_sub, layer.norm2), "ffn": (layer.feed_forward, layer.norm3)}
    for name in order:
        sublayer, norm = subs[name]
        x = x + sublayer(norm(x)) if pre else norm(x + sublayer(x))
    return x


@checker("decoder_layer_forward")
def check_decoder_layer_forward(decoder_layer_forward) -> None:
    """Check ``decoder_layer_forward(layer, x, memory, src_mask, tgt_mask)`` against
    ``nn.TransformerDecoderLayer``, post-norm and pre-norm."""
    from ..masks import decoder_self_mask, padding_mask
    from ..model import DecoderLayer

    # Equal lengths first, so that swapped masks or a swapped query still run and can be named.
    cases = [  # (seed, norm_first, source tokens, target tokens)
        (0, False, [[5, 6, 7, 8, 0, 0], [4, 5, 6, 7, 8, 9], [9, 0, 0, 0, 0, 0]],
         [[1, 4, 5, 6, 7, 8], [1, 7, 0, 0, 0, 0], [1, 4, 4, 4, 0, 0]]),
        (1, True, [[5, 6, 7, 8, 0, 0], [4, 5, 6, 7, 8, 9], [9, 0, 0, 0, 0, 0]],
         [[1, 4, 5, 6, 7, 8], [1, 7, 0, 0, 0, 0], [1, 4, 4, 4, 0, 0]]),
        (2, True, [[5, 6, 7, 8, 9, 4, 0], [5, 6, 0, 0, 0, 0, 0]], [[1, 4, 5, 6, 7], [1, 7, 8, 0, 0]]),
        (3, False, [[5, 6, 7, 8, 9, 4, 0], [5, 6, 0, 0, 0, 0, 0]], [[1, 4, 5, 6, 7], [1, 7, 8, 0, 0]]),
    ]
    for seed, norm_first, src_tokens, tgt_tokens in cases:
        src, tgt = torch.tensor(src_tokens), torch.tensor(tgt_tokens)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            reference = nn.TransformerDecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0, batch_first=True,
                                                   norm_first=norm_first)
        reference = _scramble_(reference, 30 + seed)
        layer = _no_forward(DecoderLayer.from_torch(reference).eval())
        src_mask, tgt_mask = padding_mask(src, 0), decoder_self_mask(tgt, 0)
        x = _random((*tgt.shape, D_MODEL), 40 + seed)  # (batch, tgt_len, d_model)
        memory = _random((*src.shape, D_MODEL), 50 + seed)  # (batch, src_len, d_model)
        with torch.no_grad():
            expected = reference(x, memory, tgt_mask=~torch.ones(tgt.size(1), tgt.size(1), dtype=torch.bool).tril(),
                                 tgt_key_padding_mask=tgt == 0, memory_key_padding_mask=src == 0)
            try:
                out = decoder_layer_forward(layer, x.clone(), memory.clone(), src_mask, tgt_mask)
            except NotImplementedError:
                raise
            except (RuntimeError, ValueError) as error:
                raise CheckFailed(f"Your function raised {type(error).__name__}: {error}. Check the shapes: the "
                                  "cross-attention takes its queries from x (tgt_len positions) and its keys and "
                                  "values from memory (src_len positions), with src_mask (batch, 1, 1, src_len); the "
                                  "self-attention takes tgt_mask (batch, 1, tgt_len, tgt_len).") from None
        expect(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}")
        expect(out.shape == expected.shape, f"the output has shape {tuple(out.shape)}, expected (batch, tgt_len, "
                                            f"d_model) = {tuple(expected.shape)}")
        if _close(out, expected):
            continue

        def run(**switches):
            return lambda: _decoder_run(layer, x, memory, src_mask, tgt_mask, **{"pre": norm_first, **switches})

        wiring = ("This layer has norm_first=True: use the pre-norm wiring, x + Sublayer(LayerNorm(x)). Read "
                  "layer.norm_first." if norm_first else
                  "This layer has norm_first=False: use the post-norm wiring, LayerNorm(x + Sublayer(x)). Read "
                  "layer.norm_first.")
        wrong = {
            wiring: run(pre=not norm_first),
            "The self-attention comes first, then the cross-attention, then the FFN (§3.1): the decoder looks "
            "at what it has written before it consults the source.": run(order=("cross", "self", "ffn")),
            "The masks are swapped: tgt_mask (causal and target padding) guards the self-attention, src_mask "
            "(source padding) the cross-attention, whose keys are source positions.":
                run(self_mask="src", cross_mask="tgt"),
            "The self-attention has no mask: pass tgt_mask, or every position sees the later target tokens.":
                run(self_mask=None),
            "The cross-attention has no mask: pass src_mask, or the target attends to the source's pads.":
                run(cross_mask=None),
            "The cross-attention's roles are swapped: its queries come from the decoder (x), its keys and "
            "values from the memory: cross_attn(x, memory, memory, src_mask).": run(cross_from_memory=True),
            "Use layer.cross_attn for the cross-attention: it has its own weights, distinct from self_attn's.":
                run(cross_module="self_attn"),
        }
        if norm_first:
            wrong["A pre-norm layer normalises only the sub-layer's input x, not the memory: the encoder's final "
                  "norm has already normalised it."] = run(norm_memory=True)
        with torch.no_grad():
            _first_match(out, expected, wrong)
        expect_close(out, expected, f"your output differs from nn.TransformerDecoderLayer's (norm_first={norm_first})")
