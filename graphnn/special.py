"""torch.special: the functions graphnn has, under their torch.special names (expit is sigmoid, ndtr the standard
normal CDF, entr -x log x, gammaln lgamma, psi digamma, ndtri, xlog1py; i0 / i0e / i1 / i1e from the series and
asymptotic expansion of graphnn.distributions.von_mises, so differentiable and compiled). polygamma has the orders
0 and 1 (digamma, trigamma). Not here: the Bessel functions J and Y, zeta, the incomplete gamma functions."""

from __future__ import annotations

import math

import graphnn as _g
from graphnn.core.dispatch import apply
from graphnn.core.tensor import as_tensor


def expit(input):
    return as_tensor(input).sigmoid()


def ndtr(input):
    """The standard normal CDF: (1 + erf(x / sqrt(2))) / 2."""
    return (as_tensor(input) * (1 / math.sqrt(2))).erf() * 0.5 + 0.5


def entr(input):
    """-x log x for x > 0, 0 at 0, -inf for x < 0 (NaN stays NaN)."""
    x = as_tensor(input)
    pos = apply("select", [x > 0, x, 1.0])
    return apply(
        "select", [x > 0, -x * pos.log(), apply("select", [x == 0, 0.0, apply("select", [x < 0, -math.inf, x])])]
    )


def softmax(input, dim, *, dtype=None):
    x = as_tensor(input)
    return (x.to(dtype) if dtype is not None else x).softmax(dim)


def log_softmax(input, dim, *, dtype=None):
    x = as_tensor(input)
    return (x.to(dtype) if dtype is not None else x).log_softmax(dim)


erf, log1p, expm1, exp2 = _g.erf, _g.log1p, _g.expm1, _g.exp2
logit, xlogy, sinc, round, logsumexp = _g.logit, _g.xlogy, _g.sinc, _g.round, _g.logsumexp  # noqa: A001


erfc, erfinv, gammaln, digamma, psi = _g.erfc, _g.erfinv, _g.lgamma, _g.digamma, _g.digamma


def erfcx(input):
    """The scaled complementary error function exp(x^2) erfc(x)."""
    return apply("erfcx", [as_tensor(input)])


def polygamma(n: int, input):
    """The n-th derivative of digamma; graphnn has n = 0 (digamma) and n = 1 (trigamma)."""
    if n == 0:
        return as_tensor(input).digamma()
    if n == 1:
        return apply("trigamma", [as_tensor(input)])
    raise NotImplementedError(f"polygamma: order n={n} is not supported (graphnn has n = 0 and 1)")


def multigammaln(input, p: int):
    """The log of the multivariate gamma function of dimension p: p (p - 1) / 4 log(pi) + sum_j lgamma(x - j / 2)."""
    x = as_tensor(input)
    if p < 1:
        raise ValueError(f"multigammaln: p must be >= 1, got {p}")
    out = x.lgamma()
    for j in range(1, p):
        out = out + (x - j / 2).lgamma()
    return out + p * (p - 1) / 4 * math.log(math.pi)


def log_ndtr(input):
    """log of the standard normal CDF, accurate in both tails: below -1, -x^2/2 + log(erfcx(-x / sqrt 2) / 2);
    above, log1p(-erfc(x / sqrt 2) / 2). Each branch sees its operand clamped to its side, so the other side's
    overflow does not reach the gradient."""
    x = as_tensor(input)
    below = x < -1.0
    lo, hi = apply("select", [below, x, -1.0]), apply("select", [below, -1.0, x])
    left = lo * lo * -0.5 + erfcx(lo * (-1 / math.sqrt(2))).log() - math.log(2.0)
    right = ((hi * (1 / math.sqrt(2))).erfc() * -0.5).log1p()
    return apply("select", [below, left, right])


def _log_i(order: int, x):
    from graphnn.distributions.von_mises import log_bessel_i

    return log_bessel_i(order, x)


def i0(input):
    """The modified Bessel function of the first kind of order 0 (even)."""
    x = as_tensor(input)
    x = x if x.is_floating_point() else x.float()
    return _log_i(0, x.abs()).exp()


def i0e(input):
    """exp(-|x|) i0(x), without the overflow of i0 for large |x|."""
    x = as_tensor(input)
    x = x if x.is_floating_point() else x.float()
    a = x.abs()
    return (_log_i(0, a) - a).exp()


def i1(input):
    """The modified Bessel function of the first kind of order 1 (odd)."""
    x = as_tensor(input)
    x = x if x.is_floating_point() else x.float()
    return x.sign() * _log_i(1, x.abs()).exp()


def i1e(input):
    """exp(-|x|) i1(x)."""
    x = as_tensor(input)
    x = x if x.is_floating_point() else x.float()
    a = x.abs()
    return x.sign() * (_log_i(1, a) - a).exp()


def ndtri(input):
    """The inverse of the standard normal CDF: sqrt(2) erfinv(2p - 1)."""
    p = as_tensor(input)
    p = p if p.is_floating_point() else p.float()
    return (p * 2.0 - 1.0).erfinv() * math.sqrt(2.0)


def xlog1py(input, other):
    """x log1p(y), 0 where x is 0 (unless y is NaN)."""
    x, y = as_tensor(input), as_tensor(other)
    x = x if x.is_floating_point() else x.float()
    y = y if y.is_floating_point() else y.type_as_dtype(x.dtype_name)
    return apply("select", [(x == 0) & (y == y), 0.0, x * y.log1p()])
