"""PyTorch's module path torch.distributions.log_normal."""

from graphnn.distributions.laplace import LogNormal

__all__ = ["LogNormal"]
