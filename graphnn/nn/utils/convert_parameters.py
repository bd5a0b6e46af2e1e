"""All parameters as one vector and back (torch.nn.utils.parameters_to_vector / vector_to_parameters)."""

from __future__ import annotations

from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor, cat


def parameters_to_vector(parameters) -> Tensor:
    """The parameters flattened and concatenated, in order (differentiable)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Consecutive slices of vec become the parameters' data (as PyTorch, `p.data = ...`: tensors taken from the
    parameters before keep their old values)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise RuntimeError(f"vector_to_parameters: vec has shape {tuple(vec.shape)}, the parameters hold {total}")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.data = vec.narrow(0, offset, n).view_as(p).data
            offset += n
