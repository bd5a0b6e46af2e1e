"""Dense linear algebra with PyTorch's names (torch.linalg.* and the older torch.* / Tensor.* ones): the host-run
primitives of ir/ops/linalg_dense.py (inv, solve, solve_triangular, cholesky, det, slogdet, eigh, svd, qr) and
compositions of them with products and elementwise ops, differentiable, eagerly and inside graphnn.compile.

lstsq solves through a QR factorization and so assumes A has full rank (PyTorch's default CPU driver also handles
rank-deficient A); pinv and matrix_rank cut small singular values as PyTorch does.
"""

from __future__ import annotations

import numbers

import numpy as np

from graphnn.core.dispatch import apply, located


def _t():
    from graphnn.core import tensor

    return tensor


def _as(x):
    return _t().as_tensor(x)


def _returns(name: str, fields: tuple) -> type:
    """A namedtuple-like result type (torch.return_types.<name>)."""

    def new(cls, *values):
        return tuple.__new__(cls, values)

    def rep(self) -> str:
        body = ",\n".join(f"{f}={v!r}" for f, v in zip(fields, self))
        return f"graphnn.return_types.{name}(\n{body})"

    ns = {"__new__": new, "__repr__": rep, "_fields": fields, "__slots__": ()}
    ns.update({f: property(lambda self, i=i: self[i]) for i, f in enumerate(fields)})
    return type(name, (tuple,), ns)


inv_ex_result = _returns("linalg_inv_ex", ("inverse", "info"))
cholesky_ex_result = _returns("linalg_cholesky_ex", ("L", "info"))
slogdet_result = _returns("linalg_slogdet", ("sign", "logabsdet"))
eigh_result = _returns("linalg_eigh", ("eigenvalues", "eigenvectors"))
eig_result = _returns("linalg_eig", ("eigenvalues", "eigenvectors"))
svd_result = _returns("linalg_svd", ("U", "S", "Vh"))
torch_svd_result = _returns("svd", ("U", "S", "V"))
qr_result = _returns("linalg_qr", ("Q", "R"))
lstsq_result = _returns("linalg_lstsq", ("solution", "residuals", "rank", "singular_values"))
triangular_solve_result = _returns("triangular_solve", ("solution", "cloned_coefficient"))


def _mT(x):
    return x.transpose(-2, -1)


def _g():
    import graphnn

    return graphnn


def _info(A):
    """The info of the *_ex functions: zeros (int64: graphnn has no int32), one per matrix."""
    return _g().zeros(tuple(A.shape[:-2]), dtype=_g().int64)


def _vector_rhs(A, B) -> bool:
    """PyTorch's rule: B is a (batch of) vector(s) when it is 1-D or has A's shape without its last dimension."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def _with_rhs(A, B, solve_matrices):
    """solve_matrices(A, B as matrices), with a vector right-hand side as a one-column matrix and back."""
    if _vector_rhs(A, B):
        return solve_matrices(A, B.unsqueeze(-1)).squeeze(-1)
    return solve_matrices(A, B)


# -- inverses and solves -----------------------------------------------------------------------------------------
def inv(A, *, out=None):
    """A^-1 of square matrices (batched); a singular matrix is an error."""
    return apply("inv", [_as(A)])


def _reported(A, name: str, kind: str, factor, check_errors: bool) -> tuple:
    """(factor(A), info) of an *_ex function, info from the factor_info op (LAPACK's, per matrix; computed by the
    compiled code inside graphnn.compile): the matrices whose info is not 0 give NaN factors (PyTorch's are LAPACK's
    partial results); check_errors raises for them (eagerly)."""
    if A.shape[-1] == 0:
        return factor(A), _info(A)
    g = _g()
    info = apply("factor_info", [A], {"kind": kind})
    if info._data is not None:  # (eager: a matrix that factors skips the masking, check_errors can raise)
        flat = np.asarray(info._data).reshape(-1)
        if not flat.any():
            return factor(A), info
        if check_errors:
            k = int(np.flatnonzero(flat)[0])
            raise g.linalg.LinAlgError(
                located(
                    f"linalg.{name}: (Batch element {k}): the factorization could not be completed (info = {flat[k]})"
                )
            )
    bad = (info != 0)[..., None, None]
    eye = g.eye(A.shape[-1], dtype=A.dtype).expand(*A.shape)
    out = factor(g.where(bad, eye, A))
    return g.where(bad, g.full_like(out, float("nan")), out), info


def inv_ex(A, *, check_errors: bool = False, out=None):
    """(inverse, info): info > 0 marks a singular matrix (LU's first zero pivot), whose inverse is NaN."""
    A = _as(A)
    return inv_ex_result(*_reported(A, "inv_ex", "lu", inv, check_errors))


def solve(A, B, *, left: bool = True, out=None):
    """X with A X = B (left=False: X A = B); B a matrix or (a batch of) vector(s); batch dimensions broadcast."""
    A, B = _as(A), _as(B)
    if not left:
        return _mT(solve(_mT(A), _mT(B)))
    return _with_rhs(A, B, lambda a, b: apply("solve", [a, b]))


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False, out=None):
    A = _as(A)
    return _returns("linalg_solve_ex", ("result", "info"))(solve(A, B, left=left), _info(A))


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False, out=None):
    """X with A X = B (left=False: X A = B) for triangular A (only its upper / lower triangle is read)."""
    A, B = _as(A), _as(B)
    if not left:
        return _mT(solve_triangular(_mT(A), _mT(B), upper=not upper, unitriangular=unitriangular))
    return apply("solve_triangular", [A, B], {"upper": bool(upper), "unitriangular": bool(unitriangular)})


def triangular_solve(b, A, upper: bool = True, transpose: bool = False, unitriangular: bool = False):
    """torch.triangular_solve: (X with op(A) X = b, a copy of A), op(A) = A or A^T."""
    A, b = _as(A), _as(b)
    coef = _mT(A) if transpose else A
    x = solve_triangular(coef, b, upper=bool(upper) != bool(transpose), unitriangular=unitriangular)
    return triangular_solve_result(x, A.clone())


def cholesky(A, *, upper: bool = False, out=None):
    """The Cholesky factor of symmetric positive-definite matrices: lower L (L L^T = A), or upper U = L^T."""
    L = apply("cholesky", [_as(A)])
    return _mT(L) if upper else L


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False, out=None):
    """(L, info): info > 0 is the order of the first leading minor that is not positive-definite (L is then NaN)."""
    A = _as(A)
    return cholesky_ex_result(
        *_reported(A, "cholesky_ex", "cholesky", lambda M: cholesky(M, upper=upper), check_errors)
    )


def torch_cholesky(A, upper: bool = False, *, out=None):
    """torch.cholesky / Tensor.cholesky (the older name, with upper positional)."""
    return cholesky(A, upper=upper)


def cholesky_solve(B, L, upper: bool = False, *, out=None):
    """X with A X = B for A = L L^T (upper: A = U^T U) given its Cholesky factor."""
    B, L = _as(B), _as(L)
    low = _mT(L) if upper else L
    y = solve_triangular(low, B, upper=False)
    return solve_triangular(_mT(low), y, upper=True)


def cholesky_inverse(L, upper: bool = False, *, out=None):
    """A^-1 for A = L L^T (upper: U^T U) given its Cholesky factor."""
    L = _as(L)
    eye = _g().eye(L.shape[-1], dtype=L.dtype).expand(*L.shape)
    return cholesky_solve(eye, L, upper)


# -- determinants ------------------------------------------------------------------------------------------------
def det(A, *, out=None):
    """The determinant of square matrices (its gradient needs them invertible)."""
    return apply("det", [_as(A)])


def slogdet(A, *, out=None):
    """(sign, log |det|) of square matrices."""
    sign, logabs = apply("slogdet", [_as(A)])
    return slogdet_result(sign, logabs)


def logdet(A):
    """log det A: NaN for a negative determinant, -inf for zero (as PyTorch)."""
    sign, logabs = slogdet(A)
    return logabs + sign.log()


# -- eigen- and singular value decompositions --------------------------------------------------------------------
def _uplo(UPLO: str) -> bool:
    if UPLO not in ("L", "U"):
        raise RuntimeError(located(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}"))
    return UPLO == "U"


def eigh(A, UPLO: str = "L", *, out=None):  # noqa: N803 (PyTorch's name)
    """(eigenvalues ascending, eigenvectors as columns) of symmetric matrices, read from the UPLO triangle."""
    w, v = apply("eigh", [_as(A)], {"upper": _uplo(UPLO)})
    return eigh_result(w, v)


def eigvalsh(A, UPLO: str = "L", *, out=None):  # noqa: N803
    return eigh(A, UPLO)[0]


def eig(A, *, out=None):  # noqa: N803
    """(eigenvalues, eigenvectors as unit columns) of general square matrices, complex tensors in LAPACK's order
    (geev, through NumPy, as PyTorch's). Values only: a matrix that requires grad is refused (gradients through
    eigh or svd are there), and inside graphnn.compile the call needs a concrete matrix (a graph break)."""
    from graphnn.core.complex_tensor import from_numpy
    from graphnn.core.grad_mode import is_grad_enabled

    A = _as(A)
    if A.requires_grad and is_grad_enabled():
        raise RuntimeError(
            "linalg.eig: graphnn computes eig without gradients; call it on A.detach() (or under no_grad), or use "
            "linalg.eigh / linalg.svd, which are differentiable"
        )
    arr = A._concrete("linalg.eig")
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise RuntimeError(
            f"linalg.eig: A must be batches of square matrices, but they are {arr.shape[-2] if arr.ndim > 1 else 1} "
            f"by {arr.shape[-1]} matrices"
        )
    if not np.isfinite(arr).all():
        raise RuntimeError("linalg.eig: the input tensor A contains NaN or Inf values")
    w, v = np.linalg.eig(arr.astype(np.float64))
    ctype = np.complex64 if arr.dtype == np.float32 else np.complex128
    return eig_result(from_numpy(w.astype(ctype)), from_numpy(v.astype(ctype)))


def eigvals(A, *, out=None):  # noqa: N803
    """The eigenvalues of general square matrices (complex; see eig)."""
    return eig(A)[0]


def svd(A, full_matrices: bool = True, *, driver=None, out=None):
    """(U, S, Vh) with A = U diag(S) Vh, S descending; gradients for full_matrices=False (or square A) and
    distinct singular values."""
    u, s, vh = apply("svd", [_as(A)], {"full_matrices": bool(full_matrices)})
    return svd_result(u, s, vh)


def svdvals(A, *, driver=None, out=None):
    return svd(A, full_matrices=False)[1]


def torch_svd(A, some: bool = True, compute_uv: bool = True, *, out=None):
    """torch.svd: (U, S, V) with A = U diag(S) V^T (some=False: square U and V; compute_uv=False: zero U and V)."""
    A = _as(A)
    u, s, vh = svd(A, full_matrices=not some)
    if not compute_uv:
        return torch_svd_result(_g().zeros_like(u), s, _g().zeros_like(vh))
    return torch_svd_result(u, s, _mT(vh))


def qr(A, mode: str = "reduced", *, out=None):
    """(Q, R) with A = Q R; mode 'reduced' (Q m x k), 'complete' (Q m x m) or 'r' (an empty Q)."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(located(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}"))
    q, r = apply("qr", [_as(A)], {"complete": mode == "complete"})
    if mode == "r":
        q = _g().empty((0,), dtype=q.dtype)
    return qr_result(q, r)


def torch_qr(A, some: bool = True, *, out=None):
    return qr(A, "reduced" if some else "complete")


def lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares solution of A X = B of minimum norm (LAPACK's gelsy / gelsd give it), differentiable.

    A full-rank A is solved through a QR factorization; a rank-deficient one (singular values at most rcond times
    the largest, rcond defaulting to eps * max(m, n)) through its pseudo-inverse. Rank is counted on concrete
    values; inside graphnn.compile A is taken to have full rank. The SVD drivers (gelsd, gelss) also return the
    singular values, and the residuals of a tall full-rank A, as PyTorch's; the others leave them empty."""
    A, B = _as(A), _as(B)
    vec = B.ndim == A.ndim - 1
    if vec:
        B = B.unsqueeze(-1)
    m, n = A.shape[-2:]
    k = min(m, n)
    cut = rcond if rcond is not None and rcond > 0 else float(np.finfo(A.dtype_name).eps) * max(m, n)
    if A._data is not None and k:
        sv = np.linalg.svd(A._data, compute_uv=False)
        ranks = (sv > cut * sv[..., :1]).sum(-1)
    else:
        ranks = np.full(tuple(A.shape[:-2]), k)
    if np.any(ranks < k):
        x = pinv(A, rtol=cut) @ B
    elif m >= n:
        q, r = qr(A)
        x = solve_triangular(r, _mT(q) @ B, upper=True)
    else:
        q, r = qr(_mT(A))
        x = q @ solve_triangular(_mT(r), B, upper=False)
    empty = _g().empty((0,), dtype=A.dtype)
    residuals = values = empty
    if driver in ("gelsd", "gelss"):  # (the SVD drivers: singular values, and residuals of tall full-rank A)
        values = svdvals(A).detach()
        if m > n and not np.any(ranks < k):
            residuals = ((A @ x - B) ** 2).sum(-2)
            residuals = residuals.squeeze(-1) if vec else residuals
    if vec:
        x = x.squeeze(-1)
    rank = _g().tensor(np.asarray(ranks, dtype=np.int64))
    return lstsq_result(x, residuals, rank, values)


def _cutoff(S, atol, rtol, m: int, n: int):
    """The singular-value threshold of pinv / matrix_rank: max(atol, rtol * largest), PyTorch's defaults."""
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else max(m, n) * float(np.finfo(S.dtype_name).eps)
    big = S.detach().amax(-1, keepdim=True) if S.shape[-1] else S.detach().sum(-1, keepdim=True)
    cut = big * rtol
    if atol is not None:
        cut = cut.clamp(min=float(atol))
    return cut


def _tol(x):
    return None if x is None else (x.item() if hasattr(x, "item") else float(x))


def pinv(A, *, atol=None, rtol=None, hermitian: bool = False, rcond=None, out=None):
    """The Moore-Penrose pseudo-inverse: V diag(1/S) U^T over the singular values above the cutoff."""
    A = _as(A)
    atol, rtol = _tol(atol), _tol(rcond if rcond is not None else rtol)
    if hermitian:
        w, v = eigh(A)
        keep = w.abs() > _cutoff(w.abs(), atol, rtol, *A.shape[-2:])
        w_inv = _g().where(keep, 1 / _g().where(keep, w, _g().ones_like(w)), _g().zeros_like(w))
        return (v * w_inv.unsqueeze(-2)) @ _mT(v)
    u, s, vh = svd(A, full_matrices=False)
    keep = s > _cutoff(s, atol, rtol, *A.shape[-2:])
    s_inv = _g().where(keep, 1 / _g().where(keep, s, _g().ones_like(s)), _g().zeros_like(s))
    return (_mT(vh) * s_inv.unsqueeze(-2)) @ _mT(u)


def pinverse(A, rcond: float = 1e-15):
    return pinv(A, rtol=rcond)


def matrix_rank(A, *, atol=None, rtol=None, hermitian: bool = False, tol=None, out=None):
    """How many singular values (|eigenvalues| when hermitian) exceed the cutoff (int64)."""
    A = _as(A)
    if tol is not None:
        atol, rtol = tol, 0.0
    atol, rtol = _tol(atol), _tol(rtol)
    s = eigvalsh(A).abs() if hermitian else svdvals(A)
    return (s > _cutoff(s, atol, rtol, *A.shape[-2:])).sum(-1)


def cond(A, p=None, *, out=None):
    """The condition number in norm p: None / 2 / -2 from the singular values, else norm(A) * norm(A^-1)."""
    from graphnn.linalg import matrix_norm

    A = _as(A)
    if p in (None, 2, -2):
        s = svdvals(A)
        hi, lo = s[..., 0], s[..., -1]
        return hi / lo if p != -2 else lo / hi
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


# -- products ----------------------------------------------------------------------------------------------------
def multi_dot(tensors, *, out=None):
    """The product of a chain of matrices (the first may be a row vector, the last a column vector)."""
    ts = [_as(t) for t in tensors]
    if len(ts) < 2:
        raise RuntimeError(located(f"multi_dot(): expected at least 2 tensors but got {len(ts)}"))
    first, last = ts[0].ndim == 1, ts[-1].ndim == 1
    if first:
        ts[0] = ts[0].unsqueeze(0)
    if last:
        ts[-1] = ts[-1].unsqueeze(-1)
    for i, t in enumerate(ts):
        if t.ndim != 2:
            raise RuntimeError(located(f"multi_dot(): tensor {i} must be 2D, got {t.ndim}D"))
    out_ = ts[0]
    for t in ts[1:]:
        out_ = out_ @ t
    if first:
        out_ = out_.squeeze(0)
    if last:
        out_ = out_.squeeze(-1)
    return out_


def matrix_power(A, n: int, *, out=None):
    """A^n of square matrices by repeated squaring (n < 0: of the inverse; n = 0: identities)."""
    A = _as(A)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"matrix_power: the exponent must be an int, got {type(n).__name__}")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(located(f"matrix_power({A._type}): expected a tensor of square matrices"))
    n = int(n)
    if n == 0:
        return _g().eye(A.shape[-1], dtype=A.dtype).expand(*A.shape).clone()
    if n < 0:
        A, n = inv(A), -n
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result
