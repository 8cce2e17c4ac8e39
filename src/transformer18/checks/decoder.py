"""Checkers for Q4 (the decoder): the causal mask, shifting targets right, scoring a whole sequence."""

from __future__ import annotations

import torch

from ._core import CheckFailed, call, checker, diagnose, expect, expect_tensor, unchanged

__all__ = ["check_subsequent_mask", "check_shift_right", "check_sequence_log_prob"]


def _lower(size: int) -> torch.Tensor:
    """The right answer without its broadcast dimensions: (size, size), True on and below the diagonal."""
    return torch.ones(size, size, dtype=torch.bool).tril()


@checker("causal_mask")
def check_subsequent_mask(causal_mask) -> None:
    """Check ``causal_mask(size) -> (1, 1, size, size)`` bool, True = may attend (lower triangle)."""
    for size in (4, 7, 1):  # size 1 last: there a missing diagonal and an inverted mask look alike
        mask = causal_mask(size)
        expect_tensor(mask)
        if mask.dtype != torch.bool:
            raise CheckFailed(f"Return a bool mask (True = may attend), not a {mask.dtype} one: a float mask of "
                              "0 and −inf is PyTorch's additive form, and a 0/1 float mask is easy to misuse.")
        diagnose(tuple(mask.shape), (1, 1, size, size), [
            ((size, size), f"Return the broadcast shape (1, 1, size, size) = (1, 1, {size}, {size}), so the mask "
                           "broadcasts over (batch, heads, q_len, k_len); you returned (size, size)."),
        ], f"causal_mask({size}) must have shape (1, 1, {size}, {size}), got {tuple(mask.shape)}")
        lower = _lower(size)
        diagnose(mask[0, 0], lower, [
            (lower.tril(diagonal=-1), "The diagonal is missing: a position may see itself (query i attends to "
                                      "keys 0..i, i included). Use tril() with diagonal=0."),
            (~lower, "True means *may attend* here: you returned the blocked positions (PyTorch's "
                     "nn.MultiheadAttention polarity). Invert it."),
            (lower.T, "Rows are queries and columns keys: query i may see keys 0..i, the lower triangle. You "
                      "returned the upper triangle, which lets every position see the future."),
            (torch.ones_like(lower), "Every position may see every key: that is no mask at all. Block the keys "
                                     "after each query."),
        ], f"causal_mask({size})[0, 0] should be\n{lower.int()}\ngot\n{mask[0, 0].int()}")


@checker("shift_right")
def check_shift_right(shift_right) -> None:
    """Check ``shift_right(tgt, bos_id) -> [bos_id, y1, …, y_{len-1}]`` of the same shape and dtype as ``tgt``."""
    g = torch.Generator().manual_seed(4)
    cases = [(torch.tensor([[5, 6, 7, 2], [8, 2, 0, 0]]), 1), (torch.randint(3, 20, (3, 6), generator=g), 9),
             (torch.tensor([[4], [2]]), 1)]
    for tgt, bos_id in cases:
        with unchanged("Do not modify tgt in place: it is also the labels. Build a new tensor (torch.cat, or "
                       "tgt.clone() first).", tgt):
            out = shift_right(tgt, bos_id)
        expect_tensor(out)
        bos = torch.full((tgt.shape[0], 1), bos_id, dtype=tgt.dtype)
        first = f", got {out[:, 0].tolist()}" if out.shape == tgt.shape else ""
        expect(out.shape != tgt.shape or out.dtype == tgt.dtype,
               f"keep tgt's dtype {tgt.dtype} (token ids), got {out.dtype}")
        diagnose(out, torch.cat([bos, tgt[:, :-1]], dim=1), [
            (torch.cat([bos, tgt], dim=1), "You put BOS in front but did not drop the last token, so the length "
                                           "grew by one. The decoder input has tgt's length: [BOS, y1, …, y_{len−1}]."),
            (tgt[:, :-1], "The BEGIN token is missing: position 0 must hold bos_id, followed by y1 … y_{len−1}."),
            (tgt, "You returned tgt unchanged: shift it one position to the right behind bos_id."),
            (lambda: torch.cat([tgt[:, 1:], out[:, -1:]], dim=1),
             "You shifted left: position i must hold y_{i−1} (the token before), with bos_id at position 0; y1 moves "
             "to position 1."),
            (tgt.roll(1, dims=1), "torch.roll wraps the last token around to position 0: put bos_id there instead."),
            (lambda: torch.cat([out[:1], tgt[:-1]]), "Shift along the length (dim 1), not along the batch (dim 0)."),
            (lambda: torch.cat([out[:, :1], tgt[:, :-1]], dim=1),
             f"Position 0 must hold the BEGIN token bos_id (= {bos_id} here){first}."),
        ], f"shift_right({tgt.tolist()}, {bos_id}) should be {torch.cat([bos, tgt[:, :-1]], dim=1).tolist()}, got "
           f"{out.tolist()}", shape="the decoder input must have tgt's shape")


class _ToyModel:
    """A tiny deterministic encoder–decoder following greedy_decode's contract, which records its calls.

    ``decode`` averages the embeddings of the target positions its ``tgt_mask`` lets each position see,
    adds the mean of the memory and projects to the vocabulary, so every logit depends on the source,
    on the visible target tokens and on the mask.
    """

    def __init__(self, vocab_size: int, seed: int, d: int = 6):
        g = torch.Generator().manual_seed(seed)
        self.src_embed = torch.randn(vocab_size, d, generator=g)
        self.tgt_embed = torch.randn(vocab_size, d, generator=g)
        self.out = torch.randn(d, vocab_size, generator=g) * 1.5
        self.calls: list[tuple[torch.Tensor, object]] = []

    def encode(self, src, src_mask=None):
        return self.src_embed[src]  # (batch, src_len, d)

    @staticmethod
    def _visible(tgt_mask, length: int) -> torch.Tensor:
        full = torch.ones(1, length, length)
        if not isinstance(tgt_mask, torch.Tensor):
            return full
        try:
            mask = tgt_mask.bool() if tgt_mask.dtype == torch.bool else tgt_mask == 0
            mask = mask.reshape(-1, length, length)[:1].float()  # (1, len, len)
        except RuntimeError:
            return full
        return torch.where(mask.sum(-1, keepdim=True) > 0, mask, full)  # a fully blocked row sees everything

    def decode(self, tgt, memory, src_mask, tgt_mask):
        self.calls.append((tgt.detach().clone(), tgt_mask))
        visible = self._visible(tgt_mask, tgt.shape[1])  # (1, len, len)
        h = visible @ self.tgt_embed[tgt] / visible.sum(-1, keepdim=True)  # (batch, len, d)
        return torch.tanh(h + memory.mean(dim=1, keepdim=True)) @ self.out  # (batch, len, vocab)


def _log_prob_cases():
    # (vocab_size, bos_id, pad_id, src, tgt): each tgt row ends with eos (2 or 3) and may be padded.
    first = (7, 1, 0, torch.tensor([[3, 4, 5], [6, 6, 3], [4, 5, 6]]),
             torch.tensor([[4, 5, 3, 2, 0, 0], [6, 2, 0, 0, 0, 0], [3, 3, 4, 6, 5, 2]]))
    second = (9, 5, 8, torch.tensor([[0, 1, 2, 4], [7, 6, 1, 0]]),
              torch.tensor([[0, 7, 6, 3, 8], [1, 2, 4, 4, 3]]))
    return [first, second]


@checker("sequence_log_prob")
def check_sequence_log_prob(sequence_log_prob) -> None:
    """Check ``sequence_log_prob(model, src, tgt, bos_id, pad_id) -> (batch,)`` on a recording toy model."""
    for seed, (vocab_size, bos_id, pad_id, src, tgt) in enumerate(_log_prob_cases()):
        model = _ToyModel(vocab_size, seed)
        with unchanged("Do not modify tgt in place.", tgt):
            out = sequence_log_prob(model, src, tgt, bos_id, pad_id)
        expect_tensor(out)
        expect(len(model.calls) > 0, "Call model.decode (after model.encode) to get the logits.")
        expect(len(model.calls) == 1, f"Teacher forcing scores the whole sequence in ONE decode call over the "
                                      f"shifted target; you called decode {len(model.calls)} times.")
        (decoder_input, tgt_mask), length = model.calls[0], tgt.shape[1]
        shifted = torch.cat([torch.full_like(tgt[:, :1], bos_id), tgt[:, :-1]], dim=1)
        diagnose(decoder_input, shifted, [
            (tgt, "The decoder must read the target shifted right behind BOS, [BOS, y1, …, y_{n−1}], not the target "
                  "itself: reading y_t at position t, it would predict what it sees."),
        ], f"the decoder input should be [bos_id, y1, …, y_(n−1)] = {shifted.tolist()}, got {decoder_input.tolist()}")
        expect(tgt_mask is not None, "Pass tgt_mask=subsequent_mask(len): without it every position sees the tokens "
                                     "it has to predict.")
        expect(isinstance(tgt_mask, torch.Tensor) and tgt_mask.dtype == torch.bool,
               "tgt_mask must be the course's bool mask, subsequent_mask(len) (True = may attend).")
        grid = call(torch.broadcast_to, tgt_mask, (1, 1, length, length), errors={RuntimeError: (
            f"tgt_mask must broadcast to (1, 1, {length}, {length}), got shape {tuple(tgt_mask.shape)}")})[0, 0]
        diagnose(grid, _lower(length), [
            (~_lower(length), "tgt_mask has PyTorch's polarity (True = blocked); the contract wants the course's: "
                              "subsequent_mask(len), True = may attend."),
        ], "tgt_mask should be subsequent_mask(len): lower triangle, diagonal included.")

        with torch.no_grad():
            logits = _ToyModel(vocab_size, seed).decode(shifted, model.encode(src), None, _lower(length)[None, None])
        real = tgt != pad_id  # (batch, len)

        def total(table, ids=tgt, pads=False):  # the sum over positions of table[b, t, ids[b, t]]: (batch,)
            picked = table.gather(-1, ids[..., None])[..., 0]  # (batch, len)
            return (picked if pads else picked.masked_fill(~real, 0.0)).sum(dim=1)

        expected = total(logits.log_softmax(dim=-1))
        diagnose(out.detach(), expected, [
            (total(logits.log_softmax(dim=-1), shifted), "You scored the token each position *reads* (the decoder "
             "input); position t's distribution predicts tgt[:, t], the next token."),
            (total(logits), "Normalise first: sum log_softmax(logits), not the raw logits."),
            (expected.exp(), "Return the log-probability (a sum of logs), not the probability."),
            (total(logits.log_softmax(dim=-1), pads=True), "Leave out the padding after <eos>: mask positions where "
                                                           "tgt == pad_id."),
            (expected / real.sum(dim=1), "Sum over the tokens, log p(y) = Σ_t log p(y_t | y_<t, x); you averaged."),
            (total(logits.log_softmax(dim=1)), "Take log_softmax over the vocabulary (the last dimension), not over "
                                               "the positions."),
        ], "your log-probabilities differ from the chain-rule sum of the toy model", atol=1e-4,
            shape="Sum over the length dimension: return one log-probability per sequence, shape (batch,)")
