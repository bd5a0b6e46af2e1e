"""Run under `mpirun -np 2`: collectives, error cases and data-parallel training, eager and compiled; each rank
writes what it computed to OUT/rank<r>.npz and the messages of the errors it saw to OUT/rank<r>.json
(tests/test_distributed.py checks them)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

import graphnn
import graphnn.distributed as dist
import graphnn.nn.parallel.distributed as ddp_module
from graphnn.nn.parallel import DistributedDataParallel as DDP

from common import loss_fn, model, params, shard_batches, train_on_shard

out_dir = sys.argv[1]
dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
saved: dict = {"world": np.array(world)}
errors: dict = {}


def collectives(prefix: str, run) -> None:
    """all_reduce with every op (float32 and int64), broadcast from rank 1 and all_gather; `run(fn, *tensors)` runs
    fn eagerly or compiled."""
    for op in ("SUM", "AVG", "MAX", "MIN"):
        t = graphnn.tensor([1.0 + rank, -2.0 * rank, 0.5 * rank * rank])

        def reduce_(t, op=op):
            dist.all_reduce(t, getattr(dist.ReduceOp, op))
            return t * 1

        saved[f"{prefix}_all_reduce_{op}"] = run(reduce_, t).numpy()
        saved[f"{prefix}_all_reduce_{op}_inplace"] = t.numpy()
    ti = graphnn.tensor([rank + 1, 10 * rank - 3], dtype=graphnn.int64)

    def reduce_int(t):
        dist.all_reduce(t, dist.ReduceOp.MAX)
        return t + 0

    saved[f"{prefix}_all_reduce_int64_max"] = run(reduce_int, ti).numpy()
    b = graphnn.full((2, 3), float(rank + 7))

    def bcast(b):
        dist.broadcast(b, src=1)
        return b * 1

    run(bcast, b)
    saved[f"{prefix}_broadcast"] = b.numpy()
    g = graphnn.arange(3).float() + 10 * rank

    def gather(g):
        outs = [graphnn.zeros(3) for _ in range(world)]
        dist.all_gather(outs, g)
        return graphnn.stack(outs)

    saved[f"{prefix}_all_gather"] = run(gather, g).numpy()


collectives("eager", lambda fn, *ts: fn(*ts))
collectives("compiled", lambda fn, *ts: graphnn.compile(fn)(*ts))
dist.barrier()

# Shapes that differ between ranks: every rank raises an error naming them (eagerly, and at a compiled step's first
# call), and the job goes on.
try:
    dist.all_reduce(graphnn.ones(3 + rank))
except RuntimeError as e:
    errors["eager_shapes"] = str(e)
try:
    graphnn.compile(lambda t: dist.all_reduce(t) or t * 1)(graphnn.ones(2, 2 + rank))
except RuntimeError as e:
    errors["compiled_shapes"] = str(e)


def train(compiled: bool) -> dict:
    """SGD with momentum on this rank's shard; rank 1 starts from other weights (DDP copies rank 0's). Buckets of a
    few hundred bytes: the last layer's gradients form bucket 0, the first layer's bucket 1."""
    net = model(seed=rank)
    ddp_module.FIRST_BUCKET_BYTES = 100
    _, run = train_on_shard(DDP(net, bucket_cap_mb=200 / 2**20), rank, compiled)
    if compiled:
        saved["compiled_graph"] = np.array(str(run.graphs["lowered"]))
    return params(net)


for mode in ("eager", "compiled"):
    for name, value in train(mode == "compiled").items():
        saved[f"train_{mode}_{name}"] = value


def accumulate(mode: str) -> dict:
    """no_sync: two micro-batches' gradients accumulated locally, then a third backward outside no_sync averages
    the sum across the ranks. mode: eager, compiled (the function calling backward) or module (graphnn.compile of
    the DDP module: its backward runs eagerly through the compiled backward graph)."""
    net = model(seed=0)
    ddp = DDP(net)
    forward = graphnn.compile(ddp) if mode == "module" else ddp

    def grads_of(x, y):
        loss_fn(forward(x), y).backward()

    run = graphnn.compile(grads_of) if mode == "compiled" else grads_of
    batches = shard_batches(rank)[:3]
    with ddp.no_sync():
        run(*batches[0])
        run(*batches[1])
    saved[f"no_sync_{mode}_local"] = net[0].weight.grad.numpy().copy()
    run(*batches[2])
    return {n: p.grad.numpy().copy() for n, p in net.named_parameters()}


for mode in ("eager", "compiled", "module"):
    for name, value in accumulate(mode).items():
        saved[f"no_sync_{mode}_{name}"] = value


def buffers_follow_rank_0(compiled: bool) -> np.ndarray:
    """broadcast_buffers: every forward starts from rank 0's buffers (a BatchNorm in eval mode keeps them)."""
    bn = graphnn.nn.BatchNorm1d(3)
    ddp = DDP(bn)
    bn.eval()
    bn.running_mean.fill_(float(rank + 1))
    forward = graphnn.compile(ddp) if compiled else ddp
    with graphnn.no_grad():
        forward(graphnn.ones(2, 3))
    return bn.running_mean.numpy().copy()


for mode in ("eager", "compiled"):
    saved[f"buffers_{mode}"] = buffers_follow_rank_0(mode == "compiled")

# A parameter the loss does not use: an error naming it on every rank (before any exchange).
unused = graphnn.nn.ModuleDict({"used": graphnn.nn.Linear(2, 1), "unused": graphnn.nn.Linear(2, 1)})
try:
    kept = DDP(unused)  # (a DDP module that is not kept reduces nothing)
    unused["used"](graphnn.ones(1, 2)).sum().backward()
except RuntimeError as e:
    errors["unused"] = str(e)

# find_unused_parameters=True: a parameter only rank 0 uses gets the average (half its gradient); one no rank uses
# keeps .grad None, as in PyTorch (eager code).
parts = graphnn.nn.ModuleDict({"both": graphnn.nn.Linear(2, 1), "rank0": graphnn.nn.Linear(2, 1)})
parts.add_module("none", graphnn.nn.Linear(2, 1))
found = DDP(parts, find_unused_parameters=True)
loss = parts["both"](graphnn.ones(1, 2)).sum()
if rank == 0:
    loss = loss + parts["rank0"](graphnn.ones(1, 2)).sum()
loss.backward()
saved["unused_rank0_bias_grad"] = parts["rank0"].bias.grad.numpy().copy()
errors["unused_none_grad"] = repr(parts["none"].weight.grad)

# no_sync() entered inside a compiled step: traced once, not again at every call
acc = DDP(graphnn.nn.Linear(2, 1))


def micro_step(x):
    with acc.no_sync():
        acc(x).sum().backward()


compiled_micro = graphnn.compile(micro_step)
for _ in range(6):
    compiled_micro(graphnn.ones(3, 2))
errors["no_sync_programs"] = compiled_micro.cache.programs
# a compiled DDP step that clips its gradients in place (they are not views of one bucket) equals the eager one
clipped = []
for compiled in (False, True):
    graphnn.manual_seed(0)
    cmodel = DDP(graphnn.nn.Sequential(graphnn.nn.Linear(4, 3), graphnn.nn.Linear(3, 1)))
    copt = graphnn.optim.SGD(cmodel.parameters(), lr=0.1)

    def clip_step(x, cmodel=cmodel, copt=copt):
        copt.zero_grad()
        loss = cmodel(x).pow(2).mean()
        loss.backward()
        graphnn.nn.utils.clip_grad_norm_(cmodel.parameters(), 0.01)
        copt.step()
        return loss

    f = graphnn.compile(clip_step) if compiled else clip_step
    clipped.append([f(graphnn.ones(2, 4) * (rank + 1)).item() for _ in range(3)])
errors["clipped_losses"] = clipped
# (torchrun's variables, which graphnn sets from mpirun's at import)
errors["launcher_env"] = [os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")]

np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **saved)
with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
    json.dump(errors, f)
dist.destroy_process_group()
