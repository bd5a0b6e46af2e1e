"""Heavy eager ops on native code.

Eager execution computes each op with its NumPy reference kernel. For heavy ops NumPy is slow next to graphnn's own
kernels: a convolution runs as im2col copies plus a BLAS call (its gradients as many more), a ReLU gradient over a
batch of feature maps as np.where. So once an op of about a megaflop or more (by its definition's cost rule) has been
called GRAPHNN_EAGER_NATIVE times with the same operand types and attributes (a training loop's second step), that
one-op graph is compiled (lowered as graphnn.compile lowers it: convolutions as GEMMs) and every later call with that
signature runs the native code. A smaller op stays on NumPy, where a call costs a few microseconds less, unless its
definition says its reference kernel is slow at any size (`slow_reference`: a convolution or pooling is a dozen NumPy
calls, 100-200 us at batch 1 against 10-20 us natively): such an op goes native when hot whatever its cost. The
choice depends on the signature alone, so a program computes the same bits at every run. Compiled code is kept per
signature (LRU), and on disk in the compile cache like any other graph.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from graphnn.ir import config
from graphnn.ir.graph import Graph, format_attr
from graphnn.ir.interpreter import run_node
from graphnn.ir.registry import get_op, node_flops
from graphnn.ir.types import TensorType, dtype_name

MIN_FLOPS = 1 << 20  # estimated floating-point operations below which NumPy's call overhead is the smaller
MAX_KEPT = 64  # compiled one-op graphs kept (least recently used dropped)

MAX_COUNTED = 4096  # signatures whose calls are counted (forgotten all at once beyond)

_lock = threading.Lock()
_calls: dict = {}  # signature -> calls so far, or -1: always NumPy (too small, or no native code)
_compiled: OrderedDict = OrderedDict()  # signature -> CompiledGraph


def eligible(d) -> bool:
    """May op definition d run natively in eager code: not a view or index remap (NumPy returns those without
    copying, and a view must share its base's memory), not an exchange with other processes and not an op compiled
    code runs on the host anyway."""
    return not (d.remap or d.view or d.communicates or d.host)


def run(node, arrays: list) -> list:
    """The results of `node` on `arrays`: native code for a hot heavy op, else the reference kernel."""
    d = get_op(node.op)
    if not eligible(d) or surely_small(d, node, arrays):
        return run_node(node, arrays)
    hot = config.get("GRAPHNN_EAGER_NATIVE")
    if not hot:
        return run_node(node, arrays)
    key = _signature(node, arrays)
    with _lock:
        native = _compiled.get(key)
        if native is not None:
            _compiled.move_to_end(key)
        calls = _calls.get(key, 0)
    if native is None:
        if calls < 0:
            return run_node(node, arrays)
        g = _one_op_graph(node, arrays)
        if calls == 0 and not d.slow_reference and node_flops(g.nodes[0]) < MIN_FLOPS:
            calls = -1
        else:
            calls += 1
        if calls >= hot:
            native = _compile(g)
            calls = -1 if native is None else 0
        with _lock:
            if len(_calls) >= MAX_COUNTED:
                _calls.clear()
            if native is None:
                _calls[key] = calls
            else:
                _calls.pop(key, None)
                _compiled[key] = native
                while len(_compiled) > MAX_KEPT:
                    _compiled.popitem(last=False)
        if native is None:
            return run_node(node, arrays)
    return native(arrays)


def surely_small(d, node, operands: list) -> bool:
    """Is the op's cost below MIN_FLOPS by a bound that needs no signature: an op with no schedule of its own (and
    not opaque: a scan's body runs once per step) costs about one operation per element it reads or writes; a product, convolution or pooling at most two per output
    element and element of its largest operand (k <= that size). The operands are arrays or IR types (both have
    .size)."""
    if d.slow_reference or d.pattern == "opaque":  # (a loop or a factorization: its cost rule decides)
        return False
    out = node.outputs[0].type.size
    if d.schedule is None and d.pattern != "out_fusable":
        if out >= MIN_FLOPS:
            return False
        for a in operands:
            if a.size >= MIN_FLOPS:
                return False
        return True
    largest = 1
    for a in operands:
        largest = max(largest, a.size)
    return 2 * out * largest < MIN_FLOPS


def _signature(node, arrays: list) -> tuple:
    attrs = ",".join(f"{a}={format_attr(x)}" for a, x in sorted(node.attrs.items()))
    return (node.op, attrs) + tuple((a.shape, a.dtype.str) for a in arrays)


def _one_op_graph(node, arrays: list) -> Graph:
    g = Graph(f"eager_{node.op}")
    ins = [g.add_input(TensorType(a.shape, dtype_name(a.dtype)), f"x{i}") for i, a in enumerate(arrays)]
    g.outputs = list(g.add_node(node.op, ins, dict(node.attrs)).outputs)
    return g


def _compile(g: Graph):
    """The graph's CompiledGraph, lowered as graphnn.compile lowers graphs; None when it cannot be compiled. Once
    an op has been compiled at two sizes of one dimension (a generation loop's growing context, a last short
    batch), one program serves every size (codegen/dynamic.py), so a new size costs no compile."""
    from graphnn.codegen import CompiledGraph, dynamic
    from graphnn.codegen.module import LoweringError
    from graphnn.ir.passes import lower_for_codegen

    try:
        lower_for_codegen(g)
        native = dynamic.native_for(g)
        if native is None:
            native = CompiledGraph(g)
            dynamic.compiled(g)
        return native
    except (LoweringError, NotImplementedError):
        return None


def clear() -> None:
    """Forget the compiled one-op graphs and call counts (tests)."""
    with _lock:
        _calls.clear()
        _compiled.clear()
