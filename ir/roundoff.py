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
  * exp, log, tanh, sigmoid, pow: s = 2 * ULPS[op] (approximations within ULPS[op] ulp), M = |result|;
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
"""
from __future__ import annotations

import math

import numpy as np

from .graph import Graph
from .interpreter import check_input, run_node
from .ops._util import norm_axes
from .registry import get_op

LAMBDA = 10.0
# ulp budgets of the elementwise approximations (codegen's float32 polynomials, NumPy's SIMD loops, libm)
ULPS = {"exp": 4, "log": 4, "tanh": 4, "sigmoid": 4, "pow": 4}


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
    meaning no bound), non-finite ones at all (NaN must meet NaN, an infinity the same infinity)."""
    g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
    with np.errstate(all="ignore"):
        far = np.abs(g - w) > np.asarray(tol, np.float64)
    fin = np.isfinite(g) & np.isfinite(w)
    return np.where(fin, far, ~((g == w) | (np.isnan(g) & np.isnan(w))))


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
    return _f64(get_op(op).run(arrays, attrs)[0])


def _input_errors(node, ins: list, errs: list) -> list:
    """Input error bounds, an integer or bool operand of a float op counting as rounded once into the result dtype."""
    out = node.outputs[0]
    res = []
    for a, e in zip(ins, errs):
        if e is None:
            e = _rounding(out.dtype, 1, a) if out.type.is_float and np.asarray(a).dtype.kind in "biu" else np.zeros(np.shape(a))
        res.append(e)
    return res


def _moved(node, ins, errs, out):
    """Data movement linear in its one input: the same op on the error."""
    return _run(node.op, [errs[0]], node.attrs)


def _gathered(node, ins, errs, out):
    """A gather (take, take_along): the selected elements' errors."""
    return _run(node.op, [errs[0], ins[1]], node.attrs)


def _scattered(node, ins, errs, out):
    """A scatter-add of the gradient into indexed slots: at most idx.size terms land in one slot."""
    k = max(1, int(np.size(ins[1])))
    prop = _run(node.op, [_f64(errs[0]), ins[1]], node.attrs)
    return prop + _rounding(out.dtype, steps(k), _run(node.op, [_mag(ins[0]), ins[1]], node.attrs))


def _zero(node, ins, errs, out):
    return np.zeros(np.shape(out))


def _rounded_once(node, ins, errs, out):
    return _rounding(out.dtype, 1, out)


def _cast(node, ins, errs, out):
    src = np.asarray(ins[0]).dtype
    narrower = src.kind != "f" or np.finfo(src).eps < np.finfo(out.dtype).eps
    return _f64(errs[0]) + _rounding(out.dtype, 1 if narrower else 0, out)


def _unary(deriv, s_of):
    """Elementwise f: |f'(x)| * E(x) + its rounding; deriv(x, y) = |f'(x)| given x and y = f(x)."""
    def rule(node, ins, errs, out):
        x, y = _f64(ins[0]), _f64(out)
        return _times(deriv(x, y), errs[0]) + _rounding(out.dtype, s_of(node.op), y)
    return rule


def _ulps(op):
    return 2 * ULPS[op]


UNARY = {
    "neg": (lambda x, y: 1.0, lambda op: 0),
    "abs": (lambda x, y: 1.0, lambda op: 0),
    "stop_gradient": (lambda x, y: 1.0, lambda op: 0),
    "relu": (lambda x, y: (x > 0).astype(np.float64), lambda op: 0),
    "sign": (lambda x, y: 0.0, lambda op: 0),
    "sqrt": (lambda x, y: 0.5 / np.abs(y), lambda op: 1),
    "exp": (lambda x, y: np.abs(y), _ulps),
    "log": (lambda x, y: 1 / np.abs(x), _ulps),
    "tanh": (lambda x, y: 1 - y * y, _ulps),
    "sigmoid": (lambda x, y: y * (1 - y), _ulps),
}


def _binary(node, ins, errs, out):
    a, b, y = _f64(ins[0]), _f64(ins[1]), _f64(out)
    ea, eb = errs
    op = node.op
    if op in ("add", "sub"):
        prop, s = _f64(ea) + _f64(eb), 1
    elif op == "mul":
        prop, s = _times(np.abs(b), ea) + _times(np.abs(a), eb), 1
    elif op == "div":
        prop, s = _times(1 / np.abs(b), ea) + _times(np.abs(y / b), eb), 2
    elif op == "pow":
        prop = _times(np.abs(b * y / a), ea) + _times(np.abs(y * np.log(np.abs(a))), eb)
        s = _ulps(op)
    else:  # maximum, minimum: the error of the operand chosen (operands do not tie within their errors)
        prop, s = np.maximum(_f64(ea), _f64(eb)), 0
    return np.broadcast_to(prop, y.shape) + _rounding(out.dtype, s, y)


def _select(node, ins, errs, out):
    return np.broadcast_to(np.where(ins[0], errs[1], errs[2]), np.shape(out)).astype(np.float64)


def _reduction(k_of, linear_in=None):
    """An op that sums K terms per result: linear (sum, col2im) or bilinear (matmul, conv...) in its float inputs;
    `linear_in` lists the inputs it is linear in (the others, e.g. max_pool_grad's x, only select)."""
    def rule(node, ins, errs, out):
        pos = linear_in if linear_in is not None else range(len(ins))
        keep = [_f64(a) if i not in pos else _mag(a) for i, a in enumerate(ins)]
        prop = 0.0
        for i in pos:
            prop = prop + _run(node.op, keep[:i] + [_f64(errs[i])] + keep[i + 1:], node.attrs)
        return prop + _rounding(out.dtype, steps(k_of(node, ins)), _run(node.op, keep, node.attrs))
    return rule


def _sum_terms(node, ins):
    shape = np.shape(ins[0])
    return int(np.prod([shape[a] for a in norm_axes(node.attrs["axes"], len(shape))], dtype=np.int64))


def _max(node, ins, errs, out):
    return _run("max", [errs[0]], node.attrs)


def _pool_selected(node, ins, errs, out):
    """max_pool (error of each window's maximum) and max_pool_select (the selected source element's error)."""
    src = errs[0] if node.op == "max_pool" else errs[1]
    return _run("max_pool_select", [_f64(ins[0]), _f64(src)], node.attrs)


def _kernel_terms(node, ins):
    return int(np.prod(node.attrs["kernel"]))


def _conv_terms(node, ins):
    op, at = node.op, node.attrs
    if op == "conv":
        return int(np.prod(np.shape(ins[1])[1:]))
    if op == "conv_grad_input":
        w = np.shape(ins[1])
        return w[0] // at["groups"] * int(np.prod(w[2:]))
    g = np.shape(ins[1])
    return g[0] * int(np.prod(g[2:]))


def _scan_bounds(node, ins: list, errs: list) -> list:
    """The body's analysis step by step, carrying the carries' bounds."""
    at = node.attrs
    body, nc, nx = at["body"].graph, at["n_carry"], at["n_xs"]
    carries, xs, consts = ins[:nc], ins[nc:nc + nx], ins[nc + nx:]
    e_car, e_xs, e_con = errs[:nc], errs[nc:nc + nx], errs[nc + nx:]
    ys = [[None] * at["length"] for _ in body.outputs[nc:]]
    for t in (range(at["length"] - 1, -1, -1) if at.get("reverse") else range(at["length"])):
        outs, bounds = analyse(body, carries + [x[t] for x in xs] + consts,
                               e_car + [None if e is None else e[t] for e in e_xs] + e_con)
        carries, e_car = outs[:nc], bounds[:nc]
        for y, b in zip(ys, bounds[nc:]):
            y[t] = b
    stacked = [np.stack(y) if y and y[0] is not None else None for y in ys]
    return e_car + stacked


RULES = {op: _unary(*r) for op, r in UNARY.items()}
RULES.update({op: _binary for op in ("add", "sub", "mul", "div", "pow", "maximum", "minimum")})
RULES.update({op: _moved for op in ("reshape", "transpose", "broadcast_to", "slice", "slice_grad", "im2col")})
RULES.update({op: _zero for op in ("one_hot",)})
RULES.update({"take": _gathered, "take_along": _gathered, "take_grad": _scattered, "take_along_grad": _scattered})
RULES.update({"full": _rounded_once, "constant": _rounded_once, "cast": _cast, "select": _select, "max": _max,
              "max_pool": _pool_selected, "max_pool_select": _pool_selected,
              "sum": _reduction(_sum_terms), "col2im": _reduction(_kernel_terms),
              "max_pool_grad": _reduction(_kernel_terms, linear_in=(1,)),
              "matmul": _reduction(lambda n, ins: np.shape(ins[0])[-1]),
              "conv": _reduction(_conv_terms), "conv_grad_input": _reduction(_conv_terms),
              "conv_grad_weight": _reduction(_conv_terms)})


def _node_bounds(node, ins: list, errs: list, outs: list) -> list:
    if not any(o.type.is_float for o in node.outputs):
        return [None] * len(outs)
    if node.op == "scan":
        return _scan_bounds(node, ins, errs)
    rule = RULES.get(node.op)
    if rule is None:
        raise NotImplementedError(f"no rounding-error rule for op {node.op}")
    return [rule(node, ins, _input_errors(node, ins, errs), outs[0])]
