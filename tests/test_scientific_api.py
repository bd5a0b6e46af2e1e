"""What scientific programs reached for: Bessel functions and the other special functions, lstsq's rank, NaN in
searchsorted, as_tensor sharing NumPy memory, generators for in-place random fills, PyTorch's exception types for
mismatched shapes."""

from __future__ import annotations

import numpy as np
import pytest

import graphnn
import graphnn.special as S


def test_bessel_functions_from_their_series():
    x = graphnn.tensor([-25.0, -3.0, -0.5, 0.0, 0.7, 2.0, 19.9, 20.1, 40.0], dtype=graphnn.float64)
    # I0(2) and I1(2) to 15 digits (tables); i0e, i1e the exponentially scaled forms; parities
    assert S.i0(x).numpy()[5] == pytest.approx(2.2795853023360673, rel=1e-13)
    assert S.i1(x).numpy()[5] == pytest.approx(1.5906368546373291, rel=1e-13)
    np.testing.assert_allclose(S.i0e(x).numpy(), S.i0(x).numpy() * np.exp(-np.abs(x.numpy())), rtol=1e-12)
    np.testing.assert_allclose(S.i1e(x).numpy(), S.i1(x).numpy() * np.exp(-np.abs(x.numpy())), rtol=1e-12)
    assert S.i0(graphnn.tensor([0.0])).item() == 1.0 and S.i1(graphnn.tensor([0.0])).item() == 0.0
    y = graphnn.tensor([0.5, 3.0], dtype=graphnn.float64, requires_grad=True)
    S.i0(y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), S.i1(y.detach()).numpy(), rtol=1e-12)  # I0' = I1
    assert graphnn.i0(graphnn.tensor([2.0])).item() == pytest.approx(2.2795853, rel=1e-6)
    np.testing.assert_allclose(
        S.ndtr(S.ndtri(graphnn.tensor([0.01, 0.3, 0.5, 0.9]))).numpy(), [0.01, 0.3, 0.5, 0.9], rtol=1e-5
    )
    got = S.xlog1py(graphnn.tensor([0.0, 2.0, 0.0]), graphnn.tensor([3.0, 1.0, float("nan")])).tolist()
    assert got[0] == 0.0 and got[1] == pytest.approx(2 * np.log(2)) and np.isnan(got[2])


def test_lstsq_rank_searchsorted_nan_and_shared_memory():
    r = graphnn.linalg.lstsq(graphnn.randn(5, 3), graphnn.randn(5, 2))
    assert r.rank.shape == () and int(r.rank) == 3
    edges = graphnn.tensor([0.0, 1.0, 2.0])
    q = graphnn.tensor([float("nan"), 0.5, float("inf")])
    assert graphnn.searchsorted(edges, q).tolist() == [3, 1, 3] and graphnn.bucketize(q, edges).tolist() == [3, 1, 3]
    a = np.ones(3, np.float32)
    t = graphnn.as_tensor(a)
    t[0] = 5.0
    a[2] = 7.0
    assert a.tolist() == [5.0, 1.0, 7.0] and t.tolist() == [5.0, 1.0, 7.0]
    assert graphnn.as_tensor(np.ones(2, np.int32)).dtype == graphnn.int64  # (converted: a copy)


def test_generators_and_exception_types():
    g = graphnn.Generator().manual_seed(3)
    a = graphnn.empty(4).normal_(generator=g)
    g.manual_seed(3)
    assert graphnn.empty(4).normal_(generator=g).tolist() == a.tolist()
    g.manual_seed(3)
    u = graphnn.empty(4).uniform_(0, 1, generator=g)
    assert ((u >= 0) & (u < 1)).all().item()
    graphnn.empty(3).random_(0, 10, generator=g)
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        graphnn.stack([graphnn.ones(1, 2), graphnn.ones(1, 3)])
    with pytest.raises(RuntimeError, match="sizes of tensors must match"):
        graphnn.cat([graphnn.ones(1, 2), graphnn.ones(2, 3)])
    with pytest.raises(ValueError):  # (also a ValueError, as graphnn's OpError always was)
        graphnn.cat([graphnn.ones(1, 2), graphnn.ones(2, 3)])
    assert graphnn.ones(2, requires_grad=True).numpy(force=True).tolist() == [1.0, 1.0]
