"""Compiled code follows the plain Python values its trace read, as eager code and torch.compile do
(graphnn/compiler/python_reads.py): a module attribute, a global or closure variable of the compiled function;
what a trace changed itself (a call counter) does not make every call trace again."""

import math
import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from graphnn.compiler.python_state import TraceWarning

STEP = [0]
iter_num = 0


def _lr(it: int) -> float:
    return 0.05 * (it + 1) if it < 2 else 0.01 + 0.04 * (1 + math.cos(math.pi * (it - 2) / 4))


def test_an_lr_set_inside_a_compiled_step_from_a_global_follows_it():
    global iter_num
    results = {}
    for compiled in (False, True):
        graphnn.manual_seed(0)
        model = nn.Linear(3, 1)
        opt = graphnn.optim.SGD(model.parameters(), lr=0.1)
        x, y = graphnn.ones(4, 3), graphnn.zeros(4, 1)

        def step(x, y):
            for g in opt.param_groups:
                g["lr"] = _lr(iter_num)
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            return loss

        run = graphnn.compile(step) if compiled else step
        losses = []
        for iter_num in range(6):
            losses.append(run(x, y).item())
        results[compiled] = (losses, opt.param_groups[0]["lr"])
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-5)
    assert results[True][1] == results[False][1] == _lr(5)


class Sampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, 3)
        self.temperature = 1.0
        self.calls = 0
        self.scale = float("nan")

    def forward(self, x):
        self.calls += 1  # a side effect: runs when tracing only
        t = self.temperature if math.isnan(self.scale) else self.scale
        return F.softmax(self.head(x) / t, dim=-1)


def test_a_module_attribute_read_by_forward_is_guarded():
    s, ref = Sampler(), Sampler()
    ref.load_state_dict(s.state_dict())
    cs = graphnn.compile(s)
    x = graphnn.ones(1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)  # (the call counter that tracing changed)
        for t in (1.0, 0.1, 0.1, 2.0, 2.0, 2.0):
            s.temperature = ref.temperature = t
            np.testing.assert_allclose(cs(x).detach().numpy(), ref(x).detach().numpy(), rtol=1e-6)
    assert cs.cache.programs == 3  # one trace per temperature; a NaN attribute equals itself


def test_a_forward_that_counts_its_calls_traces_once():
    s = Sampler()
    cs = graphnn.compile(s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        for _ in range(5):
            cs(graphnn.ones(1, 2))
    assert cs.cache.programs == 1 and s.calls == 1  # forward's Python ran once, when tracing


def test_closure_variables_are_guarded_and_churn_is_reported():
    scale = 1.0

    def f(x):
        return x * scale

    cf = graphnn.compile(f)
    x = graphnn.ones(2)
    with pytest.warns(TraceWarning, match="traced 8 times"):
        for i in range(10):
            scale = float(i)
            assert cf(x).numpy().tolist() == [float(i)] * 2


def test_numpy_random_draws_while_tracing_warn():
    """Numbers drawn from NumPy's global generator (or Python's random) while tracing are constants of the trace: a
    TraceWarning says so and points to graphnn's own random ops, which draw at every call."""
    np.random.seed(0)
    c = graphnn.compile(lambda x: x + graphnn.tensor(np.random.randn(3).astype(np.float32)))
    with pytest.warns(TraceWarning, match="random generator while tracing"):
        c(graphnn.zeros(3))
    fresh = graphnn.compile(lambda x: x + graphnn.randn(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceWarning)
        a, b = fresh(graphnn.zeros(3)), fresh(graphnn.zeros(3))
    assert not np.array_equal(a.numpy(), b.numpy())
