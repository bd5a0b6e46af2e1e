"""Rearranging elements (torch.flip, roll, movedim, tile, repeat_interleave, diag, outer, meshgrid, tensordot,
take_along_dim, ...): compositions of views, index_select, concatenation and products, so they are differentiable
and work eagerly and inside graphnn.compile."""

from __future__ import annotations

import numpy as np

from graphnn.core.tensor import Tensor, arange, as_tensor, cat, check_dim


def _dims(dims, ndim: int, what: str, t) -> list:
    dims = [dims] if isinstance(dims, int) else list(dims)
    return [check_dim(d, ndim, what, t) for d in dims]


def flip(input: Tensor, dims) -> Tensor:
    out = input
    for d in _dims(dims, input.ndim, "flip", input):
        n = input.shape[d]
        out = out.index_select(d, arange(n - 1, -1, -1))
    return out


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    if dims is None:
        return roll(input.reshape(-1), shifts, 0).reshape(tuple(input.shape))
    shifts = [shifts] if isinstance(shifts, int) else list(shifts)
    dims = _dims(dims, input.ndim, "roll", input)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims: {len(dims)}")
    out = input
    for s, d in zip(shifts, dims):
        n = input.shape[d]
        k = s % n if n else 0
        if k:
            out = cat([out.narrow(d, n - k, k), out.narrow(d, 0, n - k)], d)
    return out


def movedim(input: Tensor, source, destination) -> Tensor:
    src = _dims(source, input.ndim, "movedim", input)
    dst = _dims(destination, input.ndim, "movedim", input)
    if len(src) != len(dst):
        raise RuntimeError("movedim: Invalid source or destination dims: source and destination must have one length")
    rest = [d for d in range(input.ndim) if d not in src]
    order = [None] * input.ndim
    for s, d in zip(src, dst):
        order[d] = s
    it = iter(rest)
    return input.permute(*[o if o is not None else next(it) for o in order])


def swapaxes(input: Tensor, axis0: int, axis1: int) -> Tensor:
    return input.transpose(axis0, axis1)


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    d = check_dim(dim, input.ndim, "unflatten", input)
    shape = tuple(input.shape)
    return input.reshape(shape[:d] + tuple(sizes) + shape[d + 1 :])


def tile(input: Tensor, dims) -> Tensor:
    dims = tuple(dims)
    return input.repeat(*((1,) * (input.ndim - len(dims)) + dims))


def repeat_interleave(input: Tensor, repeats, dim=None, *, output_size=None) -> Tensor:
    """Each element (or slice along dim) repeated `repeats` times in place; repeats an int or a 1-D tensor."""
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else check_dim(dim, x.ndim, "repeat_interleave", x)
    if isinstance(repeats, Tensor) and repeats.numel() != 1:
        counts = np.asarray(repeats.tolist(), np.int64)  # (the output's size depends on the values)
        return x.index_select(d, as_tensor(np.repeat(np.arange(x.shape[d]), counts)))
    r = int(repeats.item() if isinstance(repeats, Tensor) else repeats)
    shape = tuple(x.shape)
    expanded = x.unsqueeze(d + 1).expand(*(shape[: d + 1] + (r,) + shape[d + 1 :]))
    return expanded.reshape(shape[:d] + (shape[d] * r,) + shape[d + 1 :])


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input as the diagonal of a square matrix; the diagonal of a 2-D input."""
    if input.ndim == 1:
        n, k = input.shape[0], abs(diagonal)
        idx = np.arange(n)
        rows, cols = (idx, idx + k) if diagonal >= 0 else (idx + k, idx)
        flat = (rows * (n + k) + cols).astype(np.int64)
        from graphnn.core.tensor_ops import scatter_add
        from graphnn.core.tensor import zeros

        out = scatter_add(zeros((n + k) * (n + k), dtype=input.dtype), 0, as_tensor(flat), input)
        return out.reshape(n + k, n + k)
    if input.ndim == 2:
        return diagonal_of(input, diagonal)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the (dim1, dim2) planes, as the last dimension."""
    d1, d2 = _dims((dim1, dim2), input.ndim, "diagonal", input)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rest = [d for d in range(input.ndim) if d not in (d1, d2)]
    return diagonal_of(input.permute(*(rest + [d1, d2])), offset)


def diagonal_of(input: Tensor, offset: int = 0) -> Tensor:
    """The diagonal of the last two dimensions."""
    rows, cols = input.shape[-2], input.shape[-1]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    n = max(0, min(rows - r0, cols - c0))
    flat = input.reshape(*tuple(input.shape[:-2]), rows * cols)
    idx = as_tensor(((np.arange(n) + r0) * cols + np.arange(n) + c0).astype(np.int64))
    return flat.index_select(flat.ndim - 1, idx)


def trace(input: Tensor) -> Tensor:
    return diagonal_of(input).sum()


def nonzero(input: Tensor, *, as_tuple: bool = False):
    """Indices of the nonzero elements (int64 (count, ndim), or one 1-D tensor per dimension with as_tuple). Their
    number depends on the values, so this needs concrete values (eager code)."""
    idx = np.nonzero(np.asarray(input.numpy()))
    if as_tuple:
        return tuple(as_tensor(i.astype(np.int64)) for i in idx)
    return as_tensor(np.stack(idx, 1).astype(np.int64).reshape(-1, input.ndim))


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    return input.unsqueeze(1) * vec2.unsqueeze(0)


def meshgrid(*tensors, indexing: str = "ij") -> tuple:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be one of 'xy' or 'ij', but got {indexing}")
    ts = list(tensors)
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t.numel() for t in ts)
    out = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = shape[i]
        out.append(t.reshape(*view).expand(*shape))
    if swap:  # (the grids of the swapped inputs are already laid out as "xy" asks)
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    if isinstance(dims, int):
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([x] if isinstance(x, int) else list(x) for x in dims)
    da, db = _dims(da, a.ndim, "tensordot", a), _dims(db, b.ndim, "tensordot", b)
    fa, fb = [d for d in range(a.ndim) if d not in da], [d for d in range(b.ndim) if d not in db]
    k = int(np.prod([a.shape[d] for d in da], dtype=np.int64))
    am = a.permute(*(fa + da)).reshape(-1, k)
    bm = b.permute(*(db + fb)).reshape(k, -1)
    return am.matmul(bm).reshape(*([a.shape[d] for d in fa] + [b.shape[d] for d in fb]))


def take_along_dim(input: Tensor, indices: Tensor, dim=None) -> Tensor:
    if dim is None:
        return input.reshape(-1).gather(0, indices.reshape(-1))
    d = check_dim(dim, input.ndim, "take_along_dim", input)
    shape = list(np.broadcast_shapes(tuple(input.shape), tuple(indices.shape)))
    shape_in, shape_idx = list(shape), list(shape)
    shape_in[d], shape_idx[d] = input.shape[d], indices.shape[d]
    return input.expand(*shape_in).gather(d, indices.expand(*shape_idx))


METHODS = {"flip": flip, "roll": roll, "movedim": movedim, "moveaxis": movedim, "swapaxes": swapaxes}
METHODS |= {"swapdims": swapaxes, "unflatten": unflatten, "tile": tile, "repeat_interleave": repeat_interleave}
METHODS |= {"nonzero": nonzero, "argwhere": argwhere}
METHODS |= {"diag": diag, "diagonal": diagonal, "trace": trace, "outer": outer, "take_along_dim": take_along_dim}
FUNCTIONS = METHODS | {"meshgrid": meshgrid, "tensordot": tensordot, "ger": outer}
