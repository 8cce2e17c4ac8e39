"""Checkers for the appendix (scaling out): which examples a process gets, and a loss that DDP averages exactly."""

from __future__ import annotations

import torch
from torch.utils.data import DistributedSampler

from ._core import checker, diagnose, expect

__all__ = ["check_shard_indices", "check_rank_loss"]


def _sampler_indices(n: int, rank: int, world_size: int, drop_last: bool, seed: int) -> tuple[list[int], list[int]]:
    """(the permutation of range(n) that DistributedSampler draws for ``seed``, and rank ``rank``'s indices)."""
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                 drop_last=drop_last)
    return permutation, list(sampler)


def _as_list(value, case: str) -> list[int]:
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    expect(isinstance(value, (list, tuple)), f"return a list of indices, got {type(value).__name__} for {case}")
    expect(all(isinstance(i, int) and not isinstance(i, bool) for i in value),
           f"return dataset indices as ints, got {list(value)[:5]!r} for {case}")
    return list(value)


@checker("shard_indices")
def check_shard_indices(shard_indices) -> None:
    """Check ``shard_indices(permutation, rank, world_size, drop_last) -> list[int]`` against PyTorch's own
    ``DistributedSampler`` (shuffled with the same seed, so it draws the same permutation)."""
    cases = [(12, 3, True), (12, 4, False), (10, 4, True), (10, 4, False), (7, 3, False), (2, 5, False), (3, 5, True)]
    for seed, (n, world_size, drop_last) in enumerate(cases):
        for rank in range(world_size):
            permutation, expected = _sampler_indices(n, rank, world_size, drop_last, seed)
            case = f"rank {rank} of {world_size}, {n} examples, drop_last={drop_last}"
            got = _as_list(shard_indices(list(permutation), rank, world_size, drop_last), case)
            per_rank = len(expected)
            positions = list(DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False,
                                                drop_last=drop_last))  # the same rule applied to 0, 1, …, n − 1
            padded_with_last = (permutation + permutation[::-1] * world_size)[:per_rank * world_size]
            diagnose(got, expected, [
                (positions, "Return the dataset indices stored in the permutation (permutation[position]), not the "
                            "positions themselves."),
                (permutation[rank * per_rank: (rank + 1) * per_rank],
                 "DistributedSampler deals the permutation out like cards: rank r takes positions r, r + world_size, "
                 "r + 2·world_size, … (permutation[r::world_size]), not a contiguous block."),
                (rank + 1 < world_size and got[:per_rank] == permutation[rank + 1::world_size][:per_rank],
                 "Ranks count from 0: rank 0 takes position 0, rank 1 position 1, and so on."),
                (permutation[rank::world_size],
                 "With drop_last=True every rank gets the same number of indices: first cut the permutation to a "
                 "multiple of world_size (the last n % world_size are dropped)." if drop_last else
                 "With drop_last=False nothing is dropped and every rank still gets the same number: pad the "
                 "permutation with its own first indices up to a multiple of world_size (a few examples are seen "
                 "twice per epoch)."),
                (padded_with_last[rank::world_size], "Pad with the permutation's first indices (the sampler wraps "
                                                     "around to its start), not with its last ones."),
            ], f"{case}: expected {expected} (DistributedSampler's), got {got}.")


def _rank_case(seed: int):
    """Three processes' shards: per-token losses that depend on a shared parameter θ, and which are labels."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(4, generator=g, requires_grad=True)  # (features,)
    shards = []
    for batch, length in ((2, 5), (3, 4), (2, 6)):
        features = torch.randn(batch, length, 4, generator=g)  # (shard_batch, len, features)
        lengths = torch.randint(1, length + 1, (batch,), generator=g)  # (shard_batch,)
        counted = torch.arange(length)[None, :] < lengths[:, None]  # (shard_batch, len): True = a real label
        shards.append((features, counted))
    return theta, shards


def _token_losses(theta, features):
    return torch.nn.functional.softplus(features @ theta)  # (shard_batch, len): a smooth, positive loss per token


def _ddp_gradient(loss_fn, theta, shards) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """What DistributedDataParallel computes: each process's gradient of its own loss, averaged over processes."""
    total = int(sum(counted.sum() for _, counted in shards))
    world_size, grads, values = len(shards), [], []
    for features, counted in shards:
        losses = _token_losses(theta, features)
        value = loss_fn(losses, counted.clone(), total, world_size)
        expect(isinstance(value, torch.Tensor) and value.dim() == 0,
               f"return a scalar tensor (the loss to call backward on), got {getattr(value, 'shape', value)!r}")
        (grad,) = torch.autograd.grad(value, theta)
        grads.append(grad)
        values.append(value.detach())
    return torch.stack(grads).mean(dim=0), values


_RANK_LOSS_MISTAKES = [  # (a wrong rank_loss, its hint)
    (lambda losses, counted, total, world_size: losses[counted].mean(),
     "That is each process's own mean: DDP then averages the world_size means, which weighs a label of a shard "
     "with few labels more than one of a shard with many. Divide the sum by total_counted instead."),
    (lambda losses, counted, total, world_size: losses[counted].sum() / total,
     "DDP divides the summed gradients by world_size: multiply your loss by world_size to cancel it (your gradient "
     "is world_size times too small)."),
    (lambda losses, counted, total, world_size: losses.sum() * world_size / total,
     "Leave the padded positions out of the sum: only positions where counted is True are labels."),
]


@checker("rank_loss")
def check_rank_loss(rank_loss) -> None:
    """Check ``rank_loss(token_losses, counted, total_counted, world_size) -> scalar``: the loss each process
    back-propagates so that DDP's average of the processes' gradients is the gradient of the mean loss over
    every label of the global batch. Padded positions hold a loss too (as ``reduction="none"`` gives), which
    must not count."""
    for seed in range(3):
        theta, shards = _rank_case(seed)
        all_losses = torch.cat([_token_losses(theta, f)[c] for f, c in shards])  # (total_counted,)
        (expected,) = torch.autograd.grad(all_losses.mean(), theta)
        got, values = _ddp_gradient(rank_loss, theta, shards)
        diagnose(got, expected, [(lambda wrong=wrong: _ddp_gradient(wrong, theta, shards)[0], hint)
                                 for wrong, hint in _RANK_LOSS_MISTAKES],
                 f"averaged over the {len(shards)} processes, your losses' gradients differ from the gradient of the "
                 f"mean over all {len(all_losses)} labels", atol=1e-6, rtol=1e-5)
        diagnose(sum(values) / len(values), all_losses.mean().detach(),
                 otherwise="the processes' losses, averaged, should equal the mean loss over all labels")
