"""graphnn's optimizers run their update compiled after GRAPHNN_HOT_OPTIMIZER eager steps (one native call for
every parameter): the same results as eager steps, hyper-parameters still read at each step, a new param group
updated, and a step that cannot be compiled still runs."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from graphnn.compiler.program import CompiledFunction


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "hot_optimizer_cache"))


def _train(make_opt, steps: int, hot: str, monkeypatch, between=None) -> tuple:
    monkeypatch.setenv("GRAPHNN_HOT_OPTIMIZER", hot)
    # backward() interpreted in every run: after GRAPHNN_HOT_BACKWARD reuses in the process a structure's gradient
    # runs natively, which rounds otherwise, so a later run would differ from an earlier one for that reason alone
    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "0")
    graphnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = make_opt(model)
    x, y = graphnn.randn(8, 6), graphnn.randint(0, 3, (8,))
    for i in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if between is not None:
            between(i, opt, model)
    return [p.detach().numpy().copy() for p in model.parameters()], opt


OPTIMIZERS = {
    "SGD": lambda m: graphnn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Adam": lambda m: graphnn.optim.Adam(m.parameters(), lr=0.01, amsgrad=True),
    "AdamW": lambda m: graphnn.optim.AdamW(m.parameters(), lr=0.01),
    "RMSprop": lambda m: graphnn.optim.RMSprop(m.parameters(), lr=0.01, momentum=0.5),
    "Adagrad": lambda m: graphnn.optim.Adagrad(m.parameters(), lr=0.1),
    "Adadelta": lambda m: graphnn.optim.Adadelta(m.parameters()),
    "NAdam": lambda m: graphnn.optim.NAdam(m.parameters(), lr=0.01),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_compiled_updates_equal_eager_ones(monkeypatch, name):
    want, _ = _train(OPTIMIZERS[name], 6, "0", monkeypatch)
    got, opt = _train(OPTIMIZERS[name], 6, "2", monkeypatch)
    assert isinstance(opt._compiled_step, CompiledFunction) and opt._compiled_step.cache.programs == 1
    # four compiled steps of float32 updates (bias corrections in float64): rounding of a few ulps per step, which
    # Adam-like rules can scale up by 1/sqrt(v) where a gradient is tiny
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_a_schedule_and_a_new_group_reach_the_compiled_update(monkeypatch):
    def between(i, opt, model):
        opt.param_groups[0]["lr"] *= 0.5  # as a scheduler does, every step
        if i == 3:
            opt.add_param_group({"params": model[2].parameters(), "lr": 0.2})

    def make(model):
        return graphnn.optim.SGD(model[0].parameters(), lr=0.1)

    want, _ = _train(make, 7, "0", monkeypatch, between)
    got, opt = _train(make, 7, "2", monkeypatch, between)
    assert opt._compiled_step.cache.programs == 2  # one trace per set of groups, none per learning rate
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


def test_a_step_that_cannot_be_compiled_runs_eagerly(monkeypatch):
    def refuse(self, *args):
        raise NotImplementedError("cannot trace this")

    monkeypatch.setattr(CompiledFunction, "__call__", refuse)
    want, _ = _train(OPTIMIZERS["Adam"], 5, "0", monkeypatch)
    got, opt = _train(OPTIMIZERS["Adam"], 5, "1", monkeypatch)
    assert opt._compiled_step is False
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_lbfgs_and_closures_stay_eager(monkeypatch):
    monkeypatch.setenv("GRAPHNN_HOT_OPTIMIZER", "1")
    p = nn.Parameter(graphnn.tensor([1.0, -2.0]))
    opt = graphnn.optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    for _ in range(3):
        assert float(opt.step(closure)) >= 0
    assert opt._compiled_step is None
    inner = graphnn.optim.LBFGS.step.__wrapped__  # (under the step-hook wrapper only: no compiled step)
    assert not hasattr(inner, "__wrapped__")
