"""Long floating-point reductions keep PyTorch's accuracy: sums fold in a cascade (codegen Kernel.reduce), running
sums and variances of float32 data accumulate in float64 (as PyTorch's CPU kernels), eagerly and compiled."""

import numpy as np
import pytest

import graphnn
from graphnn.codegen.kernel import CASCADE

U32 = 2.0**-24  # unit roundoff of float32


def _cascade_terms(n: int) -> int:
    """Additions one term of a cascaded sum of n terms goes through, at most: one chain of CASCADE[-1] terms (the
    vectorized loop splits it further), one per chunk of the next level, one per chunk of the outermost."""
    return CASCADE[-1] + CASCADE[0] // CASCADE[-1] + -(-n // CASCADE[0])


@pytest.mark.parametrize("n", [CASCADE[-1] + 3, 2**23 + 5])
def test_long_sums_round_like_a_cascade(n):
    """A float32 sum of n terms of 0.1 (every term rounding the same way: the worst case for one long chain, which
    was 0.15% off at 10^7 terms) is within the cascade's bound, compiled and eagerly, whole and as a mean."""
    x = graphnn.full((n,), 0.1)
    term = float(np.float32(0.1))
    square = float(np.float32(0.1) * np.float32(0.1))  # (each product rounds to float32 first)
    for what, got, exact in (
        ("compiled sum", graphnn.compile(lambda t: t.sum())(x).item(), n * term),
        ("eager sum", x.sum().item(), n * term),
        ("compiled sum of squares", graphnn.compile(lambda t: (t * t).sum())(x).item(), n * square),
        ("compiled mean, times n", graphnn.compile(lambda t: t.mean())(x).item() * n, n * term),
    ):
        bound = (_cascade_terms(n) + ("mean" in what)) * U32 * exact  # (a mean rounds once more: its division)
        assert abs(got - exact) <= bound, f"{what}: {got} vs {exact}"


def test_batch_statistics_over_three_axes():
    """Per-channel sums over (batch, height, width), as BatchNorm takes them: one partial per loop level."""
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((16, 3, 64, 64)) + 3).astype(np.float32)
    got = graphnn.compile(lambda t: t.sum((0, 2, 3)))(graphnn.tensor(a)).numpy()
    want = a.astype(np.float64).sum((0, 2, 3))
    mag = np.abs(a).astype(np.float64).sum((0, 2, 3))
    assert np.all(np.abs(got - want) <= (16 + 64 + 64 + 2) * U32 * mag)


def test_running_sums_of_float32_accumulate_in_float64():
    """cumsum of 10^6 terms: each position is its float64 running sum rounded once (a float32 chain ended 1% off)."""
    x = graphnn.full((1_000_000,), 0.1)
    want = np.cumsum(np.full(1_000_000, np.float32(0.1), np.float64)).astype(np.float32)
    np.testing.assert_array_equal(x.cumsum(0).numpy(), want)
    np.testing.assert_array_equal(graphnn.compile(lambda t: t.cumsum(0))(x).numpy(), want)
    rev = graphnn.compile(lambda t: t.flip(0).cumsum(0).flip(0))(x).numpy()
    np.testing.assert_array_equal(rev[::-1], want)


def test_variance_of_offset_float32_data():
    """var and std of float32 values near 1e5: reduced in float64 and rounded once (a float32 mean is off by
    ~1e-2 there, which every deviation inherited), with float32 results and gradients."""
    rng = np.random.default_rng(1)
    a = (1e5 + rng.standard_normal((64, 8))).astype(np.float32)
    want = a.astype(np.float64).var(0, ddof=1)
    x = graphnn.tensor(a, requires_grad=True)
    for got in (x.var(0), graphnn.compile(lambda t: t.var(0))(x)):
        assert got.dtype == graphnn.float32
        # the float64 computation's own error is far below one float32 rounding of the result
        np.testing.assert_array_less(np.abs(got.detach().numpy() - want), 2 * U32 * want)
    x.std(1).sum().backward()
    assert x.grad.dtype == graphnn.float32
