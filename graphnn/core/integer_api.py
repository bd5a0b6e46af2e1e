"""torch.gcd / torch.lcm of integer tensors (and Tensor.gcd, lcm, gcd_, lcm_): NumPy's when the values are concrete;
inside graphnn.compile Euclid's algorithm as a fixed number of vectorized steps (remainder and select), enough for
any int64 operands. Both are non-negative, and gcd(0, 0) = lcm(x, 0) = 0, as in PyTorch."""

from __future__ import annotations

import numpy as np

from graphnn.core.dispatch import apply, located

# Euclid's worst case is consecutive Fibonacci numbers: F(93) > 2**63 > |int64|, so at most 92 remainder steps.
EUCLID_STEPS = 92


def _operands(name: str, input, other):
    from graphnn.core.tensor import Tensor, as_tensor

    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError(f"{name}(): arguments must be tensors, got {type(input).__name__} and {type(other).__name__}")
    a, b = as_tensor(input), as_tensor(other)
    for t in (a, b):
        if t.dtype_name != "int64":
            what = {"float32": "Float", "float64": "Double", "bool": "Bool"}.get(t.dtype_name, t.dtype_name)
            raise NotImplementedError(
                located(f"\"{name}_cpu\" not implemented for '{what}' ({name} of {a._type} and {b._type})")
            )
    try:
        np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise RuntimeError(
            located(f"{name}: the shapes {list(a.shape)} and {list(b.shape)} are not broadcastable")
        ) from None
    return a, b


def _concrete(*ts) -> bool:
    from graphnn.compiler import tracer

    return tracer.current() is None and all(t._data is not None for t in ts)


def _euclid(a, b):
    """gcd(|a|, |b|) by EUCLID_STEPS steps of (a, b) <- (b, a mod b), each a select where b is 0 (done)."""
    from graphnn.core.tensor import broadcast_to

    shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    a, b = broadcast_to(a.abs(), shape), broadcast_to(b.abs(), shape)
    for _ in range(EUCLID_STEPS):
        done = b == 0
        r = apply("fmod", [a, apply("select", [done, 1, b])])
        a, b = apply("select", [done, a, b]), apply("select", [done, b, r])
    return a


def gcd(input, other):
    """The greatest common divisor of each pair of elements (int64)."""
    from graphnn.core.tensor import Tensor

    a, b = _operands("gcd", input, other)
    if _concrete(a, b):
        return Tensor._wrap(np.asarray(np.gcd(a._data, b._data), dtype=np.int64))
    return _euclid(a, b)


def lcm(input, other):
    """The least common multiple of each pair of elements (int64; 0 when either is 0)."""
    from graphnn.core.tensor import Tensor

    a, b = _operands("lcm", input, other)
    if _concrete(a, b):
        return Tensor._wrap(np.asarray(np.lcm(a._data, b._data), dtype=np.int64))
    g = _euclid(a, b)
    zero = g == 0
    return apply("select", [zero, 0, (apply("div", [a, apply("select", [zero, 1, g])]) * b).abs()])


FUNCTIONS = {"gcd": gcd, "lcm": lcm}
INPLACE = ("gcd", "lcm")
