"""Tensor.storage() / untyped_storage(): a small read-only description of the memory a tensor's elements live in
(torch.TypedStorage / torch.UntypedStorage): size(), nbytes(), data_ptr(), element_size(), tolist(), len().

graphnn tensors own NumPy arrays. A view made by a graphnn view op (x[0], x.t(), x.view(...)) shares its base's
array, and its storage is that whole array, as in PyTorch; any other tensor's storage is its own elements (row-major).
Writing through a storage object is not supported (use the tensor's in-place ops)."""

from __future__ import annotations

import numpy as np


def _memory(t) -> np.ndarray:
    """The contiguous array holding t's elements: the NumPy array its data is a view of, when that is one, else its
    own elements."""
    a = t._concrete("storage()")
    root = a
    while True:  # the array a views (through NumPy's stride tricks too, whose views hold it via a plain object)
        b = root.base
        b = b if isinstance(b, np.ndarray) else getattr(b, "base", None)
        if not isinstance(b, np.ndarray):
            break
        root = b
    if root.dtype == a.dtype and root.flags.c_contiguous and np.may_share_memory(root, a):
        return root.reshape(-1)
    return np.ascontiguousarray(a).reshape(-1)


class UntypedStorage:
    """The storage's bytes (size() and len() count bytes)."""

    def __init__(self, memory: np.ndarray):
        self._memory = memory

    def size(self) -> int:
        return int(self._memory.nbytes)

    __len__ = size

    def nbytes(self) -> int:
        return int(self._memory.nbytes)

    def element_size(self) -> int:
        return 1

    def data_ptr(self) -> int:
        return int(self._memory.__array_interface__["data"][0]) if self._memory.size else 0

    def tolist(self) -> list:
        return np.frombuffer(self._memory.tobytes(), dtype=np.uint8).tolist()

    @property
    def device(self):
        from graphnn.core.device import device

        return device("cpu")

    def __repr__(self) -> str:
        return f"graphnn.UntypedStorage(device=cpu) of size {self.size()}"


class TypedStorage(UntypedStorage):
    """The storage's elements, of the tensor's dtype (size() and len() count elements)."""

    def size(self) -> int:
        return int(self._memory.size)

    __len__ = size

    def element_size(self) -> int:
        return int(self._memory.itemsize)

    @property
    def dtype(self):
        from graphnn.core.tensor import _dtype_obj

        return _dtype_obj(self._memory.dtype.name if self._memory.dtype != np.bool_ else "bool")

    def tolist(self) -> list:
        return self._memory.tolist()

    def __repr__(self) -> str:
        return f"graphnn.TypedStorage(dtype={self.dtype}, device=cpu) of size {self.size()}"


def storage(self) -> TypedStorage:
    return TypedStorage(_memory(self))


def untyped_storage(self) -> UntypedStorage:
    return UntypedStorage(_memory(self))


METHODS = {"storage": storage, "untyped_storage": untyped_storage}
FUNCTIONS = {"TypedStorage": TypedStorage, "UntypedStorage": UntypedStorage}
