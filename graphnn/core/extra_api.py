"""More functions of torch.* / Tensor.*, composed of graphnn ops (so they differentiate and compile): isin, cov,
corrcoef, block_diag, combinations, chain_matmul, as_strided, scatter_reduce, renorm, bit shifts; and the dtype
queries result_type, promote_types, can_cast; asarray and frombuffer."""

from __future__ import annotations

import itertools

import numpy as np

from graphnn.core.dispatch import apply, located, relabel


def _t():
    from graphnn.core import tensor

    return tensor


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False):
    """Is each element of `elements` among `test_elements`? (bool, elements' shape)."""
    T = _t()
    e, s = T.as_tensor(elements), T.as_tensor(test_elements).reshape(-1)
    hit = (e.unsqueeze(-1) == s).any(-1) if s.numel() else T.zeros(tuple(e.shape), dtype="bool")
    return ~hit if invert else hit


def cov(input, *, correction: int = 1, fweights=None, aweights=None):
    """Covariance of the variables in input's rows (observations in columns), NumPy's/PyTorch's weighting."""
    T = _t()
    x = input if input.ndim == 2 else input.reshape(1, -1)
    if not x.dtype_name.startswith("float"):
        x = x.type_as_dtype("float32")
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = T.as_tensor(fweights).type_as_dtype(x.dtype_name)
    if aweights is not None:
        a = T.as_tensor(aweights).type_as_dtype(x.dtype_name)
        w = a if w is None else w * a
    if w is None:
        avg = x.mean(1, keepdim=True)
        norm = n - correction
        xc = x - avg
        c = xc.matmul(xc.t()) / norm
    else:
        wsum = w.sum()
        avg = (x * w).sum(1, keepdim=True) / wsum
        norm = wsum - correction * ((w * a).sum() / wsum if aweights is not None else 1)
        xc = x - avg
        c = (xc * w).matmul(xc.t()) / norm
    return c.reshape(()) if input.ndim < 2 else c


def corrcoef(input):
    """Pearson correlation coefficients of input's rows (clipped to [-1, 1], as PyTorch)."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal().sqrt()
    return (c / d.unsqueeze(1) / d.unsqueeze(0)).clamp(-1, 1)


def block_diag(*tensors):
    """The tensors (0-, 1- or 2-d) as the blocks of a block-diagonal matrix."""
    from graphnn.nn._vision import pad

    T = _t()
    mats = []
    for t in tensors:
        t = T.as_tensor(t)
        if t.ndim > 2:
            raise RuntimeError(
                located(
                    f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {len(mats)} has {t.ndim} dimensions"
                )
            )
        mats.append(t.reshape(1, 1) if t.ndim == 0 else t.reshape(1, -1) if t.ndim == 1 else t)
    if not mats:
        return T.zeros(0, 0)
    dt = max((m.dtype_name for m in mats), key=("bool", "int64", "float32", "float64").index)
    width = sum(m.shape[1] for m in mats)
    rows, col = [], 0
    for m in mats:
        rows.append(pad(m.type_as_dtype(dt), (col, width - col - m.shape[1])))
        col += m.shape[1]
    return T.cat(rows, 0)


def combinations(input, r: int = 2, with_replacement: bool = False):
    """The length-r combinations of a 1-d tensor's elements, as rows (itertools' order)."""
    if input.ndim != 1:
        raise RuntimeError(located(f"Expect a 1D vector, but got shape {list(input.shape)}"))
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    if idx.size == 0:
        return input[:0].reshape(0, r) if r else input[:0]
    return input[_t().tensor(idx)]


def chain_matmul(*matrices):
    """The product of the matrices (torch.chain_matmul, deprecated there in favour of linalg.multi_dot)."""
    out = matrices[0]
    for m in matrices[1:]:
        out = out.matmul(m)
    return out


def as_strided(input, size, stride, storage_offset: int = 0):
    """The view of input's (row-major) elements with the given sizes and strides, as a gather (a copy here)."""
    T = _t()
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(located(f"mismatch in length of strides and shape ({len(size)} vs {len(stride)})"))
    offset = int(storage_offset or 0)
    idx = np.full(size, offset, dtype=np.int64)
    for d, (n, st) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        idx = idx + (np.arange(n, dtype=np.int64) * st).reshape(shape)
    numel = input.numel()
    if idx.size and (idx.min() < 0 or idx.max() >= numel):
        raise RuntimeError(
            located(
                f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset} need "
                f"{int(idx.max()) + 1} elements, but the tensor has {numel}"
            )
        )
    flat = input.reshape(-1)
    return relabel(
        apply("take", [flat, T.tensor(idx.reshape(-1))], {"axis": 0}).reshape(size), "AsStridedBackward0", [input]
    )


_REDUCE_INIT = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "amax": -np.inf, "amin": np.inf}
_INT_INIT = {"sum": 0, "mean": 0, "prod": 1, "amax": int(np.iinfo(np.int64).min), "amin": int(np.iinfo(np.int64).max)}


def scatter_reduce(input, dim: int, index, src, reduce: str, *, include_self: bool = True):
    """input with src's elements reduced (sum, prod, mean, amax, amin) into the positions `index` selects along
    dim; include_self: input's own values take part."""
    from graphnn.core.tensor_ops import checked_index

    if reduce not in _REDUCE_INIT:
        raise RuntimeError(located(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}"))
    T = _t()
    d, index = checked_index(input, dim, index, "scatter_reduce")
    src = T.as_tensor(src).type_as_dtype(input.dtype_name)
    src = src[tuple(slice(0, s) for s in index.shape)] if tuple(src.shape) != tuple(index.shape) else src
    lead = tuple(slice(0, s) for s in index.shape[:d])
    tail = tuple(slice(0, s) for s in index.shape[d + 1 :])
    own = input[lead + (slice(None),) + tail]  # input over the index's extent in the other dimensions
    if input.dtype_name in ("float32", "float64") and reduce != "prod":
        new = _scattered(own, d, index, src, reduce, include_self)
    else:
        new = _dense_reduced(own, d, index, src, reduce, include_self)
    if tuple(own.shape) == tuple(input.shape):
        return relabel(new, "ScatterReduceBackward0", [input, src])
    out = input.clone()  # the index covers part of the other dimensions: the rest keeps input's values
    out[lead + (slice(None),) + tail] = new
    return relabel(out, "ScatterReduceBackward0", [input, src])


def _scattered(own, d: int, index, src, reduce: str, include_self: bool):
    """scatter_reduce of floats by scatter kernels (work and memory in proportion to the sizes, as PyTorch's):
    sums and means by scatter-adds; amax / amin by a max- or min-combining scatter of the values, their gradient
    split evenly among the elements equal to the result (ties), as PyTorch's."""
    T = _t()

    def added(v):
        return apply("take_along_grad", [v, index], {"axis": d, "shape": tuple(own.shape)})

    count = added(T.ones_like(src))
    touched = count > 0
    if reduce in ("sum", "mean"):
        acc = own + added(src) if include_self else added(src)
        if reduce == "mean":
            acc = acc / apply("maximum", [count + 1.0 if include_self else count, 1.0])
        return apply("select", [touched, acc, own])
    base = own.detach() if include_self else T.full_like(own, _REDUCE_INIT[reduce])
    mode = "max" if reduce == "amax" else "min"
    value = apply("scatter_extreme_along", [src.detach(), index, base], {"axis": d, "mode": mode})
    if not (src.requires_grad or own.requires_grad):
        return apply("select", [touched, value, own])

    def moving(v):  # v's value 0 with v's gradient (0 where v is not finite: v - v would be NaN there)
        v = apply("select", [v.detach().isfinite(), v, 0.0])
        return v - v.detach()

    tie = (src.detach() == apply("take_along", [value, index], {"axis": d})).type_as_dtype(src.dtype_name)
    own_tie = (own.detach() == value).type_as_dtype(own.dtype_name)
    # (an input element equal to the result counts among the ties also when it takes no part, as in PyTorch)
    ties, delta = added(tie) + own_tie, added(moving(src) * tie)
    if include_self:
        delta = delta + moving(own) * own_tie
    return apply("select", [touched, value + delta / apply("maximum", [ties, 1.0]), own])


def _dense_reduced(own, d: int, index, src, reduce: str, include_self: bool):
    """scatter_reduce through a mask of every (source, slot) pair: integers and products."""
    T = _t()
    n = own.shape[d]
    # hits[..., i, ..., j, ...]: does source position j (along dim) go to output position i?
    ids = T.arange(n).reshape((n,) + (1,) * (index.ndim - d))
    hits = index.unsqueeze(d) == ids  # index.shape with an output axis inserted at d: (..., n, m, ...)
    vals = src.unsqueeze(d)
    floats = own.dtype_name in ("float32", "float64")
    # the reduction's identity, of input's kind (so integers stay integers)
    init = _REDUCE_INIT[reduce] if floats else _INT_INIT[reduce]
    if reduce in ("sum", "mean"):
        acc = apply("select", [hits, vals, init]).sum(d + 1)
    elif reduce == "prod":
        acc = apply("select", [hits, vals, init]).prod(d + 1)
    else:
        acc = (
            apply("select", [hits, vals, init]).amax(d + 1)
            if reduce == "amax"
            else apply("select", [hits, vals, init]).amin(d + 1)
        )
    count = hits.type_as_dtype(own.dtype_name).sum(d + 1)
    touched = count > 0
    if include_self:
        if reduce == "sum":
            new = own + acc
        elif reduce == "prod":
            new = own * acc
        elif reduce == "mean":
            new = (own + acc) / (count + 1) if floats else (own + acc) // (count + 1)  # integers: floored
        else:
            new = apply("maximum" if reduce == "amax" else "minimum", [own, acc])
    elif reduce == "mean":
        new = acc / apply("maximum", [count, 1.0]) if floats else acc // apply("maximum", [count, 1])
    else:
        new = acc
    return apply("select", [touched, new, own])


def renorm(input, p, dim: int, maxnorm):
    """Each slice along dim rescaled to p-norm at most maxnorm (slices within it kept)."""
    d = dim % input.ndim
    others = tuple(i for i in range(input.ndim) if i != d)
    norm = (input.abs() ** p).sum(others, keepdim=True) ** (1.0 / p)
    factor = apply("select", [norm > maxnorm, maxnorm / (norm + 1e-7), 1.0])
    return input * factor


def _shifted(input, name: str):
    """The integer tensor a shift applies to (a bool tensor shifts as the integers 0 and 1)."""
    x = _t().as_tensor(input)
    x = x.long() if x.dtype_name == "bool" else x
    if x.dtype_name != "int64":
        raise RuntimeError(located(f"{name}: expected integer tensors, got {x.dtype_name}"))
    return x


def bitwise_left_shift(input, other):
    return _shifted(input, "bitwise_left_shift") * (2 ** _t().as_tensor(other))


def bitwise_right_shift(input, other):
    return _shifted(input, "bitwise_right_shift") // (2 ** _t().as_tensor(other))


_ORDER = ("bool", "int64", "float32", "float64")


def _dtype_of(x) -> str:
    from graphnn.core.dtypes import get_default_dtype, to_dtype

    T = _t()
    if isinstance(x, T.Tensor):
        return x.dtype_name
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int64"
    if isinstance(x, float):
        return get_default_dtype()
    return to_dtype(x)


def _kind(name: str) -> int:
    return 0 if name == "bool" else 1 if name == "int64" else 2


def result_type(tensor1, tensor2):
    """The dtype an arithmetic op on the two gives: tensors with dimensions decide over 0-d tensors, which decide
    over numbers, unless the lower-priority operand is of a higher kind (bool < integer < float)."""
    from graphnn.core.dtypes import dtype_of

    T = _t()

    def priority(x) -> int:
        return (2 if x.ndim else 1) if isinstance(x, T.Tensor) else 0

    a, b = _dtype_of(tensor1), _dtype_of(tensor2)
    if priority(tensor1) == priority(tensor2):
        return dtype_of(max(a, b, key=_ORDER.index))
    hi, lo = (a, b) if priority(tensor1) > priority(tensor2) else (b, a)
    return dtype_of(hi if _kind(hi) >= _kind(lo) else lo)


def promote_types(type1, type2):
    from graphnn.core.dtypes import dtype_of

    return dtype_of(max(_dtype_of(type1), _dtype_of(type2), key=_ORDER.index))


def can_cast(from_, to) -> bool:
    """Does PyTorch's casting rule allow it (never float to integer or bool, nor integer to bool)?"""
    return _kind(_dtype_of(to)) >= _kind(_dtype_of(from_))


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad: bool = False):
    T = _t()
    t = T.tensor(obj, dtype=dtype) if copy else T.as_tensor(obj, dtype=dtype)
    return t.requires_grad_(True) if requires_grad else t


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0, requires_grad: bool = False):
    """A 1-d tensor of the buffer's bytes read as dtype (a copy here; PyTorch shares the buffer)."""
    from graphnn.core.dtypes import to_dtype

    T = _t()
    a = np.frombuffer(buffer, dtype=np.dtype(to_dtype(dtype)), count=count, offset=offset)
    t = T.tensor(a.copy())
    return t.requires_grad_(True) if requires_grad else t


FUNCTIONS = {
    "isin": isin,
    "cov": cov,
    "corrcoef": corrcoef,
    "scatter_reduce": scatter_reduce,
    "renorm": renorm,
    "bitwise_left_shift": bitwise_left_shift,
    "bitwise_right_shift": bitwise_right_shift,
}
MODULE_ONLY = {
    "block_diag": block_diag,
    "combinations": combinations,
    "chain_matmul": chain_matmul,
    "as_strided": as_strided,
    "result_type": result_type,
    "promote_types": promote_types,
    "can_cast": can_cast,
    "asarray": asarray,
    "frombuffer": frombuffer,
}
