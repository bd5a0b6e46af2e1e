"""What the distributed workers and tests/test_distributed.py share: the model, the data and the training loop."""

from __future__ import annotations

import numpy as np

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from graphnn.utils.data import DataLoader, DistributedSampler, TensorDataset

WORLD = 2
N_SAMPLES = 40
BATCH = 4  # per rank: a power of two, so the union batch's mean scales as the ranks' (exactly)
STEPS = 5
LR, MOMENTUM = 0.1, 0.9
SEED = 3  # DistributedSampler's


def dataset() -> TensorDataset:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N_SAMPLES, 6)).astype(np.float32)
    y = rng.integers(0, 3, N_SAMPLES)
    return TensorDataset(graphnn.from_numpy(x), graphnn.from_numpy(y))


def model(seed: int = 0) -> nn.Module:
    graphnn.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def loss_fn(out, y):
    return F.cross_entropy(out, y)


def shard_batches(rank: int) -> list:
    """Rank `rank`'s first STEPS batches: its DistributedSampler shard (epoch 1) through a DataLoader."""
    sampler = DistributedSampler(dataset(), num_replicas=WORLD, rank=rank, shuffle=True, seed=SEED)
    sampler.set_epoch(1)
    loader = DataLoader(dataset(), batch_size=BATCH, sampler=sampler)
    return [b for _, b in zip(range(STEPS), loader)]


def union_batches() -> list:
    """The batches one process trains on: step k's batch is every rank's step-k batch, concatenated."""
    per_rank = [shard_batches(r) for r in range(WORLD)]
    return [tuple(graphnn.cat([b[i] for b in step]) for i in range(2)) for step in zip(*per_rank)]


def params(m) -> dict:
    return {n: p.detach().numpy().copy() for n, p in m.named_parameters()}


def train_on_shard(wrapped, rank: int, compiled: bool) -> tuple:
    """SGD with momentum (LR, MOMENTUM) of the wrapped model on rank's shard, the step eager or compiled: (the
    optimizer, the step that ran)."""
    opt = graphnn.optim.SGD(wrapped.parameters(), lr=LR, momentum=MOMENTUM)

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(wrapped(x), y)
        loss.backward()
        opt.step()
        return loss

    run = graphnn.compile(step) if compiled else step
    for x, y in shard_batches(rank):
        run(x, y)
    return opt, run
