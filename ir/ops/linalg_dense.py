"""Dense factorizations and solves of (batches of) matrices, as torch.linalg computes them.

    inv(A)                          A^-1
    solve(A, B)                     X with A X = B (B (..., n, k); batch dimensions broadcast)
    solve_triangular(A, B; upper, unitriangular)   X with A X = B, reading only A's upper / lower triangle
                                    (unitriangular: its diagonal taken as ones)
    cholesky(A)                     lower L with L L^T = A (reads A's lower triangle)
    det(A), slogdet(A)              det; (sign, log |det|)
    eigh(A; upper)                  (eigenvalues ascending, eigenvectors as columns) of the symmetric matrix in A's
                                    lower (upper) triangle
    svd(A; full_matrices)           (U, S, Vh) with A = U diag(S) Vh, S descending
    qr(A; complete)                 (Q, R) with A = Q R, R upper triangular
    factor_info(A; kind)            LAPACK's info of a Cholesky ("cholesky") or LU ("lu") factorization per matrix

They run on the host: their reference kernels (LAPACK through NumPy) compute them eagerly, and compiled code calls
back into them (codegen/host.py). Gradients are written in IR ops: triangular solves, products and masks; eigh's and
svd's hold for distinct eigen- / singular values (their formulas divide by the differences), qr's for m >= n.
"""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ..types import TensorType, broadcast_shapes
from ._util import is_zero_fill, unbroadcast

FLOATS = ("float32", "float64")


# -- shape rules -------------------------------------------------------------------------------------------------
def _matrix(t, what: str, square: bool = True) -> None:
    if t.dtype not in FLOATS:
        raise TypeError(f"{what} needs a float32 or float64 matrix, got {t.dtype}")
    if t.ndim < 2:
        raise ValueError(f"{what} needs a matrix (at least 2 dimensions), got {t.ndim}")
    if square and t.shape[-1] != t.shape[-2]:
        raise ValueError(f"{what} needs square matrices, got {t.shape[-2]} by {t.shape[-1]}")


def _square(what: str):
    def infer(types, attrs):
        _matrix(types[0], what)
        return types[0]

    return infer


def _solve_infer(what: str):
    def infer(types, attrs):
        a, b = types
        _matrix(a, what)
        _matrix(b, what, square=False)
        if a.dtype != b.dtype:
            raise TypeError(f"{what} needs operands of one dtype, got {a.dtype} and {b.dtype}")
        if b.shape[-2] != a.shape[-1]:
            raise ValueError(f"{what}: A is {a.shape[-2]} by {a.shape[-1]} but B has {b.shape[-2]} rows")
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
        return TensorType(batch + b.shape[-2:], a.dtype)

    return infer


def _batch_reduced(what: str):
    def infer(types, attrs):
        _matrix(types[0], what)
        return TensorType(types[0].shape[:-2], types[0].dtype)

    return infer


def _slogdet_infer(types, attrs):
    t = _batch_reduced("slogdet")(types, attrs)
    return [t, t]


def _eigh_infer(types, attrs):
    a = types[0]
    _matrix(a, "eigh")
    return [TensorType(a.shape[:-1], a.dtype), a]


def _svd_infer(types, attrs):
    a = types[0]
    _matrix(a, "svd", square=False)
    m, n = a.shape[-2:]
    k = min(m, n)
    lead = a.shape[:-2]
    u, v = (m, n) if attrs.get("full_matrices") else (k, k)
    return [TensorType(lead + (m, u), a.dtype), TensorType(lead + (k,), a.dtype), TensorType(lead + (v, n), a.dtype)]


def _qr_infer(types, attrs):
    a = types[0]
    _matrix(a, "qr", square=False)
    m, n = a.shape[-2:]
    q = m if attrs.get("complete") else min(m, n)
    return [TensorType(a.shape[:-2] + (m, q), a.dtype), TensorType(a.shape[:-2] + (q, n), a.dtype)]


# -- reference kernels -------------------------------------------------------------------------------------------
def _batched(a: np.ndarray, b: np.ndarray) -> tuple:
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])


def _solve_ref(arrays, attrs):
    a, b = _batched(*arrays)
    if a.size == 0 or b.size == 0:
        return np.zeros(b.shape, b.dtype)
    return np.linalg.solve(a, b).astype(b.dtype, copy=False)


def _triangle(a: np.ndarray, upper: bool, unit: bool) -> np.ndarray:
    t = np.triu(a) if upper else np.tril(a)
    if unit:
        t = t.copy()
        idx = np.arange(a.shape[-1])
        t[..., idx, idx] = 1
    return t


def _solve_triangular_ref(arrays, attrs):
    a, b = _batched(*arrays)
    if a.size == 0 or b.size == 0:
        return np.zeros(b.shape, b.dtype)
    t = _triangle(a, attrs["upper"], attrs.get("unitriangular", False))
    return np.linalg.solve(t, b).astype(b.dtype, copy=False)


def _cholesky_ref(arrays, attrs):
    a = arrays[0]
    if a.size == 0:
        return np.zeros(a.shape, a.dtype)
    try:
        return np.linalg.cholesky(np.tril(a) + np.swapaxes(np.tril(a, -1), -1, -2)).astype(a.dtype, copy=False)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(
            "the factorization could not be completed because the input is not positive-definite"
        ) from None


def _slogdet_ref(arrays, attrs):
    sign, logabs = np.linalg.slogdet(arrays[0])
    dt = arrays[0].dtype
    return [np.asarray(sign, dt), np.asarray(logabs, dt)]


def _eigh_ref(arrays, attrs):
    a = arrays[0]
    w, v = np.linalg.eigh(a, UPLO="U" if attrs.get("upper") else "L")
    return [w.astype(a.dtype, copy=False), v.astype(a.dtype, copy=False)]


def _svd_ref(arrays, attrs):
    a = arrays[0]
    full = bool(attrs.get("full_matrices"))
    if a.size == 0:
        return [np.zeros(t.shape, a.dtype) for t in _svd_infer([TensorType(a.shape, str(a.dtype))], attrs)]
    u, s, vh = np.linalg.svd(a, full_matrices=full)
    return [x.astype(a.dtype, copy=False) for x in (u, s, vh)]


def _qr_ref(arrays, attrs):
    a = arrays[0]
    q, r = np.linalg.qr(a, mode="complete" if attrs.get("complete") else "reduced")
    return [q.astype(a.dtype, copy=False), r.astype(a.dtype, copy=False)]


# -- helpers of the gradient rules -------------------------------------------------------------------------------
def _mT(b, v):
    nd = v.type.ndim
    return b.transpose(v, perm=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _mask(b, n: int, m: int, dtype: str, kind: str, k: int = 0):
    """A constant (n, m) mask: "tril" / "triu" (ones on and below / above the k-th diagonal), "eye"."""
    ones = np.ones((n, m), dtype)
    arr = {"tril": np.tril(ones, k), "triu": np.triu(ones, k), "eye": np.eye(n, m, dtype=dtype)}[kind]
    return b.constant(value=arr.astype(dtype))


def _phi(b, x):
    """The lower triangle of square matrices x with the diagonal halved."""
    n = x.shape[-1]
    return b.mul(x, b.constant(value=(np.tril(np.ones((n, n))) - 0.5 * np.eye(n)).astype(x.dtype)))


def _col(b, v):
    """(..., k) -> (..., k, 1)."""
    return b.reshape(v, shape=tuple(v.shape) + (1,))


def _row(b, v):
    """(..., k) -> (..., 1, k)."""
    return b.reshape(v, shape=tuple(v.shape[:-1]) + (1, v.shape[-1]))


def _diag_embed(b, v):
    return b.mul(_col(b, v), _mask(b, v.shape[-1], v.shape[-1], v.dtype, "eye"))


def _gaps(b, w):
    """E[..., i, j] = w_j - w_i, with ones on the diagonal (the divisor of the eigen / singular vector terms)."""
    k = w.shape[-1]
    return b.add(b.sub(_row(b, w), _col(b, w)), _mask(b, k, k, w.dtype, "eye"))


def _skew(b, x):
    return b.sub(x, _mT(b, x))


def _scale_lead(b, g, x):
    """Per-matrix scalars g (shape x's batch) times the matrices x."""
    return b.mul(b.reshape(g, shape=tuple(g.shape) + (1, 1)), x)


# -- gradient rules ----------------------------------------------------------------------------------------------
def _inv_grad(b, node, cts):
    yt = _mT(b, node.outputs[0])
    return [b.neg(b.matmul(yt, b.matmul(cts[0], yt)))]


def _solve_grad(b, node, cts):
    a, bb = node.inputs
    x = node.outputs[0]
    gb = b.solve(_mT(b, a), cts[0])
    ga = b.neg(b.matmul(gb, _mT(b, x)))
    return [unbroadcast(b, ga, a.shape), unbroadcast(b, gb, bb.shape)]


def _solve_triangular_grad(b, node, cts):
    a, bb = node.inputs
    upper, unit = node.attrs["upper"], node.attrs.get("unitriangular", False)
    x = node.outputs[0]
    gb = b.solve_triangular(_mT(b, a), cts[0], upper=not upper, unitriangular=unit)
    ga = b.neg(b.matmul(gb, _mT(b, x)))
    n = a.shape[-1]
    k = (1 if upper else -1) if unit else 0
    ga = b.mul(ga, _mask(b, n, n, a.dtype, "triu" if upper else "tril", k))
    return [unbroadcast(b, ga, a.shape), unbroadcast(b, gb, bb.shape)]


def _cholesky_grad(b, node, cts):
    """A's cotangent L^-T phi(L^T G) L^-1, symmetrized (A is read as a symmetric matrix)."""
    lt = _mT(b, node.outputs[0])
    p = _phi(b, b.matmul(lt, cts[0]))
    x = b.solve_triangular(lt, p, upper=True)  # L^-T P
    s = _mT(b, b.solve_triangular(lt, _mT(b, x), upper=True))  # L^-T P L^-1
    return [b.mul(b.add(s, _mT(b, s)), 0.5)]


def _inv_t(b, a):
    return _mT(b, b.inv(a))


def _det_grad(b, node, cts):
    a = node.inputs[0]
    return [_scale_lead(b, b.mul(cts[0], node.outputs[0]), _inv_t(b, a))]


def _slogdet_grad(b, node, cts):
    if is_zero_fill(cts[1]):
        return [None]
    return [_scale_lead(b, cts[1], _inv_t(b, node.inputs[0]))]


def _eigh_grad(b, node, cts):
    """V (diag(gw) + skew(V^T gV) / 2E) V^T with E[i, j] = w_j - w_i."""
    w, v = node.outputs
    gw, gv = cts
    inner = _diag_embed(b, gw)
    if not is_zero_fill(gv):
        vg = b.mul(_skew(b, b.matmul(_mT(b, v), gv)), 0.5)
        inner = b.add(inner, b.div(vg, _gaps(b, w)))
    return [b.matmul(v, b.matmul(inner, _mT(b, v)))]


def _narrow(b, x, k: int):
    """The first k columns of x."""
    nd = x.type.ndim
    return b.slice(x, starts=(0,) * nd, stops=tuple(x.shape[:-1]) + (k,), steps=(1,) * nd)


def _narrow_rows(b, x, k: int):
    nd = x.type.ndim
    return b.slice(x, starts=(0,) * nd, stops=tuple(x.shape[:-2]) + (k, x.shape[-1]), steps=(1,) * nd)


def _svd_grad(b, node, cts):
    """The reduced SVD's rule (full_matrices: the first min(m, n) singular vectors, as PyTorch)."""
    u, s, vh = node.outputs
    gu, gs, gvh = cts
    m, n = node.inputs[0].shape[-2:]
    k = min(m, n)
    if node.attrs.get("full_matrices"):
        u, gu = _narrow(b, u, k), _narrow(b, gu, k)
        vh, gvh = _narrow_rows(b, vh, k), _narrow_rows(b, gvh, k)
    no_u, no_v = is_zero_fill(gu), is_zero_fill(gvh)
    inner = _diag_embed(b, gs)
    if no_u and no_v:
        return [b.matmul(u, b.matmul(inner, vh))]
    v, gv = _mT(b, vh), _mT(b, gvh)
    e = _gaps(b, b.mul(s, s))
    s_row, s_col = _row(b, s), _col(b, s)
    terms = []
    if not no_u:
        terms.append(b.mul(_skew(b, b.matmul(_mT(b, u), gu)), s_row))
    if not no_v:
        terms.append(b.mul(s_col, _skew(b, b.matmul(vh, gv))))
    off = terms[0] if len(terms) == 1 else b.add(*terms)
    inner = b.add(inner, b.div(off, e))
    if m > k and not no_u:  # gA = [U inner + (I - U U^T) gU S^-1] Vh
        gus = b.div(gu, s_row)
        ga = b.matmul(u, inner)
        ga = b.sub(b.add(ga, gus), b.matmul(u, b.matmul(_mT(b, u), gus)))
        return [b.matmul(ga, vh)]
    if n > k and not no_v:  # gA = U [inner Vh + S^-1 gV^T (I - V V^T)]
        sgv = b.div(_mT(b, gv), s_col)
        ga = b.matmul(inner, vh)
        ga = b.sub(b.add(ga, sgv), b.matmul(b.matmul(sgv, v), vh))
        return [b.matmul(u, ga)]
    return [b.matmul(u, b.matmul(inner, vh))]


def _qr_grad(b, node, cts):
    """m >= n: gA = (gQ + Q copyltu(M)) R^-T with M = R gR^T - gQ^T Q (copyltu: the lower triangle mirrored)."""
    q, r = node.outputs
    gq, gr = cts
    m, n = node.inputs[0].shape[-2:]
    if m < n or (node.attrs.get("complete") and m > n):
        raise NotImplementedError("qr's gradient needs m >= n and the reduced form (mode='reduced')")
    mm = b.sub(b.matmul(r, _mT(b, gr)), b.matmul(_mT(b, gq), q))
    low = b.mul(mm, _mask(b, n, n, mm.dtype, "tril", -1))
    sym = b.add(b.add(low, _mT(b, low)), b.mul(mm, _mask(b, n, n, mm.dtype, "eye")))
    y = b.add(gq, b.matmul(q, sym))  # y R^-T = (R^-1 y^T)^T
    return [_mT(b, b.solve_triangular(r, _mT(b, y), upper=True))]


# -- definitions -------------------------------------------------------------------------------------------------
def _cube(node) -> int:
    a = node.inputs[0].type
    n = a.shape[-1]
    return a.size * n


HOST = {"pattern": "opaque", "host": True, "fuzz": Fuzz(skip=True), "flops": _cube}

register(
    "inv",
    infer=_square("inv"),
    ref=lambda a, at: np.linalg.inv(a[0]).astype(a[0].dtype, copy=False),
    grad=_inv_grad,
    num_inputs=1,
    doc="the inverse of square matrices",
    torch_name="LinalgInvExBackward0",
    **HOST,
)
register(
    "solve",
    infer=_solve_infer("solve"),
    ref=_solve_ref,
    grad=_solve_grad,
    num_inputs=2,
    doc="X with A X = B (A (..., n, n), B (..., n, k); batch dimensions broadcast)",
    torch_name="LinalgSolveExBackward0",
    **HOST,
)
register(
    "solve_triangular",
    infer=_solve_infer("solve_triangular"),
    ref=_solve_triangular_ref,
    grad=_solve_triangular_grad,
    num_inputs=2,
    doc="X with A X = B for the upper (upper=True) or lower triangle of A (unitriangular: a diagonal of ones)",
    torch_name="LinalgSolveTriangularBackward0",
    **HOST,
)
register(
    "cholesky",
    infer=_square("cholesky"),
    ref=_cholesky_ref,
    grad=_cholesky_grad,
    num_inputs=1,
    doc="the lower Cholesky factor L (L L^T = A) of the symmetric positive-definite matrix in A's lower triangle",
    torch_name="LinalgCholeskyExBackward0",
    **HOST,
)
register(
    "det",
    infer=_batch_reduced("det"),
    ref=lambda a, at: np.asarray(np.linalg.det(a[0]), a[0].dtype),
    grad=_det_grad,
    num_inputs=1,
    doc="the determinant of square matrices",
    torch_name="LinalgDetBackward0",
    **HOST,
)
register(
    "slogdet",
    infer=_slogdet_infer,
    ref=_slogdet_ref,
    grad=_slogdet_grad,
    num_inputs=1,
    doc="(sign, log |det|) of square matrices",
    torch_name="LinalgSlogdetBackward0",
    **HOST,
)
register(
    "eigh",
    infer=_eigh_infer,
    ref=_eigh_ref,
    grad=_eigh_grad,
    num_inputs=1,
    doc="(eigenvalues ascending, eigenvectors as columns) of the symmetric matrix in A's lower (upper=True: upper) "
    "triangle",
    torch_name="LinalgEighBackward0",
    **{**HOST, "flops": lambda node: 4 * _cube(node)},
)
register(
    "svd",
    infer=_svd_infer,
    ref=_svd_ref,
    grad=_svd_grad,
    num_inputs=1,
    doc="(U, S, Vh) with A = U diag(S) Vh, S descending (full_matrices: square U and Vh)",
    torch_name="LinalgSvdBackward0",
    **{**HOST, "flops": lambda node: 4 * node.inputs[0].type.size * min(node.inputs[0].shape[-2:])},
)
register(
    "qr",
    infer=_qr_infer,
    ref=_qr_ref,
    grad=_qr_grad,
    num_inputs=1,
    doc="(Q, R) with A = Q R, Q with orthonormal columns, R upper triangular (complete: square Q)",
    torch_name="LinalgQrBackward0",
    **{**HOST, "flops": lambda node: 2 * node.inputs[0].type.size * min(node.inputs[0].shape[-2:])},
)


# -- factorization status (the *_ex functions' info) --------------------------------------------------------------
def lu_info(m: np.ndarray) -> int:
    """LAPACK's getrf info of one square matrix: 0, or the 1-based index of the first exactly zero pivot of its LU
    factorization with partial pivoting."""
    u = np.array(m, dtype=np.float64)
    n = u.shape[0]
    for k in range(n):
        p = k + int(np.argmax(np.abs(u[k:, k])))
        if u[p, k] == 0:
            return k + 1
        u[[k, p]] = u[[p, k]]
        u[k + 1 :] -= np.outer(u[k + 1 :, k] / u[k, k], u[k])
    return 0


def cholesky_info(m: np.ndarray) -> int:
    """LAPACK's potrf info of one symmetric matrix: 0, or the order of its first leading minor that is not
    positive-definite."""
    for k in range(1, m.shape[0] + 1):
        try:
            np.linalg.cholesky(m[:k, :k])
        except np.linalg.LinAlgError:
            return k
    return 0


INFO_OF = {"cholesky": cholesky_info, "lu": lu_info}


def _factor_info_infer(types, attrs):
    _matrix(types[0], "factor_info")
    if attrs["kind"] not in INFO_OF:
        raise ValueError(f"factor_info kind must be one of {sorted(INFO_OF)}, got {attrs['kind']!r}")
    return TensorType(types[0].shape[:-2], "int64")


def _factor_info_ref(arrays, attrs):
    a = arrays[0]
    mats = a.reshape((-1,) + a.shape[-2:])
    info = INFO_OF[attrs["kind"]]
    return np.array([info(m) for m in mats] if a.shape[-1] else [0] * len(mats), np.int64).reshape(a.shape[:-2])


register(
    "factor_info",
    infer=_factor_info_infer,
    ref=_factor_info_ref,
    grad=None,
    num_inputs=1,
    doc="LAPACK's info of each matrix's Cholesky (kind='cholesky') or LU (kind='lu') factorization: 0, or where it "
    "fails (the *_ex functions' info)",
    fixed_attrs=("kind",),
    **HOST,
)
