"""Buffers graphnn did not allocate have whatever alignment NumPy gave them: compiled code must never assume more.

Each scenario runs in its own interpreter, so a fault (e.g. an aligned streaming store into a parameter's buffer)
fails the test instead of killing the test run. Sizes sit around every size threshold of the code generator:
streaming stores (codegen.module.ALIGNED_OUTPUT_BYTES), the streaming block (STREAM_BLOCK), kernel splitting
(PARALLEL_WORK) and GEMM's in-place B reads (gemm.DIRECT_B_MAX_ROWS).
"""

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = textwrap.dedent("""
    import numpy as np
    import graphnn
    import graphnn.nn as nn
    import graphnn.nn.functional as F
    from graphnn.codegen import module as cm, gemm
    from tolerance import accumulation_tolerance, assert_close, recorded_bounds

    def misaligned(shape, offset_bytes=4, dtype=np.float32, seed=0):
        '''A C-contiguous view whose data starts `offset_bytes` past a 64-byte boundary.'''
        n = int(np.prod(shape))
        isz = np.dtype(dtype).itemsize
        raw = np.empty(n * isz + 128, np.uint8)
        start = (-raw.ctypes.data % 64) + offset_bytes
        out = raw[start:start + n * isz].view(dtype).reshape(shape)
        out[...] = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
        assert out.ctypes.data % 64 == offset_bytes % 64 and out.flags.c_contiguous
        return out

    BIG = cm.ALIGNED_OUTPUT_BYTES // 4  # float32 elements at the streaming-store threshold
""")


def _run(body: str) -> str:
    path = os.pathsep.join([ROOT, os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH", "")])  # + tolerance.py
    env = dict(os.environ, PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, (
        f"exit code {proc.returncode}\nstdout (last scenario started):\n{proc.stdout[-2000:]}"
        f"\nstderr:\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def test_mnist_shaped_sgd_step_updates_unaligned_weights_in_place():
    """A compiled SGD step whose first weight (9216 x 128 float32) is above the streaming-store size."""
    _run("""
        for batch in (1, 2):
            graphnn.manual_seed(0)
            net = nn.Sequential(nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))
            w = net[0].weight
            # the weight's buffer, moved 4 bytes past a cache line (NumPy gives no alignment guarantee)
            w.data = graphnn.from_numpy(misaligned(tuple(w.shape)))
            before = w.detach().numpy().copy()
            opt = graphnn.optim.SGD(net.parameters(), lr=0.1)

            @graphnn.compile
            def step(x, y):
                opt.zero_grad()
                loss = F.nll_loss(F.log_softmax(net(x), dim=1), y)
                loss.backward()
                opt.step()
                return loss

            x, y = graphnn.randn(batch, 9216), graphnn.randint(0, 10, (batch,))
            print("batch", batch, flush=True)
            step(x, y)
            # the step wrote the update into the user's own (misaligned) buffer
            assert w.detach().numpy().ctypes.data % 64 == 4
            assert not np.array_equal(w.detach().numpy(), before)
            step(x, y)
        print("ok")
    """)


@pytest.mark.parametrize("offset", [4, 8, 32])
def test_elementwise_on_misaligned_views_around_size_thresholds(offset):
    _run(f"""
        fn = lambda x, y: (x * y + 1.0).relu() - y.sigmoid()
        f = graphnn.compile(fn)
        sizes = [cm.STREAM_BLOCK - 1, cm.STREAM_BLOCK + 3, cm.PARALLEL_WORK - 1, cm.PARALLEL_WORK + 5,
                 BIG - 1, BIG, BIG + 17]
        for n in sizes:
            print("n", n, flush=True)
            x, y = misaligned((n,), {offset}, seed=1), misaligned((n,), {offset}, seed=2)
            got = f(graphnn.from_numpy(x), graphnn.from_numpy(y)).numpy()
            # eager on aligned copies, its graph recorded: compiled and eager are within twice its bound
            ref = fn(graphnn.tensor(x, requires_grad=True), graphnn.tensor(y, requires_grad=True))
            want, tol = ref.detach().numpy(), recorded_bounds([ref]).tol(0)
            assert_close(got, want, tol, f"n={{n}}")
            # a slice of a bigger array (x[1:]) as the argument
            got = f(graphnn.from_numpy(x[1:]), graphnn.from_numpy(y[1:])).numpy()
            assert_close(got, want[1:], tol[1:], f"n={{n}}, x[1:]")
        print("ok")
    """)


def test_in_place_updates_of_misaligned_parameters_around_thresholds():
    """Momentum SGD updates parameters (and their momentum buffers) in place; sizes around the streaming size."""
    _run("""
        for n in (cm.STREAM_BLOCK + 1, BIG - 3, BIG, BIG + 5):
            print("n", n, flush=True)
            p = nn.Parameter(graphnn.from_numpy(misaligned((n,), 4, seed=3)))
            p.data = graphnn.from_numpy(misaligned((n,), 4, seed=3))
            opt = graphnn.optim.SGD([p], lr=0.5, momentum=0.9)
            x = graphnn.from_numpy(misaligned((n,), 12, seed=4))

            @graphnn.compile
            def step(x):
                opt.zero_grad()
                loss = (p * x).sum()
                loss.backward()
                opt.step()
                return loss

            p0 = p.detach().numpy().copy()
            step(x)
            step(x)
            g = x.numpy()  # the gradient of sum(p * x), exactly
            want = p0 - 0.5 * g - 0.5 * (0.9 * g + g)
            # each evaluation rounds at most 6 times (two updates of p, one of the momentum buffer, their products),
            # each relative to at most the sum of the magnitudes of every term involved
            magnitude = np.abs(p0) + 0.5 * np.abs(g) + 0.5 * (0.9 * np.abs(g) + np.abs(g))
            assert_close(p.detach().numpy(), want, accumulation_tolerance(np.float32, 6, magnitude), f"n={n}")
        print("ok")
    """)


def test_products_and_convolutions_on_misaligned_inputs():
    _run("""
        rng = np.random.default_rng(0)
        mm = graphnn.compile(lambda a, b: (a @ b).relu())
        rows = (1, 3, gemm.DIRECT_B_MAX_ROWS - 1, gemm.DIRECT_B_MAX_ROWS + 1)
        for m in rows:
            for k, n in ((17, 33), (64, 129), (300, 1030)):
                print("matmul", m, k, n, flush=True)
                a, b = misaligned((m, k), 4, seed=m), misaligned((k, n), 8, seed=k)
                got = mm(graphnn.from_numpy(a), graphnn.from_numpy(b)).numpy()
                want = np.maximum(a.astype(np.float64) @ b, 0)  # (float64: its own error is negligible)
                magnitude = np.abs(a).astype(np.float64) @ np.abs(b)  # sum of |terms| of each k-term dot product
                assert_close(got, want, accumulation_tolerance(np.float32, k, magnitude), f"matmul {(m, k, n)}")
        conv = nn.Conv2d(3, 8, 3, padding=1)
        conv.weight.data = graphnn.from_numpy(misaligned((8, 3, 3, 3), 4, seed=5))
        cc = graphnn.compile(conv)
        for shape in ((1, 3, 8, 8), (5, 3, 33, 31)):
            print("conv", shape, flush=True)
            x = misaligned(shape, 20, seed=6)
            got = cc(graphnn.from_numpy(x)).detach().numpy()
            ref = conv(graphnn.from_numpy(np.ascontiguousarray(x)))  # eager, recorded (the weights require grad)
            assert_close(got, ref.detach().numpy(), recorded_bounds([ref]).tol(0), f"conv {shape}")
        print("ok")
    """)
