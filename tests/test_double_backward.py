"""Gradients of gradients: autograd.grad(create_graph=True) and backward(create_graph=True) record the gradient
computation, so it can be differentiated again (gradient penalties, Hessian-vector products), eagerly and inside
graphnn.compile - against PyTorch, in float64."""

import numpy as np
import pytest

import graphnn
from tolerance import accumulation_tolerance

RNG = np.random.default_rng(7)
X = RNG.standard_normal(5)
W1 = RNG.standard_normal((4, 3)) * 0.5
A = RNG.standard_normal((6, 4))
REAL, FAKE = RNG.standard_normal((8, 4)), RNG.standard_normal((8, 4))
ALPHA = RNG.random((8, 1))


def tol(value, ops: int = 64):
    """Both libraries evaluate the same formulas, each result a chain of at most `ops` float64 roundings of terms
    no larger than the result's magnitude (the critic below: three 4..16-wide layers, their gradient and its
    gradient)."""
    v = np.asarray(value, np.float64)
    return accumulation_tolerance("float64", ops, np.abs(v).max(initial=1.0))


def second_derivatives(lib):
    x = lib.tensor(X, requires_grad=True)
    y = (lib.tanh(x) * x**3).sum()
    (g,) = lib.autograd.grad(y, x, create_graph=True)
    (h,) = lib.autograd.grad(g.sum(), x)
    return g.detach().numpy(), h.numpy(), g.requires_grad, h.requires_grad


def test_grad_of_grad_as_pytorch(torch):
    g1, h1, rg1, rh1 = second_derivatives(graphnn)
    g2, h2, rg2, rh2 = second_derivatives(torch)
    np.testing.assert_allclose(g1, g2, rtol=0, atol=tol(g2))
    np.testing.assert_allclose(h1, h2, rtol=0, atol=tol(h2))
    assert (rg1, rh1) == (rg2, rh2) == (True, False)


def test_create_graph_gradient_has_grad_fn_and_plain_one_does_not():
    x = graphnn.tensor(X, requires_grad=True)
    (g,) = graphnn.autograd.grad((x**2).sum(), x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    (p,) = graphnn.autograd.grad((x**2).sum(), x)
    assert not p.requires_grad and p.grad_fn is None
    np.testing.assert_array_equal(p.numpy(), g.detach().numpy())


def backward_create_graph(lib):
    """loss.backward(create_graph=True), then the squared norm of w.grad differentiated w.r.t. w."""
    w = lib.tensor(W1, requires_grad=True)
    loss = lib.tanh(lib.tensor(A) @ w).pow(2).sum()
    loss.backward(create_graph=True)
    first = w.grad.detach().numpy().copy()
    penalty = (w.grad**2).sum()
    w.grad = None
    penalty.backward()
    return first, w.grad.numpy()


def test_backward_create_graph_as_pytorch(torch):
    f1, s1 = backward_create_graph(graphnn)
    f2, s2 = backward_create_graph(torch)
    np.testing.assert_allclose(f1, f2, rtol=0, atol=tol(f2))
    np.testing.assert_allclose(s1, s2, rtol=0, atol=tol(s2))


def hvp(lib, v):
    """Hessian-vector product of a scalar function by differentiating <grad f, v>."""
    x = lib.tensor(X, requires_grad=True)
    f = (lib.sin(x) * x).sum() * (x**2).sum()
    (g,) = lib.autograd.grad(f, x, create_graph=True)
    (hv,) = lib.autograd.grad(g, x, grad_outputs=lib.tensor(v))
    return hv.numpy()


def test_hessian_vector_product_as_pytorch_and_symmetric(torch):
    v = RNG.standard_normal(5)
    np.testing.assert_allclose(hvp(graphnn, v), hvp(torch, v), rtol=0, atol=tol(hvp(torch, v)))
    # the Hessian is symmetric: e_i^T H e_j == e_j^T H e_i
    H = np.stack([hvp(graphnn, e) for e in np.eye(5)])
    np.testing.assert_allclose(H, H.T, rtol=0, atol=tol(H))


def critic_run(lib, steps: int, compiled: bool):
    """WGAN-GP critic steps: the gradient penalty on interpolates is differentiated w.r.t. the weights."""
    nn = lib.nn
    lib.manual_seed(0)
    D = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 8), nn.Softplus(), nn.Linear(8, 1)).double()
    weights = np.random.default_rng(3)
    with lib.no_grad():
        for p in D.parameters():
            p.copy_(lib.tensor(weights.standard_normal(tuple(p.shape)) * 0.4))
    opt = lib.optim.SGD(D.parameters(), lr=0.05)
    real, fake, alpha = lib.tensor(REAL), lib.tensor(FAKE), lib.tensor(ALPHA)

    def step():
        opt.zero_grad()
        x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        out = D(x)
        (g,) = lib.autograd.grad(out, x, grad_outputs=lib.ones_like(out), create_graph=True)
        penalty = ((g.norm(2, dim=1) - 1) ** 2).mean()
        loss = D(fake).mean() - D(real).mean() + 10 * penalty
        loss.backward()
        opt.step()
        return loss.detach()

    run = lib.compile(step) if compiled else step
    losses = [float(run()) for _ in range(steps)]
    return np.array(losses), [p.detach().numpy().copy() for p in D.parameters()]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_gradient_penalty_training_as_pytorch(torch, compiled):
    l1, p1 = critic_run(graphnn, 4, compiled)
    l2, p2 = critic_run(torch, 4, False)
    np.testing.assert_allclose(l1, l2, rtol=0, atol=tol(l2, 4 * 64))
    for a, b in zip(p1, p2):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol(b, 4 * 64))


def test_traced_grad_without_create_graph_is_a_constant():
    """Inside graphnn.compile a gradient taken without create_graph does not carry a graph: backpropagating
    through a loss built from it gives the weights no gradient from that term."""
    w = graphnn.tensor(W1, requires_grad=True)

    @graphnn.compile
    def f(a):
        y = graphnn.tanh(a @ w).sum()
        (g,) = graphnn.autograd.grad(y, w)
        out = (g * w).sum()
        out.backward()
        return out

    out = f(graphnn.tensor(A))
    y = np.tanh(A @ W1)
    expected_g = A.T @ (1 - y**2)
    np.testing.assert_allclose(out.detach().numpy(), (expected_g * W1).sum(), rtol=0, atol=tol(expected_g, 128))
    np.testing.assert_allclose(w.grad.numpy(), expected_g, rtol=0, atol=tol(expected_g, 128))  # g held constant


def test_double_backward_through_replayed_losses_every_call():
    """MAML's pattern, repeated: from the second call a loss runs as a replayed composite, whose intermediate values
    are recorded without tensors of their own; the gradient computed with create_graph still depends on them (it
    lost its graph, and the meta-gradient its second-order term)."""
    F = graphnn.nn.functional
    x = graphnn.tensor([[1.0], [2.0], [-1.0]])
    y = graphnn.tensor([[0.5], [1.0], [2.0]])
    w = graphnn.tensor([[0.3]], requires_grad=True)
    for loss in (F.mse_loss, F.smooth_l1_loss, F.huber_loss):
        metas = []
        for _ in range(3):
            w.grad = None
            (g,) = graphnn.autograd.grad(loss(x @ w, y), [w], create_graph=True)
            loss(x @ (w - 0.1 * g), y).backward()
            metas.append(w.grad.item())
        assert metas[0] == metas[1] == metas[2], (loss.__name__, metas)
    w.grad = None
    (g,) = graphnn.autograd.grad(F.mse_loss(x @ w, y), [w], create_graph=True)
    F.mse_loss(x @ (w - 0.1 * g), y).backward()
    assert w.grad.item() == pytest.approx(0.312, abs=1e-6)  # PyTorch's value


def test_binary_cross_entropy_has_a_second_derivative():
    """d^2/dp^2 of BCE(p, t) = t / p^2 + (1 - t) / (1 - p)^2 (PyTorch's double backward), the first derivative
    keeping PyTorch's saturation-safe form."""
    p = graphnn.tensor([0.8, 0.3, 0.9], dtype=graphnn.float64, requires_grad=True)
    t = graphnn.tensor([1.0, 0.0, 0.5], dtype=graphnn.float64)
    (g,) = graphnn.autograd.grad(
        graphnn.nn.functional.binary_cross_entropy(p, t, reduction="sum"), p, create_graph=True
    )
    (h,) = graphnn.autograd.grad(g.sum(), p)
    pn, tn = p.detach().numpy(), t.numpy()
    np.testing.assert_allclose(g.detach().numpy(), (pn - tn) / (pn * (1 - pn)), rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), tn / pn**2 + (1 - tn) / (1 - pn) ** 2, rtol=1e-12)
    assert graphnn.autograd.gradgradcheck(
        lambda p: graphnn.nn.functional.binary_cross_entropy(p, t, reduction="none"), (p,)
    )


def test_a_compiled_function_returning_a_loss_built_from_a_gradient_is_differentiable():
    """autograd.grad(create_graph=True) inside a compiled function (a gradient penalty returned to the caller): the
    result has a grad_fn, and backward() through it gives the second-order gradient, as eagerly."""

    def penalty(x):
        (g,) = graphnn.autograd.grad((x**3).sum(), x, create_graph=True)
        return (g**2).sum()  # sum 9 x^4: d/dx = 36 x^3

    x = graphnn.tensor([1.0, 2.0], requires_grad=True)
    out = graphnn.compile(penalty)(x)
    assert out.grad_fn is not None and out.item() == 153.0
    out.backward()
    assert x.grad.tolist() == [36.0, 288.0]


def test_compiled_autograd_grad_without_create_graph_returns_plain_gradients():
    """(loss, autograd.grad(loss, a)) from a compiled function: the loss requires grad, the gradients (no
    create_graph) do not, as in PyTorch."""
    x = graphnn.tensor([1.0, 2.0], requires_grad=True)
    loss, (g,) = graphnn.compile(lambda a: (lambda l: (l, graphnn.autograd.grad(l, [a])))((a**2).sum()))(x)
    assert loss.requires_grad and not g.requires_grad and g.tolist() == [2.0, 4.0]
