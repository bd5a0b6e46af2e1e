"""graphnn.distributed: training across processes on MPI, with torch.distributed's API.

    init_process_group("mpi")        # in every process of `mpirun -np N python train.py`
    all_reduce(t, op=ReduceOp.SUM)   # in place; AVG, MAX, MIN too
    broadcast(t, src=0); all_gather(tensors, t); barrier(); destroy_process_group()

Eager collectives call MPI through mpi4py; inside graphnn.compile, all_reduce, broadcast and all_gather become
`allreduce` ops of the compiled step (native calls of MPI; broadcast and all_gather as sums in which the other ranks
add zeros). Before an eager collective, the ranks compare their tensors' shapes (a small allgather), and a compiled
step compares its collectives at its first call: a mismatch is an error naming them, not a hang. A rank waits at most
GRAPHNN_DIST_TIMEOUT seconds (or init_process_group's timeout) in one collective; then it aborts the job. An uncaught
exception on any rank aborts the job too (after printing its traceback). Without MPI, importing graphnn works and
init_process_group says what to install.
"""

from __future__ import annotations

import os

import enum
import importlib.util
import math

import numpy as np

from graphnn.codegen import collective as _native
from graphnn.compiler import tracer as _tracer
from graphnn.core.dispatch import apply, located
from graphnn.core.grad_mode import no_grad
from graphnn.ir import collective as _collective, config
from graphnn.ir.registry import get_op
from graphnn.ir.types import TensorType


# Under mpirun, the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE), from the launcher's
# own: PyTorch programs read them before init_process_group (`ddp = int(os.environ.get("RANK", -1)) != -1`).
_LAUNCHER_VARS = {
    "RANK": ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"),
    "WORLD_SIZE": ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE"),
    "LOCAL_RANK": ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"),
    "LOCAL_WORLD_SIZE": ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"),
}


def _launcher_environment() -> None:
    if "RANK" in os.environ or not any(v in os.environ for v in _LAUNCHER_VARS["RANK"]):
        return
    for name, sources in _LAUNCHER_VARS.items():
        value = next((os.environ[v] for v in sources if v in os.environ), None)
        if value is not None:
            os.environ.setdefault(name, value)


_launcher_environment()

__all__ = [
    "ReduceOp",
    "all_gather",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "group",
    "init_process_group",
    "is_available",
    "is_initialized",
    "is_mpi_available",
    "is_nccl_available",
    "is_gloo_available",
    "Backend",
    "GroupMember",
    "new_group",
    "get_process_group_ranks",
    "monitored_barrier",
    "P2POp",
    "batch_isend_irecv",
    "send",
    "recv",
    "isend",
    "irecv",
    "reduce",
    "gather",
    "scatter",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "all_gather_into_tensor",
    "all_to_all",
    "all_to_all_single",
]

NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."
BACKENDS = ("mpi", "gloo")  # gloo: PyTorch's CPU backend name, accepted so scripts carry over (the transport is MPI)


class ReduceOp(enum.Enum):
    """How all_reduce combines the ranks' tensors (PyTorch's names)."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"  # (these four: eager code only)
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"


_NATIVE_OPS = ("sum", "avg", "max", "min")  # what the allreduce op (and compiled code) reduces with


class group:  # noqa: N801 (torch.distributed.group)
    WORLD = "WORLD"  # the default group: every process


_state: dict = {"group": None, "hook": None}


def is_available() -> bool:
    """Whether the MPI backend can be used (mpi4py is installed; MPI starts at init_process_group)."""
    return importlib.util.find_spec("mpi4py") is not None


is_mpi_available = is_available


def is_initialized() -> bool:
    return _state["group"] is not None


def _default(group=None, what: str = ""):
    """The process group to use (only the default group exists), or PyTorch's error when there is none."""
    if group not in (None, "WORLD") and group is not _state["group"]:
        raise ValueError(f"{what}: graphnn.distributed has one process group, the default one (got {group!r})")
    if _state["group"] is None:
        raise ValueError(NOT_INITIALIZED)
    return _state["group"]


def _timeout_seconds(timeout) -> float:
    if timeout is None:
        return config.get("GRAPHNN_DIST_TIMEOUT")
    seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)
    if not seconds > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return seconds


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout=None,
    world_size: int = -1,
    rank: int = -1,
    store=None,
    group_name: str = "",
    pg_options=None,
    device_id=None,
) -> None:
    """Join the processes MPI started (`mpirun -np N python train.py`, or one process without mpirun).

    backend: "mpi" (default; "gloo" is accepted and also runs on MPI). world_size and rank, when given, must be
    MPI's. timeout (a datetime.timedelta or seconds): how long a rank waits in one collective before it aborts the
    job (default GRAPHNN_DIST_TIMEOUT, 300 s)."""
    if _state["group"] is not None:
        raise ValueError("trying to initialize the default process group twice!")
    name = "mpi" if backend is None else str(backend).lower()
    if name not in BACKENDS:
        raise ValueError(f"graphnn.distributed runs on MPI: backend must be 'mpi' (or 'gloo'), got {backend!r}")
    seconds = _timeout_seconds(timeout)
    from ._mpi import ProcessGroup, install_excepthook, load_mpi

    pg = ProcessGroup(load_mpi(), seconds)
    launched = os.environ.get("WORLD_SIZE", "")
    if pg.size == 1 and launched.isdigit() and int(launched) > 1 and world_size in (None, -1):
        pg.free()  # (torchrun set WORLD_SIZE for processes MPI does not connect: each would train alone)
        raise RuntimeError(
            f"init_process_group: the environment says WORLD_SIZE={launched} (torchrun or torch.distributed.launch), "
            "but graphnn.distributed runs on MPI and this process is alone in its MPI world: launch with "
            f"mpirun -np {launched} python ... instead"
        )
    for given, actual, what in ((world_size, pg.size, "world_size"), (rank, pg.rank, "rank")):
        if given not in (None, -1) and given != actual:
            pg.free()
            raise ValueError(
                f"init_process_group: {what}={given}, but MPI started this process as {what} {actual} "
                f"(launch with mpirun -np {world_size if world_size not in (None, -1) else 'N'} python ...)"
            )
    _state["group"], _state["backend"] = pg, name
    _collective.set_group(pg)
    _native.set_backend(pg.native_handles(), guard=pg.watching, error_text=pg.error_text)
    if pg.size > 1 and _state["hook"] is None:
        _state["hook"] = install_excepthook(pg)


def destroy_process_group(group=None) -> None:
    """Leave the process group (collectives then refuse to run, compiled code is a world of one)."""
    pg = _default(group, "destroy_process_group")
    _collective.set_group(None)
    _native.set_backend(None)
    # (the hook that aborts the job on an uncaught exception stays: `try: train() finally: cleanup()` on a failing
    # rank left the others waiting in a collective until their timeout)
    _state.update(group=None)
    pg.free()


def get_rank(group=None) -> int:
    return _default(group, "get_rank").rank


def get_world_size(group=None) -> int:
    return _default(group, "get_world_size").size


def get_backend(group=None) -> str:
    """The backend init_process_group was given ("gloo" or "mpi"; the transport is MPI either way)."""
    _default(group, "get_backend")
    return _state.get("backend") or "mpi"


def is_torchelastic_launched() -> bool:
    """Was this process started by torchrun (torchelastic)? graphnn's ranks are started by mpirun."""
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


class Work:
    """The handle `async_op=True` returns: the collective has completed when it is returned (graphnn's
    collectives are synchronous)."""

    def wait(self, timeout=None) -> bool:
        return True

    def is_completed(self) -> bool:
        return True


def _done(async_op: bool):
    return Work() if async_op else None


# -- checks -------------------------------------------------------------------------------------------------------
def _type(t) -> str:
    return str(TensorType(tuple(t.shape), t.dtype_name))


def _check_tensor(t, what: str) -> None:
    from graphnn.core.tensor import Tensor

    if not isinstance(t, Tensor):
        raise TypeError(located(f"{what}: expected a graphnn Tensor, got {type(t).__name__}"))


def agree(pg, what: str, description) -> None:
    """Raise a RuntimeError on every rank when the ranks' descriptions (of the tensors of a collective) differ."""
    seen = pg.gather(description, f"the check of {what}")
    if all(d == seen[0] for d in seen):
        return
    ranks = "; ".join(f"rank {r}: {_show(d)}" for r, d in enumerate(seen))
    raise RuntimeError(located(f"{what}: the tensors differ between ranks ({ranks})"))


def _show(description) -> str:
    if isinstance(description, (list, tuple)):
        return ", ".join(_show(d) for d in description)
    return str(description)


def _eager() -> bool:
    return _tracer.current() is None


# -- collectives ----------------------------------------------------------------------------------------------------
def reduced(tensors: list, reduce: str, label: str):
    """The `allreduce` op: tensors concatenated into one flat bucket, reduced across the ranks (eager or traced).
    `label` names the collective in watchdog messages and in the checks of compiled steps."""
    pg = _state["group"]
    prev = pg.label if pg is not None else None
    if pg is not None:
        pg.label = label
    try:
        out = apply("allreduce", list(tensors), {"reduce": reduce})
    finally:
        if pg is not None:
            pg.label = prev
    if out._value is not None and out._value.producer is not None and not _eager():
        out._value.producer.meta["collective"] = label
    return out


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce `tensor` across the ranks, in place (op: ReduceOp.SUM, AVG, MAX or MIN)."""
    pg = _default(group, "all_reduce")
    _check_tensor(tensor, "all_reduce")
    reduce = ReduceOp(op).value if not isinstance(op, ReduceOp) else op.value
    if reduce not in _NATIVE_OPS or tensor.dtype_name == "bool":  # (products, bit operations, flags: on MPI)
        from .point_to_point import all_reduce_on_mpi

        return all_reduce_on_mpi(pg, tensor, reduce, async_op)
    with no_grad():
        if _eager():
            agree(pg, "all_reduce", [_type(tensor)])
        out = reduced([tensor], reduce, f"all_reduce of {_type(tensor)}")
        tensor._assign(out.reshape(tuple(tensor.shape)))
    return _done(async_op)


def is_nccl_available() -> bool:
    return False


def is_gloo_available() -> bool:
    """True where the MPI backend is ("gloo" names it in init_process_group)."""
    return is_available()


class Backend(str):
    """Backend names (Backend("gloo") == "gloo"); graphnn runs every one it accepts on MPI."""

    MPI, GLOO, NCCL, UNDEFINED = "mpi", "gloo", "nccl", "undefined"

    def __new__(cls, name: str):
        return str.__new__(cls, str(name).lower())


class GroupMember:
    WORLD = group.WORLD
    NON_GROUP_MEMBER = -100


def new_group(
    ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False, group_desc=None
):
    """The default group, when `ranks` are all the ranks (graphnn has one process group)."""
    pg = _default(None, "new_group")
    if ranks is not None and sorted(ranks) != list(range(pg.size)):
        raise NotImplementedError(f"new_group: graphnn has one process group, of every rank (asked for {list(ranks)})")
    return pg


def get_process_group_ranks(group=None) -> list:
    return list(range(_default(group, "get_process_group_ranks").size))


def monitored_barrier(group=None, timeout=None, wait_all_ranks: bool = False):
    """barrier() (graphnn's waits are all watched: GRAPHNN_DIST_TIMEOUT)."""
    return barrier(group)


class P2POp:
    """One message of batch_isend_irecv: P2POp(dist.isend or dist.irecv, tensor, peer)."""

    def __init__(self, op, tensor, peer: int, group=None, tag: int = 0):
        self.op, self.tensor, self.peer, self.group, self.tag = op, tensor, peer, group, tag


def batch_isend_irecv(p2p_op_list: list) -> list:
    """Start every message of the list; returns their requests (wait() on each)."""
    return [op.op(op.tensor, op.peer, op.group, op.tag) for op in p2p_op_list]


def broadcast(tensor, src: int = 0, group=None, async_op: bool = False, group_src=None):
    """Give every rank rank `src`'s value of `tensor`, in place."""
    pg = _default(group, "broadcast")
    _check_tensor(tensor, "broadcast")
    src = src if group_src is None else group_src
    if not 0 <= src < pg.size:
        raise ValueError(f"broadcast: src {src} is not a rank of a group of {pg.size}")
    with no_grad():
        broadcast_coalesced([tensor], src, f"broadcast of {_type(tensor)} from rank {src}")
    return _done(async_op)


def broadcast_coalesced(tensors: list, src: int, label: str) -> None:
    """Rank src's values of `tensors` on every rank, in place, in one exchange per dtype: eagerly MPI_Bcast; inside
    graphnn.compile an allreduce sum to which the other ranks add zeros (exact)."""
    pg = _default(None, "broadcast")
    if not tensors or pg.size == 1 and _eager():
        return
    by_dtype: dict = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype_name, []).append(t)
    for ts in by_dtype.values():
        if _eager():
            agree(pg, label, [_type(t) for t in ts])
            flat = np.concatenate([np.ascontiguousarray(t._data).reshape(-1) for t in ts])
            pg.wait(pg.comm.Ibcast(flat, root=src), label)
            pieces = _split(flat, ts)
        else:
            from graphnn.core.tensor import zeros_like

            mine = ts if pg.rank == src else [zeros_like(t) for t in ts]
            bucket = reduced(mine, "sum", label)
            pieces = [bucket[a:b].reshape(tuple(t.shape)) for t, (a, b) in zip(ts, _offsets(ts))]
        for t, p in zip(ts, pieces):
            t._assign(p)


def _offsets(tensors: list) -> list:
    out, off = [], 0
    for t in tensors:
        n = math.prod(t.shape)
        out.append((off, off + n))
        off += n
    return out


def _split(flat: np.ndarray, tensors: list) -> list:
    return [flat[a:b].reshape(tuple(t.shape)) for t, (a, b) in zip(tensors, _offsets(tensors))]


def all_gather(tensor_list: list, tensor, group=None, async_op: bool = False):
    """tensor_list[r] takes rank r's value of `tensor` (in place; one tensor of tensor's shape per rank)."""
    pg = _default(group, "all_gather")
    _check_tensor(tensor, "all_gather")
    if len(tensor_list) != pg.size:
        raise ValueError(located(f"all_gather: tensor_list holds {len(tensor_list)} tensors for {pg.size} ranks"))
    for i, t in enumerate(tensor_list):
        _check_tensor(t, "all_gather")
        if tuple(t.shape) != tuple(tensor.shape) or t.dtype_name != tensor.dtype_name:
            raise ValueError(
                located(f"all_gather: tensor_list[{i}] is {_type(t)}, the gathered tensor is {_type(tensor)}")
            )
    label = f"all_gather of {_type(tensor)}"
    with no_grad():
        if _eager():
            agree(pg, label, [_type(tensor)])
            send = np.ascontiguousarray(tensor._data)
            recv = np.empty((pg.size,) + send.shape, send.dtype)
            pg.wait(pg.comm.Iallgather(send, recv), label)
            pieces = list(recv)
        else:
            from graphnn.core.tensor import zeros_like

            # (compiled: a sum of zero-padded pieces; bool tensors travel as int64, the reduction's narrowest type)
            sent = tensor.long() if tensor.dtype_name == "bool" else tensor
            mine = [sent if r == pg.rank else zeros_like(sent) for r in range(pg.size)]
            bucket = reduced(mine, "sum", label).reshape((pg.size,) + tuple(tensor.shape))
            pieces = [bucket[r] if sent is tensor else bucket[r] != 0 for r in range(pg.size)]
        for t, p in zip(tensor_list, pieces):
            t._assign(p)
    return _done(async_op)


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Wait until every rank has reached its barrier()."""
    pg = _default(group, "barrier")
    if not _eager():
        raise RuntimeError(
            located("barrier() cannot run inside graphnn.compile: call it outside the compiled function")
        )
    pg.wait(pg.comm.Ibarrier(), "barrier")
    return _done(async_op)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """object_list[r] = rank r's `obj` (any picklable object)."""
    pg = _default(group, "all_gather_object")
    if len(object_list) != pg.size:
        raise ValueError(f"all_gather_object: object_list holds {len(object_list)} entries for {pg.size} ranks")
    object_list[:] = pg.gather(obj, "all_gather_object")


def gather_object(obj, object_gather_list=None, dst: int = 0, group=None) -> None:
    """On rank dst, object_gather_list[r] = rank r's `obj` (other ranks pass None)."""
    pg = _default(group, "gather_object")
    seen = pg.gather(obj, "gather_object")
    if pg.rank == dst:
        if object_gather_list is None or len(object_gather_list) != pg.size:
            raise ValueError(f"gather_object: rank {dst} needs an object_gather_list of {pg.size} entries")
        object_gather_list[:] = seen


def scatter_object_list(scatter_object_output_list: list, scatter_object_input_list=None, src: int = 0, group=None):
    """scatter_object_output_list[0] = rank src's scatter_object_input_list[this rank]."""
    pg = _default(group, "scatter_object_list")
    if not isinstance(scatter_object_output_list, list) or len(scatter_object_output_list) < 1:
        raise ValueError("Expected argument scatter_object_output_list to be a list of size at least 1.")
    inputs = pg.gather(list(scatter_object_input_list) if pg.rank == src else None, "scatter_object_list")[src]
    if inputs is None or len(inputs) != pg.size:
        raise ValueError(f"scatter_object_list: rank {src} must give one object per rank ({pg.size})")
    scatter_object_output_list[0] = inputs[pg.rank]


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """object_list takes rank src's entries (picklable objects), in place."""
    pg = _default(group, "broadcast_object_list")
    object_list[:] = pg.gather(list(object_list), "broadcast_object_list")[src]


def check_compiled(graph, name: str) -> None:
    """At the first call of compiled code that communicates: the ranks must run the same collectives (same order,
    types and reductions), else every rank raises an error naming them."""
    pg = _state["group"]
    if pg is None or pg.size == 1:
        return
    mine = []
    for n in graph.nodes:
        if get_op(n.op).communicates:
            ins = ", ".join(str(v.type) for v in n.inputs)
            label = n.meta.get("collective", n.op)
            mine.append(f"{label}: {n.op}({ins}) reduce={n.attrs.get('reduce')}")
    seen = pg.gather(mine, f"the first-call check of compiled {name}")
    if all(s == seen[0] for s in seen):
        return
    lines = []
    for i in range(max(len(s) for s in seen)):
        row = [s[i] if i < len(s) else "(none)" for s in seen]
        if any(r != row[0] for r in row):
            lines.append(f"collective {i}: " + "; ".join(f"rank {r}: {x}" for r, x in enumerate(row)))
    raise RuntimeError(
        located(
            f"graphnn.compile: compiled {name} runs different collectives on different ranks:\n  " + "\n  ".join(lines)
        )
    )


from .point_to_point import (  # noqa: E402
    all_gather_into_tensor,
    all_to_all,
    all_to_all_single,
    gather,
    irecv,
    isend,
    recv,
    reduce,
    reduce_scatter,
    reduce_scatter_tensor,
    scatter,
    send,
)
