"""A user defines an elementwise op in their own file with one call (the README's "Adding an op"), and it works
eagerly, compiled, in backward(), in viz/summary and in the fuzzer. Runs in its own interpreter so the new op
does not join the registry of the rest of the test session."""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import numpy as np
    import graphnn
    import graphnn.nn as nn

    # -- the README's example, as a user writes it ------------------------------------------------------------
    graphnn.ops.elementwise(
        "softsign",
        scalar=lambda s, x: s.div(x, s.add(s.const(1), s.abs(x))),
        grad=lambda b, x, y, g: b.div(g, b.mul(b.add(b.abs(x), 1.0), b.add(b.abs(x), 1.0))),
        float_only=True, api=("softsign",), torch_name="SoftsignBackward0")

    # -- eager, against NumPy -----------------------------------------------------------------------------------
    xs = np.array([-3.0, -0.5, 0.0, 0.25, 2.0, np.inf, -np.inf, np.nan], np.float32)
    got = graphnn.softsign(graphnn.tensor(xs)).numpy()
    with np.errstate(invalid="ignore"):
        want = xs / (1 + np.abs(xs))  # inf / inf is NaN, in the expression as in NumPy
    np.testing.assert_array_equal(got, want)

    # -- compiled, bit for bit the same elementwise formula up to rounding -----------------------------------------
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 33)).astype(np.float32) * 3
    f = graphnn.compile(lambda t: t.softsign() * 2 + 1)
    ref = x / (1 + np.abs(x)) * 2 + 1
    got = f(graphnn.from_numpy(x)).numpy()
    assert np.all(np.abs(got - ref) <= 8 * np.finfo(np.float32).eps * (np.abs(ref) + 1)), np.abs(got - ref).max()

    # -- backward: eager and inside a compiled training step, against finite differences -------------------------
    x64 = rng.standard_normal(7)
    t = graphnn.tensor(x64, dtype=graphnn.float64, requires_grad=True)
    graphnn.softsign(t).sum().backward()
    h = 1e-6
    fd = ((x64 + h) / (1 + np.abs(x64 + h)) - (x64 - h) / (1 + np.abs(x64 - h))) / (2 * h)
    np.testing.assert_allclose(t.grad.numpy(), fd, rtol=0, atol=1e-8)
    assert type(graphnn.softsign(t).grad_fn).__name__ == "SoftsignBackward0"

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x):
            return self.lin(x).softsign()

    graphnn.manual_seed(0)
    net = Net()
    opt = graphnn.optim.SGD(net.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = (net(x) ** 2).sum()
        loss.backward()
        opt.step()
        return loss

    data = graphnn.randn(5, 4)
    eager_net = Net()
    eager_net.load_state_dict(net.state_dict())
    eager_opt = graphnn.optim.SGD(eager_net.parameters(), lr=0.1)
    cstep = graphnn.compile(step)
    for _ in range(3):
        lc = cstep(data).item()
        eager_opt.zero_grad()
        le = (eager_net(data) ** 2).sum()
        le.backward()
        eager_opt.step()
        assert abs(lc - le.item()) <= 1e-5 * max(1.0, abs(lc)), (lc, le.item())

    # -- viz and summary see it ---------------------------------------------------------------------------------
    from graphnn.viz import summary, trace_stages
    stages = trace_stages(Net(), [graphnn.randn(2, 4)], ["traced", "fused"])
    assert any(n.op == "softsign" for n in stages["traced"].graph.nodes)
    table = str(summary(Net(), (2, 4)))
    assert "Net.lin" in table or "lin" in table

    # -- the fuzzer draws it, and compiled code agrees with the reference on those graphs ---------------------------
    from graphnn.tools.fuzz_check import check_case
    from graphnn.tools.fuzz_gen import case_from_seed, covered_ops
    assert "softsign" in covered_ops()
    found = 0
    for seed in range(400):
        case = case_from_seed(seed)
        if any(n.op == "softsign" for n in case.graph.nodes):
            check_case(case)
            found += 1
        if found >= 5:
            break
    assert found >= 5, found
    print("ok")
""")


def test_user_defined_elementwise_op_works_everywhere(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = tmp_path / "my_op.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout[-2000:] + proc.stderr[-4000:]
