"""Beta (concentration1 = a, concentration0 = b) and Dirichlet (a vector of concentrations, the last dimension)."""

from __future__ import annotations

import numpy as np

from graphnn.distributions import constraints
from graphnn.core.tensor import Tensor, as_tensor
from graphnn.distributions.distribution import Distribution, as_float_tensor, broadcast_all, check_values
from graphnn.distributions.gamma import standard_gamma


class Dirichlet(Distribution):
    has_rsample = True
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex

    def __init__(self, concentration, validate_args=None):
        self.concentration = as_float_tensor(concentration)
        if self.concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        shape = tuple(self.concentration.shape)
        super().__init__(shape[:-1], shape[-1:], validate_args)
        if self._validate_args:
            c = self.concentration
            check_values(c, lambda a: a > 0, lambda: self._invalid("concentration", c, "GreaterThan(0.0)"))

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def variance(self) -> Tensor:
        c0 = self.concentration.sum(-1, keepdim=True)
        return self.concentration * (c0 - self.concentration) / (c0.pow(2) * (c0 + 1))

    def rsample(self, sample_shape=()) -> Tensor:
        """Independent Gamma(concentration_i, 1) draws, normalized (gradient: see gamma.standard_gamma)."""
        g = standard_gamma(self.concentration, self._extended_shape(sample_shape))
        g = g.clamp(min=float(np.finfo(g.dtype_name).tiny))
        return g / g.sum(-1, keepdim=True)

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        c = self.concentration
        return ((c - 1) * value.log()).sum(-1) + c.sum(-1).lgamma() - c.lgamma().sum(-1)

    def entropy(self) -> Tensor:
        c = self.concentration
        k = c.shape[-1]
        c0 = c.sum(-1)
        return c.lgamma().sum(-1) - c0.lgamma() - (k - c0) * c0.digamma() - ((c - 1) * c.digamma()).sum(-1)


class Beta(Distribution):
    has_rsample = True
    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        super().__init__(tuple(self.concentration1.shape), (), validate_args)
        if self._validate_args:
            for name in ("concentration1", "concentration0"):
                v = getattr(self, name)
                check_values(v, lambda a: a > 0, lambda v=v, name=name: self._invalid(name, v, "GreaterThan(0.0)"))

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def variance(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        s = a + b
        return a * b / (s.pow(2) * (s + 1))

    def rsample(self, sample_shape=()) -> Tensor:
        """X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b) (gradient: see gamma.standard_gamma)."""
        shape = self._extended_shape(sample_shape)
        x = standard_gamma(self.concentration1, shape)
        y = standard_gamma(self.concentration0, shape)
        tiny = float(np.finfo(x.dtype_name).tiny)
        return x.clamp(min=tiny) / (x + y).clamp(min=tiny)

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        a, b = self.concentration1, self.concentration0
        lbeta = a.lgamma() + b.lgamma() - (a + b).lgamma()
        return (a - 1) * value.log() + (b - 1) * (-value).log1p() - lbeta

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        s = a + b
        lbeta = a.lgamma() + b.lgamma() - s.lgamma()
        return lbeta - (a - 1) * a.digamma() - (b - 1) * b.digamma() + (s - 2) * s.digamma()
