"""A convolution computed as one product per image builds each image's column matrix itself, in a scratch, just
before the product reads it (ir.fusion._columns_of_product, codegen/gemm.py build_columns): no im2col kernel, the
same results as the reference convolution within the rounding of its sums."""

import numpy as np
import pytest

import graphnn
import graphnn.nn.functional as F
from graphnn.ir.ops.conv import _conv_ref


def _bound(x, w, dt):
    """k units of roundoff times the sum of |products| of each output element (k = C * prod(kernel))."""
    k = w.shape[1] * int(np.prod(w.shape[2:]))
    return 2 * k * np.finfo(dt).eps * np.abs(_conv_ref([np.abs(x), np.abs(w)], _attrs))


_attrs: dict = {}


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize(
    "cin, cout, size, kernel, stride, padding, dilation",
    [
        (1, 6, 32, 5, 1, 0, 1),
        (6, 16, 14, 5, 1, 2, 1),
        (3, 8, 17, 3, 2, 1, 1),
        (4, 5, 20, 3, 1, 2, 2),
        (2, 4, 12, (3, 1), 1, (1, 0), 1),
    ],
)
def test_conv_builds_its_columns(dt, cin, cout, size, kernel, stride, padding, dilation):
    rng = np.random.default_rng(cin * 31 + cout)
    x = rng.standard_normal((3, cin, size, size)).astype(dt)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    w = rng.standard_normal((cout, cin, kh, kw)).astype(dt)

    def f(a, b):
        return F.conv2d(a, b, stride=stride, padding=padding, dilation=dilation).relu()

    c = graphnn.compile(f, dynamic=False)
    got = c(graphnn.tensor(x), graphnn.tensor(w)).numpy()
    pad = (padding, padding) if isinstance(padding, int) else padding
    _attrs.clear()
    _attrs.update(
        stride=(stride, stride), padding=((pad[0], pad[0]), (pad[1], pad[1])), dilation=(dilation,) * 2, groups=1
    )
    ref = np.maximum(_conv_ref([x, w], _attrs), 0)
    assert got.shape == ref.shape and got.dtype == np.dtype(dt)
    assert np.all(np.abs(got - ref) <= _bound(x, w, dt))


def test_lenet_layers_have_no_column_kernel():
    from graphnn.ir.fusion import plan_fusion

    w = graphnn.randn(16, 6, 5, 5)
    c = graphnn.compile(lambda a: F.conv2d(a, w).relu(), dynamic=False)
    c(graphnn.randn(4, 6, 14, 14))
    plan = plan_fusion(c.last.native.graph)
    ops = [g.root.producer.op for g in plan.groups]
    assert "im2col" not in ops, ops


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_training_step_builds_columns_for_both_products(dt):
    """In a training step the forward product and the weight gradient (16 output channels: g[n] @ col[n]^T) each
    build the per-image columns: no im2col kernel, and the weight gradient is sum_n g[n] @ col[n]^T."""
    from graphnn.ir.fusion import plan_fusion
    from graphnn.ir.ops.im2col import _im2col_ref

    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 14, 14)).astype(dt)
    w0 = rng.standard_normal((16, 6, 5, 5)).astype(dt)
    r = rng.standard_normal((4, 16, 10, 10)).astype(dt)

    def step(a, w, c):
        loss = (F.conv2d(a, w) * c).sum()
        loss.backward()
        return w.grad

    w = graphnn.tensor(w0, requires_grad=True)
    c = graphnn.compile(step, dynamic=False)
    got = c(graphnn.tensor(x), w, graphnn.tensor(r)).numpy()
    cols = _im2col_ref(
        [x], {"kernel": (5, 5), "stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1), "per_image": True}
    )
    g = r.reshape(4, 16, 100)
    ref = np.einsum("noq,nkq->ok", g.astype(np.float64), cols.astype(np.float64)).reshape(w0.shape)
    bound = 2 * 400 * np.finfo(dt).eps * np.einsum("noq,nkq->ok", np.abs(g), np.abs(cols)).reshape(w0.shape)
    assert np.all(np.abs(got - ref) <= bound)
    ops = [gr.root.producer.op for gr in plan_fusion(c.last.native.graph).groups]
    assert "im2col" not in ops and "matmul" in ops, ops
