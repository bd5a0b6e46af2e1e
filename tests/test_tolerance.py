"""The tolerance rule itself (tolerance.py, graphnn.ir.roundoff): legitimate float32 reorderings of a long sum pass,
a missing term or a wrong index fails."""

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph
from graphnn.ir import Graph, TensorType, interpret
from tolerance import accumulation_tolerance, assert_close, graph_tolerance

K = 2000


def _dot():
    """x (1, K) @ y (K, 1) in float32, its inputs, reference result and tolerance."""
    g = Graph("dot")
    x = g.add_input(TensorType((1, K), "float32"), "x")
    y = g.add_input(TensorType((K, 1), "float32"), "y")
    g.outputs = [g.emit("matmul", x, y)]
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((1, K), (K, 1)))
    return g, [a, b], interpret(g, [a, b])[0], graph_tolerance(g, [a, b])[0]


def _sequential(terms: np.ndarray) -> np.float32:
    return np.cumsum(terms, dtype=np.float32)[-1]


def _lanes(terms: np.ndarray, width: int) -> np.float32:
    """`width` running sums (a vector register) then the lanes added pairwise, as vectorized code does."""
    lanes = np.cumsum(terms.reshape(-1, width), axis=0, dtype=np.float32)[-1]
    while lanes.size > 1:
        lanes = lanes[::2] + lanes[1::2]
    return lanes[0]


def _fma(a: np.ndarray, b: np.ndarray) -> np.float32:
    """Sequential fused multiply-add: one rounding per term (computed exactly in float64, rounded to float32)."""
    acc = np.float32(0)
    for p, q in zip(a.astype(np.float64), b.astype(np.float64)):
        acc = np.float32(float(acc) + p * q)
    return acc


REORDERED = {
    "sequential": lambda a, b: _sequential(a * b),
    "reversed": lambda a, b: _sequential((a * b)[::-1]),
    "pairwise": lambda a, b: np.sum(a * b, dtype=np.float32),
    "by_magnitude": lambda a, b: _sequential((a * b)[np.argsort(np.abs(a * b))[::-1]]),
    "lanes_8": lambda a, b: _lanes(a * b, 8),
    "lanes_16": lambda a, b: _lanes(a * b, 16),
    "fma": _fma,
}


@pytest.mark.parametrize("order", sorted(REORDERED))
def test_reordered_float32_sums_pass(order):
    _g, (a, b), want, tol = _dot()
    got = REORDERED[order](a.ravel(), b.ravel())
    assert got.dtype == np.float32
    assert_close(np.reshape(got, (1, 1)), want, tol, order)


def test_compiled_dot_passes():
    g, arrays, want, tol = _dot()
    assert_close(CompiledGraph(g)(arrays)[0], want, tol, "compiled")


def _median_index(changes: np.ndarray) -> int:
    return int(np.argsort(np.abs(changes))[changes.size // 2])


def test_missing_term_fails():
    _g, (a, b), want, tol = _dot()
    terms = a.ravel() * b.ravel()
    i = _median_index(terms)  # a term of typical size, not the largest
    with pytest.raises(AssertionError, match="differ"):
        assert_close(np.reshape(np.sum(np.delete(terms, i), dtype=np.float32), (1, 1)), want, tol, "missing term")


def test_wrong_index_fails():
    _g, (a, b), want, tol = _dot()
    x, y = a.ravel(), b.ravel()
    i = _median_index(x * (np.roll(y, -1) - y))  # reading y[i + 1] for y[i] at one typical position
    wrong = y.copy()
    wrong[i] = y[(i + 1) % K]
    with pytest.raises(AssertionError, match="differ"):
        assert_close(np.reshape(np.sum(x * wrong, dtype=np.float32), (1, 1)), want, tol, "wrong index")


def test_compiled_float32_erf_within_the_ulp_budget():
    """codegen's vectorizable float32 erf (two polynomial fits) against the correctly rounded erf, densely over
    [-6, 6] and at tiny magnitudes: within the ulp budget the rounding rules charge approximated functions; signed
    zeros, infinities and NaN as math.erf gives them."""
    import math

    from graphnn.ir.roundoff import ErrorScalars

    tiny = np.logspace(-40, 0.7, 20001)
    x = np.concatenate([np.linspace(-6, 6, 200001), tiny, -tiny, [0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(
        np.float32
    )
    g = Graph("erf")
    v = g.add_input(TensorType(x.shape, "float32"), "x")
    g.outputs = [g.emit("erf", v)]
    got = CompiledGraph(g)([x])[0].astype(np.float64)
    want = np.array([math.erf(t) for t in x.astype(np.float64)])
    ulps = np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert np.nanmax(ulps) <= ErrorScalars.ULP_FUNCTIONS
    np.testing.assert_array_equal(got[-5:], [0.0, -0.0, 1.0, -1.0, np.nan])
    assert np.signbit(got[-4]) and not np.signbit(got[-5])


def test_rule_scales_with_length_and_terms_not_result():
    """sum |terms| (not |result|) sets the scale; a long sum charges min(K, 10 sqrt(K)) roundings."""
    _g, (a, b), want, tol = _dot()
    terms = np.abs(a.ravel() * b.ravel()).astype(np.float64).sum()
    u = np.finfo(np.float32).eps / 2
    assert float(np.abs(want).max()) < terms / 10  # cancellation: the result is much smaller than its terms
    np.testing.assert_allclose(tol, 2 * 10 * np.sqrt(K) * u * terms, rtol=1e-3)  # both evaluations' bounds
    np.testing.assert_allclose(accumulation_tolerance("float32", K, terms), tol.ravel(), rtol=1e-3)
    assert accumulation_tolerance("float32", 4, 1.0) == pytest.approx(2 * 4 * u)  # short sums: worst case K


def test_transcendentals_get_a_few_ulp():
    g = Graph("exp")
    x = g.add_input(TensorType((5,), "float32"), "x")
    g.outputs = [g.emit("exp", x)]
    arrays = [np.array([-3.0, -0.5, 0.0, 1.25, 10.0], np.float32)]
    want = interpret(g, arrays)[0]
    tol = graph_tolerance(g, arrays)[0]
    ulp = np.spacing(np.abs(want))
    assert np.all(tol >= 2 * ulp) and np.all(tol <= 20 * ulp)
    assert_close(CompiledGraph(g)(arrays)[0], want, tol, "compiled exp")
    with pytest.raises(AssertionError):
        assert_close(want * np.float32(1 + 1e-5), want, tol, "exp off by 1e-5")
