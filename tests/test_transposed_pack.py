"""A @ W^T with W row-major: the blocked GEMM packs W^T's panels by transposing vw x vw blocks in registers
(codegen/gemm.py, pack_transposed). Every k length (whole blocks and a ragged rest), panel count and dtype gives
the product within the rounding of a k-long float sum."""

import numpy as np
import pytest

import graphnn


def _bound(a, b, dt):
    """Worst-case rounding of a k-long sum of products, element by element (|A| @ |B| times k units of roundoff)."""
    eps = np.finfo(dt).eps
    return 2 * a.shape[1] * eps * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("m, k, n", [(70, 5, 64), (70, 37, 96), (130, 300, 100), (96, 1000, 64), (200, 16, 33)])
def test_a_times_w_transposed(dt, m, k, n):
    rng = np.random.default_rng(m * k + n)
    a = rng.standard_normal((m, k)).astype(dt)
    w = rng.standard_normal((n, k)).astype(dt)
    bias = rng.standard_normal(n).astype(dt)
    plain = graphnn.compile(lambda x, y: x @ y.t(), dynamic=False)
    fused = graphnn.compile(lambda x, y, c: (x @ y.t() + c).relu(), dynamic=False)
    ref = a.astype(np.float64) @ w.astype(np.float64).T
    got = plain(graphnn.tensor(a), graphnn.tensor(w)).numpy()
    assert got.dtype == np.dtype(dt)
    assert np.all(np.abs(got - ref) <= _bound(a, w.T, dt))
    got = fused(graphnn.tensor(a), graphnn.tensor(w), graphnn.tensor(bias)).numpy()
    ref_fused = np.maximum(ref + bias, 0)
    assert np.all(np.abs(got - ref_fused) <= _bound(a, w.T, dt) + np.finfo(dt).eps * np.abs(ref + bias))
