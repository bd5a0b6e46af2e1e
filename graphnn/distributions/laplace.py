"""Laplace (location `loc`, scale `scale`) and LogNormal (exp of a Normal(loc, scale))."""

from __future__ import annotations


from graphnn.distributions import constraints
from graphnn.core.tensor import Tensor, as_tensor, rand
from graphnn.distributions.distribution import Distribution, LocScale
from graphnn.distributions.normal import Normal


class Laplace(LocScale):
    @property
    def variance(self) -> Tensor:
        return 2 * self.scale.pow(2)

    def rsample(self, sample_shape=()) -> Tensor:
        """loc - scale sign(u) log(1 - |u|), u uniform on (-1, 1)."""
        u = rand(*self._extended_shape(sample_shape), dtype=self.loc.dtype) * 2 - 1
        return self.loc - self.scale * u.sign() * (-u.abs()).log1p()

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        return -(2 * self.scale).log() - (value - self.loc).abs() / self.scale

    def cdf(self, value) -> Tensor:
        d = as_tensor(value) - self.loc
        return 0.5 - 0.5 * d.sign() * (-d.abs() / self.scale).expm1()

    def icdf(self, value) -> Tensor:
        t = as_tensor(value) - 0.5
        return self.loc - self.scale * t.sign() * (-2 * t.abs()).log1p()

    def entropy(self) -> Tensor:
        return 1 + (2 * self.scale).log()


class LogNormal(Distribution):
    has_rsample = True
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive

    def __init__(self, loc, scale, validate_args=None):
        self.base_dist = Normal(loc, scale, validate_args=validate_args)
        self.loc, self.scale = self.base_dist.loc, self.base_dist.scale
        super().__init__(tuple(self.loc.shape), (), validate_args)

    def _expand_children(self, new, batch_shape: tuple) -> None:
        new.base_dist = self.base_dist.expand(batch_shape)

    @property
    def mean(self) -> Tensor:
        return (self.loc + self.scale.pow(2) / 2).exp()

    @property
    def mode(self) -> Tensor:
        return (self.loc - self.scale.pow(2)).exp()

    @property
    def variance(self) -> Tensor:
        s2 = self.scale.pow(2)
        return s2.expm1() * (2 * self.loc + s2).exp()

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape).exp()

    def log_prob(self, value) -> Tensor:
        y = as_tensor(value).log()
        return self.base_dist.log_prob(y) - y

    def cdf(self, value) -> Tensor:
        return self.base_dist.cdf(as_tensor(value).log())

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() + self.loc
