"""Multinomial(total_count, probs | logits): counts of total_count categorical draws over K categories;
NegativeBinomial(total_count, probs | logits): the number of successes (probability probs each) before
total_count failures."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.tensor import Tensor, arange, as_tensor, random_tensor
from graphnn.distributions import constraints
from graphnn.distributions.categorical import Categorical
from graphnn.distributions.distribution import Distribution, ProbsOrLogits, broadcast_all
from graphnn.distributions.gamma import standard_gamma


def _softplus(x: Tensor) -> Tensor:
    from graphnn.nn.functional import softplus

    return softplus(x)


class Multinomial(Distribution):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, (int, np.integer)):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = int(total_count)
        self._categorical = Categorical(probs=probs, logits=logits, validate_args=validate_args)
        k = self._categorical.param_shape[-1]
        super().__init__(tuple(self._categorical.batch_shape), (k,), validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    def _expand_children(self, new, batch_shape: tuple) -> None:
        new._categorical = self._categorical.expand(batch_shape)

    def _shown_params(self) -> dict:
        return self._categorical._shown_params()

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape

    @property
    def mean(self) -> Tensor:
        return self.probs * self.total_count

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        """total_count categorical draws per sample, counted per category (the parameters' dtype)."""
        from graphnn.nn.functional import one_hot

        shape = tuple(sample_shape)
        k = self.event_shape[0]
        draws = self._categorical.sample((self.total_count,) + shape)  # (n, *sample, *batch)
        return one_hot(draws, k).to(self.probs.dtype).sum(0)

    def log_prob(self, value) -> Tensor:
        x = as_tensor(value).to(self.logits.dtype)
        lowest = float(np.finfo(self.logits.dtype_name).min)
        logits = self.logits.clamp(min=lowest)
        log_coef = math.lgamma(self.total_count + 1) - (x + 1).lgamma().sum(-1)
        terms = (x * logits).masked_fill((x == 0) & (logits == lowest), 0.0)
        return log_coef + terms.sum(-1)

    def entropy(self) -> Tensor:
        """-log n! - n sum p log p + sum_i E[log x_i!], x_i ~ Binomial(n, p_i) (summed over its n + 1 values)."""
        n = self.total_count
        p = self.probs
        k = arange(n + 1, dtype=p.dtype)  # (n + 1,)
        lp = p.clamp(min=float(np.finfo(p.dtype_name).tiny)).unsqueeze(-1)
        log_binom = (
            math.lgamma(n + 1) - (k + 1).lgamma() - (n - k + 1).lgamma() + k * lp.log() + (n - k) * (-lp).log1p()
        )
        expected = (log_binom.exp() * (k + 1).lgamma()).sum(-1)  # (batch, K)
        plogp = (p * p.clamp(min=float(np.finfo(p.dtype_name).tiny)).log()).sum(-1)
        return -math.lgamma(n + 1) - n * plogp + expected.sum(-1)


class NegativeBinomial(ProbsOrLogits):
    arg_constraints = {
        "total_count": constraints.greater_than_eq(0),
        "probs": constraints.half_open_interval(0.0, 1.0),
        "logits": constraints.real,
    }
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        self.total_count, given = broadcast_all(total_count, self._given(probs, logits))
        self.total_count = self.total_count.to(given.dtype)
        super(ProbsOrLogits, self).__init__(tuple(given.shape), (), validate_args)
        self._probs, self._logits = (given, None) if probs is not None else (None, given)
        if self._validate_args:
            self._validate_params(total_count=self.total_count)
            if probs is not None:
                self._validate_params(probs=given)

    def _shown_params(self) -> dict:
        return {
            "total_count": self.total_count,
            **({"probs": self._probs} if self._logits is None else {"logits": self._logits}),
        }

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.logits.exp()

    @property
    def mode(self) -> Tensor:
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self) -> Tensor:
        return self.mean / (-self.logits).sigmoid()

    def sample(self, sample_shape=()) -> Tensor:
        """Poisson(Gamma(total_count) * p / (1 - p)): the Gamma-Poisson mixture (eager: Poisson's sampler reads
        the rates' values)."""
        from graphnn.core.grad_mode import no_grad
        from graphnn.core.random import generator

        with no_grad():
            shape = self._extended_shape(sample_shape)
            r = self.total_count.detach()
            g = standard_gamma(r.clamp(min=float(np.finfo(r.dtype_name).tiny)), shape) * self.logits.detach().exp()
            rate = g.masked_fill(r.expand(*shape) == 0, 0.0).numpy()
            return random_tensor(shape, self.total_count.dtype_name, lambda: generator().poisson(rate))

    def log_prob(self, value) -> Tensor:
        k = as_tensor(value).to(self.logits.dtype)
        r, lg = self.total_count, self.logits
        # r log(1 - p) + k log p = -r softplus(logit) - k softplus(-logit)
        unnorm = -r * _softplus(lg) - k * _softplus(-lg)
        log_norm = (k + r).lgamma() - (k + 1).lgamma() - r.lgamma()
        log_norm = log_norm.masked_fill((r + k) == 0, 0.0)
        return unnorm + log_norm
