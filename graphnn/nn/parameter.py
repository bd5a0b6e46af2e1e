"""Parameter: a tensor that a Module registers as learnable."""

from __future__ import annotations

import numpy as np

from graphnn.core.tensor import Tensor


class Parameter(Tensor):
    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            arr = np.zeros((0,), np.float32)
        elif isinstance(data, Tensor):
            arr = data._concrete("Parameter()")
        else:
            arr = np.asarray(data)
        self._init(np.asarray(arr, order="C"), False)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        """A copy without .grad, as PyTorch's Parameter.__deepcopy__ (a plain tensor's copy keeps it)."""
        grad = self.__dict__.get("_grad")
        memo[id(grad)] = None  # (the copy's .grad: None)
        try:
            return super().__deepcopy__(memo)
        finally:
            del memo[id(grad)]


class _BufferMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and getattr(obj, "_is_buffer", False)


class Buffer(metaclass=_BufferMeta):
    """`nn.Buffer(tensor, persistent=True)`: the tensor (detached, sharing its data), marked so that assigning it to
    a Module attribute registers it as a buffer (in the state_dict unless persistent=False)."""

    def __new__(cls, data=None, *, persistent: bool = True):
        if data is None:
            data = Tensor._wrap(np.zeros((0,), np.float32))
        t = data.detach().requires_grad_(data.requires_grad)
        t._is_buffer, t.persistent = True, persistent
        return t


def __getattr__(name: str):
    if name in ("UninitializedParameter", "UninitializedBuffer"):  # (torch.nn.parameter's lazy-module names)
        from graphnn.nn.modules import lazy

        return getattr(lazy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
