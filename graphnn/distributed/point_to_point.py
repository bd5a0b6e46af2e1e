"""torch.distributed's other collectives and its point-to-point messages, in eager code, on MPI.

send/recv (and isend/irecv, whose Work completes on wait()), reduce, gather, scatter, reduce_scatter(_tensor),
all_gather_into_tensor and all_to_all(_single) move NumPy arrays through the process group's communicator, each
wait under the watchdog. The bandwidth-heavy ones a training step uses inside graphnn.compile (all_reduce,
broadcast, all_gather) are in graphnn.distributed itself; these run outside compiled functions.
"""

from __future__ import annotations

import numpy as np

from graphnn.core.dispatch import located
from graphnn.core.grad_mode import no_grad


def _pg(group, what: str):
    from graphnn import distributed as dist

    if not dist._eager():
        raise RuntimeError(
            located(f"{what}() cannot run inside graphnn.compile: call it outside the compiled function")
        )
    return dist._default(group, what)


# MPI's operation for each ReduceOp value: on numbers, and on bool tensors (MAX / SUM: any, MIN / PRODUCT: all)
_NUMERIC = {"sum": "SUM", "avg": "SUM", "max": "MAX", "min": "MIN", "product": "PROD"}
_NUMERIC.update(band="BAND", bor="BOR", bxor="BXOR")
_LOGICAL = {"sum": "LOR", "max": "LOR", "bor": "LOR", "min": "LAND", "product": "LAND", "band": "LAND", "bxor": "LXOR"}


def _mpi_op(pg, op, dtype: str = "float32", what: str = "reduce"):
    """(MPI's operation for ReduceOp op on tensors of dtype, whether the result is then divided by the ranks)."""
    from graphnn.distributed import ReduceOp

    reduce = (op if isinstance(op, ReduceOp) else ReduceOp(op)).value
    name = (_LOGICAL if dtype == "bool" else _NUMERIC).get(reduce)
    if name is None:
        raise ValueError(located(f"{what}: {reduce} does not apply to a {dtype} tensor"))
    return getattr(pg.MPI, name), reduce == "avg"


def all_reduce_on_mpi(pg, tensor, reduce: str, async_op: bool):
    """all_reduce of a bool tensor, or with PRODUCT, BAND, BOR or BXOR (which compiled code does not reduce with):
    eager code, through MPI directly."""
    from graphnn import distributed as dist

    if not dist._eager():
        raise RuntimeError(
            located(f"all_reduce with {reduce} of a {tensor.dtype_name} tensor cannot run inside graphnn.compile")
        )
    mpi_op, _average = _mpi_op(pg, reduce, tensor.dtype_name, "all_reduce")
    data = _array(tensor)
    dist.agree(pg, "all_reduce", [dist._type(tensor), reduce])
    pg.wait(pg.comm.Iallreduce(pg.MPI.IN_PLACE, data, mpi_op), f"all_reduce ({reduce}) of {dist._type(tensor)}")
    _store(tensor, data)
    return _finish(async_op)


def _array(t) -> np.ndarray:
    return np.ascontiguousarray(t._concrete("a collective"))


def _store(t, values: np.ndarray) -> None:
    with no_grad():
        t._assign(np.asarray(values, t._data.dtype).reshape(tuple(t.shape)))


class Request:
    """What isend/irecv return: wait() completes the message (and fills the receiving tensor)."""

    def __init__(self, pg, request, what: str, done=None):
        self.pg, self.request, self.what, self.done, self.finished = pg, request, what, done, False

    def wait(self, timeout=None) -> bool:
        if not self.finished:
            self.pg.wait(self.request, self.what)
            self.finished = True
            if self.done is not None:
                self.done()
        return True

    def is_completed(self) -> bool:
        if not self.finished and self.request.Test():
            self.finished = True
            if self.done is not None:
                self.done()
        return self.finished


def isend(tensor, dst: int, group=None, tag: int = 0) -> Request:
    pg = _pg(group, "isend")
    data = _array(tensor).copy()  # (the message keeps its own copy until it is delivered)
    return Request(pg, pg.comm.Isend(data, dest=dst, tag=tag), f"isend to rank {dst}")


def irecv(tensor, src: int | None = None, group=None, tag: int = 0) -> Request:
    pg = _pg(group, "irecv")
    buf = np.empty_like(_array(tensor))
    source = pg.MPI.ANY_SOURCE if src is None else src
    return Request(
        pg, pg.comm.Irecv(buf, source=source, tag=tag), f"irecv from rank {src}", lambda: _store(tensor, buf)
    )


def send(tensor, dst: int, group=None, tag: int = 0) -> None:
    """Send `tensor` to rank dst (which calls recv)."""
    isend(tensor, dst, group, tag).wait()


def recv(tensor, src: int | None = None, group=None, tag: int = 0) -> int:
    """Receive into `tensor` (in place) from rank src (any rank when None); returns the sender's rank."""
    pg = _pg(group, "recv")
    buf = np.empty_like(_array(tensor))
    status = pg.MPI.Status()
    source = pg.MPI.ANY_SOURCE if src is None else src
    with pg.watching(f"recv from rank {src}"):
        pg.comm.Recv(buf, source=source, tag=tag, status=status)
    _store(tensor, buf)
    return status.Get_source()


def _finish(async_op: bool):
    from graphnn.distributed import _done

    return _done(async_op)


def _averaged(values: np.ndarray, average: bool, size: int) -> np.ndarray:
    return values / values.dtype.type(size) if average else values


def reduce(tensor, dst: int = 0, op=None, group=None, async_op: bool = False):
    """Rank dst's tensor becomes the reduction of every rank's (the others keep theirs)."""
    pg = _pg(group, "reduce")
    mpi_op, average = _mpi_op(pg, op if op is not None else "sum")
    send = _array(tensor)
    out = np.empty_like(send)
    pg.wait(pg.comm.Ireduce(send, out, op=mpi_op, root=dst), f"reduce to rank {dst}")
    if pg.rank == dst:
        _store(tensor, _averaged(out, average, pg.size))
    return _finish(async_op)


def gather(tensor, gather_list=None, dst: int = 0, group=None, async_op: bool = False):
    """gather_list[r] on rank dst takes rank r's tensor."""
    pg = _pg(group, "gather")
    send = _array(tensor)
    out = np.empty((pg.size,) + send.shape, send.dtype) if pg.rank == dst else None
    pg.wait(pg.comm.Igather(send, out, root=dst), f"gather to rank {dst}")
    if pg.rank == dst:
        if gather_list is None or len(gather_list) != pg.size:
            raise ValueError(located(f"gather: rank {dst} needs a gather_list of {pg.size} tensors"))
        for t, piece in zip(gather_list, out):
            _store(t, piece)
    return _finish(async_op)


def scatter(tensor, scatter_list=None, src: int = 0, group=None, async_op: bool = False):
    """tensor on rank r takes scatter_list[r] of rank src."""
    pg = _pg(group, "scatter")
    recv = np.empty_like(_array(tensor))
    send = None
    if pg.rank == src:
        if scatter_list is None or len(scatter_list) != pg.size:
            raise ValueError(located(f"scatter: rank {src} needs a scatter_list of {pg.size} tensors"))
        send = np.ascontiguousarray(np.stack([_array(t) for t in scatter_list]))
    pg.wait(pg.comm.Iscatter(send, recv, root=src), f"scatter from rank {src}")
    _store(tensor, recv)
    return _finish(async_op)


def reduce_scatter_tensor(output, input, op=None, group=None, async_op: bool = False):  # noqa: A002
    """output on rank r takes the reduction, over the ranks, of block r of input (world_size blocks of output's
    size along the first dimension)."""
    pg = _pg(group, "reduce_scatter_tensor")
    mpi_op, average = _mpi_op(pg, op if op is not None else "sum")
    send = _array(input)
    out = np.empty_like(_array(output))
    if send.size != out.size * pg.size:
        raise ValueError(located(f"reduce_scatter_tensor: input has {send.size} elements, not {pg.size} x {out.size}"))
    pg.wait(pg.comm.Ireduce_scatter_block(send, out, op=mpi_op), "reduce_scatter")
    _store(output, _averaged(out, average, pg.size))
    return _finish(async_op)


def reduce_scatter(output, input_list: list, op=None, group=None, async_op: bool = False):
    """output on rank r takes the reduction of every rank's input_list[r]."""
    from graphnn.core.tensor import Tensor

    flat = Tensor._wrap(np.concatenate([_array(t).reshape(-1) for t in input_list]))
    return reduce_scatter_tensor(output, flat, op, group, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """output_tensor holds every rank's input_tensor, in rank order along the first dimension."""
    pg = _pg(group, "all_gather_into_tensor")
    send = _array(input_tensor)
    out = np.empty((pg.size,) + send.shape, send.dtype)
    pg.wait(pg.comm.Iallgather(send, out), "all_gather_into_tensor")
    _store(output_tensor, out)
    return _finish(async_op)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None, async_op=False):  # noqa: A002
    """Block r of input goes to rank r; output's block r comes from rank r (equal blocks along dimension 0)."""
    pg = _pg(group, "all_to_all_single")
    if output_split_sizes is not None or input_split_sizes is not None:
        raise NotImplementedError("all_to_all_single: only equal splits (no split sizes) are supported")
    send = _array(input)
    out = np.empty_like(_array(output))
    pg.wait(pg.comm.Ialltoall(send, out), "all_to_all")
    _store(output, out)
    return _finish(async_op)


def all_to_all(output_tensor_list: list, input_tensor_list: list, group=None, async_op: bool = False):
    """output_tensor_list[r] takes rank r's input_tensor_list[my rank] (tensors of one shape)."""
    pg = _pg(group, "all_to_all")
    send = np.ascontiguousarray(np.stack([_array(t) for t in input_tensor_list]))
    out = np.empty_like(send)
    pg.wait(pg.comm.Ialltoall(send, out), "all_to_all")
    for t, piece in zip(output_tensor_list, out):
        _store(t, piece)
    return _finish(async_op)
