"""PyTorch's module path torch.distributions.exp_family."""

from graphnn.distributions.inverse_gamma import ExponentialFamily

__all__ = ["ExponentialFamily"]
