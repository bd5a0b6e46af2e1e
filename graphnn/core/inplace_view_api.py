"""In-place shape changes (Tensor.squeeze_, unsqueeze_, t_, transpose_, swapdims_ / swapaxes_, as_strided_): the
tensor is rebound to its reshaped or permuted view. Eagerly its array becomes a NumPy view of the same memory (the
storage stays shared, as PyTorch changes only sizes and strides) and, with autograd, its grad_fn is the view op's;
inside graphnn.compile its traced value is renamed. Views taken of the tensor before the change do not follow it
(they are refused where that would be silently wrong, as after other in-place rebindings)."""

from __future__ import annotations

import numpy as np

from graphnn.core.dispatch import located


def _t():
    from graphnn.core import tensor

    return tensor


def _inverse(before: tuple, perm):
    """put-back of a view step: a permutation is undone by its inverse, anything else by a reshape."""
    T = _t()
    if perm is not None:
        inv = tuple(int(i) for i in np.argsort(perm))
        return lambda v: T.transpose(v, inv, "PermuteBackward0")
    return lambda v: T.reshape(v, before, "ViewBackward0")


def _rebind_view(self, name: str, compute, perm=None):
    """self becomes compute(self), a view of it (perm: the axes permutation when it is one, else a reshape)."""
    T = _t()
    tr = T._tracer.current()
    grad = T._grad_enabled()
    view = self._base is not None and not self._alias
    if grad and self.requires_grad and self.grad_fn is None and not self._alias:
        raise RuntimeError(
            located(f"{name}: a leaf Variable that requires grad is being used in an in-place operation.")
        )
    if grad and view and self._base.requires_grad and self._base.grad_fn is None:
        raise RuntimeError(
            located(f"{name}: a view of a leaf Variable that requires grad is being used in an in-place operation.")
        )
    if tr is not None and (self._trace is not tr or id(self) in tr.arg_index or self._grad_of is not None):
        raise T.TraceError(
            located(
                f"{name} of {self._type} changes the shape of a tensor that lives outside graphnn.compile (an argument, "
                "a parameter or a .grad) in place, which a compiled function cannot do; use the out-of-place "
                f"{name[:-1]}() and return the result"
            )
        )
    before = tuple(self.shape)
    result = compute(self)
    if view and self._view_fns is not None:  # the view of the base, one step further
        get, put = self._view_fns
        back = _inverse(before, perm)
        self._view_fns = (lambda s: compute(get(s)), lambda s, v: put(s, back(v)))
    if result.requires_grad:
        self._value, self.grad_fn, self._requires_grad = result._value, result.grad_fn, True
    if tr is not None:
        if not result.requires_grad:
            self._value = result._value
        key = id(self._base) if view else id(self)
        tr.rebinds[key] = tr.rebinds.get(key, 0) + 1  # views taken before (of the old shape) are stale
        if view:
            self._view_gen = tr.rebinds[key]
        return self
    self._data = result._data  # a NumPy view of the same memory
    self._bump(rebound=True)  # a new version, as PyTorch's (values recorded before are not used by backward)
    vc = self._vc
    if vc is not None:
        if result.requires_grad:
            self._value.meta["ver"] = (vc, vc[0])  # the new value is current
        if view:
            self._view_gen = vc[1]
    return self


def squeeze_(self, dim=None):
    return _rebind_view(self, "squeeze_", lambda s: s.squeeze(dim))


def unsqueeze_(self, dim: int):
    return _rebind_view(self, "unsqueeze_", lambda s: s.unsqueeze(dim))


def t_(self):
    if self.ndim > 2:
        raise RuntimeError(located(f"t_() expects a tensor with <= 2 dimensions, but self is {self.ndim}D"))
    return _rebind_view(self, "t_", lambda s: s.t(), (1, 0) if self.ndim == 2 else None)


def transpose_(self, dim0: int, dim1: int):
    T = _t()
    a, b = T.check_dim(dim0, self.ndim, "transpose_", self), T.check_dim(dim1, self.ndim, "transpose_", self)
    perm = list(range(self.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return _rebind_view(self, "transpose_", lambda s: s.transpose(a, b), tuple(perm))


def as_strided_(self, size, stride, storage_offset: int = 0):
    """The tensor becomes as_strided(self, size, stride, storage_offset) of its own (row-major) elements: eagerly a
    NumPy strided view of its memory (a tensor that is not a view, contiguous); the gradient is as_strided's."""
    from graphnn.core.extra_api import as_strided

    T = _t()
    if self._base is not None and not self._alias:
        raise RuntimeError(located(f"as_strided_: not supported on a view ({self._type}); call it on the base"))
    data = self._data
    if data is not None and not data.flags.c_contiguous:
        raise RuntimeError(located(f"as_strided_: {self._type} is not contiguous; call .contiguous() first"))
    out = _rebind_view(self, "as_strided_", lambda s: as_strided(s, size, stride, storage_offset))
    if data is not None and T._tracer.current() is None:
        item = data.itemsize
        flat = data.reshape(-1)[int(storage_offset or 0) :]
        strided = np.lib.stride_tricks.as_strided(flat, tuple(out.shape), tuple(int(s) * item for s in stride))
        out._data = strided
    return out


METHODS = {
    "squeeze_": squeeze_,
    "unsqueeze_": unsqueeze_,
    "t_": t_,
    "transpose_": transpose_,
    "swapdims_": transpose_,
    "swapaxes_": transpose_,
    "as_strided_": as_strided_,
}
