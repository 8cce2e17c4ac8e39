"""Checkers for Q5 (input embeddings): the one-hot lookup, padding a batch, scores from a tied matrix."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._core import call, checker, diagnose, expect, expect_close, expect_tensor, seeded, unchanged

__all__ = ["check_one_hot_lookup", "check_pad_batch", "check_tied_logits"]


def _said(hint: str):
    """The hint, followed by what PyTorch said."""
    return lambda error: f"{hint} (PyTorch said: {error})"


# ---------------------------------------------------------------- one_hot_lookup


@checker("one_hot_lookup")
def check_one_hot_lookup(one_hot_lookup) -> None:
    """Check ``one_hot_lookup(ids, weight) -> (batch, len, d_model)`` against ``F.embedding``."""
    # (seed, vocab_size, d_model, batch, len, ids below): a square matrix first, so that a transposed
    # weight gives values to compare instead of a shape error; then ids that miss the last rows.
    for seed, vocab_size, d_model, batch, length, high in [(0, 7, 7, 2, 5, 7), (1, 11, 6, 3, 4, 9),
                                                          (2, 13, 5, 2, 6, 13)]:
        g = torch.Generator().manual_seed(seed)
        weight = torch.randn(vocab_size, d_model, generator=g)  # (vocab_size, d_model)
        ids = torch.randint(0, high, (batch, length), generator=g)  # (batch, len)
        ids[0, 0], ids[-1, -1] = high - 1, 0  # the largest allowed id and 0 both occur
        expected = F.embedding(ids, weight)  # (batch, len, d_model)
        shape_hint = (f"The one-hot vectors need vocab_size = weight.shape[0] = {vocab_size} entries "
                      f"(pass num_classes=weight.shape[0]: without it F.one_hot uses the largest id + 1, and "
                      f"the sequence length {length} is not the vocabulary size either), and they multiply "
                      f"weight (vocab_size, d_model) itself, not weight.T.")
        out = call(one_hot_lookup, ids.clone(), weight.clone(), errors={
            "num_classes": _said(f"one_hot needs num_classes = vocab_size = weight.shape[0] = {vocab_size}, not "
                                 f"the sequence length ({length})."),
            "dtype": _said("F.one_hot returns integers (torch.long): convert the one-hot tensor with "
                           ".to(weight.dtype) before multiplying it by the float matrix."),
            RuntimeError: _said(shape_hint),
        })
        expect_tensor(out)
        expect(out.is_floating_point(), f"return the float embeddings, one d_model-vector per token; got a "
                                        f"{out.dtype} tensor of shape {tuple(out.shape)}")
        diagnose(out, expected, [
            (lambda: vocab_size == d_model and F.embedding(ids, weight.T), "weight is (vocab_size, d_model): "
             "multiply the one-hot vectors by weight itself, not weight.T."),
            (F.one_hot(ids, vocab_size).to(out.dtype), "You returned the one-hot vectors; multiply them by weight."),
            (expected * math.sqrt(d_model), "This exercise is the bare lookup: don't multiply by √d_model here; the "
                                            "scale comes in TokenEmbedding."),
        ], "your embeddings differ from F.embedding(ids, weight)",
            shape="return one d_model-vector per token: shape (batch, len, d_model)")


# ---------------------------------------------------------------- pad_batch


def _padded(sequences, pad_id: int, left: bool = False) -> list[list[int]]:
    longest = max(len(seq) for seq in sequences)
    fill = [[pad_id] * (longest - len(seq)) for seq in sequences]
    return [f + list(seq) if left else list(seq) + f for seq, f in zip(sequences, fill)]


@checker("pad_batch")
def check_pad_batch(pad_batch) -> None:
    """Check ``pad_batch(sequences, pad_id) -> (batch, longest)`` LongTensor, right-padded with pad_id."""
    cases = [([[5, 6, 7], [8], [0, 9], [1]], 3),  # a pad_id that is not 0, and 0 among the ids
             ([[4, 4], [], [1, 2, 6, 5], [7]], 10),  # an empty sequence
             ([[1, 2], [3, 4]], 0)]  # nothing to pad
    for sequences, pad_id in cases:
        with unchanged("Don't modify the input lists; build a new tensor instead.", sequences):
            out = pad_batch(sequences, pad_id)
        expect(not isinstance(out, (list, tuple)), "Return a tensor of shape (batch, longest), not a list of "
                                                   "lists (torch.full or torch.tensor builds one).")
        expect_tensor(out)
        batch, longest = len(sequences), max(len(seq) for seq in sequences)
        shortest = min(len(seq) for seq in sequences)
        expect(tuple(out.shape) != (batch, shortest) or shortest == longest, "Pad every sequence up to the longest "
               "one; you cut them to the shortest, which throws tokens away.")
        expect(out.shape == (batch, longest), f"the output must be (batch, longest) = {(batch, longest)}, "
                                              f"got {tuple(out.shape)}")
        expect(out.dtype == torch.long, f"ids must be torch.long (int64), the type nn.Embedding and F.one_hot "
                                        f"expect; got {out.dtype}")
        diagnose(out.tolist(), _padded(sequences, pad_id), [
            (_padded(sequences, pad_id, left=True), "Pad on the right: each sequence starts at position 0 and pad_id "
                                                    "follows it."),
            (_padded(sequences, 0), f"Fill with pad_id (here {pad_id}), not with 0."),
        ], f"pad_batch({sequences}, pad_id={pad_id}) should be {_padded(sequences, pad_id)}, got {out.tolist()}")


# ---------------------------------------------------------------- tied_logits


@checker("tied_logits")
def check_tied_logits(tied_logits) -> None:
    """Check ``tied_logits(h, embedding) -> (batch, len, vocab_size)`` = h · Eᵀ with the embedding's matrix."""
    from ..embedding import TokenEmbedding

    for seed, vocab_size, d_model, batch, length in [(0, 13, 6, 2, 5), (1, 9, 16, 3, 4)]:
        with seeded(seed):  # the reader's own RNG state is left alone
            embedding = TokenEmbedding(vocab_size, d_model)
            h = torch.randn(batch, length, d_model)  # (batch, len, d_model)
        weight = embedding.lookup.weight.detach().clone()  # (vocab_size, d_model)
        expected = h @ weight.T  # (batch, len, vocab_size)
        out = call(tied_logits, h.clone(), embedding, errors={
            RuntimeError: _said("The matrix is (vocab_size, d_model), so the scores are h · Eᵀ: multiply h by "
                                "embedding.lookup.weight.T (or use F.linear(h, embedding.lookup.weight))."),
            ValueError: lambda error: ("embedding(...) looks token ids up, but h holds vectors: multiply h by the "
                                       f"embedding's matrix, embedding.lookup.weight (TokenEmbedding said: {error})"),
        })
        expect(torch.equal(embedding.lookup.weight.detach(), weight), "Don't change the embedding's matrix.")
        diagnose(out, expected, [
            (expected * math.sqrt(d_model), "No √d_model here: the paper multiplies by √d_model in the embedding "
                                            "layers only (§3.4); the pre-softmax layer uses the matrix as it is."),
            *[(probabilities, "Return the scores (logits), not probabilities: softmax comes later, inside the loss or "
                              "the decoding.") for probabilities in (expected.softmax(-1), expected.log_softmax(-1))],
        ], "the scores must be h · Eᵀ with the embedding's own matrix E",
            shape="return one score per vocabulary entry: (batch, len, vocab_size)")
        if out.requires_grad:
            out.sum().backward()
        grad = embedding.lookup.weight.grad
        expect(grad is not None, "Gradients must reach embedding.lookup.weight: use the parameter itself "
                                 "(no .detach(), no .data, no copy into a new layer).")
        expect_close(grad, h.sum(dim=(0, 1)).expand(vocab_size, d_model),
                     "the gradient reaching embedding.lookup.weight is not that of h · Eᵀ")
