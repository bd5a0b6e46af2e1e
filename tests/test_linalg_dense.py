"""Dense linear algebra (ir/ops/linalg_dense.py, graphnn/core/linalg_dense_api.py): values and gradients against
PyTorch and finite differences, eagerly and compiled (the host calls of codegen/host.py).

Tolerances: a backward-stable factorization or solve of an n x n matrix with condition number k gives results within
about n * k * u (u = eps / 2) of the exact ones, relative to their magnitude; each evaluation (graphnn's, PyTorch's)
may be off by that much, and a result that chains `ops` such steps (a gradient) by that many times more. The test
matrices are built with known spectra, so k is known (eigen-/singular vectors: the largest value over the smallest
gap between two of them).
"""

from __future__ import annotations

import numpy as np
import pytest

import graphnn
from graphnn.codegen.host import HostCallError
from graphnn.core.dispatch import OpError

N = 4


def tol(dtype, cond: float, magnitude: float, ops: int = 1, n: int = N) -> float:
    """2 evaluations x ops chained steps x n * cond * u, relative to the results' magnitude."""
    u = np.finfo(dtype).eps / 2
    return 2 * ops * n * cond * u * magnitude


def orthogonal(rng, n: int, batch=(2,)) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal(batch + (n, n)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def spectrum_matrix(rng, values, batch=(2,)) -> np.ndarray:
    """Symmetric matrices Q diag(values) Q^T: eigenvalues known exactly (condition max|v| / min|v|)."""
    q = orthogonal(rng, len(values), batch)
    return (q * np.asarray(values)) @ np.swapaxes(q, -1, -2)


def general_matrix(rng, singular, m: int = N, n: int = N, batch=(2,)) -> np.ndarray:
    """U diag(singular) V^T with random orthogonal U, V: singular values known exactly."""
    k = len(singular)
    u = orthogonal(rng, m, batch)[..., :k]
    v = orthogonal(rng, n, batch)[..., :k]
    return (u * np.asarray(singular)) @ np.swapaxes(v, -1, -2)


SING = (4.0, 3.0, 2.0, 1.0)  # condition 4, smallest gap 1: every rule below is well conditioned
COND = 4.0
VEC_COND = 4.0 * 4.0  # singular/eigen vectors: (largest value / smallest gap) squared terms in their gradients


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return {
        "A": general_matrix(rng, SING),
        "S": spectrum_matrix(rng, SING),
        "B": rng.standard_normal((2, N, 3)),
        "W": rng.standard_normal((2, N, 3)),  # weights of the losses
        "T": np.triu(general_matrix(rng, SING)) + 3 * np.eye(N),
        "R": general_matrix(rng, SING[:3], N, 3),  # tall, full column rank
    }


# Losses that do not depend on the signs eigen-/singular vectors and Q / R columns are chosen with.
def _losses(lib):
    la = lib.linalg

    def mT(x):
        return x.transpose(-2, -1)

    return {
        "inv": (("A",), lambda A: la.inv(A).sin().sum(), COND**2, 3),
        "solve": (("A", "B"), lambda A, B: (la.solve(A, B) ** 2).sum(), COND**2, 4),
        "solve_vector": (("A", "B"), lambda A, B: la.solve(A, B[..., 0]).sum(), COND**2, 4),
        "solve_right": (("A", "B"), lambda A, B: la.solve(A, mT(B), left=False).cos().sum(), COND**2, 4),
        "solve_triangular": (
            ("T", "B"),
            lambda T, B: (
                (la.solve_triangular(T, B, upper=True) ** 2).sum()
                + la.solve_triangular(mT(T), B, upper=False, unitriangular=True).sum()
            ),
            COND**2,
            4,
        ),
        "cholesky": (("S", "W"), lambda S, W: (la.cholesky(S) * W[..., :1]).sum(), COND**2, 6),
        "cholesky_upper": (("S",), lambda S: la.cholesky(S, upper=True).exp().sum(), COND**2, 6),
        "det": (("A",), lambda A: (la.det(A) ** 2).sum(), COND, 3),
        "slogdet": (("A",), lambda A: la.slogdet(A)[1].sum() + la.slogdet(A)[0].sum(), COND, 3),
        "logdet": (("S",), lambda S: lib.logdet(S).sum(), COND, 3),
        "eigh": (
            ("S", "W"),
            lambda S, W: (la.eigh(S)[1] ** 2 * W[..., :1]).sum() + (la.eigvalsh(S) * W[..., 0, :1].sum()).sum(),
            VEC_COND,
            6,
        ),
        "svd": (
            ("R", "W"),
            lambda R, W: (lambda u, s, vh: (u**2 * W[..., :3]).sum() + (vh**2).sum(-1).mul(s).sum() + s.prod(-1).sum())(
                *la.svd(R, full_matrices=False)
            ),
            VEC_COND,
            8,
        ),
        "svd_wide": (("R",), lambda R: (la.svd(mT(R), full_matrices=False)[2] ** 2).cumsum(-1).sum(), VEC_COND, 8),
        "svdvals": (("A",), lambda A: la.svdvals(A).pow(3).sum(), COND, 4),
        "qr": (
            ("R", "W"),
            lambda R, W: (lambda q, r: (q * mT(r).sum(-1)[..., None, :] * W[..., :3]).sum() + (r * r).sum())(*la.qr(R)),
            COND**2,
            6,
        ),
        "pinv": (("R", "W"), lambda R, W: (la.pinv(R) * mT(W)).sum(), COND**2, 6),
        "lstsq": (("R", "B"), lambda R, B: (la.lstsq(R, B).solution ** 2).sum(), COND**2, 6),
        "lstsq_wide": (("R", "W"), lambda R, W: la.lstsq(mT(R), W[..., :3, :1]).solution.sum(), COND**2, 6),
        "cholesky_solve": (("S", "B"), lambda S, B: lib.cholesky_solve(B, la.cholesky(S)).sum(), COND**2, 8),
        "matrix_power": (("A",), lambda A: la.matrix_power(A, -3).sum() + la.matrix_power(A, 2).sum(), COND**4, 6),
        "matrix_norm_2": (("A",), lambda A: la.matrix_norm(A, 2).sum() + la.matrix_norm(A, "nuc").sum(), COND, 4),
    }


CASES = sorted(_losses(graphnn))


def _run(lib, name, data, requires_grad=True):
    names, fn, cond, ops = _losses(lib)[name]
    args = [lib.tensor(data[n], requires_grad=requires_grad) for n in names]
    return args, fn(*args), cond, ops


@pytest.mark.parametrize("name", CASES)
def test_eager_values_and_gradients_match_torch(torch, data, name):
    g_args, g_loss, cond, ops = _run(graphnn, name, data)
    t_args, t_loss, _, _ = _run(torch, name, data)
    g_loss.backward()
    t_loss.backward()
    mag = max(1.0, abs(t_loss.item()))
    assert abs(g_loss.item() - t_loss.item()) <= tol(np.float64, cond, mag, ops), name
    for a, b in zip(g_args, t_args):
        want = b.grad.numpy()
        np.testing.assert_allclose(a.grad.numpy(), want, rtol=0, atol=tol(np.float64, cond, np.abs(want).max(), ops))


@pytest.mark.parametrize("name", ["inv", "solve", "solve_triangular", "cholesky", "slogdet", "eigh", "svd", "qr"])
def test_gradients_match_finite_differences(data, name):
    """Directional derivatives along random directions (symmetric ones for the symmetric operands)."""
    names, fn, cond, _ = _losses(graphnn)[name]
    rng = np.random.default_rng(3)
    args = [graphnn.tensor(data[n], requires_grad=True) for n in names]
    fn(*args).backward()
    h = 1e-5
    for n, a in zip(names, args):
        d = rng.standard_normal(data[n].shape)
        if n == "S":
            d = d + np.swapaxes(d, -1, -2)
        if n == "T":
            d = np.triu(d)

        def f(step, n=n, d=d):
            vals = {k: data[k] + (step * d if k == n else 0) for k in names}
            return fn(*[graphnn.tensor(vals[k]) for k in names]).item()

        d_h = (f(h) - f(-h)) / (2 * h)
        d_2h = (f(2 * h) - f(-2 * h)) / (4 * h)
        analytic = float((a.grad.numpy() * d).sum())
        # rounding of the loss over 2h (the loss ~ 1e2 at most, its error ~ cond n u of that) + truncation (Richardson)
        allowed = tol(np.float64, cond, 1e2, 4) / h + 2 * abs(d_2h - d_h) + 1e-9 * abs(d_h)
        assert abs(analytic - d_h) <= allowed, (name, n, analytic, d_h)


def test_float32_values_match_torch(torch, data):
    A, S = (d.astype(np.float32) for d in (data["A"], data["S"]))
    pairs = [
        (graphnn.linalg.inv(graphnn.tensor(A)), torch.linalg.inv(torch.tensor(A)), COND),
        (graphnn.linalg.cholesky(graphnn.tensor(S)), torch.linalg.cholesky(torch.tensor(S)), COND),
        (graphnn.linalg.det(graphnn.tensor(A)), torch.linalg.det(torch.tensor(A)), COND),
        (graphnn.linalg.eigvalsh(graphnn.tensor(S)), torch.linalg.eigvalsh(torch.tensor(S)), COND),
        (graphnn.linalg.svdvals(graphnn.tensor(A)), torch.linalg.svdvals(torch.tensor(A)), COND),
    ]
    for g, t in ((p[0], p[1]) for p in pairs):
        assert g.dtype == graphnn.float32
        want = t.numpy()
        np.testing.assert_allclose(g.numpy(), want, rtol=0, atol=tol(np.float32, COND, np.abs(want).max()))


def test_decompositions_reconstruct(data):
    la = graphnn.linalg
    A, S, R = (graphnn.tensor(data[k]) for k in "ASR")
    w, v = la.eigh(S)
    assert np.all(np.diff(w.numpy(), axis=-1) > 0)
    u, s, vh = la.svd(A)  # full_matrices=True by default, as torch.linalg.svd
    assert u.shape == (2, N, N) and vh.shape == (2, N, N)
    q, r = la.qr(R)
    assert q.shape == (2, N, 3) and r.shape == (2, 3, 3)
    np.testing.assert_array_equal(np.tril(r.numpy(), -1), 0)
    q_c, r_c = la.qr(R, mode="complete")
    assert q_c.shape == (2, N, N) and r_c.shape == (2, N, 3)
    atol = tol(np.float64, COND, 4.0, 2)
    for got, want in (
        ((v * w.unsqueeze(-2)) @ v.mT, S),
        ((u * s.unsqueeze(-2)) @ vh, A),
        (q @ r, R),
        (q_c @ r_c, R),
        (la.cholesky(S) @ la.cholesky(S).mT, S),
        (la.inv(A) @ A, graphnn.eye(N, dtype=graphnn.float64).expand(2, N, N)),
    ):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=atol)


@pytest.mark.filterwarnings("ignore:torch.(cholesky|triangular_solve) is deprecated")
def test_old_names_and_methods(torch, data):
    A, S, B, T = (data[k] for k in "ASBT")
    g, t = graphnn, torch
    atol = tol(np.float64, COND**2, 10.0, 4)

    def same(a, b):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol)

    gA, tA, gS, tS = g.tensor(A), t.tensor(A), g.tensor(S), t.tensor(S)
    same(gA.inverse(), tA.inverse())
    same(g.inverse(gA), t.inverse(tA))
    same(gA.det(), tA.det())
    same(gS.logdet(), tS.logdet())
    assert np.isnan(g.logdet(g.tensor(-np.eye(3))).item())  # det -1: NaN, as PyTorch
    assert g.logdet(g.zeros(3, 3, dtype=g.float64)).item() == -np.inf
    same(gA.slogdet()[1], tA.slogdet()[1])
    same(gS.cholesky(), tS.cholesky())
    same(g.cholesky(gS, upper=True), t.cholesky(tS, upper=True))
    same(gA.pinverse(), tA.pinverse())
    L = t.linalg.cholesky(tS)
    same(g.cholesky_solve(g.tensor(B), g.tensor(L.numpy())), t.cholesky_solve(t.tensor(B), L))
    same(
        g.cholesky_solve(g.tensor(B), g.tensor(L.mT.numpy()), upper=True),
        t.cholesky_solve(t.tensor(B), L.mT, upper=True),
    )
    same(g.cholesky_inverse(g.tensor(L[0].numpy())), t.cholesky_inverse(L[0]))
    for upper, transpose, unit in ((True, False, False), (False, True, False), (True, True, True)):
        coef = T if upper else np.swapaxes(T, -1, -2)
        gs, gc = g.triangular_solve(g.tensor(B), g.tensor(coef), upper, transpose, unit)
        ts, tc = t.triangular_solve(t.tensor(B), t.tensor(coef), upper, transpose, unit)
        same(gs, ts)
        same(gc, tc)
    gu, gs_, gv = g.svd(gA)
    same((gu * gs_.unsqueeze(-2)) @ gv.mT, A)  # torch.svd returns V, not Vh
    same(g.matrix_power(gA, 3), t.matrix_power(tA, 3))
    same(g.linalg.matrix_power(gA, 0), t.linalg.matrix_power(tA, 0))
    same(g.linalg.multi_dot([gA[0], gA[1], gA[0, 0]]), t.linalg.multi_dot([tA[0], tA[1], tA[0, 0]]))
    same(g.linalg.cond(gA), t.linalg.cond(tA))
    same(g.linalg.cond(gA, "fro"), t.linalg.cond(tA, "fro"))
    same(g.linalg.matrix_norm(gA, -2), t.linalg.matrix_norm(tA, -2))
    same(g.linalg.norm(gA[0], "nuc"), t.linalg.norm(tA[0], "nuc"))
    r = g.linalg.matrix_rank(g.tensor(data["R"] @ np.swapaxes(data["R"], -1, -2)))
    assert r.tolist() == [3, 3] and r.dtype == g.int64
    assert g.linalg.matrix_rank(gS, hermitian=True).tolist() == [N, N]
    inv, info = g.linalg.inv_ex(gA)
    same(inv, t.linalg.inv(tA))
    assert info.tolist() == [0, 0]
    assert g.linalg.cholesky_ex(gS).L.shape == (2, N, N)
    sign, logabs = g.linalg.slogdet(gA)
    assert g.linalg.slogdet(gA).logabsdet is logabs or np.array_equal(
        g.linalg.slogdet(gA).logabsdet.numpy(), logabs.numpy()
    )


def test_bad_input_is_a_clear_error():
    with pytest.raises(OpError, match=r"inv\(f64\[2,3\]\).*square"):
        graphnn.linalg.inv(graphnn.zeros(2, 3, dtype=graphnn.float64))
    with pytest.raises(OpError, match=r"solve.*3 rows"):
        graphnn.linalg.solve(graphnn.eye(2), graphnn.ones(3, 1))
    with pytest.raises(OpError, match="float32 or float64"):
        graphnn.linalg.det(graphnn.ones(2, 2, dtype=graphnn.int64))
    with pytest.raises(OpError, match="[Ss]ingular"):
        graphnn.linalg.inv(graphnn.zeros(2, 2))
    with pytest.raises(OpError, match="positive-definite"):
        graphnn.linalg.cholesky(-graphnn.eye(2))


# -- compiled: host calls ------------------------------------------------------------------------------------------
def _gaussian_nll(lib, x, L_raw, mu):
    """Negative log-likelihood of rows x under N(mu, L L^T + I), L the lower triangle of L_raw."""
    d = x.shape[-1]
    cov = L_raw.tril() @ L_raw.tril().mT + lib.eye(d, dtype=x.dtype)
    c = lib.linalg.cholesky(cov)
    z = lib.linalg.solve_triangular(c, (x - mu).mT, upper=False)
    maha = (z * z).sum()
    logdet = lib.linalg.slogdet(cov)[1]
    quad = ((x - mu) * lib.linalg.solve(cov, (x - mu).mT).mT).sum()
    return 0.5 * (maha + quad) / 2 + 0.5 * x.shape[0] * logdet


def test_compiled_gaussian_likelihood_training_matches_torch(torch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 3)) @ np.array([[1.0, 0.0, 0.0], [0.5, 1.2, 0.0], [0.1, -0.3, 0.7]])
    L0, mu0 = 0.3 * rng.standard_normal((3, 3)), np.zeros(3)

    def make(lib, optim):
        L = lib.tensor(L0, requires_grad=True)
        mu = lib.tensor(mu0, requires_grad=True)
        opt = optim.SGD([L, mu], lr=0.01)

        def step(xb):
            opt.zero_grad()
            loss = _gaussian_nll(lib, xb, L, mu)
            loss.backward()
            opt.step()
            return loss

        return L, mu, step

    gL, gmu, gstep = make(graphnn, graphnn.optim)
    tL, tmu, tstep = make(torch, torch.optim)
    gstep = graphnn.compile(gstep)
    xb_g, xb_t = graphnn.tensor(x), torch.tensor(x)
    for _ in range(3):
        gl, tl = gstep(xb_g), tstep(xb_t)
        assert abs(gl.item() - tl.item()) <= tol(np.float64, 100.0, abs(tl.item()), 8)
    for a, b in ((gL, tL), (gmu, tmu)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=tol(np.float64, 100.0, 1.0, 24))
    fused = gstep.graphs["optimized"].to_text()
    assert "cholesky" in fused and "solve_triangular" in fused  # compiled, not run eagerly


def test_compiled_matches_eager_for_every_primitive(data):
    """One compiled function computing every loss above (forward and backward) = the eager results."""
    names = CASES

    def total(A, S, B, W, T, R):
        vals = dict(A=A, S=S, B=B, W=W, T=T, R=R)
        out = 0
        for n in names:
            keys, fn, _, _ = _losses(graphnn)[n]
            out = out + fn(*[vals[k] for k in keys])
        return out

    def eager():
        args = [graphnn.tensor(data[k], requires_grad=True) for k in "ASBWTR"]
        loss = total(*args)
        loss.backward()
        return loss, [a.grad for a in args]

    compiled = graphnn.compile(lambda *a: (lambda l: (l, graphnn.autograd.grad(l, a)))(total(*a)))
    args = [graphnn.tensor(data[k], requires_grad=True) for k in "ASBWTR"]
    c_loss, c_grads = compiled(*args)
    e_loss, e_grads = eager()
    assert abs(c_loss.item() - e_loss.item()) <= tol(np.float64, COND**4, abs(e_loss.item()), 8)
    for c, e in zip(c_grads, e_grads):
        want = e.numpy()
        np.testing.assert_allclose(c.numpy(), want, rtol=0, atol=tol(np.float64, COND**4, np.abs(want).max(), 8))


def test_a_failing_host_call_raises_after_the_call_and_the_code_recovers():
    f = graphnn.compile(lambda a: graphnn.linalg.inv(a * 2) + 1)
    good = graphnn.tensor(np.diag([1.0, 2.0, 4.0]))
    np.testing.assert_array_equal(f(good).numpy(), np.diag([0.5, 0.25, 0.125]) + 1)
    with pytest.raises(HostCallError, match=r"inv\(f64\[3,3\]\).*[Ss]ingular") as e:
        f(graphnn.zeros(3, 3, dtype=graphnn.float64))
    assert isinstance(e.value, RuntimeError)
    np.testing.assert_array_equal(f(good).numpy(), np.diag([0.5, 0.25, 0.125]) + 1)


def test_host_nodes_are_kernels_of_their_own():
    from graphnn.ir import Graph, TensorType
    from graphnn.ir.fusion import plan_fusion

    g = Graph("h")
    a = g.add_input(TensorType((3, 3), "float32"), "a")
    t = g.emit("transpose", g.emit("mul", a, a), perm=(1, 0))
    w, v = g.add_node("eigh", [t], {}).outputs
    g.outputs = [g.emit("add", v, v)]
    plan = plan_fusion(g)
    host = [gr for gr in plan.groups if gr.root.producer.op == "eigh"]
    assert len(host) == 1 and [n.op for n in host[0].nodes] == ["eigh"]
    assert t.id not in plan.inlined  # its operand is a buffer of its own


def test_an_export_refuses_host_calls():
    from graphnn.codegen import LoweringError
    from graphnn.codegen.export import build_export_module
    from graphnn.ir import Graph, TensorType

    g = Graph("f")
    x = g.add_input(TensorType((3, 3), "float32"), "x")
    g.outputs = [g.emit("inv", x)]
    with pytest.raises(LoweringError, match="cannot export inv: compiled code runs these ops on the Python side"):
        build_export_module(g, "f", "f", [0], [0], ["y"])


def test_ex_functions_report_failures_in_info(torch):
    """inv_ex / cholesky_ex report a singular / not positive-definite matrix of a batch in info (PyTorch's LAPACK
    numbers) instead of raising; the other matrices' results are right; check_errors=True raises."""
    good = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]], np.float32)
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]], np.float32)
    indefinite = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0], [0.0, 2.0, 1.0]], np.float32)
    for name, bad in (("inv_ex", singular), ("cholesky_ex", indefinite)):
        batch = np.stack([good, bad, np.zeros((3, 3), np.float32)])
        gout, ginfo = getattr(graphnn.linalg, name)(graphnn.tensor(batch))
        tout, tinfo = getattr(torch.linalg, name)(torch.tensor(batch))
        assert ginfo.tolist() == tinfo.tolist(), name
        np.testing.assert_allclose(gout[0].numpy(), tout[0].numpy(), rtol=1e-5, atol=1e-6)
        assert np.isnan(gout[1:].numpy()).all()
        with pytest.raises(graphnn.linalg.LinAlgError, match=f"{name}.*Batch element 1"):
            getattr(graphnn.linalg, name)(graphnn.tensor(batch), check_errors=True)
