"""graphnn.fft against PyTorch: every transform and norm, trimming / padding, the helpers, gradients, and a spectral
layer trained eagerly and compiled. The DFT products sum n terms of O(1) float32 values: errors of about n ulps of
the largest magnitude, hence rtol 1e-5 of the maximum for the sizes here (n <= 16)."""

import numpy as np
import pytest

import graphnn

RNG = np.random.default_rng(3)
X = RNG.standard_normal((3, 10, 12)).astype(np.float32)
Z = (RNG.standard_normal((3, 10, 7)) + 1j * RNG.standard_normal((3, 10, 7))).astype(np.complex64)


def _np(x):
    return x.detach().resolve_conj().numpy() if hasattr(x, "resolve_conj") else x.detach().numpy()


def _close(g, t, what):
    assert tuple(g.shape) == tuple(t.shape), what
    ref = _np(t)
    np.testing.assert_allclose(_np(g), ref, rtol=0, atol=1e-5 * np.abs(ref).max(), err_msg=what)


CASES = [
    ("fft", X, {}),
    ("fft", Z, {}),
    ("fft", X, {"n": 16}),
    ("fft", Z, {"n": 5, "dim": 1}),
    ("ifft", Z, {}),
    ("rfft", X, {}),
    ("rfft", X, {"n": 7, "dim": 0}),
    ("irfft", Z, {}),
    ("irfft", Z, {"n": 11}),
    ("hfft", Z, {}),
    ("ihfft", X, {}),
    ("fft2", X, {}),
    ("ifft2", Z, {}),
    ("rfft2", X, {}),
    ("irfft2", Z, {}),
    ("fftn", Z, {}),
    ("ifftn", Z, {"s": (4, 6)}),
    ("rfftn", X, {"dim": (0, 2)}),
    ("irfftn", Z, {}),
]


@pytest.mark.parametrize("name,data,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
def test_transforms_as_pytorch(torch, name, data, kwargs, norm):
    t = getattr(torch.fft, name)(torch.tensor(data), **kwargs, norm=norm)
    g = getattr(graphnn.fft, name)(graphnn.tensor(data), **kwargs, norm=norm)
    _close(g, t, f"{name} {kwargs} {norm}")


def test_helpers_as_pytorch(torch):
    for n in (6, 7):
        for name in ("fftshift", "ifftshift"):
            assert (
                getattr(graphnn.fft, name)(graphnn.arange(n)).tolist()
                == getattr(torch.fft, name)(torch.arange(n)).tolist()
            )
        np.testing.assert_allclose(_np(graphnn.fft.fftfreq(n, 0.1)), _np(torch.fft.fftfreq(n, 0.1)), rtol=1e-6)
        np.testing.assert_allclose(_np(graphnn.fft.rfftfreq(n)), _np(torch.fft.rfftfreq(n)), rtol=1e-6)
    _close(
        graphnn.fft.fftshift(graphnn.fft.fft2(graphnn.tensor(X))),
        torch.fft.fftshift(torch.fft.fft2(torch.tensor(X))),
        "shift",
    )
    with pytest.raises(RuntimeError, match="exceeds"):
        graphnn.fft.rfft(graphnn.zeros(graphnn.fft.MAX_SIZE + 1))


def test_gradients_as_pytorch(torch):
    w = RNG.standard_normal((3, 10, 7)).astype(np.float32)
    xt, xg = torch.tensor(X, requires_grad=True), graphnn.tensor(X, requires_grad=True)
    (torch.fft.rfft(xt).abs() * torch.tensor(w)).sum().backward()
    (graphnn.fft.rfft(xg).abs() * graphnn.tensor(w)).sum().backward()
    _close(xg.grad, xt.grad, "grad of |rfft|")
    xt.grad = xg.grad = None
    torch.fft.irfft(torch.fft.fft2(xt) * 2, n=12).pow(2).sum().backward()
    graphnn.fft.irfft(graphnn.fft.fft2(xg) * 2, n=12).pow(2).sum().backward()
    _close(xg.grad, xt.grad, "grad of irfft(fft2)")


def _filter_model(T):
    """A learned spectral filter over time (written for this test): rfft, a weight per frequency, irfft, a head."""

    class SpectralFilter(T.nn.Module):
        def __init__(self, length=16, channels=4):
            super().__init__()
            self.length = length
            self.gain = T.nn.Parameter(T.ones(length // 2 + 1))
            self.head = T.nn.Linear(channels * length, 3)

        def forward(self, x):
            spec = T.fft.rfft(x, dim=-1, norm="ortho")
            y = T.fft.irfft(spec * self.gain, n=self.length, dim=-1, norm="ortho")
            return self.head(y.flatten(1))

    return SpectralFilter()


@pytest.mark.parametrize("compiled", [False, True])
def test_spectral_layer_trains_as_pytorch(torch, compiled):
    torch.manual_seed(0)
    tm, gm = _filter_model(torch), _filter_model(graphnn)
    gm.load_state_dict({k: graphnn.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = RNG.standard_normal((8, 4, 16)).astype(np.float32)
    y = RNG.integers(0, 3, 8)
    topt, gopt = torch.optim.Adam(tm.parameters(), 0.05), graphnn.optim.Adam(gm.parameters(), 0.05)

    def step(model, opt, F, xs, ys):
        opt.zero_grad()
        loss = F.cross_entropy(model(xs), ys)
        loss.backward()
        opt.step()
        return loss

    gstep = graphnn.compile(step) if compiled else step
    for i in range(4):
        lt = step(tm, topt, torch.nn.functional, torch.tensor(x), torch.tensor(y))
        lg = gstep(gm, gopt, graphnn.nn.functional, graphnn.tensor(x), graphnn.tensor(y))
        assert lg.item() == pytest.approx(lt.item(), rel=1e-4), i
    np.testing.assert_allclose(_np(gm.gain), _np(tm.gain), rtol=1e-4, atol=1e-5)


STFT_CASES = [
    {"n_fft": 16, "window": "ones"},
    {"n_fft": 16, "hop_length": 5, "win_length": 12, "window": "hann"},
    {"n_fft": 20, "center": False, "window": "hann"},
    {"n_fft": 16, "normalized": True, "onesided": False, "window": "hann"},
    {"n_fft": 16, "pad_mode": "constant", "window": "hann"},
]


def _with_window(lib, kw):
    kw = dict(kw)
    n = kw.get("win_length", kw["n_fft"])
    kw["window"] = lib.ones(n) if kw["window"] == "ones" else lib.hann_window(n)
    return kw


@pytest.mark.parametrize("kw", STFT_CASES, ids=[str(i) for i in range(len(STFT_CASES))])
def test_stft_and_istft_as_pytorch(torch, kw):
    x = RNG.standard_normal((2, 100)).astype(np.float32)
    t = torch.stft(torch.tensor(x), return_complex=True, **_with_window(torch, kw))
    g = graphnn.stft(graphnn.tensor(x), return_complex=True, **_with_window(graphnn, kw))
    _close(g, t, f"stft {kw}")
    _close(
        graphnn.tensor(x[0]).stft(return_complex=False, **_with_window(graphnn, kw)),
        torch.tensor(x[0]).stft(return_complex=False, **_with_window(torch, kw)),
        "stft of one signal, real view",
    )
    if kw.get("center", True) and kw["window"] == "hann":  # (without centering a Hann window's ends do not overlap-add)
        inv = {k: v for k, v in kw.items() if k != "pad_mode"}
        tt = torch.istft(t, length=100, **_with_window(torch, inv))
        gg = graphnn.istft(g, length=100, **_with_window(graphnn, inv))
        _close(gg, tt, f"istft {kw}")
        np.testing.assert_allclose(_np(gg), x, atol=1e-5)


@pytest.mark.parametrize("compiled", [False, True])
def test_spectral_loss_gradient_as_pytorch(torch, compiled):
    """A multi-resolution STFT magnitude loss (audio models' spectral loss: L1 and spectral convergence) and its
    gradient. (Its log-magnitude term is left out: its gradient, 1 / |s|, magnifies rounding at near-empty bins.)"""
    x, y = RNG.standard_normal((2, 2, 120)).astype(np.float32)

    def loss_fn(T, a, b):
        total = 0
        for n_fft in (16, 32):
            w = T.hann_window(n_fft)
            sa = T.stft(a, n_fft, hop_length=n_fft // 4, window=w, return_complex=True).abs()
            sb = T.stft(b, n_fft, hop_length=n_fft // 4, window=w, return_complex=True).abs()
            total = total + (sa - sb).abs().mean() + (sa - sb).pow(2).sum().sqrt() / sb.pow(2).sum().sqrt()
        return total

    xt, xg = torch.tensor(x, requires_grad=True), graphnn.tensor(x, requires_grad=True)
    lt = loss_fn(torch, xt, torch.tensor(y))
    lt.backward()
    fn = graphnn.compile(loss_fn) if compiled else loss_fn
    lg = fn(graphnn, xg, graphnn.tensor(y))
    lg.backward()
    assert lg.item() == pytest.approx(lt.item(), rel=1e-5)
    _close(xg.grad, xt.grad, "spectral loss gradient")
