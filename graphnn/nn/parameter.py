"""Parameter: a tensor that a Module registers as learnable."""

from __future__ import annotations

import numpy as np

from graphnn.core.complex_tensor import ComplexTensor
from graphnn.core.tensor import Tensor


class Parameter(Tensor):
    def __new__(cls, data=None, requires_grad: bool = True):
        if isinstance(data, ComplexTensor):  # a complex parameter: its parts are the real parameter that trains
            return ComplexParameter(data, requires_grad)
        return super().__new__(cls)

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


class ComplexParameter(ComplexTensor):
    """`nn.Parameter(complex tensor)`: a complex tensor whose real view (shape (..., 2)) is a real Parameter. A
    module registers that real parameter (what parameters(), optimizers and gradients see: PyTorch's optimizers also
    step complex parameters through their real view) and gives the attribute back as complex; its state_dict entry
    is complex."""

    def __init__(self, data: ComplexTensor, requires_grad: bool = True):
        super().__init__(Parameter(data._ri.detach(), requires_grad))

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


def __getattr__(name: str):
    if name in ("UninitializedParameter", "UninitializedBuffer"):  # (torch.nn.parameter's lazy-module names)
        from graphnn.nn.modules import lazy

        return getattr(lazy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
