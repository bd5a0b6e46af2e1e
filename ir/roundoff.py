"""Rounding-error bounds of a graph's float results (a running error analysis), to compare two evaluations.

`error_bounds(graph, inputs)` runs the reference interpreter and, op by op, an elementwise bound E on
|computed - exact| that holds for any float evaluation of the graph which rounds every op's result and adds the
terms of every reduction in any order (sequential, pairwise, blocked, in vector lanes, split over threads, with or
without FMA). To first order:

    E(out) = sum_i |d out / d in_i| * E(in_i)        the errors the op's inputs carry
           + s * (u * M + tiny)                      the op's own rounding

with u = eps / 2 of the result's dtype, tiny its smallest normal number (underflow), M the magnitude of the op's
terms and s its rounding steps:
  * add, sub, mul, sqrt, a cast to a narrower float: s = 1 (div: 2, x * (1/y) being allowed), M = |result|;
  * exp, log, tanh, sigmoid, erf, sin, cos, pow: s = 2 * 4 (approximations within 4 ulp), M = |result|;
  * a reduction of K terms per result (sum, matmul, conv and its gradients, col2im, max_pool_grad): M is the op
    applied to absolute values (sum |x|, |A| @ |B|, conv(|x|, |w|), ...), i.e. the sum of |terms|, not |result|,
    which may cancel; s = min(K, LAMBDA * sqrt(K)). K is the worst case, every rounding error maximal and of one
    sign (|error| <= gamma_K * sum |terms|, Higham, Accuracy and Stability of Numerical Algorithms, 3.1); with
    independent rounding errors the error exceeds LAMBDA * sqrt(K) * u * sum |terms| with probability below
    2K exp(-LAMBDA^2 / 2) (Higham & Mary, SIAM J. Sci. Comput. 41(5), 2019): below 4e-22 K for LAMBDA = 10;
  * data movement, selections, max: s = 0.
Steps add up along a chain: sum(conv(x, w) * v) gets K_conv + 1 + K_sum, so a joint forward + backward graph is
bounded by its longest accumulation chain. Values that are NaN or infinite have no finite bound.

Two evaluations a, b of one computation agree within E_a + E_b; `mismatches` applies such a tolerance.
Each op's definition gives its rule (OpDef.roundoff, built from the functions here); an elementwise op's rule
follows from its scalar expression (ErrorScalars).
"""

from __future__ import annotations

import math

import numpy as np

from .graph import Graph
from .interpreter import check_input, run_node
from .registry import get_op
from .scalar import Scalars

LAMBDA = 10.0


def unit_roundoff(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def steps(k: int) -> float:
    """Rounding steps charged to a reduction of k terms: min(k, LAMBDA * sqrt(k))."""
    return min(float(k), LAMBDA * math.sqrt(k))


def error_bounds(graph: Graph, inputs: list) -> list:
    """Per output of `graph` on `inputs`: an elementwise float64 bound on its rounding error (None for
    integer and bool outputs). The inputs are taken as exact."""
    return evaluate(graph, inputs)[1]


def evaluate(graph: Graph, inputs: list) -> tuple:
    """(the interpreter's outputs, error_bounds) in one run."""
    arrays = [check_input(v, a) for v, a in zip(graph.inputs, inputs)]
    with np.errstate(all="ignore"):
        return analyse(graph, arrays, [_exact(a) for a in arrays])


def analyse(graph: Graph, arrays: list, errors: list) -> tuple:
    """(output values, output error bounds) of `graph` given input values and their error bounds."""
    vals = {v.id: a for v, a in zip(graph.inputs, arrays)}
    errs = {v.id: e for v, e in zip(graph.inputs, errors)}
    for n in graph.nodes:
        ins = [vals[v.id] for v in n.inputs]
        outs = run_node(n, ins)
        bounds = _node_bounds(n, ins, [errs[v.id] for v in n.inputs], outs)
        for o, a, e in zip(n.outputs, outs, bounds):
            vals[o.id], errs[o.id] = a, (e if o.type.is_float else None)
    return [vals[v.id] for v in graph.outputs], [errs[v.id] for v in graph.outputs]


def mismatches(got, want, tol) -> np.ndarray:
    """Mask of the elements where `got` and `want` disagree: finite ones by more than `tol` (elementwise, NaN
    meaning no bound), non-finite ones at all (NaN must meet NaN, an infinity the same infinity) unless the bound is
    infinite or NaN: an element with no finite error bound may be anything (a rounding residue of exactly 0 in one
    evaluation and not in the other, times an infinity, is NaN in one and infinite in the other: fuzz 1003866)."""
    g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
    t = np.asarray(tol, np.float64)
    with np.errstate(all="ignore"):
        far = np.abs(g - w) > t
    fin = np.isfinite(g) & np.isfinite(w)
    return np.where(fin, far, ~((g == w) | (np.isnan(g) & np.isnan(w)) | ~np.isfinite(t)))


# -- per-op rules ------------------------------------------------------------------------------------------------
def _exact(a: np.ndarray):
    return np.zeros(np.shape(a)) if np.asarray(a).dtype.kind == "f" else None


def _f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def _mag(a) -> np.ndarray:
    return np.abs(_f64(a))


def _times(m, e) -> np.ndarray:
    """m * e with 0 where e is 0 (an exact value stays exact next to an infinite factor)."""
    m, e = np.broadcast_arrays(_f64(m), _f64(e))
    return np.where(e == 0, 0.0, m * e)


def _rounding(dtype, s: float, magnitude) -> np.ndarray:
    if not s:
        return np.zeros(np.shape(magnitude))
    fi = np.finfo(np.dtype(dtype))
    return s * (float(fi.eps) / 2 * _mag(magnitude) + float(fi.tiny))


def _run(op: str, arrays: list, attrs: dict) -> np.ndarray:
    with np.errstate(all="ignore"):  # (as run_node runs reference kernels)
        return _f64(get_op(op).run(arrays, attrs)[0])


def _input_errors(node, ins: list, errs: list) -> list:
    """Input error bounds, an integer or bool operand of a float op counting as rounded once into the result dtype."""
    out = node.outputs[0]
    res = []
    for a, e in zip(ins, errs):
        if e is None:
            e = (
                _rounding(out.dtype, 1, a)
                if out.type.is_float and np.asarray(a).dtype.kind in "biu"
                else np.zeros(np.shape(a))
            )
        res.append(e)
    return res


def moved(node, ins, errs, out):
    """Data movement linear in its first input (reshape, transpose, slice, ...): the same op on the error."""
    return _run(node.op, [errs[0]], node.attrs)


def joined(node, ins, errs, out):
    """Data movement of several operands (concat): the same op on their errors."""
    return _run(node.op, list(errs), node.attrs)


def gathered(node, ins, errs, out):
    """A gather (take, take_along): the selected elements' errors."""
    return _run(node.op, [errs[0], ins[1]], node.attrs)


def scattered(node, ins, errs, out):
    """A scatter-add of a gradient into indexed slots: at most idx.size terms land in one slot."""
    k = max(1, int(np.size(ins[1])))
    prop = _run(node.op, [_f64(errs[0]), ins[1]], node.attrs)
    return prop + _rounding(out.dtype, steps(k), _run(node.op, [_mag(ins[0]), ins[1]], node.attrs))


def largest_combined(node, ins, errs, out):
    """A max / min combining scatter (scatter_extreme_along): the largest error among the combined elements."""
    return _f64(get_op(node.op).run([_f64(errs[0]), ins[1], _f64(errs[2])], dict(node.attrs, mode="max"))[0])


def zero(node, ins, errs, out):
    """An exact result (e.g. 0/1 values)."""
    return np.zeros(np.shape(out))


def rounded_once(node, ins, errs, out):
    """A literal rounded into the result dtype."""
    return _rounding(out.dtype, 1, out)


def largest_error(node, ins, errs, out):
    """A maximum over axes: the error of the element chosen (elements do not tie within their errors)."""
    return _run(node.op, [errs[0]], node.attrs)


def pool_selected(node, ins, errs, out):
    """max_pool (the error of each window's maximum) and max_pool_select (the selected source element's error)."""
    src = errs[0] if len(ins) == 1 else errs[1]
    return _run("max_pool_select", [_f64(ins[0]), _f64(src)], node.attrs)


def reduction(k_of, linear_in=None):
    """An op that sums K = k_of(node, ins) terms per result: linear (sum, col2im) or bilinear (matmul, conv...) in
    its float inputs; `linear_in` lists the inputs it is linear in (the others, e.g. max_pool_grad's x, only select).
    M = the op applied to absolute values: the sum of |terms|."""

    def rule(node, ins, errs, out):
        pos = linear_in if linear_in is not None else range(len(ins))
        keep = [_f64(a) if i not in pos else _mag(a) for i, a in enumerate(ins)]
        prop = 0.0
        for i in pos:
            prop = prop + _run(node.op, keep[:i] + [_f64(errs[i])] + keep[i + 1 :], node.attrs)
        return prop + _rounding(out.dtype, steps(k_of(node, ins)), _run(node.op, keep, node.attrs))

    return rule


def product(k_of):
    """A product of K = k_of(node, ins) terms per result (prod): its operands' errors perturb it by at most
    prod(|x| + E) - prod(|x|) (also where some factor is 0), and its K - 1 roundings are relative to |result|."""

    def rule(node, ins, errs, out):
        if not node.outputs[0].type.is_float:
            return np.zeros(np.shape(out))
        mag = _run(node.op, [_mag(ins[0])], node.attrs)
        with np.errstate(over="ignore", invalid="ignore"):
            prop = _run(node.op, [_mag(ins[0]) + _f64(errs[0])], node.attrs) - mag
        return prop + _rounding(out.dtype, steps(k_of(node, ins)), mag)

    return rule


def prefix_sums(node, ins, errs, out):
    """Running sums (cumsum): position j adds the j + 1 terms up to it (from the end when reversed), so it is a
    reduction of that many terms: the running sum of the errors plus steps(j + 1) roundings of the running sum of
    |terms|."""
    a = node.attrs
    prop = _run(node.op, [_f64(errs[0])], a)
    mag = _run(node.op, [_mag(ins[0])], a)
    shape = np.shape(out)
    if not shape:
        return prop
    axis = a["axis"] % len(shape)
    n = shape[axis]
    k = np.arange(n, 0, -1) if a.get("reverse") else np.arange(1, n + 1)
    s = np.minimum(k, LAMBDA * np.sqrt(k)).reshape((n,) + (1,) * (len(shape) - axis - 1))
    fi = np.finfo(np.dtype(node.outputs[0].dtype))
    return prop + s * (float(fi.eps) / 2 * mag + float(fi.tiny))


def across_processes(node, ins, errs, out):
    """A reduction across the W processes of the group (allreduce): the same reduction of the operands' bounds (the
    sum of every process's errors; max/min: the largest, a bound on the chosen element's) plus, for sum and avg,
    W - 1 additions of terms whose |terms| add up to the sum of the |operands| across the processes, and avg's
    scaling by 1 / W. A world of one moves its operands unchanged."""
    from .collective import world_size

    w = world_size()
    how = node.attrs["reduce"]
    bucket = lambda arrays, r=how: _f64(get_op(node.op).run([_f64(a) for a in arrays], dict(node.attrs, reduce=r))[0])
    prop = bucket(errs, "max" if how in ("max", "min") else how)
    if how not in ("sum", "avg") or w == 1:
        return prop
    s = (w - 1) + (how == "avg")
    return prop + _rounding(out.dtype, s, bucket([_mag(a) for a in ins]))


def scan_bounds(node, ins: list, errs: list) -> list:
    """A scan: the body's analysis step by step, carrying the carries' bounds (one bound per output)."""
    at = node.attrs
    body, nc, nx = at["body"].graph, at["n_carry"], at["n_xs"]
    carries, xs, consts = ins[:nc], ins[nc : nc + nx], ins[nc + nx :]
    e_car, e_xs, e_con = errs[:nc], errs[nc : nc + nx], errs[nc + nx :]
    ys = [[None] * at["length"] for _ in body.outputs[nc:]]
    for t in range(at["length"] - 1, -1, -1) if at.get("reverse") else range(at["length"]):
        outs, bounds = analyse(
            body, carries + [x[t] for x in xs] + consts, e_car + [None if e is None else e[t] for e in e_xs] + e_con
        )
        carries, e_car = outs[:nc], bounds[:nc]
        for y, b in zip(ys, bounds[nc:]):
            y[t] = b
    stacked = [np.stack(y) if y and y[0] is not None else None for y in ys]
    return e_car + stacked


scan_bounds.per_output = True


# -- elementwise ops: their scalar expression evaluated on (value, error bound) pairs -----------------------------
class _E:
    """A float value with its error bound (float64 arrays)."""

    __slots__ = ("v", "e")

    def __init__(self, v, e):
        self.v, self.e = v, e


class ErrorScalars(Scalars):
    """The scalar language (ir/scalar.py) on (value, error bound) pairs: an elementwise op's expression gives its
    rounding-error rule too. Each operation propagates its operands' errors by the absolute values of its partial
    derivatives and adds its own rounding: 1 unit for + - * sqrt, 2 for / (x * (1/y) is allowed), 2 * ULPS for the
    approximated functions; selections and min/max keep the chosen operand's error. Bools carry no error."""

    ULP_FUNCTIONS = 4  # ulp budget of exp, log, tanh, sigmoid, erf, sin, cos, pow approximations

    def __init__(self, dtype: str, out_dtype: str, attrs: dict):
        self.dtype, self.attrs = dtype, attrs
        self._out = out_dtype

    def _r(self, v, s: float):
        return _rounding(self._out, s, v) if np.dtype(self._out).kind == "f" else np.zeros(np.shape(v))

    def lift(self, v, e):
        return _E(_f64(v), _f64(e)) if np.asarray(v).dtype.kind != "b" else np.asarray(v)

    def const(self, v):
        v = _f64(v)
        return _E(v, self._r(v, 1 if np.dtype(self.dtype).kind == "f" and float(np.asarray(v, self.dtype)) != v else 0))

    def _fn(self, v, e, s):
        return _E(v, e + self._r(v, s))

    def add(self, x, y):
        return self._fn(x.v + y.v, x.e + y.e, 1)

    def sub(self, x, y):
        return self._fn(x.v - y.v, x.e + y.e, 1)

    def mul(self, x, y):
        return self._fn(x.v * y.v, _times(np.abs(y.v), x.e) + _times(np.abs(x.v), y.e), 1)

    def div(self, x, y):
        r = x.v / y.v
        return self._fn(r, _times(1 / np.abs(y.v), x.e) + _times(np.abs(r / y.v), y.e), 2)

    def pow(self, x, y):
        r = np.power(x.v, y.v)
        dx = y.v * np.power(x.v, y.v - 1)  # (not y * r / x: at x = 0 that is 0 / 0, the derivative is infinite)
        prop = _times(np.abs(dx), x.e) + _times(np.abs(r * np.log(np.abs(x.v))), y.e)
        return self._fn(r, prop, 2 * self.ULP_FUNCTIONS)

    def neg(self, x):
        return _E(-x.v, x.e)

    def abs(self, x):
        return _E(np.abs(x.v), x.e)

    def sign(self, x):
        return _E(np.sign(x.v), np.zeros(np.shape(x.v)))

    def minimum(self, x, y):
        return _E(np.minimum(x.v, y.v), np.maximum(x.e, y.e))

    def maximum(self, x, y):
        return _E(np.maximum(x.v, y.v), np.maximum(x.e, y.e))

    def _f(self, r, deriv, x):
        return self._fn(r, _times(np.abs(deriv), x.e), 2 * self.ULP_FUNCTIONS)

    def exp(self, x):
        r = np.exp(x.v)
        return self._f(r, r, x)

    def log(self, x):
        return self._f(np.log(x.v), 1 / x.v, x)

    def sqrt(self, x):
        r = np.sqrt(x.v)
        return self._fn(r, _times(0.5 / np.abs(r), x.e), 1)

    def tanh(self, x):
        r = np.tanh(x.v)
        return self._f(r, 1 - r * r, x)

    def sigmoid(self, x):
        r = 1 / (1 + np.exp(-x.v))
        return self._f(r, r * (1 - r), x)

    def erf(self, x):
        from .scalar import _erf

        return self._f(_erf(x.v), 2 / np.sqrt(np.pi) * np.exp(-x.v * x.v), x)

    def sin(self, x):
        return self._f(np.sin(x.v), np.cos(x.v), x)

    def cos(self, x):
        return self._f(np.cos(x.v), np.sin(x.v), x)

    def floor(self, x):
        return _E(np.floor(x.v), np.zeros(np.shape(x.v)))

    def ceil(self, x):
        return _E(np.ceil(x.v), np.zeros(np.shape(x.v)))

    def trunc(self, x):
        return _E(np.trunc(x.v), np.zeros(np.shape(x.v)))

    def rint(self, x):
        return _E(np.rint(x.v), np.zeros(np.shape(x.v)))

    def copysign(self, x, y):
        return _E(np.copysign(x.v, y.v), x.e)

    def fmod(self, x, y):  # exact; x - trunc(x / y) * y propagates the operands' errors
        return _E(np.fmod(x.v, y.v), x.e + _times(np.abs(np.trunc(x.v / y.v)), y.e))

    def is_nan(self, x):
        return np.isnan(x.v) if isinstance(x, _E) else np.zeros(np.shape(x), bool)

    def _val(self, x):
        return x.v if isinstance(x, _E) else x

    def lt(self, x, y):
        return self._val(x) < self._val(y)

    def le(self, x, y):
        return self._val(x) <= self._val(y)

    def gt(self, x, y):
        return self._val(x) > self._val(y)

    def ge(self, x, y):
        return self._val(x) >= self._val(y)

    def eq(self, x, y):
        return self._val(x) == self._val(y)

    def ne(self, x, y):
        return self._val(x) != self._val(y)

    def and_(self, x, y):
        return np.logical_and(self._val(x), self._val(y))

    def or_(self, x, y):
        return np.logical_or(self._val(x), self._val(y))

    def not_(self, x):
        return np.logical_not(self._val(x))

    def bit_and(self, x, y):
        return np.bitwise_and(self._val(x), self._val(y))

    def bit_or(self, x, y):
        return np.bitwise_or(self._val(x), self._val(y))

    def bit_xor(self, x, y):
        return np.bitwise_xor(self._val(x), self._val(y))

    def bit_not(self, x):
        return np.invert(self._val(x))

    def select(self, c, x, y):
        if not isinstance(x, _E):
            return np.where(c, x, y)
        return _E(np.where(c, x.v, y.v), np.where(c, x.e, y.e))

    def cast(self, x, dtype: str):
        if np.dtype(dtype).kind != "f":
            return (
                np.asarray(self._val(x)).astype(dtype)
                if dtype == "bool"
                else _E(_f64(self._val(x)), 0 * _f64(self._val(x)))
            )
        if not isinstance(x, _E):  # an integer or bool value becomes a float: rounded once
            v = _f64(x)
            return _E(v, _rounding(dtype, 1, v))
        src = np.dtype(self.dtype)
        narrower = src.kind != "f" or np.finfo(src).eps < np.finfo(dtype).eps
        return _E(x.v, x.e + (_rounding(dtype, 1, x.v) if narrower else 0))


def elementwise(node, ins, errs, out):
    """An elementwise op's bound from its scalar expression (ErrorScalars)."""
    d = get_op(node.op)
    out_t = node.outputs[0]
    dts = d.operand_dtypes([v.dtype for v in node.inputs], out_t.dtype)
    compute = d.compute_dtype([v.dtype for v in node.inputs], out_t.dtype)
    s = ErrorScalars(compute, out_t.dtype, node.attrs)
    args = []
    for a, e, v, t in zip(ins, errs, node.inputs, dts):
        if t == "bool":
            args.append(np.asarray(a).astype(bool))
        elif not v.type.is_float and np.dtype(t).kind == "f":  # an int or bool operand rounded into the float dtype
            args.append(_E(_f64(a), _rounding(t, 1, a)))
        elif np.dtype(t).kind == "f":
            args.append(_E(_f64(a), _f64(e)))
        else:
            args.append(_E(_f64(a), np.zeros(np.shape(a))))
    with np.errstate(all="ignore"):
        r = d.scalar(s, *args)
    e = r.e if isinstance(r, _E) else np.zeros(np.shape(r))
    return np.broadcast_to(e, out_t.shape).astype(np.float64)


def _node_bounds(node, ins: list, errs: list, outs: list) -> list:
    if not any(o.type.is_float for o in node.outputs):
        return [None] * len(outs)
    d = get_op(node.op)
    rule = d.roundoff or (elementwise if d.scalar is not None else None)
    if rule is None:
        raise NotImplementedError(f"no rounding-error rule for op {node.op} (OpDef.roundoff)")
    if getattr(rule, "per_output", False):
        return rule(node, ins, errs)
    return [rule(node, ins, _input_errors(node, ins, errs), outs[0])]
