"""Activation functions beyond the basic ones (composites of IR primitives)."""

from __future__ import annotations

from graphnn.core.dispatch import apply, located, relabel
from graphnn.core.tensor import Tensor
from graphnn.core.replay import replayed


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


@replayed
def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return inplace_or_new(input, inplace, "silu_", lambda: relabel(input * input.sigmoid(), "SiluBackward0", [input]))


_SQRT1_2 = 0.70710678118654752440  # 1 / sqrt(2)
_SQRT_2_OVER_PI = 0.79788456080286535588  # sqrt(2 / pi)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@replayed
def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF through a real erf; approximate='tanh' is PyTorch's tanh formula."""
    if approximate == "none":
        out = input * 0.5 * ((input * _SQRT1_2).erf() + 1.0)
    elif approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * _SQRT_2_OVER_PI
        out = input * 0.5 * (inner.tanh() + 1.0)
    else:
        raise RuntimeError(located(f"gelu: approximate argument must be either none or tanh, got {approximate!r}"))
    return relabel(out, "GeluBackward0", [input])


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return inplace_or_new(
        input, inplace, "mish_", lambda: relabel(input * softplus(input).tanh(), "MishBackward0", [input])
    )


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalizing constants."""
    return inplace_or_new(
        input, inplace, "selu_", lambda: relabel(elu(input, _SELU_ALPHA) * _SELU_SCALE, "EluBackward0", [input])
    )


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""

    def compute():
        neg = (apply("select", [input > 0, 0.0, input]) * (1.0 / alpha)).exp() - 1.0
        return relabel(apply("select", [input > 0, input, neg * alpha]), "CeluBackward0", [input])

    return inplace_or_new(input, inplace, "celu_", compute)


def softsign(input: Tensor) -> Tensor:
    return input / (input.abs() + 1.0)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -log1p(exp(-x)), smooth at every x (its derivatives of every order are the true ones: a
    form through |x| or min(x, 0) has a second derivative of 0 at x = 0, where -1/4 is right), and x itself far
    below 0, where exp(-x) would overflow and x is the value to the dtype's precision (exp(x) / |x| under its
    epsilon)."""
    low = -30.0 if input.dtype_name != "float64" else -50.0
    safe = apply("select", [input < low, 0.0, input])
    out = apply("select", [input < low, input, -(-safe).exp().log1p()])
    return relabel(out, "LogSigmoidBackward0", [input])


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """0 below -3, 1 above 3, x / 6 + 1/2 between (gradient 1/6 strictly inside)."""

    def compute():
        inner = apply("select", [input >= 3.0, 1.0, (input + 3.0) / 6.0])
        return relabel(apply("select", [input <= -3.0, 0.0, inner]), "HardsigmoidBackward0", [input])

    return inplace_or_new(input, inplace, "hardsigmoid_", compute)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6 (gradient x / 3 + 1/2 strictly inside (-3, 3), 0 and 1 at -3 and 3, as PyTorch's)."""

    def compute():
        inner = apply("select", [input >= 3.0, input, input * (input + 3.0) / 6.0])
        return relabel(apply("select", [input <= -3.0, 0.0, inner]), "HardswishBackward0", [input])

    return inplace_or_new(input, inplace, "hardswish_", compute)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b), a and b the two halves of `input` along `dim`."""
    if input.ndim == 0:
        raise RuntimeError(located("glu does not support scalars because halving size must be even"))
    d = dim % input.ndim
    if input.shape[d] % 2:
        raise RuntimeError(located(f"glu: Halving dimension must be even, but dimension {d} is size {input.shape[d]}"))
    a, b = input.chunk(2, d)
    return relabel(a * b.sigmoid(), "GluBackward0", [input])


def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return inplace_or_new(
        input,
        inplace,
        "threshold_",
        lambda: relabel(apply("select", [input > threshold, input, value]), "ThresholdBackward0", [input]),
    )


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x, with one weight per channel (dimension 1; dimension 0 of 1-d input)."""
    w = weight
    if weight.numel() != 1:
        channels = input.shape[1] if input.ndim >= 2 else (input.shape[0] if input.ndim == 1 else 1)
        if weight.ndim != 1 or weight.shape[0] != channels:
            raise RuntimeError(
                located(
                    f"prelu(input {input._type}, weight {weight._type}): mismatch of parameter numbers and input "
                    f"channel size: found {weight.numel()} parameters and {channels} channels"
                )
            )
        w = weight.reshape((-1,) + (1,) * (input.ndim - 2)) if input.ndim >= 2 else weight
    else:
        w = weight.reshape(())
    return relabel(apply("select", [input > 0, input, input * w]), "PreluKernelBackward0", [input, weight])


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    return relabel(apply("select", [input.abs() > lambd, input, 0.0]), "HardshrinkBackward0", [input])


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, else 0."""
    if lambd < 0:
        raise RuntimeError(located(f"lambda must be greater or equal to 0, but found to be {lambd}."))
    shrunk = input - apply("select", [input > 0, lambd, -lambd])
    return relabel(apply("select", [input.abs() > lambd, shrunk, 0.0]), "SoftshrinkBackward0", [input])
