"""Autocast regions: accepted, recorded (`is_autocast_enabled`), computed in float32."""

from __future__ import annotations

import copy
import functools
import threading
import warnings

from graphnn.core.device import device as _device
from graphnn.core.dtypes import bfloat16, dtype, float16

_LOWER = (bfloat16, float16)  # the dtypes PyTorch autocasts to on the CPU
_DEFAULT = {"cpu": bfloat16, "cuda": float16}
_state = threading.local()
_warned = [False]


def _regions() -> dict:
    """device type -> stack of (enabled, dtype) of the regions this thread is in."""
    if not hasattr(_state, "regions"):
        _state.regions = {}
    return _state.regions


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """Whether code runs in an enabled autocast region for device_type (PyTorch's default: 'cuda')."""
    stack = _regions().get(device_type)
    return bool(stack) and stack[-1][0]


def get_autocast_dtype(device_type: str) -> dtype:
    """The dtype the innermost region for device_type asked for (its default outside any region)."""
    stack = _regions().get(device_type)
    return stack[-1][1] if stack else _DEFAULT.get(device_type, float16)


def _usable(device_type: str, fast_dtype: dtype) -> bool:
    """Whether a region may be enabled; a region PyTorch would disable warns as PyTorch's does."""
    if device_type != "cpu":
        name = "CUDA" if device_type == "cuda" else device_type
        warnings.warn(f"{name} is not available (graphnn computes on the CPU). Disabling autocast.", stacklevel=4)
        return False
    if fast_dtype not in _LOWER:
        warnings.warn(
            "In CPU autocast, but the target dtype is not supported. Disabling autocast.\n"
            "CPU Autocast only supports dtypes of graphnn.bfloat16, graphnn.float16 currently.",
            stacklevel=4,
        )
        return False
    return True


class autocast:
    """`torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)`: a context manager and a
    decorator. graphnn has no reduced-precision arithmetic, so ops in the region compute in float32, as outside it
    (the first enabled region warns once); `is_autocast_enabled` and `get_autocast_dtype` report the region."""

    def __init__(self, device_type: str, dtype: dtype | None = None, enabled: bool = True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        _device(device_type)  # an unknown device type is PyTorch's RuntimeError
        self.device = device_type
        self.fast_dtype = _DEFAULT.get(device_type, float16) if dtype is None else dtype
        self._enabled = bool(enabled) and _usable(device_type, self.fast_dtype)

    def __enter__(self):
        if self._enabled and not _warned[0]:
            _warned[0] = True
            warnings.warn(
                f"graphnn computes in float32: autocast to {self.fast_dtype.name} is accepted and its region "
                "computes in float32 (the same results with more precision)",
                UserWarning,
                stacklevel=2,
            )
        _regions().setdefault(self.device, []).append((self._enabled, self.fast_dtype))
        return self

    def __exit__(self, *exc) -> bool:
        _regions()[self.device].pop()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with copy.copy(self):  # one region per call (recursive and concurrent calls nest)
                return fn(*args, **kwargs)

        return wrapper
