"""F.affine_grid and F.grid_sample (2-D) against PyTorch: values and gradients for input and grid, every mode,
padding mode and align_corners, eagerly and compiled, and a spatial-transformer training step."""

import numpy as np
import pytest

import graphnn
from tolerance import accumulation_tolerance

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 5, 6))
THETA = np.array([[[0.9, 0.2, 0.1], [-0.3, 1.1, -0.2]], [[1.3, -0.4, 0.3], [0.2, 0.7, 0.05]]])
W_OUT = np.arange(2 * 3 * 4 * 7).reshape(2, 3, 4, 7) % 7 - 3.0


def sample(lib, mode, padding_mode, align_corners, compiled=False):
    x = lib.tensor(X, requires_grad=True)
    theta = lib.tensor(THETA, requires_grad=True)
    F = lib.nn.functional

    def f(x, theta):
        grid = F.affine_grid(theta, (2, 3, 4, 7), align_corners=align_corners) * 1.4  # some points outside
        out = F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
        (out * lib.tensor(W_OUT)).sum().backward()
        return out.detach()

    out = (lib.compile(f) if compiled else f)(x, theta)
    tgrad = theta.grad.numpy() if theta.grad is not None else np.zeros(THETA.shape)  # (nearest: no dependence)
    return out.numpy(), x.grad.numpy(), tgrad


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grid_sample_as_pytorch(torch, mode, padding_mode, align_corners):
    want = sample(torch, mode, padding_mode, align_corners)
    for compiled in (False, True) if not align_corners else (False,):  # (compiled: the same ops, one corner convention)
        got = sample(graphnn, mode, padding_mode, align_corners, compiled)
        # float64: a bilinear blend of four pixels, gradients summed over at most 28 outputs of weights <= 3;
        # theta's gradient sums 2 * 28 such terms times coordinates <= 4 pixels
        for g, w, terms in zip(got, want, (8, 64, 512)):
            np.testing.assert_allclose(g, w, rtol=0, atol=accumulation_tolerance("float64", terms, 64.0))


def test_grid_sample_rejects_bad_grids():
    F = graphnn.nn.functional
    x = graphnn.randn(2, 3, 5, 6)
    with pytest.raises(ValueError, match="grid_sample.*does not fit"):
        F.grid_sample(x, graphnn.zeros(2, 4, 4, 3))
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(x, graphnn.zeros(2, 4, 4, 2), padding_mode="wrap")
    with pytest.raises(ValueError, match="affine_grid.*Nx2x3"):
        F.affine_grid(graphnn.zeros(2, 3, 3), (2, 3, 4, 4))


def stn_run(lib, steps: int, compiled: bool):
    """A spatial transformer: a localization net predicts theta (initialized to the identity), the input is
    resampled, then classified; SGD steps on fixed data."""
    nn, F = lib.nn, lib.nn.functional

    class STN(nn.Module):
        def __init__(self):
            super().__init__()
            self.loc = nn.Sequential(
                nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 6)
            )
            self.head = nn.Linear(8 * 8, 3)

        def forward(self, x):
            theta = self.loc(x).view(-1, 2, 3)
            grid = F.affine_grid(theta, x.size(), align_corners=False)
            return self.head(F.grid_sample(x, grid, align_corners=False).flatten(1))

    rng = np.random.default_rng(5)
    m = STN().double()
    with lib.no_grad():
        for p in m.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)) * 0.2))
        m.loc[4].weight.zero_()
        m.loc[4].bias.copy_(lib.tensor([1.0, 0, 0, 0, 1.0, 0]))
    x = lib.tensor(rng.standard_normal((4, 1, 8, 8)))
    y = lib.tensor(np.array([0, 2, 1, 2]))
    opt = lib.optim.SGD(m.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    run = lib.compile(step) if compiled else step
    return np.array([float(run()) for _ in range(steps)]), [p.detach().numpy().copy() for p in m.parameters()]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_spatial_transformer_training_as_pytorch(torch, compiled):
    got_l, got_p = stn_run(graphnn, 3, compiled)
    want_l, want_p = stn_run(torch, 3, False)
    # float64 throughout: each value a chain of < 1000 roundings of terms of magnitude < 10
    tol = accumulation_tolerance("float64", 1000, 10.0)
    np.testing.assert_allclose(got_l, want_l, rtol=0, atol=tol)
    for g, w in zip(got_p, want_p):
        np.testing.assert_allclose(g, w, rtol=0, atol=tol)


@pytest.mark.parametrize("padding_mode", ["border", "reflection"])
def test_identity_transformer_gradient_matches_torch(torch, padding_mode):
    """An identity affine grid puts its points on pixel centres and its border points exactly on the edges: the
    grid's gradient is PyTorch's there (zero at the clipped edges, the same side of each centre)."""
    rng = np.random.RandomState(0)
    img = rng.randn(2, 3, 4, 5).astype(np.float32)
    theta = np.tile(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32), (2, 1, 1))
    grads = []
    for lib in (torch, graphnn):
        th = lib.tensor(theta, requires_grad=True)
        grid = lib.nn.functional.affine_grid(th, (2, 3, 4, 5), align_corners=True)
        out = lib.nn.functional.grid_sample(lib.tensor(img), grid, padding_mode=padding_mode, align_corners=True)
        (out * lib.tensor(np.arange(out.numel(), dtype=np.float32).reshape(tuple(out.shape)))).sum().backward()
        grads.append(th.grad.numpy())
    # sums of 2 * 3 * 20 products of O(10^2) terms in float32
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-3)
