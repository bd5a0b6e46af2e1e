"""Distributions of extremes and of powers of uniforms, sampled through their inverse cdf at a uniform draw (so
rsample is differentiable in the parameters): Gumbel(loc, scale), Weibull(scale, concentration),
Pareto(scale, alpha), Kumaraswamy(concentration1, concentration0)."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.tensor import Tensor, as_tensor
from graphnn.distributions import constraints
from graphnn.distributions.distribution import Distribution
from graphnn.distributions.student_cauchy import _open_uniform

EULER_GAMMA = 0.57721566490153286060


class _InverseCdfSampled(Distribution):
    has_rsample = True

    def _params_dtype(self):
        return getattr(self, next(iter(self.arg_constraints))).dtype

    def rsample(self, sample_shape=()) -> Tensor:
        return self.icdf(_open_uniform(self._extended_shape(sample_shape), self._params_dtype()))

    def _checked(self, value) -> Tensor:
        value = as_tensor(value)
        if self._validate_args:
            self._validate_sample(value)
        return value


class Gumbel(_InverseCdfSampled):
    """The law of the maximum of many draws: cdf exp(-exp(-(x - loc) / scale))."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, loc, scale, validate_args=None):
        self._init_params(validate_args, loc=loc, scale=scale)

    @property
    def mean(self) -> Tensor:
        return self.loc + self.scale * EULER_GAMMA

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale * (math.pi / math.sqrt(6))

    @property
    def variance(self) -> Tensor:
        return self.stddev.pow(2)

    def log_prob(self, value) -> Tensor:
        z = (as_tensor(value) - self.loc) / self.scale
        return -(z + (-z).exp()) - self.scale.log()

    def cdf(self, value) -> Tensor:
        z = (self._checked(value) - self.loc) / self.scale
        return (-(-z).exp()).exp()

    def icdf(self, value) -> Tensor:
        return self.loc - self.scale * (-as_tensor(value).log()).log()

    def entropy(self) -> Tensor:
        return self.scale.log() + (1 + EULER_GAMMA)


class Weibull(_InverseCdfSampled):
    """cdf 1 - exp(-(x / scale) ** concentration) on x > 0."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive

    def __init__(self, scale, concentration, validate_args=None):
        self._init_params(validate_args, scale=scale, concentration=concentration)
        self.concentration_reciprocal = self.concentration.reciprocal()

    _expand_names = ("scale", "concentration", "concentration_reciprocal")

    @property
    def mean(self) -> Tensor:
        return self.scale * (1 + self.concentration_reciprocal).lgamma().exp()

    @property
    def mode(self) -> Tensor:
        k = self.concentration
        return self.scale * ((k - 1) / k).pow(self.concentration_reciprocal)

    @property
    def variance(self) -> Tensor:
        r = self.concentration_reciprocal
        return self.scale.pow(2) * ((1 + 2 * r).lgamma().exp() - (1 + r).lgamma().exp().pow(2))

    def log_prob(self, value) -> Tensor:
        y = as_tensor(value) / self.scale
        k = self.concentration
        return (k / self.scale).log() + (k - 1) * y.log() - y.pow(k)

    def cdf(self, value) -> Tensor:
        return 1 - (-(self._checked(value) / self.scale).pow(self.concentration)).exp()

    def icdf(self, value) -> Tensor:
        return self.scale * (-(-as_tensor(value)).log1p()).pow(self.concentration_reciprocal)

    def entropy(self) -> Tensor:
        return EULER_GAMMA * (1 - self.concentration_reciprocal) + (self.scale / self.concentration).log() + 1


class Pareto(_InverseCdfSampled):
    """Density alpha scale^alpha / x^(alpha + 1) on x >= scale."""

    arg_constraints = {"alpha": constraints.positive, "scale": constraints.positive}

    def __init__(self, scale, alpha, validate_args=None):
        self._init_params(validate_args, scale=scale, alpha=alpha)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.greater_than_eq(self.scale)

    @property
    def mean(self) -> Tensor:
        a = self.alpha.clamp(min=1)
        return (a * self.scale / (a - 1)).masked_fill(self.alpha <= 1, math.inf)

    @property
    def mode(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        a = self.alpha.clamp(min=2)
        return (self.scale.pow(2) * a / ((a - 1).pow(2) * (a - 2))).masked_fill(self.alpha <= 2, math.inf)

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        return self.alpha.log() + self.alpha * self.scale.log() - (self.alpha + 1) * value.log()

    def cdf(self, value) -> Tensor:
        return 1 - (self.scale / self._checked(value)).pow(self.alpha)

    def icdf(self, value) -> Tensor:
        return self.scale * (-(-as_tensor(value)).log1p() / self.alpha).exp()

    def entropy(self) -> Tensor:
        return (self.scale / self.alpha).log() + self.alpha.reciprocal() + 1


def _log_beta(a: Tensor, b: Tensor) -> Tensor:
    return a.lgamma() + b.lgamma() - (a + b).lgamma()


class Kumaraswamy(_InverseCdfSampled):
    """Density a b x^(a - 1) (1 - x^a)^(b - 1) on (0, 1) (a = concentration1, b = concentration0): the cdf
    1 - (1 - x^a)^b inverts in closed form."""

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval

    def __init__(self, concentration1, concentration0, validate_args=None):
        self._init_params(validate_args, concentration1=concentration1, concentration0=concentration0)

    def _moment(self, n: int) -> Tensor:
        """E[x^n] = b B(1 + n / a, b)."""
        a, b = self.concentration1, self.concentration0
        return (b.log() + _log_beta(1 + n / a, b)).exp()

    @property
    def mean(self) -> Tensor:
        return self._moment(1)

    @property
    def mode(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        inside = ((a - 1) / (a * b - 1)).pow(a.reciprocal())
        return inside.masked_fill((a < 1) | (b < 1) | ((a == 1) & (b == 1)), math.nan)

    @property
    def variance(self) -> Tensor:
        return self._moment(2) - self._moment(1).pow(2)

    def log_prob(self, value) -> Tensor:
        x = as_tensor(value)
        a, b = self.concentration1, self.concentration0
        return (a * b).log() + (a - 1) * x.log() + (b - 1) * (-x.pow(a)).log1p()

    def cdf(self, value) -> Tensor:
        x = self._checked(value)
        return 1 - (self.concentration0 * (-x.pow(self.concentration1)).log1p()).exp()

    def icdf(self, value) -> Tensor:
        u = as_tensor(value)
        a, b = self.concentration1, self.concentration0
        inner = -((-u).log1p() / b).expm1()  # 1 - (1 - u)^(1 / b)
        return inner.clamp(min=float(np.finfo(inner.dtype_name).tiny)).pow(a.reciprocal())

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        harmonic_b = (b + 1).digamma() + EULER_GAMMA
        return (1 - b.reciprocal()) + (1 - a.reciprocal()) * harmonic_b - (a * b).log()
