"""Complex tensors (graphnn.core.complex_tensor: real and imaginary parts in a real tensor): PyTorch's values,
gradients through view_as_complex / view_as_real to real parameters, eagerly and compiled (rotary embeddings)."""

import numpy as np
import pytest

import graphnn

RNG = np.random.default_rng(5)


def _np(x):
    return x.detach().resolve_conj().numpy() if hasattr(x, "detach") else np.asarray(x)


def test_creation_arithmetic_and_values(torch):
    data = [1 + 2j, 3 - 1j, -0.5j]
    g, t = graphnn.tensor(data), torch.tensor(data)
    assert g.dtype == graphnn.complex64 == graphnn.cfloat and g.shape == t.shape and graphnn.is_complex(g)
    assert graphnn.tensor(np.array(data)).dtype == graphnn.complex128  # NumPy's complex128 kept, as PyTorch
    r = RNG.standard_normal(3).astype(np.float32)
    gr, tr = graphnn.tensor(r), torch.tensor(r)
    for name, fn in (
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
    ):
        for (ga, ta), (gb, tb) in (((g, t), (g.conj(), t.conj())), ((g, t), (gr, tr)), ((gr, tr), (g, t))):
            np.testing.assert_allclose(_np(fn(ga, gb)), _np(fn(ta, tb)).astype(np.complex64), rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(_np(fn(g, 2 - 1j)), _np(fn(t, 2 - 1j)), rtol=1e-6, err_msg=f"{name} scalar")
        np.testing.assert_allclose(_np(fn(3j, g)), _np(fn(3j, t)), rtol=1e-6, err_msg=f"reflected {name}")
    np.testing.assert_allclose(_np(1j * gr), _np(1j * tr))
    for name in ("abs", "angle", "exp", "conj"):
        np.testing.assert_allclose(_np(getattr(g, name)()), _np(getattr(t, name)()), rtol=2e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(_np(graphnn.angle(g)), _np(torch.angle(t)), rtol=1e-6)
    np.testing.assert_allclose(_np(g.real), _np(t.real))
    np.testing.assert_allclose(_np(g.imag), _np(t.imag))
    assert g.sum().item() == pytest.approx(t.sum().item()) and g.mean().item() == pytest.approx(t.mean().item())
    assert g.tolist() == pytest.approx(t.tolist()) and "1.0000+2.0000j" in repr(g)


def test_shapes_and_indexing(torch):
    a = (RNG.standard_normal((2, 3, 4)) + 1j * RNG.standard_normal((2, 3, 4))).astype(np.complex64)
    g, t = graphnn.tensor(a), torch.tensor(a)
    for name, fn in (
        ("view", lambda x: x.view(6, 4)),
        ("reshape", lambda x: x.reshape(-1)),
        ("flatten", lambda x: x.flatten(1)),
        ("unsqueeze", lambda x: x.unsqueeze(-1)),
        ("transpose", lambda x: x.transpose(0, 2)),
        ("permute", lambda x: x.permute(2, 0, 1)),
        ("index", lambda x: x[1, :, 2]),
        ("slice", lambda x: x[:, 1:]),
        ("ellipsis", lambda x: x[..., 0]),
        ("expand", lambda x: x[:, :1].expand(2, 5, 4)),
        ("sum dim", lambda x: x.sum(1)),
        (
            "view_as_real",
            lambda x: (
                graphnn.view_as_real(x)
                if isinstance(x, graphnn.core.complex_tensor.ComplexTensor)
                else torch.view_as_real(x)
            ),
        ),
    ):
        out_g, out_t = fn(g), fn(t)
        assert tuple(out_g.shape) == tuple(out_t.shape), name
        np.testing.assert_allclose(_np(out_g), _np(out_t), rtol=1e-6, err_msg=name)
    with pytest.raises(AttributeError, match="not available for complex tensors"):
        g.cumsum(0)
    with pytest.raises(RuntimeError, match="last dimension of size 2"):
        graphnn.view_as_complex(graphnn.ones(3, 3))


def _rotary(T, buffer: bool):
    """An attention layer with LLaMA-style rotary embeddings in complex form (written for this test)."""
    nn = T.nn

    class RotaryAttention(nn.Module):
        def __init__(self, dim=16, heads=2, length=8):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.qkv = nn.Linear(dim, 3 * dim, bias=False)
            self.out = nn.Linear(dim, dim, bias=False)
            inv = 1.0 / (10000 ** (T.arange(0, self.head_dim, 2).float() / self.head_dim))
            angles = T.outer(T.arange(length).float(), inv)
            rot = T.polar(T.ones_like(angles), angles)
            if buffer:
                self.register_buffer("rot", rot, persistent=False)
            else:
                self.rot = rot

        def rotate(self, x):
            xc = T.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
            rot = self.rot[: x.shape[1]].view(1, x.shape[1], 1, -1)
            return T.view_as_real(xc * rot).flatten(3).type_as(x)

        def forward(self, x):
            b, n, d = x.shape
            q, k, v = (t.view(b, n, self.heads, self.head_dim) for t in self.qkv(x).split(d, dim=2))
            q, k = self.rotate(q), self.rotate(k)
            y = T.nn.functional.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
            )
            return self.out(y.transpose(1, 2).reshape(b, n, d))

    return RotaryAttention()


@pytest.mark.parametrize("buffer", [False, True])
@pytest.mark.parametrize("compiled", [False, True])
def test_rotary_embeddings_train_as_pytorch(torch, buffer, compiled):
    torch.manual_seed(0)
    tm, gm = _rotary(torch, buffer), _rotary(graphnn, buffer)
    gm.load_state_dict({k: graphnn.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    assert gm.rot.dtype == graphnn.complex64 and list(gm.state_dict()) == list(tm.state_dict())
    x = RNG.standard_normal((2, 8, 16)).astype(np.float32)
    topt, gopt = torch.optim.SGD(tm.parameters(), lr=0.1), graphnn.optim.SGD(gm.parameters(), lr=0.1)

    def step(model, opt, xs):
        opt.zero_grad()
        loss = model(xs).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    gstep = graphnn.compile(step) if compiled else step
    for i in range(3):
        lt, lg = step(tm, topt, torch.tensor(x)), gstep(gm, gopt, graphnn.tensor(x))
        # float32 sums of 16-256 products of O(1) values per step: a few ulps each
        assert lg.item() == pytest.approx(lt.item(), rel=1e-5), i
    np.testing.assert_allclose(_np(gm.qkv.weight), _np(tm.qkv.weight), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "randn", "rand"])
@pytest.mark.parametrize("dtype", ["cfloat", "complex128"])
def test_factories_make_complex_tensors(name, dtype):
    """zeros / ones / empty / randn / rand with a complex dtype give complex tensors (randn: each part of variance 1/2,
    rand: each part in [0, 1)), requires_grad included."""
    dt = getattr(graphnn, dtype)
    z = getattr(graphnn, name)(300, 4, dtype=dt, requires_grad=True)
    assert z.dtype == dt and tuple(z.shape) == (300, 4) and z.requires_grad
    ri = graphnn.view_as_real(z).detach().numpy()
    assert ri.dtype == (np.float32 if dtype == "cfloat" else np.float64)
    if name in ("zeros", "empty"):
        assert not ri.any()
    elif name == "ones":
        assert (ri[..., 0] == 1).all() and not ri[..., 1].any()
    elif name == "rand":
        assert ri.min() >= 0 and ri.max() < 1
    else:  # 2400 draws of variance 1/2: the sample variance within 5 standard errors
        assert abs(ri.var() - 0.5) < 5 * 0.5 * np.sqrt(2 / ri.size)


def test_view_as_complex_needs_adjacent_pairs(torch):
    """view_as_complex refuses what PyTorch refuses: a last dimension of stride != 1, odd strides or offsets."""
    cases = [lambda t: t.randn(4, 2).t().contiguous().t(), lambda t: t.randn(3, 5)[:, 1:3]]
    for make in cases:
        with pytest.raises(RuntimeError) as want:
            torch.view_as_complex(make(torch))
        with pytest.raises(RuntimeError, match=str(want.value)):
            graphnn.view_as_complex(make(graphnn))
    assert tuple(graphnn.view_as_complex(graphnn.randn(3, 3, 2)[:, :2]).shape) == (3, 2)


def _fno(lib):
    """A Fourier neural operator layer as users write it: complex weights (nn.Parameter of a complex rand), rfft2,
    a complex einsum of the retained modes into a complex zeros buffer, irfft2."""
    nn, F = lib.nn, lib.nn.functional

    class Spectral(nn.Module):
        def __init__(self, cin, cout, m):
            super().__init__()
            self.m, self.cout = m, cout
            self.w1 = nn.Parameter(0.1 * lib.rand(cin, cout, m, m, dtype=lib.cfloat))
            self.w2 = nn.Parameter(0.1 * lib.rand(cin, cout, m, m, dtype=lib.cfloat))

        def forward(self, x):
            xf = lib.fft.rfft2(x)
            out = lib.zeros(x.shape[0], self.cout, x.size(-2), x.size(-1) // 2 + 1, dtype=lib.cfloat)
            m = self.m
            out[:, :, :m, :m] = lib.einsum("bixy,ioxy->boxy", xf[:, :, :m, :m], self.w1)
            out[:, :, -m:, :m] = lib.einsum("bixy,ioxy->boxy", xf[:, :, -m:, :m], self.w2)
            return lib.fft.irfft2(out, s=(x.size(-2), x.size(-1)))

    class FNO(nn.Module):
        def __init__(self):
            super().__init__()
            self.lift, self.spec, self.skip, self.proj = (
                nn.Linear(3, 6),
                Spectral(6, 6, 3),
                nn.Conv2d(6, 6, 1),
                nn.Linear(6, 1),
            )

        def forward(self, a):
            x = self.lift(a).permute(0, 3, 1, 2)
            x = F.gelu(self.spec(x) + self.skip(x))
            return self.proj(x.permute(0, 2, 3, 1)).squeeze(-1)

    return FNO()


@pytest.mark.parametrize("compiled", [False, True])
def test_complex_parameters_train_a_fourier_neural_operator_as_pytorch(torch, compiled, tmp_path):
    """Complex parameters (their real view is what trains: PyTorch's Adam steps complex parameters as real views
    too), complex einsum and slice assignment, complex state_dict entries both ways, torch.save files with complex
    storages, graphnn.save / load of complex tensors."""
    torch.manual_seed(0)
    tm = _fno(torch)
    path = tmp_path / "fno.pt"
    torch.save(tm.state_dict(), path)
    gm = _fno(graphnn)
    gm.load_state_dict(graphnn.load(path))
    state = gm.state_dict()
    assert state["spec.w1"].dtype == graphnn.complex64 and tuple(state["spec.w1"].shape) == (6, 6, 3, 3)
    assert sum(p.numel() for p in gm.parameters()) == sum(
        2 * p.numel() if p.is_complex() else p.numel() for p in tm.parameters()
    )
    rng = np.random.default_rng(0)
    a, y = rng.standard_normal((3, 8, 8, 3)).astype(np.float32), rng.standard_normal((3, 8, 8)).astype(np.float32)
    topt, gopt = torch.optim.Adam(tm.parameters(), lr=1e-2), graphnn.optim.Adam(gm.parameters(), lr=1e-2)

    def step(model, opt, F, a, y):
        opt.zero_grad()
        loss = F.mse_loss(model(a), y)
        loss.backward()
        opt.step()
        return loss

    gstep = graphnn.compile(step) if compiled else step
    for i in range(4):
        lt = step(tm, topt, torch.nn.functional, torch.tensor(a), torch.tensor(y)).item()
        lg = gstep(gm, gopt, graphnn.nn.functional, graphnn.tensor(a), graphnn.tensor(y)).item()
        # float32 FFTs and sums of a few hundred terms of O(1) values per step
        assert lg == pytest.approx(lt, rel=1e-4), i
    np.testing.assert_allclose(gm.spec.w1.numpy(), tm.spec.w1.detach().numpy(), rtol=1e-3, atol=1e-5)
    graphnn.save(gm.state_dict(), tmp_path / "g.pt")
    back = graphnn.load(tmp_path / "g.pt")
    np.testing.assert_array_equal(back["spec.w2"].numpy(), gm.spec.w2.numpy())
