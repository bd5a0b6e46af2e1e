"""PyTorch's module path torch.distributions.one_hot_categorical."""

from graphnn.distributions.independent import OneHotCategorical
from graphnn.distributions.inverse_gamma import OneHotCategoricalStraightThrough

__all__ = ["OneHotCategorical", "OneHotCategoricalStraightThrough"]
