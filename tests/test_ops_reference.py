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
from oracle import torch_or_skip

from graphnn.ir import OPS, grad_graph, interpret, optimize, verify
from graphnn.ir.passes import PIPELINE
from graphnn.ir.roundoff import error_bounds, evaluate
from graphnn.ir.verify import VerifyError

try:
    from . import op_cases as oc
    from .tolerance import assert_close, finite_difference_tolerance, graph_tolerance
except ImportError:
    import op_cases as oc
    from tolerance import assert_close, finite_difference_tolerance, graph_tolerance


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
@pytest.mark.parametrize("case,dtype", oc.params(lambda c, d: (c.numpy or oc.TABLE[c.op].numpy) is not None))
def test_reference_matches_numpy(case, dtype):
    g = case.graph(dtype)
    arrays = case.arrays(dtype)
    got = interpret(g, arrays)
    with np.errstate(all="ignore"):
        want = (case.numpy or oc.TABLE[case.op].numpy)([a.copy() for a in arrays], case.attrs_for(dtype))
    want = list(want) if isinstance(want, (list, tuple)) else [want]
    assert len(got) == len(want) == len(g.outputs)
    with np.errstate(all="ignore"):
        tols = graph_tolerance(g, arrays)  # the formulation sums in float64 and rounds once: within the same bound
    for j, (a, b, v, tol) in enumerate(zip(got, want, g.outputs, tols)):
        with np.errstate(all="ignore"):
            b = np.asarray(b).astype(v.dtype)
        oc.assert_same(a, b, v.dtype, f"{case.id}: output {j}", tol)


def test_interpreter_does_not_modify_inputs():
    for c in oc.all_cases():
        for d in c.variant_dtypes():
            arrays = c.arrays(d)
            saved = [a.copy() for a in arrays]
            interpret(c.graph(d), arrays)
            for a, s in zip(arrays, saved):
                np.testing.assert_array_equal(a, s, err_msg=c.id)


# -- (b) gradients against finite differences ---------------------------------------------------------------------
FD_STEP = 1e-6  # a case's fd_tol may set its own "eps"


def _numeric_grad(g, arrays, pos, eps):
    """Central differences with steps eps and 2 eps (for the truncation estimate), elementwise."""
    x = arrays[pos]

    def f(idx, step):
        orig = x[idx]
        x[idx] = orig + step
        hi = float(interpret(g, arrays)[0])
        x[idx] = orig - step
        lo = float(interpret(g, arrays)[0])
        x[idx] = orig
        return (hi - lo) / (2 * step)

    d_h, d_2h = np.zeros(x.shape, np.float64), np.zeros(x.shape, np.float64)
    for idx in np.ndindex(*x.shape):
        d_h[idx], d_2h[idx] = f(idx, eps), f(idx, 2 * eps)
    return d_h, d_2h


@pytest.mark.parametrize("case,dtype", oc.params(lambda c, d: d in (None, "float64") and c.fd_mode(d) is not None))
def test_gradient_matches_finite_differences(case, dtype):
    mode = case.fd_mode(dtype)
    g, wrt, weights = oc.loss_graph(case, dtype, "float64")
    assert wrt, "a gradient case needs a float input"
    assert all(v.dtype == "float64" for v in wrt), "finite differences need float64 inputs"
    arrays = case.arrays(dtype) + weights
    jg = grad_graph(g, wrt)
    verify(jg)
    res, bounds = evaluate(jg, arrays)
    assert len(res) == 1 + len(wrt)
    assert_close(res[0], interpret(g, arrays)[0], graph_tolerance(g, arrays)[0], f"{case.id}: loss")
    step = (case.fd_tol or {}).get("eps", FD_STEP)
    loss_bound = float(error_bounds(g, arrays)[0])
    pos = {v.id: i for i, v in enumerate(g.inputs)}
    for v, analytic, grad_bound in zip(wrt, res[1:], bounds[1:]):
        assert analytic.shape == v.shape and analytic.dtype.name == v.dtype, (
            f"gradient of {v.name}: {analytic.dtype}{analytic.shape}"
        )
        if mode == "zero":
            assert not np.any(analytic), f"{case.id}: gradient of {v.name} should be zero"
            continue
        d_h, d_2h = _numeric_grad(g, arrays, pos[v.id], step)
        tol = finite_difference_tolerance(loss_bound, step, d_h, d_2h, arrays[pos[v.id]], grad_bound)
        assert_close(analytic, d_h, tol, f"{case.id}: d loss / d {v.name}")


# -- (c) passes keep the joint graph valid and its results unchanged ----------------------------------------------
def _joint(case, dtype):
    """The joint forward+backward graph of a differentiable case, else the forward graph, and its inputs."""
    if case.has_gradient(dtype):
        g, wrt, weights = oc.loss_graph(case, dtype)
        return grad_graph(g, wrt), case.arrays(dtype) + weights
    return case.graph(dtype), case.arrays(dtype)


@pytest.mark.parametrize("case,dtype", oc.params())
def test_passes_preserve_joint_graph(case, dtype):
    joint, arrays = _joint(case, dtype)
    verify(joint)
    before = interpret(joint, arrays)
    with np.errstate(all="ignore"):
        bound = error_bounds(joint, arrays)
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
        with np.errstate(all="ignore"):
            tols = [None if e is None else e + f for e, f in zip(bound, error_bounds(graph, arrays))]
        for j, (a, b, tol) in enumerate(zip(after, before, tols)):
            oc.assert_same(a, b, out_types[j].dtype, f"{case.id}: output {j} after optimize", tol)
    # the passes rewrite a copy, never the graph they were given (the same graph interpreted again: exact)
    for a, b in zip(interpret(joint, arrays), before):
        oc.assert_same(a, b, a.dtype.name, f"{case.id}: original graph")


# -- type rules and reference kernels agree on the dtypes an op accepts ---------------------------------------------
@pytest.mark.parametrize("op", oc.MATRIX_OPS)
def test_type_rules_agree_with_reference_kernels(op):
    from graphnn.ir.interpreter import run_node

    g, arrays, labels = oc.dtype_matrix(op)
    assert labels, f"{op} accepts no dtype combination"
    env = {v.id: a for v, a in zip(g.inputs, arrays)}
    failures = []
    for n, label in zip(g.nodes, labels):
        try:
            with np.errstate(all="ignore"):
                out = run_node(n, [env[v.id] for v in n.inputs])[0]
            assert out.dtype.name == n.outputs[0].dtype
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            failures.append(f"{label}: {type(e).__name__}: {e}")
    assert not failures, "the type rule accepts inputs the reference kernel cannot run:\n" + "\n".join(failures)


_POOL = dict(kernel=(2,), stride=(1,), padding=(1,), dilation=(1,), ceil_mode=False)
_CONV = dict(stride=(1,), padding=((0, 0),), dilation=(1,), groups=1)
REJECTED = [  # (op, input shapes and dtypes, attrs): the type rule must raise IRError
    ("max_pool", [((1, 1, 4), "int64")], _POOL),
    ("max_pool", [((1, 1, 4), "bool")], _POOL),
    ("max_pool", [((1, 1, 4), "float32")], {**_POOL, "kernel": (1,)}),  # padding > kernel // 2
    ("conv", [((1, 2, 5), "int64"), ((1, 2, 3), "int64")], _CONV),
    ("conv", [((1, 2, 5), "float32"), ((1, 3, 3), "float32")], _CONV),  # channel mismatch
    ("conv", [((1, 2, 2), "float32"), ((1, 2, 3), "float32")], _CONV),  # kernel larger than input
    ("matmul", [((2, 3), "float32"), ((3, 2), "float64")], {}),
    ("matmul", [((2, 3), "float32"), ((2, 2), "float32")], {}),
    ("exp", [((2,), "int64")], {}),
    ("neg", [((2,), "bool")], {}),
    ("sign", [((2,), "bool")], {}),
    ("sub", [((2,), "bool"), ((2,), "bool")], {}),
    ("add", [((2, 3), "float32"), ((2,), "float32")], {}),  # not broadcastable
    ("select", [((2,), "int64"), ((2,), "float32"), ((2,), "float32")], {}),
    ("one_hot", [((2,), "float32")], {"num_classes": 3}),
    ("reshape", [((2, 3), "float32")], {"shape": (4,)}),
    ("slice", [((4,), "float32")], {"starts": (0,), "stops": (5,), "steps": (1,)}),
    ("slice", [((4,), "float32")], {"starts": (0,), "stops": (4,), "steps": (0,)}),
    ("sum", [((2, 3), "float32")], {"axes": (2,), "keepdims": False}),
    ("transpose", [((2, 3), "float32")], {"perm": (0, 0)}),
    ("broadcast_to", [((2, 3), "float32")], {"shape": (3, 3)}),
]


@pytest.mark.parametrize("op,inputs,attrs", REJECTED, ids=[f"{r[0]}-{i}" for i, r in enumerate(REJECTED)])
def test_type_rules_reject_invalid_inputs(op, inputs, attrs):
    from graphnn.ir import Graph, IRError, TensorType

    g = Graph()
    ins = [g.add_input(TensorType(s, d)) for s, d in inputs]
    with pytest.raises(IRError, match=op):
        g.emit(op, *ins, **attrs)


# -- convolution and pooling geometry against PyTorch (skipped without torch) ---------------------------------------
def _case(op, name):
    return next(c for c in oc.TABLE[op].cases if c.name == name)


@pytest.mark.parametrize("name", [c.name for c in oc.TABLE["conv"].cases])
def test_conv_ops_match_torch(name):
    torch = torch_or_skip()
    F = torch.nn.functional
    conv, gi, gw = _case("conv", name), _case("conv_grad_input", name), _case("conv_grad_weight", name)
    x, w = conv.arrays("float64")
    at = conv.attrs
    g = gi.arrays("float64")[0]
    pads = [p for lo_hi in reversed(at["padding"]) for p in lo_hi]
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[x.ndim - 2]
    ty = fn(F.pad(tx, pads), tw, stride=at["stride"], dilation=at["dilation"], groups=at["groups"])
    tgx, tgw = torch.autograd.grad(ty, (tx, tw), torch.tensor(g))
    for case, arrays, want in ((conv, [x, w], ty.detach()), (gi, [g, w], tgx), (gw, [x, g], tgw)):
        graph = case.graph("float64")
        oc.assert_same(interpret(graph, arrays)[0], want.numpy(), "float64", case.op, graph_tolerance(graph, arrays)[0])


@pytest.mark.parametrize("name", [c.name for c in oc.TABLE["max_pool"].cases if c.name != "nan"])
def test_pool_ops_match_torch(name):
    torch = torch_or_skip()
    F = torch.nn.functional
    pool = _case("max_pool", name)
    x = pool.arrays("float64")[0]
    at = pool.attrs
    nsp = len(at["kernel"])
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nsp]
    tx = torch.tensor(x, requires_grad=True)
    ty, ind = fn(tx, at["kernel"], at["stride"], at["padding"], at["dilation"], at["ceil_mode"], return_indices=True)
    rng = np.random.default_rng(0)
    g = rng.standard_normal(ty.shape)
    src = rng.standard_normal(x.shape)
    (tgx,) = torch.autograd.grad(ty, (tx,), torch.tensor(g))
    lead = x.ndim - nsp
    tsel = torch.gather(torch.tensor(src).flatten(lead), lead, ind.flatten(lead)).reshape(ty.shape)

    def check(op, arrays, want):
        graph = oc.Case(name, tuple(oc.In(a.shape) for a in arrays), at, op=op).graph("float64")
        oc.assert_same(interpret(graph, arrays)[0], want.numpy(), "float64", op, graph_tolerance(graph, arrays)[0])

    check("max_pool", [x], ty.detach())
    check("max_pool_grad", [x, g], tgx)
    check("max_pool_select", [x, src], tsel)


# -- gradient conventions where finite differences do not apply (ties and kinks; PyTorch's choices) ------------------
TIES = [  # op, inputs, attrs, expected gradients of sum(op(...)) for every input
    (
        "max",
        [[[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 1.0]]],
        dict(axes=(1,), keepdims=False),
        [[[0, 0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3, 0]]],
    ),
    ("max", [[[1.0, 4.0], [4.0, 2.0]]], dict(axes=None, keepdims=True), [[[0, 0.5], [0.5, 0]]]),
    ("maximum", [[1.0, 2.0, 3.0], [1.0, 0.0, 4.0]], {}, [[0.5, 1, 0], [0.5, 0, 1]]),
    ("minimum", [[1.0, 2.0, 3.0], [1.0, 0.0, 4.0]], {}, [[0.5, 0, 1], [0.5, 1, 0]]),
    ("relu", [[-1.0, 0.0, 2.0]], {}, [[0, 0, 1]]),
    ("abs", [[-1.0, 0.0, 2.0]], {}, [[-1, 0, 1]]),
    ("sign", [[-1.0, 0.0, 2.0]], {}, [[0, 0, 0]]),
    (
        "max_pool",
        [[[[1.0, 1.0, 0.0, 2.0, 2.0]]]],
        dict(kernel=(2,), stride=(1,), padding=(0,), dilation=(1,)),
        [[[[1, 1, 0, 2, 0]]]],
    ),
]


@pytest.mark.parametrize("op,inputs,attrs,expected", TIES, ids=[f"{t[0]}-{i}" for i, t in enumerate(TIES)])
def test_gradient_conventions_at_ties(op, inputs, attrs, expected):
    from graphnn.ir import Graph, TensorType

    arrays = [np.array(a, np.float64) for a in inputs]
    g = Graph()
    ins = [g.add_input(TensorType(a.shape, "float64"), f"x{i}") for i, a in enumerate(arrays)]
    out = g.emit(op, *ins, **attrs)
    g.outputs = [g.emit("sum", out, axes=None, keepdims=False)]
    joint = optimize(grad_graph(g, ins), check=True)
    for got, want, tol in zip(interpret(joint, arrays)[1:], expected, error_bounds(joint, arrays)[1:]):
        assert_close(got, np.array(want, np.float64), tol, op)  # one evaluation against the exact value


def test_fast_float32_erf_rounds_as_the_exact_one():
    """erf's float32 reference (whole-array NumPy, ir/scalar._erf_fast) is within about 1e-13 of math.erf, far below
    float32's half ulp (3e-8 near 1): rounded to float32 both agree, but where the exact value lies within that
    error of a rounding midpoint (a few in a million), by at most one ulp."""
    from graphnn.ir.scalar import _erf, _erf_fast

    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.standard_normal(100_000).astype(np.float32) * 2,
            np.linspace(-5, 5, 100_001, dtype=np.float32),
            np.array([0.0, -0.0, 1e-30, -1e-38, 0.5, -0.5, 4.0, 3.9999998, np.inf, -np.inf], np.float32),
        ]
    )
    exact, fast = _erf(x).astype(np.float32), _erf_fast(x).astype(np.float32)
    assert np.array_equal(np.signbit(exact), np.signbit(fast))
    ulps = np.abs(exact.view(np.int32).astype(np.int64) - fast.view(np.int32).astype(np.int64))
    assert ulps.max() <= 1 and (ulps > 0).sum() <= 10
    assert np.isnan(_erf_fast(np.array([np.nan], np.float32))).all()
