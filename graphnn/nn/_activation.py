"""Activation functions beyond the basic ones (composites of IR primitives)."""

from __future__ import annotations

from graphnn.core.dispatch import apply, relabel
from graphnn.core.tensor import Tensor


def inplace_or_new(input: Tensor, inplace: bool, name: str, compute) -> Tensor:
    """compute() (a new tensor), or with inplace=True written into `input` as PyTorch's `inplace` activations do."""
    return input._inplace_op(name, compute) if inplace else compute()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return inplace_or_new(
        input,
        inplace,
        "leaky_relu_",
        lambda: relabel(apply("select", [input > 0, input, input * negative_slope]), "LeakyReluBackward0", [input]),
    )


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above threshold (as PyTorch)."""
    bx = input * beta
    safe = apply("select", [bx > threshold, threshold, bx])  # keeps exp finite where the linear branch is taken
    soft = (safe.exp() + 1.0).log() / beta
    return relabel(apply("select", [bx > threshold, input, soft]), "SoftplusBackward0", [input])


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    def compute():
        neg = (apply("select", [input > 0, 0.0, input]).exp() - 1.0) * alpha  # (gradient alpha at 0, as PyTorch)
        return relabel(apply("select", [input > 0, input, neg]), "EluBackward0", [input])

    return inplace_or_new(input, inplace, "elu_", compute)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(input, min_val, max_val), but (as PyTorch's) with no gradient at the bounds themselves."""

    def compute():
        inner = apply("select", [input >= max_val, max_val, input])
        return relabel(apply("select", [input <= min_val, min_val, inner]), "HardtanhBackward0", [input])

    return inplace_or_new(input, inplace, "hardtanh_", compute)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return inplace_or_new(input, inplace, "silu_", lambda: input * input.sigmoid())
