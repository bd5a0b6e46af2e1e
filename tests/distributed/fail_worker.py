"""Run under `mpirun -np 2` with a mode: rank 1 fails while rank 0 keeps exchanging gradients, which must end the
job with a clear error within a bounded time (tests/test_distributed.py).

    raise   rank 1 raises an exception (eager training)
    finally rank 1 raises inside `try: ... finally: destroy_process_group()`, the usual cleanup (eager training)
    exit    rank 1 calls sys.exit(3) (eager training)
    kill    rank 1 is killed by SIGKILL (compiled training)
    hang    rank 1 stops answering (sleeps); rank 0's watchdog aborts (compiled training, GRAPHNN_DIST_TIMEOUT)
"""

from __future__ import annotations

import os
import signal
import sys
import time

import graphnn
import graphnn.distributed as dist
from graphnn.nn.parallel import DistributedDataParallel as DDP

from common import loss_fn, model, shard_batches

mode = sys.argv[1]
dist.init_process_group("mpi")
rank = dist.get_rank()
ddp = DDP(model())
opt = graphnn.optim.SGD(ddp.parameters(), lr=0.1)


def step(x, y):
    opt.zero_grad()
    loss = loss_fn(ddp(x), y)
    loss.backward()
    opt.step()
    return loss


run = step if mode in ("raise", "finally", "exit") else graphnn.compile(step)
batches = shard_batches(rank)


def train():
    for i in range(10**6):
        if rank == 1 and i == 3:
            print(f"rank 1 fails now ({mode})", flush=True)
            if mode in ("raise", "finally"):
                raise ValueError("rank 1 fails on purpose")
            if mode == "exit":
                sys.exit(3)
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(600)
        run(*batches[i % len(batches)])


if mode == "finally":
    try:
        train()
    finally:
        dist.destroy_process_group()
else:
    train()
