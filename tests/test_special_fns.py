"""The special functions erfc, erfcx, erfinv, lgamma, digamma and trigamma (ir/ops/_erf.py, _gamma.py), compiled,
in float64 and float32: against 30-digit mpmath values over their domains, PyTorch's values at poles, infinities,
NaN and signed zeros, and PyTorch's gradients; the torch.special names of graphnn.special.

Accuracy budget: the series are truncated below 1e-17 (float64) or 3e-9 (float32) of the function, so what remains
is the rounding of their evaluation: a Horner or Clenshaw chain whose terms decrease geometrically (a few ulp), one
exp or log (up to ErrorScalars.ULP_FUNCTIONS = 4 ulp in float32) and the final combination (2 ulp): 8 ulp. Near the
zeros of lgamma and digamma on the negative axis the reflection formula subtracts two larger terms; there the bound
is 8 ulp of those terms, as for any evaluation by reflection (PyTorch's digamma is one)."""

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph
from graphnn.ir import Graph, TensorType

mpmath = pytest.importorskip("mpmath")
torch = pytest.importorskip("torch")

OPS = ("erfc", "erfcx", "erfinv", "lgamma", "digamma", "trigamma")
BUDGET = 8.0
MP = {
    "erfc": lambda v: mpmath.erfc(v),
    "erfcx": lambda v: mpmath.erfc(v) * mpmath.exp(v * v),
    "erfinv": lambda v: mpmath.erfinv(v),
    "lgamma": lambda v: mpmath.log(abs(mpmath.gamma(v))),
    "digamma": lambda v: mpmath.digamma(v),
    "trigamma": lambda v: mpmath.polygamma(1, v),
}


def _grid(op: str, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    if op == "erfinv":
        near_one = 1 - np.geomspace(np.finfo(dtype).eps / 2, 0.5, 300)
        x = np.concatenate([rng.uniform(-1, 1, 400), near_one, -near_one, np.geomspace(1e-30, 0.5, 100)])
    elif op in ("erfc", "erfcx"):
        top = 26.0 if dtype == "float64" else 9.0  # erfc underflows beyond (erfcx: its exp(x^2) overflows below -top)
        x = np.concatenate([rng.uniform(-top, top, 800), np.geomspace(1e-30, top, 200), [0.5, -0.5, 0.49, 1e4, 1e30]])
    else:
        x = np.concatenate(
            [rng.uniform(-25, 30, 500), np.geomspace(1e-30, 1e30, 200), rng.uniform(0.5, 2.5, 200), [1.0, 2.0]]
        )
        x = x[(x > 0) | (x != np.rint(x))]
    return x.astype(dtype)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """One kernel per dtype computing the six functions of a vector."""
    import os

    os.environ.setdefault("GRAPHNN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    cache = {}

    def run(dtype: str, x: np.ndarray) -> dict:
        n = x.size
        if (dtype, n) not in cache:
            g = Graph()
            v = g.add_input(TensorType((n,), dtype), "x")
            g.outputs = [g.emit(op, v) for op in OPS]
            cache[dtype, n] = CompiledGraph(g)
        return dict(zip(OPS, cache[dtype, n]([x])))

    return run


def _reference(op: str, x: np.ndarray) -> tuple:
    """(mpmath's values, the magnitude the error is measured against) in float64."""
    mpmath.mp.dps = 30
    want = np.array([float(MP[op](mpmath.mpf(float(v)))) for v in x])
    scale = np.abs(want)
    if op in ("lgamma", "digamma"):  # the reflection's terms for x < 0
        neg = x < 0
        if op == "lgamma":
            terms = [
                abs(float(mpmath.log(mpmath.pi / abs(mpmath.sinpi(v))))) + abs(float(MP[op](1 - mpmath.mpf(v))))
                for v in x[neg].astype(float)
            ]
        else:
            terms = [
                abs(float(mpmath.digamma(1 - mpmath.mpf(v)))) + abs(float(mpmath.pi / mpmath.tan(mpmath.pi * v)))
                for v in x[neg].astype(float)
            ]
        scale[neg] = np.maximum(scale[neg], terms)
    return want, scale


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op", OPS)
def test_within_budget_of_mpmath(op, dtype, compiled):
    x = _grid(op, dtype)
    size = 1200  # every op's grid padded to one size: one kernel per dtype
    x = np.concatenate([x, np.full(size - x.size, 0.75, dtype)])
    got = compiled(dtype, x)[op].astype(np.float64)
    want, scale = _reference(op, x)
    finfo = np.finfo(dtype)
    ok = np.isfinite(want) & (np.abs(want) < finfo.max) & (np.abs(want) > finfo.tiny)
    ulps = np.abs(got[ok] - want[ok]) / (scale[ok] * finfo.eps)
    worst = int(np.argmax(ulps))
    assert ulps[worst] <= BUDGET, f"{op}({x[ok][worst]!r}) {dtype}: {ulps[worst]:.2f} ulp"


SPECIAL = {
    "erfc": [0.0, -0.0, np.inf, -np.inf, np.nan, 30.0, -30.0],
    "erfcx": [0.0, np.inf, -np.inf, np.nan, 1e300],
    "erfinv": [1.0, -1.0, 1.5, -1.5, 0.0, -0.0, np.nan, np.inf],
    "lgamma": [0.0, -0.0, -1.0, -2.0, -1e20, np.inf, -np.inf, np.nan, 1e-300, 1.0, 2.0],
    "digamma": [0.0, -0.0, -1.0, -7.0, np.inf, -np.inf, np.nan, 1e-300],
    "trigamma": [np.inf, np.nan, 1e-300, 1e300],
}


def _torch(op: str, t):
    if op == "erfcx":
        return torch.special.erfcx(t)
    if op == "trigamma":
        return torch.polygamma(1, t)
    return getattr(torch, op)(t)


@pytest.mark.parametrize("op", OPS)
def test_special_values_as_pytorch(op, compiled):
    x = np.array(SPECIAL[op] + [0.75] * (1200 - len(SPECIAL[op])))
    got = compiled("float64", x)[op][: len(SPECIAL[op])]
    want = _torch(op, torch.tensor(x[: len(SPECIAL[op])])).numpy()
    np.testing.assert_array_equal(got, want)
    real = ~np.isnan(want)  # (a NaN's sign bit is not portable)
    np.testing.assert_array_equal(np.signbit(got[real]), np.signbit(want[real]))


def test_trigamma_poles_are_inf():
    """PyTorch's trigamma at 0 and the negative integers is +inf at 0, a large finite value at -1, ...; graphnn's
    is +inf at every pole (and NaN at -inf, as PyTorch)."""
    import graphnn.special as S

    got = S.polygamma(1, np.array([0.0, -1.0, -3.0, -np.inf])).numpy()
    assert np.isinf(got[:3]).all() and (got[:3] > 0).all() and np.isnan(got[3])


EPS = 2.0**-52
# PyTorch's float64 trigamma (digamma's derivative) is accurate to about 1e-10 only: that gradient is checked
# against mpmath, and PyTorch's within 1e-9
TORCH_TRIGAMMA_RTOL = 1e-9


def _trigamma(x) -> np.ndarray:
    mpmath.mp.dps = 30
    return np.array([float(mpmath.polygamma(1, v)) for v in np.asarray(x, float)])


@pytest.mark.parametrize("op", ["erfc", "erfcx", "erfinv", "lgamma", "digamma"])
def test_gradient_as_pytorch(op):
    import graphnn
    import graphnn.special as S

    x = {"erfinv": [-0.99, -0.3, 0.0, 0.5, 0.999], "erfc": [-3.0, 0.2, 0.6, 5.0, 20.0]}.get(
        op, [-2.5, -0.3, 0.2, 1.4616, 3.0, 15.0]
    )
    w = np.arange(1.0, len(x) + 1)
    ours = graphnn.tensor(np.array(x), requires_grad=True)
    fn = S.erfcx if op == "erfcx" else getattr(graphnn, op)
    (fn(ours) * graphnn.tensor(w)).sum().backward()
    theirs = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (_torch(op, theirs) * torch.tensor(w)).sum().backward()
    want = theirs.grad.numpy()
    if op == "digamma":
        np.testing.assert_allclose(want, w * _trigamma(x), rtol=TORCH_TRIGAMMA_RTOL)
        want = w * _trigamma(x)
    # the derivative formulas are exact; each side's evaluation is within the budget of the magnitude of the
    # formula's terms (erfcx' = 2x erfcx(x) - 2/sqrt(pi) cancels: its terms are about 1; digamma near its root:
    # PyTorch's shifts sum terms of about 1)
    terms = np.maximum(np.abs(want), w)
    np.testing.assert_array_less(np.abs(ours.grad.numpy() - want), 2 * BUDGET * EPS * terms)
    assert ours.grad_fn is None and fn(ours).grad_fn.name() == _torch(op, theirs).grad_fn.name()


def test_compiled_gradient_of_lgamma_and_digamma():
    import graphnn

    @graphnn.compile
    def f(x):
        return (x.lgamma() + x.digamma()).sum()

    x = [0.3, 1.7, 4.2, -1.5]
    t = graphnn.tensor(np.array(x), requires_grad=True)
    f(t).backward()
    mpmath.mp.dps = 30
    want = np.array([float(mpmath.digamma(v)) for v in x]) + _trigamma(x)
    np.testing.assert_allclose(t.grad.numpy(), want, rtol=2 * BUDGET * EPS)


def test_special_namespace():
    import graphnn
    import graphnn.special as S

    x = np.array([0.1, 0.7, 2.5, 9.0])
    tx = torch.tensor(x)
    pairs = [
        (S.erfc, torch.special.erfc),
        (S.erfcx, torch.special.erfcx),
        (S.gammaln, torch.special.gammaln),
        (S.digamma, torch.special.digamma),
        (S.psi, torch.special.psi),
        (lambda v: S.multigammaln(v + 2, 3), lambda v: torch.special.multigammaln(v + 2, 3)),
        (lambda v: S.erfinv(v / 10), lambda v: torch.special.erfinv(v / 10)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(graphnn.tensor(x)).numpy(), theirs(tx).numpy(), rtol=1e-14)
    # log_ndtr, also far in its lower tail: x / sqrt(2) rounds, which erfc's condition (2 u^2 = x^2) amplifies
    for v in (x, np.array([-40.0, -10.0, -1.0, 5.0, 9.0])):
        got = S.log_ndtr(graphnn.tensor(v)).numpy()
        want = torch.special.log_ndtr(torch.tensor(v)).numpy()
        assert (np.abs(got - want) <= 2 * BUDGET * EPS * (1 + v * v) * np.abs(want)).all()
    t = graphnn.tensor(x)
    for name in ("erfc", "lgamma", "digamma"):
        np.testing.assert_allclose(getattr(t, name)().numpy(), getattr(tx, name)().numpy(), rtol=1e-14)
        c = graphnn.tensor(x)
        getattr(c, name + "_")()
        np.testing.assert_allclose(c.numpy(), getattr(tx, name)().numpy(), rtol=1e-14)
    np.testing.assert_allclose(S.polygamma(1, t).numpy(), _trigamma(x), rtol=2 * BUDGET * EPS)
    np.testing.assert_allclose(S.polygamma(1, t).numpy(), torch.special.polygamma(1, tx), rtol=TORCH_TRIGAMMA_RTOL)
    with pytest.raises(NotImplementedError, match="polygamma"):
        S.polygamma(2, t)
    ints = graphnn.erfc(graphnn.tensor([1, 2]))  # integers: converted to the default float dtype, as in PyTorch
    assert ints.dtype == graphnn.float32
    np.testing.assert_allclose(ints.numpy(), torch.erfc(torch.tensor([1, 2])).numpy(), rtol=1e-6)
