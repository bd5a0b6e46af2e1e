"""torch.special: the functions graphnn has, under their torch.special names (expit is sigmoid, ndtr the standard
normal CDF, entr -x log x). Not here (graphnn has no rule for them yet): erfc, erfinv, gammaln, digamma, i0, ..."""

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
