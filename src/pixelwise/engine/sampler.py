"""A batch sampler that is deterministic, sharded across DDP ranks and can start mid-epoch.

Why not ``DistributedSampler`` + ``DataLoader(shuffle=...)``: resuming exactly needs the
sampler to skip the batches an interrupted run already consumed, without touching any global
RNG. Here the order of epoch ``e`` is a permutation drawn from a private generator seeded with
``(seed, e)`` only, so it is the same in every process and on every resume.

Global batch ``b`` of an epoch is ``perm[b*G:(b+1)*G]`` (``G`` = global batch); rank ``r``
takes the ``r``-th contiguous slice of ``G / world_size`` of it. The union of all ranks'
batches is therefore exactly the batch a single process with batch ``G`` would see, which is
what makes a DDP run follow the single-process run. The last incomplete batch is dropped.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["ResumableBatchSampler", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed for ``(seed, epoch)``; a multiplier keeps (0, 1) and (1, 0) apart."""
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % (2**63)


class ResumableBatchSampler(Sampler[list[int]]):
    """Yields this rank's index batches of one epoch; call :meth:`set_epoch` before iterating."""

    def __init__(self, num_samples: int, global_batch: int, *, world_size: int = 1, rank: int = 0, seed: int = 0):
        if global_batch % world_size:
            raise ValueError(f"batch_size {global_batch} is not divisible by the world size {world_size}")
        if num_samples < global_batch:
            raise ValueError(
                f"the training set has {num_samples} samples, fewer than one global batch of {global_batch}"
            )
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.world_size = world_size
        self.rank = rank
        self.seed = seed
        self.per_rank = global_batch // world_size
        self.batches_per_epoch = num_samples // global_batch
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch and skip its first ``start_batch`` global batches (for resume)."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch {start_batch} outside 0..{self.batches_per_epoch}")
        self.epoch = epoch
        self.start_batch = start_batch

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator()
        g.manual_seed(epoch_seed(self.seed, epoch))
        return torch.randperm(self.num_samples, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.permutation(self.epoch)
        for b in range(self.start_batch, self.batches_per_epoch):
            lo = b * self.global_batch + self.rank * self.per_rank
            yield perm[lo : lo + self.per_rank].tolist()

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch
