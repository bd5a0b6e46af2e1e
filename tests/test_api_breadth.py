"""Breadth of the tensor API against PyTorch: ravel / conj & co, logspace, fmax / fmin, dist, trapezoid / trapz /
cumulative_trapezoid, vander (torch and linalg), linalg.vecdot, put, index_reduce, gradient, histogram, frexp /
ldexp / nextafter, scatter with reduce, clone(memory_format), Tensor(), linalg.lu_factor / lu / lu_solve /
lu_unpack, tensorinv / tensorsolve, linalg.diagonal; values, dtypes, shapes and gradients, eagerly and inside
graphnn.compile.

Tolerances: float64 results of a few additions, products and divisions differ from PyTorch's by a few ulps when the
order of operations differs (1e-12 relative covers ~10^4 ulps of 2.2e-16); float32 ones by a few ulps of 1.2e-7
(1e-5 relative). Results that are exact in both (powers of two, integer arithmetic, counts, frexp / nextafter /
ldexp, which only scale by powers of two) are compared exactly. LU factors of a well-conditioned 4x4 / 5x3 matrix
go through ~n^2 float64 operations each: 1e-10 covers their rounding (condition numbers below 100)."""

import numpy as np
import pytest

import graphnn
import graphnn.linalg as GL

# PyTorch's own notices (index_reduce is beta, scatter's reduce argument deprecated)
pytestmark = pytest.mark.filterwarnings("ignore:.*(index_reduce|reduce argument).*:UserWarning")

RNG = np.random.default_rng(11)
F64 = dict(rtol=1e-12, atol=1e-12)
F32 = dict(rtol=1e-5, atol=1e-6)


def _np(t):
    return t.detach().numpy()


def _same(g, t, exact=False, **tol):
    """graphnn's g equals PyTorch's t in shape, dtype kind and values."""
    gn, tn = _np(g), t.detach().numpy()
    assert tuple(g.shape) == tuple(t.shape)
    assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1].replace("int32", "int64")
    if exact:
        np.testing.assert_array_equal(gn, tn)
    else:
        np.testing.assert_allclose(gn, tn, **(tol or F64))


def _pair(L, a, grad=False):
    return L.tensor(a, requires_grad=grad)


# -- small identities and constructors ---------------------------------------------------------------------------
def test_ravel_conj_is_complex_clone_and_empty_tensor(torch):
    a = RNG.standard_normal((2, 3, 2))
    for L in (graphnn, torch):
        x = L.tensor(a)
        assert tuple(x.ravel().shape) == (12,) and tuple(L.ravel(x).shape) == (12,)
        np.testing.assert_array_equal(x.ravel().numpy(), a.reshape(-1))
        assert x.is_complex() is False and L.is_complex(x) is False
        assert x.conj() is x and x.resolve_conj() is x and x.resolve_neg() is x and L.conj(x) is x
        c = x.clone(memory_format=L.contiguous_format)
        assert c is not x and np.array_equal(c.numpy(), a)
        assert tuple(L.Tensor().shape) == (0,) and L.Tensor().dtype == L.float32
        assert tuple(L.Tensor(2, 3).shape) == (2, 3) and L.Tensor([1, 2]).tolist() == [1.0, 2.0]
        assert tuple(L.FloatTensor().shape) == (0,) and L.LongTensor().dtype == L.int64
    x = graphnn.tensor(a, requires_grad=True)
    (x.ravel() * graphnn.arange(12.0)).sum().backward()
    np.testing.assert_array_equal(_np(x.grad), np.arange(12.0).reshape(2, 3, 2))


def test_logspace(torch):
    for args, kw in [
        ((0, 2, 3), {}),
        ((-1.5, 2.5, 7), {"base": 2.0}),
        ((0, 3, 4), {"dtype": "int64"}),
        ((1, 2, 5), {"dtype": "float64", "base": 3}),
        ((0, 1, 0), {}),
        ((2, 2, 1), {}),
    ]:
        tkw = {k: (getattr(torch, v) if k == "dtype" else v) for k, v in kw.items()}
        gkw = {k: (getattr(graphnn, v) if k == "dtype" else v) for k, v in kw.items()}
        # float32: each value one pow of a linspace value (rounding order as PyTorch's up to an ulp or so)
        _same(graphnn.logspace(*args, **gkw), torch.logspace(*args, **tkw), **F32)


# -- elementwise -------------------------------------------------------------------------------------------------
def test_fmax_fmin_values_dtypes_and_gradients(torch):
    nan = float("nan")
    a = np.array([1.0, nan, 3.0, nan, 2.0, -1.0])
    b = np.array([2.0, 1.0, nan, nan, 2.0, -4.0])
    for fn in ("fmax", "fmin"):
        res = []
        for L in (graphnn, torch):
            x, y = _pair(L, a, True), _pair(L, b, True)
            out = getattr(L, fn)(x, y)
            (out * L.tensor([1.0, 2, 3, 4, 5, 6], dtype=L.float64)).nansum().backward()
            res.append((out, x.grad, y.grad))
        for g, t in zip(*res):
            _same(g, t, exact=True)  # selections: exact
        # mixed dtypes promote as PyTorch's arithmetic
        _same(
            getattr(graphnn, fn)(graphnn.tensor([1, 5]), graphnn.tensor([2.5, nan])),
            getattr(torch, fn)(torch.tensor([1, 5]), torch.tensor([2.5, nan])),
            exact=True,
        )
        _same(
            graphnn.tensor([1, 5]).fmax(graphnn.tensor([3, 2])),
            torch.tensor([1, 5]).fmax(torch.tensor([3, 2])),
            exact=True,
        )


@pytest.mark.parametrize("p", [2, 1, 3.5, 0, float("inf"), -float("inf")])
def test_dist(torch, p):
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((4,))
    res = []
    for L in (graphnn, torch):
        x, y = _pair(L, a, True), _pair(L, b, True)
        d = L.dist(x, y, p)
        if p != 0:  # a count: PyTorch's backward fails there
            d.backward()
        res.append((d, x.grad, y.grad) if p != 0 else (d,))
    for g, t in zip(*res):
        _same(g, t)
    with pytest.raises(RuntimeError, match="floating point"):
        graphnn.dist(graphnn.tensor([1, 2]), graphnn.tensor([1, 3]))


def test_frexp_ldexp_exact(torch):
    specials = [
        0.0,
        -0.0,
        1.0,
        -3.0,
        0.5,
        1e-40,
        -1e-45,
        3.4e38,
        1.1754944e-38,
        float("inf"),
        -float("inf"),
        float("nan"),
        7.0,
        0.75,
    ]
    for dt in ("float32", "float64"):
        a = np.concatenate([RNG.standard_normal(50) * 10.0 ** RNG.integers(-30, 30, 50), specials]).astype(dt)
        if dt == "float64":
            a = np.concatenate([a, [5e-324, 1.7e308, 2.0**-1022, 2.0**1023]])
        gm, ge = graphnn.frexp(graphnn.tensor(a))
        tm, te = torch.frexp(torch.tensor(a))
        _same(gm, tm, exact=True)
        _same(ge, te, exact=True)  # int64 here, int32 in PyTorch (graphnn has no int32)
        # ldexp(mantissa, integer exponent) gives the numbers back (products by powers of two: exact)
        back = graphnn.ldexp(gm, ge)
        _same(back, torch.ldexp(tm, te), exact=True)
        np.testing.assert_array_equal(_np(back), a)
    # gradients: mantissa' = 2^-exponent; ldexp's as x * 2^e
    res = []
    for L in (graphnn, torch):
        x, e = L.tensor([3.0, -0.1, 40.0], requires_grad=True), L.tensor([1.0, -2.0, 0.5], requires_grad=True)
        (L.frexp(x)[0].sum() + L.ldexp(x, e).sum()).backward()
        res.append((x.grad, e.grad))
    for g, t in zip(*res):
        _same(g, t, **F32)  # ln 2 * 2^e in float32
    _same(
        graphnn.ldexp(graphnn.tensor([1, 2]), graphnn.tensor([2, 3])),
        torch.ldexp(torch.tensor([1, 2]), torch.tensor([2, 3])),
        exact=True,
    )
    with pytest.raises(RuntimeError, match="floating-point"):
        graphnn.frexp(graphnn.tensor([1, 2]))


def test_nextafter_exact(torch):
    for dt in ("float32", "float64"):
        fi = np.finfo(dt)
        edge = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.0,
            0.5,
            float(fi.max),
            -float(fi.max),
            float(fi.tiny),
            float(fi.smallest_subnormal),
            3 * float(fi.smallest_subnormal),
            float("inf"),
            -float("inf"),
            float("nan"),
            1.5,
        ]
        a = np.concatenate([RNG.standard_normal(40) * 10.0 ** RNG.integers(-35, 35, 40), edge]).astype(dt)
        for other in (np.inf, -np.inf, 0.0, np.nan):
            b = np.full_like(a, other)
            _same(
                graphnn.nextafter(graphnn.tensor(a), graphnn.tensor(b)),
                torch.nextafter(torch.tensor(a), torch.tensor(b)),
                exact=True,
            )
        b = np.roll(a, 3)
        _same(graphnn.tensor(a).nextafter(graphnn.tensor(b)), torch.tensor(a).nextafter(torch.tensor(b)), exact=True)


def test_frexp_nextafter_compiled_exact(torch):
    a = np.concatenate([RNG.standard_normal(30) * 10.0 ** RNG.integers(-30, 30, 30), [0.0, 1e-45, 3e38, 1.0]])
    a = a.astype("float32")
    b = np.roll(a, 5)

    @graphnn.compile
    def f(x, y):
        m, e = graphnn.frexp(x)
        return m, e, graphnn.nextafter(x, y), graphnn.ldexp(m, e)

    for _ in range(2):
        m, e, n, back = f(graphnn.tensor(a), graphnn.tensor(b))
        tm, te = torch.frexp(torch.tensor(a))
        _same(m, tm, exact=True)
        _same(e, te, exact=True)
        _same(n, torch.nextafter(torch.tensor(a), torch.tensor(b)), exact=True)
        np.testing.assert_array_equal(_np(back), a)


# -- integration and differences ---------------------------------------------------------------------------------
def test_trapezoid_trapz_cumulative(torch):
    y = RNG.standard_normal((3, 5))
    x1 = np.sort(RNG.standard_normal(5))
    xb = np.sort(RNG.standard_normal((3, 5)), axis=1)
    cases = [
        (lambda L, y: L.trapezoid(y), True),
        (lambda L, y: L.trapezoid(y, dx=0.5, dim=0), True),
        (lambda L, y: L.trapezoid(y, L.tensor(x1)), True),
        (lambda L, y: L.trapezoid(y, L.tensor(xb), dim=1), True),
        (lambda L, y: L.trapz(y, L.tensor(x1)), True),
        (lambda L, y: L.trapz(y, dx=2.0), True),
        (lambda L, y: L.cumulative_trapezoid(y), True),
        (lambda L, y: L.cumulative_trapezoid(y, L.tensor(x1[:3]), dim=0), True),
        (lambda L, y: L.cumulative_trapezoid(y, dx=3.0, dim=-1), True),
    ]
    for fn, grads in cases:
        res = []
        for L in (graphnn, torch):
            t = L.tensor(y, requires_grad=True)
            out = fn(L, t)
            (out * out).sum().backward()
            res.append((out, t.grad))
        for g, t in zip(*res):
            _same(g, t)
    # integers integrate to floats; empty and single-sample dims
    for fn in (
        lambda L: L.trapezoid(L.tensor([1, 2, 4])),
        lambda L: L.trapezoid(L.tensor([1, 2, 4]), dx=2),
        lambda L: L.cumulative_trapezoid(L.tensor([1, 2, 4])),
        lambda L: L.trapezoid(L.zeros(3, 0)),
        lambda L: L.cumulative_trapezoid(L.zeros(3, 1)),
        lambda L: L.cumulative_trapezoid(L.zeros(2, 0)),
    ):
        _same(fn(graphnn), fn(torch), exact=True)
    with pytest.raises(RuntimeError, match="one `x` value for each sample point"):
        graphnn.trapezoid(graphnn.zeros(3), graphnn.zeros(2))


def test_gradient(torch):
    f = RNG.standard_normal((4, 5))
    coords = np.cumsum(RNG.uniform(0.5, 2.0, 5))
    coords0 = np.cumsum(RNG.uniform(0.5, 2.0, 4))
    cases = [
        {},
        {"spacing": 2.0},
        {"spacing": [0.5, 3.0]},
        {"dim": 1},
        {"dim": -2, "spacing": [1.5]},
        {"edge_order": 2},
        {"spacing": ("T0", "T1")},
        {"spacing": ("T1",), "dim": 1, "edge_order": 2},
        {"spacing": ("T0",), "dim": 0},
    ]
    for kw in cases:
        res = []
        for L in (graphnn, torch):
            k = dict(kw)
            if "spacing" in k and isinstance(k["spacing"], tuple):
                k["spacing"] = tuple(L.tensor(coords0 if s == "T0" else coords) for s in k["spacing"])
            x = L.tensor(f, requires_grad=True)
            outs = L.gradient(x, **k)
            sum(((o * o).sum() for o in outs), L.tensor(0.0, dtype=L.float64)).backward()
            res.append((*outs, x.grad))
        assert len(res[0]) == len(res[1])
        for g, t in zip(*res):
            _same(g, t)
    _same(graphnn.gradient(graphnn.tensor([1, 2, 4, 8]))[0], torch.gradient(torch.tensor([1, 2, 4, 8]))[0], **F32)
    with pytest.raises(RuntimeError, match="edge_order=1 and edge_order=2"):
        graphnn.gradient(graphnn.zeros(3), edge_order=3)
    with pytest.raises(RuntimeError, match="at least edge_order\\+1"):
        graphnn.gradient(graphnn.zeros(2), edge_order=2)
    with pytest.raises(RuntimeError, match="list of length equal to 'self.dim\\(\\) = 2'"):
        graphnn.gradient(graphnn.zeros(3, 3), spacing=[1.0, 2.0, 3.0])


def test_vander(torch):
    x = np.array([0.0, 1.5, -2.0, 3.0])
    # PyTorch 2.13's torch.vander cannot backward (its cumprod is modified in place): its gradients are taken from
    # linalg.vander, the same matrix with the columns in increasing order
    cases = [
        (lambda L, t: L.vander(t), lambda t: torch.linalg.vander(t).flip(-1)),
        (lambda L, t: L.vander(t, N=3, increasing=True), lambda t: torch.linalg.vander(t, N=3)),
        (lambda L, t: L.linalg.vander(t), None),
        (lambda L, t: L.linalg.vander(t.reshape(2, 2), N=4), None),
    ]
    for fn, ref in cases:
        res = []
        for L in (graphnn, torch):
            t = L.tensor(x, requires_grad=True)
            out = fn(L, t)
            ((ref(t) if L is torch and ref else out) ** 2).sum().backward()
            res.append((out, t.grad))
        for g, t in zip(*res):
            _same(g, t)  # products of a few numbers: at x = 0 the gradient is exactly 0 in both
    _same(graphnn.vander(graphnn.tensor(x), N=0), torch.vander(torch.tensor(x), N=0))
    for fn in (
        lambda L: L.vander(L.tensor([1, 2, 3])),
        lambda L: L.vander(L.tensor([True, False])),
        lambda L: L.linalg.vander(L.tensor([[1, 2], [3, 4]])),
    ):
        _same(fn(graphnn), fn(torch), exact=True)
    with pytest.raises(RuntimeError, match="one-dimensional"):
        graphnn.vander(graphnn.zeros(2, 2))
    with pytest.raises(RuntimeError, match="N must be greater than 1"):
        GL.vander(graphnn.zeros(2), N=1)


# -- index functions ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("accumulate", [False, True])
def test_put(torch, accumulate):
    a = RNG.standard_normal((3, 4))
    # without accumulate distinct positions (which of repeated ones wins is undefined in PyTorch)
    idx = np.array([[0, -1, 5], [7, 2, 10]]) if not accumulate else np.array([[0, -1, 5], [5, 0, 11]])
    src = RNG.standard_normal((2, 3))
    res = []
    for L in (graphnn, torch):
        x, s = L.tensor(a, requires_grad=True), L.tensor(src, requires_grad=True)
        out = L.put(x, L.tensor(idx), s, accumulate=accumulate)
        w = x.detach() * 1.0
        w.put_(L.tensor(idx), s.detach(), accumulate=accumulate)
        (out * L.arange(12.0, dtype=L.float64).reshape(3, 4)).sum().backward()
        res.append((out, w, x.grad, s.grad, x.put(L.tensor([1]), L.tensor([9.0], dtype=L.float64))))
    for g, t in zip(*res):
        _same(g, t)
    with pytest.raises(IndexError, match="out of range: tried to access index 12 on a tensor of 12 elements"):
        graphnn.zeros(3, 4).put_(graphnn.tensor([12]), graphnn.ones(1))
    with pytest.raises(IndexError, match="same number of elements"):
        graphnn.zeros(3).put_(graphnn.tensor([1, 2]), graphnn.ones(1))


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce(torch, reduce, include_self):
    a = RNG.uniform(0.5, 2.0, (3, 4))
    src = RNG.uniform(0.5, 2.0, (3, 5))
    idx = np.array([0, 2, 0, 3, 0])
    res = []
    for L in (graphnn, torch):
        x, s = L.tensor(a, requires_grad=True), L.tensor(src, requires_grad=True)
        out = x.index_reduce(1, L.tensor(idx), s, reduce, include_self=include_self)
        inplace = x.detach().clone().index_reduce_(1, L.tensor(idx), s.detach(), reduce, include_self=include_self)
        (out * out).sum().backward()
        res.append((out, inplace, x.grad, s.grad))
    for g, t in zip(*res):
        _same(g, t)  # distinct random values: no ties in amax / amin
    # integers stay integers (a mean floored, as PyTorch's)
    ints = [
        L.tensor([[5, 7, -3], [1, 2, 3]]).index_reduce(
            1, L.tensor([0, 0, 2]), L.tensor([[2, 4, -8], [1, 1, 1]]), reduce
        )
        for L in (graphnn, torch)
    ]
    _same(*ints, exact=True)
    with pytest.raises(RuntimeError, match="prod, mean, amax or amin but got sum"):
        graphnn.zeros(3).index_reduce_(0, graphnn.tensor([0]), graphnn.ones(1), "sum")


def test_scatter_reduce_add_multiply(torch):
    a = RNG.standard_normal((3, 4))
    idx = np.array([[0, 1, 2, 0], [2, 2, 0, 1]])
    src = RNG.standard_normal((2, 4))
    for reduce in ("add", "multiply"):
        for L_src in ("tensor", "value"):
            res = []
            for L in (graphnn, torch):
                s = L.tensor(src) if L_src == "tensor" else 1.5
                out = L.tensor(a).scatter(0, L.tensor(idx), s, reduce=reduce)
                y = L.tensor(a)
                y.scatter_(0, L.tensor(idx), s, reduce=reduce)
                res.append((out, y))
            for g, t in zip(*res):
                _same(g, t)
    ints = [L.ones(3, dtype=L.int64).scatter(0, L.tensor([0, 0]), 3, reduce="multiply") for L in (graphnn, torch)]
    _same(*ints, exact=True)
    with pytest.raises(RuntimeError, match="reduce argument must be either add or multiply"):
        graphnn.zeros(3).scatter_(0, graphnn.tensor([0]), graphnn.ones(1), reduce="max")


# -- histogram ---------------------------------------------------------------------------------------------------
def test_histogram(torch):
    a = RNG.standard_normal(200)
    a[:3] = [a.min() - 1, 0.0, 0.25]
    w = RNG.uniform(0, 1, 200)
    cases = [
        ((7,), {}),
        ((5,), {"range": (-1.0, 1.0)}),
        ((4,), {"weight": "w", "density": True}),
        (("edges",), {}),
        (("edges",), {"weight": "w", "density": True}),
    ]
    for dt in ("float32", "float64"):
        for args, kw in cases:
            res = []
            for L in (graphnn, torch):
                k = dict(kw)
                if "weight" in k:
                    k["weight"] = L.tensor(w.astype(dt))
                ar = tuple(L.tensor(np.array([-2.0, -0.5, 0.0, 0.25, 3.0], dt)) if v == "edges" else v for v in args)
                res.append(L.histogram(L.tensor(a.astype(dt)), *ar, **k))
            _same(res[0].hist, res[1].hist, **F32)  # counts exact; weighted sums in another order
            _same(res[0].bin_edges, res[1].bin_edges, **F32)  # linspace: its values as PyTorch's up to an ulp
    for data in ([1.0, 1.0, 1.0], []):
        g, t = graphnn.histogram(graphnn.tensor(data), 4), torch.histogram(torch.tensor(data), 4)
        _same(g.hist, t.hist, exact=True)
        _same(g.bin_edges, t.bin_edges, exact=True)
    g = graphnn.tensor([0.0, 1, 2, 3]).histogram(graphnn.tensor([0.0, 1, 3]))
    assert g.hist.tolist() == [1.0, 3.0]
    with pytest.raises(RuntimeError, match="bins must be > 0"):
        graphnn.histogram(graphnn.tensor([1.0]), 0)
    with pytest.raises(RuntimeError, match="min should not exceed max"):
        graphnn.histogram(graphnn.tensor([1.0]), 3, range=(2.0, 1.0))


def test_histogram_compiled_follows_the_data_range(torch):
    @graphnn.compile
    def f(x):
        return graphnn.histogram(x, 6).hist, graphnn.histogram(x, 3, range=(0.0, 1.0)).hist

    for scale in (1.0, 5.0):
        a = (RNG.standard_normal(64) * scale).astype("float32")
        h, r = f(graphnn.tensor(a))
        _same(h, torch.histogram(torch.tensor(a), 6).hist, exact=True)
        _same(r, torch.histogram(torch.tensor(a), 3, range=(0.0, 1.0)).hist, exact=True)


# -- linear algebra ----------------------------------------------------------------------------------------------
def _well_conditioned(*shape):
    return RNG.standard_normal(shape) + 3 * np.eye(shape[-2], shape[-1])


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3), (5, 3), (3, 5)])
def test_lu_factor_and_lu(torch, shape):
    a = _well_conditioned(*shape)
    a[..., 0, :] *= 0.1  # the first pivot is not the first row
    weights = RNG.standard_normal(shape)
    res = []
    for L in (graphnn, torch):
        x = L.tensor(a, requires_grad=True)
        LU, piv = L.linalg.lu_factor(x)
        P, Lo, U = L.linalg.lu(x)
        (LU * L.tensor(weights)).sum().backward()
        g1 = x.grad.clone()
        x.grad = None
        ((Lo * Lo).sum() + (U * U).sum()).backward()
        res.append((LU, piv, P, Lo, U, g1, x.grad))
    tol = dict(rtol=1e-10, atol=1e-10)
    for g, t in zip(*res):
        _same(g, t, **tol)
    P, Lo, U = res[0][2:5]
    np.testing.assert_allclose(_np(P @ Lo @ U), a, **tol)
    uP, uL, uU = graphnn.lu_unpack(*GL.lu_factor(graphnn.tensor(a)))
    tP, tL, tU = torch.lu_unpack(*torch.linalg.lu_factor(torch.tensor(a)))
    for g, t in ((uP, tP), (uL, tL), (uU, tU)):
        _same(g, t, **tol)


@pytest.mark.parametrize("left, adjoint", [(True, False), (True, True), (False, False), (False, True)])
def test_lu_solve(torch, left, adjoint):
    a = _well_conditioned(2, 4, 4)
    b = RNG.standard_normal((2, 4, 3) if left else (2, 3, 4))
    res = []
    for L in (graphnn, torch):
        A, B = L.tensor(a, requires_grad=True), L.tensor(b, requires_grad=True)
        LU, piv = L.linalg.lu_factor(A)
        X = L.linalg.lu_solve(LU, piv, B, left=left, adjoint=adjoint)
        (X * X).sum().backward()
        res.append((X, A.grad, B.grad))
    for g, t in zip(*res):
        _same(g, t, rtol=1e-10, atol=1e-10)
    # the older torch.lu / torch.lu_solve
    A, B = graphnn.tensor(a), graphnn.tensor(b)
    if left and not adjoint:
        LU, piv = graphnn.lu(A)
        np.testing.assert_allclose(_np(A @ graphnn.lu_solve(B, LU, piv)), b, rtol=1e-10, atol=1e-10)


def test_lu_compiled_with_gradients(torch):
    a = _well_conditioned(3, 3)
    b = RNG.standard_normal((3, 2))

    @graphnn.compile
    def f(A, B):
        LU, piv = graphnn.linalg.lu_factor(A)
        return graphnn.linalg.lu_solve(LU, piv, B), piv

    for _ in range(2):
        A, B = graphnn.tensor(a, requires_grad=True), graphnn.tensor(b, requires_grad=True)
        X, piv = f(A, B)
        (X * X).sum().backward()
        tA, tB = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        tLU, tpiv = torch.linalg.lu_factor(tA)
        tX = torch.linalg.lu_solve(tLU, tpiv, tB)
        (tX * tX).sum().backward()
        _same(X, tX, rtol=1e-10, atol=1e-10)
        _same(piv, tpiv, exact=True)
        _same(A.grad, tA.grad, rtol=1e-10, atol=1e-10)
        _same(B.grad, tB.grad, rtol=1e-10, atol=1e-10)


def test_lu_singular_info_and_error(torch):
    a = np.array([[0.0, 1, 2], [0, 3, 4], [0, 5, 6]])  # a zero first column: U[0, 0] = 0, LAPACK's info 1
    g, t = GL.lu_factor_ex(graphnn.tensor(a)), torch.linalg.lu_factor_ex(torch.tensor(a))
    # The factorization goes on past the zero pivot, as LAPACK's: the pivots and info are exact; the factors are
    # two elimination steps on entries of magnitude <= 6, so a BLAS that fuses the update's multiply-add (MKL)
    # differs in the last bits: 2 roundings of 6 * eps
    _same(g[0], t[0], rtol=0, atol=2 * 6 * np.finfo(np.float64).eps)
    for x, y in zip(g[1:], t[1:]):
        _same(x, y, exact=True)
    for L in (graphnn, torch):
        with pytest.raises(RuntimeError, match=r"lu_factor: \(Batch element 1\): U\[1,1\] is zero"):
            L.linalg.lu_factor(L.tensor(np.stack([np.eye(3), a])))


def test_lu_errors():
    with pytest.raises(RuntimeError, match="LU without pivoting is not implemented on the CPU"):
        GL.lu_factor(graphnn.eye(2), pivot=False)
    with pytest.raises(NotImplementedError, match="not implemented for 'int64'"):
        GL.lu_factor(graphnn.zeros(2, 2, dtype=graphnn.int64))


def test_tensorinv_tensorsolve_vecdot_diagonal(torch):
    a = _well_conditioned(6, 6).reshape(6, 2, 3)
    b = RNG.standard_normal((2, 3))
    a4 = _well_conditioned(6, 6).reshape(2, 3, 6)
    for fn in (
        lambda L, t: L.linalg.tensorinv(t, ind=1),
        lambda L, t: L.linalg.tensorinv(t.reshape(2, 3, 2, 3)),
        lambda L, t: L.linalg.tensorsolve(t.reshape(2, 3, 2, 3), L.tensor(b)),
        lambda L, t: L.linalg.tensorsolve(t.reshape(2, 3, 2, 3).permute(2, 0, 1, 3), L.tensor(b), dims=(0,)),
        lambda L, t: L.linalg.diagonal(t.reshape(3, 2, 6), offset=1, dim1=0, dim2=2),
        lambda L, t: L.linalg.diagonal(t),
    ):
        res = []
        for L in (graphnn, torch):
            t = L.tensor(a, requires_grad=True)
            out = fn(L, t)
            (out * out).sum().backward()
            res.append((out, t.grad))
        for g, t in zip(*res):
            _same(g, t, rtol=1e-10, atol=1e-10)
    c = RNG.standard_normal(6)
    res = []
    for L in (graphnn, torch):
        x, y = L.tensor(a4, requires_grad=True), L.tensor(c, requires_grad=True)
        v = L.linalg.vecdot(x, y) + L.linalg.vecdot(x, x, dim=0).sum()
        (v * v).sum().backward()
        res.append((v, x.grad, y.grad))
    for g, t in zip(*res):
        _same(g, t)
    with pytest.raises(RuntimeError, match="same dtype, but found x of type Float and y of type Double"):
        GL.vecdot(graphnn.zeros(2), graphnn.zeros(2, dtype=graphnn.float64))
    with pytest.raises(RuntimeError, match=r"prod\(self.shape\[ind:\]\) == prod\(self.shape\[:ind\]\), but got 3 != 2"):
        GL.tensorinv(graphnn.zeros(2, 3), ind=1)
    with pytest.raises(RuntimeError, match="strictly positive integer"):
        GL.tensorinv(graphnn.zeros(2, 2), ind=0)


def test_compiled_numeric_functions(torch):
    y = RNG.standard_normal((3, 5))
    a = RNG.standard_normal((3, 4))

    @graphnn.compile
    def f(y, x, idx, src):
        t = graphnn.trapezoid(y).sum() + graphnn.cumulative_trapezoid(y, dim=0).sum()
        g0, g1 = graphnn.gradient(y, spacing=0.5)
        p = graphnn.put(x, idx, src, accumulate=True)
        r = x.index_reduce(0, graphnn.tensor([0, 2]), src.reshape(2, 1).expand(2, 4), "amax")
        return t, g0 + g1, p, r, graphnn.fmax(y, y.flip(0)), graphnn.dist(y, y.flip(1))

    idx, src = np.array([0, 11]), np.array([1.0, 2.0])
    for _ in range(2):
        yg = graphnn.tensor(y, requires_grad=True)
        outs = f(yg, graphnn.tensor(a), graphnn.tensor(idx), graphnn.tensor(src))
        sum(o.sum() for o in outs).backward()
        yt = torch.tensor(y, requires_grad=True)
        x, i, s = torch.tensor(a), torch.tensor(idx), torch.tensor(src)
        g0, g1 = torch.gradient(yt, spacing=0.5)
        touts = (
            torch.trapezoid(yt).sum() + torch.cumulative_trapezoid(yt, dim=0).sum(),
            g0 + g1,
            torch.put(x, i, s, accumulate=True),
            x.index_reduce(0, torch.tensor([0, 2]), s.reshape(2, 1).expand(2, 4), "amax"),
            torch.fmax(yt, yt.flip(0)),
            torch.dist(yt, yt.flip(1)),
        )
        sum(o.sum() for o in touts).backward()
        for g, t in zip(outs, touts):
            _same(g, t)
        _same(yg.grad, yt.grad)
