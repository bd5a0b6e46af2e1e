"""The graph builder behind the fuzzer (see fuzz_gen): random decisions, inputs, and the conditioning rules.

Every candidate node goes through its op's type rule (`infer_node`; ill-typed candidates are dropped) and is
evaluated at once with the reference kernels, which lets the builder keep only well-conditioned graphs:

* no finite value beyond LIMIT in magnitude and no Inf/NaN appearing from finite inputs except where it is
  exact (log 0, x / 0, sqrt(-1));
* no operand of a discontinuous op (compare, relu, sign, max, maximum, cast to int, ...) that lies near its
  discontinuity unless it is computed exactly (both the compiled code and NumPy round it the same way), so
  compiled and reference results can only differ by rounding;
* no inexact operand of a singular op (atanh, asin, ... at +-1: Fuzz.singular) within SINGULAR_MARGIN times its
  rounding-error bound (ir/roundoff.py) of a singular point: the compiled value, which may differ from the reference
  by that bound, must stay on the same side, and the bound's first-order model (the derivative at the reference
  value) valid over that distance;
* in the "smooth" profile (float64 only, differentiable ops only, log/sqrt/pow/div operands away from their
  singularities), the gradient can also be checked against finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphnn.ir.graph import Graph, Node, Value
from graphnn.ir.interpreter import run_node
from graphnn.ir.ops.pool import _windows as pool_windows
from graphnn.ir.passes import dce
from graphnn.ir.registry import IRError, get_op, infer_node
from graphnn.ir.roundoff import error_bounds
from graphnn.ir.types import TensorType

LIMIT = {"general": 1e4, "smooth": 1e3, "body": 1e4}
MARGIN = 1e-3  # relative distance an inexact operand keeps from a discontinuity
MAX_ELEMS = 240  # elements per tensor
# distance from a singular point an inexact operand keeps, in multiples of its rounding-error bound E: the compiled
# operand is within 2E of the reference one, where a derivative like 1 / d^2 (atanh's gradient, d the distance)
# changes by at most a factor (1 - 2 / SINGULAR_MARGIN)^-2 = 1.04 from its value at the reference operand
SINGULAR_MARGIN = 100.0


class Source:
    """Where random decisions come from. Subclasses implement `int` (inclusive bounds)."""

    def int(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def pick(self, seq):
        seq = list(seq)
        return seq[self.int(0, len(seq) - 1)]

    def chance(self, p: float) -> bool:
        """True with probability p (shrinks towards False)."""
        return self.int(0, 999) >= round(1000 * (1 - p))


class RngSource(Source):
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def int(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))


class DrawSource(Source):
    """Decisions drawn from hypothesis' `data` strategy object (`st.data()`)."""

    def __init__(self, data):
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))


@dataclass
class FuzzCase:
    """A random graph, one array per graph input, and what can be checked on it."""

    graph: Graph
    arrays: list
    profile: str = "general"
    seed: int | None = None
    notes: list = field(default_factory=list)

    @property
    def smooth(self) -> bool:
        return self.profile == "smooth"

    def text(self) -> str:
        return self.graph.to_text()


def numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


class Builder:
    """Grows one graph; `env` holds every value's reference array, `exact` whether compiled code reproduces it
    bit for bit."""

    def __init__(self, src: Source, profile: str, data_seed: int, graph: Graph | None = None, max_inputs: int = 8):
        self.src, self.profile = src, profile
        self.rng = np.random.default_rng(data_seed)
        self.g = graph or Graph("fuzz")
        self.env: dict = {}
        self.exact: dict = {}
        self.pool: list = []
        self.max_inputs = max_inputs
        self.broken: Value | None = None  # a node whose reference kernel failed on well-typed inputs

    # -- data and inputs ---------------------------------------------------------------------------------
    def floats(self) -> tuple:
        return ("float64",) if self.profile == "smooth" else ("float32", "float32", "float64")

    def data(self, shape, dtype, kind="normal") -> np.ndarray:
        r = self.rng
        if dtype == "bool":
            return r.random(shape) < 0.5
        if dtype == "int64":  # kind ("index", n): valid indices into a dimension of size n
            return r.integers(0, kind[1], shape) if isinstance(kind, tuple) else r.integers(-1, 5, shape)
        if kind == "pos":
            a = r.uniform(0.5, 2.0, shape)
        elif kind == "away":
            a = r.choice([-1.0, 1.0], shape) * r.uniform(0.5, 2.0, shape)
        else:
            a = r.standard_normal(shape)
            if self.profile == "general" and a.size > 2 and r.random() < 0.04:  # a few NaN / Inf entries
                flat = a.reshape(-1)
                flat[r.integers(0, a.size, 2)] = r.choice([np.nan, np.inf, -np.inf], 2)
        return np.asarray(a, dtype)

    def can_add_input(self) -> bool:
        return len(self.g.inputs) < self.max_inputs

    def new_input(self, shape, dtype, kind="normal") -> Value:
        v = self.g.add_input(TensorType(tuple(shape), dtype), f"x{len(self.g.inputs)}")
        self.env[v.id] = self.data(tuple(shape), dtype, kind)
        self.exact[v.id] = True
        self.pool.append(v)
        return v

    def float_dtype(self) -> str:
        return self.src.pick(self.floats())

    def any_dtype(self) -> str:
        if self.profile == "smooth":
            return "float64"
        return self.src.pick(("float32", "float64", "float32", "int64", "bool"))

    def shape(self, max_rank: int = 4) -> tuple:
        rank = self.src.int(0, max_rank)
        dims = []
        for _ in range(rank):
            d = self.src.pick((1, 2, 3, 4, 2, 3, 5, 6))
            if numel(dims) * d > MAX_ELEMS:
                break
            dims.append(d)
        return tuple(dims)

    # -- operands -------------------------------------------------------------------------------------------
    def operand(self, pred=lambda v: True, make=None) -> Value | None:
        """A value satisfying `pred` (recent ones first), or a new input made by `make()`."""
        cands = [v for v in reversed(self.pool) if pred(v)]
        if make is not None and self.can_add_input() and (not cands or self.src.chance(0.15)):
            return make()
        if not cands:
            return None
        return cands[min(self.src.int(0, len(cands) - 1), self.src.int(0, len(cands) - 1))]

    def is_float(self, v) -> bool:
        return v.type.is_float

    def arr(self, v) -> np.ndarray:
        return self.env[v.id]

    def bound(self, v: Value) -> np.ndarray:
        """The rounding-error bound of v's reference value (roundoff.error_bounds of the graph built so far, its
        inputs taken as exact: a scan body's too, though they are not; singular ops are not drawn in bodies)."""
        probe = self.g.copy()
        probe.outputs = [list(probe.values())[list(self.g.values()).index(v)]]
        dce(probe)
        with np.errstate(all="ignore"):
            return error_bounds(probe, [self.env[i.id] for i in self.g.inputs])[0]

    # -- adding nodes ---------------------------------------------------------------------------------------
    def add(self, op: str, inputs: list, attrs: dict) -> Value | None:
        """Append op(inputs) if it is well typed and well conditioned; return its first output (or None)."""
        if any(v.id not in self.env for v in inputs):
            return None
        try:
            types = infer_node(op, [v.type for v in inputs], attrs)
        except IRError:
            return None
        if any(t.size > MAX_ELEMS for t in types):
            return None
        node = Node(op, inputs, attrs, types)
        arrays = [self.env[v.id] for v in inputs]
        try:
            with np.errstate(all="ignore"):
                outs = run_node(node, arrays)
        except Exception as e:  # noqa: BLE001  (a type rule accepted what the reference kernel cannot run)
            if get_op(op).fuzz.value_errors:  # the reference rejects some values (not a bug of its type rule)
                return None
            self.g.nodes.append(node)
            self.broken = node.outputs[0]
            node.meta["ref_error"] = f"{type(e).__name__}: {e}"
            return None
        if not self.acceptable(node, arrays, outs):
            return None
        self.g.nodes.append(node)
        # bit-identical in compiled code and NumPy when the float inputs are (data movement, selection, sign flips;
        # arithmetic is compiled with contraction and approximate functions): the op's `exact` trait
        exact = all(self.exact[v.id] for v in inputs if v.type.is_float) and get_op(op).fuzz.exact
        for o, a in zip(node.outputs, outs):
            self.env[o.id] = a
            self.exact[o.id] = exact or not o.type.is_float
            self.pool.append(o)
        return node.outputs[0]

    def acceptable(self, node: Node, arrays: list, outs: list) -> bool:
        lim = LIMIT[self.profile]
        finite_in = all(np.isfinite(a).all() for a, v in zip(arrays, node.inputs) if v.type.is_float)
        for o, a in zip(node.outputs, outs):
            if not o.type.is_float or not a.size:
                continue
            fin = np.isfinite(a)
            if np.abs(a[fin]).max(initial=0.0) > lim:
                return False
            if not fin.all() and (self.profile == "smooth" or (finite_in and not get_op(node.op).fuzz.nonfinite)):
                return False
        return _well_conditioned(self, node, arrays)


def _near(a, b, scale=None) -> bool:
    """Is any element of a within MARGIN (relative) of b (NaN never is)?"""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(all="ignore"):
        s = 1.0 + np.maximum(np.abs(a), np.abs(b)) if scale is None else scale
        return bool(np.any(np.abs(a - b) < MARGIN * s))


def _top2_close(win: np.ndarray) -> bool:
    """win: (..., n) windows. Is the largest value within MARGIN of the second largest in some window?"""
    if win.shape[-1] < 2 or not win.size:
        return False
    w = np.sort(np.where(np.isnan(win), np.inf, win.astype(np.float64)), axis=-1)
    a, b = w[..., -1], w[..., -2]
    fin = np.isfinite(a) & np.isfinite(b)
    return _near(a[fin], b[fin])


def _reduce_windows(x: np.ndarray, axes) -> np.ndarray:
    from graphnn.ir.ops._util import norm_axes

    ax = norm_axes(axes, x.ndim)
    keep = [i for i in range(x.ndim) if i not in ax]
    moved = np.transpose(x, keep + list(ax))
    window = int(np.prod([x.shape[i] for i in ax], dtype=np.int64))  # explicit: -1 is ambiguous for empty arrays
    return moved.reshape(moved.shape[: len(keep)] + (window,))


def _operand_domain(fz, i: int) -> str:
    return fz.domain if isinstance(fz.domain, str) else fz.domain[i]


def _in_domain(b: Builder, fz, i: int, ins: list, arrays: list, inexact: list) -> bool:
    """Operand i within its op's value domain (the definition's Fuzz.domain), away from the singularity."""
    dom, v, a = _operand_domain(fz, i), ins[i], arrays[i]
    smooth = b.profile == "smooth"
    if dom == "away":  # a divisor: away from 0 (signed zeros under nsz, huge quotients, integer division by 0)
        return bool(np.all(np.abs(a) >= (0.1 if smooth else 1e-3))) if v.type.is_float else bool(np.all(a != 0))
    if dom == "pos" and v.type.is_float:  # log, sqrt, a pow base
        if smooth:
            return not np.any(a < 0.1)
        others_inexact = any(x for j, x in enumerate(inexact) if j != i)
        return not (np.any(np.abs(a) < 1e-3) or (others_inexact and np.any(a < 0)))
    return True


def _kink_free(node: Node, kinks: str, arrays: list, inexact: list) -> bool:
    """Inexact operands away from where the op's result jumps or kinks (the definition's Fuzz.kinks)."""
    if kinks == "branch_cut":  # atan2: jumps by 2 pi across y = 0 where x < 0 (finite differences move exact zeros too)
        y, x = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in arrays))
        with np.errstate(all="ignore"):
            cut = np.any((np.abs(y) < MARGIN * (1.0 + np.abs(x))) & (x <= 0))
        return not cut and _kink_free(node, "zero", arrays, inexact)
    if not kinks or not any(inexact):
        return True
    if kinks == "zero":
        return not any(x and _near(a, 0.0) for x, a in zip(inexact, arrays))

    if kinks == "ties":
        return not _near(arrays[0], arrays[1])
    if kinks == "reduce_ties":
        axes = node.attrs["axes"] if "axes" in node.attrs else node.attrs["axis"]
        return not (inexact[0] and _top2_close(_reduce_windows(arrays[0], axes)))
    if kinks == "pool_ties":
        if not inexact[0]:
            return True
        x = arrays[0]
        out = TensorType(x.shape, "float64")
        sp = infer_node("max_pool", [out], node.attrs)[0].shape[x.ndim - len(node.attrs["kernel"]) :]
        win, _ = pool_windows(x, node.attrs, sp, -np.inf)
        return not _top2_close(win)
    if kinks == "sort_ties":  # any two elements of a sorted row close together
        if not inexact[0]:
            return True
        row = np.moveaxis(np.asarray(arrays[0], np.float64), node.attrs["axis"], -1)
        w = np.sort(row, axis=-1)
        a, c = w[..., 1:], w[..., :-1]
        fin = np.isfinite(a) & np.isfinite(c)
        return not _near(a[fin], c[fin])
    if kinks in ("integers", "quotients"):  # rounding (jumps at integers, ties at halves), fmod (at integer x / y)
        if not any(inexact):
            return True
        with np.errstate(all="ignore"):
            x = np.asarray(arrays[0], np.float64) * 2 if kinks == "integers" else arrays[0] / arrays[1]
        x = x[np.isfinite(x)]
        return not np.any(np.abs(x) > 1e6) and not _near(x, np.round(x), scale=1.0)
    if kinks == "poles":  # lgamma, digamma, trigamma: infinite at 0 and the negative integers (tanh rounding a
        # value 1 ulp off -1 onto -1 made lgamma's result inf instead of 16.6: fuzz seed 20267812)
        x = np.asarray(arrays[0], np.float64)
        x = x[np.isfinite(x) & (x < 0.5)]
        return not _near(x, np.round(x), scale=1.0)
    if kinks == "cast":
        x = arrays[0]
        if node.attrs["dtype"] == "bool":
            return not _near(x, 0.0)
        if node.attrs["dtype"] == "int64":
            if not np.isfinite(x).all() or np.abs(x).max(initial=0) > 1e6:
                return False
            with np.errstate(all="ignore"):
                return not (_near(x, np.round(x), scale=1.0) and not np.array_equal(x, np.round(x)))
        return True
    raise ValueError(f"op {node.op}: unknown fuzz kinks {kinks!r}")


def _off_singularities(b: Builder, node: Node, points: tuple, arrays: list, inexact: list) -> bool:
    """Every inexact operand's finite elements farther from each singular point than SINGULAR_MARGIN times their
    rounding-error bound (an element whose bound is NaN, unknown, never is)."""
    for v, a, x in zip(node.inputs, arrays, inexact):
        a = np.asarray(a, np.float64)
        fin = np.isfinite(a)
        if not (x and points and fin.any()):
            continue
        dist = np.min([np.abs(a[fin] - p) for p in points], axis=0)
        with np.errstate(all="ignore"):
            if not np.all(dist > SINGULAR_MARGIN * np.broadcast_to(b.bound(v), a.shape)[fin]):
                return False
    return True


def _well_conditioned(b: Builder, node: Node, arrays: list) -> bool:
    """Discontinuities and singularities, from the op's fuzz traits: see the module docstring."""
    fz, ins = get_op(node.op).fuzz, node.inputs
    inexact = [v.type.is_float and not b.exact[v.id] for v in ins]
    if not all(_in_domain(b, fz, i, ins, arrays, inexact) for i in range(len(ins))):
        return False
    return _kink_free(node, fz.kinks, arrays, inexact) and _off_singularities(b, node, fz.singular, arrays, inexact)
