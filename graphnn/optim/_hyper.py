"""Hyper-parameters as runtime inputs of compiled steps: an update reads each number of a param group (lr, momentum,
betas, eps, weight_decay, ...) through `hyper`, which, when tracing, gives a float64 0-d graph input read from the
group at every call; the trace guards only the group's `structure` (which keys, which numbers are zero where that
decides the terms of an update, and every value that is not a number)."""

from __future__ import annotations

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.core.tensor import Tensor

_NUMBERS = (int, float, np.float64, np.float32, np.int64)


def hyper(param_groups: list, group: dict, key: str):
    """group[key]; when tracing, a number (or each number of a tuple such as betas) is a scalar graph input."""
    v = dict.__getitem__(group, key)  # (not a guarded read: see ParamGroup)
    tr = _tracer.current()
    if tr is None:
        return v
    i = next(n for n, g in enumerate(param_groups) if g is group)
    if isinstance(v, tuple):
        return tuple(
            tr.scalar_input((id(group), key, j), lambda j=j: group[key][j], f"group{i}.{key}{j}") if is_number(x) else x
            for j, x in enumerate(v)
        )
    if getattr(v, "_trace", None) is tr:  # (a value this step computed and set: group["lr"] = base * scale)
        return v
    if is_number(v):
        return tr.scalar_input((id(group), key), lambda: group[key], f"group{i}.{key}")
    if isinstance(v, Tensor) and v.ndim == 0 and v.is_floating_point():  # (lr=torch.tensor(0.01), set with fill_)
        return tr.scalar_input((id(group), key), lambda: float(dict.__getitem__(group, key)), f"group{i}.{key}")
    return v


def as_dtype(x, dtype: str):
    """A hyper-parameter (a Python number, or the float64 0-d tensor `hyper` gives when tracing) in the dtype of the
    tensors it meets: Python numbers stay numbers (an op converts them), tensors are cast, as PyTorch converts a
    Python float to the parameter's dtype."""
    return x.type_as_dtype(dtype) if isinstance(x, Tensor) and x.dtype_name != dtype else x


def is_number(v) -> bool:
    return type(v) in _NUMBERS or (isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)))


def structure(group: dict, zero_tested: tuple) -> tuple:
    """What a traced step assumes about a param group: that numbers stay numbers (those in zero_tested: zero or
    not), and every other value (by repr). Evaluated at every call of a compiled step: kept cheap."""
    out = []
    for k, v in group.items():
        if type(v) in _NUMBERS:
            out.append((k, v != 0) if k in zero_tested else k)
        elif k != "params":
            out.append((k, _value_key(k, v, zero_tested)))
    return tuple(out)


def _value_key(k: str, v, zero_tested: tuple):
    if is_number(v):
        return ("number", v != 0) if k in zero_tested else ("number",)
    if isinstance(v, tuple):
        return tuple(_value_key(k, x, zero_tested) for x in v)
    if v is None or type(v) in (bool, str):
        return v
    if isinstance(v, Tensor):  # (a tensor lr: read at every call, its value not part of the structure)
        return ("tensor", v.dtype_name, tuple(v.shape))
    return repr(v)
