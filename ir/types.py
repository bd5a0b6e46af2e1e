"""Tensor types of IR values: a shape and one of four dtypes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DTYPES = ("float32", "float64", "int64", "bool")
FLOAT_DTYPES = ("float32", "float64")
SHORT = {"float32": "f32", "float64": "f64", "int64": "i64", "bool": "bool"}


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


@dataclass(frozen=True)
class TensorType:
    """The static type of an IR value."""

    shape: tuple
    dtype: str

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.dtype not in DTYPES:
            raise TypeError(f"unknown dtype {self.dtype!r}")
        if any(s < 0 for s in self.shape):
            raise ValueError(f"negative dimension in shape {self.shape}")

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
