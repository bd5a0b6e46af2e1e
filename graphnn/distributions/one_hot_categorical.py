"""PyTorch's module path torch.distributions.one_hot_categorical, and the straight-through one-hot categorical."""

from __future__ import annotations

from graphnn.core.tensor import Tensor
from graphnn.distributions.independent import OneHotCategorical

__all__ = ["OneHotCategorical", "OneHotCategoricalStraightThrough"]


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """A one-hot categorical whose rsample passes gradients to probs as if the sample were probs (the
    straight-through estimator)."""

    has_rsample = True

    def rsample(self, sample_shape=()) -> Tensor:
        samples = self.sample(sample_shape)
        probs = self.probs
        return samples + (probs - probs.detach())
