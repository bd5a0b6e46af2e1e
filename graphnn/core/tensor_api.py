"""Tensor attributes PyTorch programs read (strides, storage offset, sizes in bytes, data pointer, ...), and the
installation of the shape, linear-algebra and index functions as graphnn.<name> and Tensor.<name>."""

from __future__ import annotations

import numpy as np

from graphnn.core import index_api, linalg_api, linalg_dense_api, linalg_lu_api, numeric_api, shape_api
from graphnn.core.hooks import register_hook, register_post_accumulate_grad_hook


def _t():
    from graphnn.core import tensor

    return tensor


# -- attributes --------------------------------------------------------------------------------------------------
def stride(self, dim=None):
    """Elements to step over per index of each dimension: the NumPy array's strides eagerly (views: as PyTorch's);
    row-major inside graphnn.compile."""
    from graphnn.ir.views import row_major

    shape = tuple(self.shape)
    if self._data is not None:
        item = self._data.itemsize
        st = tuple(0 if n == 1 and s == 0 else s // item for s, n in zip(self._data.strides, shape))
        st = tuple(r if n == 1 else s for s, r, n in zip(st, row_major(shape), shape))
    else:
        st = row_major(shape)
    return st if dim is None else st[_t().check_dim(int(dim), self.ndim, "stride", self)]


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def data_ptr(self) -> int:
    """The address of the first element (a view's lies inside its base's storage)."""
    return _address(self._concrete("data_ptr()"))


def storage_offset(self) -> int:
    """Elements between the storage's start and this tensor's first element (0 unless a view; inside
    graphnn.compile every tensor counts as its own storage)."""
    if self._data is None or self._data.size == 0:
        return 0
    return (_address(self._data) - _address(_root(self._data))) // self._data.itemsize


def itemsize(self) -> int:
    return self.element_size()


def nbytes(self) -> int:
    return self.numel() * self.element_size()


def ndimension(self) -> int:
    return self.ndim


def is_same_size(self, other) -> bool:
    return tuple(self.shape) == tuple(other.shape)


def is_signed(self) -> bool:
    return self.dtype_name != "bool"


def new(self, *args, **kwargs):
    """A new tensor of this one's dtype: new(sizes...) uninitialized (zeros), new(data) from data, new() empty."""
    T = _t()
    dt = self.dtype_name
    if kwargs.get("device") is not None:
        from graphnn.core.device import check_device

        check_device(kwargs["device"], "new")
    if not args:
        return T.empty(0, dtype=dt)
    if all(isinstance(a, (int, np.integer)) for a in args) or (len(args) == 1 and isinstance(args[0], T.Size)):
        return T.empty(*args, dtype=dt)
    if len(args) == 1:
        return T.tensor(args[0]._data if isinstance(args[0], T.Tensor) else args[0], dtype=dt)
    raise TypeError(f"new() takes sizes or data, got {args!r}")


# -- installation ------------------------------------------------------------------------------------------------
# graphnn.<name> and Tensor.<name> (the same function, the tensor first)
BOTH = {
    **{
        n: getattr(shape_api, n)
        for n in (
            "flip",
            "fliplr",
            "flipud",
            "roll",
            "rot90",
            "tile",
            "repeat_interleave",
            "movedim",
            "swapaxes",
            "broadcast_to",
            "tensor_split",
            "hsplit",
            "vsplit",
            "dsplit",
            "unflatten",
        )
    },
    "moveaxis": shape_api.movedim,
    "swapdims": shape_api.swapdims,
    **{
        n: getattr(linalg_api, n)
        for n in (
            "diag",
            "diagonal",
            "diag_embed",
            "diagflat",
            "trace",
            "outer",
            "inner",
            "dot",
            "vdot",
            "mv",
            "addmm",
            "addmv",
            "addbmm",
            "addr",
            "kron",
            "cross",
        )
    },
    "ger": linalg_api.outer,
    **{
        n: getattr(linalg_dense_api, n)
        for n in ("det", "logdet", "slogdet", "pinverse", "cholesky_solve", "cholesky_inverse", "triangular_solve")
    },
    "matrix_power": linalg_dense_api.matrix_power,
    "inverse": linalg_dense_api.inv,
    "cholesky": linalg_dense_api.torch_cholesky,
    "svd": linalg_dense_api.torch_svd,
    "qr": linalg_dense_api.torch_qr,
    **{
        n: getattr(index_api, n)
        for n in (
            "take",
            "take_along_dim",
            "index_add",
            "index_copy",
            "index_fill",
            "masked_select",
            "nonzero",
            "argwhere",
            "unique",
            "unique_consecutive",
            "histc",
            "bincount",
        )
    },
    "is_same_size": is_same_size,
    "is_signed": is_signed,
    **numeric_api.BOTH,
    "lu": linalg_lu_api.torch_lu,
    "lu_solve": linalg_lu_api.torch_lu_solve,
}
# graphnn.<name> only
FUNCTIONS = {
    **{
        n: getattr(shape_api, n)
        for n in (
            "broadcast_tensors",
            "broadcast_shapes",
            "hstack",
            "vstack",
            "dstack",
            "column_stack",
            "atleast_1d",
            "atleast_2d",
            "atleast_3d",
            "meshgrid",
            "cartesian_prod",
        )
    },
    "row_stack": shape_api.vstack,
    **{n: getattr(linalg_api, n) for n in ("tril_indices", "triu_indices", "tensordot", "cdist", "diff")},
    **{n: getattr(index_api, n) for n in ("searchsorted", "bucketize")},
    "masked_scatter": index_api.masked_scatter,
    **numeric_api.FUNCTIONS,
    "lu_unpack": linalg_lu_api.lu_unpack,
}
# Tensor.<name> only
METHODS = {
    "reshape_as": shape_api.reshape_as,
    "diff": linalg_api.diff,
    "stride": stride,
    "storage_offset": storage_offset,
    "data_ptr": data_ptr,
    "ndimension": ndimension,
    "new": new,
    "register_hook": register_hook,
    "register_post_accumulate_grad_hook": register_post_accumulate_grad_hook,
    "unfold": shape_api.unfold_windows,
    "fill_diagonal_": index_api.fill_diagonal_,
    "index_put_": index_api.index_put_,
    "index_put": index_api.index_put,
    "masked_scatter": index_api.masked_scatter,
    "masked_scatter_": index_api.masked_scatter_,
    "nbytes": property(nbytes),
    "itemsize": property(itemsize),
}
INPLACE = ("index_add", "index_copy", "index_fill", "addmm", "addmv", "addbmm", "addr", *numeric_api.INPLACE)
