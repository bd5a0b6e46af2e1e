"""DistributedSampler: each rank reads its own share of a data set (torch.utils.data.distributed's)."""

from __future__ import annotations

import math

from graphnn.utils.generator import Generator, randperm

from .sampler import Sampler


class DistributedSampler(Sampler):
    """The indices rank `rank` of `num_replicas` reads: all indices (shuffled by seed + epoch when `shuffle`),
    padded by repeating the first ones up to a multiple of num_replicas (or, with drop_last, cut down to one), then
    every num_replicas-th from position `rank`, as PyTorch assigns them. num_replicas and rank default to the
    default process group's. Call set_epoch(epoch) before each epoch for a new order. The shuffle draws from
    graphnn's generator, so its orders are not PyTorch's (the same on every rank, which is what matters)."""

    def __init__(
        self,
        dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            from graphnn import distributed as dist

            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.epoch, self.drop_last, self.shuffle, self.seed = 0, drop_last, shuffle, seed
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = randperm(n, Generator().manual_seed(self.seed + self.epoch))
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad <= len(indices):
                indices += indices[:pad]
            else:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The order of the next pass (with shuffle): seed + epoch."""
        self.epoch = epoch
