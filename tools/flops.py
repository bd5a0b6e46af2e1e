"""Floating-point operation counts per IR node (a multiply-add counts as 2).

matmul: 2*M*N*K; conv and its two gradients: 2 * output elements * C/groups * prod(kernel); elementwise and
broadcast ops: 1 per output element; reductions: 1 per input element; pooling: 1 per window element;
scan: `length` times its body; scatter-adds: 1 per added element; data movement (reshape, transpose, broadcast_to,
slice, full, constant, one_hot, gathers) and `call`: 0.
"""
from __future__ import annotations

import math

from graphnn.ir import Graph, Node, get_op

_ZERO = ("reshape", "transpose", "broadcast_to", "slice", "slice_grad", "full", "constant", "one_hot", "call",
         "stop_gradient", "cast")


def _size(shape) -> int:
    return math.prod(shape) if shape else 1


def node_flops(node: Node) -> int:
    """Estimated floating-point operations of one node."""
    op, ins, out = node.op, node.inputs, node.outputs[0]
    if op in _ZERO:
        return 0
    if op == "matmul":
        k = ins[0].shape[-1] if ins[0].shape else 1
        return 2 * _size(out.shape) * k
    if op == "conv":
        return 2 * _size(out.shape) * _size(ins[1].shape[1:])
    if op == "conv_grad_input":   # inputs: output gradient, weight
        return 2 * _size(ins[0].shape) * _size(ins[1].shape[1:])
    if op == "conv_grad_weight":  # inputs: conv input, output gradient; output: weight-shaped
        return 2 * _size(ins[1].shape) * _size(out.shape[1:])
    if op == "scan":  # the body runs `length` times
        body = getattr(node.attrs.get("body"), "graph", None)
        return node.attrs.get("length", 0) * graph_flops(body) if body is not None else 0
    if op in ("max_pool", "max_pool_select"):
        return _size(out.shape) * _size(node.attrs["kernel"])
    if op == "max_pool_grad":
        return _size(ins[1].shape) * _size(node.attrs["kernel"])
    if op in ("take_grad", "take_along_grad"):  # one add per gradient element
        return _size(ins[0].shape)
    pattern = get_op(op).pattern
    if pattern == "reduce":
        return _size(ins[0].shape)
    if pattern in ("elementwise", "broadcast"):
        return _size(out.shape)
    return 0


def graph_flops(graph: Graph) -> int:
    """Estimated floating-point operations of a whole graph."""
    return sum(node_flops(n) for n in graph.nodes)
