"""Gradient clipping with PyTorch's formulas."""

from __future__ import annotations

import math
import warnings

from graphnn.core.dispatch import apply
from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor, stack


def _params(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most max_norm; returns the norm before."""
    params = _params(parameters)
    if not params:
        from graphnn.core.tensor import tensor

        return tensor(0.0)
    total = get_total_norm([p.grad for p in params], norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The norm of the norms of `tensors` (as if they were one vector), as torch.nn.utils.get_total_norm."""
    from graphnn.core.tensor import Tensor as _T, tensor

    ts = [tensors] if isinstance(tensors, _T) else [t for t in tensors if t is not None]
    norm_type = float(norm_type)  # (PyTorch accepts 'inf' as a string)
    if not ts:
        return tensor(0.0)
    with no_grad():
        if norm_type == math.inf:
            total = stack([t.abs().max() for t in ts]).max()
        else:
            total = stack([(t.abs() ** norm_type).sum() for t in ts]).sum() ** (1.0 / norm_type)
    if error_if_nonfinite:
        if total._data is not None:
            _FiniteNorm(norm_type).check(total._data)
        else:  # inside graphnn.compile: checked by the compiled call (a failed check writes no parameter back)
            total = apply("call", [total], {"fn": _FiniteNorm(norm_type)})
    return total


class _FiniteNorm:
    """attrs['fn'] of a `call` node passing a total norm through, raising when it is not finite (clip_grad_norm_'s
    error_if_nonfinite inside a compiled step)."""

    def __init__(self, norm_type: float):
        self.norm_type = norm_type

    def check(self, a) -> None:
        if not math.isfinite(float(a)):
            raise RuntimeError(
                f"clip_grad_norm_: the total norm of order {self.norm_type} of the gradients is non-finite (inf or "
                "NaN), so they cannot be clipped; error_if_nonfinite=False scales them by it anyway"
            )

    def ir_key(self) -> str:
        return f"finite_norm<{self.norm_type}>"

    def out_types(self, types: list) -> list:
        return list(types)

    def run(self, arrays: list) -> list:
        self.check(arrays[0])
        return [arrays[0]]

    def grad(self, b, node, cts: list) -> list:
        return list(cts)


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale the parameters' gradients by max_norm / (total_norm + 1e-6) when that is below 1 (the second half of
    clip_grad_norm_, with a total norm from get_total_norm)."""
    params = _params(parameters)
    with no_grad():
        coef = (max_norm / (total_norm + 1e-6)).clamp(max=1.0)
        for p in params:
            p.grad.mul_(coef)  # (in place, as PyTorch: references to the .grad tensors see the clipped values)


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0) -> Tensor:
    warnings.warn(
        "nn.utils.clip_grad_norm is deprecated in favor of nn.utils.clip_grad_norm_", FutureWarning, stacklevel=2
    )
    return clip_grad_norm_(parameters, max_norm, norm_type)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    with no_grad():
        for p in _params(parameters):
            p.grad.clamp_(-clip_value, clip_value)


def clip_grad_value(parameters, clip_value: float) -> None:
    return clip_grad_value_(parameters, clip_value)
