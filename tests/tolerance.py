"""Tolerances of the suite's float comparisons, derived from the arithmetic instead of tuned per machine.

Two evaluations of one computation (compiled vs interpreted, before vs after a pass, graphnn vs an independent
NumPy or PyTorch formulation) each differ from the exact result by at most their rounding-error bound, so they
agree within the sum of the two. For a graph, graphnn.ir.roundoff.error_bounds gives that bound elementwise:
roughly

    E = sum over the roundings that reach the element of  u * s * M,

with u = eps / 2 of the dtype, s = min(K, 10 sqrt(K)) for a reduction of K terms (1 per arithmetic op, a few ulp
for exp, log, tanh, sigmoid, pow) and M the sum of |terms| of that reduction (not |result|, which may cancel),
propagated through the ops that follow with the absolute values of their derivatives. Comparing the evaluations of
two graphs a and b (a compiled lowered graph against the interpreted original, say) allows E_a + E_b; comparing
with an independent implementation of the same formulas (whose summation order is unknown, but whose bound is
the same: the bound holds for any order) allows 2 E.

Eager graphnn code records its IR (autograd): `recorded_bounds` gives the same bounds for eager outputs and for the
gradients of a recorded loss. Without a graph, `accumulation_tolerance` is the rule for one reduction: K terms of
total magnitude M in dtype; `finite_difference_tolerance` adds up the error terms of a central difference.
The gap to a real bug stays wide: a wrong index or a missing term changes a result by about one term, |M| / K,
while the tolerance is ~ 2 u s M, i.e. below that as long as 2 u s K < 1 (K up to ~ 9000 in float32).
"""

from __future__ import annotations

import numpy as np

import graphnn
from graphnn.autograd import _collect
from graphnn.ir import Graph, grad_graph
from graphnn.ir.roundoff import analyse, error_bounds, mismatches, steps, unit_roundoff


def graph_tolerance(graph, arrays: list, other=None) -> list:
    """Per output of `graph`: the allowed |difference| between an evaluation of `graph` and one of `other` (same
    inputs and outputs, e.g. its lowered form; default: `graph` itself, evaluated another way)."""
    mine = error_bounds(graph, arrays)
    theirs = mine if other is None else error_bounds(other, arrays)
    return [None if a is None else a + b for a, b in zip(mine, theirs)]


class Bounds:
    """Rounding-error bounds of a graphnn computation, from the IR its eager run records."""

    def __init__(self, outputs: list, grads: dict):
        self.outputs = outputs  # per flattened output: bound array, or None (integer output)
        self.grads = grads  # id(tensor) -> bound of its gradient

    def tol(self, i: int):
        return None if self.outputs[i] is None else 2 * self.outputs[i]

    def grad_tol(self, t):
        return 2 * self.grads[id(t)]


def _leaf_error(data: np.ndarray, leaf_errors: list) -> np.ndarray:
    """The error bound of a recorded leaf: that of the array in leaf_errors whose memory it views, else 0."""
    for arr, err in leaf_errors:
        if data.size == arr.size and np.shares_memory(data, arr):
            return np.broadcast_to(err, arr.shape).reshape(data.shape)
    return np.zeros(data.shape)


def recorded_bounds(outputs: list, loss=None, leaf_errors: list = ()) -> Bounds:
    """Bounds of eager `outputs` and of the gradients of `loss` (a scalar tensor) with respect to every leaf that
    requires grad, from the graph recorded while computing them. leaf_errors: (array, error bound) pairs for
    leaves viewing that array (e.g. running statistics that already differ between the libraries); others exact."""
    values = [
        o._eager_value() if isinstance(o, graphnn.Tensor) and o.dtype_name.startswith("float") else None
        for o in outputs
    ]
    roots = [v for v in values if v is not None] + ([loss._value] if loss is not None else [])
    nodes, leaves = _collect(roots)
    g = Graph("recorded")
    g.inputs, g.nodes = list(leaves), list(nodes)
    feeds = [v.data for v in leaves]
    errors = [_leaf_error(np.asarray(v.data), leaf_errors) if v.type.is_float else None for v in leaves]

    def bounds_of(graph):
        with np.errstate(all="ignore"):
            return analyse(graph, feeds, errors)[1]

    g.outputs = [v for v in values if v is not None]
    bounds = iter(bounds_of(g))
    outs = [next(bounds) if v is not None else None for v in values]
    grads = {}
    if loss is not None:
        wrt = [
            v for v in leaves if v.type.is_float and v.meta.get("tensor") is not None and v.meta["tensor"].requires_grad
        ]
        g.outputs = [loss._value]
        for v, b in zip(wrt, bounds_of(grad_graph(g, wrt))[1:]):
            grads[id(v.meta["tensor"])] = b
    return Bounds(outs, grads)


def sgd_trajectory(model, loss_fn, batches: list, lr: float, momentum: float = 0.0, zero_grad: bool = True) -> tuple:
    """Eager SGD steps on `model` with a running error analysis: (losses, their bounds, the final parameters'
    bounds). Each step's loss and gradients are bounded on its recorded graph with the parameters' errors so far as
    leaf errors (first order); the update (G = G + g without zero_grad, b = momentum * b + G, p -= lr * b) carries
    the gradient errors into the parameters, plus its own two roundings. Assumes stable training: an update does not
    amplify earlier errors (|1 - lr * curvature| <= 1)."""
    from graphnn import optim

    params = list(model.parameters())
    opt = optim.SGD(params, lr=lr, momentum=momentum)
    u = unit_roundoff(params[0].dtype_name)
    err_p, err_b, err_g = ([np.zeros(p.shape) for p in params] for _ in range(3))
    losses, loss_bounds = [], []
    for x, y in batches:
        if zero_grad:
            opt.zero_grad()
        loss = loss_fn(model(x), y)
        bounds = recorded_bounds([loss], loss, [(p._data, e) for p, e in zip(params, err_p)])
        loss.backward()
        opt.step()
        for k, p in enumerate(params):
            err_g[k] = bounds.grads[id(p)] + (0 if zero_grad else err_g[k])
            err_b[k] = momentum * err_b[k] + err_g[k]
            step = opt.state[p]["momentum_buffer"].numpy() if momentum else p.grad.numpy()
            err_p[k] = err_p[k] + lr * err_b[k] + 2 * u * (np.abs(p.detach().numpy()) + lr * np.abs(step))
        losses.append(loss.item())
        loss_bounds.append(float(bounds.outputs[0]))
    return losses, loss_bounds, err_p


def accumulation_tolerance(dtype, k: int, magnitude) -> np.ndarray:
    """Allowed |difference| of two evaluations of sums of `k` terms whose |terms| add up to `magnitude`
    (elementwise) in `dtype`: 2 * steps(k) * u * magnitude."""
    return 2 * steps(max(int(k), 1)) * unit_roundoff(dtype) * np.abs(np.asarray(magnitude, np.float64))


def finite_difference_tolerance(loss_bound, h: float, d_h, d_2h, x=0.0, grad_bound=0.0) -> np.ndarray:
    """Allowed |analytic gradient - d_h| for the central difference d_h = (f(x+h) - f(x-h)) / 2h (d_2h: the same
    with step 2h), in float64: the rounding errors of the two loss evaluations over 2h (loss_bound / h), the
    truncation error h^2 |f3| / 6 (f3 the third derivative), estimated by Richardson's |d_2h - d_h| = 3 h^2 |f3| / 6
    (so counted three times over), the rounding of x +- h (relative u |x| / h) and the gradient's own bound. An
    infinite x (a -inf mask entry) does not move under +- h: its difference is exactly 0 and adds no rounding."""
    u = unit_roundoff("float64")
    d_h, d_2h = np.asarray(d_h, np.float64), np.asarray(d_2h, np.float64)
    x = np.abs(np.asarray(x, np.float64))
    moved = np.where(np.isfinite(x), u * np.where(np.isfinite(x), x, 0.0) / h * np.abs(d_h), 0.0)
    return loss_bound / h + np.abs(d_2h - d_h) + moved + grad_bound


def assert_close(got, want, tol, what: str = "") -> None:
    """Floats: |got - want| <= tol elementwise (NaN and infinities exactly where expected); others: equal."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype.kind != "f" and got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    tol = np.broadcast_to(np.asarray(0.0 if tol is None else tol, np.float64), want.shape)
    bad = mismatches(got, want, tol)
    if bad.any():
        idx = [tuple(int(k) for k in i) for i in np.argwhere(bad)[:3]]
        detail = ", ".join(f"{i}: {got[i]!r} vs {want[i]!r} (allowed {tol[i]:.3g})" for i in idx)
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} elements differ (got vs expected) {detail}")
