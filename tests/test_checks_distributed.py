"""The appendix's checkers accept the reference solutions and reject known-wrong code with the right hint."""

import pytest
from conftest import rejects

from transformer18 import checks

# ---------------------------------------------------------------- shard_indices


def shard_indices(permutation, rank, world_size, drop_last):
    n = len(permutation)
    if drop_last:
        kept = permutation[: n // world_size * world_size]
    else:
        total = -(-n // world_size) * world_size
        kept = list(permutation)
        while len(kept) < total:
            kept += permutation[: total - len(kept)]
    return kept[rank::world_size]


def contiguous(permutation, rank, world_size, drop_last):
    per_rank = len(shard_indices(permutation, rank, world_size, drop_last))
    padded = shard_indices(permutation, 0, 1, drop_last)
    return padded[rank * per_rank: (rank + 1) * per_rank]


def padded_with_last(permutation, rank, world_size, drop_last):
    if drop_last:
        return shard_indices(permutation, rank, world_size, drop_last)
    total = -(-len(permutation) // world_size) * world_size
    return (list(permutation) + list(permutation[::-1]) * world_size)[:total][rank::world_size]


def test_shard_indices_accepts_the_reference(accepts):
    accepts(checks.check_shard_indices, shard_indices)


@pytest.mark.parametrize("wrong, hint", [
    (contiguous, "dealt|deals the permutation out like cards"),
    (lambda p, r, w, d: shard_indices(p, (r + 1) % w, w, d), "Ranks count from 0"),
    (lambda p, r, w, d: shard_indices(list(range(len(p))), r, w, d), "not the positions themselves"),
    (lambda p, r, w, d: p[r::w] if d else shard_indices(p, r, w, d), "cut the permutation to a multiple"),
    (lambda p, r, w, d: shard_indices(p, r, w, d) if d else p[r::w], "pad the permutation with its own first indices"),
    (lambda p, r, w, d: p[r::w], "cut the permutation to a multiple"),
    (padded_with_last, "not with its last ones"),
    (lambda p, r, w, d: sorted(shard_indices(p, r, w, d)), r"expected \[.*DistributedSampler's"),
    (lambda p, r, w, d: "0, 3, 6", "return a list of indices"),
    (lambda p, r, w, d: [float(i) for i in shard_indices(p, r, w, d)], "as ints"),
])
def test_shard_indices_rejects_wrong_code(wrong, hint):
    rejects(checks.check_shard_indices, wrong, hint)


# ---------------------------------------------------------------- rank_loss


def rank_loss(token_losses, counted, total_counted, world_size):
    return token_losses[counted].sum() * world_size / total_counted


def test_rank_loss_accepts_the_reference_and_a_masked_multiply(accepts):
    accepts(checks.check_rank_loss, rank_loss, lambda l, c, n, w: (l * c).sum() * (w / n))


@pytest.mark.parametrize("wrong, hint", [
    (lambda l, c, n, w: l[c].mean(), "each process's own mean"),
    (lambda l, c, n, w: l[c].sum() / n, "multiply your loss by world_size"),
    (lambda l, c, n, w: l.sum() * w / n, "Leave the padded positions out"),
    (lambda l, c, n, w: l[c].sum(), "differ from the gradient of the mean"),
    (lambda l, c, n, w: l[c].sum().item() * w / n, "return a scalar tensor"),
    (lambda l, c, n, w: l[c] * w / n, "return a scalar tensor"),
])
def test_rank_loss_rejects_wrong_code(wrong, hint):
    rejects(checks.check_rank_loss, wrong, hint)
