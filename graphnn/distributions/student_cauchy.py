"""Heavy-tailed and folded location-scale families: StudentT(df, loc, scale), Cauchy(loc, scale), and the halves
of zero-centred ones, HalfCauchy(scale) and HalfNormal(scale) (|X| for X centred at 0)."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.tensor import Tensor, as_tensor, rand, randn
from graphnn.distributions import constraints
from graphnn.distributions.distribution import LOG_SQRT_2PI, Distribution, broadcast_all
from graphnn.distributions.gamma import standard_gamma


def _full(like: Tensor, value: float, shape) -> Tensor:
    return as_tensor(np.full(tuple(shape), value, like.dtype_name))


def _open_uniform(shape, dtype) -> Tensor:
    """Uniform draws kept strictly inside (0, 1) (a tangent or a log of them stays finite)."""
    u = rand(*shape, dtype=dtype)
    fi = np.finfo(u.dtype_name)
    return u.clamp(min=float(fi.tiny), max=1 - float(fi.eps))


class StudentT(Distribution):
    """Student's t with `df` degrees of freedom, shifted by loc and scaled by scale."""

    has_rsample = True
    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self._init_params(validate_args, df=df, loc=loc, scale=scale)

    @property
    def mean(self) -> Tensor:
        return self.loc.masked_fill(self.df <= 1, math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        df = self.df
        finite = self.scale.pow(2) * df / (df - 2).clamp(min=1e-30)
        v = finite.masked_fill(df <= 2, math.inf)
        return v.masked_fill(df <= 1, math.nan)

    def rsample(self, sample_shape=()) -> Tensor:
        """loc + scale * z / sqrt(g / df): z standard normal, g ~ chi-square(df) = 2 Gamma(df / 2)."""
        shape = self._extended_shape(sample_shape)
        z = randn(*shape, dtype=self.df.dtype)
        g = 2 * standard_gamma(self.df * 0.5, shape)
        g = g.clamp(min=float(np.finfo(g.dtype_name).tiny))
        return self.loc + self.scale * z * (self.df / g).sqrt()

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        df = self.df
        y = (value - self.loc) / self.scale
        norm = (
            self.scale.log()
            + 0.5 * df.log()
            + 0.5 * math.log(math.pi)
            + (0.5 * df).lgamma()
            - (0.5 * (df + 1)).lgamma()
        )
        return -0.5 * (df + 1) * (y * y / df).log1p() - norm

    def entropy(self) -> Tensor:
        half, half1 = 0.5 * self.df, 0.5 * (self.df + 1)
        lbeta = half.lgamma() + math.lgamma(0.5) - half1.lgamma()
        return self.scale.log() + half1 * (half1.digamma() - half.digamma()) + 0.5 * self.df.log() + lbeta


class Cauchy(Distribution):
    has_rsample = True
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, loc, scale, validate_args=None):
        self._init_params(validate_args, loc=loc, scale=scale)

    @property
    def mean(self) -> Tensor:
        return _full(self.loc, math.nan, self._extended_shape())

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return _full(self.loc, math.inf, self._extended_shape())

    def rsample(self, sample_shape=()) -> Tensor:
        """The inverse cdf at a uniform draw."""
        u = _open_uniform(self._extended_shape(sample_shape), self.loc.dtype)
        return self.loc + self.scale * (math.pi * (u - 0.5)).tan()

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        y = (value - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - (y * y).log1p()

    def cdf(self, value) -> Tensor:
        return ((as_tensor(value) - self.loc) / self.scale).atan() / math.pi + 0.5

    def icdf(self, value) -> Tensor:
        return self.loc + self.scale * (math.pi * (as_tensor(value) - 0.5)).tan()

    def entropy(self) -> Tensor:
        return math.log(4 * math.pi) + self.scale.log()


class _HalfScale(Distribution):
    """A distribution of |X| for X centred at 0 with a positive scale."""

    has_rsample = True
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative

    def __init__(self, scale, validate_args=None):
        (self.scale,) = broadcast_all(scale)
        super().__init__(tuple(self.scale.shape), (), validate_args)
        if self._validate_args:
            self._validate_params(scale=self.scale)

    @property
    def mode(self) -> Tensor:
        return self.scale * 0

    def _outside(self, value: Tensor, lp: Tensor) -> Tensor:
        """log_prob of the folded density: -inf below 0."""
        return lp.masked_fill(value < 0, -math.inf)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.icdf(_open_uniform(self._extended_shape(sample_shape), self.scale.dtype))


class HalfCauchy(_HalfScale):
    @property
    def mean(self) -> Tensor:
        return _full(self.scale, math.inf, self._extended_shape())

    @property
    def variance(self) -> Tensor:
        return _full(self.scale, math.inf, self._extended_shape())

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        y = value / self.scale
        return self._outside(value, math.log(2 / math.pi) - self.scale.log() - (y * y).log1p())

    def cdf(self, value) -> Tensor:
        value = as_tensor(value)
        if self._validate_args:
            self._validate_sample(value)
        return (value / self.scale).atan() * (2 / math.pi)

    def icdf(self, value) -> Tensor:
        return self.scale * (as_tensor(value) * (math.pi / 2)).tan()

    def entropy(self) -> Tensor:
        return math.log(2 * math.pi) + self.scale.log()


class HalfNormal(_HalfScale):
    @property
    def mean(self) -> Tensor:
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def variance(self) -> Tensor:
        return self.scale.pow(2) * (1 - 2 / math.pi)

    def rsample(self, sample_shape=()) -> Tensor:
        return (randn(*self._extended_shape(sample_shape), dtype=self.scale.dtype) * self.scale).abs()

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        y = value / self.scale
        return self._outside(value, math.log(2) - LOG_SQRT_2PI - self.scale.log() - 0.5 * y * y)

    def cdf(self, value) -> Tensor:
        value = as_tensor(value)
        if self._validate_args:
            self._validate_sample(value)
        return (value / (self.scale * math.sqrt(2))).erf()

    def icdf(self, value) -> Tensor:
        return self.scale * math.sqrt(2) * as_tensor(value).erfinv()

    def entropy(self) -> Tensor:
        return 0.5 * math.log(math.pi / 2) + self.scale.log() + 0.5
