"""Linear-algebra helpers with PyTorch's names, composed of primitives: diagonals (a strided slice of the two
dimensions merged, and its scatter `slice_grad` to build one), trace, tril/triu_indices, products (outer, inner,
dot, mv, kron, tensordot, the add*-forms), cdist and diff."""

from __future__ import annotations

import math
import numbers

import numpy as np

from graphnn.core.dispatch import apply, located, relabel

FLOATS = ("float32", "float64")


def _t():
    from graphnn.core import tensor

    return tensor


def _dim(x, dim: int, what: str, ndim: int | None = None) -> int:
    return _t().check_dim(int(dim), x.ndim if ndim is None else ndim, what, x)


def _diag_len(n: int, m: int, offset: int) -> int:
    return max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m))


# -- diagonals ---------------------------------------------------------------------------------------------------
def diagonal(x, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """The offset-th diagonal of the planes of dim1 and dim2, as the last dimension (others keep their order)."""
    if x.ndim < 2:
        raise RuntimeError(located(f"diagonal({x._type}): input must have at least 2 dimensions"))
    a, b = _dim(x, dim1, "diagonal"), _dim(x, dim2, "diagonal")
    if a == b:
        raise RuntimeError(located(f"diagonal({x._type}): diagonal dimensions cannot be identical {dim1}, {dim2}"))
    offset = int(offset)
    rest = [d for d in range(x.ndim) if d not in (a, b)]
    lead = tuple(x.shape[d] for d in rest)
    n, m = x.shape[a], x.shape[b]
    L = _diag_len(n, m, offset)
    flat = _t().reshape(x.permute(*rest, a, b), lead + (n * m,))
    start = offset if offset >= 0 else -offset * m
    if L == 0:
        start = 0
    stop = start + (L - 1) * (m + 1) + 1 if L else 0
    k = len(lead)
    out = flat[(slice(None),) * k + (slice(start, stop, m + 1),)]
    return relabel(out, "DiagonalBackward0", [x])


def diag_embed(x, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """Matrices (in the planes of dim1, dim2 of the result) with x's last dimension on their offset-th diagonal."""
    nd = x.ndim + 1
    a, b = _dim(x, dim1, "diag_embed", nd), _dim(x, dim2, "diag_embed", nd)
    if a == b:
        raise RuntimeError(located(f"diag_embed({x._type}): diagonal dimensions cannot be identical {dim1}, {dim2}"))
    offset = int(offset)
    if x.ndim == 0:
        x = x.reshape((1,))
        nd = 2
    L = x.shape[-1]
    N = L + abs(offset)
    lead = tuple(x.shape[:-1])
    start = offset if offset >= 0 else -offset * N
    placed = apply(
        "slice_grad",
        [x],
        {"shape": lead + (N * N,), "starts": (0,) * len(lead) + (start,), "steps": (1,) * len(lead) + (N + 1,)},
    )
    out = _t().reshape(placed, lead + (N, N))
    perm = [None] * nd
    perm[a], perm[b] = nd - 2, nd - 1
    rest = iter(range(nd - 2))
    perm = tuple(p if p is not None else next(rest) for p in perm)
    if perm != tuple(range(nd)):
        out = out.permute(*perm)
    return relabel(out, "DiagEmbedBackward0", [x])


def diag(x, diagonal: int = 0):
    """A 1-d x as the offset-th diagonal of a square matrix; of a 2-d x, its offset-th diagonal."""
    if x.ndim == 1:
        return relabel(diag_embed(x, diagonal), "DiagBackward0", [x])
    if x.ndim == 2:
        return relabel(globals()["diagonal"](x, diagonal), "DiagBackward0", [x])
    raise RuntimeError(located(f"diag({x._type}): matrix or a vector expected"))


def diagflat(x, offset: int = 0):
    return diag_embed(x.reshape(-1), offset)


def trace(x):
    """The sum of a matrix's diagonal."""
    if x.ndim != 2:
        raise RuntimeError(located(f"trace({x._type}): expected a matrix"))
    return relabel(diagonal(x).sum(), "TraceBackward0", [x])


def _tri_indices(row: int, col: int, offset: int, lower: bool, dtype, device):
    from graphnn.core.device import check_device
    from graphnn.core.dtypes import to_dtype

    check_device(device, "tril_indices" if lower else "triu_indices")
    r, c = (np.tril_indices if lower else np.triu_indices)(int(row), int(offset), int(col))
    dt = to_dtype(dtype) if dtype is not None else "int64"
    return _t().Tensor._wrap(np.stack([r, c]).astype(dt).reshape(2, -1))


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None):
    """The (row, column) coordinates of a row x col matrix's lower triangle (below the offset-th diagonal)."""
    return _tri_indices(row, col, offset, True, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None):
    return _tri_indices(row, col, offset, False, dtype, device)


# -- products ----------------------------------------------------------------------------------------------------
def _vectors(a, b, what: str):
    T = _t()
    a, b = T.as_tensor(a), T.as_tensor(b)
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(located(f"{what}({a._type}, {b._type}): 1D tensors expected"))
    return a, b


def outer(a, b):
    a, b = _vectors(a, b, "outer")
    return a.unsqueeze(1) * b.unsqueeze(0)


def dot(a, b):
    """The sum of the products of two 1-d tensors of one dtype and size."""
    a, b = _vectors(a, b, "dot")
    if a.dtype_name != b.dtype_name:
        raise RuntimeError(
            located(
                f"dot({a._type}, {b._type}): expected both vectors to have same dtype, but found {a.dtype_name} "
                f"and {b.dtype_name}"
            )
        )
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(
            located(
                f"dot({a._type}, {b._type}): inconsistent tensor size, expected tensor [{a.shape[0]}] and src "
                f"[{b.shape[0]}] to have the same number of elements, but got {a.shape[0]} and {b.shape[0]}"
            )
        )
    return relabel((a * b).sum(), "DotBackward0", [a, b])


def vdot(a, b):
    return relabel(dot(a, b), "VdotBackward0", [a, b])


def _matmul2(a, b):
    """a (.., k) @ b (k, ..) for floats (a matmul), or exact products and sums for other dtypes."""
    if a.dtype_name in FLOATS and b.dtype_name == a.dtype_name:
        return a @ b
    return (a.unsqueeze(-1) * b.unsqueeze(0)).sum(-2)


def inner(a, b):
    """Sums of products over the last dimension of a and b, for every pair of their other positions."""
    T = _t()
    a, b = T.as_tensor(a), T.as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    k = a.shape[-1]
    if b.shape[-1] != k:
        raise RuntimeError(located(f"inner({a._type}, {b._type}): last dimensions differ: {k} vs {b.shape[-1]}"))
    out = _matmul2(a.reshape((-1, k)), b.reshape((-1, k)).t())
    return out.reshape(tuple(a.shape[:-1]) + tuple(b.shape[:-1]))


def mv(m, v):
    T = _t()
    m, v = T.as_tensor(m), T.as_tensor(v)
    if m.ndim != 2 or v.ndim != 1:
        raise RuntimeError(located(f"mv({m._type}, {v._type}): vector + matrix @ vector expected"))
    if m.shape[1] != v.shape[0]:
        raise RuntimeError(
            located(
                f"mv({m._type}, {v._type}): size mismatch, got input ({m.shape[0]}), mat ({m.shape[0]}x"
                f"{m.shape[1]}), vec ({v.shape[0]})"
            )
        )
    return relabel(_matmul2(m, v.unsqueeze(1)).squeeze(1), "MvBackward0", [m, v])


def _add_scaled(name: str, input, prod, beta, alpha, inputs: list):
    """beta * input + alpha * prod (beta == 0: input is ignored, NaN in it too), named `name`."""
    out = prod if alpha == 1 else prod * alpha
    if beta != 0:
        out = (input if beta == 1 else input * beta) + out
    elif tuple(np.broadcast_shapes(tuple(input.shape), tuple(out.shape))) != tuple(out.shape):
        raise RuntimeError(located(f"{name[:-9].lower()}: input {input._type} does not broadcast to {out._type}"))
    if tuple(out.shape) != tuple(prod.shape):
        raise RuntimeError(located(f"{name}: input {input._type} does not broadcast to the product {prod._type}"))
    return relabel(out, name, inputs)


def _matrices(a, b, what: str):
    T = _t()
    a, b = T.as_tensor(a), T.as_tensor(b)
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(located(f"{what}({a._type}, {b._type}): matrices expected"))
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(
            located(
                f"{what}: mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                f"{b.shape[0]}x{b.shape[1]})"
            )
        )
    return a, b


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2)."""
    mat1, mat2 = _matrices(mat1, mat2, "addmm")
    return _add_scaled("AddmmBackward0", _t().as_tensor(input), _matmul2(mat1, mat2), beta, alpha, [input, mat1, mat2])


def addmv(input, mat, vec, *, beta=1, alpha=1):
    return _add_scaled("AddmvBackward0", _t().as_tensor(input), mv(mat, vec), beta, alpha, [input, mat, vec])


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * the sum over the batch of batch1[i] @ batch2[i]."""
    from graphnn.core.tensor_ops import bmm

    prod = bmm(batch1, batch2).sum(0)
    return _add_scaled("AddbmmBackward0", _t().as_tensor(input), prod, beta, alpha, [input, batch1, batch2])


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    return _add_scaled("AddrBackward0", _t().as_tensor(input), outer(vec1, vec2), beta, alpha, [input, vec1, vec2])


def kron(a, b):
    """The Kronecker product: blocks a[i] * b (the shorter shape padded with ones in front)."""
    T = _t()
    a, b = T.as_tensor(a), T.as_tensor(b)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    x = a.reshape(tuple(s for d in sa for s in (d, 1)))
    y = b.reshape(tuple(s for d in sb for s in (1, d)))
    return relabel((x * y).reshape(tuple(p * q for p, q in zip(sa, sb))), "UnsafeViewBackward0", [a, b])


def linalg_cross(input, other, *, dim: int = -1):  # noqa: A002 (PyTorch's names)
    """The cross product of 3-vectors along dim (the operands broadcast)."""
    from graphnn.core.shape_api import broadcast_tensors

    T = _t()
    a, b = broadcast_tensors(T.as_tensor(input), T.as_tensor(other))
    d = _dim(a, dim, "linalg.cross")
    if a.shape[d] != 3:
        raise RuntimeError(
            located(
                f"linalg.cross: inputs dimension {dim} must have length 3. Got {input.shape[d]} and {other.shape[d]}"
            )
        )
    x0, x1, x2 = (a.narrow(d, i, 1) for i in range(3))
    y0, y1, y2 = (b.narrow(d, i, 1) for i in range(3))
    out = T.cat([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], d)
    return relabel(out, "LinalgCrossBackward0", [input, other])


def cross(input, other, dim=None):  # noqa: A002
    """torch.cross: the cross product along dim (None: the first dimension of length 3)."""
    if dim is None:
        from graphnn.core.shape_api import broadcast_shapes

        dim = next((i for i, s in enumerate(broadcast_shapes(input.shape, other.shape)) if s == 3), None)
        if dim is None:
            raise RuntimeError(located(f"no dimension of size 3 in input (shapes {input.shape}, {other.shape})"))
    return linalg_cross(input, other, dim=dim)


def tensordot(a, b, dims=2, out=None):
    """Sums of products over dims of a and b: `dims` an int (a's last, b's first), or two lists of dims."""
    T = _t()
    a, b = T.as_tensor(a), T.as_tensor(b)
    if isinstance(dims, T.Tensor):
        dims = dims.tolist()
    if isinstance(dims, numbers.Integral):
        k = int(dims)
        if k < 0 or k > min(a.ndim, b.ndim):
            raise RuntimeError(located(f"tensordot({a._type}, {b._type}): dims {k} out of range"))
        da, db = list(range(a.ndim - k, a.ndim)), list(range(k))
    else:
        da, db = ([d] if isinstance(d, numbers.Integral) else list(d) for d in dims)
        da = [_dim(a, d, "tensordot") for d in da]
        db = [_dim(b, d, "tensordot") for d in db]
    if len(da) != len(db) or any(a.shape[i] != b.shape[j] for i, j in zip(da, db)):
        raise RuntimeError(
            located(f"tensordot({a._type}, {b._type}): contracted dimensions {da} and {db} differ in size")
        )
    fa = [d for d in range(a.ndim) if d not in da]
    fb = [d for d in range(b.ndim) if d not in db]
    k = math.prod(a.shape[d] for d in da)
    A = T.reshape(a.permute(*fa, *da), (math.prod(a.shape[d] for d in fa), k))
    B = T.reshape(b.permute(*db, *fb), (k, math.prod(b.shape[d] for d in fb)))
    return _matmul2(A, B).reshape(tuple(a.shape[d] for d in fa) + tuple(b.shape[d] for d in fb))


# -- distances and differences -----------------------------------------------------------------------------------
def cdist(x1, x2, p: float = 2.0, compute_mode=None):
    """p-norm distances between the rows of x1 (.., P, M) and of x2 (.., R, M): (.., P, R). Where a distance is 0
    its gradient is 0, as PyTorch's."""
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(
            located(
                f"cdist({x1._type}, {x2._type}): X1 and X2 must have at least 2 dimensions and the same "
                "number of columns"
            )
        )
    if x1.dtype_name not in FLOATS or x2.dtype_name not in FLOATS:
        raise RuntimeError(located(f"cdist only supports floating-point dtypes, got {x1.dtype_name}"))
    if p < 0:
        raise RuntimeError(located(f"cdist only supports non-negative p values, got {p}"))
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == 0:  # (a count: its gradient is zero, passed through a select that never takes diff, as PyTorch's)
        count = (diff != 0).sum(-1).type_as_dtype(diff.dtype_name)
        if not diff.requires_grad:
            return count
        never = apply("full", [], {"value": False, "shape": tuple(diff.shape), "dtype": "bool"})
        return count + apply("select", [never, diff, 0.0]).sum(-1)
    ad = diff.abs()
    if p == 1:
        return ad.sum(-1)
    if p == float("inf"):
        return ad.amax(-1)
    s = (ad * ad).sum(-1) if p == 2 else (ad**p).sum(-1)
    zero = s == 0
    safe = apply("select", [zero, 1.0, s])
    root = safe.sqrt() if p == 2 else safe ** (1.0 / p)
    return relabel(apply("select", [zero, 0.0, root]), "CdistBackward0", [x1, x2])


def diff(x, n: int = 1, dim: int = -1, prepend=None, append=None):
    """The n-th forward difference along dim (bool: logical xor), after joining prepend and append."""
    T = _t()
    d = _dim(x, dim, "diff")
    if int(n) < 0:
        raise RuntimeError(located(f"diff expects n to be non-negative, got {n}"))
    if prepend is not None or append is not None:
        side = tuple(x.shape[:d]) + (1,) + tuple(x.shape[d + 1 :])
        pieces = []
        for v in (prepend, x, append):
            if v is not None:
                v = T.as_tensor(v)
                pieces.append(v.expand(side) if v.ndim == 0 else v)
        x = T.cat(pieces, d)
    for _ in range(int(n)):
        m = x.shape[d]
        if m == 0:
            break
        hi, lo = T.narrow(x, d, 1, m - 1), T.narrow(x, d, 0, m - 1)
        x = hi != lo if x.dtype_name == "bool" else hi - lo
    return x
