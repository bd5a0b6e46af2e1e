"""Optimizer parameter groups against PyTorch: per-group lr and weight_decay (SGD, Adam, AdamW), add_param_group,
named parameters, the constructors' signatures (nanoGPT reads `fused` from inspect.signature), zero_grad, tied
parameters counted once, and the errors PyTorch raises. Training runs eagerly and compiled, in float64.

Losses and parameters after n steps get parity_util.steps_tolerance with n * STEP_ROUNDINGS (the rounding count of
one step of the model below, as in test_parity_layers.py).
"""

import inspect
import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.optim as goptim
from parity_util import close, compare_params, copy_state, steps_tolerance, to_np
from train_steps import mlp_pair, mse_step, regression_batches

MODES = pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
# One step of _model (Linear 4->6, tanh, Linear 6->2, MSE over 8x2): forward 40 roundings, backward ~30, an
# optimizer update ~ 50 (test_parity_layers.STEP_ROUNDINGS); errors carry into later steps: n steps, n * 120.
STEP_ROUNDINGS = 120


def _decay_groups(model, wd: float, **extra):
    """nanoGPT's split: matrices decay, vectors (biases) do not."""
    named = dict(model.named_parameters())
    return [
        {"params": [p for p in named.values() if p.dim() >= 2], "weight_decay": wd, **extra},
        {"params": [p for p in named.values() if p.dim() < 2], "weight_decay": 0.0},
    ]


def _train(torch, g, t, gopt, topt, compiled: bool, batches, done: int = 0) -> int:
    g_step = mse_step(graphnn, g, gopt)
    g_step = graphnn.compile(g_step) if compiled else g_step
    t_step = mse_step(torch, t, topt)
    for x, y in batches:
        done += 1
        t_loss = t_step(torch.tensor(x), torch.tensor(y))
        g_loss = g_step(graphnn.tensor(x), graphnn.tensor(y))
        close(g_loss, t_loss, "loss", steps_tolerance(t_loss, STEP_ROUNDINGS * done))
    return done


OPTIMS = [
    ("SGD", dict(lr=0.1, momentum=0.9), dict(lr=0.05)),
    ("Adam", dict(lr=0.05), dict(lr=0.01)),
    ("AdamW", dict(lr=0.05, betas=(0.9, 0.95)), {}),
    ("AdamW", dict(lr=0.02, amsgrad=True, fused=None, foreach=None), dict(lr=0.1)),
]


@pytest.mark.parametrize("name,kw,extra", OPTIMS, ids=[f"{o[0]}-{i}" for i, o in enumerate(OPTIMS)])
@MODES
def test_two_groups_weight_decay_and_lr(torch, name, kw, extra, compiled):
    """Two groups (weight_decay 0.3 / 0.0, the first with its own lr) over 5 steps: losses, parameters and
    optimizer state as PyTorch's, eager and compiled."""
    g, t = mlp_pair(torch)
    gopt = getattr(goptim, name)(_decay_groups(g, 0.3, **extra), **kw)
    topt = getattr(torch.optim, name)(_decay_groups(t, 0.3, **extra), **kw)
    n = _train(torch, g, t, gopt, topt, compiled, regression_batches(5))
    compare_params(g, t, STEP_ROUNDINGS * n)
    for p, q in zip(g.parameters(), t.parameters()):
        for k, v in topt.state[q].items():
            close(gopt.state[p][k], v, k, steps_tolerance(v, STEP_ROUNDINGS * n))
    gsd, tsd = gopt.state_dict(), topt.state_dict()
    assert gsd["param_groups"] == tsd["param_groups"]
    assert repr(gopt) == repr(topt)


@MODES
def test_add_param_group(torch, compiled):
    """A group added after some steps trains from then on with its own hyper-parameters (a compiled step traces
    again)."""
    g, t = mlp_pair(torch)
    gopt = goptim.AdamW(g[0].parameters(), lr=0.05)
    topt = torch.optim.AdamW(t[0].parameters(), lr=0.05)
    n = _train(torch, g, t, gopt, topt, compiled, regression_batches(2))
    gopt.add_param_group({"params": g[2].parameters(), "lr": 0.1, "weight_decay": 0.0})
    topt.add_param_group({"params": t[2].parameters(), "lr": 0.1, "weight_decay": 0.0})
    assert gopt.param_groups[1].keys() == topt.param_groups[1].keys()
    n = _train(torch, g, t, gopt, topt, compiled, regression_batches(3, seed=31), n)
    compare_params(g, t, STEP_ROUNDINGS * n)


def test_named_parameters_groups(torch):
    g, t = mlp_pair(torch)
    gopt, topt = goptim.AdamW(g.named_parameters(), lr=0.01), torch.optim.AdamW(t.named_parameters(), lr=0.01)
    assert (
        gopt.param_groups[0]["param_names"]
        == topt.param_groups[0]["param_names"]
        == ["0.weight", "0.bias", "2.weight", "2.bias"]
    )
    _train(torch, g, t, gopt, topt, False, regression_batches(1))
    assert gopt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    assert repr(gopt) == repr(topt)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_signatures_as_pytorch(torch, name):
    """Parameter names, kinds and defaults as PyTorch's; nanoGPT's check `'fused' in signature(AdamW).parameters`
    holds and fused=True or foreach=True is accepted (a compiled step is one native call anyway)."""

    def sig(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert sig(getattr(goptim, name)) == sig(getattr(torch.optim, name))
    assert "fused" in inspect.signature(getattr(goptim, name)).parameters
    g, t = mlp_pair(torch)
    gopt = getattr(goptim, name)(g.parameters(), lr=0.01, fused=True)
    topt = getattr(torch.optim, name)(t.parameters(), lr=0.01, fused=True)
    assert gopt.param_groups[0]["fused"] is True
    _train(torch, g, t, gopt, topt, False, regression_batches(2))
    assert getattr(goptim, name)(g.parameters(), foreach=True).param_groups[0]["foreach"] is True
    for lib in (goptim, torch.optim):
        with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
            getattr(lib, name)(g.parameters() if lib is goptim else t.parameters(), fused=True, foreach=True)
    with pytest.raises(NotImplementedError, match="differentiable"):
        getattr(goptim, name)(g.parameters(), differentiable=True)


def test_adam_decoupled_weight_decay_is_adamw(torch):
    g, t = mlp_pair(torch)
    gopt = goptim.Adam(g.parameters(), lr=0.05, weight_decay=0.2, decoupled_weight_decay=True)
    topt = torch.optim.AdamW(t.parameters(), lr=0.05, weight_decay=0.2)
    n = _train(torch, g, t, gopt, topt, False, regression_batches(3))
    compare_params(g, t, STEP_ROUNDINGS * n)


@MODES
def test_zero_grad_set_to_none(torch, compiled):
    g, t = mlp_pair(torch)
    gopt, topt = goptim.SGD(g.parameters(), lr=0.1), torch.optim.SGD(t.parameters(), lr=0.1)
    x, y = regression_batches(1)[0]
    for set_to_none in (False, True):
        for lib, m, opt, xs, ys in (
            (graphnn, g, gopt, graphnn.tensor(x), graphnn.tensor(y)),
            (torch, t, topt, torch.tensor(x), torch.tensor(y)),
        ):
            lib.nn.functional.mse_loss(m(xs), ys).backward()

            def zero(opt=opt):
                opt.zero_grad(set_to_none=set_to_none)

            (graphnn.compile(zero) if compiled and lib is graphnn else zero)()
        for p, q in zip(g.parameters(), t.parameters()):
            assert (p.grad is None) == (q.grad is None) == set_to_none
            if not set_to_none:
                np.testing.assert_array_equal(to_np(p.grad), q.grad.numpy())


def _tied(nn):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 4)
            self.body = nn.Linear(4, 4)
            self.head = nn.Linear(4, 5, bias=False)
            self.head.weight = self.emb.weight  # tied

        def forward(self, idx):
            return self.head(self.body(self.emb(idx)).tanh())

    return Tied().double()


@MODES
def test_tied_parameters_counted_once(torch, compiled):
    """A tied weight is one parameter (listed once, updated once per step, its gradient the sum of both uses);
    state_dict lists it under both names."""
    g, t = _tied(gnn), _tied(torch.nn)
    copy_state(torch, g, t)
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert list(g.state_dict()) == list(t.state_dict())
    assert sum(p.numel() for p in g.parameters()) == sum(p.numel() for p in t.parameters())
    gopt = goptim.AdamW(_decay_groups(g, 0.1), lr=0.05)
    topt = torch.optim.AdamW(_decay_groups(t, 0.1), lr=0.05)

    def step(lib, m, opt):
        def f(idx, target):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(m(idx).reshape(-1, 5), target.reshape(-1))
            loss.backward()
            opt.step()
            return loss

        return f

    g_step = graphnn.compile(step(graphnn, g, gopt)) if compiled else step(graphnn, g, gopt)
    t_step = step(torch, t, topt)
    r = np.random.default_rng(32)
    for i in range(4):
        idx, target = r.integers(0, 5, (3, 4)), r.integers(0, 5, (3, 4))
        t_loss = t_step(torch.tensor(idx), torch.tensor(target))
        close(
            g_step(graphnn.tensor(idx), graphnn.tensor(target)),
            t_loss,
            "loss",
            steps_tolerance(t_loss, STEP_ROUNDINGS * (i + 1)),
        )
    compare_params(g, t, STEP_ROUNDINGS * 4)
    assert g.head.weight is g.emb.weight


def test_group_errors(torch):
    g, _ = mlp_pair(torch)
    w, b = g[0].weight, g[0].bias
    for lib_opt, params in ((goptim, (w, b)), (torch.optim, tuple(torch.nn.Linear(2, 2).parameters()))):
        p, q = params
        with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
            lib_opt.SGD([{"params": [p]}, {"params": [p, q]}], lr=0.1)
        with pytest.warns(UserWarning, match="duplicate parameters"):
            lib_opt.SGD([p, p], lr=0.1)
        with pytest.raises(ValueError, match="empty parameter list"):
            lib_opt.SGD([], lr=0.1)
        with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
            lib_opt.SGD(p, lr=0.1)
        with pytest.raises(TypeError, match="can only optimize Tensors"):
            lib_opt.SGD([1.0], lr=0.1)
        with pytest.raises(ValueError, match="non-leaf"):
            lib_opt.SGD([p * 2], lr=0.1)
        with pytest.raises(ValueError, match="Some param names are missing"):
            lib_opt.SGD([("a", p), q], lr=0.1)
        opt = lib_opt.SGD([p], lr=0.1)
        with pytest.raises(TypeError, match="ordered collections"):
            opt.add_param_group({"params": {q}})
        with pytest.raises(ValueError, match="with/without names"):
            opt.add_param_group({"params": [("b", q)]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        goptim.SGD([w, b], lr=0.1)
