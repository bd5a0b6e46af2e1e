"""In-place shape changes (squeeze_, unsqueeze_, t_, transpose_, swapdims_, as_strided_), gcd / lcm, Tensor.storage()
and linalg.matrix_exp, against PyTorch, eagerly and inside graphnn.compile."""

import numpy as np
import pytest

import graphnn
from graphnn.core.tensor import TraceError

RNG = np.random.default_rng(7)


# -- in-place shape changes --------------------------------------------------------------------------------------
STEPS = [
    ("t_", lambda x: x.t_()),
    ("unsqueeze_", lambda x: x.unsqueeze_(1)),
    ("squeeze_", lambda x: x.unsqueeze_(0).squeeze_()),
    ("transpose_", lambda x: x.unsqueeze_(-1).transpose_(0, 2)),
    ("swapdims_", lambda x: x.swapdims_(0, 1)),
    ("swapaxes_", lambda x: x.swapaxes_(1, 0)),
]


@pytest.mark.parametrize("name, step", STEPS, ids=[s[0] for s in STEPS])
def test_inplace_shape_change_eager(torch, name, step):
    a = RNG.standard_normal((2, 3))
    res = []
    for L in (graphnn, torch):
        y = L.tensor(a, requires_grad=True)
        z = y * 2
        out = step(z)
        assert out is z
        w = L.tensor(np.arange(1.0, z.numel() + 1).reshape(tuple(z.shape)))
        (z * w).sum().backward()
        res.append((tuple(z.shape), z.detach().numpy().copy(), y.grad.numpy(), z._version))
    (gs, gv, gg, gver), (ts, tv, tg, tver) = res
    assert gs == ts and gver >= 1
    np.testing.assert_array_equal(gv, tv)
    np.testing.assert_array_equal(gg, tg)  # exact: the gradient only moves the weights (products by 2)


def test_inplace_shape_change_shares_storage_and_refuses_leaves(torch):
    for L in (graphnn, torch):
        x = L.arange(6.0).reshape(2, 3)
        x.t_()
        x.mul_(10)  # the storage is the same memory: a write through the transposed tensor
        assert tuple(x.shape) == (3, 2) and x.tolist() == [[0, 30], [10, 40], [20, 50]]
        b = L.arange(6.0).reshape(2, 3)
        v = b[0]
        v.unsqueeze_(0)
        v.mul_(2)
        assert tuple(v.shape) == (1, 3) and b.tolist() == [[0, 2, 4], [3, 4, 5]]
        leaf = L.ones(2, 3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            leaf.t_()
        with pytest.raises(RuntimeError, match="view of a leaf Variable"):
            leaf[0].unsqueeze_(0)
        with L.no_grad():
            leaf.t_()
        assert tuple(leaf.shape) == (3, 2)
        with pytest.raises(RuntimeError, match="dimensions"):
            L.ones(2, 3, 4).t_()
        with pytest.raises((IndexError, RuntimeError), match="out of range"):
            L.ones(2, 3).transpose_(0, 5)
    # values recorded before the change are refused by backward, as PyTorch's version check does
    y = graphnn.ones(2, 3, requires_grad=True)
    z = y * 2
    loss = (z * z).sum()
    z.t_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_as_strided_inplace(torch):
    for L in (graphnn, torch):
        w = L.arange(6.0)
        w.as_strided_((2, 2), (1, 2))
        assert w.tolist() == [[0, 2], [1, 3]]
        w.add_(100)  # writes the memory: elements 0..3
        assert w.storage().tolist() == [100, 101, 102, 103, 4, 5]
    with pytest.raises(RuntimeError, match="as_strided_: not supported on a view"):
        graphnn.arange(6.0)[1:].as_strided_((3,), (1,))  # (graphnn: only on contiguous tensors that are not views)


def test_inplace_shape_change_compiled(torch):
    a = RNG.standard_normal((2, 3))

    def step(L, x):
        z = x * 2
        z.t_()
        z.unsqueeze_(0)
        z.transpose_(0, 1)
        return z.squeeze_(1) * L.arange(1.0, 3.0)

    f = graphnn.compile(lambda x: step(graphnn, x))
    x = graphnn.tensor(a, requires_grad=True)
    out = f(x)
    out.sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    tout = step(torch, tx)
    tout.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), tout.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())

    def through_view(x):  # a view reshaped in place, then written: its base follows
        z = x * 2
        v = z[0]
        v.unsqueeze_(0)
        v.mul_(3)
        return z

    x = graphnn.ones(2, 3, requires_grad=True)
    out = graphnn.compile(through_view)(x)
    out.sum().backward()
    assert out.tolist() == [[6.0] * 3, [2.0] * 3] and x.grad.tolist() == [[6.0] * 3, [2.0] * 3]
    g = graphnn.compile(lambda x: x.t_(), fullgraph=True)
    with pytest.raises(TraceError, match="t_ of .* outside graphnn.compile"):
        g(graphnn.ones(2, 3))


# -- gcd / lcm ---------------------------------------------------------------------------------------------------
GCD_A = np.array([12, -18, 0, 0, 7, 2**62, 7540113804746346429, -(2**63) + 1, 1], dtype=np.int64)
GCD_B = np.array([8, 12, 0, -5, 0, 3 * 2**40, 4660046610375530309, 6, -1], dtype=np.int64)


def test_gcd_lcm_eager_and_compiled(torch):
    ta, tb = torch.tensor(GCD_A), torch.tensor(GCD_B)
    a, b = graphnn.tensor(GCD_A), graphnn.tensor(GCD_B)
    np.testing.assert_array_equal(graphnn.gcd(a, b).numpy(), torch.gcd(ta, tb).numpy())
    small = slice(0, 5)  # lcm of the large pairs overflows int64 (PyTorch wraps around)
    np.testing.assert_array_equal(graphnn.lcm(a[small], b[small]).numpy(), torch.lcm(ta[small], tb[small]).numpy())
    f = graphnn.compile(lambda x, y: (x.gcd(y), x.lcm(y)))
    g, m = f(a, b)
    np.testing.assert_array_equal(g.numpy(), torch.gcd(ta, tb).numpy())  # consecutive Fibonacci numbers: 91 steps
    np.testing.assert_array_equal(m.numpy()[small], torch.lcm(ta, tb).numpy()[small])
    c = graphnn.tensor([[12], [9]])
    c.gcd_(graphnn.tensor([8, 6]).reshape(2, 1))
    assert c.tolist() == [[4], [3]]
    c.lcm_(graphnn.tensor([[10]]))
    assert c.tolist() == [[20], [30]]
    with pytest.raises(NotImplementedError, match="gcd_cpu.*Float"):
        graphnn.gcd(graphnn.ones(2), graphnn.ones(2))
    with pytest.raises(RuntimeError, match="broadcast"):
        graphnn.lcm(graphnn.tensor([1, 2]), graphnn.tensor([1, 2, 3]))


# -- storage -----------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_storage(torch):
    for L in (graphnn, torch):
        x = L.arange(6.0).reshape(2, 3)
        s, u = x.storage(), x.untyped_storage()
        assert (s.size(), len(s), s.element_size(), s.nbytes()) == (6, 6, 4, 24)
        assert (u.size(), len(u), u.element_size(), u.nbytes()) == (24, 24, 1, 24)
        assert s.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        assert u.tolist()[4:8] == list(np.float32(1.0).tobytes())
        assert s.data_ptr() == x.data_ptr() == x[1].storage().data_ptr()
        assert x[1].storage().size() == 6  # a view's storage is its base's
        assert isinstance(s, L.TypedStorage) and isinstance(u, L.UntypedStorage)
        assert s.dtype == L.float32
        assert L.tensor([1, 2], dtype=L.int64).storage().element_size() == 8


# -- matrix_exp --------------------------------------------------------------------------------------------------
def _matrix(n: int, norm: float, nonnegative: bool) -> np.ndarray:
    m = RNG.standard_normal((n, n))
    m = np.abs(m) if nonnegative else m
    return m * (norm / np.abs(m).sum(0).max())


def _tolerances(a: np.ndarray, dtype: str, w: np.ndarray):
    """Entries of exp(A) and of the gradient are sums of products bounded by those of exp(|A|) (the series with
    every term made non-negative), normwise (the solve's error is); scaling by 2^-s and squaring s times (2^s ~ ||A||_1 / 5.4) doubles the relative
    error per squaring, after the ~ n u of each of the Pade approximant's dozen products and its solve. Allowed:
    2 (both sides) * 32 n u (1 + ||A||_1) times exp(|A|)'s largest entry (the gradient: of exp(|A|)^T |W| exp(|A|)^T
    times n)."""
    n = a.shape[0]
    u = np.finfo(dtype).eps / 2
    e, term, k = np.eye(n), np.eye(n), 1
    while np.abs(term).max() > 1e-18 * np.abs(e).max():
        term = term @ np.abs(a) / k
        e, k = e + term, k + 1
    f = 64 * n * u * (1 + np.abs(a).sum(0).max())
    return f * e.max(), f * (e.T @ np.abs(w) @ e.T).max() * n  # normwise: the solve mixes rows


MATRIX_EXP_CASES = [(0.01, False), (1.0, False), (5.0, False), (20.0, True), (20.0, False)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matrix_exp_matches_torch(torch, dtype):
    for norm, nonneg in MATRIX_EXP_CASES:
        a = _matrix(4, norm, nonneg).astype(dtype)
        w = RNG.standard_normal((4, 4))
        tol, gtol = _tolerances(a.astype(np.float64), dtype, w)
        if dtype == "float32" and not nonneg and norm > 5:
            continue  # exp(|A|) ~ e^20 >> exp(A): a float32 bound there says nothing
        x = graphnn.tensor(a, requires_grad=True)
        out = graphnn.linalg.matrix_exp(x)
        (out * graphnn.tensor(w.astype(dtype))).sum().backward()
        tx = torch.tensor(a.astype(np.float64), requires_grad=True)
        tout = torch.linalg.matrix_exp(tx)
        (tout * torch.tensor(w)).sum().backward()
        assert out.dtype == getattr(graphnn, dtype)
        np.testing.assert_array_less(np.abs(out.detach().numpy() - tout.detach().numpy()), tol)
        np.testing.assert_array_less(np.abs(x.grad.numpy() - tx.grad.numpy()), gtol)


def test_matrix_exp_batched_compiled_and_errors(torch):
    a = np.stack([_matrix(3, 0.01, False), _matrix(3, 3.0, False), _matrix(3, 20.0, True)])
    f = graphnn.compile(lambda x: graphnn.matrix_exp(x).sum(0))
    x = graphnn.tensor(a, requires_grad=True)
    out = f(x)
    out.sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    tout = torch.matrix_exp(tx).sum(0)
    tout.sum().backward()
    tol = sum(_tolerances(m, "float64", np.ones((3, 3)))[0] for m in a)
    gtol = max(_tolerances(m, "float64", np.ones((3, 3)))[1] for m in a)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=0, atol=gtol)
    np.testing.assert_array_equal(graphnn.tensor(a).matrix_exp().shape, (3, 3, 3))
    for L in (graphnn, torch):
        with pytest.raises(RuntimeError, match="square matrices"):
            L.linalg.matrix_exp(L.ones(2, 3))
        with pytest.raises(RuntimeError, match="floating point"):
            L.linalg.matrix_exp(L.ones(2, 2, dtype=L.int64))
        assert tuple(L.linalg.matrix_exp(L.ones(0, 0)).shape) == (0, 0)


# -- details real programs ran into -----------------------------------------------------------------------------
def test_index_put_accumulates_over_several_index_tensors():
    """index_put_(..., accumulate=True) with an index tensor per leading dimension (broadcast together, negative
    positions from the end): repeated positions add up, eagerly, compiled and in the gradient."""
    t = graphnn.zeros(2, 4)
    t.index_put_(
        (graphnn.tensor([0, 0, 1]), graphnn.tensor([3, 3, -3])), graphnn.tensor([1.0, 2.0, 5.0]), accumulate=True
    )
    np.testing.assert_array_equal(t.numpy(), [[0, 0, 0, 3], [0, 5, 0, 0]])
    t3 = graphnn.zeros(3, 4, 2)
    t3.index_put_((graphnn.tensor([0, -1, 0]), graphnn.tensor([[3], [3]])), graphnn.ones(2, 3, 2), accumulate=True)
    want = np.zeros((3, 4, 2))
    for i in (0, 2, 0):
        want[i, 3] += 2  # two rows of the broadcast index, each adding ones of width 2
    np.testing.assert_array_equal(t3.numpy(), want)

    def f(t, i, j, v):
        t = t.clone()
        t.index_put_((i, j), v, accumulate=True)
        return t

    args = (graphnn.zeros(2, 4), graphnn.tensor([0, 0, 1]), graphnn.tensor([3, 3, 1]), graphnn.tensor([1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(graphnn.compile(f)(*args).numpy(), f(*args).numpy())
    v = graphnn.tensor([1.0, 2.0, 5.0], requires_grad=True)
    y = graphnn.zeros(2, 4).index_put_((args[1], args[2]), v * 2, accumulate=True)
    (y * graphnn.arange(8.0).view(2, 4)).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [6.0, 6.0, 10.0])  # 2 * the weights at (0, 3), (0, 3), (1, 1)
    with pytest.raises(IndexError):
        graphnn.zeros(2, 4).index_put_(
            (graphnn.tensor([0, 2]), graphnn.tensor([3, 3])), graphnn.ones(2), accumulate=True
        )


def test_autograd_grad_takes_torch_keywords():
    """only_inputs (deprecated, ignored) and materialize_grads (zeros for unused inputs), as torch.autograd.grad."""
    x, y = graphnn.randn(3, requires_grad=True), graphnn.randn(2, requires_grad=True)
    (gx,) = graphnn.autograd.grad((x * 2).sum(), x, only_inputs=True)
    np.testing.assert_array_equal(gx.numpy(), [2.0, 2.0, 2.0])
    gx, gy = graphnn.autograd.grad((x * 2).sum(), [x, y], materialize_grads=True)
    np.testing.assert_array_equal(gy.numpy(), [0.0, 0.0])
    with pytest.raises(RuntimeError, match="not have been used"):
        graphnn.autograd.grad((x * 2).sum(), [x, y])


def test_a_list_of_numpy_float64_scalars_makes_a_float64_tensor():
    """A NumPy float64 scalar is typed data (as in torch.tensor([np.mean(a), np.std(a)])); Python floats are not."""
    assert graphnn.tensor([np.float64(1.5), np.float64(2.5)]).dtype == graphnn.float64
    assert graphnn.tensor([[np.float64(1.0)], [2.0]]).dtype == graphnn.float64
    assert graphnn.tensor([1.5, 2.5]).dtype == graphnn.float32
    assert graphnn.tensor([np.float32(1.5), 2.0]).dtype == graphnn.float32


def test_the_accumulated_grad_of_a_0d_parameter_is_writable():
    """A second backward adds into a 0-d .grad, which zero_() then clears in place (the manual SGD loop of the
    'Learning PyTorch with Examples' tutorial)."""
    x = graphnn.linspace(-1, 1, 5)
    c = graphnn.tensor(0.3, requires_grad=True)
    for _ in range(3):
        (c * x).pow(2).sum().backward()
        (c * x).pow(2).sum().backward()  # accumulates
        with graphnn.no_grad():
            c -= 0.05 * c.grad
        c.grad.zero_()
        assert c.grad.item() == 0.0
    # each step: c -= 0.05 * 2 * (2 c sum(x^2)) with sum(x^2) = 2.5, so c *= 1 - 0.05 * 10 = 0.5
    assert abs(c.item() - 0.3 * 0.5**3) < 1e-7


def test_rng_state_as_a_tensor_initial_seed_and_fork_rng():
    graphnn.manual_seed(5)
    assert graphnn.initial_seed() == 5
    state = graphnn.get_rng_state()
    assert state.shape == (37,) and int(state.max()) <= 255
    a = graphnn.rand(4)
    graphnn.set_rng_state(state.clone())
    np.testing.assert_array_equal(graphnn.rand(4).numpy(), a.numpy())
    after = graphnn.get_rng_state()
    with graphnn.random.fork_rng():
        graphnn.manual_seed(99)
        graphnn.rand(5)
    assert graphnn.initial_seed() == 5
    np.testing.assert_array_equal(graphnn.get_rng_state().numpy(), after.numpy())


def test_small_torch_apis():
    lstm = graphnn.nn.LSTM(2, 3, num_layers=2, bidirectional=True)
    assert len(lstm.all_weights) == 4 and lstm.all_weights[1][0] is lstm.weight_ih_l0_reverse
    assert [w.shape for w in lstm.all_weights[2]] == [(12, 6), (12, 3), (12,), (12,)]
    assert graphnn.ones(1).is_inference() is False
    with graphnn.inference_mode():
        made, computed = graphnn.zeros(2), graphnn.ones(2) * 2
        with graphnn.inference_mode(False):
            outside = graphnn.ones(2) + 1
    assert made.is_inference() and computed.is_inference() and not outside.is_inference()
    assert graphnn.version.cuda is None and graphnn.version.__version__ == graphnn.__version__
    total = graphnn.nn.utils.get_total_norm([graphnn.ones(3), graphnn.full((1,), 2.0)])
    assert abs(total.item() - 7**0.5) < 1e-6
    p = graphnn.nn.Parameter(graphnn.ones(4))
    p.grad = graphnn.full((4,), 3.0)
    graphnn.nn.utils.clip_grads_with_norm_([p], 1.0, graphnn.nn.utils.get_total_norm([p.grad]))
    assert abs(float(p.grad.norm()) - 1.0) < 1e-5


def test_a_dimension_out_of_range_is_an_index_error():
    for f in (
        lambda: graphnn.tensor([1.0, 2.0]).softmax(dim=1),
        lambda: graphnn.nn.functional.log_softmax(graphnn.zeros(2, 3), dim=2),
        lambda: graphnn.zeros(2).sum(dim=1),
    ):
        with pytest.raises(IndexError, match="Dimension out of range"):
            f()


def test_save_holds_unsigned_arrays_and_tied_weights_once(tmp_path):
    state = np.random.RandomState(3).get_state()  # ('MT19937', a uint32 array, ...), as training scripts save it
    enc = graphnn.nn.Embedding(50, 8)
    dec = graphnn.nn.Linear(8, 50, bias=False)
    dec.weight = enc.weight
    sd = {"enc": enc.state_dict(), "dec": dec.state_dict(), "np_rng": state}
    graphnn.save(sd, tmp_path / "ck.pt")
    back = graphnn.load(tmp_path / "ck.pt", weights_only=False)
    assert back["np_rng"][1].dtype == np.uint32 and (back["np_rng"][1] == state[1]).all()
    assert back["enc"]["weight"] is back["dec"]["weight"]  # one tensor, as the tied weight was
    assert (tmp_path / "ck.pt").stat().st_size < 50 * 8 * 4 * 1.5 + 2500


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linspace_values_are_torchs(torch, dtype):
    """Bit for bit: each value one fused multiply-add from the nearer end, in the dtype."""
    for n in list(range(0, 20)) + [100, 1001]:
        for a, b in ((-1, 1), (0, 1), (-3.5, 2.25), (1e-3, 7.7)):
            want = torch.linspace(a, b, n, dtype=getattr(torch, dtype)).numpy()
            got = graphnn.linspace(a, b, n, dtype=getattr(graphnn, dtype)).numpy()
            assert got.dtype == want.dtype and np.array_equal(got, want), (n, a, b)


def test_more_torch_apis_against_torch(torch):
    """icdf of the location-scale distributions, multilabel_margin_loss (values and gradient), msort; BatchNorm's
    message for an input of other channels; Module.set_submodule and the in-place Module.compile()."""
    p = [0.01, 0.3, 0.5, 0.9]
    for name, args in (
        ("Normal", (1.0, 2.0)),
        ("Uniform", (-1.0, 3.0)),
        ("Exponential", (2.0,)),
        ("Laplace", (0.5, 1.5)),
    ):
        want = getattr(torch.distributions, name)(*[torch.tensor(a) for a in args]).icdf(torch.tensor(p)).numpy()
        got = getattr(graphnn.distributions, name)(*[graphnn.tensor(a) for a in args]).icdf(graphnn.tensor(p))
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    y = np.array([[3, 0, -1, 1, 2], [1, 2, 4, -1, -1], [-1, 0, 0, 0, 0]])
    for red in ("mean", "sum", "none"):
        xt, xg = torch.tensor(x, requires_grad=True), graphnn.tensor(x, requires_grad=True)
        want = torch.nn.functional.multilabel_margin_loss(xt, torch.tensor(y), reduction=red)
        got = graphnn.nn.functional.multilabel_margin_loss(xg, graphnn.tensor(y), reduction=red)
        want.sum().backward()
        got.sum().backward()
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(graphnn.msort(graphnn.tensor(x)).numpy(), torch.msort(torch.tensor(x)).numpy())
    bn = graphnn.nn.BatchNorm2d(4)
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements not 4"):
        bn(graphnn.randn(2, 3, 4, 4))
    m = graphnn.nn.Sequential(graphnn.nn.Linear(2, 3), graphnn.nn.ReLU())
    m.set_submodule("1", graphnn.nn.Tanh())
    assert isinstance(m[1], graphnn.nn.Tanh)
    want = m(graphnn.ones(4, 2)).detach().numpy()
    m.compile()
    # (native tanh and the reference differ by an ulp or two)
    np.testing.assert_allclose(m(graphnn.ones(4, 2)).detach().numpy(), want, rtol=1e-6, atol=1e-6)
    assert m._compiled_call.last is not None  # (the call ran the compiled program)
