"""Run under `mpirun -np 2`: point-to-point messages and the eager-only collectives (reduce, gather, scatter,
reduce_scatter, all_gather_into_tensor, all_to_all, all_reduce of bool tensors and with PRODUCT / BOR); each rank
writes its results to OUT/rank<r>.npz (tests/test_distributed.py checks them)."""

from __future__ import annotations

import os
import sys

import numpy as np

import graphnn
import graphnn.distributed as dist

out_dir = sys.argv[1]
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
peer = 1 - rank
got: dict = {}

t = graphnn.full((3,), float(rank + 1))
if rank == 0:
    dist.send(t * 10, dst=1)
    back = graphnn.zeros(3)
    got["recv_source"] = np.array(dist.recv(back, src=1))
    got["recv"] = back.numpy()
else:
    inbox = graphnn.zeros(3)
    dist.recv(inbox, src=0)
    dist.send(inbox + 1, dst=0)
    got["recv"] = inbox.numpy()
ops = [
    dist.P2POp(dist.isend, graphnn.full((2,), float(rank)), peer),
    dist.P2POp(dist.irecv, box := graphnn.zeros(2), peer),
]
for req in dist.batch_isend_irecv(ops):
    req.wait()
got["exchanged"] = box.numpy()
r = graphnn.tensor([1.0 + rank, 2.0 * rank])
dist.reduce(r, dst=1)
got["reduce"] = r.numpy()
gathered = [graphnn.zeros(2) for _ in range(world)] if rank == 0 else None
dist.gather(graphnn.tensor([rank, -rank], dtype=graphnn.float32), gathered, dst=0)
if rank == 0:
    got["gather"] = np.stack([g.numpy() for g in gathered])
piece = graphnn.zeros(2, dtype=graphnn.int64)
dist.scatter(piece, [graphnn.tensor([10 * k, 10 * k + 1]) for k in range(world)] if rank == 1 else None, src=1)
got["scatter"] = piece.numpy()
out = graphnn.zeros(2)
dist.reduce_scatter_tensor(out, graphnn.arange(4.0) * (rank + 1))
got["reduce_scatter"] = out.numpy()
whole = graphnn.zeros(world, 2)
dist.all_gather_into_tensor(whole, graphnn.full((2,), float(rank)))
got["all_gather_into_tensor"] = whole.numpy()
swapped = graphnn.zeros(world)
dist.all_to_all_single(swapped, graphnn.tensor([10.0 * rank, 10.0 * rank + 1]))
got["all_to_all_single"] = swapped.numpy()
flags = graphnn.tensor([rank == 0, False])
dist.all_reduce(flags, op=dist.ReduceOp.MAX)
got["bool_any"] = flags.numpy()
prod = graphnn.tensor([2.0 + rank, 3.0])
dist.all_reduce(prod, op=dist.ReduceOp.PRODUCT)
got["product"] = prod.numpy()
bits = graphnn.tensor([1 << rank])
dist.all_reduce(bits, op=dist.ReduceOp.BOR)
got["bor"] = bits.numpy()
np.savez(os.path.join(out_dir, f"p2p_rank{rank}.npz"), **got)
dist.destroy_process_group()
