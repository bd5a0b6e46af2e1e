"""Gamma (shape `concentration`, `rate`) and Exponential (Gamma with concentration 1)."""

from __future__ import annotations

import numpy as np

from graphnn.core.dispatch import apply
from graphnn.distributions import constraints
from graphnn.core.tensor import Tensor, as_tensor, rand, randn
from graphnn.distributions.distribution import Distribution, broadcast_all, check_values

_CANDIDATES = 12  # Marsaglia-Tsang proposals per sample: each is accepted with probability >= 0.95


def standard_gamma(alpha: Tensor, shape: tuple) -> Tensor:
    """Gamma(alpha, 1) samples of `shape` (alpha broadcast to it), differentiable in alpha.

    Marsaglia and Tsang's method for alpha + 1 (>= 1): x = d v^3 with d = alpha + 2/3, v = 1 + z / sqrt(9 d), z
    standard normal, accepted when log u < z^2 / 2 + d - d v^3 + d log v^3; the first accepted of _CANDIDATES
    proposals drawn at once (all rejected: probability below 0.05^12, the last proposal is kept). Then
    x * u^(1 / alpha) for Gamma(alpha). The gradient flows through z and u held fixed (the reparameterization of
    the accepted proposal), not PyTorch's implicit gradient: both are unbiased estimates of d E[f(x)] / d alpha
    up to the acceptance step, which this one ignores (its bias is below the rejection probability, < 5%)."""
    dt = alpha.dtype
    a = alpha.expand(*shape) if tuple(alpha.shape) != tuple(shape) else alpha
    d = a + 2.0 / 3.0
    c = (d * 9.0).rsqrt()
    out = taken = None
    for _ in range(_CANDIDATES):
        z = randn(*shape, dtype=dt)
        u = rand(*shape, dtype=dt)
        v = (z * c + 1.0) ** 3
        ok = (v > 0) & (u.log() < z * z * 0.5 + d - d * v + d * apply("select", [v > 0, v, 1.0]).log())
        x = d * v
        if out is None:
            out, taken = x, ok
        else:
            out, taken = apply("select", [taken, out, x]), taken | ok
    boost = rand(*shape, dtype=dt)
    return out * (boost.log() / a).exp()


class Gamma(Distribution):
    has_rsample = True
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(tuple(self.concentration.shape), (), validate_args)
        if self._validate_args:
            for name in ("concentration", "rate"):
                v = getattr(self, name)
                check_values(v, lambda a: a > 0, lambda v=v, name=name: self._invalid(name, v, "GreaterThan(0.0)"))

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=()) -> Tensor:
        """Gamma(concentration, 1) / rate (see standard_gamma for the gradient in concentration)."""
        shape = self._extended_shape(sample_shape)
        x = standard_gamma(self.concentration, shape) / self.rate
        return x.clamp(min=float(np.finfo(x.dtype_name).tiny))

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        a, b = self.concentration, self.rate
        return a * b.log() + (a - 1) * value.log() - b * value - a.lgamma()

    def cdf(self, value) -> Tensor:
        raise NotImplementedError("Gamma.cdf needs the incomplete gamma function, which graphnn does not have")

    def entropy(self) -> Tensor:
        a = self.concentration
        return a - self.rate.log() + a.lgamma() + (1.0 - a) * a.digamma()


class Exponential(Distribution):
    has_rsample = True
    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(tuple(self.rate.shape), (), validate_args)
        if self._validate_args:
            check_values(self.rate, lambda a: a > 0, lambda: self._invalid("rate", self.rate, "GreaterThan(0.0)"))

    @property
    def mean(self) -> Tensor:
        return self.rate.reciprocal()

    @property
    def mode(self) -> Tensor:
        return self.rate * 0

    @property
    def variance(self) -> Tensor:
        return self.rate.pow(-2)

    def rsample(self, sample_shape=()) -> Tensor:
        """-log(1 - u) / rate, u uniform on [0, 1)."""
        u = rand(*self._extended_shape(sample_shape), dtype=self.rate.dtype)
        return -(-u).log1p() / self.rate

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        return self.rate.log() - self.rate * value

    def cdf(self, value) -> Tensor:
        return 1 - (-self.rate * as_tensor(value)).exp()

    def icdf(self, value) -> Tensor:
        return -(-as_tensor(value)).log1p() / self.rate

    def entropy(self) -> Tensor:
        return 1.0 - self.rate.log()
