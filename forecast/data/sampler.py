"""Which samples a rank trains on, in which order: reproducible per epoch, shardable, resumable mid-epoch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(Sampler[int]):
    """Indices ``0..size-1``: a permutation drawn from ``(seed, epoch)`` (or in order), rank ``r`` of ``w``
    taking every ``w``-th from ``r``.

    With ``shuffle``, the permutation is padded by wrapping so every rank gets the same count (DDP
    steps in lockstep); without it (evaluation) nothing is padded, so no sample counts twice.
    ``resume_at``, when given, is asked once, as the first pass begins, how many indices of this rank's
    share are done already: a training resumed mid-epoch continues at the sample where it stopped
    instead of replaying the epoch. Asking late matters: the loader is built before the checkpoint is
    restored.
    """

    def __init__(self, size: int, seed: int, shuffle: bool = True, resume_at: Callable[[], int] | None = None):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.epoch = 0
        self._resume_at = resume_at

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _share(self) -> list[int]:
        rank, world = _rank_and_world()
        if not self.shuffle:
            return list(range(rank, self.size, world))
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        total = math.ceil(self.size / world) * world
        order += order[: total - self.size]
        return order[rank::world]

    def __iter__(self) -> Iterator[int]:
        done = self._resume_at() if self._resume_at is not None else 0
        self._resume_at = None
        return iter(self._share()[done:])

    def __len__(self) -> int:
        rank, world = _rank_and_world()
        return math.ceil(self.size / world) if self.shuffle else len(range(rank, self.size, world))
