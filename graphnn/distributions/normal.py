"""Normal: the Gaussian with mean `loc` and standard deviation `scale`."""

from __future__ import annotations

import math

from graphnn.core.tensor import Tensor, as_tensor, randn
from graphnn.distributions.distribution import LOG_SQRT_2PI, LocScale


class Normal(LocScale):
    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.scale.pow(2)

    def rsample(self, sample_shape=()) -> Tensor:
        """loc + scale * eps with eps ~ N(0, 1): differentiable in loc and scale (the reparameterization trick)."""
        shape = self._extended_shape(sample_shape)
        eps = randn(*shape, dtype=self.loc.dtype)
        return self.loc + eps * self.scale

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        var = self.scale**2
        return -((value - self.loc) ** 2) / (2 * var) - self.scale.log() - LOG_SQRT_2PI

    def cdf(self, value) -> Tensor:
        value = as_tensor(value)
        return 0.5 * (1 + ((value - self.loc) / (self.scale * math.sqrt(2))).erf())

    def icdf(self, value) -> Tensor:
        value = as_tensor(value)
        return self.loc + self.scale * (2 * value - 1).erfinv() * math.sqrt(2)

    def entropy(self) -> Tensor:
        return 0.5 + LOG_SQRT_2PI + self.scale.log()
