"""graphnn dtypes: float32, float64, int64, bool (with PyTorch's aliases)."""

from __future__ import annotations

import numpy as np

from graphnn.ir.types import canonical_dtype


class dtype:
    """A tensor element type; compares equal to its name and to the matching NumPy dtype."""

    _all: dict = {}

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"graphnn.{self.name}"

    def __eq__(self, other) -> bool:
        if isinstance(other, dtype) or (isinstance(other, str) and other in _HALF):
            return self.name == getattr(other, "name", other)
        try:
            return to_dtype(other) == self.name
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def is_floating_point(self) -> bool:
        return self.name in ("float32", "float64", "float16", "bfloat16")

    @property
    def itemsize(self) -> int:
        return 2 if self.name in _HALF else np.dtype(self.name).itemsize


float32 = dtype("float32")
float64 = dtype("float64")
int64 = dtype("int64")
bool_ = dtype("bool")
for _d in (float32, float64, int64, bool_):
    dtype._all[_d.name] = _d

# Half precision: accepted where PyTorch code passes it, computed as float32 (with a warning, see to_dtype).
float16 = dtype("float16")
bfloat16 = dtype("bfloat16")
_HALF = ("float16", "bfloat16", "half")


def _half(name: str) -> str:
    import warnings

    warnings.warn(
        f"graphnn has no {name}: tensors of dtype {name} are float32 (the same values, more precision)",
        UserWarning,
        stacklevel=4,
    )
    return "float32"


def to_dtype(x) -> str:
    """Name of the graphnn dtype for a graphnn dtype, NumPy dtype, string or Python type."""
    if isinstance(x, dtype):
        return _half(x.name) if x.name in _HALF else x.name
    if isinstance(x, str) and x in _HALF:
        return _half(x)
    if x is float:
        return "float32"
    if x is int:
        return "int64"
    if x is bool:
        return "bool"
    aliases = {"float": "float32", "double": "float64", "long": "int64", "int": "int64", "int32": "int64"}
    if isinstance(x, str) and x in aliases:
        return aliases[x]
    return canonical_dtype(np.dtype(x))


def dtype_of(name: str) -> dtype:
    return dtype._all[name]
