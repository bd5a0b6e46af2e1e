"""PyTorch's module path torch.distributions.dirichlet."""

from graphnn.distributions.beta import Dirichlet

__all__ = ["Dirichlet"]
