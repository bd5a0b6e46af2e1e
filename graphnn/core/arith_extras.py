"""More arithmetic of PyTorch's API as compositions of the primitive ops (square, reciprocal, addcmul, lerp, log2,
sinh, var_mean, diff, ...): differentiable, eager and inside graphnn.compile."""

from __future__ import annotations

import math

from graphnn.core.tensor import Tensor, as_tensor


def square(input: Tensor) -> Tensor:
    return input * input


def reciprocal(input: Tensor) -> Tensor:
    return 1.0 / input


def clamp_min(input: Tensor, min) -> Tensor:  # noqa: A002
    return input.clamp(min=min)


def clamp_max(input: Tensor, max) -> Tensor:  # noqa: A002
    return input.clamp(max=max)


def addcmul(input: Tensor, tensor1, tensor2, *, value=1) -> Tensor:
    return input + value * (tensor1 * tensor2)


def addcdiv(input: Tensor, tensor1, tensor2, *, value=1) -> Tensor:
    return input + value * (tensor1 / tensor2)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    prod = mat1.matmul(mat2)
    return (input if beta == 1 else input * beta) + (prod if alpha == 1 else prod * alpha)


def lerp(input: Tensor, end, weight) -> Tensor:
    return input + weight * (as_tensor(end) - input)


def log2(input: Tensor) -> Tensor:
    return input.log() * (1.0 / math.log(2.0))


def log10(input: Tensor) -> Tensor:
    return input.log() * (1.0 / math.log(10.0))


def exp2(input: Tensor) -> Tensor:
    return (input * math.log(2.0)).exp()


def sinh(input: Tensor) -> Tensor:
    return (input.expm1() - (-input).expm1()) * 0.5


def cosh(input: Tensor) -> Tensor:
    return (input.exp() + (-input).exp()) * 0.5


def tan(input: Tensor) -> Tensor:
    return input.sin() / input.cos()


def logit(input: Tensor, eps=None) -> Tensor:
    x = input.clamp(min=eps, max=1 - eps) if eps is not None else input
    return (x / (1 - x)).log()


def xlogy(input, other) -> Tensor:
    """input * log(other), 0 where input is 0 (and other not NaN)."""
    input, other = as_tensor(input), as_tensor(other)
    return (input * other.log()).masked_fill((input == 0) & (other == other), 0.0)


def var_mean(input: Tensor, dim=None, unbiased=True, keepdim=False, *, correction=None) -> tuple:
    return input.var(dim, unbiased, keepdim, correction=correction), input.mean(dim, keepdim)


def std_mean(input: Tensor, dim=None, unbiased=True, keepdim=False, *, correction=None) -> tuple:
    return input.std(dim, unbiased, keepdim, correction=correction), input.mean(dim, keepdim)


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    from graphnn.core.tensor import cat

    parts = [p for p in (prepend, input, append) if p is not None]
    x = cat(parts, dim) if len(parts) > 1 else input
    for _ in range(n):
        size = x.shape[dim]
        x = x.narrow(dim, 1, size - 1) - x.narrow(dim, 0, size - 1)
    return x


METHODS = {"square": square, "reciprocal": reciprocal, "clamp_min": clamp_min, "clamp_max": clamp_max}
METHODS |= {"addcmul": addcmul, "addcdiv": addcdiv, "addmm": addmm, "lerp": lerp, "log2": log2, "log10": log10}
METHODS |= {"exp2": exp2, "sinh": sinh, "cosh": cosh, "tan": tan, "logit": logit, "xlogy": xlogy, "diff": diff}
FUNCTIONS = METHODS | {"var_mean": var_mean, "std_mean": std_mean}
