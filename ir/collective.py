"""The processes collective ops compute across (ir/ops/collective.py).

A process group is installed by the API layer (graphnn.distributed.init_process_group); without one, a process is
a world of one, where a reduction across processes leaves its operand as it is. A group provides

    size, rank                 the number of processes and this one's position
    allreduce(array, reduce)   reduce a C-contiguous NumPy array in place, elementwise across the processes
                               (reduce: "sum", "max" or "min"); every process calls it in the same order, with arrays
                               of one size and dtype

The reference kernels call `allreduce` here; compiled code calls MPI itself (codegen/collective.py).
"""

from __future__ import annotations

import numpy as np

REDUCE_OPS = ("sum", "avg", "max", "min")  # avg: each process contributes x / size, then a sum (PyTorch DDP's)

_group: list = [None]


def set_group(group) -> None:
    """Install the process group collectives run over (None: a world of one)."""
    _group[0] = group


def current_group():
    return _group[0]


def world_size() -> int:
    g = _group[0]
    return 1 if g is None else int(g.size)


def allreduce(array: np.ndarray, reduce: str) -> np.ndarray:
    """`array` (C-contiguous, written in place) reduced elementwise across the processes of the group."""
    if reduce not in ("sum", "max", "min"):
        raise ValueError(f"allreduce: unknown reduction {reduce!r} (sum, max or min)")
    g = _group[0]
    if g is not None and g.size > 1 and array.size:
        g.allreduce(array, reduce)
    return array
