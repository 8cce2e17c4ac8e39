import pytest
import torch
from torch import nn

from transformer18.embedding import TokenEmbedding, Vocab
from transformer18.masks import padding_mask
from transformer18.multihead import MultiHeadAttention
from transformer18.norm import LayerNorm, sublayer_connection

# ---------------------------------------------------------------- LayerNorm


def random_pair(d_model: int, eps: float, seed: int) -> tuple[LayerNorm, nn.LayerNorm]:
    g = torch.Generator().manual_seed(seed)
    reference = nn.LayerNorm(d_model, eps=eps)
    with torch.no_grad():
        reference.weight.copy_(torch.randn(d_model, generator=g))
        reference.bias.copy_(torch.randn(d_model, generator=g))
    ours = LayerNorm(d_model, eps=eps)
    ours.load_state_dict(reference.state_dict())
    return ours, reference


@pytest.mark.parametrize("eps", [1e-5, 1e-3, 0.1, 1.0])
@pytest.mark.parametrize("seed, shape", [(0, (2, 5, 12)), (1, (3, 7)), (2, (2, 3, 4, 10)), (3, (1, 2, 3)),
                                         (4, (5, 512))])
def test_equals_torch_layer_norm_forward_and_backward(seed, shape, eps):
    ours, reference = random_pair(shape[-1], eps, seed)
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(shape, generator=g) * (torch.rand(shape[:-1] + (1,), generator=g) * 2.9 + 0.1) + 2
    upstream = torch.randn(shape, generator=g)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ours, out_ref = ours(x_ours), reference(x_ref)
    torch.testing.assert_close(out_ours, out_ref)
    (out_ours * upstream).sum().backward()
    (out_ref * upstream).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad)
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad)
    torch.testing.assert_close(ours.bias.grad, reference.bias.grad)


def test_equals_torch_in_float64():
    ours, reference = random_pair(9, 1e-5, 0)
    ours.double(), reference.double()
    x = torch.randn(4, 6, 9, dtype=torch.float64)
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-12, atol=1e-12)


def test_parameters_are_named_weight_and_bias_and_start_at_one_and_zero():
    norm = LayerNorm(12)
    assert [name for name, _ in norm.named_parameters()] == ["weight", "bias"]
    assert torch.equal(norm.weight, torch.ones(12)) and torch.equal(norm.bias, torch.zeros(12))
    assert norm.state_dict().keys() == nn.LayerNorm(12).state_dict().keys()
    nn.LayerNorm(12).load_state_dict(norm.state_dict())  # and back: same names, same shapes
    assert repr(norm) == "LayerNorm(12, eps=1e-05)"


def test_hand_computed_token():
    norm = LayerNorm(8)
    token = torch.tensor([[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]])  # mean 5, biased variance 4
    torch.testing.assert_close(norm(token), torch.tensor([[-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0]]))
    with torch.no_grad():
        norm.weight.fill_(2.0)
        norm.bias.fill_(1.0)
    torch.testing.assert_close(norm(token), torch.tensor([[-2.0, 0.0, 0.0, 0.0, 1.0, 1.0, 3.0, 5.0]]))


def test_uses_the_biased_variance_and_eps_inside_the_root():
    x = torch.randn(3, 4, 6) * 0.01  # variance near eps: the two slips would show
    eps = 1e-4
    out = LayerNorm(6, eps=eps)(x)
    mean = x.mean(-1, keepdim=True)
    biased_inside = (x - mean) / torch.sqrt(x.var(-1, correction=0, keepdim=True) + eps)
    torch.testing.assert_close(out, biased_inside)
    unbiased = (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + eps)
    outside = (x - mean) / (x.std(-1, correction=0, keepdim=True) + eps)
    assert not torch.allclose(out, unbiased, rtol=1e-3, atol=1e-3)
    assert not torch.allclose(out, outside, rtol=1e-3, atol=1e-3)


def test_every_token_gets_mean_zero_and_variance_one():
    out = LayerNorm(16)(torch.randn(3, 7, 16) * 5 + 3)
    torch.testing.assert_close(out.mean(-1), torch.zeros(3, 7), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, correction=0), torch.ones(3, 7), atol=1e-4, rtol=0)


@pytest.mark.parametrize("a, b", [(1000.0, 0.0), (0.3, 0.0), (3.0, -50.0)])
def test_invariant_to_each_tokens_scale_and_offset(a, b):
    norm, _ = random_pair(10, 1e-5, 1)
    x = torch.randn(2, 5, 10)
    torch.testing.assert_close(norm(a * x + b), norm(x), rtol=1e-3, atol=1e-3)


def test_a_constant_token_stays_finite():
    norm = LayerNorm(5)
    out = norm(torch.full((1, 2, 5), 7.0))
    assert torch.isfinite(out).all() and torch.equal(out, torch.zeros(1, 2, 5))


def test_output_of_a_sentence_does_not_depend_on_its_batch_mates_or_padding():
    """Layer norm works per token: the same sentence gives the same bits in any batch, however padded."""
    sentence = "attention is all you need"
    batches = [[sentence], [sentence, "a much longer sentence that forces a lot of padding"],
               [sentence, "hi", "short"], ["layer norm", sentence, "per token"]]
    vocab = Vocab.from_texts(sum(batches, []))
    torch.manual_seed(0)
    embed = TokenEmbedding(len(vocab), 16, padding_idx=vocab.pad_id)
    norm, _ = random_pair(16, 1e-5, 2)
    outputs = []
    with torch.no_grad():
        for texts in batches:
            ids = vocab.pad_batch([vocab.encode(t) for t in texts])
            outputs.append(norm(embed(ids))[texts.index(sentence), : len(sentence)])
    for out in outputs[1:]:
        assert torch.equal(out, outputs[0])
    # batch normalisation, by contrast, changes with the batch
    bn = nn.BatchNorm1d(16, affine=False, track_running_stats=False)
    with torch.no_grad():
        first = [bn(embed(vocab.pad_batch([vocab.encode(t) for t in texts])).transpose(1, 2)).transpose(1, 2)
                 [texts.index(sentence), : len(sentence)] for texts in batches[1:3]]
    assert not torch.allclose(first[0], first[1], atol=1e-2)


@pytest.mark.parametrize("d_model", [0, -3, 2.5, True, "12"])
def test_bad_d_model_is_a_value_error(d_model):
    with pytest.raises(ValueError, match="d_model must be a positive int"):
        LayerNorm(d_model)


@pytest.mark.parametrize("eps", [0.0, -1e-5, float("nan")])
def test_bad_eps_is_a_value_error(eps):
    with pytest.raises(ValueError, match="eps must be positive"):
        LayerNorm(12, eps=eps)


@pytest.mark.parametrize("shape", [(2, 5, 10), (12, 3), ()])
def test_wrong_last_dimension_is_a_value_error(shape):
    with pytest.raises(ValueError, match="expects a last dimension of d_model=12"):
        LayerNorm(12)(torch.randn(shape))


# ---------------------------------------------------------------- sublayer_connection


@pytest.fixture
def parts():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 12)
    sublayer = nn.Sequential(nn.Linear(12, 12), nn.Tanh())
    norm, _ = random_pair(12, 1e-5, 3)
    return x, sublayer, norm


def test_post_norm_is_norm_of_the_sum(parts):
    x, sublayer, norm = parts
    torch.testing.assert_close(sublayer_connection(x, sublayer, norm), norm(x + sublayer(x)))
    torch.testing.assert_close(sublayer_connection(x, sublayer, norm, norm_first=False), norm(x + sublayer(x)))


def test_pre_norm_normalises_only_the_sublayer_input(parts):
    x, sublayer, norm = parts
    torch.testing.assert_close(sublayer_connection(x, sublayer, norm, norm_first=True), x + sublayer(norm(x)))


@pytest.mark.parametrize("norm_first", [False, True])
def test_dropout_is_applied_to_the_sublayer_output_before_the_sum(parts, norm_first):
    x, sublayer, norm = parts
    dropout = nn.Dropout(0.4).train()
    torch.manual_seed(5)
    got = sublayer_connection(x, sublayer, norm, dropout, norm_first=norm_first)
    torch.manual_seed(5)
    expected = x + dropout(sublayer(norm(x))) if norm_first else norm(x + dropout(sublayer(x)))
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, sublayer_connection(x, sublayer, norm, norm_first=norm_first))


def test_post_norm_output_is_normalised_and_pre_norm_output_is_not(parts):
    x, sublayer, _ = parts
    unit = LayerNorm(12)
    post = sublayer_connection(x, sublayer, unit)
    pre = sublayer_connection(x, sublayer, unit, norm_first=True)
    torch.testing.assert_close(post.var(-1, correction=0), torch.ones(2, 5), atol=1e-4, rtol=0)
    assert not torch.allclose(pre.var(-1, correction=0), torch.ones(2, 5), atol=0.05)


def test_shape_changing_sublayer_is_a_value_error(parts):
    x, _, norm = parts
    with pytest.raises(ValueError, match="equal shapes"):
        sublayer_connection(x, nn.Linear(12, 7), norm)


def test_norm_first_must_be_a_bool(parts):
    x, sublayer, norm = parts
    with pytest.raises(ValueError, match="norm_first must be True or False"):
        sublayer_connection(x, sublayer, norm, norm_first="pre")


class Block(nn.Module):
    def __init__(self, layer: nn.TransformerEncoderLayer):
        super().__init__()
        self.self_attn = MultiHeadAttention.from_torch(layer.self_attn)
        self.linear1, self.linear2 = layer.linear1, layer.linear2
        self.norm1, self.norm2 = LayerNorm(layer.linear1.in_features), LayerNorm(layer.linear1.in_features)
        self.norm1.load_state_dict(layer.norm1.state_dict())
        self.norm2.load_state_dict(layer.norm2.state_dict())
        self.norm_first = layer.norm_first

    def forward(self, x, mask):
        x = sublayer_connection(x, lambda y: self.self_attn(y, y, y, mask), self.norm1, norm_first=self.norm_first)
        ffn = lambda y: self.linear2(torch.relu(self.linear1(y)))  # noqa: E731
        return sublayer_connection(x, ffn, self.norm2, norm_first=self.norm_first)


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_block_equals_torch_encoder_layer_in_both_wirings(norm_first):
    torch.manual_seed(1)
    layer = nn.TransformerEncoderLayer(12, 3, dim_feedforward=20, dropout=0.0, batch_first=True,
                                       norm_first=norm_first)
    with torch.no_grad():
        for ln in (layer.norm1, layer.norm2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.normal_()
    block = Block(layer)
    mask = padding_mask(torch.tensor([[4, 5, 6, 7, 8], [4, 5, 6, 0, 0]]), pad_id=0)
    x = torch.randn(2, 5, 12)
    torch.testing.assert_close(block(x, mask), layer(x, src_key_padding_mask=~mask[:, 0, 0]))


@pytest.mark.parametrize("shape", [(2, 5, 12), (3, 64), (1, 2, 3, 8)])
def test_fused_path_equals_the_explicit_formula_forward_and_backward(shape):
    g = torch.Generator().manual_seed(len(shape))
    explicit, fused = LayerNorm(shape[-1]), LayerNorm(shape[-1], fused=True)
    with torch.no_grad():
        explicit.weight.copy_(torch.randn(shape[-1], generator=g))
        explicit.bias.copy_(torch.randn(shape[-1], generator=g))
    fused.load_state_dict(explicit.state_dict())
    x = (torch.randn(shape, generator=g) * 4 + 2).requires_grad_()
    outs = [m(x) for m in (explicit, fused)]
    grads = [torch.autograd.grad(o.pow(2).sum(), (x, m.weight, m.bias)) for o, m in zip(outs, (explicit, fused))]
    torch.testing.assert_close(outs[1], outs[0])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_fused_must_be_a_bool_and_checks_the_width_too():
    with pytest.raises(ValueError, match="fused must be True or False"):
        LayerNorm(8, fused=1)
    with pytest.raises(ValueError, match="last dimension of d_model=8"):
        LayerNorm(8, fused=True)(torch.randn(2, 3, 5))
