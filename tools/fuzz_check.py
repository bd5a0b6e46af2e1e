"""Differential checks of one fuzz case: passes, compiled code, gradients, finite differences, the public API.

`check_case(case)` raises `Mismatch` (naming the stage) on the first disagreement:

1. the graph verifies and the reference interpreter runs it;
2. pass invariants: every pass of PIPELINE and conv_to_gemm, alone on a fresh copy and then in sequence,
   keeps the graph valid (verify) and its interpreted results unchanged;
3. the lowered graph compiled to native code computes what the interpreter computes (and leaves inputs alone);
4. gradients: the joint forward+backward graph of loss = sum_j sum(out_j * w_j) over the float outputs, with
   respect to the float inputs, passes the same pass-invariant checks, and compiled agrees with interpreted;
5. on smooth cases (float64, differentiable ops, operands away from singularities) that gradient matches
   central finite differences along random directions;
6. `model=True`: the graph replayed through the public API (graphnn.nn.Module whose parameters are the float
   inputs) gives the same outputs and parameter gradients eagerly and under graphnn.compile.

Tolerances follow from the arithmetic (graphnn.ir.roundoff): each evaluation of a graph (the interpreter's, a
pass's rewrite interpreted, the compiled lowered graph) differs from the exact result by at most its rounding-error
bound, elementwise: reductions charge their length (min(K, 10 sqrt(K)) roundings) on the sum of |terms|, exp, log,
tanh, sigmoid and pow a few ulp, and the errors propagate through later ops with the absolute values of their
derivatives. Two evaluations must agree within the sum of their bounds; NaN and Inf must agree exactly. The
generator bounds magnitudes by 1e4 and keeps operands of discontinuous ops away from their discontinuities, so any
larger difference is a bug.
"""

from __future__ import annotations

import numpy as np

from graphnn.ir import grad_graph, interpret, verify
from graphnn.ir.graph import Graph
from graphnn.ir.registry import get_op
from graphnn.ir.passes import PIPELINE, conv_to_gemm, lower_for_codegen
from graphnn.ir.roundoff import error_bounds, evaluate, mismatches, unit_roundoff
from graphnn.ir.types import TensorType

from .fuzz_gen import FuzzCase

FD_EPS = 1e-6
PASSES = list(PIPELINE) + [("conv_to_gemm", conv_to_gemm)]


class Mismatch(AssertionError):
    """A check failed: `stage` names it, the message says what differed."""

    def __init__(self, stage: str, detail: str):
        super().__init__(f"[{stage}] {detail}")
        self.stage, self.detail = stage, detail


def compare(got, want, what: str, tol=None, inf_for_nan: bool = False) -> None:
    """Same shape and dtype; floats within `tol` (the allowed |difference|, elementwise; NaN where NaN, equal
    infinities), others exactly equal. inf_for_nan accepts +-Inf where the reference has NaN (see check_compiled)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype.name != want.dtype.name:
        raise Mismatch(what, f"got {got.dtype.name}{list(got.shape)}, expected {want.dtype.name}{list(want.shape)}")
    if want.dtype.kind != "f":  # integers and bools: exactly equal
        if not np.array_equal(got, want):
            idx = np.argwhere(got != want)[:3]
            pairs = ", ".join(
                f"{tuple(int(k) for k in i)}: {got[tuple(i)].item()!r} vs {want[tuple(i)].item()!r}" for i in idx
            )
            raise Mismatch(
                what,
                f"{int((got != want).sum())} of {got.size} {want.dtype.name} elements differ (got vs expected) {pairs}",
            )
        return
    tol = np.broadcast_to(np.asarray(0.0 if tol is None else tol, np.float64), want.shape)
    bad = mismatches(got, want, tol)
    if inf_for_nan:
        bad &= ~(np.isnan(want) & np.isinf(got))
    if bad.any():
        idx = [tuple(int(k) for k in i) for i in np.argwhere(bad)[:3]]
        pairs = ", ".join(f"{i}: {float(got[i])!r} vs {float(want[i])!r} (allowed {float(tol[i]):.3g})" for i in idx)
        raise Mismatch(what, f"{int(bad.sum())} of {bad.size} elements differ (got vs expected) {pairs}")


def tolerances(bounds: list, other: list) -> list:
    """Per output, the allowed |difference| of two evaluations with these error bounds."""
    return [None if a is None or b is None else a + b for a, b in zip(bounds, other)]


def _compare_all(got: list, want: list, graph: Graph, what: str, tols: list, inf_for_nan: bool = False) -> None:
    if len(got) != len(want):
        raise Mismatch(what, f"{len(got)} outputs, expected {len(want)}")
    for j, (a, b, v, tol) in enumerate(zip(got, want, graph.outputs, tols)):
        compare(a, b, f"{what}: output {j} ({v.type})", tol, inf_for_nan)


def _run(stage: str, fn, *args):
    try:
        with np.errstate(all="ignore"):
            return fn(*args)
    except Mismatch:
        raise
    except Exception as e:  # noqa: BLE001  (any failure is a finding, attributed to its stage)
        raise Mismatch(stage, f"{type(e).__name__}: {e}") from e


def check_passes(graph: Graph, arrays: list, want: list, label: str = "") -> None:
    """Each pass alone, then all in sequence (as optimize and lower_for_codegen run them); each result interpreted
    agrees with the original within the sum of the two graphs' rounding-error bounds (passes may reorder sums:
    conv_to_gemm turns a convolution into im2col + matmul, products are regrouped)."""
    bound = _run(f"{label}rounding-error bound", error_bounds, graph, arrays)
    for name, p in PASSES:
        g = graph.copy()
        _run(f"{label}pass {name}", lambda: verify(p(g)))
        got, other = _run(f"{label}pass {name}: interpret", evaluate, g, arrays)
        _compare_all(got, want, g, f"{label}pass {name}", tolerances(bound, other))
    g = graph.copy()
    for i, (name, p) in enumerate(PASSES + PASSES):
        _run(f"{label}pipeline step {i} ({name})", lambda: verify(p(g)))
        got, other = _run(f"{label}pipeline step {i} ({name}): interpret", evaluate, g, arrays)
        _compare_all(got, want, g, f"{label}pipeline step {i} ({name})", tolerances(bound, other))


def check_compiled(graph: Graph, arrays: list, want: list, label: str = "") -> None:
    from graphnn.codegen import CompiledGraph

    low = graph.copy()
    _run(f"{label}lower_for_codegen", lambda: verify(lower_for_codegen(low)))
    feeds = [a.copy() for a in arrays]
    got = _run(f"{label}compile", lambda: CompiledGraph(low)(feeds))
    # Compiled reductions are reassociated (fast-math), which may factor sum(x * w) into x * sum(w): with an
    # infinite x that gives +-Inf where the IEEE order gives Inf - Inf = NaN. Accepted when some value is infinite.
    tols = tolerances(*(_run(f"{label}rounding-error bound", error_bounds, g, arrays) for g in (graph, low)))
    _compare_all(got, want, graph, f"{label}compiled", tols, inf_for_nan=has_infinity(graph, arrays))
    for i, (a, b) in enumerate(zip(feeds, arrays)):
        if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            raise Mismatch(f"{label}compiled", f"compiled code modified input {i}")


def has_infinity(graph: Graph, arrays: list) -> bool:
    """Is any float value of the graph's reference run infinite?"""
    probe = graph.copy()
    probe.outputs = [v for v in probe.values() if v.type.is_float]
    with np.errstate(all="ignore"):
        return any(np.isinf(a).any() for a in interpret(probe, arrays))


def loss_graph(graph: Graph, seed: int = 0, weights: list | None = None):
    """(graph + weight inputs -> scalar loss, wrt = float inputs of `graph`, weight arrays) or None. The loss is
    sum_j sum(out_j * w_j) over the float outputs; weights are drawn from `seed` unless given."""
    g = graph.copy()
    n_in = len(g.inputs)
    rng = np.random.default_rng(seed)
    given, loss, weights = weights, None, []
    for j, out in enumerate(v for v in graph.outputs if v.type.is_float):
        out = g.outputs[graph.outputs.index(out)]
        w = g.add_input(TensorType(out.shape, out.dtype), f"w{j}")
        weights.append(
            given[j]
            if given is not None
            else (rng.uniform(0.5, 1.5, out.shape) * rng.choice([-1.0, 1.0], out.shape)).astype(out.dtype)
        )
        term = g.emit("sum", g.emit("mul", out, w), axes=None, keepdims=False)
        if loss is not None and term.dtype != loss.dtype:
            term = g.emit("cast", term, dtype=loss.dtype)
        loss = term if loss is None else g.emit("add", loss, term)
    wrt = [v for v in g.inputs[:n_in] if v.type.is_float]
    if loss is None or not wrt:
        return None
    g.outputs = [loss]
    return g, wrt, weights


def differentiable(graph: Graph) -> bool:
    """False when an op with float inputs declares no gradient (attention_backward: only gradients use it)."""
    return not any(get_op(n.op).grad is None and any(v.type.is_float for v in n.inputs) for n in graph.nodes)


def check_gradients(case: FuzzCase, fd: bool = True) -> None:
    if not differentiable(case.graph):
        return
    made = loss_graph(case.graph, seed=len(case.graph.nodes))
    if made is None:
        return
    lg, wrt, weights = made
    joint = _run("grad_graph", lambda: verify(grad_graph(lg, wrt)))
    feeds = list(case.arrays) + weights
    ref, bounds = _run("grad: interpret", evaluate, joint, feeds)
    check_passes(joint, feeds, ref, "grad: ")
    check_compiled(joint, feeds, ref, "grad: ")
    # finite differences in float64 only (their tolerance is derived for it; a float32 input would not even hold x + h d)
    if fd and case.smooth and all(v.type.dtype == "float64" for v in wrt) and all(np.isfinite(r).all() for r in ref):
        check_finite_differences(lg, wrt, feeds, ref[1:], case.seed or 0, bounds)


def check_finite_differences(lg: Graph, wrt: list, feeds: list, grads: list, seed: int, bounds: list) -> None:
    """<grad, d> against (f(x + h d) - f(x - h d)) / (2 h) for a joint direction and one per input. Allowed: the
    loss evaluations' rounding errors over 2h (bounds[0] / h), the truncation error estimated by Richardson's
    |D(2h) - D(h)| (= 3 h^2 |f3| / 6, f3 the third derivative), the gradients' bounds (bounds[1:]) along d, and the
    rounding of the points x +- h d themselves (step_rounding)."""
    rng = np.random.default_rng(seed)
    pos = [lg.inputs.index(v) for v in wrt]
    dirs = [rng.standard_normal(v.shape) for v in wrt]
    tests = [dirs] + (
        [[d if i == j else np.zeros_like(d) for j, d in enumerate(dirs)] for i in range(len(dirs))]
        if len(dirs) > 1
        else []
    )

    def f(step, ds):
        x = list(feeds)
        for p, d in zip(pos, ds):
            x[p] = feeds[p] + step * d
        return float(interpret(lg, x)[0])

    def central(h, ds):
        with np.errstate(all="ignore"):
            return (f(h, ds) - f(-h, ds)) / (2 * h)

    loss_bound = float(bounds[0])
    for k, ds in enumerate(tests):
        fd, fd2 = central(FD_EPS, ds), central(2 * FD_EPS, ds)
        an = float(sum(np.sum(g * d) for g, d in zip(grads, ds)))
        grad_bound = float(sum(np.sum(b * np.abs(d)) for b, d in zip(bounds[1:], ds)))
        moved = step_rounding([feeds[p] for p in pos], ds, grads, bounds[1:], FD_EPS)
        allowed = loss_bound / FD_EPS + abs(fd2 - fd) + grad_bound + moved
        if not (np.isnan(allowed) or abs(fd - an) <= allowed):  # (NaN: no bound, as in roundoff.mismatches)
            which = "all inputs" if k == 0 else f"input {wrt[k - 1].name}"
            raise Mismatch(
                "finite differences", f"direction over {which}: gradient gives {an!r}, finite differences {fd!r}"
            )


def step_rounding(xs: list, ds: list, grads: list, grad_bounds: list, h: float) -> float:
    """The central difference's error from rounding its points: x + s d (s = +-h) is computed in float64 as
    fl(x + fl(s d)), off from x + s d by at most u (|x| + 2 h |d|) per element (u |s d| from the product, u |x + s
    d| from the sum; nothing where d is 0 or x infinite). That moves f(x + s d) by <grad f, error> to first order, so
    the difference over 2h moves by at most u / h * sum (|grad| + its bound) * (|x| + 2 h |d|): relative u |x| / h,
    about 1e-10 for h = 1e-6, far above the loss's own rounding when |x| is near 1."""
    u = unit_roundoff("float64")
    total = 0.0
    for x, d, g, b in zip(xs, ds, grads, grad_bounds):
        x = np.asarray(x, np.float64)
        moves = (d != 0) & np.isfinite(x)
        size = np.where(moves, np.abs(np.where(moves, x, 0.0)) + 2 * h * np.abs(d), 0.0)
        total += float(np.sum((np.abs(g) + b) * size))
    return u * total / h


def check_case(case: FuzzCase, compiled: bool = True, grads: bool = True, fd: bool = True, model: bool = False) -> None:
    """Run every check on one case; raise Mismatch on the first failure."""
    g, arrays = case.graph, case.arrays
    broken = [n for n in g.nodes if "ref_error" in n.meta]
    if broken:
        n = broken[0]
        raise Mismatch(
            "reference kernel",
            f"{n.op}({', '.join(str(v.type) for v in n.inputs)}) with {n.attrs} "
            f"passes its type rule but its kernel fails: {n.meta['ref_error']}",
        )
    _run("verify", verify, g)
    want = _run("interpret", interpret, g, arrays)
    check_passes(g, arrays, want)
    if compiled:
        check_compiled(g, arrays, want)
    if grads:
        check_gradients(case, fd)
    if model:
        from .fuzz_model import check_model

        check_model(case, want)
