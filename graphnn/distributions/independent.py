"""Independent: reinterprets the rightmost batch dimensions of a distribution as event dimensions (log_prob and
entropy sum over them); OneHotCategorical: a Categorical whose values are one-hot vectors."""

from __future__ import annotations

from graphnn.distributions import constraints
from graphnn.core.tensor import Tensor, as_tensor
from graphnn.distributions.categorical import Categorical
from graphnn.distributions.distribution import Distribution


class Independent(Distribution):
    arg_constraints: dict = {}

    def __init__(self, base_distribution, reinterpreted_batch_ndims: int, validate_args=None):
        n = int(reinterpreted_batch_ndims)
        batch = tuple(base_distribution.batch_shape)
        if n > len(batch):
            raise ValueError(
                f"Expected reinterpreted_batch_ndims <= len(base_distribution.batch_shape), actual {n} vs {len(batch)}"
            )
        self.base_dist, self.reinterpreted_batch_ndims = base_distribution, n
        cut = len(batch) - n
        super().__init__(batch[:cut], batch[cut:] + tuple(base_distribution.event_shape), validate_args)
        self.has_rsample = base_distribution.has_rsample

    @property
    def support(self):
        s = self.base_dist.support
        return constraints.independent(s, self.reinterpreted_batch_ndims) if self.reinterpreted_batch_ndims else s

    def _expand_children(self, new, batch_shape: tuple) -> None:
        inner = tuple(self.event_shape[: self.reinterpreted_batch_ndims])
        new.base_dist = self.base_dist.expand(batch_shape + inner)

    def _sum(self, t: Tensor) -> Tensor:
        for _ in range(self.reinterpreted_batch_ndims):
            t = t.sum(-1)
        return t

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def sample(self, sample_shape=()) -> Tensor:
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value) -> Tensor:
        return self._sum(self.base_dist.log_prob(value))

    def entropy(self) -> Tensor:
        return self._sum(self.base_dist.entropy())

    def __repr__(self) -> str:
        return f"Independent({self.base_dist!r}, {self.reinterpreted_batch_ndims})"


class OneHotCategorical(Distribution):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits, validate_args)
        k = self._categorical.probs.shape[-1]
        super().__init__(tuple(self._categorical.batch_shape), (k,), validate_args)

    def _expand_children(self, new, batch_shape: tuple) -> None:
        new._categorical = self._categorical.expand(batch_shape)

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        from graphnn.nn.functional import one_hot

        k = self.event_shape[0]
        return one_hot(self._categorical.sample(sample_shape), k).to(self.probs.dtype)

    def log_prob(self, value) -> Tensor:
        return self._categorical.log_prob(as_tensor(value).argmax(-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def __repr__(self) -> str:
        return f"OneHotCategorical(probs: {self.probs.size()})"
