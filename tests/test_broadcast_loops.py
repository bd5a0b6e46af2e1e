"""Elementwise kernels over broadcast operands loop over runs of axes that every operand reads alike as one axis
(codegen/module.py _coalescable); the results equal the interpreter's for every pattern of broadcasting."""

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph
from graphnn.codegen.module import _coalescable
from graphnn.ir import Graph, TensorType, interpret
from graphnn.ir.fusion import plan_fusion

CASES = [
    # (output shape, operand shapes, runs of axes expected to be looped as one, or None)
    ((4, 6, 5, 7), [(1, 6, 1, 1)], [(0, 1), (1, 2), (2, 4)]),
    ((4, 6, 5, 7), [(6, 1, 1)], [(0, 1), (1, 2), (2, 4)]),
    ((4, 6, 5, 7), [(5, 7)], [(0, 2), (2, 4)]),
    ((4, 6, 5, 7), [(4, 6, 1, 1), (1, 1, 5, 7)], [(0, 2), (2, 4)]),
    ((4, 6, 5, 7), [(4, 1, 5, 1)], None),
    ((4, 1, 6, 7), [(1, 1, 6, 1)], [(0, 2), (2, 3), (3, 4)]),
    ((3, 1, 1, 8), [(3, 1, 1, 1), (8,)], [(0, 3), (3, 4)]),
    ((2, 3, 4), [(2, 3, 4), ()], [(0, 3)]),
]


@pytest.mark.parametrize("out_shape, shapes, runs", CASES)
def test_broadcast_elementwise_kernels(monkeypatch, tmp_path, out_shape, shapes, runs):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    x = g.add_input(TensorType(out_shape, "float32"), "x")
    acc = g.emit("exp", x)
    ins = [x]
    for i, s in enumerate(shapes):
        v = g.add_input(TensorType(s, "float32"), f"b{i}")
        ins.append(v)
        acc = g.emit("mul" if i % 2 else "add", acc, v)
    g.outputs = [g.emit("tanh", acc)]
    (group,) = plan_fusion(g).groups
    assert _coalescable(group) == runs
    rng = np.random.default_rng(len(shapes))
    arrays = [rng.standard_normal(v.shape).astype(np.float32) for v in ins]
    (got,) = CompiledGraph(g)(arrays)
    (want,) = interpret(g, arrays)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # exp, add, mul, tanh: a few float32 ulps
