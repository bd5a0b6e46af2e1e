"""Op-level tests of the LLVM code generator: compiled graphs must compute what the interpreter computes.

For every case of the op table in op_cases.py (float32 and float64 variants, plus int64 / bool / NaN cases):
  * CompiledGraph(graph)(inputs) equals interpret(graph, inputs) (float32: rtol 1e-5, atol 1e-6; float64:
    rtol 1e-10, atol 1e-12; integers and bools exactly; NaN where the interpreter has NaN);
  * for differentiable cases, the joint forward+backward graph (grad_graph of sum(op(...) * weights), then
    optimize) compiled equals the same graph interpreted.
"""
from __future__ import annotations

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph
from graphnn.codegen.lowerings import LOWER
from graphnn.ir import OPS, grad_graph, interpret, optimize

try:
    from . import op_cases as oc
except ImportError:
    import op_cases as oc


def test_every_op_has_a_lowering_and_cases():
    ops = set(OPS) - oc.EXEMPT_OPS
    assert not sorted(ops - set(LOWER)), "ops without a native lowering"
    assert not sorted(op for op in ops if not (op in oc.TABLE and oc.TABLE[op].cases)), "ops without test cases"


def _run_both(graph, arrays, what):
    want = interpret(graph, arrays)
    saved = [a.copy() for a in arrays]
    got = CompiledGraph(graph)(arrays)
    assert len(got) == len(want) == len(graph.outputs)
    for j, (a, b, v) in enumerate(zip(got, want, graph.outputs)):
        oc.assert_same(a, b, v.dtype, f"{what}: output {j} ({v.type})")
    for a, s in zip(arrays, saved):
        np.testing.assert_array_equal(a, s, err_msg=f"{what}: compiled code modified an input")


@pytest.mark.parametrize("case,dtype", oc.params())
def test_compiled_matches_interpreter(case, dtype):
    _run_both(case.graph(dtype), case.arrays(dtype), case.id)


@pytest.mark.parametrize("case,dtype", oc.params(lambda c, d: c.grad_mode(d) is not None))
def test_compiled_joint_graph_matches_interpreter(case, dtype):
    g, wrt, weights = oc.loss_graph(case, dtype)
    joint = optimize(grad_graph(g, wrt), check=True)
    _run_both(joint, case.arrays(dtype) + [weights], case.id + " (joint)")


def test_compiled_graph_is_reusable():
    """A compiled graph gives fresh, correct results on every call (scratch buffers are reused)."""
    case = next(c for c in oc.TABLE["conv"].cases if c.name == "2d_stride_pad_dil")
    g = case.graph("float32")
    cg = CompiledGraph(g)
    first = case.arrays("float32")
    out1 = cg(first)[0]
    second = [a * 2 for a in first]
    out2 = cg(second)[0]
    oc.assert_same(out2, interpret(g, second)[0], "float32", "second call")
    oc.assert_same(out1, interpret(g, first)[0], "float32", "first result kept")
