"""PyTorch's module path torch.distributions.transformed_distribution."""

from graphnn.distributions.transforms import TransformedDistribution

__all__ = ["TransformedDistribution"]
