"""Checkers for Q17, part 1 (the model assembled): the encoder layer's forward pass, the two masks of a
training batch, and the decoder layer's forward pass in both wirings."""

from __future__ import annotations

import torch
from torch import nn

from ..masks import decoder_self_mask, padding_mask
from ..model import DecoderLayer, EncoderLayer
from ._core import CheckFailed, call, checker, diagnose, expect, expect_tensor, unchanged

__all__ = ["check_encoder_layer_forward", "check_make_masks", "check_decoder_layer_forward"]

D_MODEL, N_HEADS, D_FF = 12, 3, 20


def _scramble_(module: nn.Module, seed: int) -> nn.Module:
    """Random values for every parameter, norm scales near 1 and non-zero shifts, so no default hides a slip
    (also used by tests/test_model.py and tests/test_ablations.py)."""
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


def _layers(torch_kind: type[nn.Module], kind: type[nn.Module], seed: int, **options):
    """A scrambled PyTorch layer (no dropout) and the course's ``kind`` copied from it, whose ``layer(...)``
    fails: the exercise is to write the forward pass from its parts."""
    with torch.random.fork_rng(devices=[]):  # the values below replace the initial ones: keep the global RNG
        reference = torch_kind(D_MODEL, N_HEADS, D_FF, dropout=0.0, batch_first=True, **options)
    reference = _scramble_(reference, seed)
    layer = kind.from_torch(reference).eval()

    def forbidden(*args, **kwargs):
        raise CheckFailed("Write the forward pass from the layer's parts (self_attn, feed_forward, the norms) "
                          "instead of calling layer(...) itself.")

    layer.forward = forbidden
    return reference, layer


def _random(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _wire(x, sublayers, norms, *, pre: bool = False, residual=(True, True, True)) -> torch.Tensor:
    """x through the sub-layers, each with its norm: post-norm norm(x + sublayer(x)), pre-norm x + sublayer(norm(x))."""
    for sublayer, norm, add in zip(sublayers, norms, residual):
        x = x + sublayer(norm(x)) if pre else norm(x + sublayer(x) if add else sublayer(x))
    return x


def _output_check(out, expected, what: str) -> None:
    expect_tensor(out)
    expect(out.shape == expected.shape, f"the output has shape {tuple(out.shape)}, expected {what} = "
                                        f"{tuple(expected.shape)}")


# ------------------------------------------------------------------------------------- encoder layer


@checker("encoder_layer_forward")
def check_encoder_layer_forward(encoder_layer_forward) -> None:
    """Check ``encoder_layer_forward(layer, x, mask)`` (post-norm) against ``nn.TransformerEncoderLayer``."""
    cases = [(0, torch.tensor([[5, 6, 7, 8, 9], [5, 6, 0, 0, 0]])),
             (1, torch.tensor([[4, 9, 0, 0, 0, 0, 0], [7, 7, 7, 7, 7, 7, 7], [8, 5, 6, 4, 0, 0, 0]]))]
    for seed, tokens in cases:
        reference, layer = _layers(nn.TransformerEncoderLayer, EncoderLayer, 10 + seed)
        mask = padding_mask(tokens, 0)  # (batch, 1, 1, len)
        x = _random((*tokens.shape, D_MODEL), 20 + seed)  # (batch, len, d_model)
        with torch.no_grad():
            expected = reference(x, src_key_padding_mask=~mask[:, 0, 0])  # (batch, len, d_model)
            out = encoder_layer_forward(layer, x.clone(), mask)
        _output_check(out, expected, "(batch, len, d_model)")

        def attn(m):
            return lambda h: layer.self_attn(h, h, h, m)

        ffn, n1, n2, none = layer.feed_forward, layer.norm1, layer.norm2, nn.Identity()

        def run(sublayers=(attn(mask), ffn), norms=(n1, n2), **options):
            return lambda: _wire(x, sublayers, norms, **options)

        residual = ("A residual connection is missing: every sub-layer's input is added back to its output before "
                    "the norm, norm(x + sublayer(x))")
        once = "The norm is applied once for both sub-layers"
        with torch.no_grad():
            diagnose(out, expected, [
                (run(pre=True), "That is the pre-norm wiring, x + Sublayer(LayerNorm(x)). The paper's layer is "
                                "post-norm: add first, then normalise, LayerNorm(x + Sublayer(x))."),
                (run(residual=(False, False)), f"{residual} (around both sub-layers)."),
                (run(residual=(False, True)), f"{residual} (around the self-attention)."),
                (run(residual=(True, False)), f"{residual} (around the FFN)."),
                (run(norms=(none, n2)), f"{once}: each sub-layer has its own Add & Norm, norm1 after the "
                                        "self-attention and norm2 after the FFN."),
                (run(norms=(n1, none)), f"{once} (norm1 only): add norm2 after the FFN's residual."),
                (run(norms=(n1, n1)), "You used norm1 twice: norm1 and norm2 are different LayerNorms with their own "
                                      "scale and shift; norm2 belongs to the FFN."),
                (run(norms=(n2, n2)), "You used norm2 twice: norm1 belongs to the self-attention, norm2 to the FFN."),
                (run(norms=(n2, n1)), "norm1 and norm2 are swapped: norm1 follows the self-attention, norm2 the FFN."),
                (run((attn(None), ffn)), "The mask was not passed: call self_attn(x, x, x, mask), or real tokens "
                                         "attend to the pads."),
                (run((attn(~mask), ffn)), "The mask is inverted: True means *may attend* in this course; pass it as "
                                          "it is."),
                (run((ffn, attn(mask))), "The FFN comes before the attention: in the paper's layer (§3.1) "
                                         "self-attention is first, then the FFN."),
                (run((ffn, attn(mask)), (n2, n1)), "The FFN comes before the attention (and with it the norms): "
                                                   "self-attention and norm1 first, then the FFN and norm2."),
            ], "your output differs from nn.TransformerEncoderLayer's")


# ------------------------------------------------------------------------------------- make_masks


def _mask_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(src, tgt, pad_id): right-padded with pad 0, then pad id 3 with real ids 0–2; src_len ≠ tgt_len."""
    first = (torch.tensor([[5, 6, 7, 8, 9], [5, 6, 0, 0, 0]]), torch.tensor([[1, 4, 5, 6], [1, 7, 0, 0]]), 0)
    second = (torch.tensor([[0, 1, 9, 3, 3, 3], [2, 7, 4, 1, 0, 3], [5, 3, 3, 3, 3, 3]]),
              torch.tensor([[1, 0, 2, 5, 3, 3, 3], [1, 9, 8, 7, 6, 5, 4], [1, 2, 3, 3, 3, 3, 3]]), 3)
    return [first, second]


@checker("make_masks")
def check_make_masks(make_masks) -> None:
    """Check ``make_masks(src, tgt, pad_id) -> (src_mask (batch, 1, 1, src_len), tgt_mask (batch, 1, tgt_len,
    tgt_len))``, bool with True = may attend."""
    for src, tgt, pad_id in _mask_cases():
        with unchanged("Do not modify src or tgt in place.", src, tgt):
            result = make_masks(src, tgt, pad_id)
        expect(isinstance(result, tuple) and len(result) == 2, "return a pair (src_mask, tgt_mask)")
        for name, mask in zip(("src_mask", "tgt_mask"), result):
            expect(isinstance(mask, torch.Tensor), f"{name} must be a tensor, got {type(mask).__name__}")
            expect(mask.dtype == torch.bool, f"{name} must be a bool mask (True = may attend), not {mask.dtype}.")
        src_mask, tgt_mask = result
        (batch, src_len), tgt_len = src.shape, tgt.size(1)
        expect((tuple(src_mask.shape), tuple(tgt_mask.shape)) != ((batch, 1, tgt_len, tgt_len), (batch, 1, 1, src_len)),
               "The masks are swapped: return (src_mask, tgt_mask), source first.")
        _check_src_mask(src_mask, src, tgt_len, pad_id)
        _check_tgt_mask(tgt_mask, tgt, src_len, pad_id)


def _check_src_mask(mask: torch.Tensor, src: torch.Tensor, tgt_len: int, pad_id: int) -> None:
    batch, src_len = src.shape
    shape = (batch, 1, 1, src_len)
    diagnose(tuple(mask.shape), shape, [
        ((batch, 1, src_len, 1), "src_mask is laid over the queries, (batch, 1, src_len, 1): it must hide the pad "
                                 "*keys*, so put src_len last, (batch, 1, 1, src_len)."),
        ((batch, 1, src_len, src_len), "src_mask (batch, 1, src_len, src_len) fits the encoder's self-attention but "
                                       "not the cross-attention, whose queries are tgt_len target positions: keep "
                                       "the query dimension 1, (batch, 1, 1, src_len)."),
        ((batch, 1, 1, tgt_len), "src_mask has the target's length: build it from src, not tgt."),
        ((batch, src_len), "src_mask (batch, src_len) does not broadcast over heads and queries: return (batch, 1, 1, "
                           "src_len)."),
    ], f"src_mask must have shape (batch, 1, 1, src_len) = {shape}, got {tuple(mask.shape)}")
    real, got = src != pad_id, mask[:, 0, 0]  # (batch, src_len)
    diagnose(got, real, [
        (~real, "src_mask is inverted: True must mark the real tokens (may attend), False the pads."),
        (src != 0, f"Use the pad_id argument (here {pad_id}) instead of a hard-coded 0."),
    ], f"src_mask[:, 0, 0] should be src != pad_id = {real.tolist()}, got {got.tolist()}")


def _check_tgt_mask(mask: torch.Tensor, tgt: torch.Tensor, src_len: int, pad_id: int) -> None:
    batch, tgt_len = tgt.shape
    shape = (batch, 1, tgt_len, tgt_len)
    diagnose(tuple(mask.shape), shape, [
        ((batch, 1, 1, tgt_len), "tgt_mask is the target's padding mask without causality: AND it with the causal "
                                 "mask (lower triangle) so that no position sees a later one, (batch, 1, tgt_len, "
                                 "tgt_len)."),
        ((1, 1, tgt_len, tgt_len), "tgt_mask is the causal mask without padding, the same for every sentence: AND it "
                                   "with the target's padding mask, (batch, 1, tgt_len, tgt_len)."),
        ((batch, tgt_len, tgt_len), "Keep a dimension for the heads: tgt_mask must be (batch, 1, tgt_len, tgt_len)."),
        ((batch, 1, src_len, src_len), "tgt_mask has the source's length: build it from tgt, not src."),
    ], f"tgt_mask must have shape (batch, 1, tgt_len, tgt_len) = {shape}, got {tuple(mask.shape)}")
    grid = mask[:, 0]  # (batch, tgt_len, tgt_len)
    keys = (tgt != pad_id)[:, None, :]  # (batch, 1, tgt_len)
    lower = torch.ones(tgt_len, tgt_len, dtype=torch.bool).tril()  # (tgt_len, tgt_len)
    expected = keys & lower
    diagnose(grid, expected, [
        (~expected, "tgt_mask is inverted: True means *may attend*; you returned the blocked pairs (nn.Transformer's "
                    "polarity)."),
        (keys.expand(batch, tgt_len, tgt_len), "tgt_mask has no causality: a position can see later target tokens. "
                                               "AND the padding mask with the lower triangle (diagonal included)."),
        (lower.expand(batch, tgt_len, tgt_len), "tgt_mask has no padding: pad keys are visible. AND the causal mask "
                                                "with tgt != pad_id on the keys."),
        (keys | lower, "Combine padding and causality with & (AND), not | (OR)."),
        (keys & lower.T, "tgt_mask uses the upper triangle: query i (row) may see keys 0..i, the lower triangle."),
        (keys & lower.tril(diagonal=-1), "tgt_mask hides the diagonal: a position may see itself."),
        ((tgt != pad_id)[:, :, None] & lower, "tgt_mask hides pad queries (rows) instead of pad keys (columns)."),
        ((tgt != 0)[:, None, :] & lower, f"Use the pad_id argument (here {pad_id}) instead of a hard-coded 0."),
    ], f"tgt_mask[:, 0] should be\n{expected.int()}\ngot\n{grid.int()}")


# ------------------------------------------------------------------------------------- decoder layer


@checker("decoder_layer_forward")
def check_decoder_layer_forward(decoder_layer_forward) -> None:
    """Check ``decoder_layer_forward(layer, x, memory, src_mask, tgt_mask)`` against
    ``nn.TransformerDecoderLayer``, post-norm and pre-norm."""
    # Equal lengths first, so that swapped masks or a swapped query still run and can be named.
    square = [[5, 6, 7, 8, 0, 0], [4, 5, 6, 7, 8, 9], [9, 0, 0, 0, 0, 0]], [[1, 4, 5, 6, 7, 8], [1, 7, 0, 0, 0, 0],
                                                                          [1, 4, 4, 4, 0, 0]]
    oblong = [[5, 6, 7, 8, 9, 4, 0], [5, 6, 0, 0, 0, 0, 0]], [[1, 4, 5, 6, 7], [1, 7, 8, 0, 0]]
    for seed, norm_first, (src_tokens, tgt_tokens) in [(0, False, square), (1, True, square), (2, True, oblong),
                                                       (3, False, oblong)]:
        src, tgt = torch.tensor(src_tokens), torch.tensor(tgt_tokens)
        reference, layer = _layers(nn.TransformerDecoderLayer, DecoderLayer, 30 + seed, norm_first=norm_first)
        src_mask, tgt_mask = padding_mask(src, 0), decoder_self_mask(tgt, 0)
        x = _random((*tgt.shape, D_MODEL), 40 + seed)  # (batch, tgt_len, d_model)
        memory = _random((*src.shape, D_MODEL), 50 + seed)  # (batch, src_len, d_model)
        with torch.no_grad():
            expected = reference(x, memory, tgt_mask=~torch.ones(tgt.size(1), tgt.size(1), dtype=torch.bool).tril(),
                                 tgt_key_padding_mask=tgt == 0, memory_key_padding_mask=src == 0)
            out = call(decoder_layer_forward, layer, x.clone(), memory.clone(), src_mask, tgt_mask, errors={
                (RuntimeError, ValueError): lambda error: (
                    f"Your function raised {type(error).__name__}: {error}. Check the shapes: the cross-attention "
                    "takes its queries from x (tgt_len positions) and its keys and values from memory (src_len "
                    "positions), with src_mask (batch, 1, 1, src_len); the self-attention takes tgt_mask (batch, 1, "
                    "tgt_len, tgt_len).")})
        _output_check(out, expected, "(batch, tgt_len, d_model)")

        def attend(mask=tgt_mask):
            return lambda h: layer.self_attn(h, h, h, mask)

        def consult(mask=src_mask, module=layer.cross_attn, mem=memory, swap=False):
            return lambda h: module(mem, h, h, mask) if swap else module(h, mem, mem, mask)

        ffn, n1, n2, n3 = layer.feed_forward, layer.norm1, layer.norm2, layer.norm3

        def run(sublayers, norms=(n1, n2, n3), pre=norm_first):
            return lambda: _wire(x, sublayers, norms, pre=pre)

        wiring = "pre-norm wiring, x + Sublayer(LayerNorm(x))" if norm_first else \
            "post-norm wiring, LayerNorm(x + Sublayer(x))"
        with torch.no_grad():
            diagnose(out, expected, [
                (run((attend(), consult(), ffn), pre=not norm_first),
                 f"This layer has norm_first={norm_first}: use the {wiring}. Read layer.norm_first."),
                (run((consult(), attend(), ffn), (n2, n1, n3)),
                 "The self-attention comes first, then the cross-attention, then the FFN (§3.1): the decoder looks at "
                 "what it has written before it consults the source."),
                (run((attend(src_mask), consult(tgt_mask), ffn)),
                 "The masks are swapped: tgt_mask (causal and target padding) guards the self-attention, src_mask "
                 "(source padding) the cross-attention, whose keys are source positions."),
                (run((attend(None), consult(), ffn)), "The self-attention has no mask: pass tgt_mask, or every "
                                                      "position sees the later target tokens."),
                (run((attend(), consult(None), ffn)), "The cross-attention has no mask: pass src_mask, or the target "
                                                      "attends to the source's pads."),
                (run((attend(), consult(swap=True), ffn)),
                 "The cross-attention's roles are swapped: its queries come from the decoder (x), its keys and values "
                 "from the memory: cross_attn(x, memory, memory, src_mask)."),
                (run((attend(), consult(module=layer.self_attn), ffn)),
                 "Use layer.cross_attn for the cross-attention: it has its own weights, distinct from self_attn's."),
                *([(run((attend(), consult(mem=n2(memory)), ffn)),
                    "A pre-norm layer normalises only the sub-layer's input x, not the memory: the encoder's final "
                    "norm has already normalised it.")] if norm_first else []),
            ], f"your output differs from nn.TransformerDecoderLayer's (norm_first={norm_first})")
