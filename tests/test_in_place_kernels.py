"""In-place state updates (codegen/module.updates_in_place): a kernel that stores a new parameter into the buffer it
reads takes one pointer for both, so that every pointer it takes is noalias and LLVM vectorizes its loops without
run-time overlap checks (which an update in place fails: it then ran the scalar fallback)."""

import re

import numpy as np

import graphnn
import graphnn.nn as nn
from tolerance import accumulation_tolerance, assert_close
from train_steps import sum_step


def _kernel_headers(ir_text: str) -> list:
    return [line for line in ir_text.splitlines() if re.match(r'define internal void @"graphnn_entry_k\d+', line)]


def test_update_kernels_take_distinct_noalias_pointers_and_match_the_formula():
    rng = np.random.default_rng(0)
    lin = nn.Linear(40, 24)
    w0, b0 = lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy()
    opt = graphnn.optim.SGD(lin.parameters(), lr=0.25, momentum=0.5)
    x = graphnn.tensor(rng.standard_normal((8, 40)).astype(np.float32))

    step = graphnn.compile(sum_step(lin, opt))
    step(x)
    step(x)
    native = step.last.native
    assert native.graph.meta.get("writeback"), "the step writes its parameters back"
    headers = _kernel_headers(native.ir_text)
    assert headers
    for h in headers:
        args = re.findall(r"ptr( noalias)?( align \d+)? %", h)
        assert args and all(a[0] for a in args), f"a kernel takes a pointer that may alias another: {h[:160]}"
    # d(sum of lin(x))/dW = ones @ x (each row the column sums of x), d/db = the batch size: the same every step
    xs = x.numpy().astype(np.float64)
    gw = np.broadcast_to(xs.sum(0), w0.shape)
    gw_mag = np.broadcast_to(np.abs(xs).sum(0), w0.shape)  # (the sums round relative to the sums of |terms|)
    gb = np.full(b0.shape, 8.0)
    # step 1: buf = g, p -= lr g; step 2: buf = 0.5 g + g, p -= lr buf
    for p, p0, g, g_mag in ((lin.weight, w0, gw, gw_mag), (lin.bias, b0, gb, gb)):
        want = p0 - 0.25 * g - 0.25 * 1.5 * g
        magnitude = np.abs(p0) + 0.25 * g_mag + 0.25 * 1.5 * g_mag
        # the gradient's sums over 8 rows, then 5 roundings of the updates
        tol = accumulation_tolerance(np.float32, 8 + 5, magnitude)
        assert_close(p.detach().numpy(), want, tol, "parameter after two steps")
