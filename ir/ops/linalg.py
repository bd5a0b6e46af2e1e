"""Matrix multiplication (batched, with broadcasting batch dimensions)."""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ..roundoff import reduction
from ..types import TensorType, broadcast_shapes, promote
from ._util import unbroadcast
from ..rows import leading_operand_rows


def _matmul_infer(types, attrs):
    a, b = types
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError("matmul needs inputs with at least 2 dimensions")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"inner dimensions differ: {a.shape[-1]} vs {b.shape[-2]}")
    if a.dtype != b.dtype or not a.is_float:
        raise TypeError(f"matmul needs two floating inputs of one dtype, got {a.dtype} and {b.dtype}")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return TensorType(batch + (a.shape[-2], b.shape[-1]), promote(a.dtype, b.dtype))


def _swap_last(b, v):
    perm = tuple(range(v.type.ndim - 2)) + (v.type.ndim - 1, v.type.ndim - 2)
    return b.transpose(v, perm=perm)


def _matmul_grad(b, node, cts):
    x, y = node.inputs
    g = cts[0]
    return [
        unbroadcast(b, b.matmul(g, _swap_last(b, y)), x.shape),
        unbroadcast(b, b.matmul(_swap_last(b, x), g), y.shape),
    ]


register(
    "matmul",
    infer=_matmul_infer,
    ref=lambda a, at: np.matmul(a[0], a[1]),
    grad=_matmul_grad,
    pattern="out_fusable",
    num_inputs=2,
    doc="(..., M, K) @ (..., K, N) -> (..., M, N)",
    lowering="matmul",
    schedule="gemm",
    flops=lambda n: 2 * n.outputs[0].type.size * n.inputs[0].shape[-1],
    torch_name="MmBackward0",
    fuzz=Fuzz(generator="matmul", smooth=True, body=True),
    roundoff=reduction(lambda n, ins: np.shape(ins[0])[-1]),
    rows=leading_operand_rows,
)
