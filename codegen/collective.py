"""Collective ops in native code: MPI's nonblocking allreduce, called through entry points the API layer registers.

Compiled modules hold the address of TABLE in the module global TABLE_VAR (set when the code is loaded, as the
worker pool's address is): int64 fields (FIELDS) giving the world size, the communicator, the addresses of
MPI_Iallreduce, MPI_Test and MPI_Wait, MPI_IN_PLACE, and the datatype and reduction handles. graphnn.distributed
fills it from mpi4py (the entry points of the MPI library mpi4py loaded, handles from MPI._handleof) when a process
group starts and clears it when the group ends; without a communicator compiled code is a world of one, as the
reference kernels are. Handles travel as 64-bit integers, which fits Open MPI's pointers and MPICH's ints alike in
the x86-64 calling convention.

An allreduce starts in the graph function where its group comes: its operands are copied into the bucket (avg:
times 1 / size), then MPI_Iallreduce reduces the bucket in place. The request lives in the graph function's frame;
after each later kernel MPI_Test lets MPI progress the exchange, and MPI_Wait completes it right before the first
kernel that reads the bucket (or at the end of the call). A failing MPI call records an error in the call's status
words, and the runtime raises CollectiveError after the call (in-place updates are then skipped).
"""

from __future__ import annotations

import ctypes

import llvmlite.ir as ir

from graphnn.ir import config

from .kernel import I64, LLTYPE, MEMTYPE, PTR, emit_loop, i64

TABLE_VAR = "graphnn_collectives"  # module global: address of TABLE (set by the runtime)
FIELDS = (
    "world_size",
    "comm",
    "iallreduce",
    "test",
    "wait",
    "in_place",
    "float32",
    "float64",
    "int64",
    "sum",
    "max",
    "min",
)
TABLE = (ctypes.c_int64 * len(FIELDS))()
TABLE[FIELDS.index("world_size")] = 1
ERROR_TAG = "collective: "  # status messages with this prefix are raised as CollectiveError
REQUEST_BYTES = 64  # room for an MPI_Request of any implementation (Open MPI: a pointer, MPICH: an int)
STATUS_BYTES = 64  # room for an MPI_Status
I32 = ir.IntType(32)
_hooks: dict = {"guard": None, "error_text": None}


class CollectiveError(RuntimeError):
    """An MPI call made by compiled code failed (the message names the collective and MPI's error)."""


def set_backend(handles: dict | None, guard=None, error_text=None) -> None:
    """Install the MPI entry points and handles compiled code calls (a dict with every name in FIELDS), or with
    None a world of one. guard(what): a context manager around each call of compiled code that communicates (e.g. a
    watchdog); error_text(code): MPI's text for an error code."""
    for i, name in enumerate(FIELDS):
        TABLE[i] = int(handles[name]) if handles else int(name == "world_size")
    _hooks["guard"], _hooks["error_text"] = (guard, error_text) if handles else (None, None)


def table_address() -> int:
    return ctypes.addressof(TABLE)


def guard():
    """The registered guard of calls that communicate, or None."""
    return _hooks["guard"]


def error(message: str, code: int) -> CollectiveError:
    """The exception for a failed MPI call recorded in the status words."""
    text = _hooks["error_text"]
    detail = f" ({text(code)})" if text is not None else ""
    return CollectiveError(message[len(ERROR_TAG) :].replace("{value}", str(code)) + detail)


def overlap() -> bool:
    """GRAPHNN_DIST_OVERLAP: wait for a bucket where it is first read (else right after starting it)."""
    return config.get("GRAPHNN_DIST_OVERLAP")


class Pending:
    """A started allreduce in a graph function: progress() and complete() emit the MPI calls that drive it."""

    def __init__(self, mb, eb: ir.IRBuilder, table, request, started, status, describe: str):
        self.mb, self.eb, self.table, self.request, self.started, self.status = mb, eb, table, request, started, status
        self.describe = describe
        self.label = describe  # the profile counter's name (set by the module builder)
        self._flag = eb.alloca(I32)
        self._mpi_status = eb.alloca(ir.ArrayType(ir.IntType(8), STATUS_BYTES))

    def _if_started(self, body) -> None:
        eb = self.eb
        with eb.if_then(eb.icmp_signed("!=", eb.load(self.started), i64(0))):
            body()

    def progress(self) -> None:
        """MPI_Test: lets MPI move the exchange on between kernels."""

        def test():
            fn = _entry(self.eb, self.table, "test", ir.FunctionType(I32, [PTR, PTR, PTR]))
            rc = self.eb.call(fn, [self.request, self._flag, self._mpi_status])
            self._check(rc, "MPI_Test")

        self._if_started(test)

    def complete(self) -> None:
        """MPI_Wait: the bucket holds the reduced values after it."""

        def wait():
            fn = _entry(self.eb, self.table, "wait", ir.FunctionType(I32, [PTR, PTR]))
            rc = self.eb.call(fn, [self.request, self._mpi_status])
            self._check(rc, "MPI_Wait")
            self.eb.store(i64(0), self.started)

        self._if_started(wait)

    def _check(self, rc, call: str) -> None:
        record(self.mb, self.eb, self.status, rc, f"{self.describe}: {call} failed with MPI error {{value}}")
        eb = self.eb
        with eb.if_then(eb.icmp_signed("!=", rc, ir.Constant(I32, 0)), likely=False):
            eb.store(i64(0), self.started)


def record(mb, eb: ir.IRBuilder, status, rc, message: str) -> None:
    """If rc (an MPI return code) is not MPI_SUCCESS, keep `message` and rc in the status words (the first error)."""
    if ERROR_TAG + message not in mb.errors:
        mb.errors.append(ERROR_TAG + message)
    code = mb.errors.index(ERROR_TAG + message) + 1
    with eb.if_then(eb.icmp_signed("!=", rc, ir.Constant(I32, 0)), likely=False):
        with eb.if_then(eb.icmp_signed("==", eb.load(status, typ=I64), i64(0))):
            eb.store(i64(code), status)
            eb.store(eb.sext(rc, I64), eb.gep(status, [i64(1)], source_etype=I64))


def _field(eb: ir.IRBuilder, table, name: str):
    return eb.load(eb.gep(table, [i64(FIELDS.index(name))], source_etype=I64), typ=I64)


def _entry(eb: ir.IRBuilder, table, name: str, ftype: ir.FunctionType):
    return eb.inttoptr(_field(eb, table, name), ir.PointerType(ftype))


def start(mb, fn: ir.Function, eb: ir.IRBuilder, node, ptr_of) -> Pending:
    """Emit an allreduce's start at the builder's position: fill the bucket from the operands, then start
    MPI_Iallreduce on it when there is a communicator of more than one process."""
    out = node.outputs[0]
    dt = out.dtype
    reduce = node.attrs["reduce"]
    table = eb.inttoptr(eb.load(mb.collectives), PTR)
    world = _field(eb, table, "world_size")
    dst = ptr_of(out.id)
    T = MEMTYPE[dt]
    scale = None
    if reduce == "avg":
        inv = eb.fdiv(ir.Constant(ir.DoubleType(), 1.0), eb.sitofp(world, ir.DoubleType()))
        scale = inv if dt == "float64" else eb.fptrunc(inv, LLTYPE[dt])
    off = 0
    for x in node.inputs:
        n, src = x.type.size, ptr_of(x.id)
        base = eb.gep(dst, [i64(off)], source_etype=T, inbounds=True)
        if scale is None:
            mb.memcpy(eb, base, src, x.type.nbytes)
        elif n:

            def body(j, src=src, base=base):
                v = eb.load(eb.gep(src, [j], source_etype=T, inbounds=True), typ=T)
                eb.store(eb.fmul(v, scale), eb.gep(base, [j], source_etype=T, inbounds=True))

            emit_loop(fn, eb, n, body)
        off += n
    request = eb.alloca(ir.ArrayType(ir.IntType(8), REQUEST_BYTES))
    started = eb.alloca(I64)
    eb.store(i64(0), started)
    status = ptr_of("status")
    what = f"allreduce({out.type}, reduce={reduce})"
    comm = _field(eb, table, "comm")
    exchange = eb.and_(eb.icmp_signed("!=", comm, i64(0)), eb.icmp_signed(">", world, i64(1)))
    if out.type.size:
        with eb.if_then(exchange):
            ftype = ir.FunctionType(I32, [PTR, PTR, I32, I64, I64, I64, PTR])
            in_place = eb.inttoptr(_field(eb, table, "in_place"), PTR)
            args = [in_place, dst, ir.Constant(I32, out.type.size), _field(eb, table, dt)]
            args += [_field(eb, table, "sum" if reduce == "avg" else reduce), comm, request]
            rc = eb.call(_entry(eb, table, "iallreduce", ftype), args)
            record(mb, eb, status, rc, f"{what}: MPI_Iallreduce failed with MPI error {{value}}")
            eb.store(eb.select(eb.icmp_signed("==", rc, ir.Constant(I32, 0)), i64(1), i64(0)), started)
    return Pending(mb, eb, table, request, started, status, what)
