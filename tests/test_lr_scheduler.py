"""graphnn.optim.lr_scheduler against torch.optim.lr_scheduler: learning-rate (and momentum) sequences equal to
PyTorch's (the same formulas in the same order, so exactly equal floats), last_epoch, get_last_lr(), state_dict
round trips, step(epoch), and compiled training steps that follow a scheduler without being traced again."""

import copy
import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.optim as goptim
from parity_util import close, compare_params, copy_state, steps_tolerance

STEP_ROUNDINGS = 120  # roundings of one training step of the MLP below (see tests/test_optim_more.py)


def _lib_sched(lib):
    return lib.optim.lr_scheduler if lib is not graphnn else goptim.lr_scheduler


def _optimizer(lib, name="SGD", **kw):
    """An optimizer over two parameter groups with their own lr."""
    nn = lib.nn
    ps = [nn.Parameter(lib.zeros(2)), nn.Parameter(lib.zeros(3))]
    opt = getattr(lib.optim if lib is not graphnn else goptim, name)
    return opt([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.1, **kw)


SCHEDULERS = {
    "StepLR": lambda S, o: S.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "LambdaLR": lambda S, o: S.LambdaLR(o, [lambda e: 0.9**e, lambda e: 1 / (e + 1)]),
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lambda e: 0.95),
    "LinearLR": lambda S, o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6),
    "ConstantLR": lambda S, o: S.ConstantLR(o, factor=0.3, total_iters=4),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, total_iters=8, power=2.0),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=26),
    "OneCycleLR-three-phase-linear": lambda S, o: S.OneCycleLR(
        o, 1.0, epochs=2, steps_per_epoch=13, three_phase=True, anneal_strategy="linear", pct_start=0.25
    ),
    "SequentialLR": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, 0.1, total_iters=3), S.ExponentialLR(o, 0.8), S.CosineAnnealingLR(o, 5)], milestones=[4, 8]
    ),
    "ChainedScheduler": lambda S, o: S.ChainedScheduler([S.ConstantLR(o, 0.5, 3), S.ExponentialLR(o, 0.9)]),
}


def _sequence(lib, make, steps=25, opt_name="SGD", **opt_kw):
    opt = _optimizer(lib, opt_name, **opt_kw)
    sched = make(_lib_sched(lib), opt)
    seq = [(list(sched.get_last_lr()), getattr(sched, "last_epoch", None))]
    for _ in range(steps):
        opt.step()
        sched.step()
        g = opt.param_groups[0]
        seq.append((list(sched.get_last_lr()), getattr(sched, "last_epoch", None), g.get("momentum"), g.get("betas")))
    return seq


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_lr_sequence(torch, name):
    """The learning rates (and OneCycleLR's momentum) after each step equal PyTorch's exactly."""
    assert _sequence(graphnn, SCHEDULERS[name], momentum=0.9) == _sequence(torch, SCHEDULERS[name], momentum=0.9)


def test_one_cycle_moves_betas(torch):
    make = SCHEDULERS["OneCycleLR"]
    assert _sequence(graphnn, make, opt_name="Adam") == _sequence(torch, make, opt_name="Adam")


PLATEAUS = [
    dict(patience=2, factor=0.5),
    dict(mode="max", patience=1, threshold=0.05, cooldown=2),
    dict(mode="min", threshold_mode="abs", threshold=0.2, patience=0, min_lr=[0.01, 0.02]),
    dict(mode="max", threshold_mode="abs", patience=1, factor=0.3, min_lr=0.004, eps=1e-3),
]


@pytest.mark.parametrize("kw", PLATEAUS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_reduce_lr_on_plateau(torch, kw):
    metrics = [5.0, 4.0, 4.5, 4.2, 3.9, 4.3, 3.0, 3.1, 3.05, 3.0, 3.2, 2.0, 2.5, 2.6, 2.7, 2.8, 1.0, 1.1, 1.2, 1.3]
    seqs = []
    for lib in (graphnn, torch):
        opt = _optimizer(lib)
        s = _lib_sched(lib).ReduceLROnPlateau(opt, **kw)
        seq = []
        for m in metrics:
            s.step(m)
            seq.append((s.get_last_lr(), s.best, s.num_bad_epochs, s.cooldown_counter, s.last_epoch))
        seqs.append(seq)
    assert seqs[0] == seqs[1]


def test_reduce_lr_on_plateau_reads_tensor_metrics(torch):
    opt = _optimizer(graphnn)
    s = goptim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    s.step(graphnn.tensor(1.0))
    s.step(graphnn.tensor(2.0))
    assert s.get_last_lr() == [0.1 * 0.1, 0.05 * 0.1]


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "OneCycleLR", "SequentialLR"])
def test_state_dict_resumes(torch, name):
    """A scheduler (and optimizer) rebuilt from state_dicts after 7 steps continues the same sequence; graphnn's
    state_dict has every entry of PyTorch's (with equal values for the plain ones)."""
    make = SCHEDULERS[name]
    opt = _optimizer(graphnn, momentum=0.9)
    sched = make(goptim.lr_scheduler, opt)
    t_opt = _optimizer(torch, momentum=0.9)
    t_sched = make(torch.optim.lr_scheduler, t_opt)
    for _ in range(7):
        for o, s in ((opt, sched), (t_opt, t_sched)):
            o.step()
            s.step()
    sd, tsd = sched.state_dict(), t_sched.state_dict()
    missing = set(tsd) - set(sd) - {"_get_lr_called_within_step"}
    assert not missing
    for k in ("base_lrs", "last_epoch", "_step_count", "_last_lr", "_milestones"):
        if k in tsd:
            assert sd[k] == tsd[k], k
    opt2 = _optimizer(graphnn, momentum=0.9)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    sched2 = make(goptim.lr_scheduler, opt2)
    sched2.load_state_dict(copy.deepcopy(sd))
    for _ in range(10):
        for o, s in ((opt, sched), (opt2, sched2), (t_opt, t_sched)):
            o.step()
            s.step()
        assert sched.get_last_lr() == sched2.get_last_lr() == t_sched.get_last_lr()


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR"])
def test_step_with_epoch_uses_the_closed_form(torch, name):
    seqs = []
    for lib in (graphnn, torch):
        opt = _optimizer(lib)
        s = SCHEDULERS[name](_lib_sched(lib), opt)
        seq = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in (3, 1, 7, 7, 12):
                s.step(epoch)
                seq.append((s.get_last_lr(), s.last_epoch))
        seqs.append(seq)
    assert seqs[0] == seqs[1]
    with pytest.warns(UserWarning, match="epoch parameter"):
        goptim.lr_scheduler.StepLR(_optimizer(graphnn), 2).step(3)


def test_argument_errors(torch):
    opt = _optimizer(graphnn)
    S = goptim.lr_scheduler
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        S.SequentialLR(opt, [S.StepLR(opt, 2), S.ReduceLROnPlateau(opt)], [3])
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(opt, 1.0)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR(object(), 2)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_optimizer(graphnn), 2, last_epoch=3)
    S.StepLR(opt, 2, verbose=True)  # accepted and ignored


# -- compiled training steps under a scheduler ------------------------------------------------------------------------
def _mlp(nn):
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()


CASES = [
    ("SGD", dict(lr=0.1), lambda S, o: S.StepLR(o, step_size=2, gamma=0.5), 1),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01), lambda S, o: S.OneCycleLR(o, 0.5, total_steps=8), 2),
    ("Adam", dict(lr=0.01), lambda S, o: S.OneCycleLR(o, 0.05, total_steps=8, three_phase=True), 1),
    ("RMSprop", dict(lr=0.01, momentum=0.5), lambda S, o: S.CosineAnnealingLR(o, T_max=3), 2),
]


@pytest.mark.parametrize("name,kw,make,programs", CASES, ids=["SGD-StepLR", "SGD-OneCycle", "Adam-OneCycle", "RMSprop"])
def test_compiled_step_follows_the_scheduler_without_retracing(torch, name, kw, make, programs):
    """The scheduler moves lr (and momentum / betas) at every step; the compiled step reads them at each call: it
    is traced once per state layout (before and after the optimizer's state exists; once for Adam, whose first step
    starts from zeros as its later ones from the state), never for a new value, and follows PyTorch's trajectory as
    the eager step does."""
    traces = [0]

    def traced():  # (a list the compiled step changed itself would make its calls run eagerly)
        traces[0] += 1

    models, steps, scheds = [], [], []
    for lib in (graphnn, graphnn, torch):
        graphnn.manual_seed(0)
        m = _mlp(lib.nn if lib is torch else gnn)
        if lib is torch:
            copy_state(torch, models[0], m)
        opt = getattr(lib.optim if lib is torch else goptim, name)(m.parameters(), **kw)

        def step(x, y, lib=lib, m=m, opt=opt, compiled=len(steps) == 1):
            if compiled:
                traced()  # runs when the compiled step is traced
            opt.zero_grad()
            loss = lib.nn.functional.mse_loss(m(x), y)
            loss.backward()
            opt.step()
            return loss

        models.append(m)
        steps.append(graphnn.compile(step) if len(steps) == 1 else step)
        scheds.append(make(_lib_sched(lib), opt))
    r = np.random.default_rng(35)
    for i in range(8):
        x, y = r.standard_normal((8, 4)), r.standard_normal((8, 2))
        t_loss = steps[2](torch.tensor(x), torch.tensor(y))
        for s in steps[:2]:
            close(
                s(graphnn.tensor(x), graphnn.tensor(y)),
                t_loss,
                f"loss {i}",
                steps_tolerance(t_loss, STEP_ROUNDINGS * (i + 1)),
            )
        for s in scheds:
            s.step()
    assert traces[0] == programs and steps[1].cache.programs == programs
    assert scheds[0].get_last_lr() == scheds[1].get_last_lr() == scheds[2].get_last_lr()
    for g in models[:2]:
        compare_params(g, models[2], STEP_ROUNDINGS * 8)
