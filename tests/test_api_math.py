"""PyTorch's math and reduction functions, against PyTorch: rounding, remainders, NaN tests, trigonometric and
hyperbolic functions and their inverses, logarithms, two- and three-operand functions, products, logical
reductions, cumulative operations, order statistics and quantiles, comparisons, finfo / iinfo and the default dtype.

Each case runs `fn(L, *tensors)` with L = graphnn and L = torch on the same float64 inputs (parity_util.check):
eagerly and under graphnn.compile, values and gradients within twice their rounding-error bound (integers and bools
exactly). Inputs stay away from where a function jumps or its derivative is infinite (rounding at integers and
halves, fmod where x / y is an integer, order statistics at ties) unless the case is about that.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphnn
from parity_util import check, close


def _rng(seed):
    return np.random.default_rng(seed)


def normal(*shape, seed=0):
    return _rng(seed).standard_normal(shape)


def unit(*shape, seed=0):  # (-0.9, 0.9): asin, acos, atanh
    return _rng(seed).uniform(-0.9, 0.9, shape)


def pos(*shape, seed=0):
    return _rng(seed).uniform(0.5, 2.0, shape)


def above1(*shape, seed=0):
    return _rng(seed).uniform(1.2, 4.0, shape)


def quarters(*shape, seed=0):  # k/2 + 1/4: never an integer nor a half (rounding, fmod by halves)
    return _rng(seed).integers(-8, 8, shape) * 0.5 + 0.25


def halves_nz(*shape, seed=0):  # nonzero multiples of 1/2: x / y is never an integer for x in quarters
    return _rng(seed).choice([-1.0, 1.0], shape) * _rng(seed + 1).integers(1, 5, shape) * 0.5


def distinct(*shape, seed=0):  # pairwise at least 0.1 apart: sort orders and maxima are unique
    n = int(np.prod(shape))
    return ((_rng(seed).permutation(n) - n / 2) * 0.25 + _rng(seed + 1).uniform(-0.05, 0.05, n)).reshape(shape)


def special(dtype=np.float64):
    return np.array([0.0, -0.0, 1.0, -1.0, 2.5, -2.5, math.inf, -math.inf, math.nan, 1e300, -1e-300], dtype)


def ints(*shape, seed=0):
    return _rng(seed).integers(-6, 7, shape)


def ints_nz(*shape, seed=0):
    return _rng(seed).choice([-4, -3, -2, -1, 1, 2, 3, 5], shape)


# name -> (fn(L, *inputs), inputs, differentiable)
UNARY = {
    "floor": (lambda L, x: L.floor(x), [quarters(3, 4)]),
    "ceil": (lambda L, x: x.ceil(), [quarters(3, 4)]),
    "round": (lambda L, x: L.round(x), [quarters(3, 4)]),
    "round_decimals": (lambda L, x: L.round(x * 1.3, decimals=2), [quarters(3, 4)]),
    "round_neg_decimals": (lambda L, x: L.round(x * 130, decimals=-1), [quarters(3, 4)]),
    "trunc": (lambda L, x: L.trunc(x), [quarters(3, 4)]),
    "fix": (lambda L, x: x.fix(), [quarters(3, 4)]),
    "frac": (lambda L, x: L.frac(x), [quarters(3, 4)]),
    "sgn": (lambda L, x: L.sgn(x) * x, [normal(3, 4)]),  # (PyTorch's gradient of sgn alone is a ZeroTensor)
    "reciprocal": (lambda L, x: L.reciprocal(x), [halves_nz(3, 4)]),
    "square": (lambda L, x: L.square(x), [normal(3, 4)]),
    "negative": (lambda L, x: L.negative(x), [normal(3, 4)]),
    "positive": (lambda L, x: L.positive(x) * 1, [normal(3, 4)]),
    "tan": (lambda L, x: L.tan(x), [unit(3, 4)]),
    "sinh": (lambda L, x: L.sinh(x * 3), [normal(3, 4)]),
    "cosh": (lambda L, x: x.mul(3).cosh(), [normal(3, 4)]),
    "asin": (lambda L, x: L.asin(x), [unit(3, 4)]),
    "acos": (lambda L, x: L.arccos(x), [unit(3, 4)]),
    "atan": (lambda L, x: L.arctan(x * 4), [normal(3, 4)]),
    "asinh": (lambda L, x: L.asinh(x * 4), [normal(3, 4)]),
    "acosh": (lambda L, x: L.arccosh(x), [above1(3, 4)]),
    "atanh": (lambda L, x: L.atanh(x), [unit(3, 4)]),
    "log2": (lambda L, x: L.log2(x), [pos(3, 4)]),
    "log10": (lambda L, x: x.log10(), [pos(3, 4)]),
    "exp2": (lambda L, x: L.exp2(x * 3), [normal(3, 4)]),
    "sinc": (lambda L, x: L.sinc(x), [normal(3, 4)]),
    "deg2rad": (lambda L, x: L.deg2rad(x), [normal(3, 4)]),
    "rad2deg": (lambda L, x: L.rad2deg(x), [normal(3, 4)]),
    "logit": (lambda L, x: L.logit(x), [_rng(1).uniform(0.05, 0.95, (3, 4))]),
    "logit_eps": (lambda L, x: L.logit(x, eps=0.2), [_rng(1).uniform(0.05, 0.95, (3, 4))]),
    "nan_to_num": (lambda L, x: L.nan_to_num(x * 1, nan=0.5, posinf=2.0), [special()]),
    "nan_to_num_default": (lambda L, x: x.nan_to_num(), [special()]),
    "clamp_min": (lambda L, x: L.clamp_min(x, -0.31), [normal(3, 4)]),
    "clamp_max": (lambda L, x: x.clamp_max(0.29), [normal(3, 4)]),
    "float_power": (lambda L, x: L.float_power(x, 3), [normal(3, 4)]),
}

BINARY = {
    "fmod": (lambda L, x, y: L.fmod(x, y), [quarters(3, 4), halves_nz(4, seed=1)]),
    "fmod_number": (lambda L, x, y: x.fmod(1.5) + y, [quarters(3, 4), normal(4, seed=1)]),
    "remainder": (lambda L, x, y: L.remainder(x, y), [quarters(3, 4), halves_nz(4, seed=1)]),
    "remainder_number": (lambda L, x, y: L.remainder(x, -1.5) * y, [quarters(3, 4), normal(4, seed=1)]),
    "copysign": (lambda L, x, y: L.copysign(x, y), [normal(3, 4), normal(3, 1, seed=1)]),
    "atan2": (lambda L, x, y: L.atan2(x, y), [normal(3, 4), normal(4, seed=1)]),
    "arctan2": (lambda L, x, y: x.arctan2(y), [normal(3, 4), normal(3, 4, seed=1)]),
    "hypot": (lambda L, x, y: L.hypot(x, y), [normal(3, 4), normal(4, seed=1)]),
    "logaddexp": (lambda L, x, y: L.logaddexp(x * 30, y), [normal(3, 4), normal(4, seed=1)]),
    "logaddexp2": (lambda L, x, y: L.logaddexp2(x, y * 30), [normal(3, 4), normal(4, seed=1)]),
    "xlogy": (lambda L, x, y: L.xlogy(x, y), [normal(3, 4), pos(4, seed=1)]),
    "divide": (lambda L, x, y: L.divide(x, y), [normal(3, 4), halves_nz(4, seed=1)]),
    "divide_trunc": (lambda L, x, y: L.divide(x, y, rounding_mode="trunc") * y, [quarters(3, 4), halves_nz(4, seed=1)]),
    "true_divide": (lambda L, x, y: L.true_divide(x, y), [normal(3, 4), halves_nz(4, seed=1)]),
    "multiply": (lambda L, x, y: L.multiply(x, y), [normal(3, 4), normal(4, seed=1)]),
    "subtract": (lambda L, x, y: L.subtract(x, y, alpha=2), [normal(3, 4), normal(4, seed=1)]),
    "float_power_tensor": (lambda L, x, y: L.float_power(x, y), [pos(3, 4), normal(4, seed=1)]),
}

TERNARY = {
    "lerp": (lambda L, a, b, w: L.lerp(a, b, w), [normal(3, 4), normal(3, 4, seed=1), _rng(2).uniform(-0.5, 1.5, 4)]),
    "lerp_number": (lambda L, a, b: a.lerp(b, 0.7), [normal(3, 4), normal(4, seed=1)]),
    "addcmul": (lambda L, a, b, c: L.addcmul(a, b, c, value=0.5), [normal(3, 4), normal(4, seed=1), normal(3, 1)]),
    "addcdiv": (lambda L, a, b, c: a.addcdiv(b, c, value=-2), [normal(3, 4), normal(4, seed=1), halves_nz(3, 1)]),
}

REDUCTIONS = {
    "prod": (lambda L, x: L.prod(x), [pos(3, 4)]),
    "prod_dim": (lambda L, x: x.prod(1, keepdim=True), [normal(3, 4)]),
    "prod_zeros": (
        lambda L, x: L.prod(x, 0),
        [np.array([[0.0, 0.0, 1.5, 2.0], [0.5, 0.0, -1.0, 0.0], [3.0, 2.0, 0.0, 0.0]])],
    ),
    "logsumexp": (lambda L, x: L.logsumexp(x * 50, 1), [normal(3, 4)]),
    "logsumexp_keep": (lambda L, x: x.logsumexp((0, 1), keepdim=True), [normal(3, 4)]),
    "var_mean": (lambda L, x: L.var_mean(x, 1), [normal(3, 4)]),
    "std_mean": (lambda L, x: L.std_mean(x, dim=0, correction=0, keepdim=True), [normal(3, 4)]),
    "nansum": (lambda L, x: L.nansum(x, 0), [np.where(np.arange(12).reshape(3, 4) % 5 == 0, np.nan, normal(3, 4))]),
    "nanmean": (lambda L, x: x.nanmean(1), [np.where(np.arange(12).reshape(3, 4) % 5 == 0, np.nan, normal(3, 4))]),
    "amin": (lambda L, x: L.amin(x, 1), [distinct(3, 4)]),
    "aminmax": (lambda L, x: L.aminmax(x, dim=0), [distinct(3, 4)]),
    "cumprod": (lambda L, x: L.cumprod(x, 1), [normal(3, 5)]),
    "cumprod_zero": (lambda L, x: x.cumprod(0), [np.array([[1.5, 2.0], [0.0, -1.0], [2.0, 0.0], [0.5, 3.0]])]),
    "logcumsumexp": (lambda L, x: L.logcumsumexp(x * 10, 0), [normal(5, 3)]),
    "cummax": (lambda L, x: L.cummax(x, 1), [distinct(3, 6)]),
    "cummin": (lambda L, x: x.cummin(0), [distinct(6, 3)]),
    "median": (lambda L, x: L.median(x), [distinct(3, 4)]),
    "median_dim": (lambda L, x: x.median(1), [distinct(3, 5)]),
    "nanmedian": (lambda L, x: L.nanmedian(x, 0), [np.where(np.eye(4, 3) > 0, np.nan, distinct(4, 3))]),
    "kthvalue": (lambda L, x: L.kthvalue(x, 2, 0, keepdim=True), [distinct(4, 3)]),
    "mode": (lambda L, x: L.mode(x, 1), [_rng(0).integers(0, 3, (4, 7)) * 0.5]),
    "quantile": (lambda L, x: L.quantile(x, 0.3, dim=1), [distinct(3, 5)]),
    "quantile_q": (lambda L, x, q: L.quantile(x, q, dim=0, keepdim=True), [distinct(5, 3), np.array([0.1, 0.5, 1.0])]),
    "quantile_all": (lambda L, x: x.quantile(0.75), [distinct(3, 4)]),
    "nanquantile": (
        lambda L, x: L.nanquantile(x, 0.4, dim=1),
        [np.where(np.eye(3, 5) > 0, np.nan, distinct(3, 5))],
    ),
}
for _interp in ("lower", "higher", "midpoint", "nearest"):
    REDUCTIONS["quantile_" + _interp] = (
        lambda L, x, i=_interp: L.quantile(x, 0.35, dim=1, interpolation=i),
        [distinct(3, 6)],
    )

CASES = {**UNARY, **BINARY, **TERNARY, **REDUCTIONS}


def _run(torch, fn, inputs, compiled):
    check(torch, lambda *a: fn(graphnn, *a), lambda *a: fn(torch, *a), inputs, compiled=compiled)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager(torch, name):
    fn, inputs = CASES[name]
    _run(torch, fn, inputs, compiled=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled(torch, name):
    fn, inputs = CASES[name]
    _run(torch, fn, inputs, compiled=True)


# Results without gradient (bools, integers, indices): equal to PyTorch's, eagerly and compiled.
EXACT = {
    "isnan": (lambda L, x: L.isnan(x), [special()]),
    "isinf": (lambda L, x: x.isinf(), [special()]),
    "isposinf": (lambda L, x: L.isposinf(x), [special()]),
    "isneginf": (lambda L, x: L.isneginf(x), [special()]),
    "isfinite": (lambda L, x: L.isfinite(x), [special()]),
    "isreal": (lambda L, x: L.isreal(x), [special()]),
    "signbit": (lambda L, x: L.signbit(x), [special()]),
    "special_functions": (
        lambda L, x: (L.floor(x), L.ceil(x), L.round(x), L.trunc(x), L.atan(x), L.exp2(x), L.sinh(x), L.asinh(x)),
        [special()],
    ),
    "atan2_special": (
        lambda L, x, y: L.atan2(x, y),
        [np.repeat(special()[:9], 9), np.tile(special()[:9], 9)],
    ),
    "fmod_int": (lambda L, x, y: L.fmod(x, y), [ints(3, 4), ints_nz(4, seed=1)]),
    "remainder_int": (lambda L, x, y: (L.remainder(x, y), x % 3, 7 % y), [ints(3, 4), ints_nz(4, seed=1)]),
    "floor_divide_int": (lambda L, x, y: (L.floor_divide(x, y), x // 2), [ints(3, 4), ints_nz(4, seed=1)]),
    "floor_divide_float": (lambda L, x, y: (L.floor_divide(x, y), x // -0.75), [quarters(3, 4), halves_nz(4, seed=1)]),
    "divide_floor": (lambda L, x, y: L.divide(x, y, rounding_mode="floor"), [ints(3, 4), ints_nz(4, seed=1)]),
    "divide_trunc_int": (lambda L, x, y: L.div(x, y, rounding_mode="trunc"), [ints(3, 4), ints_nz(4, seed=1)]),
    "heaviside": (lambda L, x, v: L.heaviside(x, v), [np.array([-1.5, 0.0, 2.0, 0.0, math.nan]), np.array([0.5])]),
    "all_any": (
        lambda L, x: (L.all(x), x.all(1), L.any(x, 0, keepdim=True), x.any(), L.count_nonzero(x, 1)),
        [np.array([[1.0, 0.0, 2.0], [1.0, 3.0, math.nan]])],
    ),
    "all_bool": (lambda L, x: (L.all(x > 0), L.any(x > 5, 1)), [normal(3, 4)]),
    "prod_int": (lambda L, x: (L.prod(x, 1), x.prod(), L.prod(x > 0, 0)), [ints(3, 4)]),
    "cumprod_int": (lambda L, x: L.cumprod(x, 0), [ints(4, 3)]),
    "cummax_ties_nan": (
        lambda L, x: (L.cummax(x, 0), L.cummin(x, 0)),
        [np.array([1.0, 3.0, 3.0, math.nan, 2.0, math.nan, 0.0, 0.0])],
    ),
    "median_nan": (lambda L, x: (L.median(x, 1), L.median(x)), [np.array([[1.0, math.nan, 3.0, math.nan, 2.0]])]),
    "mode_ties": (
        lambda L, x: L.mode(x, 1),
        [np.array([[3.0, 1.0, 3.0, 1.0, 2.0, 2.0], [5.0, 1.0, 5.0, 2.0, 1.0, 0.0]])],
    ),
    "quantile_nan": (lambda L, x: L.quantile(x, 0.5, dim=1), [np.array([[1.0, math.nan, 3.0], [1.0, 2.0, 4.0]])]),
    "isclose": (
        lambda L, x, y: (L.isclose(x, y), x.isclose(y, rtol=0.1, equal_nan=True)),
        [
            np.array([1.0, math.inf, math.nan, 1.0, -math.inf]),
            np.array([1.05, math.inf, math.nan, 1.0 + 1e-9, math.inf]),
        ],
    ),
}


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_results(torch, name, compiled):
    fn, inputs = EXACT[name]
    check(torch, lambda *a: fn(graphnn, *a), lambda *a: fn(torch, *a), inputs, compiled=compiled, grad=False)


def test_comparisons_to_python_values(torch):
    a, b = np.array([1.0, 2.0, math.nan]), np.array([1.0, 2.0 + 1e-7, math.nan])
    for args, kw in (((a, b), {}), ((a, b), {"equal_nan": True}), ((a, a), {"rtol": 0, "atol": 0})):
        want = torch.allclose(*(torch.tensor(x) for x in args), **kw)
        assert graphnn.allclose(*(graphnn.tensor(x) for x in args), **kw) is want
    assert graphnn.equal(graphnn.tensor([1, 2]), graphnn.tensor([1, 2])) is True
    assert graphnn.equal(graphnn.tensor([1, 2]), graphnn.tensor([1, 3])) is False
    assert graphnn.tensor([1.0, 2.0]).equal(graphnn.tensor([[1.0, 2.0]])) is False


INPLACE = {
    "floor_": (lambda x: x.floor_(), quarters(3, 4)),
    "round_": (lambda x: x.round_(decimals=1), normal(3, 4)),
    "fmod_": (lambda x: x.fmod_(0.75), quarters(3, 4)),
    "remainder_": (lambda x: x.remainder_(-1.5), quarters(3, 4)),
    "atan2_": (lambda x: x.atan2_(x * 0 + 0.5), normal(3, 4)),
    "asin_": (lambda x: x.asin_(), unit(3, 4)),
    "sinh_": (lambda x: x.sinh_(), normal(3, 4)),
    "lerp_": (lambda x: x.lerp_(x * 2, 0.25), normal(3, 4)),
    "addcmul_": (lambda x: x.addcmul_(x, x, value=0.5), normal(3, 4)),
    "nan_to_num_": (lambda x: x.nan_to_num_(1.0), special()),
    "cumprod_": (lambda x: x.cumprod_(0), normal(4, 3)),
    "floordiv_operator": (lambda x: x.__ifloordiv__(0.5), quarters(3, 4)),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace(torch, name):
    """x.op_() changes x to op(x), as PyTorch's (eagerly and inside graphnn.compile)."""
    fn, a = INPLACE[name]
    want = torch.tensor(a.copy())
    fn(want)
    for compiled in (False, True):
        x = graphnn.tensor(a.copy())
        if compiled:

            @graphnn.compile
            def step(t):
                fn(t)
                return t * 1

            step(x)
        else:
            fn(x)
        close(x, want, f"{name} compiled={compiled}", np.finfo(np.float64).eps * 64 * (1 + np.abs(want.numpy())))


def test_finfo_iinfo(torch):
    for g, t in ((graphnn.float32, torch.float32), (graphnn.float64, torch.float64)):
        gi, ti = graphnn.finfo(g), torch.finfo(t)
        for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(gi, attr) == getattr(ti, attr), attr
    gi, ti = graphnn.iinfo(graphnn.int64), torch.iinfo(torch.int64)
    assert (gi.bits, gi.max, gi.min) == (ti.bits, ti.max, ti.min)
    assert graphnn.finfo().eps == torch.finfo().eps
    with pytest.raises(TypeError):
        graphnn.finfo(graphnn.int64)


def test_default_dtype():
    assert graphnn.get_default_dtype() == graphnn.float32
    graphnn.set_default_dtype(graphnn.float64)
    try:
        assert graphnn.get_default_dtype() == graphnn.float64
        made = (graphnn.randn(2), graphnn.zeros(2), graphnn.tensor([1.5]), graphnn.arange(0.0, 1.0, 0.5))
        assert all(t.dtype == graphnn.float64 for t in made)
        assert (graphnn.arange(3) / 2).dtype == graphnn.float64
        assert (graphnn.arange(3) * 0.5).dtype == graphnn.float64
        assert graphnn.finfo().eps == np.finfo(np.float64).eps
    finally:
        graphnn.set_default_dtype(graphnn.float32)
    assert graphnn.randn(2).dtype == graphnn.float32
    with pytest.raises(TypeError):
        graphnn.set_default_dtype(graphnn.int64)
