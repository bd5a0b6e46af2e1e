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

Tolerances. Compiled float code uses contraction (FMA), reassociated reductions and its own exp/log/tanh,
so it differs from NumPy by rounding: a few ulp per op, growing with reduction length and with the
magnitudes being summed. Elements are compared with |got - want| <= atol * scale + rtol * |want|, where scale
is the largest finite magnitude among all values of the reference run (at least 1): a sum's rounding error
grows with its terms, not with its result, which may cancel to almost nothing. The generator bounds magnitudes
by 1e4 and keeps operands of discontinuous ops away from their discontinuities, so any larger difference is a
bug. NaN and Inf must agree exactly.
"""
from __future__ import annotations

import numpy as np

from graphnn.ir import grad_graph, interpret, verify
from graphnn.ir.graph import Graph
from graphnn.ir.passes import PIPELINE, conv_to_gemm, lower_for_codegen
from graphnn.ir.types import TensorType

from .fuzz_gen import FuzzCase

# (rtol, atol relative to the scale of the reference run)
TOL = {"float32": (2e-4, 2e-5), "float64": (1e-9, 1e-11)}
PASS_TOL = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-13)}
FD_EPS, FD_TOL = 1e-6, 2e-5
PASSES = list(PIPELINE) + [("conv_to_gemm", conv_to_gemm)]


class Mismatch(AssertionError):
    """A check failed: `stage` names it, the message says what differed."""

    def __init__(self, stage: str, detail: str):
        super().__init__(f"[{stage}] {detail}")
        self.stage, self.detail = stage, detail


def compare(got, want, dtype: str, what: str, tol: dict = TOL, inf_for_nan: bool = False, scale: float = 1.0) -> None:
    """Same shape and dtype; floats within tol (NaN where NaN, equal infinities), others exactly equal.
    inf_for_nan accepts +-Inf where the reference has NaN (see check_compiled)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype.name != want.dtype.name:
        raise Mismatch(what, f"got {got.dtype.name}{list(got.shape)}, expected {want.dtype.name}{list(want.shape)}")
    if dtype not in tol:  # integers and bools: exactly equal
        if not np.array_equal(got, want):
            idx = np.argwhere(got != want)[:3]
            pairs = ", ".join(f"{tuple(int(k) for k in i)}: {got[tuple(i)].item()!r} vs {want[tuple(i)].item()!r}" for i in idx)
            raise Mismatch(what, f"{int((got != want).sum())} of {got.size} {dtype} elements differ (got vs expected) {pairs}")
        return
    rtol, atol = tol[dtype]
    g, w = got.astype(np.float64), want.astype(np.float64)
    nan_g, nan_w = np.isnan(g), np.isnan(w)
    inf_differs = (np.isinf(g) | np.isinf(w)) & (g != w)
    fin = np.isfinite(w) & np.isfinite(g)
    scale = max(1.0, scale, float(np.abs(w[np.isfinite(w)]).max(initial=0.0)))
    with np.errstate(all="ignore"):
        far = fin & (np.abs(g - w) > atol * scale + rtol * np.abs(w))
    bad = (nan_g != nan_w) | inf_differs | far
    if inf_for_nan:
        bad &= ~(nan_w & np.isinf(g))
    if bad.any():
        idx = np.argwhere(bad)[:3]
        pairs = ", ".join(f"{tuple(int(k) for k in i)}: {float(g[tuple(i)])!r} vs {float(w[tuple(i)])!r}" for i in idx)
        raise Mismatch(what, f"{int(bad.sum())} of {bad.size} elements differ (got vs expected) {pairs}")


def computes_in_float32(graph: Graph) -> bool:
    """Does any value of the graph (or of a scan body in it) have type float32?"""
    return any(v.dtype == "float32" for v in graph.values()) or any(
        computes_in_float32(n.attrs["body"].graph) for n in graph.nodes if n.op == "scan")


def _compare_all(got: list, want: list, graph: Graph, what: str, tol: dict = TOL, inf_for_nan: bool = False,
                 scale: float = 1.0) -> None:
    """Float outputs are compared at the precision of the graph's least precise float (a float64 result of a
    float32 computation carries float32 rounding)."""
    if len(got) != len(want):
        raise Mismatch(what, f"{len(got)} outputs, expected {len(want)}")
    low = computes_in_float32(graph)
    for j, (a, b, v) in enumerate(zip(got, want, graph.outputs)):
        prec = "float32" if low and v.type.is_float else v.dtype
        compare(a, b, prec, f"{what}: output {j} ({v.type})", tol, inf_for_nan, scale)


def _run(stage: str, fn, *args):
    try:
        with np.errstate(all="ignore"):
            return fn(*args)
    except Mismatch:
        raise
    except Exception as e:  # noqa: BLE001  (any failure is a finding, attributed to its stage)
        raise Mismatch(stage, f"{type(e).__name__}: {e}") from e


def check_passes(graph: Graph, arrays: list, want: list, label: str = "") -> None:
    """Each pass alone, then all in sequence (as optimize and lower_for_codegen run them). The passes compute with
    the same kernels (PASS_TOL: results agree but for the last bits), except conv_to_gemm, which turns a
    convolution into an im2col + matmul that sums in another order (TOL, as compiled code)."""
    scale, _ = reference_profile(graph, arrays)
    for name, p in PASSES:
        g = graph.copy()
        _run(f"{label}pass {name}", lambda: verify(p(g)))
        tol = TOL if name == "conv_to_gemm" else PASS_TOL
        got = _run(f"{label}pass {name}: interpret", interpret, g, arrays)
        _compare_all(got, want, g, f"{label}pass {name}", tol, scale=scale)
    g = graph.copy()
    tol = PASS_TOL
    for i, (name, p) in enumerate(PASSES + PASSES):
        _run(f"{label}pipeline step {i} ({name})", lambda: verify(p(g)))
        tol = TOL if name == "conv_to_gemm" else tol
        got = _run(f"{label}pipeline step {i} ({name}): interpret", interpret, g, arrays)
        _compare_all(got, want, g, f"{label}pipeline step {i} ({name})", tol, scale=scale)


def check_compiled(graph: Graph, arrays: list, want: list, label: str = "") -> None:
    from graphnn.codegen import CompiledGraph

    low = graph.copy()
    _run(f"{label}lower_for_codegen", lambda: verify(lower_for_codegen(low)))
    feeds = [a.copy() for a in arrays]
    got = _run(f"{label}compile", lambda: CompiledGraph(low)(feeds))
    # Compiled reductions are reassociated (fast-math), which may factor sum(x * w) into x * sum(w): with an
    # infinite x that gives +-Inf where the IEEE order gives Inf - Inf = NaN. Accepted when some value is infinite.
    scale, has_inf = reference_profile(graph, arrays)
    _compare_all(got, want, graph, f"{label}compiled", inf_for_nan=has_inf, scale=scale)
    for i, (a, b) in enumerate(zip(feeds, arrays)):
        if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            raise Mismatch(f"{label}compiled", f"compiled code modified input {i}")


def reference_profile(graph: Graph, arrays: list) -> tuple:
    """(largest finite magnitude of any float value, is any value infinite) in the graph's reference run."""
    probe = graph.copy()
    probe.outputs = [v for v in probe.values() if v.type.is_float]
    with np.errstate(all="ignore"):
        vals = interpret(probe, arrays)
    scale = max([float(np.abs(a[np.isfinite(a)]).max(initial=0.0)) for a in vals] + [1.0])
    return scale, any(np.isinf(a).any() for a in vals)


def loss_graph(graph: Graph, seed: int = 0):
    """(graph + weight inputs -> scalar loss, wrt = float inputs of `graph`, weight arrays) or None."""
    g = graph.copy()
    n_in = len(g.inputs)
    rng = np.random.default_rng(seed)
    loss, weights = None, []
    for j, out in enumerate(v for v in graph.outputs if v.type.is_float):
        out = g.outputs[graph.outputs.index(out)]
        w = g.add_input(TensorType(out.shape, out.dtype), f"w{j}")
        weights.append((rng.uniform(0.5, 1.5, out.shape) * rng.choice([-1.0, 1.0], out.shape)).astype(out.dtype))
        term = g.emit("sum", g.emit("mul", out, w), axes=None, keepdims=False)
        if loss is not None and term.dtype != loss.dtype:
            term = g.emit("cast", term, dtype=loss.dtype)
        loss = term if loss is None else g.emit("add", loss, term)
    wrt = [v for v in g.inputs[:n_in] if v.type.is_float]
    if loss is None or not wrt:
        return None
    g.outputs = [loss]
    return g, wrt, weights


def check_gradients(case: FuzzCase, fd: bool = True) -> None:
    made = loss_graph(case.graph, seed=len(case.graph.nodes))
    if made is None:
        return
    lg, wrt, weights = made
    joint = _run("grad_graph", lambda: verify(grad_graph(lg, wrt)))
    feeds = list(case.arrays) + weights
    ref = _run("grad: interpret", interpret, joint, feeds)
    check_passes(joint, feeds, ref, "grad: ")
    check_compiled(joint, feeds, ref, "grad: ")
    if fd and case.smooth and all(np.isfinite(r).all() for r in ref):
        check_finite_differences(lg, wrt, feeds, ref[1:], case.seed or 0)


def check_finite_differences(lg: Graph, wrt: list, feeds: list, grads: list, seed: int) -> None:
    """<grad, d> against (f(x + eps d) - f(x - eps d)) / (2 eps) for a joint direction and one per input."""
    rng = np.random.default_rng(seed)
    pos = [lg.inputs.index(v) for v in wrt]
    dirs = [rng.standard_normal(v.shape) for v in wrt]
    tests = [dirs] + ([[d if i == j else np.zeros_like(d) for j, d in enumerate(dirs)] for i in range(len(dirs))]
                      if len(dirs) > 1 else [])

    def f(sign, ds):
        x = list(feeds)
        for p, d in zip(pos, ds):
            x[p] = feeds[p] + sign * FD_EPS * d
        return float(interpret(lg, x)[0])
    for k, ds in enumerate(tests):
        with np.errstate(all="ignore"):
            fd = (f(1, ds) - f(-1, ds)) / (2 * FD_EPS)
        an = float(sum(np.sum(g * d) for g, d in zip(grads, ds)))
        mag = float(sum(np.sum(np.abs(g * d)) for g, d in zip(grads, ds)))
        if not abs(fd - an) <= FD_TOL * (1.0 + mag):
            which = "all inputs" if k == 0 else f"input {wrt[k - 1].name}"
            raise Mismatch("finite differences", f"direction over {which}: gradient gives {an!r}, finite differences {fd!r}")


def check_case(case: FuzzCase, compiled: bool = True, grads: bool = True, fd: bool = True, model: bool = False) -> None:
    """Run every check on one case; raise Mismatch on the first failure."""
    g, arrays = case.graph, case.arrays
    broken = [n for n in g.nodes if "ref_error" in n.meta]
    if broken:
        n = broken[0]
        raise Mismatch("reference kernel", f"{n.op}({', '.join(str(v.type) for v in n.inputs)}) with {n.attrs} "
                                           f"passes its type rule but its kernel fails: {n.meta['ref_error']}")
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
