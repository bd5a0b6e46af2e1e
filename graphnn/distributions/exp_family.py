"""PyTorch's module path torch.distributions.exp_family: the ExponentialFamily base class."""

from graphnn.distributions.distribution import Distribution

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    """The base class PyTorch gives distributions of the exponential family (graphnn's compute their entropies
    and KL divergences in closed form each: the class is for users' own subclasses)."""
