"""torch.autograd.gradcheck / gradgradcheck, backward(inputs=...), gradients through grad_outputs that require grad
(the double-backward trick), and a few tensor functions real programs use (cross, einsum's sublist form, dtype=
of mean and softmax)."""

from __future__ import annotations

import numpy as np
import pytest

import graphnn


def test_gradcheck_accepts_right_gradients_and_reports_wrong_ones():
    x = graphnn.tensor([[0.3, -1.2], [2.0, 0.5]], dtype=graphnn.float64, requires_grad=True)
    w = graphnn.tensor([[0.1, 0.7, -0.4], [1.1, -0.3, 0.2]], dtype=graphnn.float64, requires_grad=True)
    assert graphnn.autograd.gradcheck(lambda x, w: (x @ w).tanh(), (x, w))
    assert graphnn.autograd.gradgradcheck(lambda x, w: (x @ w).tanh(), (x, w))

    class Half(graphnn.autograd.Function):  # x^2 with the gradient of x^2 / 2: off by a factor of 2
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x

    assert graphnn.autograd.gradcheck(Half.apply, (x,), raise_exception=False) is False
    with pytest.raises(graphnn.autograd.GradcheckError, match="Jacobian mismatch"):
        graphnn.autograd.gradcheck(Half.apply, (x,))
    with pytest.raises(ValueError, match="requires_grad"):
        graphnn.autograd.gradcheck(lambda x: x * 2, (x.detach(),))


def test_gradient_through_grad_outputs_that_require_grad():
    """jvp by the double-backward trick: g(v) = J^T v with create_graph, then d(g . u)/dv = J u."""
    x = graphnn.tensor([1.0, 2.0], requires_grad=True)
    v = graphnn.ones(2, requires_grad=True)
    (g,) = graphnn.autograd.grad(x**3, x, v, create_graph=True)
    (jvp,) = graphnn.autograd.grad(g, v, graphnn.tensor([1.0, 0.5]))
    assert jvp.tolist() == [3.0, 6.0]  # 3 x^2 u


@pytest.mark.parametrize("compiled", [False, True])
def test_backward_into_chosen_inputs_only(compiled):
    a = graphnn.tensor([1.0, 2.0], requires_grad=True)
    b = graphnn.tensor([3.0], requires_grad=True)

    def step(a, b):
        (a * b).sum().backward(inputs=[b])
        return (a * b).detach()

    (graphnn.compile(step) if compiled else step)(a, b)
    assert a.grad is None and b.grad.tolist() == [3.0]
    h = a * b
    h.retain_grad()
    (h * h).sum().backward(inputs=[h])
    assert h.grad.tolist() == [6.0, 12.0] and a.grad is None


def test_cross_einsum_sublists_and_dtype_arguments():
    a = graphnn.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0]], requires_grad=True)
    b = graphnn.tensor([[0.0, 1.0, 0.0], [3.0, 0.0, 1.0]])
    want = [[0.0, 0.0, 1.0], [1.0, 6.0, -3.0]]
    assert graphnn.linalg.cross(a, b).tolist() == want and graphnn.cross(a, b, dim=1).tolist() == want
    assert a.cross(b).tolist() == want  # (dim=None: the first dimension of length 3)
    graphnn.linalg.cross(a, b).sum().backward()
    # d/da sum(a x b) = b x 1 per row (the gradient of a . (b x 1) after the cyclic identity)
    assert a.grad.tolist() == np.cross(b.numpy(), np.ones(3)).tolist()
    with pytest.raises(RuntimeError, match="length 3"):
        graphnn.linalg.cross(graphnn.ones(2, 2), graphnn.ones(2, 2))
    m, n = graphnn.arange(6.0).reshape(2, 3), graphnn.arange(12.0).reshape(3, 4)
    assert graphnn.einsum(m, [0, 1], n, [1, 2], [0, 2]).tolist() == (m @ n).tolist()
    assert graphnn.einsum(m, [Ellipsis, 1], [Ellipsis]).tolist() == [3.0, 12.0]
    ints = graphnn.tensor([1, 2])
    assert (
        ints.mean(dtype=graphnn.float32).item() == 1.5
        and graphnn.mean(ints, dtype=graphnn.float64).dtype == graphnn.float64
    )
    x = graphnn.tensor([1.0, 2.0])
    assert x.softmax(-1, dtype=graphnn.float64).dtype == graphnn.float64
    assert x.log_softmax(-1, dtype=graphnn.float64).dtype == graphnn.float64


def test_gradient_clipping_is_in_place_and_takes_inf_as_a_string():
    p = graphnn.nn.Parameter(graphnn.tensor([3.0, 4.0]))
    p.grad = graphnn.tensor([3.0, 4.0])
    before = p.grad
    total = graphnn.nn.utils.clip_grad_norm_([p], 1.0)
    assert total.item() == 5.0 and p.grad is before
    np.testing.assert_allclose(before.numpy(), [0.6, 0.8], rtol=1e-6)  # 1 / (5 + 1e-6) scaling
    assert graphnn.nn.utils.clip_grad_norm_([p], 10.0, norm_type="inf").item() == pytest.approx(0.8)
    graphnn.nn.utils.clip_grad_value_([p], 0.7)
    assert p.grad is before and before.tolist() == pytest.approx([0.6, 0.7])


def test_detect_anomaly_names_the_function_whose_gradient_is_nan():
    a = graphnn.tensor([1.0, 0.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Function 'SqrtBackward0' returned nan values in its 0th output"):
        with graphnn.autograd.detect_anomaly():
            (a.sqrt() * 0).sum().backward()
    assert not graphnn.autograd.is_anomaly_enabled()
    (a.sqrt() * 0).sum().backward()  # (outside: NaN gradients, no error, as PyTorch)
    assert np.isnan(a.grad.numpy()[1])
    with graphnn.autograd.set_detect_anomaly(True):
        assert graphnn.autograd.is_anomaly_enabled()
    assert not graphnn.autograd.is_anomaly_enabled()
