"""Op-level tests of the LLVM code generator: compiled graphs must compute what the interpreter computes.

For every case of the op table in op_cases.py (float32 and float64 variants, plus int64 / bool / NaN cases):
  * CompiledGraph(graph)(inputs) equals interpret(graph, inputs): floats within twice the graph's rounding-error
    bound (tolerance.py: both evaluate the same graph, in different orders), NaN where the interpreter has NaN;
    integers and bools exactly;
  * for differentiable cases, the joint forward+backward graph (grad_graph of sum(op(...) * weights), then
    optimize) compiled equals the same graph interpreted.
"""

from __future__ import annotations

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph, LoweringError
from graphnn.codegen.module import can_lower
from graphnn.ir import OPS, grad_graph, interpret, optimize

try:
    from . import op_cases as oc
    from .tolerance import graph_tolerance
except ImportError:
    import op_cases as oc
    from tolerance import graph_tolerance


LOWERED = {op for op, d in OPS.items() if can_lower(d)}


def _unlowered(op):
    """Strict xfail marks for an op without a native lowering (build_module raises LoweringError): the
    tests run, must fail that way, and start failing loudly (XPASS) once a lowering is added."""
    if op in LOWERED:
        return []
    return [pytest.mark.xfail(raises=LoweringError, strict=True, reason=f"op {op} has no native lowering yet")]


def compiled_params(select=lambda case, dtype: True):
    return [pytest.param(*p.values, id=p.id, marks=_unlowered(p.values[0].op)) for p in oc.params(select)]


@pytest.mark.parametrize("op", [pytest.param(op, marks=_unlowered(op)) for op in sorted(set(OPS) - oc.EXEMPT_OPS)])
def test_op_has_a_lowering_and_cases(op):
    assert op in oc.TABLE and oc.TABLE[op].cases, f"op {op} has no test cases"
    if op not in LOWERED:
        raise LoweringError(f"op {op} has no native lowering")


def _run_both(graph, arrays, what):
    want = interpret(graph, arrays)
    saved = [a.copy() for a in arrays]
    got = CompiledGraph(graph)(arrays)
    assert len(got) == len(want) == len(graph.outputs)
    for j, (a, b, v, tol) in enumerate(zip(got, want, graph.outputs, graph_tolerance(graph, arrays))):
        oc.assert_same(a, b, v.dtype, f"{what}: output {j} ({v.type})", tol)
    for a, s in zip(arrays, saved):
        np.testing.assert_array_equal(a, s, err_msg=f"{what}: compiled code modified an input")


@pytest.mark.parametrize("case,dtype", compiled_params())
def test_compiled_matches_interpreter(case, dtype):
    _run_both(case.graph(dtype), case.arrays(dtype), case.id)


@pytest.mark.parametrize("case,dtype", compiled_params(lambda c, d: c.has_gradient(d)))
def test_compiled_joint_graph_matches_interpreter(case, dtype):
    g, wrt, weights = oc.loss_graph(case, dtype)
    joint = optimize(grad_graph(g, wrt), check=True)
    _run_both(joint, case.arrays(dtype) + weights, case.id + " (joint)")


def test_compiled_graph_is_reusable():
    """A compiled graph gives fresh, correct results on every call (scratch buffers are reused)."""
    case = next(c for c in oc.TABLE["conv"].cases if c.name == "2d_stride_pad_dil")
    g = case.graph("float32")
    cg = CompiledGraph(g)
    first = case.arrays("float32")
    out1 = cg(first)[0]
    second = [a * 2 for a in first]
    out2 = cg(second)[0]
    oc.assert_same(out2, interpret(g, second)[0], "float32", "second call", graph_tolerance(g, second)[0])
    oc.assert_same(out1, interpret(g, first)[0], "float32", "first result kept", graph_tolerance(g, first)[0])


@pytest.mark.parametrize("op", oc.MATRIX_OPS)
def test_compiled_dtype_matrix(op):
    """Every dtype combination the type rule accepts, compiled, matches the interpreter."""
    g, arrays, labels = oc.dtype_matrix(op)
    with np.errstate(all="ignore"):
        want = interpret(g, arrays)
    got = CompiledGraph(g)(arrays)
    with np.errstate(all="ignore"):
        tols = graph_tolerance(g, arrays)
    for a, b, v, label, tol in zip(got, want, g.outputs, labels, tols):
        oc.assert_same(a, b, v.dtype, label, tol)


def test_non_contiguous_inputs():
    """Strided NumPy views are accepted (copied to contiguous memory) and give the same results."""
    case = next(c for c in oc.TABLE["matmul"].cases if c.name == "batched")
    g = case.graph("float64")
    x, y = case.arrays("float64")
    xv = np.ascontiguousarray(np.swapaxes(x, 1, 2)).swapaxes(1, 2)  # same values, Fortran-like strides
    yv = np.repeat(y, 2, axis=2)[:, :, ::2]
    assert not xv.flags.c_contiguous and not yv.flags.c_contiguous
    oc.assert_same(
        CompiledGraph(g)([xv, yv])[0],
        interpret(g, [x, y])[0],
        "float64",
        "strided inputs",
        graph_tolerance(g, [x, y])[0],
    )


def test_outputs_that_are_inputs_or_repeated():
    """After optimize, outputs can be graph inputs or the same value twice; both are returned as copies."""
    from graphnn.ir import Graph, TensorType

    g = Graph()
    x = g.add_input(TensorType((2, 3), "float32"), "x")
    r = g.emit("reshape", x, shape=(2, 3))
    y = g.emit("relu", x)
    g.outputs = [r, y, y]
    optimize(g)
    assert g.outputs[0] is x and g.outputs[1] is g.outputs[2]
    a = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    outs = CompiledGraph(g)([a])
    oc.assert_same(outs[0], a, "float32", "input passed through")
    assert outs[0] is not a and not np.shares_memory(outs[1], outs[2])
    for o, w in zip(outs, interpret(g, [a])):
        oc.assert_same(o, w, "float32", "outputs")  # copies and relu: exact


def test_one_value_read_at_several_indices_in_one_kernel():
    """Several index remaps (slices, transpose, reshape) of one input fused into one loop must each read
    their own element (x[1:] - x[:-1] style stencils)."""
    from graphnn.ir import Graph, TensorType

    g = Graph()
    x = g.add_input(TensorType((4, 6), "float64"), "x")
    lo = g.emit("slice", x, starts=(0, 0), stops=(4, 4), steps=(1, 1))
    mid = g.emit("slice", x, starts=(0, 1), stops=(4, 5), steps=(1, 1))
    hi = g.emit("slice", x, starts=(0, 2), stops=(4, 6), steps=(1, 1))
    stencil = g.emit("add", g.emit("sub", hi, g.emit("mul", mid, g.emit("add", lo, lo))), lo)
    y = g.add_input(TensorType((3, 3), "float64"), "y")
    flip = g.emit(
        "sub", g.emit("transpose", y, perm=(1, 0)), g.emit("reshape", g.emit("reshape", y, shape=(9,)), shape=(3, 3))
    )
    g.outputs = [stencil, flip, g.emit("sum", stencil, axes=(1,), keepdims=False)]
    arrays = [np.arange(24, dtype=np.float64).reshape(4, 6) ** 2, np.arange(9, dtype=np.float64).reshape(3, 3)]
    _run_both(g, arrays, "stencil")


def test_constant_outputs():
    """Graph outputs that are (folded) constants are returned with their values, also when kernels read them."""
    from graphnn.ir import Graph, TensorType

    g = Graph()
    x = g.add_input(TensorType((3,), "float64"), "x")
    idx = g.emit("constant", value=np.array([0, 2, 1, 5]))
    onehot = g.emit("one_hot", idx, num_classes=3, dtype="float64")  # folds to a non-uniform constant
    lit = g.emit("constant", value=np.array([1.5, -2.0, 0.25]))
    y = g.emit("matmul", onehot, g.emit("reshape", g.emit("add", x, lit), shape=(3, 1)))
    g.outputs = [y, onehot, lit, lit]
    optimize(g, check=True)
    assert g.outputs[1].producer.op == "constant"
    _run_both(g, [np.array([1.0, 2.0, 3.0])], "constant outputs")
