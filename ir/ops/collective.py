"""Collectives: values exchanged between the processes of a group (graphnn.distributed, DistributedDataParallel).

    allreduce(x0, x1, ...; reduce) one flat bucket: the operands raveled and concatenated, then reduced elementwise
                                 across the processes (reduce: sum, avg, max, min; avg: every process adds x / size, as
                                 PyTorch's DistributedDataParallel pre-divides gradients)

Bucketing several tensors into one exchange pays the per-message cost once; readers take their piece back with a
slice and a reshape, which compiled code reads in place. Compiled code starts the exchange when the bucket is filled
and waits for it where the bucket is first read (codegen/collective.py), so the exchange overlaps the kernels in
between. Without a process group (ir/collective.py) a process is a world of one: the bucket is the operands.
"""

from __future__ import annotations

import math

import numpy as np

from ..collective import REDUCE_OPS, allreduce, world_size
from ..registry import Fuzz, register
from ..roundoff import across_processes
from ..types import TensorType

MAX_BUCKET = 2**31 - 1  # MPI counts are C ints


def _allreduce_infer(types, attrs):
    if not types:
        raise ValueError("allreduce needs at least one operand")
    op = attrs.get("reduce")
    if op not in REDUCE_OPS:
        raise ValueError(f"unknown reduction {op!r} (one of {', '.join(REDUCE_OPS)})")
    dtypes = sorted({t.dtype for t in types})
    if len(dtypes) != 1:
        raise TypeError(f"the operands of one allreduce must share a dtype, got {', '.join(dtypes)}")
    dt = dtypes[0]
    if dt == "bool":
        raise TypeError("allreduce reduces float32, float64 or int64 tensors, got bool")
    if op == "avg" and dt == "int64":
        raise TypeError("allreduce avg needs floating tensors, got int64")
    n = sum(math.prod(t.shape) for t in types)
    if n > MAX_BUCKET:
        raise ValueError(f"a bucket holds at most {MAX_BUCKET} elements, got {n}")
    return TensorType((n,), dt)


def _allreduce_ref(arrays, attrs):
    dt = np.asarray(arrays[0]).dtype
    bucket = np.concatenate([np.asarray(a, dt).reshape(-1) for a in arrays])
    op = attrs["reduce"]
    if op == "avg":
        bucket *= dt.type(1.0 / world_size())
        op = "sum"
    return allreduce(bucket, op)


def _allreduce_grad(b, node, cts):
    """d(sum of every process's loss)/dx: the cotangents summed across the processes (avg: averaged), then each
    operand's piece of the bucket; for max and min only where the operand is the result (ties: each)."""
    how = node.attrs["reduce"]
    total = b.allreduce(cts[0], reduce="avg" if how == "avg" else "sum")
    grads, off = [], 0
    for x in node.inputs:
        n = x.type.size
        piece = lambda v, off=off, n=n, x=x: b.reshape(
            b.slice(v, starts=(off,), stops=(off + n,), steps=(1,)), shape=x.shape
        )
        g = piece(total)
        if how in ("max", "min"):
            g = b.select(b.eq(x, piece(node.outputs[0])), g, b.full(0.0, x.shape, x.dtype))
        grads.append(g if x.type.is_float else None)
        off += n
    return grads


register(
    "allreduce",
    infer=_allreduce_infer,
    ref=_allreduce_ref,
    grad=_allreduce_grad,
    pattern="opaque",
    doc="the operands raveled and concatenated into one bucket, reduced elementwise across the processes of the "
    "group (reduce: sum, avg, max or min)",
    lowering="collective",
    communicates=True,
    flops=lambda n: n.outputs[0].type.size,
    roundoff=across_processes,
    torch_name="AllreduceBackward",
    fuzz=Fuzz(generator="allreduce", exact=True, smooth=True),  # a world of one: no kinks
)
