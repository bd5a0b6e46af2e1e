"""torch.* / Tensor.* functions composed of graphnn ops (graphnn/core/extra_api.py), graphnn.func, graphnn.testing,
graphnn.serialization and the random fills, against PyTorch."""

import numpy as np
import pytest

import graphnn
from tolerance import accumulation_tolerance

RNG = np.random.default_rng(3)
A = RNG.standard_normal((3, 6))


def both(torch, fn, *arrays, grad: bool = True, **kw):
    """fn applied in both libraries to float64 copies of arrays: (graphnn result, torch result, their gradients of
    the sum of the outputs weighted 1, 2, 3, ...)."""
    res, grads = [], []
    for L in (graphnn, torch):
        xs = [L.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
        out = fn(L, *xs, **kw)
        if grad and out.dtype in (L.float32, L.float64):
            w = L.tensor(np.arange(1.0, out.numel() + 1).reshape(tuple(out.shape)))
            (out * w).sum().backward()
            grads.append([x.grad.numpy() if x.grad is not None else None for x in xs])
        res.append(out.detach().numpy())
    return res, grads


def check(torch, fn, *arrays, terms: int = 16, **kw):
    (g, t), grads = both(torch, fn, *arrays, **kw)
    tol = accumulation_tolerance("float64", terms, max(1.0, float(np.abs(t).max(initial=0))) * 64)
    np.testing.assert_allclose(g, t, rtol=0, atol=tol)
    if grads:
        for a, b in zip(*grads):
            if b is not None:
                np.testing.assert_allclose(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("cov", lambda L, x: L.cov(x)),
        ("cov_corr0", lambda L, x: L.cov(x, correction=0)),
        (
            "cov_weights",
            lambda L, x: L.cov(
                x, fweights=L.tensor([1, 2, 1, 3, 1, 1]), aweights=L.tensor([0.5, 1, 2, 1, 1, 0.3], dtype=L.float64)
            ),
        ),
        ("corrcoef", lambda L, x: L.corrcoef(x)),
        ("block_diag", lambda L, x: L.block_diag(x, x[0, :2], x[1:, 1:3])),
        ("combinations", lambda L, x: L.combinations(x[0], 2)),
        ("combinations_repl", lambda L, x: L.combinations(x[1, :4], 3, with_replacement=True)),
        ("chain_matmul", lambda L, x: L.chain_matmul(x, x.t(), x)),
        ("as_strided", lambda L, x: L.as_strided(x, (3, 4), (2, 3), 1)),
        ("renorm", lambda L, x: x.renorm(2, 0, 1.5)),
        ("renorm_p1", lambda L, x: x.renorm(1, 1, 0.8)),
    ],
)
def test_compositions_as_pytorch(torch, name, fn):
    check(torch, fn, A)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_as_pytorch(torch, reduce, include_self):
    index = np.array([[0, 2, 0, 1], [3, 3, 1, 0]])
    src = RNG.standard_normal((2, 4))
    base = RNG.standard_normal((3, 5))

    def fn(L, x, s):
        return x.scatter_reduce(1, L.tensor(index), s, reduce, include_self=include_self)

    (g, t), _ = both(torch, fn, base, src, grad=False)
    np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)
    if reduce in ("sum", "mean"):  # (PyTorch's prod/amax gradients pick ties their own way)
        check(torch, fn, base, src)


def test_integer_functions_and_dtype_rules(torch):
    a = np.array([3, -5, 8, 0, 7])
    g, t = graphnn.tensor(a), torch.tensor(a)
    np.testing.assert_array_equal((g << 2).numpy(), (t << 2).numpy())
    np.testing.assert_array_equal((g >> 1).numpy(), (t >> 1).numpy())
    np.testing.assert_array_equal(
        graphnn.isin(g, graphnn.tensor([8, 3])).numpy(), torch.isin(t, torch.tensor([8, 3])).numpy()
    )
    np.testing.assert_array_equal(
        graphnn.isin(g, [7], invert=True).numpy(), torch.isin(t, torch.tensor([7]), invert=True).numpy()
    )
    cases = [
        (lambda L: L.ones(2), lambda L: 1.0),
        (lambda L: L.ones(2, dtype=L.int64), lambda L: 1.5),
        (lambda L: L.ones(2, dtype=L.int64), lambda L: L.tensor(1.0)),
        (lambda L: L.ones(2), lambda L: L.tensor(1.0, dtype=L.float64)),
        (lambda L: L.ones(2, dtype=L.bool), lambda L: 3),
        (lambda L: L.tensor(True), lambda L: L.ones(2, dtype=L.int64)),
    ]
    for x, y in cases:
        assert (
            str(graphnn.result_type(x(graphnn), y(graphnn))).split(".")[-1]
            == str(torch.result_type(x(torch), y(torch))).split(".")[-1]
        )
    names = ["bool", "int64", "float32", "float64"]
    for a_ in names:
        for b_ in names:
            ga, gb, ta, tb = (
                getattr(graphnn, a_ if a_ != "bool" else "bool"),
                getattr(graphnn, b_),
                getattr(torch, a_),
                getattr(torch, b_),
            )
            assert str(graphnn.promote_types(ga, gb)).split(".")[-1] == str(torch.promote_types(ta, tb)).split(".")[-1]
            assert graphnn.can_cast(ga, gb) == torch.can_cast(ta, tb), (a_, b_)
    buf = np.arange(6, dtype=np.float32).tobytes()
    np.testing.assert_array_equal(
        graphnn.frombuffer(bytearray(buf), dtype=graphnn.float32, offset=4, count=3).numpy(), [1, 2, 3]
    )
    assert graphnn.asarray([1.0, 2.0], requires_grad=True).requires_grad


def test_random_fills_have_their_distributions():
    graphnn.manual_seed(0)
    n = 40000
    # means within 6 standard errors of the sample mean
    geo = graphnn.empty(n).geometric_(0.25).numpy()
    assert geo.min() >= 1 and abs(geo.mean() - 4) < 6 * np.sqrt((1 - 0.25) / 0.25**2 / n)
    logn = np.log(graphnn.empty(n).log_normal_(0.5, 0.3).numpy())
    assert abs(logn.mean() - 0.5) < 6 * 0.3 / np.sqrt(n)
    c = graphnn.empty(n, dtype=graphnn.float64).cauchy_(2.0, 0.5).numpy()
    assert abs(np.median(c) - 2.0) < 6 * 0.5 * np.pi / 2 / np.sqrt(n)  # the median's standard error
    p = graphnn.poisson(graphnn.full((n,), 3.0)).numpy()
    assert abs(p.mean() - 3.0) < 6 * np.sqrt(3.0 / n)
    with pytest.raises(RuntimeError, match="rate"):
        graphnn.poisson(graphnn.tensor([-1.0]))


def test_func_transforms_as_pytorch(torch):
    lin_g = graphnn.nn.Linear(3, 2).double()
    lin_t = torch.nn.Linear(3, 2).double()
    lin_t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in lin_g.state_dict().items()})
    x = RNG.standard_normal((4, 3))
    w = RNG.standard_normal((2, 3))
    out_g = graphnn.func.functional_call(lin_g, {"weight": graphnn.tensor(w)}, (graphnn.tensor(x),))
    out_t = torch.func.functional_call(lin_t, {"weight": torch.tensor(w)}, (torch.tensor(x),))
    np.testing.assert_allclose(out_g.detach().numpy(), out_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(lin_g.weight.detach().numpy(), lin_t.weight.detach().numpy())  # restored
    f = lambda L: lambda v: (L.sin(v) * v).sum()  # noqa: E731
    v = RNG.standard_normal(5)
    np.testing.assert_allclose(
        graphnn.func.grad(f(graphnn))(graphnn.tensor(v)).detach().numpy(),
        torch.func.grad(f(torch))(torch.tensor(v)).numpy(),
        rtol=1e-12,
    )
    gg = graphnn.func.grad(graphnn.func.grad(lambda v: (v**3).sum()))
    np.testing.assert_allclose(gg(graphnn.tensor(2.0, dtype=graphnn.float64)).detach().numpy(), 12.0)
    m = RNG.standard_normal((3, 5))
    j_g = graphnn.func.jacrev(lambda v: graphnn.tensor(m) @ graphnn.tanh(v))(graphnn.tensor(v))
    j_t = torch.func.jacrev(lambda v: torch.tensor(m) @ torch.tanh(v))(torch.tensor(v))
    np.testing.assert_allclose(j_g.detach().numpy(), j_t.numpy(), rtol=1e-12)
    b = RNG.standard_normal((4, 5))
    vm_g = graphnn.vmap(lambda r, s: (r * s).sum(), in_dims=(0, None))(graphnn.tensor(b), graphnn.tensor(v))
    vm_t = torch.vmap(lambda r, s: (r * s).sum(), in_dims=(0, None))(torch.tensor(b), torch.tensor(v))
    np.testing.assert_allclose(vm_g.numpy(), vm_t.numpy(), rtol=1e-12)


def test_testing_assert_close_and_serialization(torch, tmp_path):
    graphnn.testing.assert_close(graphnn.ones(3), graphnn.ones(3) + 1e-7)
    with pytest.raises(AssertionError, match="not close"):
        graphnn.testing.assert_close(graphnn.ones(3), graphnn.ones(3) + 1e-3)
    with pytest.raises(AssertionError, match="dtype"):
        graphnn.testing.assert_close(graphnn.ones(3), graphnn.ones(3, dtype=graphnn.float64))
    graphnn.testing.assert_close({"a": [graphnn.zeros(2)]}, {"a": [graphnn.zeros(2)]})
    graphnn.serialization.add_safe_globals([dict])
    with graphnn.serialization.safe_globals([list]):
        assert list in graphnn.serialization.get_safe_globals()
    graphnn.save({"x": graphnn.arange(3)}, tmp_path / "c.pt")
    np.testing.assert_array_equal(graphnn.serialization.load(tmp_path / "c.pt")["x"].numpy(), [0, 1, 2])


def test_func_grad_over_a_dict_of_parameters_and_per_sample_gradients():
    """torch.func's per-sample-gradient recipe: vmap(grad(loss), in_dims=(None, 0)) over functional_call with a
    dict of parameters gives a dict of per-sample gradients (here worked out by hand: d/dw (w.x + b)^2)."""
    F = graphnn.func
    lin = graphnn.nn.Linear(2, 1)
    with graphnn.no_grad():
        lin.weight.copy_(graphnn.tensor([[0.5, -0.25]]))
        lin.bias.fill_(0.1)
    params = {k: v.detach() for k, v in lin.named_parameters()}

    def loss(p, x):
        return (F.functional_call(lin, p, (x.unsqueeze(0),)) ** 2).sum()

    xs = np.arange(8, dtype=np.float32).reshape(4, 2) / 4
    g = F.grad(loss)(params, graphnn.tensor(xs[1]))
    assert g["weight"].grad_fn is None and not g["bias"].requires_grad  # plain results, as torch.func's
    per = F.vmap(F.grad(loss), in_dims=(None, 0))(params, graphnn.tensor(xs))
    for k, x in enumerate(xs):
        y = 0.5 * x[0] - 0.25 * x[1] + 0.1
        np.testing.assert_allclose(per["weight"][k].detach().numpy(), [2 * y * x], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(per["bias"][k].detach().numpy(), [2 * y], rtol=1e-6, atol=1e-7)


def test_func_hessian_jvp_and_post_accumulate_grad_hooks(torch):
    """torch.func.hessian (nested reverse mode) and jvp against PyTorch; register_post_accumulate_grad_hook runs
    after each accumulation into a leaf's .grad, until removed."""
    x = np.array([0.5, -1.0, 2.0], np.float32)
    v = np.array([1.0, 0.5, -2.0], np.float32)
    m = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    results = []
    for lib in (torch, graphnn):
        F = lib.func
        h = F.hessian(lambda t: (t.sin() * t.pow(2)).sum())(lib.tensor(x))
        out, jv = F.jvp(
            lambda t, w: (t.sin() * t.pow(3)).unsqueeze(0) @ w,
            (lib.tensor(x), lib.tensor(m)),
            (lib.tensor(v), lib.tensor(m * 0.1)),
        )
        results.append([h.detach().numpy(), out.detach().numpy(), jv.detach().numpy()])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    p = graphnn.nn.Parameter(graphnn.tensor([1.0, 2.0]))
    seen = []
    handle = p.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (p * 3).sum().backward()
    (p * 3).sum().backward()
    handle.remove()
    (p * 3).sum().backward()
    assert seen == [[3.0, 3.0], [6.0, 6.0]]
