"""Convolutions with a small weight compiled as one product per image (conv_gemm._per_image): the column matrix
per image, the result stored in NCHW order with the bias and activation in the product's epilogue; forward and
gradients agree with eager execution (NumPy reference kernels)."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from tolerance import assert_close


@pytest.mark.parametrize(
    "stride, padding, dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2)], ids=["plain", "stride_pad", "dilated"]
)
def test_per_image_conv_matches_eager_forward_and_backward(stride, padding, dilation):
    graphnn.manual_seed(3)
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding, dilation=dilation)
    x = graphnn.randn(4, 3, 19, 17)

    def loss_of(x):
        return (F.relu(conv(x)) ** 2).mean()

    def step(x):
        conv.zero_grad()
        loss = loss_of(x)
        loss.backward()
        return loss, conv.weight.grad.clone(), conv.bias.grad.clone()

    want = [t.detach().numpy() for t in step(x)]
    compiled = graphnn.compile(step)
    got = [t.detach().numpy() for t in compiled(x)]
    lowered = str(compiled.graphs["lowered"])
    assert "per_image=True" in lowered, lowered
    for g, w, what in zip(got, want, ("loss", "weight grad", "bias grad")):
        # (sums of up to 4 * 19 * 17 products of unit-size terms, float32)
        assert_close(g, w, 1e-4 * np.sqrt(4 * 19 * 17) * max(1.0, float(np.abs(w).max())), what)


def test_a_big_weight_keeps_one_product_over_the_batch():
    conv = nn.Conv2d(64, 128, 3)  # (73,728 float32 weights: beyond PER_IMAGE_WEIGHT_BYTES)
    c = graphnn.compile(conv)
    with graphnn.no_grad():
        c(graphnn.randn(2, 64, 12, 12))
    assert "per_image" not in str(c.graphs["lowered"])
