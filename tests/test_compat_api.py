"""PyTorch's other spellings and small top-level names (graphnn.core.compat_api), 3-d pooling / unpooling modules,
lazy transposed convolutions and instance norms, and nn.Buffer, against PyTorch."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F

RNG = np.random.default_rng(11)
WINDOWS = ["hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"]


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("n", [0, 1, 2, 7, 16])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows(torch, name, n, periodic):
    ours = getattr(graphnn, name)(n, periodic)
    ref = getattr(torch, name)(n, periodic).numpy()
    assert ours.dtype == graphnn.float32 and tuple(ours.shape) == ref.shape
    # computed in float64 and rounded once; PyTorch computes in float32: a few float32 ulps of values <= 1
    np.testing.assert_allclose(ours.numpy(), ref, atol=4e-7 * max(n, 1))


def test_window_options(torch):
    np.testing.assert_allclose(
        graphnn.hamming_window(9, False, alpha=0.6, beta=0.4, dtype=graphnn.float64).numpy(),
        torch.hamming_window(9, False, alpha=0.6, beta=0.4, dtype=torch.float64).numpy(),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        graphnn.kaiser_window(10, True, 5.0).numpy(), torch.kaiser_window(10, True, 5.0).numpy(), atol=1e-6
    )
    with pytest.raises(RuntimeError, match="floating point"):
        graphnn.hann_window(4, dtype=graphnn.int64)
    with pytest.raises(RuntimeError, match="non-negative"):
        graphnn.hann_window(-1)


def test_constants_and_aliases(torch):
    for name in ("pi", "e", "inf"):
        assert getattr(graphnn, name) == getattr(torch, name)
    assert np.isnan(graphnn.nan) and graphnn.newaxis is None
    a, b = RNG.standard_normal(5), RNG.standard_normal(5)
    for name in ("greater", "greater_equal", "less", "less_equal", "not_equal"):
        ours = getattr(graphnn, name)(graphnn.tensor(a), graphnn.tensor(b)).numpy()
        assert (ours == getattr(torch, name)(torch.tensor(a), torch.tensor(b)).numpy()).all()
        assert (getattr(graphnn.tensor(a), name)(graphnn.tensor(b)).numpy() == ours).all()
    for name in ("concat", "concatenate"):
        out = getattr(graphnn, name)([graphnn.tensor(a), graphnn.tensor(b)], dim=0)
        np.testing.assert_array_equal(out.numpy(), np.concatenate([a, b]))
    np.testing.assert_array_equal(graphnn.absolute(graphnn.tensor(a)).numpy(), np.abs(a))
    x = graphnn.tensor(a)
    x.absolute_()
    np.testing.assert_array_equal(x.numpy(), np.abs(a))


@pytest.mark.parametrize("name", ["exp_", "relu_", "sigmoid_", "clamp_", "sqrt_"])
def test_top_level_inplace(torch, name):
    a = np.abs(RNG.standard_normal(6)) - 0.3
    args = (0.0, 0.5) if name == "clamp_" else ()
    x, t = graphnn.tensor(a), torch.tensor(a)
    r = getattr(graphnn, name)(x, *args)
    getattr(torch, name)(t, *args)
    assert r is x
    np.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-12, equal_nan=True)


def test_inplace_top_level_records_gradient(torch):
    res = []
    for L in (graphnn, torch):
        w = L.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)  # (float64: 1 - tanh^2 cancels)
        y = w * 3
        L.tanh_(y)
        y.sum().backward()
        res.append(w.grad.numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-12)


def test_small_functions(torch):
    assert graphnn.range(1, 4).tolist() == torch.range(1, 4).tolist()
    assert graphnn.range(0, 1, 0.25).tolist() == torch.range(0, 1, 0.25).tolist()
    assert graphnn.range(1, 4).dtype == graphnn.float32
    assert graphnn.rsub(graphnn.tensor([1.0, 2.0]), 5, alpha=2).tolist() == [3.0, 1.0]
    s = graphnn.scalar_tensor(3)
    assert s.shape == () and s.dtype == graphnn.float32 and s.item() == 3.0
    idx = [4, 7, -1, 0]
    ours = graphnn.unravel_index(graphnn.tensor(idx), (2, 4))
    ref = torch.unravel_index(torch.tensor(idx), (2, 4))
    assert [o.tolist() for o in ours] == [r.tolist() for r in ref]
    with pytest.raises(RuntimeError, match="out of bounds"):
        graphnn.unravel_index(graphnn.tensor([8]), (2, 4))
    assert graphnn.is_nonzero(graphnn.tensor([2])) and not graphnn.is_nonzero(graphnn.tensor(0.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        graphnn.is_nonzero(graphnn.ones(2))
    assert graphnn.typename(graphnn.ones(1)) == "graphnn.FloatTensor"
    np.testing.assert_array_equal(graphnn.from_dlpack(np.arange(3.0)).numpy(), [0.0, 1.0, 2.0])


def test_settings():
    graphnn.set_num_interop_threads(2)
    assert graphnn.get_num_interop_threads() == 2
    assert graphnn.set_flush_denormal(True) is False
    assert graphnn.get_default_device().type == "cpu"
    graphnn.set_default_device("cpu")
    with pytest.raises(RuntimeError, match="CPU"):
        graphnn.set_default_device("cuda")
    graphnn.set_anomaly_enabled(True)
    try:
        assert graphnn.is_anomaly_enabled()
    finally:
        graphnn.set_anomaly_enabled(False)
    graphnn.set_default_tensor_type("torch.DoubleTensor")
    try:
        assert graphnn.ones(1).dtype == graphnn.float64
    finally:
        graphnn.set_default_tensor_type(graphnn.FloatTensor)
    assert graphnn.ones(1).dtype == graphnn.float32


SCATTERS = [
    ("select_scatter", (4, 3), (3,), (0, 2)),
    ("slice_scatter", (4, 6), (4, 2), (1, 1, 5, 2)),
    ("diagonal_scatter", (4, 4), (3,), (1,)),
]


@pytest.mark.parametrize("name, shape, src_shape, args", SCATTERS, ids=[s[0] for s in SCATTERS])
def test_scatter_copies(torch, name, shape, src_shape, args):
    a, s = RNG.standard_normal(shape), RNG.standard_normal(src_shape)
    res = []
    for L in (graphnn, torch):
        x, src = L.tensor(a, requires_grad=True), L.tensor(s, requires_grad=True)
        y = getattr(L, name)(x, src, *args)
        (y * L.tensor(np.arange(y.numel()).reshape(shape))).sum().backward()
        res.append((y.detach().numpy(), x.grad.numpy(), src.grad.numpy()))
        assert (getattr(x, name)(src, *args).detach().numpy() == y.detach().numpy()).all()
    for o, r in zip(*res):
        np.testing.assert_allclose(o, r, rtol=1e-12)


def test_pool3d_and_unpool_modules(torch):
    x = RNG.standard_normal((2, 3, 4, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(
        nn.AvgPool3d(2, stride=1, padding=1)(graphnn.tensor(x)).numpy(),
        torch.nn.AvgPool3d(2, stride=1, padding=1)(torch.tensor(x)).numpy(),
        rtol=1e-6,
    )
    for nsp, sl in ((1, (slice(None), slice(None), 0, 0)), (2, (slice(None), slice(None), 0)), (3, ())):
        xs = x[sl]
        v, i = getattr(F, f"max_pool{nsp}d_with_indices")(graphnn.tensor(xs), 2)
        tv, ti = getattr(torch.nn.functional, f"max_pool{nsp}d_with_indices")(torch.tensor(xs), 2)
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        up = getattr(nn, f"MaxUnpool{nsp}d")(2)(v, i).numpy()
        np.testing.assert_array_equal(up, getattr(torch.nn, f"MaxUnpool{nsp}d")(2)(tv, ti).numpy())


def test_lazy_transposed_conv_and_instance_norm(torch):
    x = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    m, tm = nn.LazyConvTranspose2d(4, 3, stride=2), torch.nn.LazyConvTranspose2d(4, 3, stride=2)
    m(graphnn.tensor(x))
    tm(torch.tensor(x))
    assert type(m) is nn.ConvTranspose2d and tuple(m.weight.shape) == tuple(tm.weight.shape)
    m.load_state_dict({k: graphnn.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    np.testing.assert_allclose(
        m(graphnn.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )
    n1 = nn.LazyInstanceNorm1d(affine=True)
    n1(graphnn.tensor(x[0, :, 0]))  # unbatched (C, L): C = 3
    assert type(n1) is nn.InstanceNorm1d and n1.num_features == 3 and tuple(n1.weight.shape) == (3,)
    n2, tn2 = nn.LazyInstanceNorm2d(), torch.nn.LazyInstanceNorm2d()
    np.testing.assert_allclose(n2(graphnn.tensor(x)).numpy(), tn2(torch.tensor(x)).detach().numpy(), atol=1e-5)


def test_buffer(torch):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Buffer(graphnn.full((2,), 3.0))
            self.cache = nn.Buffer(graphnn.zeros(1), persistent=False)

        def forward(self, x):
            return x * self.scale

    net = Net()
    assert list(net.state_dict()) == ["scale"] and [n for n, _ in net.named_buffers()] == ["scale", "cache"]
    assert isinstance(net.scale, nn.Buffer) and not isinstance(graphnn.ones(1), nn.Buffer)
    assert not net.scale.requires_grad and list(net.parameters()) == []
    np.testing.assert_array_equal(graphnn.compile(net)(graphnn.ones(2)).numpy(), [3.0, 3.0])
    assert nn.NLLLoss2d is nn.NLLLoss


@pytest.mark.parametrize(
    "name", ["eq_", "ne_", "lt_", "ge_", "greater_", "less_equal_", "logical_and_", "logical_xor_"]
)
def test_inplace_comparisons(torch, name):
    a, b = np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 5.0]]), np.array([[0.0, 2.0, 2.0], [1.0, 0.0, 6.0]])
    res = []
    for L in (graphnn, torch):
        x = L.tensor(a)
        assert getattr(x, name)(L.tensor(b)) is x
        res.append(x.numpy())
    assert res[0].dtype == np.float64
    np.testing.assert_array_equal(*res)


def test_inplace_bitwise(torch):
    res = []
    for L in (graphnn, torch):
        x = L.tensor([5, 6, 7])
        x.bitwise_and_(L.tensor([1, 2, 4])).bitwise_or_(L.tensor([8, 8, 8])).bitwise_xor_(L.tensor([1, 1, 1]))
        res.append(x.tolist())
    assert res[0] == res[1]


def test_small_methods(torch):
    a = RNG.standard_normal((2, 3, 4))
    g, t = graphnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    for size in ((3, 1), (1, 3, 4), (2, 1, 4), (4,)):
        np.testing.assert_allclose(g.sum_to_size(*size).detach().numpy(), t.sum_to_size(*size).detach().numpy())
    with pytest.raises(RuntimeError, match="expandable"):
        g.sum_to_size(2, 4)
    g.sum_to_size(3, 1).sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), np.ones(a.shape))
    assert [p.shape for p in g.split_with_sizes([1, 2], 1)] == [p.shape for p in t.split_with_sizes([1, 2], 1)]
    assert len(g.unsafe_chunk(2, 2)) == 2 and len(g.unsafe_split(1)) == 2
    np.testing.assert_array_equal(g.adjoint().detach().numpy(), t.adjoint().detach().numpy())
    x = graphnn.arange(12.0)
    np.testing.assert_array_equal(
        x.as_strided((3, 3), (1, 2), 1).numpy(), torch.arange(12.0).as_strided((3, 3), (1, 2), 1).numpy()
    )
    np.testing.assert_array_equal(x.hardshrink(4.0).numpy(), torch.arange(12.0).hardshrink(4.0).numpy())
    assert x.is_cpu and not x.is_meta and not x.is_quantized and x.real is x
    with pytest.raises(RuntimeError, match="non-complex"):
        x.imag


def test_attention_backends_and_small_utilities(torch):
    from graphnn.nn.attention import SDPBackend, sdpa_kernel

    q = RNG.standard_normal((1, 2, 4, 8)).astype(np.float32)
    with sdpa_kernel([SDPBackend.MATH, SDPBackend.FLASH_ATTENTION]):
        out = F.scaled_dot_product_attention(*[graphnn.tensor(q)] * 3, is_causal=True)
    ref = torch.nn.functional.scaled_dot_product_attention(*[torch.tensor(q)] * 3, is_causal=True)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-5)
    with pytest.raises(AssertionError, match="SDPBackend"):
        with sdpa_kernel("math"):
            pass
    m = nn.utils.skip_init(nn.Linear, 3, 4, device="cpu")
    assert type(m) is nn.Linear and tuple(m.weight.shape) == (4, 3)
    assert graphnn.amp.is_autocast_available("cpu")
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 2))
    np.testing.assert_allclose(graphnn.linalg.matmul(graphnn.tensor(a), graphnn.tensor(b)).numpy(), a @ b)
    t = graphnn.testing.make_tensor(50, 3, dtype=graphnn.float64, low=-1, high=2, requires_grad=True)
    assert t.dtype == graphnn.float64 and t.requires_grad and tuple(t.shape) == (50, 3)
    assert -1 <= t.min().item() and t.max().item() < 2
    i = graphnn.testing.make_tensor((200,), dtype=graphnn.int64, exclude_zero=True)
    assert i.dtype == graphnn.int64 and (i != 0).all() and -9 <= i.min().item() and i.max().item() < 10


def test_foreach(torch):
    res = []
    for L in (graphnn, torch):
        ema, cur = [L.zeros(2), L.zeros(3)], [L.ones(2), L.full((3,), 2.0)]
        assert L._foreach_lerp_(ema, cur, 0.1) is ema
        L._foreach_mul_(ema, [0.9, 0.5])
        L._foreach_add_(ema, cur, alpha=0.1)
        L._foreach_addcmul_(ema, cur, cur, value=0.5)
        norms = L._foreach_norm(ema)
        res.append([t.tolist() for t in ema] + [[n.item() for n in norms]] + [L._foreach_sqrt(cur)[1].tolist()])
    np.testing.assert_allclose(
        np.concatenate([np.ravel(r) for r in res[0]]), np.concatenate([np.ravel(r) for r in res[1]]), rtol=1e-6
    )
    with pytest.raises(AttributeError, match="_foreach_nothing"):
        graphnn._foreach_nothing


def test_batchnorm_statistics_in_the_default_dtype(torch):
    graphnn.set_default_dtype(graphnn.float64)
    try:
        bn = nn.BatchNorm1d(3)
        assert bn.running_mean.dtype == graphnn.float64 and bn.running_var.dtype == graphnn.float64
        assert nn.Transformer.generate_square_subsequent_mask(3).dtype == graphnn.float64
    finally:
        graphnn.set_default_dtype(graphnn.float32)
    assert nn.BatchNorm1d(3).running_mean.dtype == graphnn.float32
