"""Tensor operations a GPT written for PyTorch uses, against PyTorch: split/chunk/unbind, masked_fill, tril/triu,
topk/sort/argsort, cumsum, einsum, gather/scatter/scatter_add, bmm/baddbmm, contiguous, new_* factories,
multinomial, devices and dtypes, pow with a number base and the in-place elementwise methods.

Every operation runs eagerly and under graphnn.compile (forward and backward) on the same float64 inputs as PyTorch
(parity_util.check: values and gradients within twice their rounding-error bound, integers exactly); grad_fn names
and errors are compared with PyTorch's. The last test generates tokens with a small GPT-style model written once for
both libraries: with top_k=1 the sampled tokens are the greedy ones and must equal PyTorch's.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import graphnn
from parity_util import check, close, to_np
from tolerance import recorded_bounds


def _rng(seed=0):
    return np.random.default_rng(seed)


def _distinct(shape, seed=0):
    """float64 values that differ pairwise by at least 0.1 (no ties: sort orders are unique)."""
    n = int(np.prod(shape))
    return ((_rng(seed).permutation(n) - n / 2) * 0.25 + _rng(seed + 1).uniform(-0.05, 0.05, n)).reshape(shape)


def both(torch, fn, inputs, grad=True, compiled=(False, True)):
    """fn(L, *tensors) with L = graphnn and L = torch: outputs and gradients, eagerly and compiled."""
    for c in compiled:
        check(torch, lambda *a: fn(graphnn, *a), lambda *a: fn(torch, *a), inputs, compiled=c, grad=grad)


def grad_fn_names(torch, fn, inputs) -> None:
    """fn(L, *tensors) gives results with PyTorch's grad_fn names."""
    names = []
    for L in (graphnn, torch):
        ts = [L.tensor(a, requires_grad=a.dtype.kind == "f") if isinstance(a, np.ndarray) else a for a in inputs]
        out = fn(L, *ts)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        names.append([type(o.grad_fn).__name__ if o.grad_fn is not None else None for o in outs])
    assert names[0] == names[1], names


def same_error(torch, fn, exc=RuntimeError, match=None) -> None:
    """fn(L) raises exc in both libraries (graphnn's message matching `match`)."""
    for L in (graphnn, torch):
        with pytest.raises(exc, match=match if L is graphnn else None):
            fn(L)


# -- split, chunk, unbind ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "how",
    [("split", 2, 0), ("split", [1, 3, 1], 1), ("chunk", 3, 1), ("chunk", 2, -1), ("unbind", None, 1)],
    ids=str,
)
def test_split_chunk_unbind(torch, how):
    name, arg, dim = how

    def fn(L, x):
        y = x * 1.5
        parts = y.unbind(dim) if name == "unbind" else getattr(y, name)(arg, dim)
        funcs = L.unbind(y, dim) if name == "unbind" else getattr(L, name)(y, arg, dim)
        return tuple(p * (i + 1) for i, p in enumerate(parts)) + tuple(funcs[:1])

    both(torch, fn, [_rng().standard_normal((4, 5))])
    grad_fn_names(torch, lambda L, x: getattr(x * 1, name)(*((dim,) if arg is None else (arg, dim))), [np.ones((4, 5))])


# -- masked_fill -------------------------------------------------------------------------------------------------
def test_masked_fill(torch):
    x = _rng().standard_normal((2, 3, 4))
    mask = _rng(1).random((3, 4)) < 0.4

    def fn(L, x, m):
        a = x.masked_fill(m, -1.5)
        b = L.masked_fill(x, m, L.tensor(2.0, dtype=L.float64))
        c = x.masked_fill(m[None], float("-inf")).softmax(-1)  # the attention mask
        d = x * 1
        d.masked_fill_(m, 0.25)
        return a, b, c, d

    both(torch, fn, [x, mask])
    grad_fn_names(torch, lambda L, x, m: x.masked_fill(m, 0.0), [x, mask])
    ints = [np.arange(6).reshape(2, 3), mask[:2, :3], mask[:2, :3] | mask[1:, 1:]]
    both(
        torch, lambda L, i, m, b: (i.masked_fill(m, 7.9), i.masked_fill(m, -2.5), b.masked_fill(m, 0)), ints, grad=False
    )
    same_error(torch, lambda L: L.ones(2).masked_fill(L.tensor([1, 0]), 0.0), match="only supports boolean masks")
    same_error(
        torch, lambda L: L.ones(2, dtype=L.int64).masked_fill(L.tensor([True, False]), float("inf")), match="overflow"
    )
    same_error(torch, lambda L: L.ones(2).masked_fill(L.tensor([True, False]), L.ones(2)), match="0-dimensional")


# -- tril / triu -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("diagonal", [0, 1, -1, 3])
def test_tril_triu(torch, diagonal):
    def fn(L, x):
        return L.tril(x, diagonal), x.triu(diagonal=diagonal), L.triu(x[0], diagonal) * 2

    both(torch, fn, [_rng().standard_normal((2, 4, 5))])
    grad_fn_names(torch, lambda L, x: (L.tril(x), x.triu(1)), [np.ones((3, 3))])
    for L in (graphnn, torch):  # the causal mask of attention, from ones
        m = L.tril(L.ones(4, 4)).view(1, 1, 4, 4)
        assert to_np(m).tolist() == np.tril(np.ones((4, 4)))[None, None].tolist()
    same_error(torch, lambda L: L.tril(L.ones(3)), match="at least 2 dimensions")


def test_tril_inplace(torch):
    outs = []
    for L in (graphnn, torch):
        x = L.ones(3, 3)
        x.tril_(-1)
        y = L.ones(2, 3)
        y.triu_()
        outs.append((to_np(x), to_np(y)))
    close(outs[0][0], outs[1][0])
    close(outs[0][1], outs[1][1])


# -- topk, sort, argsort -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw", [{}, {"dim": 0}, {"largest": False}, {"dim": 1, "largest": True, "sorted": True}], ids=str
)
def test_topk(torch, kw):
    def fn(L, x):
        r = L.topk(x, 2, **kw)
        v, i = x.topk(3, **kw)
        return r.values * 2, r.indices, v, i

    both(torch, fn, [_distinct((3, 5, 4))])


def test_topk_result_and_names(torch):
    x = _distinct((2, 6))
    grad_fn_names(torch, lambda L, x: x.topk(2).values, [x])
    for L in (graphnn, torch):
        r = L.tensor(x).topk(2)
        assert r._fields == ("values", "indices") if L is graphnn else True
        values, indices = r
        assert values is r.values and indices is r.indices
    same_error(torch, lambda L: L.ones(2, 3).topk(4), match="selected index k out of range")


@pytest.mark.parametrize("kw", [{}, {"descending": True}, {"dim": 0, "stable": True}, {"dim": 1, "descending": True}])
def test_sort_argsort(torch, kw):
    def fn(L, x):
        r = L.sort(x, **kw)
        v, i = x.sort(**kw)
        return r.values, r.indices, v * v, i, L.argsort(x, **kw), x.argsort(**kw)

    both(torch, fn, [_distinct((3, 4, 5))])
    grad_fn_names(torch, lambda L, x: x.sort(**kw).values, [_distinct((3, 4))])


def test_sort_stable_ties_and_nan(torch):
    """Stable sorts keep equal elements in order (also descending); NaN sorts above every number; ints and bools."""
    data = [
        np.array([[2.0, 1.0, 2.0, np.nan, 1.0, -np.inf, 2.0, np.nan], [0.0, -0.0, 3.0, 3.0, 3.0, np.inf, -1.0, 0.0]]),
        np.array([[3, 1, 3, -2, 1, 0, 3], [5, 5, 5, -9, 0, 0, 1]]),
        np.array([[True, False, True, False, True]]),
    ]
    for a in data:
        for desc in (False, True):
            got = [
                (to_np(r.values), to_np(r.indices))
                for L in (graphnn, torch)
                for r in [L.tensor(a).sort(dim=-1, descending=desc, stable=True)]
            ]
            np.testing.assert_array_equal(got[0][0], got[1][0])
            np.testing.assert_array_equal(got[0][1], got[1][1])
            f = graphnn.compile(lambda x: x.sort(dim=-1, descending=desc, stable=True))
            r = f(graphnn.tensor(a))
            np.testing.assert_array_equal(to_np(r.values), got[1][0])
            np.testing.assert_array_equal(to_np(r.indices), got[1][1])


# -- cumsum ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum(torch, dim):
    def fn(L, x):
        return L.cumsum(x, dim), (x * x).cumsum(dim=dim)

    both(torch, fn, [_rng().standard_normal((3, 4, 5))])
    grad_fn_names(torch, lambda L, x: x.cumsum(dim), [np.ones((2, 3, 2))])


def test_cumsum_dtypes(torch):
    def fn(L, x, i, b):
        return x.cumsum(0, dtype=L.float32), i.cumsum(1), b.cumsum(-1), i.cumsum(0, dtype=L.float64)

    args = [_rng().standard_normal((3, 4)), _rng().integers(-5, 6, (3, 4)), _rng().random((3, 4)) < 0.5]
    both(torch, fn, args)
    outs = []
    for L in (graphnn, torch):
        y = L.tensor([[1.0, 2.0], [3.0, 4.0]])
        y.cumsum_(1)
        outs.append(to_np(y))
    close(outs[0], outs[1])


# -- einsum ------------------------------------------------------------------------------------------------------
EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhtd,bhsd->bhts", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(3, 3)]),
    ("bii->b", [(2, 3, 3)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 2)]),
    ("...d,...d->...", [(2, 1, 3), (4, 3)]),
    ("b...,b->...", [(2, 3, 4), (2,)]),
    ("ijk,kl,lm->im", [(2, 3, 4), (4, 5), (5, 2)]),
    ("ab,cd", [(2, 3), (4, 1)]),
    ("Ab,bA->A", [(3, 4), (4, 3)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum(torch, eq, shapes):
    inputs = [_rng(i).standard_normal(s) for i, s in enumerate(shapes)]
    both(torch, lambda L, *xs: L.einsum(eq, *xs), inputs)


def test_einsum_list_ints_and_errors(torch):
    both(torch, lambda L, a, b: L.einsum("ij,jk->ik", [a, b]), [_rng().standard_normal((2, 3)), np.ones((3, 2))])
    ints = [_rng().integers(-3, 4, (2, 3)), _rng(1).integers(-3, 4, (3, 4))]
    both(torch, lambda L, a, b: L.einsum("ij,jk->ik", a, b), ints, grad=False)
    same_error(torch, lambda L: L.einsum("ij,jk->ik", L.ones(2, 3)), match="fewer operands")
    same_error(
        torch, lambda L: L.einsum("ij,jk", L.ones(2, 3), L.ones(3, 2, dtype=L.float64)), match="different dtypes"
    )
    same_error(torch, lambda L: L.einsum("ij->k", L.ones(2, 3)), match="does not appear")
    same_error(torch, lambda L: L.einsum("ijk->ij", L.ones(2, 3)), match="does not match")


# -- gather, scatter, scatter_add --------------------------------------------------------------------------------
def test_gather_scatter(torch):
    x = _rng().standard_normal((3, 5))
    idx = np.array([[0, 4, 2], [1, 3, 2], [4, 0, 1]])  # distinct per row (scatter's winner is then defined)
    src = _rng(1).standard_normal((3, 3))

    def fn(L, x, idx, src, rows):
        g = L.gather(x, 1, idx)
        a = x.scatter(1, idx, src)
        b = L.scatter(x, 1, idx, 2.5)
        c = x.scatter(1, idx, value=-1.0)
        d = x.scatter_add(1, idx, src)
        e = L.scatter_add(x, 0, rows, src[:2])
        y = x * 1
        y.scatter_(1, idx, src)
        z = x * 1
        z.scatter_add_(1, idx, src * 2)
        return g, a, b, c, d, e, y, z

    both(torch, fn, [x, idx, src, np.array([[0, 2, 1], [2, 2, 0]])])
    for op in ("scatter", "scatter_add"):
        grad_fn_names(torch, lambda L, x, i, s: getattr(x, op)(1, i, s), [x, idx, src])
    grad_fn_names(torch, lambda L, x, i: x.scatter(1, i, 1.0), [x, idx])
    # a src larger than the index: its leading part is used (PyTorch's backward rejects this case, so no gradients)
    bigger = [x, idx, _rng(2).standard_normal((4, 6))]
    both(torch, lambda L, x, i, s: (x.scatter(1, i, s), x.scatter_add(1, i, s)), bigger, grad=False)


def test_scatter_ints_and_errors(torch):
    def fn(L, x, idx):
        return x.scatter(0, idx, L.tensor([[7, 8, 9]])), x.scatter_add(0, idx, x[:1])

    both(torch, fn, [np.arange(6).reshape(2, 3), np.array([[1, 0, 1]])], grad=False)
    same_error(torch, lambda L: L.zeros(2, 3).scatter(1, L.tensor([[3]]), 1.0), match="out of bounds for dimension 1")
    same_error(torch, lambda L: L.zeros(2, 3).scatter(1, L.tensor([1]), 1.0), match="same number of dimensions")
    same_error(torch, lambda L: L.zeros(2, 3).gather(1, L.tensor([[-1]])), match="index -1 is out of bounds")
    same_error(torch, lambda L: L.zeros(2, 3).gather(0, L.tensor([[1.0]])), match="Expected dtype int32/int64")
    f = graphnn.compile(lambda x, i: x.gather(1, i))
    with pytest.raises(RuntimeError, match="index 7 is out of bounds for dimension 1 with size 3"):
        f(graphnn.zeros(2, 3), graphnn.tensor([[0], [7]]))


# -- bmm, baddbmm, contiguous, new_* ------------------------------------------------------------------------------
def test_bmm_baddbmm(torch):
    a, b, c = (_rng(i).standard_normal(s) for i, s in enumerate([(2, 3, 4), (2, 4, 5), (2, 3, 5)]))

    def fn(L, a, b, c):
        d = c * 1
        d.baddbmm_(a, b, alpha=0.5)
        return (
            d,
            L.bmm(a, b),
            a.bmm(b),
            L.baddbmm(c, a, b),
            L.baddbmm(c, a, b, beta=0.5, alpha=2.0),
            c.baddbmm(a, b, beta=0.0, alpha=-1.0),
        )

    both(torch, fn, [a, b, c])
    grad_fn_names(torch, lambda L, a, b, c: (L.bmm(a, b), L.baddbmm(c, a, b, alpha=2.0)), [a, b, c])
    same_error(torch, lambda L: L.bmm(L.ones(2, 3), L.ones(2, 3, 4)), match="3D tensor")


def test_contiguous(torch):
    def fn(L, x):
        y = x.transpose(1, 2).contiguous().view(2, -1)
        z = (x * 1).contiguous()
        return y, z, x[:, 1].contiguous()

    both(torch, fn, [_rng().standard_normal((2, 3, 4))])
    outs = []
    for L in (graphnn, torch):  # a copy of a non-contiguous tensor: writing it leaves the original alone
        x = L.ones(2, 3)
        y = x.t().contiguous()
        y.mul_(2)
        z = x.contiguous()
        outs.append((to_np(x).tolist(), z is x, y.is_contiguous()))
    assert outs[0] == outs[1]


def test_new_factories(torch):
    for L in (graphnn, torch):
        x = L.tensor([[1.0, 2.0]], dtype=L.float64)
        i = L.tensor([1, 2])
        cases = [
            (x.new_zeros(2, 3), (2, 3), L.float64, 0.0),
            (x.new_ones((2,)), (2,), L.float64, 1.0),
            (x.new_full((3,), 7), (3,), L.float64, 7.0),
            (i.new_full((2,), 7), (2,), L.int64, 7),
            (x.new_empty(4), (4,), L.float64, None),
            (x.new_zeros(2, dtype=L.int64), (2,), L.int64, 0),
            (x.new_tensor([1, 2]), (2,), L.float64, None),
            (i.new_tensor([1.5]), (1,), L.int64, None),
        ]
        for t, shape, dt, fill in cases:
            assert tuple(t.shape) == shape and t.dtype == dt and not t.requires_grad
            if fill is not None:
                assert (to_np(t) == fill).all()
        assert x.new_zeros(2, requires_grad=True).requires_grad
        r = L.randint_like(x, 2, 5, dtype=L.int64)
        assert r.shape == x.shape and r.dtype == L.int64 and 2 <= int(r.min()) and int(r.max()) < 5
        assert L.randint_like(i, 3).dtype == L.int64 and L.select(x, 1, -1).tolist() == [2.0]
        assert L.is_floating_point(x) and not i.is_floating_point()
        assert (x.element_size(), i.element_size(), L.ones(1).element_size()) == (8, 8, 4)


# -- multinomial -------------------------------------------------------------------------------------------------
def test_multinomial_one_hot_is_deterministic(torch):
    """With all the weight on one category the draw is that category, in both libraries."""
    p = np.zeros((3, 7))
    p[[0, 1, 2], [4, 0, 6]] = [1.0, 3.0, 0.5]
    for replacement in (False, True):
        want = to_np(torch.multinomial(torch.tensor(p), 1, replacement=replacement))
        got = to_np(graphnn.multinomial(graphnn.tensor(p), 1, replacement=replacement))
        np.testing.assert_array_equal(got, want)
        f = graphnn.compile(lambda q: q.multinomial(2, replacement=True))
        assert (to_np(f(graphnn.tensor(p))) == want).all()


def test_multinomial_seeded_and_fresh_in_compiled_code():
    p = graphnn.softmax(graphnn.tensor(_rng().standard_normal((4, 10))), -1)
    for replacement in (False, True):
        graphnn.manual_seed(3)
        a = to_np(graphnn.multinomial(p, 5, replacement))
        graphnn.manual_seed(3)
        b = to_np(p.multinomial(5, replacement=replacement))
        np.testing.assert_array_equal(a, b)
        f = graphnn.compile(lambda q: graphnn.multinomial(q, 5, replacement))
        graphnn.manual_seed(3)
        np.testing.assert_array_equal(to_np(f(p)), a)  # the same draws from the same generator state
        draws = {to_np(f(p)).tobytes() for _ in range(6)}
        assert len(draws) > 1, "compiled code must draw fresh samples at every call"
        if not replacement:
            assert all(len(set(row)) == 5 for row in a.tolist())


@pytest.mark.parametrize("replacement", [False, True])
def test_multinomial_frequencies(replacement):
    """Category frequencies of N draws (the first draw of each row without replacement) are within 6 binomial
    standard deviations of the probabilities; zero-probability categories are never drawn."""
    w = np.array([0.5, 0.0, 2.0, 1.0, 0.0, 4.0, 0.5])
    q = w / w.sum()
    n = 20000
    graphnn.manual_seed(11)
    rows = graphnn.tensor(np.tile(w, (n, 1)))
    first = to_np(graphnn.multinomial(rows, 3 if not replacement else 1, replacement))[:, 0]
    freq = np.bincount(first, minlength=len(w)) / n
    assert (np.abs(freq - q) <= 6 * np.sqrt(q * (1 - q) / n)).all(), (freq, q)
    many = to_np(graphnn.multinomial(graphnn.tensor(w), 4, replacement))
    assert not np.isin(many, [1, 4]).any()


def test_multinomial_errors(torch):
    same_error(torch, lambda L: L.multinomial(L.tensor([0.5, -0.1]), 1), match="element < 0")
    same_error(torch, lambda L: L.multinomial(L.tensor([0.5, 0.5]), 3), match="without replacement")
    same_error(torch, lambda L: L.multinomial(L.tensor([0.0, 0.0]), 1), match="sum of probabilities")
    same_error(torch, lambda L: L.multinomial(L.ones(2, 2, 2), 1), match="1 or 2 dim")


# -- devices and dtypes ------------------------------------------------------------------------------------------
def test_device_objects(torch):
    for L in (graphnn, torch):
        d = L.device("cpu")
        assert (repr(d), str(d), d.type, d.index) == ("device(type='cpu')", "cpu", "cpu", None)
        d0 = L.device("cpu:0")
        assert (repr(d0), str(d0), d0.index) == ("device(type='cpu', index=0)", "cpu:0", 0)
        assert d == L.device(d) and d != d0 and hash(d) == hash(L.device("cpu"))
        assert repr(L.device("cuda", 1)) == "device(type='cuda', index=1)"
        x = L.zeros(2)
        assert x.device == L.device("cpu") and x.device.type == "cpu" and not x.is_cuda
        assert not L.cuda.is_available()
    same_error(torch, lambda L: L.device("gpu"), match="Expected one of cpu, cuda")


def test_to_and_device_keywords(torch):
    for L in (graphnn, torch):
        x = L.tensor([1.5, -2.0])
        assert x.to("cpu") is x and x.to(L.device("cpu")) is x and x.to(x) is x
        assert x.to(L.float64).dtype == L.float64
        assert x.to("cpu", L.int64).dtype == L.int64
        assert x.to(device="cpu", dtype=L.float64).dtype == L.float64
        assert x.to(L.tensor([1])).dtype == L.int64
        assert x.to(dtype=L.float32, copy=True) is not x
        dev = "cuda" if L.cuda.is_available() else "cpu"
        for t in [
            L.zeros(2, 3, device=dev),
            L.ones((2, 3), dtype=L.float64, device=dev),
            L.empty(2, 3, device=L.device("cpu")),
            L.full((2, 3), 1.5, device=dev, dtype=L.float64),
            L.randn(2, 3, device=dev),
            L.rand(2, 3, device=dev, dtype=L.float64),
            L.arange(0, 6, dtype=L.long, device=dev).view(2, 3),
            L.randint(0, 5, (2, 3), device=dev),
            L.tensor([[1, 2, 3], [4, 5, 6]], device=dev, dtype=L.float32),
            L.zeros_like(x, device=dev).expand(2, 2),
            L.ones_like(x, dtype=L.int64, device=dev),
            L.full_like(x, 3, device=dev),
            L.empty_like(x, device=dev),
            L.eye(3, device=dev, dtype=L.float64),
            L.linspace(0, 1, 5, device=dev),
            L.as_tensor([1, 2], device=dev),
        ]:
            assert t.device == L.device("cpu")
        assert L.full((2,), True).dtype == L.bool and L.full((2,), 3).dtype == L.int64
        assert L.arange(3, requires_grad=False).dtype == L.int64
        assert L.zeros(2, requires_grad=True).requires_grad and L.arange(3.0, requires_grad=True).requires_grad


@pytest.mark.parametrize("dev", ["cuda", "cuda:0", "mps"])
def test_other_devices_are_clear_errors(dev):
    x = graphnn.ones(2)
    for make in (
        lambda: graphnn.zeros(2, device=dev),
        lambda: graphnn.tensor([1.0], device=dev),
        lambda: graphnn.arange(3, device=dev),
        lambda: x.to(dev),
        lambda: x.to(graphnn.device(dev)),
        lambda: x.new_zeros(2, device=dev),
    ):
        with pytest.raises(RuntimeError, match=f"device '{dev}' is not available: graphnn computes on the CPU only"):
            make()
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        x.cuda()
    with pytest.raises(RuntimeError, match="pin_memory: no accelerator is available"):
        x.pin_memory()


def test_half_dtypes_map_to_float32():
    for dt in (graphnn.float16, graphnn.bfloat16, graphnn.half):
        with pytest.warns(UserWarning, match="are float32"):
            t = graphnn.zeros(2, dtype=dt)
        assert t.dtype == graphnn.float32
        with pytest.warns(UserWarning, match="are float32"):
            assert graphnn.ones(2).to(dt).dtype == graphnn.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert graphnn.float16 != graphnn.float32 and graphnn.float16 == graphnn.half
        assert graphnn.float16.is_floating_point


# -- pow and the elementwise functions ---------------------------------------------------------------------------
def test_pow_with_number_base(torch):
    def fn(L, x):
        return L.pow(2, x), 2.0**x, L.pow(x, 3.0), x ** x.abs(), L.pow(x.abs() + 1, x)

    both(torch, fn, [_rng().standard_normal((3, 4))])
    grad_fn_names(torch, lambda L, x: (L.pow(2, x), x**2, x**x, 2**x), [_rng().standard_normal(3)])
    for L in (graphnn, torch):
        assert to_np(2 ** L.arange(4)).tolist() == [1, 2, 4, 8] and (2 ** L.arange(4)).dtype == L.int64
        assert (2.0 ** L.arange(3)).dtype == L.float32


UNARY = ["rsqrt", "erf", "sin", "cos", "log1p", "expm1", "exp", "tanh", "sigmoid", "sqrt", "abs", "neg"]


@pytest.mark.parametrize("op", UNARY)
def test_elementwise_functions_methods_and_inplace(torch, op):
    x = _rng().uniform(0.3, 2.0, (3, 4))

    def fn(L, x):
        y = x * 1
        getattr(y, op + "_")()
        return getattr(L, op)(x), getattr(x, op)(), y

    both(torch, fn, [x])
    grad_fn_names(torch, lambda L, x: getattr(L, op)(x), [x])


# -- a GPT-style model, written once for both libraries --------------------------------------------------------
def make_gpt(torch, vocab=11, block=8, d=16, heads=2, seed=0):
    """A two-block decoder (causal self-attention with a tril mask, tanh-GELU MLP, layer norms written out) in
    PyTorch's API; `torch` is either library. Weights come from NumPy so both libraries hold the same model."""
    nn = torch.nn
    F = torch.nn.functional
    rng = np.random.default_rng(seed)

    def param(*shape, scale=0.3):
        return nn.Parameter(torch.tensor(rng.standard_normal(shape) * scale, dtype=torch.float32))

    class Norm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.bias = param(d, scale=0.1), param(d, scale=0.1)

        def forward(self, x):
            mu = x.mean(-1, keepdim=True)
            var = ((x - mu) ** 2).mean(-1, keepdim=True)
            return (x - mu) * torch.rsqrt(var + 1e-5) * (1 + self.weight) + self.bias

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = Norm(), Norm()
            self.qkv, self.proj = param(d, 3 * d), param(d, d)
            self.up, self.down = param(d, 4 * d), param(4 * d, d)
            self.register_buffer("mask", torch.tril(torch.ones(block, block)).view(1, 1, block, block))

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = (self.n1(x) @ self.qkv).split(d, dim=2)
            q, k, v = (t.view(B, T, heads, C // heads).transpose(1, 2) for t in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
            y = F.softmax(att, dim=-1) @ v
            x = x + y.transpose(1, 2).contiguous().view(B, T, C) @ self.proj
            h = self.n2(x) @ self.up
            h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0))))
            return x + h @ self.down

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = param(block, d)
            self.blocks = nn.ModuleList([Block(), Block()])
            self.norm = Norm()
            with torch.no_grad():
                self.tok.weight.copy_(torch.tensor(rng.standard_normal((vocab, d)), dtype=torch.float32))

        def forward(self, idx):
            b, t = idx.size()
            pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
            x = self.tok(idx) + self.pos[pos]
            for blk in self.blocks:
                x = blk(x)
            return self.norm(x) @ self.tok.weight.t()

        @torch.no_grad()
        def generate(self, idx, new_tokens, temperature=1.0, top_k=None, step=None):
            for _ in range(new_tokens):
                cond = idx if idx.size(1) <= block else idx[:, -block:]
                logits = (step or self)(cond)
                logits = logits[:, -1, :] / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("Inf")
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1)
                idx = torch.cat((idx, idx_next), dim=1)
            return idx

    return GPT()


def test_gpt_generate_top_k_1_matches_pytorch(torch):
    """Greedy generation (top_k=1 leaves one candidate, so the sample is the argmax) gives PyTorch's tokens,
    eagerly and with the model's forward compiled; top_k=3 samples only among the 3 best tokens."""
    start = np.array([[1, 5, 2], [7, 0, 3]])
    want = to_np(make_gpt(torch).eval().generate(torch.tensor(start), 9, top_k=1))
    model = make_gpt(graphnn).eval()
    got = to_np(model.generate(graphnn.tensor(start), 9, top_k=1))
    np.testing.assert_array_equal(got, want)
    step = graphnn.compile(model)
    np.testing.assert_array_equal(to_np(model.generate(graphnn.tensor(start), 9, top_k=1, step=step)), want)

    @graphnn.compile
    def sample_top3(logits):  # the sampling step compiled, assignment through a mask included
        v, _ = graphnn.topk(logits, 3)
        logits[logits < v[:, [-1]]] = -float("Inf")
        return graphnn.multinomial(graphnn.softmax(logits, dim=-1), num_samples=1)

    with graphnn.no_grad():
        logits = model(graphnn.tensor(start))[:, -1, :]
        top3 = to_np(logits.topk(3).indices)
        for _ in range(5):
            pick = to_np(sample_top3(logits * 1))
            assert all(p in row for p, row in zip(pick[:, 0], top3))


def test_gpt_logits_and_gradients_match_pytorch(torch):
    """The same model's logits and a loss's parameter gradients, eagerly: within their rounding-error bounds."""
    idx = np.array([[1, 5, 2, 9], [7, 0, 3, 3]])
    g, t = make_gpt(graphnn), make_gpt(torch)
    gl, tl = g(graphnn.tensor(idx)), t(torch.tensor(idx))
    g_loss, t_loss = (
        graphnn.nn.functional.cross_entropy(gl.view(-1, 11), graphnn.tensor(idx).view(-1)),
        (torch.nn.functional.cross_entropy(tl.view(-1, 11), torch.tensor(idx).view(-1))),
    )
    bounds = recorded_bounds([gl, g_loss], g_loss)
    close(gl, tl, "logits", bounds.tol(0))
    g_loss.backward()
    t_loss.backward()
    for (name, a), (_, b) in zip(g.named_parameters(), t.named_parameters()):
        close(a.grad, b.grad, f"d {name}", bounds.grad_tol(a))


def test_float_tensor_to_an_int_tensor_power_is_the_reference_exactly():
    """Eager x ** e with an int64 exponent tensor computes in x's dtype, as the reference kernel and compiled code
    do (NumPy alone would compute in float64: fuzz seed 1007100)."""
    from graphnn.ir import Graph, TensorType, interpret

    x = np.full((3, 4), 0.6487213, np.float32)
    for e in (-2, 3):
        g = Graph()
        a, b = g.add_input(TensorType((3, 4), "float32"), "x"), g.add_input(TensorType((), "int64"), "e")
        g.outputs = [g.emit("pow", a, b)]
        want = interpret(g, [x, np.array(e)])[0]
        got = (graphnn.tensor(x) ** graphnn.tensor(np.array(e))).numpy()
        np.testing.assert_array_equal(got, want)
