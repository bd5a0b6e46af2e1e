"""Every op compiled once for every batch size: each case of the op table (op_cases.py) whose leading dimension can
vary (the case's graph builds at sizes d, d + 3 and d + 7 with the same attributes) is unified into one graph
symbolic in N (ir/unify.py), compiled once, and run at each size its guards admit, against the interpreter;
the same for the case's joint forward + backward graph, which covers the gradient ops."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph
from graphnn.codegen.dynamic import eligible
from graphnn.codegen.module import can_lower
from graphnn.ir import OPS, grad_graph, interpret, optimize
from graphnn.ir.unify import unify

try:
    from . import op_cases as oc
    from .tolerance import graph_tolerance
except ImportError:
    import op_cases as oc
    from tolerance import graph_tolerance

STEPS = (0, 3, 7)  # the sizes d + step: the code is generated at d + 3


def _resized(case, n: int):
    """The case with every input whose leading dimension is the first input's given n instead."""
    d = case.inputs[0].shape[0]
    return replace(
        case,
        inputs=tuple(
            replace(i, shape=(n,) + tuple(i.shape[1:])) if len(i.shape) >= 1 and i.shape[0] == d else i
            for i in case.inputs
        ),
    )


def _builds(case, dtype, joint: bool):
    """[(graph, arrays)] at the sizes d + STEPS, or None when the case has no batch dimension to vary."""
    d = case.inputs[0].shape[0] if case.inputs and case.inputs[0].shape else 0
    if d < 2:
        return None
    out = []
    try:
        for step in STEPS:
            c = _resized(case, d + step)
            if joint:
                g, wrt, weights = oc.loss_graph(c, dtype)
                out.append((optimize(grad_graph(g, wrt), check=True), c.arrays(dtype) + weights))
            else:
                out.append((c.graph(dtype), c.arrays(dtype)))
            with np.errstate(all="ignore"):  # (the NaN cases)
                interpret(*out[-1])
    except Exception:  # noqa: BLE001 - the attributes fix a size (a reshape's target, a slice's end)
        return None
    if not eligible(out[0][0]) or unify(out[0][0], out[1][0]) is None:
        return None
    return out


def _params(joint: bool) -> list:
    out = []
    for c in oc.all_cases():
        if not can_lower(OPS[c.op]):
            continue
        dtype = c.variant_dtypes()[0]
        if joint and not c.has_gradient(dtype):
            continue
        if _builds(c, dtype, joint) is not None:
            out.append(pytest.param(c, dtype, id=c.id + (f"-{dtype}" if dtype else "")))
    return out


def _check(builds, what: str) -> None:
    code = CompiledGraph(unify(builds[0][0], builds[1][0]))
    ran = 0
    for (g, arrays), step in zip(builds, STEPS):
        view = code.sized(g.inputs[0].shape[0], g)
        if view is None:  # a size the code leaves out (it equals another size of the case)
            continue
        with np.errstate(all="ignore"):
            want = interpret(g, arrays)
        got = view([a.copy() for a in arrays])
        for j, (a, b, v, tol) in enumerate(zip(got, want, g.outputs, graph_tolerance(g, arrays))):
            oc.assert_same(a, b, v.dtype, f"{what} at d+{step}: output {j} ({v.type})", tol)
        ran += 1
    assert ran >= 2, f"{what}: the dynamic code's guards admit only {ran} of the sizes: {code.guards}"


@pytest.mark.parametrize("case,dtype", _params(joint=False))
def test_dynamic_code_matches_interpreter(case, dtype):
    _check(_builds(case, dtype, joint=False), case.id)


@pytest.mark.parametrize("case,dtype", _params(joint=True))
def test_dynamic_joint_graph_matches_interpreter(case, dtype):
    _check(_builds(case, dtype, joint=True), case.id + " (joint)")


def test_most_ops_have_a_dynamic_case():
    """The table's batch-shaped cases cover most ops (a sanity check on the filters above)."""
    ops = {p.values[0].op for p in _params(joint=False)}
    assert len(ops) >= 0.6 * len([op for op in oc.TABLE if can_lower(OPS[op])]), sorted(ops)
