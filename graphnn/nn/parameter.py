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
