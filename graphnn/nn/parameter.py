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
