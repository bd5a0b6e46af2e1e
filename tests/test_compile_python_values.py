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
from graphnn.core.tensor import TraceError

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


def test_numpy_random_draws_while_tracing_run_eagerly():
    """Numbers drawn from NumPy's global generator (or Python's random) while tracing would be constants of the
    trace: the calls run eagerly (fresh numbers each time, as torch.compile draws them at every call), after a
    TraceWarning pointing to graphnn's own random ops, which draw at every compiled call."""
    np.random.seed(0)
    c = graphnn.compile(lambda x: x + graphnn.tensor(np.random.randn(3).astype(np.float32)))
    with pytest.warns(TraceWarning, match="random generator"):
        a = c(graphnn.zeros(3))
    b = c(graphnn.zeros(3))
    np.random.seed(0)
    want = [np.random.randn(3).astype(np.float32) for _ in range(2)]
    np.testing.assert_array_equal(a.numpy(), want[0])  # (the trace's draws put back: the eager call drew them)
    np.testing.assert_array_equal(b.numpy(), want[1])
    with pytest.raises(TraceError, match="random generator"):
        graphnn.compile(lambda x: x * float(np.random.rand()), fullgraph=True)(graphnn.zeros(3))
    fresh = graphnn.compile(lambda x: x + graphnn.randn(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceWarning)
        a, b = fresh(graphnn.zeros(3)), fresh(graphnn.zeros(3))
    assert not np.array_equal(a.numpy(), b.numpy())


class _Counter:  # a user's object holding a step count
    def __init__(self):
        self.it = 0


def test_config_objects_read_by_a_compiled_function_are_guarded():
    """Entries of dicts, lists, dataclasses and other plain objects the compiled function names (x / cfg.t): a
    change between calls traces again, as in eager code; a module's plain tensor attribute rebound too."""
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        temperature: float = 1.0

    cfg, d, lst = Cfg(), {"t": 1.0}, [1.0]
    x = graphnn.ones(3)
    cases = [
        (lambda x: x / cfg.temperature, lambda: setattr(cfg, "temperature", 2.0)),
        (lambda x: x / d["t"], lambda: d.__setitem__("t", 2.0)),
        (lambda x: x / lst[0], lambda: lst.__setitem__(0, 2.0)),
    ]
    for fn, change in cases:
        c = graphnn.compile(fn)
        assert c(x).tolist() == [1.0] * 3
        change()
        assert c(x).tolist() == [0.5] * 3

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.extra = graphnn.zeros(3)  # a plain attribute, not a buffer

        def forward(self, x):
            return x + self.extra

    m = M()
    c = graphnn.compile(m)
    assert c(x).tolist() == [1.0] * 3
    m.extra = graphnn.full((3,), 7.0)
    assert c(x).tolist() == [8.0] * 3


def test_a_compiled_function_that_changes_python_state_runs_eagerly():
    """A warm-up counter kept in a dict, an object or a global, advanced inside the compiled step: compiled calls
    would not advance it, so the calls run eagerly (the right lrs) after a TraceWarning naming it, and the trace's
    own change is undone (the first call counts once); fullgraph=True makes it an error."""
    global iter_num
    state, counter = {"it": 0}, _Counter()

    for bump in (
        lambda: state.__setitem__("it", state["it"] + 1) or state["it"],
        lambda: setattr(counter, "it", counter.it + 1) or counter.it,
    ):
        p = nn.Parameter(graphnn.ones(2))
        opt = graphnn.optim.SGD([p], lr=0.1)

        def step(x):
            it = bump()
            state["seen"] = it  # (named here: the compiled function's own code changes the dict)
            counter.seen = it
            for g in opt.param_groups:
                g["lr"] = 0.1 * it
            opt.zero_grad()
            (p * x).sum().backward()
            opt.step()

        f = graphnn.compile(step)
        with pytest.warns(TraceWarning, match="changed Python state"):
            for _ in range(3):
                f(graphnn.ones(2))
        assert [round(v, 4) for v in p.tolist()] == [0.4, 0.4]  # 1 - 0.1 - 0.2 - 0.3
        assert opt.param_groups[0]["lr"] == pytest.approx(0.3)

    iter_num = 0

    def counted(x):
        global iter_num
        iter_num += 1
        return x * iter_num

    with pytest.raises(graphnn.compiler.program.PythonStateChange, match="iter_num: 0 -> 1"):
        graphnn.compile(counted, fullgraph=True)(graphnn.ones(1))
    assert iter_num == 0  # (undone)


def test_a_scheduler_stepped_inside_a_compiled_step_steps_at_every_call():
    results = []
    for compiled in (False, True):
        p = nn.Parameter(graphnn.ones(3))
        opt = graphnn.optim.SGD([p], lr=0.1)
        sched = graphnn.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

        def step():
            opt.zero_grad()
            loss = (p * p).sum()
            loss.backward()
            opt.step()
            sched.step()
            return loss.detach()

        f = graphnn.compile(step) if compiled else step
        losses = [round(f().item(), 5) for _ in range(4)]
        results.append((losses, opt.param_groups[0]["lr"], sched.last_epoch))
    assert results[0] == results[1] == ([3.0, 1.92, 1.5552, 1.40357], 0.00625, 4)  # PyTorch's numbers


class _Scale:
    factor = 1.0


def test_rebinding_and_class_values_trace_again():
    """What torch.compile's guards cover beyond plain globals: a global rebound to another model (a new fold), a
    class attribute, a module attribute that is a tuple, a function or a NumPy scalar, a module's class-level
    default overridden on the instance, the default dtype, a config object passed as an argument."""
    global _model
    x = graphnn.ones(1, 2)
    _model = nn.Linear(2, 1, bias=False)
    nn.init.ones_(_model.weight)
    f = graphnn.compile(lambda x: _model(x) * _Scale.factor)
    assert f(x).item() == 2.0
    _model = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(_model.weight)
    assert f(x).item() == 0.0  # the new model
    nn.init.ones_(_model.weight)
    _Scale.factor = 3.0
    try:
        assert f(x).item() == 6.0  # the class attribute
    finally:
        _Scale.factor = 1.0

    class M(nn.Module):
        temperature = 1.0

        def __init__(self):
            super().__init__()
            self.scales, self.act, self.eps = (1.0, 1.0), graphnn.relu, np.float32(1.0)

        def forward(self, x):
            return self.act(x) * self.scales[1] * float(self.eps) / self.temperature

    m = M()
    c = graphnn.compile(m)
    y = -graphnn.ones(2)
    assert c(y).tolist() == [0.0, 0.0]
    m.act = graphnn.tanh
    assert c(y).tolist() == pytest.approx([-0.7615942] * 2)
    m.scales, m.eps, m.temperature = (1.0, 2.0), np.float32(0.5), 0.5
    assert c(y).tolist() == pytest.approx([-0.7615942 * 2.0] * 2)

    g = graphnn.compile(lambda x: graphnn.zeros(2) + x)
    assert g(graphnn.ones(2)).dtype == graphnn.float32
    graphnn.set_default_dtype(graphnn.float64)
    try:
        assert g(graphnn.ones(2, dtype=graphnn.float64)).dtype == graphnn.float64
    finally:
        graphnn.set_default_dtype(graphnn.float32)

    class Cfg:
        def __init__(self):
            self.scale = 1.0

    cfg = Cfg()
    h = graphnn.compile(lambda x, c: x * c.scale)
    assert h(x, cfg).tolist() == [[1.0, 1.0]]
    cfg.scale = 3.0
    assert h(x, cfg).tolist() == [[3.0, 3.0]]


def test_a_compiled_bound_method_follows_the_optimizer_its_object_holds():
    class Trainer:
        def __init__(self):
            self.model = nn.Linear(2, 1, bias=False)
            nn.init.ones_(self.model.weight)
            self.opt = graphnn.optim.SGD(self.model.parameters(), lr=0.5)
            self.step = graphnn.compile(self._step)

        def _step(self, x):
            self.opt.zero_grad()
            loss = self.model(x).sum()
            loss.backward()
            self.opt.step()
            return loss

    t = Trainer()
    x = graphnn.ones(1, 2)
    t.step(x)
    assert t.model.weight.tolist() == [[0.5, 0.5]]
    t.opt = graphnn.optim.SGD(t.model.parameters(), lr=0.0)
    t.step(x)
    assert t.model.weight.tolist() == [[0.5, 0.5]]  # (the new optimizer, lr 0)


def test_strided_arguments_updated_in_place_and_zero_grad_in_place():
    base = graphnn.arange(12.0).reshape(3, 4)
    want = base.clone()
    want[:, 1:3] *= 2
    graphnn.compile(lambda v: v.mul_(2))(base[:, 1:3])  # a column slice: not contiguous
    assert base.tolist() == want.tolist()
    t = graphnn.arange(6.0).reshape(2, 3)
    graphnn.compile(lambda v: v.add_(1))(t.t())
    assert t.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    lin = nn.Linear(2, 1)
    lin(graphnn.ones(1, 2)).sum().backward()
    g = lin.weight.grad
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad is g and g.tolist() == [[0.0, 0.0]]


def test_a_generator_function_runs_eagerly():
    def scaled(x):
        for i in range(3):
            yield x * i

    with pytest.warns(TraceWarning, match="generator"):
        g = graphnn.compile(scaled)
    assert [t.tolist() for t in g(graphnn.ones(2))] == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]


def test_only_the_entries_a_compiled_function_reads_are_guarded():
    """A settings dict with a step counter beside them, bumped outside the compiled function at every call: the
    function reads only state["lr"], so the counter traces nothing; the lr still does."""
    state = {"lr": 1.0, "step": 0}
    c = graphnn.compile(lambda x: x * state["lr"])
    x = graphnn.ones(2)
    for _ in range(12):
        state["step"] += 1
        c(x)
    assert c.cache.programs == 1
    state["lr"] = 3.0
    assert c(x).tolist() == [3.0, 3.0]
    history = [1.0]
    h = graphnn.compile(lambda x: x * history[-1])
    h(x)
    history.append(5.0)
    assert h(x).tolist() == [5.0, 5.0]


def test_weight_data_masked_in_place_inside_a_compiled_forward():
    """PixelCNN's masked convolution: `self.weight.data *= self.mask` in forward is a state update of the weight
    (written back at every call), as eagerly."""

    class MaskedConv(nn.Conv2d):
        def __init__(self):
            super().__init__(1, 2, 3, padding=1)
            self.register_buffer("mask", graphnn.ones_like(self.weight))
            self.mask[:, :, 2:] = 0

        def forward(self, x):
            self.weight.data *= self.mask
            return super().forward(x)

    graphnn.manual_seed(0)
    eager, compiled = MaskedConv(), MaskedConv()
    compiled.load_state_dict(eager.state_dict())
    c = graphnn.compile(compiled)
    x = graphnn.randn(1, 1, 4, 4)
    np.testing.assert_allclose(c(x).detach().numpy(), eager(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert (compiled.weight.detach().numpy()[:, :, 2:] == 0).all()


def _gan(compiled: bool):
    graphnn.manual_seed(0)
    G, D = nn.Linear(2, 2), nn.Linear(2, 1)
    og, od = graphnn.optim.SGD(G.parameters(), lr=0.1), graphnn.optim.SGD(D.parameters(), lr=0.1)

    def set_requires_grad(net, flag):
        for p in net.parameters():
            p.requires_grad = flag

    def d_step(real, z):
        set_requires_grad(D, True)
        od.zero_grad()
        loss = D(real).mean() - D(G(z).detach()).mean()
        loss.backward()
        od.step()
        return loss.detach()

    def g_step(z):
        set_requires_grad(D, False)
        og.zero_grad()
        loss = -D(G(z)).mean()
        loss.backward()
        og.step()
        return loss.detach()

    if compiled:
        d_step, g_step = graphnn.compile(d_step), graphnn.compile(g_step)
    real, z = graphnn.ones(4, 2), graphnn.full((4, 2), 0.5)
    for _ in range(5):
        d_step(real, z)
        g_step(z)
    flags = [p.requires_grad for p in D.parameters()]
    return [p.detach().numpy().copy() for p in list(G.parameters()) + list(D.parameters())], flags, (d_step, g_step)


def test_flags_a_compiled_step_sets_itself_are_set_at_every_call_not_guarded():
    """A GAN's steps freezing the other network at their start, a step calling model.train() and an evaluation
    calling model.eval(): the flags are what the step sets (every call sets them, as eagerly), so the steps trace
    once, and the results are eager's."""
    want, want_flags, _ = _gan(False)
    got, flags, (d_step, g_step) = _gan(True)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert flags == want_flags == [False, False]
    assert d_step.cache.programs == 1 and g_step.cache.programs == 1

    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))

    def train_step(x):
        model.train()
        return model(x)

    def evaluate(x):
        model.eval()
        return model(x)

    t, e = graphnn.compile(train_step), graphnn.compile(evaluate)
    x = graphnn.ones(64, 3)
    for _ in range(3):
        dropped = (t(x) == 0).float().mean().item()
        assert model.training and 0.2 < dropped < 0.8
        # (eval: no dropout, the linear layer alone, up to the rounding of another kernel's sums of 3 products)
        np.testing.assert_allclose(e(x).detach().numpy(), model[0](x).detach().numpy(), rtol=1e-5, atol=1e-6)
        assert not model.training
    assert t.cache.programs == 1 and e.cache.programs == 1


def test_objects_a_compiled_step_reads_through_helpers_and_arguments():
    """Attributes of user objects are guarded as the trace reads them (through any function): a counter the loop
    bumps beside the settings traces nothing, a setting the step reads traces again; a cache object a compiled
    model extends gets the right answer (its first call, which adds the list's entry, runs eagerly; later calls
    replace the entry: a store, read from its place at each call) instead of replaying the empty-cache program; a
    value that keeps changing makes the calls eager after 8 traces."""
    import argparse

    model = nn.Linear(4, 2)
    x = graphnn.ones(3, 4)
    args = argparse.Namespace(scale=1.0, global_step=0)

    def helper(out, a):
        return out * a.scale

    f = graphnn.compile(lambda x, a: helper(model(x), a).sum())
    first = f(x, args).item()
    for _ in range(10):
        args.global_step += 1
        f(x, args)
    assert f.cache.programs == 1
    args.scale = 2.0
    assert f(x, args).item() == pytest.approx(2 * first, rel=1e-6)

    class Cache:
        def __init__(self):
            self.k = []

        def update(self, v):
            self.k.append(v) if not self.k else self.k.__setitem__(0, graphnn.cat([self.k[0], v], 1))
            return self.k[0]

    emb = nn.Embedding(10, 3)
    step = graphnn.compile(lambda ids, cache: cache.update(emb(ids)).sum(1))
    eager_cache, cache = Cache(), Cache()
    for tok in (1, 2, 3, 4):
        got = step(graphnn.tensor([[tok]]), cache)
        want = eager_cache.update(emb(graphnn.tensor([[tok]]))).sum(1)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)
    assert cache.k[0].shape == (1, 4, 3) and not step._eager

    ticks = {"n": 0}
    g = graphnn.compile(lambda x: x * ticks["n"])
    with pytest.warns(TraceWarning, match="run eagerly"):
        for i in range(12):
            ticks["n"] = i
            assert g(graphnn.ones(1)).item() == i
    assert g.cache.programs <= 9


def test_masked_weights_train_and_rebound_tensors_trace_again():
    """`self.weight.data *= self.mask` in forward: the masked weight is the leaf gradients reach (a compiled Adam
    step trains as eagerly); tensors rebound on a plain object, in a dict or on a namespace argument trace again."""
    import types

    class Masked(nn.Linear):
        def __init__(self):
            super().__init__(4, 4)
            self.register_buffer("mask", graphnn.tril(graphnn.ones(4, 4)))

        def forward(self, x):
            self.weight.data *= self.mask
            return super().forward(x)

    def run(compiled):
        graphnn.manual_seed(0)
        m = Masked()
        opt = graphnn.optim.Adam(m.parameters(), lr=0.1)
        x = graphnn.randn(8, 4)

        def step(x):
            opt.zero_grad()
            loss = (m(x) ** 2).mean()
            loss.backward()
            opt.step()
            return loss.detach()

        f = graphnn.compile(step) if compiled else step
        return [f(x).item() for _ in range(4)]

    np.testing.assert_allclose(run(True), run(False), rtol=1e-5)

    x = graphnn.zeros(3)

    class Holder:
        pass

    h = Holder()
    h.bias = graphnn.ones(3)
    f = graphnn.compile(lambda x: x + h.bias)
    f(x)
    h.bias = graphnn.full((3,), 10.0)
    assert f(x).tolist() == [10.0] * 3
    d = {"b": graphnn.ones(3)}
    f = graphnn.compile(lambda x: x + d["b"])
    f(x)
    d["b"] = graphnn.full((3,), 9.0)
    assert f(x).tolist() == [9.0] * 3
    ns = types.SimpleNamespace(b=graphnn.ones(3))
    f = graphnn.compile(lambda x, o: x + o.b)
    f(x, ns)
    ns.b = graphnn.full((3,), 9.0)
    assert f(x, ns).tolist() == [9.0] * 3
