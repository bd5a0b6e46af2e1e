"""Value tests of tensors (torch.isnan, isclose, allclose, all, any, ...): compositions of comparison ops, so they
work eagerly and inside graphnn.compile (allclose and equal return Python bools, so they need concrete values)."""

from __future__ import annotations

import math

from graphnn.core.dispatch import apply
from graphnn.core.tensor import Tensor, as_tensor


def isnan(input: Tensor) -> Tensor:
    return input != input


def isinf(input: Tensor) -> Tensor:
    if not input.is_floating_point():
        return input != input  # (all False, of input's shape)
    return input.abs() == math.inf


def isfinite(input: Tensor) -> Tensor:
    if not input.is_floating_point():
        return input == input
    return (input - input) == 0  # NaN for NaN and +-inf


def isclose(input: Tensor, other, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol |other| elementwise; equal infinities are close, NaN only with equal_nan."""
    other = as_tensor(other)
    if not input.is_floating_point() and not other.is_floating_point():
        return input == other
    a, b = input.double() if not input.is_floating_point() else input, other.to(input.dtype)
    close = ((a - b).abs() <= atol + rtol * b.abs()) | (a == b)
    if equal_nan:
        close = close | (isnan(a) & isnan(b))
    return close


def allclose(input: Tensor, other, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


def equal(input: Tensor, other: Tensor) -> bool:
    """Same shape and the same values."""
    return tuple(input.shape) == tuple(other.shape) and bool((input == other).all().item())


def all(input: Tensor, dim=None, keepdim: bool = False, *, axis=None, out=None) -> Tensor:  # noqa: A001
    """True where every element (along dim) is nonzero (axis: NumPy's name for dim, as np.all(tensor) passes it)."""
    dim = axis if dim is None else dim
    zero = (input == 0) if input.dtype_name != "bool" else ~input
    return zero.long().sum(dim, keepdim) == 0 if dim is not None else zero.long().sum() == 0


def any(input: Tensor, dim=None, keepdim: bool = False, *, axis=None, out=None) -> Tensor:  # noqa: A001
    """True where some element (along dim) is nonzero."""
    dim = axis if dim is None else dim
    nonzero = (input != 0) if input.dtype_name != "bool" else input
    return nonzero.long().sum(dim, keepdim) > 0 if dim is not None else nonzero.long().sum() > 0


def count_nonzero(input: Tensor, dim=None) -> Tensor:
    return (input != 0).long().sum(dim)


def logical_xor(input: Tensor, other) -> Tensor:
    return apply("ne", [input != 0, as_tensor(other) != 0])


METHODS = {"isnan": isnan, "isinf": isinf, "isfinite": isfinite, "isclose": isclose, "allclose": allclose}
METHODS |= {"equal": equal, "all": all, "any": any, "count_nonzero": count_nonzero, "logical_xor": logical_xor}
