"""Index-driven and higher-order primitives: one_hot and call (a compiled subgraph)."""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ..roundoff import zero
from ..types import TensorType


def _one_hot_infer(types, attrs):
    t = types[0]
    if t.dtype != "int64":
        raise TypeError(f"one_hot needs int64 indices, got {t.dtype}")
    return TensorType(t.shape + (attrs["num_classes"],), attrs.get("dtype", "float32"))


def _one_hot_ref(a, attrs):
    idx = a[0]
    return (idx[..., None] == np.arange(attrs["num_classes"])).astype(attrs.get("dtype", "float32"))


register(
    "one_hot",
    infer=_one_hot_infer,
    ref=_one_hot_ref,
    grad=None,
    pattern="injective",
    num_inputs=1,
    doc="out[..., c] = (indices[...] == c); indices outside [0, C) give a zero row",
    lowering="one_hot",
    roundoff=zero,
    flops=lambda node: 0,
    fuzz=Fuzz(generator="one_hot", smooth=True, exact=True),
)


def _call_infer(types, attrs):
    return attrs["fn"].out_types(types)


register(
    "call",
    infer=_call_infer,
    ref=lambda a, attrs: attrs["fn"].run(a),
    grad=lambda b, node, cts: node.attrs["fn"].grad(b, node, cts),
    pattern="opaque",
    host=True,  # (compiled code runs attrs['fn'].run through a host call: custom autograd functions in a trace)
    doc="call a function run by its own means (separately compiled code, a custom autograd function's Python); "
    "attrs['fn'] provides out_types, run, grad and ir_key",
    torch_name="CompiledFunctionBackward",
    flops=lambda node: 0,
    fuzz=Fuzz(skip=True),
)
