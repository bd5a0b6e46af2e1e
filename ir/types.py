"""Tensor types of IR values: a shape and one of four dtypes."""

from __future__ import annotations

import numpy as np

from .symbolic import Sym

DTYPES = ("float32", "float64", "int64", "bool")
FLOAT_DTYPES = ("float32", "float64")
SHORT = {"float32": "f32", "float64": "f64", "int64": "i64", "bool": "bool"}


_NP_NAMES = {np.dtype(n): n for n in DTYPES}


def dtype_name(dtype: np.dtype) -> str:
    """`dtype.name` of a NumPy dtype, by dict lookup for the four IR dtypes (NumPy computes the name in Python)."""
    return _NP_NAMES.get(dtype) or dtype.name


def canonical_dtype(dtype) -> str:
    """Map a NumPy dtype, a dtype name or a graphnn dtype to one of DTYPES."""
    name = getattr(dtype, "name", None) or str(dtype)
    name = str(np.dtype(name).name) if name not in DTYPES else name
    if name not in DTYPES:
        if name.startswith("float"):
            return "float32"
        if name.startswith(("int", "uint")):
            return "int64"
        raise TypeError(f"graphnn does not support dtype {name!r}; use one of {', '.join(DTYPES)}")
    return name


class TensorType:
    """The static type of an IR value: an immutable (shape, dtype) pair.

    Instances are interned: building the same type twice returns the same object, so the hot paths of eager
    execution (one type per operand and result of every op) pay a dict lookup, not a validation."""

    __slots__ = ("shape", "dtype", "_hash")
    _interned: dict = {}

    def __new__(cls, shape, dtype: str) -> "TensorType":
        key = (shape, dtype) if type(shape) is tuple else None
        if key is not None:
            t = cls._interned.get(key)
            if t is not None:
                return t
        shape = tuple(s if isinstance(s, Sym) else int(s) for s in shape)  # Sym: a dynamic size (ir/symbolic.py)
        if dtype not in DTYPES:
            raise TypeError(f"unknown dtype {dtype!r}")
        if any(type(s) is int and s < 0 for s in shape):
            raise ValueError(f"negative dimension in shape {shape}")
        t = object.__new__(cls)
        object.__setattr__(t, "shape", shape)
        object.__setattr__(t, "dtype", dtype)
        object.__setattr__(t, "_hash", hash((shape, dtype)))
        if len(cls._interned) > 200_000:  # bounded: a program that makes ever new shapes does not grow it forever
            cls._interned.clear()
        if all(type(s) is int for s in shape):  # (a symbolic size also carries its representative N: not shared)
            if key is not None and all(type(s) is int for s in key[0]):
                cls._interned[key] = t
            cls._interned[(shape, dtype)] = t
        return t

    def __setattr__(self, name, value):
        raise AttributeError(f"TensorType is immutable (cannot set {name!r})")

    def __reduce__(self):
        return (TensorType, (self.shape, self.dtype))

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        return isinstance(other, TensorType) and self.shape == other.shape and self.dtype == other.dtype

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"TensorType(shape={self.shape!r}, dtype={self.dtype!r})"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def __str__(self) -> str:
        return f"{SHORT[self.dtype]}[{','.join(map(str, self.shape))}]"


def broadcast_shapes(*shapes: tuple) -> tuple:
    """NumPy broadcasting of shapes; raises ValueError naming the shapes when they do not fit."""
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        dims = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ValueError("shapes " + ", ".join(str(tuple(s)) for s in shapes) + " cannot be broadcast together")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def promote(*dtypes: str) -> str:
    """Result dtype of an arithmetic op on the given dtypes (float64 > float32 > int64 > bool)."""
    order = ["bool", "int64", "float32", "float64"]
    return max(dtypes, key=order.index)
