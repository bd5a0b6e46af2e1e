"""Host calls: compiled code running an op on the Python side, with the op's NumPy reference kernel.

An op defined with `host=True` (dense factorizations, say: LAPACK through NumPy beats any loop nest written here) is
a kernel of its own in the fusion plan. At its place the graph function fills an array of buffer pointers (its
inputs, then its outputs) and calls `int32 callback(i64 graph, i64 index, ptr buffers)`, whose address is in the
module global FN_VAR; the graph's id is in CTX_VAR (both set when the code is loaded). The callback (one ctypes
CFUNCTYPE for the process: ctypes takes the GIL again for it) wraps the pointers as NumPy arrays of the node's
types, runs the reference kernel and writes the results in place. It never raises into native code: a failure
keeps the exception (per thread), returns 1, the graph function records it in the call's status words, and the
runtime raises it after the call (as HostCallError naming the op and shapes).

Host calls are numbered by their place among the graph's nodes (host_nodes), so code from the compile cache finds
its nodes in an equivalent graph. Graphs with equal keys share loaded code, and so share one id.
"""

from __future__ import annotations

import ctypes
import threading

import llvmlite.ir as ir
import numpy as np

from graphnn.ir.graph import Graph
from graphnn.ir.registry import LinAlgError, describe, get_op

from .kernel import I64, PTR, i64

FN_VAR = "graphnn_host_fn"  # module global: address of the callback (set by the runtime)
CTX_VAR = "graphnn_host_graph"  # module global: the id of the graph whose host nodes the indices name
ERROR_TAG = "host: "  # status messages with this prefix are raised as the callback's exception
I32 = ir.IntType(32)
CALL = ir.FunctionType(I32, [I64, I64, PTR])


class HostCallError(ValueError, RuntimeError):
    """An op that compiled code ran on the host failed (a singular matrix, say); the message names the op and shapes
    (a ValueError as the eager op's error is, and a RuntimeError as PyTorch's)."""


class HostLinAlgError(HostCallError, LinAlgError):
    """A linear-algebra op that compiled code ran on the host found a singular (or not positive-definite) matrix."""


def is_host(node) -> bool:
    return get_op(node.op).host


def host_nodes(graph: Graph) -> list:
    """The graph's host-call nodes in the order their indices number them."""
    return [n for n in graph.nodes if get_op(n.op).host]


# -- the Python side -----------------------------------------------------------------------------------------------
_graphs: dict = {}  # graph key -> id
_nodes: list = []  # id -> [(op, attrs, input types, output types)] per host call
_lock = threading.Lock()
_failed = threading.local()  # .error: (exception, description) of the last failed call on this thread


def register(key: str, graph: Graph) -> int:
    """The id of the graph with this key (its host nodes kept for the callback)."""
    with _lock:
        gid = _graphs.get(key)
        if gid is None:
            gid = _graphs[key] = len(_nodes)
            _nodes.append(
                [
                    (n.op, dict(n.attrs), [v.type for v in n.inputs], [o.type for o in n.outputs])
                    for n in host_nodes(graph)
                ]
            )
        return gid


def _array(address: int, t, writeable: bool) -> np.ndarray:
    dt = np.dtype(t.dtype if t.dtype != "bool" else np.bool_)
    nbytes = t.size * dt.itemsize
    if nbytes == 0:
        return np.empty(t.shape, dt)
    a = np.frombuffer((ctypes.c_char * nbytes).from_address(address), dt).reshape(t.shape)
    a.flags.writeable = writeable
    return a


def _call(gid: int, index: int, buffers) -> int:
    op = types = attrs = None
    try:
        op, attrs, types, outs = _nodes[gid][index]
        arrays = [_array(buffers[i], t, False) for i, t in enumerate(types)]
        results = get_op(op).run(arrays, attrs)
        if len(results) != len(outs):
            raise ValueError(f"the reference kernel gave {len(results)} results, expected {len(outs)}")
        for j, (r, t) in enumerate(zip(results, outs)):
            r = np.asarray(r)
            if r.shape != t.shape:
                raise ValueError(f"result {j} has shape {r.shape}, expected {t.shape}")
            if t.size:
                _array(buffers[len(types) + j], t, True)[...] = r
        return 0
    except BaseException as e:  # noqa: BLE001 - nothing may propagate into native code
        what = describe(op, types, attrs) if op is not None else f"host call {index}"
        if getattr(_failed, "error", None) is None:
            _failed.error = (e, what)
        return 1


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p))(_call)


def callback_address() -> int:
    return ctypes.cast(_CALLBACK, ctypes.c_void_p).value


def clear_error() -> None:
    _failed.error = None


def error(message: str) -> Exception:
    """The exception for a failed host call recorded in the status words (the callback's, when it kept one)."""
    kept = getattr(_failed, "error", None)
    _failed.error = None
    if kept is None:
        return HostCallError(message[len(ERROR_TAG) :] + " failed")
    e, what = kept
    err = (HostLinAlgError if isinstance(e, np.linalg.LinAlgError) else HostCallError)(f"{what}: {e}")
    err.__cause__ = e
    return err


# -- the native side -----------------------------------------------------------------------------------------------
def emit_call(mb, eb: ir.IRBuilder, node, index: int, ptr_of) -> None:
    """At the builder's position: call the host for node (host call `index`), recording a failure in the status."""
    vals = list(node.inputs) + list(node.outputs)
    block = eb.alloca(ir.ArrayType(PTR, max(1, len(vals))))
    for i, v in enumerate(vals):
        eb.store(ptr_of(v.id), eb.gep(block, [i64(0), i64(i)], inbounds=True))
    fn = eb.inttoptr(eb.load(mb.host_fn), ir.PointerType(CALL))
    rc = eb.call(fn, [eb.load(mb.host_graph), i64(index), eb.bitcast(block, PTR)])
    message = ERROR_TAG + describe(node.op, [v.type for v in node.inputs], node.attrs)
    if message not in mb.errors:
        mb.errors.append(message)
    code = mb.errors.index(message) + 1
    status = ptr_of("status")
    with eb.if_then(eb.icmp_signed("!=", rc, ir.Constant(I32, 0)), likely=False):
        with eb.if_then(eb.icmp_signed("==", eb.load(status, typ=I64), i64(0))):
            eb.store(i64(code), status)
            eb.store(i64(index), eb.gep(status, [i64(1)], source_etype=I64))
