"""Adadelta, Adagrad, RMSprop, NAdam and LBFGS against PyTorch: trajectories over several steps (eager and inside a
compiled training step), optimizer state, state_dict()/load_state_dict() in PyTorch's format (both directions), and
hyper-parameters as runtime inputs of a compiled step.

Tolerances: the same model in both libraries (float64 MLP, tests/parity_util); one training step of it takes about
STEP_ROUNDINGS roundings (forward ~40, backward ~30, an optimizer update up to ~50), and the errors of earlier steps
carry into later ones, so values after n steps (or n function evaluations of LBFGS) get
steps_tolerance(value, STEP_ROUNDINGS * n).
"""

import copy

import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.optim as goptim
from parity_util import close, compare_params, steps_tolerance, to_np
from train_steps import mlp_pair, mse_step, regression_batches

STEP_ROUNDINGS = 120

OPTIMS = [
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-8)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True, maximize=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
]


def _ids(case):
    name, kw = case
    return name + "-" + (",".join(f"{k}={v}" for k, v in kw.items()) or "default")


def _run(torch, g_step, t_step, batches, done=0) -> int:
    for x, y in batches:
        done += 1
        t_loss = t_step(torch.tensor(x), torch.tensor(y))
        g_loss = g_step(graphnn.tensor(x), graphnn.tensor(y))
        close(g_loss, t_loss, f"loss at step {done}", steps_tolerance(t_loss, STEP_ROUNDINGS * done))
    return done


def _compare_state(gopt, topt, g, t, n) -> None:
    for p, q in zip(g.parameters(), t.parameters()):
        assert list(gopt.state[p]) == list(topt.state[q])
        for k, v in topt.state[q].items():
            close(gopt.state[p][k], v, k, steps_tolerance(v, STEP_ROUNDINGS * n))


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("case", OPTIMS, ids=[_ids(c) for c in OPTIMS])
def test_trajectory(torch, case, compiled):
    name, kw = case
    g, t = mlp_pair(torch)
    gopt, topt = getattr(goptim, name)(g.parameters(), **kw), getattr(torch.optim, name)(t.parameters(), **kw)
    g_step = mse_step(graphnn, g, gopt)
    n = _run(torch, graphnn.compile(g_step) if compiled else g_step, mse_step(torch, t, topt), regression_batches(5))
    compare_params(g, t, STEP_ROUNDINGS * n)
    _compare_state(gopt, topt, g, t, n)


def _to_graphnn(sd):
    """A PyTorch state_dict with its tensors as graphnn tensors (as graphnn.load gives it)."""
    if hasattr(sd, "detach"):
        return graphnn.tensor(sd.detach().numpy().copy())
    if isinstance(sd, dict):
        return {k: _to_graphnn(v) for k, v in sd.items()}
    if isinstance(sd, list):
        return [_to_graphnn(v) for v in sd]
    return sd


def _to_torch(torch, sd):
    if isinstance(sd, graphnn.Tensor):
        return torch.tensor(sd.numpy().copy())
    if isinstance(sd, dict):
        return {k: _to_torch(torch, v) for k, v in sd.items()}
    if isinstance(sd, list):
        return [_to_torch(torch, v) for v in sd]
    return sd


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", ["Adadelta", "Adagrad", "RMSprop", "NAdam"])
def test_state_dict_round_trip(torch, name, compiled):
    """state_dict() has PyTorch's layout and values; each library continues from the other's state_dict (graphnn's
    step compiled, and traced before the load, in the compiled case)."""
    kw = {"RMSprop": dict(lr=0.01, momentum=0.9, centered=True)}.get(name, dict(lr=0.05))
    batches = regression_batches(6, seed=31)
    g, t = mlp_pair(torch)
    gopt, topt = getattr(goptim, name)(g.parameters(), **kw), getattr(torch.optim, name)(t.parameters(), **kw)
    n = _run(torch, mse_step(graphnn, g, gopt), mse_step(torch, t, topt), batches[:3])
    sd, tsd = gopt.state_dict(), topt.state_dict()
    assert list(sd) == list(tsd) == ["state", "param_groups"]
    assert list(sd["state"]) == list(tsd["state"])
    for i, st in tsd["state"].items():
        assert list(sd["state"][i]) == list(st)
        for k, v in st.items():
            close(sd["state"][i][k], v, k, steps_tolerance(v, STEP_ROUNDINGS * n))
    assert sd["param_groups"] == tsd["param_groups"]

    # graphnn continues from PyTorch's state_dict, PyTorch from graphnn's
    g2, t2 = mlp_pair(torch, seed=1)
    gopt2 = getattr(goptim, name)(g2.parameters(), lr=0.5)
    topt2 = getattr(torch.optim, name)(t2.parameters(), lr=0.5)
    g_step2 = mse_step(graphnn, g2, gopt2)
    if compiled:
        g_step2 = graphnn.compile(g_step2)
        x, y = regression_batches(1, seed=32)[0]
        g_step2(graphnn.tensor(x), graphnn.tensor(y))  # the compiled step has captured its own state
    g2.load_state_dict(g.state_dict())
    t2.load_state_dict({k: torch.tensor(v.numpy().copy()) for k, v in g.state_dict().items()})
    gopt2.load_state_dict(_to_graphnn(copy.deepcopy(tsd)))
    topt2.load_state_dict(_to_torch(torch, copy.deepcopy(sd)))
    assert gopt2.param_groups[0]["lr"] == kw["lr"]
    n = _run(torch, g_step2, mse_step(torch, t2, topt2), batches[3:], n)
    compare_params(g2, t2, STEP_ROUNDINGS * n)
    _compare_state(gopt2, topt2, g2, t2, n)


def test_hyper_parameters_change_without_retracing(torch):
    """lr, momentum, betas, eps and weight_decay read at every call of a compiled step: changing them between steps
    takes effect as in PyTorch, with no new trace (one program for the first step, whose state does not exist yet,
    one for the others)."""
    g, t = mlp_pair(torch)
    groups = lambda m: [  # noqa: E731
        {"params": list(m[0].parameters()), "betas": (0.8, 0.9)},
        {"params": list(m[2].parameters()), "weight_decay": 0.1},
    ]
    gopt, topt = goptim.NAdam(groups(g), lr=0.01), torch.optim.NAdam(groups(t), lr=0.01)
    step = graphnn.compile(mse_step(graphnn, g, gopt))
    t_step = mse_step(torch, t, topt)
    for i, batch in enumerate(regression_batches(6, seed=33)):
        if i >= 2:
            for opt in (gopt, topt):
                opt.param_groups[0]["lr"] *= 0.7
                opt.param_groups[0]["betas"] = (0.8 - 0.05 * i, 0.9 + 0.01 * i)
                opt.param_groups[1]["weight_decay"] = 0.1 * i
                opt.param_groups[1]["eps"] = 10.0**-i
        _run(torch, step, t_step, [batch], i)
    assert step.cache.programs == 2
    compare_params(g, t, STEP_ROUNDINGS * 6)


@pytest.mark.parametrize(
    "name,kw,message",
    [
        ("Adadelta", dict(rho=1.5), "Invalid rho value: 1.5"),
        ("Adagrad", dict(lr=-1.0), "Invalid learning rate: -1.0"),
        ("RMSprop", dict(alpha=-0.1), "Invalid alpha value: -0.1"),
        ("NAdam", dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        ("NAdam", dict(momentum_decay=-1), "Invalid momentum_decay value: -1"),
    ],
)
def test_invalid_hyper_parameters(torch, name, kw, message):
    g, t = mlp_pair(torch)
    for lib, params in ((goptim, g.parameters()), (torch.optim, t.parameters())):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            getattr(lib, name)(params, **kw)


# -- LBFGS ------------------------------------------------------------------------------------------------------------
LBFGS_CASES = [
    dict(max_iter=4),
    dict(max_iter=5, history_size=2, lr=0.5),
    dict(max_iter=4, line_search_fn="strong_wolfe"),
    dict(max_iter=6, history_size=3, line_search_fn="strong_wolfe", tolerance_change=1e-6),
]


def _closures(torch, g, t, gopt, topt, compiled: bool):
    x, y = regression_batches(1, seed=34)[0]
    gx, gy, tx, ty = graphnn.tensor(x), graphnn.tensor(y), torch.tensor(x), torch.tensor(y)

    def g_body(a, b):
        gopt.zero_grad()
        loss = graphnn.nn.functional.mse_loss(g(a), b)
        loss.backward()
        return loss

    g_fn = graphnn.compile(g_body) if compiled else g_body

    def t_closure():
        topt.zero_grad()
        loss = torch.nn.functional.mse_loss(t(tx), ty)
        loss.backward()
        return loss

    return (lambda: g_fn(gx, gy)), t_closure


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled-closure"])
@pytest.mark.parametrize("kw", LBFGS_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_lbfgs(torch, kw, compiled):
    """Two LBFGS steps (fixed step or strong Wolfe line search) take the same iterations and function evaluations
    as PyTorch's and reach the same parameters; the closure may be a compiled function."""
    g, t = mlp_pair(torch)
    gopt, topt = goptim.LBFGS(g.parameters(), **kw), torch.optim.LBFGS(t.parameters(), **kw)
    g_closure, t_closure = _closures(torch, g, t, gopt, topt, compiled)
    for _ in range(2):
        g_loss, t_loss = gopt.step(g_closure), topt.step(t_closure)
        gs, ts = gopt.state[next(g.parameters())], topt.state[next(t.parameters())]
        assert (gs["func_evals"], gs["n_iter"]) == (ts["func_evals"], ts["n_iter"])
        close(g_loss, t_loss.detach(), "loss", steps_tolerance(t_loss, STEP_ROUNDINGS * ts["func_evals"]))
    assert sorted(gs) == sorted(ts)
    n = STEP_ROUNDINGS * ts["func_evals"]
    compare_params(g, t, n)
    assert len(gs["old_dirs"]) == len(ts["old_dirs"]) and gs["d"].shape == tuple(ts["d"].shape)


def test_lbfgs_state_dict_round_trip(torch):
    """LBFGS's state_dict has PyTorch's keys; a new optimizer loading it continues exactly as the first would."""
    g, t = mlp_pair(torch)
    kw = dict(max_iter=3, history_size=4)
    gopt, topt = goptim.LBFGS(g.parameters(), **kw), torch.optim.LBFGS(t.parameters(), **kw)
    g_closure, t_closure = _closures(torch, g, t, gopt, topt, False)
    gopt.step(g_closure)
    topt.step(t_closure)
    sd, tsd = gopt.state_dict(), topt.state_dict()
    assert list(sd["state"]) == list(tsd["state"]) == [0]
    assert sorted(sd["state"][0]) == sorted(tsd["state"][0])
    assert sd["param_groups"] == tsd["param_groups"]
    g2, _ = mlp_pair(torch, seed=1)
    g2.load_state_dict(g.state_dict())
    gopt2 = goptim.LBFGS(g2.parameters(), **kw)
    gopt2.load_state_dict(copy.deepcopy(sd))
    g2_closure, _ = _closures(torch, g2, t, gopt2, topt, False)
    assert gopt.step(g_closure).item() == gopt2.step(g2_closure).item()
    compare_params(g2, g)


def test_lbfgs_step_inside_compile_runs_eagerly(torch):
    """LBFGS's line search depends on values: inside graphnn.compile it is a graph break (the call runs eagerly,
    with a warning, as torch.compile's does); fullgraph=True makes it an error."""
    import warnings

    g, _ = mlp_pair(torch)
    opt = goptim.LBFGS(g.parameters())
    x = graphnn.randn(2, 4).double()

    def step(x):
        return opt.step(lambda: g(x).sum())

    with pytest.raises(graphnn.core.tensor.TraceError, match="LBFGS.step cannot run inside graphnn.compile"):
        graphnn.compile(step, fullgraph=True)(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = graphnn.compile(step)(x)
    assert any("runs eagerly" in str(w.message) for w in caught)
    assert loss.item() == loss.item()  # (a number: the eager step ran)


def test_lbfgs_stops_at_a_minimum(torch):
    """A zero gradient ends the step at once (tolerance_grad), after one evaluation, as in PyTorch."""
    w = gnn.Parameter(graphnn.zeros(3, dtype=graphnn.float64))
    opt = goptim.LBFGS([w])

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 0.0
    assert opt.state[w]["func_evals"] == 1 and "d" not in opt.state[w]
    assert to_np(w).tolist() == [0.0, 0.0, 0.0]


def test_optimizer_hooks_copies_and_pickles():
    """Step pre/post hooks and state_dict hooks run as PyTorch's; an optimizer (and a scheduler over it) deep-copies
    and pickles after its step went native, and the copy steps on its own."""
    import copy
    import pickle

    import numpy as np

    p = graphnn.nn.Parameter(graphnn.tensor([1.0, -2.0]))
    opt = graphnn.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = graphnn.optim.lr_scheduler.StepLR(opt, 3)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
    opt.register_load_state_dict_pre_hook(lambda o, sd: {k: v for k, v in sd.items() if k != "extra"})
    for _ in range(12):  # (past GRAPHNN_HOT_OPTIMIZER's eager steps)
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
        sched.step()
    assert calls[:2] == ["pre", "post"] and len(calls) == 24
    h1.remove()
    sd = opt.state_dict()
    assert sd["extra"] == 1
    opt.load_state_dict(sd)
    twin, twin_sched = copy.deepcopy(opt), copy.deepcopy(sched)
    assert twin_sched.optimizer is not opt
    for table in ("_step_post_hooks", "_state_dict_post_hooks", "_load_state_dict_pre_hooks"):
        opt.__dict__[table].clear()  # (lambdas do not pickle, in PyTorch either)
    pickle.loads(pickle.dumps(opt))
    q = twin.param_groups[0]["params"][0]
    before = q.detach().numpy().copy()
    twin.zero_grad()
    (q * q).sum().backward()
    twin.step()
    assert not np.array_equal(q.detach().numpy(), before) and q is not p
