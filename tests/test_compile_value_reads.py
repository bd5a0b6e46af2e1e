"""Inside graphnn.compile: the values a trace reads of tensors it does not trace (a buffer's .item()) are guarded;
detach() gives a tensor without gradient; @graphnn.compile on a method binds self; AveragedModel keeps one trace."""

import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn


class Counter(nn.Module):
    """Branches on a buffer's value read before the buffer changes (a warm-up step)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("steps", graphnn.zeros((), dtype=graphnn.int64))

    def forward(self, x):
        n = int(self.steps.item())
        self.steps.add_(1)
        return x * 0 if n == 0 else x * n


def test_item_of_buffer_is_guarded():
    m = Counter()
    c = graphnn.compile(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a new count every call: past the retrace limit it runs eagerly)
        got = [c(graphnn.ones(2))[0].item() for _ in range(12)]
    assert got == [0.0] + [float(i) for i in range(1, 12)]
    assert int(m.steps) == 12


def test_item_of_buffer_read_once_compiles_once():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("k", graphnn.tensor(2.0))

        def forward(self, x):
            return x * float(self.k.item())

    m = Scale()
    c = graphnn.compile(m)
    assert [c(graphnn.ones(1)).item() for _ in range(3)] == [2.0, 2.0, 2.0]
    assert c.cache.programs == 1
    m.k.fill_(5.0)  # the value the trace read changed: traced again
    assert c(graphnn.ones(1)).item() == 5.0


def test_item_of_value_changed_in_the_trace_runs_eagerly():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("n", graphnn.zeros(()))

        def forward(self, x):
            self.n.add_(1)
            return x * float(self.n.item())

    c = graphnn.compile(M())
    with pytest.warns(graphnn.TraceWarning, match="changed in place"):
        first = c(graphnn.ones(1)).item()
    assert [first] + [c(graphnn.ones(1)).item() for _ in range(2)] == [1.0, 2.0, 3.0]


def test_detach_inside_compile_has_no_gradient():
    p = nn.Parameter(graphnn.ones(2))
    seen = []

    def f(x):
        d = p.detach()
        seen.append((d.requires_grad, d.grad_fn))
        with graphnn.no_grad():
            d.copy_(d * 0.5 + x)  # (in place under no_grad on the detached alias: allowed, as in PyTorch)
        return (p * x).sum()

    graphnn.compile(f)(graphnn.ones(2))
    assert seen[0] == (False, None)
    np.testing.assert_allclose(p.detach().numpy(), [1.5, 1.5])


def test_compile_decorated_method_binds_self():
    class Trainer:
        def __init__(self, scale):
            self.model = nn.Linear(3, 1)
            self.scale = scale

        @graphnn.compile
        def step(self, x):
            return self.model(x).sum() * self.scale

    a, b = Trainer(1.0), Trainer(3.0)
    x = graphnn.ones(2, 3)
    for t in (a, b):
        want = (t.model(x).sum() * t.scale).item()
        assert abs(t.step(x).item() - want) < 1e-5
    assert Trainer.__dict__["step"].__get__(None, Trainer) is Trainer.__dict__["step"]


@pytest.mark.parametrize("kind", ["ema", "swa"])
def test_averaged_model_in_a_compiled_step_traces_once(torch, kind):
    res = []
    for L, compile in ((torch, lambda f: f), (graphnn, graphnn.compile)):
        model = L.nn.Linear(3, 2)
        with L.no_grad():
            model.weight.copy_(L.tensor(np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32)))
            model.bias.zero_()
        swa = L.optim.swa_utils
        fn = swa.get_ema_multi_avg_fn(0.7) if kind == "ema" else None
        avg = swa.AveragedModel(model, multi_avg_fn=fn)
        opt = L.optim.SGD(model.parameters(), lr=0.05)
        x = L.tensor(np.linspace(0, 1, 12).reshape(4, 3).astype(np.float32))

        def step(x):
            opt.zero_grad()
            loss = (model(x) ** 2).sum()
            loss.backward()
            opt.step()
            avg.update_parameters(model)
            return loss

        step = compile(step)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no retrace warning, no eager fallback
            for _ in range(10):
                step(x)
        res.append(avg.module.weight.detach().numpy())
        assert int(avg.n_averaged) == 10
    np.testing.assert_allclose(res[1], res[0], rtol=1e-5, atol=1e-6)  # (float32, ten steps)
    assert step.cache.programs == 1


def test_number_arguments_compile_a_bounded_number_of_programs():
    from graphnn.compiler.program import NUMBER_VALUES

    def step(x, i):
        return x * (i + 1) if i % 3 else x - i  # (a branch on the number: each value a constant of its own trace)

    c = graphnn.compile(step)
    x = graphnn.ones(2)
    with pytest.warns(graphnn.TraceWarning, match="differ only in the values of int, float or bool"):
        got = [c(x, i).numpy() for i in range(20)]
    for i, g in enumerate(got):
        np.testing.assert_allclose(g, step(x, i).numpy(), rtol=1e-6)
    assert c.cache.programs == NUMBER_VALUES
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (warned once; the traced values keep their programs)
        np.testing.assert_allclose(c(x, 3).numpy(), step(x, 3).numpy(), rtol=1e-6)
        c(x, 30)
    assert c.cache.programs == NUMBER_VALUES


PREALLOCATED = {
    "accumulate": lambda L, x, w: _accumulate(L, x, w),
    "setitem": lambda L, x, w: _setitem(L, x, w),
    "index_copy_": lambda L, x, w: L.zeros(3, 2).index_copy_(0, L.tensor([2, 0, 1]), x * w),
    "add_": lambda L, x, w: L.zeros(3, 2).add_(x * w, alpha=2.0),
    "copy_": lambda L, x, w: x.new_zeros(3, 2).copy_(x * w),
    "index_add_": lambda L, x, w: L.zeros(2, 2).index_add_(0, L.tensor([0, 1, 0]), x * w),
}


def _accumulate(L, x, w):
    total = L.zeros(())
    for t in range(3):
        total += (x[t] * w).pow(2).sum()
    return total


def _setitem(L, x, w):
    outputs = L.zeros(3, 2)
    for t in range(3):
        outputs[t] = x[t] * w
    return outputs


@pytest.mark.parametrize("name", list(PREALLOCATED))
def test_values_requiring_grad_written_into_a_new_tensor_compiled(name):
    """A tensor the traced code made (zeros, new_zeros) and filled in place with values that require grad carries
    their gradient, as eagerly (a multi-loss total, the seq2seq tutorial's preallocated outputs)."""
    fill = PREALLOCATED[name]
    x = graphnn.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    results = []
    for compile in (lambda f: f, graphnn.compile):
        w = nn.Parameter(graphnn.tensor([1.0, 2.0]))

        def step(x):
            loss = fill(graphnn, x, w).pow(2).sum()
            loss.backward()
            return loss.detach()

        step = compile(step)
        for _ in range(2):  # (compiled: the trace, then the native program)
            w.grad = None
            results.append((step(x).item(), w.grad.tolist()))
    assert results[0] == results[1] == results[2] == results[3]


def test_several_optimizer_steps_in_one_compiled_call(torch):
    """Inner SGD steps (n_critic critic updates in one WGAN iteration): each backward after a step reaches the
    parameter's new value, as eagerly."""
    res = []
    for L, compile in ((torch, lambda f: f), (graphnn, graphnn.compile)):
        w = L.nn.Parameter(L.tensor([1.0, -2.0]))
        opt = L.optim.SGD([w], lr=0.1)

        def f(x):
            for i in range(3):
                opt.zero_grad()
                ((w - x[i]) ** 2).sum().backward()
                opt.step()
            return w.grad.clone()

        f = compile(f)
        x = L.tensor([[0.5, 0.2], [0.1, 0.3], [0.0, 1.0]])
        res.append(np.array([f(x).tolist() + w.detach().tolist() for _ in range(2)]))
    assert res[0].shape == (2, 4)
    np.testing.assert_allclose(res[1], res[0], rtol=1e-6)


class PlainSGD(graphnn.optim.Optimizer):
    """A user's optimizer: reads group['lr'] itself and keeps a Python step count in its state."""

    def __init__(self, params, lr):
        super().__init__(params, dict(lr=lr))

    @graphnn.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                state["step"] += 1
                p.add_(p.grad, alpha=-group["lr"])


@pytest.mark.parametrize("count_steps", [False, True])
def test_a_custom_optimizer_follows_its_scheduler_compiled(count_steps):
    w = nn.Parameter(graphnn.zeros(1))
    opt = PlainSGD([w], lr=1.0)
    if not count_steps:
        opt.state[w]["step"] = graphnn.zeros(())  # (a tensor: no Python state changes)
    sched = graphnn.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    logged = []

    def step():
        opt.zero_grad()
        w.sum().backward()
        opt.step()
        return graphnn.tensor(opt.param_groups[0]["lr"])  # (a training step logging its lr)

    step = graphnn.compile(step)
    used = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (new lr values: traced again, then eagerly)
        for _ in range(12):
            before = w.item()
            logged.append(step().item())
            used.append(before - w.item())
            sched.step()
    want = [1.0 / (s + 1) for s in range(12)]
    np.testing.assert_allclose(used, want, rtol=1e-6)
    np.testing.assert_allclose(logged, want, rtol=1e-6)
    if count_steps:
        assert opt.state[w]["step"] == 12


CONFIG = [{"scale": 1.0}]


class _Holder:
    pass


HOLDER = _Holder()
HOLDER.cfg = {"scale": 1.0}


def test_numbers_one_container_down_are_guarded():
    f_list = graphnn.compile(lambda x: x * CONFIG[0]["scale"])
    f_obj = graphnn.compile(lambda x: x * HOLDER.cfg["scale"])
    got = []
    for s in (1.0, 0.5, 0.25):
        CONFIG[0]["scale"] = HOLDER.cfg["scale"] = s
        got.append((f_list(graphnn.ones(1)).item(), f_obj(graphnn.ones(1)).item()))
    assert got == [(1.0, 1.0), (0.5, 0.5), (0.25, 0.25)]


def test_an_lr_read_with_get_is_guarded():
    w = nn.Parameter(graphnn.zeros(1))
    opt = graphnn.optim.SGD([w], lr=1.0)  # (graphnn's optimizer reads lr as a runtime input, unguarded)
    sched = graphnn.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)

    def step():
        opt.zero_grad()
        w.sum().backward()
        opt.step()
        return graphnn.tensor(opt.param_groups[0].get("lr"))

    step = graphnn.compile(step)
    logged = []
    for _ in range(4):
        logged.append(step().item())
        sched.step()
    assert logged == [1.0, 0.5, 0.25, 0.125]
