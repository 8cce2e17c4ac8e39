"""The Q17 (part 1) checkers accept the reference solutions and reject known-wrong code with the right hint."""

import pytest
import torch
from conftest import rejects

from transformer18 import checks
from transformer18.masks import decoder_self_mask, padding_mask
from transformer18.norm import sublayer_connection

# ---------------------------------------------------------------- encoder_layer_forward


def encoder_layer_forward(layer, x, mask):
    z = layer.norm1(x + layer.self_attn(x, x, x, mask))
    return layer.norm2(z + layer.feed_forward(z))


def encoder_with_dropout(layer, x, mask):
    z = layer.norm1(x + layer.dropout1(layer.self_attn(x, x, x, mask)))
    return layer.norm2(z + layer.dropout2(layer.feed_forward(z)))


def encoder_with_sublayer_connection(layer, x, mask):
    z = sublayer_connection(x, lambda h: layer.self_attn(h, h, h, mask), layer.norm1)
    return sublayer_connection(z, layer.feed_forward, layer.norm2)


def test_encoder_layer_forward_accepts_the_reference(accepts):
    accepts(checks.check_encoder_layer_forward, encoder_layer_forward, encoder_with_dropout,
            encoder_with_sublayer_connection)


def _encoder(attn_first=True, pre=False, residual=(True, True), norms=("norm1", "norm2"), mask_fn=lambda m: m):
    def forward(layer, x, mask):
        m = mask_fn(mask)
        subs = [lambda h: layer.self_attn(h, h, h, m), layer.feed_forward]
        if not attn_first:
            subs = subs[::-1]
        for sub, norm_name, add in zip(subs, norms, residual):
            norm = getattr(layer, norm_name) if norm_name else (lambda h: h)
            if pre:
                x = x + sub(norm(x))
            else:
                x = norm(x + sub(x) if add else sub(x))
        return x
    return forward


@pytest.mark.parametrize("wrong, hint", [
    (_encoder(pre=True), "pre-norm wiring"),
    (_encoder(residual=(False, False)), r"residual connection is missing.*\(around both sub-layers\)"),
    (_encoder(residual=(False, True)), r"residual connection is missing.*\(around the self-attention\)"),
    (_encoder(residual=(True, False)), r"residual connection is missing.*\(around the FFN\)"),
    (_encoder(norms=(None, "norm2")), "applied once for both sub-layers: each sub-layer has its own"),
    (_encoder(norms=("norm1", None)), r"applied once for both sub-layers \(norm1 only\)"),
    (_encoder(norms=("norm1", "norm1")), "You used norm1 twice"),
    (_encoder(norms=("norm2", "norm2")), "You used norm2 twice"),
    (_encoder(norms=("norm2", "norm1")), "norm1 and norm2 are swapped"),
    (_encoder(mask_fn=lambda m: None), "mask was not passed"),
    (_encoder(mask_fn=lambda m: ~m), "mask is inverted"),
    (_encoder(attn_first=False), "FFN comes before the attention: in the paper's layer"),
    (_encoder(attn_first=False, norms=("norm2", "norm1")), r"FFN comes before the attention \(and with it the norms\)"),
    (lambda layer, x, mask: layer(x, mask), "Write the forward pass from the layer's parts"),
    (lambda layer, x, mask: encoder_layer_forward(layer, x, mask)[:, 0], "the output has shape"),
    (lambda layer, x, mask: encoder_layer_forward(layer, x, mask).tolist(), "return a tensor"),
    (lambda layer, x, mask: encoder_layer_forward(layer, x, mask) * 1.01, "differs from nn.TransformerEncoderLayer"),
])
def test_encoder_layer_forward_rejects_wrong_code(wrong, hint):
    with torch.no_grad():
        rejects(checks.check_encoder_layer_forward, wrong, hint)


# ---------------------------------------------------------------- make_masks


def make_masks(src, tgt, pad_id):
    src_mask = (src != pad_id)[:, None, None, :]
    causal = torch.ones(tgt.size(1), tgt.size(1), dtype=torch.bool).tril()
    return src_mask, (tgt != pad_id)[:, None, None, :] & causal


def test_make_masks_accepts_the_reference(accepts):
    accepts(checks.check_make_masks, make_masks,
            lambda src, tgt, pad_id: (padding_mask(src, pad_id), decoder_self_mask(tgt, pad_id)))


def causal(tgt):
    return torch.ones(tgt.size(1), tgt.size(1), dtype=torch.bool).tril()


def keys(t, pad_id):
    return (t != pad_id)[:, None, None, :]


def src_in_place(src, tgt, pad_id):
    src[src == pad_id] = -1
    return make_masks(src, tgt, -1)


@pytest.mark.parametrize("wrong, hint", [
    (lambda s, t, p: (keys(s, p), keys(t, p).expand(-1, -1, t.size(1), -1)), "tgt_mask has no causality"),
    (lambda s, t, p: (keys(s, p), keys(t, p)), "target's padding mask without causality"),
    (lambda s, t, p: (keys(s, p), causal(t)[None, None].expand(t.size(0), 1, -1, -1)), "tgt_mask has no padding"),
    (lambda s, t, p: (keys(s, p), causal(t)[None, None]), "causal mask without padding"),
    (lambda s, t, p: ((s != p)[:, None, :, None], make_masks(s, t, p)[1]), "src_mask is laid over the queries"),
    (lambda s, t, p: (keys(s, p) & (s != p)[:, None, :, None], make_masks(s, t, p)[1]),
     "fits the encoder's self-attention but not the cross-attention"),
    (lambda s, t, p: (~keys(s, p), make_masks(s, t, p)[1]), "src_mask is inverted"),
    (lambda s, t, p: (keys(s, p), ~make_masks(s, t, p)[1]), "tgt_mask is inverted"),
    (lambda s, t, p: make_masks(s, t, p)[::-1], "The masks are swapped"),
    (lambda s, t, p: make_masks(s, t, 0), "instead of a hard-coded 0"),
    (lambda s, t, p: (keys(s, 0), make_masks(s, t, p)[1]), "instead of a hard-coded 0"),
    (lambda s, t, p: (keys(t, p), make_masks(s, t, p)[1]), "build it from src, not tgt"),
    (lambda s, t, p: (keys(s, p), make_masks(t, s, p)[1]), "build it from tgt, not src"),
    (lambda s, t, p: (s != p, make_masks(s, t, p)[1]), "does not broadcast over heads and queries"),
    (lambda s, t, p: (keys(s, p), make_masks(s, t, p)[1][:, 0]), "Keep a dimension for the heads"),
    (lambda s, t, p: (keys(s, p), keys(t, p) | causal(t)), r"\| \(OR\)"),
    (lambda s, t, p: (keys(s, p), keys(t, p) & causal(t).T), "upper triangle"),
    (lambda s, t, p: (keys(s, p), keys(t, p) & causal(t).tril(-1)), "hides the diagonal"),
    (lambda s, t, p: (keys(s, p), (t != p)[:, None, :, None] & causal(t)), "hides pad queries"),
    (lambda s, t, p: (keys(s, p).float(), make_masks(s, t, p)[1]), "src_mask must be a bool mask"),
    (lambda s, t, p: (keys(s, p), make_masks(s, t, p)[1].long()), "tgt_mask must be a bool mask"),
    (lambda s, t, p: keys(s, p), r"return a pair \(src_mask, tgt_mask\)"),
    (src_in_place, "Do not modify src or tgt in place"),
    (lambda s, t, p: (keys(s, p), torch.zeros_like(make_masks(s, t, p)[1])), "tgt_mask\\[:, 0\\] should be"),
])
def test_make_masks_rejects_wrong_code(wrong, hint):
    rejects(checks.check_make_masks, wrong, hint)


# ---------------------------------------------------------------- decoder_layer_forward


def decoder_layer_forward(layer, x, memory, src_mask, tgt_mask):
    sublayers = [(lambda h: layer.self_attn(h, h, h, tgt_mask), layer.norm1),
                 (lambda h: layer.cross_attn(h, memory, memory, src_mask), layer.norm2),
                 (layer.feed_forward, layer.norm3)]
    for sublayer, norm in sublayers:
        x = x + sublayer(norm(x)) if layer.norm_first else norm(x + sublayer(x))
    return x


def decoder_with_sublayer_connection(layer, x, memory, src_mask, tgt_mask):
    x = sublayer_connection(x, lambda h: layer.self_attn(h, h, h, tgt_mask), layer.norm1, layer.dropout1,
                            layer.norm_first)
    x = sublayer_connection(x, lambda h: layer.cross_attn(h, memory, memory, src_mask), layer.norm2, layer.dropout2,
                            layer.norm_first)
    return sublayer_connection(x, layer.feed_forward, layer.norm3, layer.dropout3, layer.norm_first)


def test_decoder_layer_forward_accepts_the_reference(accepts):
    accepts(checks.check_decoder_layer_forward, decoder_layer_forward, decoder_with_sublayer_connection)


def _decoder(pre=None, order=("self", "cross", "ffn"), self_mask="tgt", cross_mask="src", swap_roles=False,
             cross_module="cross_attn", norm_memory=False):
    def forward(layer, x, memory, src_mask, tgt_mask):
        masks = {"tgt": tgt_mask, "src": src_mask, None: None}
        first = layer.norm_first if pre is None else pre
        cross = getattr(layer, cross_module)
        mem = layer.norm2(memory) if norm_memory and layer.norm_first else memory

        def cross_sub(h):
            return cross(mem, h, h, masks[cross_mask]) if swap_roles else cross(h, mem, mem, masks[cross_mask])

        subs = {"self": (lambda h: layer.self_attn(h, h, h, masks[self_mask]), layer.norm1),
                "cross": (cross_sub, layer.norm2), "ffn": (layer.feed_forward, layer.norm3)}
        for name in order:
            sub, norm = subs[name]
            x = x + sub(norm(x)) if first else norm(x + sub(x))
        return x
    return forward


@pytest.mark.parametrize("wrong, hint", [
    (_decoder(pre=False), "This layer has norm_first=True: use the pre-norm wiring"),
    (_decoder(pre=True), "This layer has norm_first=False: use the post-norm wiring"),
    (_decoder(order=("cross", "self", "ffn")), "self-attention comes first, then the cross-attention"),
    (_decoder(self_mask="src", cross_mask="tgt"), "The masks are swapped"),
    (_decoder(self_mask=None), "The self-attention has no mask"),
    (_decoder(cross_mask=None), "The cross-attention has no mask"),
    (_decoder(swap_roles=True), "cross-attention's roles are swapped"),
    (_decoder(cross_module="self_attn"), "Use layer.cross_attn for the cross-attention"),
    (_decoder(norm_memory=True), "normalises only the sub-layer's input x, not the memory"),
    (lambda layer, x, memory, s, t: layer(x, memory, s, t), "Write the forward pass from the layer's parts"),
    (lambda layer, x, memory, s, t: layer.feed_forward(memory.transpose(1, 2)), "Your function raised"),
    (lambda layer, x, memory, s, t: decoder_layer_forward(layer, x, memory, s, t)[:, :-1], "the output has shape"),
    (lambda layer, x, memory, s, t: decoder_layer_forward(layer, x, memory, s, t) + 0.01,
     "differs from nn.TransformerDecoderLayer"),
])
def test_decoder_layer_forward_rejects_wrong_code(wrong, hint):
    with torch.no_grad():
        rejects(checks.check_decoder_layer_forward, wrong, hint)
