"""Bernoulli: 1 with probability `probs` (or sigmoid(`logits`)), else 0."""

from __future__ import annotations

import numpy as np

from graphnn.distributions import constraints
from graphnn.core.tensor import Tensor, as_tensor, rand
from graphnn.distributions.distribution import ProbsOrLogits, as_float_tensor, check_values


class Bernoulli(ProbsOrLogits):
    support = constraints.boolean

    def __init__(self, probs=None, logits=None, validate_args=None):
        given = as_float_tensor(self._given(probs, logits))
        self._set_probs(probs, logits, given, validate_args)

    def _shown_params(self) -> dict:
        return {"probs": self._probs} if self._logits is None else {"logits": self._logits}

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        return (self.probs >= 0.5).to(self.probs.dtype)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        """0. or 1. (the parameters' dtype) of shape sample_shape + batch_shape."""
        p = self.probs.detach()
        u = rand(*self._extended_shape(sample_shape), dtype=p.dtype)
        return (u < p).to(p.dtype)

    def log_prob(self, value) -> Tensor:
        """value * log(p) + (1 - value) * log(1 - p), computed from the logits as a stable softplus."""
        value = as_tensor(value)
        if self._validate_args:
            check_values(
                value,
                lambda a: (a == 0) | (a == 1),
                lambda: (
                    f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to be "
                    f"within the support (Boolean()) of the distribution {self!r}, but found invalid values:\n{value}"
                ),
            )
        from graphnn.nn.functional import binary_cross_entropy_with_logits

        logits = self.logits
        shape = tuple(np.broadcast_shapes(tuple(logits.shape), tuple(value.shape)))
        value = value.to(logits.dtype)
        return -binary_cross_entropy_with_logits(logits.expand(*shape), value.expand(*shape), reduction="none")

    def entropy(self) -> Tensor:
        from graphnn.nn.functional import binary_cross_entropy_with_logits

        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")
