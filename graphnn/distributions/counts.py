"""Distributions over counts: Poisson(rate), Binomial(total_count, probs | logits), Geometric(probs | logits)
(the number of failures before the first success)."""

from __future__ import annotations

import numpy as np

from graphnn.distributions import constraints
from graphnn.core.tensor import Tensor, as_tensor, random_tensor
from graphnn.distributions.distribution import (
    Distribution,
    ProbsOrLogits,
    as_float_tensor,
    broadcast_all,
    check_values,
)


def _softplus(x: Tensor) -> Tensor:
    from graphnn.nn.functional import softplus

    return softplus(x)


class Poisson(Distribution):
    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(tuple(self.rate.shape), (), validate_args)
        if self._validate_args:
            check_values(self.rate, lambda a: a >= 0, lambda: self._invalid("rate", self.rate, "GreaterThanEq(0.0)"))

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate.floor()

    @property
    def variance(self) -> Tensor:
        return self.rate

    def sample(self, sample_shape=()) -> Tensor:
        """Counts drawn by NumPy's Poisson sampler from graphnn's generator (eager: the rates' values are needed)."""
        from graphnn.core.random import generator

        rate = self.rate.detach().numpy()
        shape = self._extended_shape(sample_shape)
        return random_tensor(shape, self.rate.dtype_name, lambda: generator().poisson(np.broadcast_to(rate, shape)))

    def log_prob(self, value) -> Tensor:
        k = as_tensor(value).to(self.rate.dtype)
        return k * self.rate.clamp(min=float(np.finfo(self.rate.dtype_name).tiny)).log() - self.rate - (k + 1).lgamma()


class Binomial(ProbsOrLogits):
    arg_constraints = {
        "total_count": constraints.nonnegative_integer,
        "probs": constraints.unit_interval,
        "logits": constraints.real,
    }

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        self.total_count, given = broadcast_all(total_count, self._given(probs, logits))
        self._set_probs(probs, logits, given, validate_args)
        if self._validate_args:
            n = self.total_count
            check_values(
                n,
                lambda a: (a >= 0) & (a == np.floor(a)),
                lambda: self._invalid("total_count", n, "IntegerGreaterThan(0)"),
            )

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.probs

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        """The number of uniforms below probs among total_count (its largest value must be concrete)."""
        from graphnn.core.tensor import rand

        n_max = int(np.max(self.total_count.detach().numpy())) if self.total_count.numel() else 0
        shape = self._extended_shape(sample_shape)
        p = self.probs.detach()
        count = p * 0
        for i in range(n_max):
            u = rand(*shape, dtype=p.dtype_name)
            count = count + ((u < p) & (self.total_count.detach() > i)).to(p.dtype)
        return count

    def log_prob(self, value) -> Tensor:
        k = as_tensor(value).to(self.logits.dtype)
        n, lg = self.total_count, self.logits
        comb = (n + 1).lgamma() - (k + 1).lgamma() - (n - k + 1).lgamma()
        # k log p + (n - k) log(1 - p) = k logit - n softplus(logit)
        return comb + k * lg - n * _softplus(lg)

    def entropy(self) -> Tensor:
        raise NotImplementedError("Binomial.entropy: enumerate the support (PyTorch's needs a common total_count)")


class Geometric(ProbsOrLogits):
    _probs_positive = True
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        given = as_float_tensor(self._given(probs, logits))
        self._set_probs(probs, logits, given, validate_args)

    @property
    def mean(self) -> Tensor:
        return 1.0 / self.probs - 1.0

    @property
    def mode(self) -> Tensor:
        return self.probs * 0

    @property
    def variance(self) -> Tensor:
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()) -> Tensor:
        """floor(log(u) / log(1 - p)), u uniform on (0, 1]."""
        from graphnn.core.tensor import rand

        p = self.probs.detach()
        u = 1 - rand(*self._extended_shape(sample_shape), dtype=p.dtype_name)
        tiny = float(np.finfo(p.dtype_name).tiny)
        return (u.log() / (-p).log1p().clamp(max=-tiny)).floor()

    def log_prob(self, value) -> Tensor:
        k = as_tensor(value).to(self.probs.dtype)
        # k log(1 - p) + log p = -k softplus(logit) - softplus(-logit)
        return -k * _softplus(self.logits) - _softplus(-self.logits)

    def entropy(self) -> Tensor:
        # (softplus(logit) (1 - p) + softplus(-logit) p) / p
        p = self.probs
        return (_softplus(self.logits) * (1 - p) + _softplus(-self.logits) * p) / p
