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
        if isinstance(other, dtype) or (isinstance(other, str) and (other in _HALF or other in _NARROW)):
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
    def is_complex(self) -> bool:
        return self.name in ("complex64", "complex128")

    @property
    def is_signed(self) -> bool:
        return self.name != "uint8" and self.name != "bool"

    @property
    def itemsize(self) -> int:
        return 2 if self.name in _HALF else np.dtype(self.name).itemsize


float32 = dtype("float32")
float64 = dtype("float64")
int64 = dtype("int64")
bool_ = dtype("bool")
for _d in (float32, float64, int64, bool_):
    dtype._all[_d.name] = _d

# Complex: tensors of these are ComplexTensors (core/complex_tensor.py: real and imaginary parts as a real tensor).
complex64 = dtype("complex64")
complex128 = dtype("complex128")

# Half precision: accepted where PyTorch code passes it, computed as float32 (with a warning, see to_dtype).
float16 = dtype("float16")
bfloat16 = dtype("bfloat16")
_HALF = ("float16", "bfloat16", "half")


# Narrow integers: accepted where PyTorch code passes them, computed as int64 (values kept, no wrap-around).
int32 = dtype("int32")
int16 = dtype("int16")
int8 = dtype("int8")
uint8 = dtype("uint8")
_NARROW = ("int32", "int16", "int8", "uint8")


_STAND_IN = {"int64": "the same values, no wrap-around", "float32": "the same values, more precision"}


def _stand_in(name: str) -> str:
    """The dtype computing a dtype graphnn lacks (narrow integers: int64, half precision: float32), with a warning."""
    import warnings

    actual = "int64" if name in _NARROW else "float32"
    warnings.warn(
        f"graphnn has no {name}: tensors of dtype {name} are {actual} ({_STAND_IN[actual]})", UserWarning, stacklevel=4
    )
    return actual


def to_dtype(x) -> str:
    """Name of the graphnn dtype for a graphnn dtype, NumPy dtype, string or Python type."""
    if isinstance(x, dtype):
        return _stand_in(x.name) if x.name in _HALF or x.name in _NARROW else x.name
    if isinstance(x, str) and x in _HALF:
        return _stand_in("float16" if x == "half" else x)
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


_DEFAULT = ["float32"]


def get_default_dtype() -> str:
    """The name of the default floating dtype (float32 unless set_default_dtype changed it)."""
    return _DEFAULT[0]


def set_default_dtype(d) -> None:
    """The dtype of float tensors made without a dtype (factories, float data, int tensors made floating)."""
    name = to_dtype(d)
    if name not in ("float32", "float64"):
        raise TypeError(f"only floating-point types are supported as the default type, got {name}")
    if _DEFAULT[0] != name:
        from graphnn.compiler import tracer as _tracer

        _DEFAULT[0] = name
        _tracer.state_changed()  # (compiled code traced with the old default checks its guard again)


def dtype_of(name: str) -> dtype:
    return dtype._all[name]


class finfo:
    """Limits of a floating dtype (torch.finfo): bits, eps, max, min, tiny (smallest_normal), resolution."""

    def __init__(self, type=None):  # noqa: A002
        name = get_default_dtype() if type is None else getattr(type, "name", None) or to_dtype(type)
        if name in _HALF:
            name = name if name != "half" else "float16"
            info = np.finfo(np.float16) if name == "float16" else None
        else:
            if name not in ("float32", "float64"):
                raise TypeError(f"torch.finfo() requires a floating point input type, got {name}")
            info = np.finfo(name)
        if info is None:  # bfloat16: float32's exponent range, 8 bits of significand
            self.bits, self.eps, self.max, self.tiny, self.resolution = (
                16,
                2.0**-7,
                3.3895313892515355e38,
                2.0**-126,
                0.01,
            )
        else:
            self.bits, self.eps, self.max = int(info.bits), float(info.eps), float(info.max)
            self.tiny, self.resolution = float(info.tiny), 10.0 ** -int(info.precision)  # (as PyTorch: exact)
        self.min, self.smallest_normal, self.dtype = -self.max, self.tiny, name

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
            f"smallest_normal={self.tiny:g}, tiny={self.tiny:g}, dtype={self.dtype})"
        )


class iinfo:
    """Limits of an integer dtype (torch.iinfo): bits, min, max."""

    def __init__(self, type):  # noqa: A002
        name = getattr(type, "name", None) or to_dtype(type)
        if name not in ("int64", "int32", "int16", "int8", "uint8"):
            raise TypeError(f"torch.iinfo() requires an integer input type, got {name}")
        info = np.iinfo(name)
        self.bits, self.min, self.max, self.dtype = int(info.bits), int(info.min), int(info.max), name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
