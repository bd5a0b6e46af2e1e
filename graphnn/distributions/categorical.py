"""Categorical: one of K categories, with probabilities `probs` or unnormalized log-probabilities `logits`."""

from __future__ import annotations

import numpy as np

from graphnn.distributions import constraints
from graphnn.core.tensor import Tensor, as_tensor
from graphnn.core.tensor_ops import multinomial
from graphnn.distributions.distribution import Distribution, check_values
from graphnn.distributions.utils import probs_to_logits


class Categorical(Distribution):
    """Categories 0 .. K-1 (the last dimension of probs or logits); earlier dimensions are the batch."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        given = as_tensor(probs if probs is not None else logits)
        if given.ndim < 1:
            raise ValueError("`probs` parameter must be at least one-dimensional.")
        if not given.is_floating_point():
            given = given.float()
        super().__init__(tuple(given.shape[:-1]), (), validate_args)
        self._num_events = given.shape[-1]
        self._probs, self._logits = (given, None) if probs is not None else (None, given)
        if probs is not None:
            if self._validate_args:
                check_values(
                    given,
                    lambda a: (a >= 0).all() & (a.sum(-1) > 0).all() & np.isfinite(a).all(),  # (normalized below)
                    lambda: self._invalid("probs", given, "Simplex()"),
                )
            self.probs = given / given.sum(-1, keepdim=True)
        else:
            self.logits = given - given.logsumexp(-1, keepdim=True)

    # probs and logits: the one given, and the other computed from it when asked
    @property
    def probs(self) -> Tensor:
        if self._probs is None:
            self._probs = self.logits.softmax(-1)
        return self._probs

    @probs.setter
    def probs(self, value: Tensor) -> None:
        self._probs = value

    @property
    def logits(self) -> Tensor:
        if self._logits is None:
            self._logits = probs_to_logits(self._probs)  # (probability 0: log of eps, as PyTorch's)
        return self._logits

    @logits.setter
    def logits(self, value: Tensor) -> None:
        self._logits = value

    def _shown_params(self) -> dict:
        return {"probs": self._probs} if self._logits is None else {"logits": self._logits}

    @property
    def param_shape(self):
        return (self._probs if self._probs is not None else self._logits).size()

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @property
    def mean(self) -> Tensor:
        return as_tensor(np.full(tuple(self.batch_shape), np.nan, self.probs.dtype_name))

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    @property
    def variance(self) -> Tensor:
        return as_tensor(np.full(tuple(self.batch_shape), np.nan, self.probs.dtype_name))

    def sample(self, sample_shape=()) -> Tensor:
        """Category indices (int64) of shape sample_shape + batch_shape."""
        shape = tuple(sample_shape)
        n = int(np.prod(shape, dtype=np.int64))
        rows = self.probs.detach().reshape(-1, self._num_events)
        drawn = multinomial(rows, n, True)  # (batch, n)
        return drawn.t().reshape(*(shape + tuple(self.batch_shape)))

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)  # (checked against the support first: Distribution.__init_subclass__)
        index = value.long().unsqueeze(-1)
        shape = tuple(np.broadcast_shapes(tuple(index.shape), tuple(self.logits.shape[:-1]) + (1,)))
        table = self.logits.expand(*(shape[:-1] + (self._num_events,)))
        return table.gather(-1, index.expand(*shape)).squeeze(-1)

    def entropy(self) -> Tensor:
        lowest = float(np.finfo(self.logits.dtype_name).min)
        return -(self.probs * self.logits.clamp(min=lowest)).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        from graphnn.core.tensor import arange

        values = arange(self._num_events).reshape(-1, *((1,) * len(self.batch_shape)))
        return values.expand(-1, *self.batch_shape) if expand else values
