"""Op-level tests of the IR's reference semantics (no code generation).

For every case of the op table in op_cases.py:
  * the interpreter (each op's NumPy reference kernel) agrees with an independent NumPy formulation;
  * the gradient rules, run as a joint forward+backward graph (grad_graph), agree with central finite
    differences in float64 (this covers the gradient ops conv_grad_*, max_pool_grad/select, slice_grad too,
    i.e. second-order rules);
  * every pass of ir.passes.PIPELINE keeps the joint graph valid (verify) and optimize() keeps its results.
"""
from __future__ import annotations

import numpy as np
import pytest

from graphnn.ir import OPS, grad_graph, interpret, optimize, verify
from graphnn.ir.passes import PIPELINE
from graphnn.ir.verify import VerifyError

try:
    from . import op_cases as oc
except ImportError:
    import op_cases as oc


# -- the table covers every op ---------------------------------------------------------------------------------
def test_every_op_has_cases():
    covered = {op for op, e in oc.TABLE.items() if e.cases}
    missing = sorted(set(OPS) - oc.EXEMPT_OPS - covered)
    assert not missing, f"ops without test cases (add an entry(...) to tests/op_cases.py): {missing}"


def test_table_names_only_registered_ops():
    unknown = sorted(set(oc.TABLE) - set(OPS))
    assert not unknown, f"op table entries for unregistered ops: {unknown}"


def test_case_ids_are_unique():
    ids = [p.id for p in oc.params()]
    assert len(ids) == len(set(ids))


def test_every_case_verifies():
    for c in oc.all_cases():
        for d in c.variant_dtypes():
            verify(c.graph(d))


def test_result_dtypes():
    """Comparisons give bool, sum of bool gives int64, argmax gives int64, one_hot/cast give their dtype."""
    def out_dtype(op, name, dtype=None):
        case = next(c for c in oc.TABLE[op].cases if c.name == name)
        return case.graph(dtype).outputs[0].dtype

    for op in ("gt", "ge", "lt", "le", "eq", "ne", "logical_and", "logical_or"):
        assert out_dtype(op, "grid", "float32") == "bool"
        assert out_dtype(op, "int64") == "bool"
    assert out_dtype("sum", "bool") == "int64"
    assert out_dtype("argmax", "ax0", "float64") == "int64"
    assert out_dtype("one_hot", "int64") == "int64"
    assert out_dtype("one_hot", "default_dtype") == "float32"
    assert out_dtype("cast", "to_bool", "float32") == "bool"
    assert out_dtype("select", "int_float", "float32") == "float32"
    assert out_dtype("add", "int_float", "float64") == "float64"


# -- (a) reference kernels against independent NumPy formulations ----------------------------------------------
@pytest.mark.parametrize("case,dtype", oc.params(lambda c, d: oc.TABLE[c.op].numpy is not None))
def test_reference_matches_numpy(case, dtype):
    g = case.graph(dtype)
    arrays = case.arrays(dtype)
    out = g.outputs[0].type
    got = interpret(g, arrays)[0]
    want = np.asarray(oc.TABLE[case.op].numpy([a.copy() for a in arrays], case.attrs_for(dtype)))
    oc.assert_same(got, want.astype(out.dtype), out.dtype, case.id)


def test_interpreter_does_not_modify_inputs():
    for c in oc.all_cases():
        for d in c.variant_dtypes():
            arrays = c.arrays(d)
            saved = [a.copy() for a in arrays]
            interpret(c.graph(d), arrays)
            for a, s in zip(arrays, saved):
                np.testing.assert_array_equal(a, s, err_msg=c.id)


# -- (b) gradients against finite differences ---------------------------------------------------------------------
FD = dict(eps=1e-6, rtol=1e-4, atol=1e-6)


def _numeric_grad(g, arrays, pos, eps):
    def f():
        return float(interpret(g, arrays)[0])

    x = arrays[pos]
    grad = np.zeros(x.shape, np.float64)
    for idx in np.ndindex(*x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        hi = f()
        x[idx] = orig - eps
        lo = f()
        x[idx] = orig
        grad[idx] = (hi - lo) / (2 * eps)
    return grad


@pytest.mark.parametrize("case,dtype", oc.params(lambda c, d: d in (None, "float64") and c.grad_mode(d) is not None))
def test_gradient_matches_finite_differences(case, dtype):
    mode = case.grad_mode(dtype)
    g, wrt, weights = oc.loss_graph(case, dtype, "float64")
    assert wrt, "a gradient case needs a float input"
    assert all(v.dtype == "float64" for v in wrt), "finite differences need float64 inputs"
    arrays = case.arrays(dtype) + [weights]
    jg = grad_graph(g, wrt)
    verify(jg)
    res = interpret(jg, arrays)
    assert len(res) == 1 + len(wrt)
    np.testing.assert_allclose(res[0], interpret(g, arrays)[0], rtol=1e-12, atol=1e-12)
    tol = {**FD, **(case.fd_tol or {})}
    pos = {v.id: i for i, v in enumerate(g.inputs)}
    for v, analytic in zip(wrt, res[1:]):
        assert analytic.shape == v.shape and analytic.dtype.name == v.dtype, f"gradient of {v.name}: {analytic.dtype}{analytic.shape}"
        if mode == "zero":
            assert not np.any(analytic), f"{case.id}: gradient of {v.name} should be zero"
            continue
        numeric = _numeric_grad(g, arrays, pos[v.id], tol["eps"])
        np.testing.assert_allclose(analytic, numeric, rtol=tol["rtol"], atol=tol["atol"],
                                   err_msg=f"{case.id}: d loss / d {v.name}")


# -- (c) passes keep the joint graph valid and its results unchanged ----------------------------------------------
def _joint(case, dtype):
    """The joint forward+backward graph of a differentiable case, else the forward graph, and its inputs."""
    if case.grad_mode(dtype) is not None:
        g, wrt, weights = oc.loss_graph(case, dtype)
        return grad_graph(g, wrt), case.arrays(dtype) + [weights]
    return case.graph(dtype), case.arrays(dtype)


@pytest.mark.parametrize("case,dtype", oc.params())
def test_passes_preserve_joint_graph(case, dtype):
    joint, arrays = _joint(case, dtype)
    verify(joint)
    before = interpret(joint, arrays)
    out_types = [v.type for v in joint.outputs]

    g = joint.copy()
    for rnd in range(2):
        for name, p in PIPELINE:
            assert p(g) is g
            try:
                verify(g)
            except VerifyError as e:
                pytest.fail(f"{case.id}: graph invalid after pass {name} (round {rnd + 1}): {e}\n{g}")
            assert [v.type for v in g.outputs] == out_types, f"pass {name} changed output types"

    opt = optimize(joint.copy(), check=True)
    assert len(opt.nodes) <= len(joint.nodes)
    for graph in (g, opt):
        after = interpret(graph, arrays)
        assert len(after) == len(before)
        for j, (a, b) in enumerate(zip(after, before)):
            oc.assert_same(a, b, out_types[j].dtype, f"{case.id}: output {j} after optimize")
    # the passes rewrite a copy, never the graph they were given
    for a, b in zip(interpret(joint, arrays), before):
        oc.assert_same(a, b, a.dtype.name, f"{case.id}: original graph")
