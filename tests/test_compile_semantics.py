"""graphnn.compile keeps eager semantics: what a trace depends on is guarded (requires_grad, .grad being None, module
attributes), in-place ops are differentiated and write back into captured tensors and arguments, arguments get
.grad, results of any container type round-trip, and results that require grad are differentiable.

Values are small integers and powers of two (and SGD steps with lr a power of two), so compiled code, eager graphnn
and PyTorch compute them exactly and are compared exactly (tolerance.py: an exact computation has a zero bound).
"""

from __future__ import annotations

import timeit
from collections import namedtuple

import numpy as np
import pytest

import graphnn
from tolerance import accumulation_tolerance, assert_close
from train_steps import sum_step


def arr(x):
    if hasattr(x, "detach"):
        x = x.detach()
    return np.array(x.numpy() if hasattr(x, "numpy") else x)


def same(a, b, what=""):
    a, b = arr(a), arr(b)
    assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.shape}/{a.dtype} vs {b.shape}/{b.dtype}"
    np.testing.assert_array_equal(a, b, err_msg=what)


def _linear(L, w, b):
    lin = L.nn.Linear(3, 2)
    with L.no_grad():
        lin.weight.copy_(L.tensor(w))
        lin.bias.copy_(L.tensor(b))
    return lin


W0, B0 = [[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]], [0.5, -0.25]
X = [[1.0, 0.0, -1.0], [0.5, 2.0, 1.0], [-1.0, 1.0, 0.0], [2.0, -0.5, 0.25]]


# -- guards: requires_grad, .grad, module attributes (W2) -------------------------------------------------------------
def _freeze_run(L, compiled: bool):
    lin = _linear(L, W0, B0)
    step = sum_step(lin, L.optim.SGD(lin.parameters(), lr=0.125))
    run = graphnn.compile(step) if compiled else step
    x = L.tensor(X)
    log = []
    for phase in ("train", "freeze", "train"):
        if phase == "freeze":
            lin.weight.requires_grad_(False)
        else:
            lin.weight.requires_grad_(True)
        for _ in range(2):
            loss = run(x)
            log.append(
                (phase, float(loss.detach()), arr(lin.weight).tolist(), arr(lin.bias).tolist(), lin.weight.grad is None)
            )
    return log, run


def test_frozen_parameter_is_not_trained_by_a_compiled_step(torch):
    """requires_grad_(False) after the first call: the compiled step traces again and leaves the weight alone (and
    its .grad None), as eager graphnn and PyTorch do; unfreezing trains it again."""
    compiled, run = _freeze_run(graphnn, True)
    assert compiled == _freeze_run(graphnn, False)[0] == _freeze_run(torch, False)[0]
    assert run.cache.programs == 2  # the frozen and the trained program, both kept


def test_eager_gradients_read_by_a_compiled_update(torch):
    """.grad read inside a compiled step is bound at each call (an eager backward replaces the .grad tensors)."""

    def run(L, compiled):
        lin = _linear(L, W0, B0)
        params = list(lin.parameters())

        def update():
            with L.no_grad():
                for p in params:
                    if p.grad is not None:
                        p.sub_(p.grad * 0.25)

        upd = graphnn.compile(update) if compiled else update
        x = L.tensor(X)
        log = []
        for i in range(4):
            for p in params:
                p.grad = None
            if i != 2:  # a call where every .grad is None: no update
                (lin(x) * lin(x)).sum().backward()
            upd()
            log.append([arr(p).tolist() for p in params])
        return log

    assert run(graphnn, True) == run(graphnn, False) == run(torch, False)


def test_gradient_accumulation_without_zero_grad(torch):
    def run(L, compiled):
        lin = _linear(L, W0, B0)

        def step(x):
            lin(x).sum().backward()
            return lin.weight.grad * 1

        s = graphnn.compile(step) if compiled else step
        x = L.tensor(X)
        out = [arr(s(x)).tolist() for _ in range(3)]
        lin.weight.grad = None
        out.append(arr(s(x)).tolist())
        return out

    assert run(graphnn, True) == run(graphnn, False) == run(torch, False)


def test_module_attribute_reassignment_traces_again():
    """Assigning a new layer or parameter to a module used by a compiled function or module: the next call uses it."""

    class Net(graphnn.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = graphnn.nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x)

    net = Net()
    f = graphnn.compile(lambda x: net(x) * 2)
    cm = graphnn.compile(net)
    x = graphnn.ones(1, 2)
    with graphnn.no_grad():
        f(x), cm(x)
        net.fc = graphnn.nn.Linear(2, 2)
        with graphnn.no_grad():
            net.fc.weight.zero_()
            net.fc.bias.copy_(graphnn.tensor([1.0, 2.0]))
        same(f(x), np.array([[2.0, 4.0]], np.float32))
        same(cm(x), np.array([[1.0, 2.0]], np.float32))
        net.fc.bias = graphnn.nn.Parameter(graphnn.tensor([3.0, 4.0]))
        same(f(x), np.array([[6.0, 8.0]], np.float32))
        same(cm(x), np.array([[3.0, 4.0]], np.float32))


def test_unrelated_state_changes_do_not_retrace():
    """... nor make the next call check its state guards again (they run only after a change that may matter)."""
    from graphnn.compiler import tracer as _tracer

    lin = graphnn.nn.Linear(3, 2)
    f = graphnn.compile(lambda x: lin(x))
    x = graphnn.ones(1, 3)
    with graphnn.no_grad():
        f(x)
        epoch = _tracer.EPOCH[0]
        for _ in range(3):
            graphnn.randn(2, requires_grad=True)  # new tensors that require grad
            other = graphnn.nn.Linear(2, 2)  # other modules built and changed
            other.weight.requires_grad_(False)
            other.fc = graphnn.nn.Linear(1, 1)
            f(x)
        assert _tracer.EPOCH[0] == epoch and f.cache.programs == 1
        lin.bias.requires_grad_(False)  # a captured tensor: the guards are checked again
        assert _tracer.EPOCH[0] != epoch
        # compiled and eager sum the 3 products + bias in their own order (FMA or not): 4 roundings of |w||x| + |b|
        magnitude = np.abs(arr(lin.weight)).sum(1) + np.abs(arr(lin.bias))
        assert_close(arr(f(x)), arr(lin(x)), accumulation_tolerance("float32", 4, magnitude), "compiled vs eager")


def test_per_call_fast_path_stays_cheap():
    """The guards added for requires_grad and module attributes are checked only after such a change: a tiny compiled
    function's call costs about what a guard-free call does (bounded generously: a regression, not a benchmark)."""
    lin = graphnn.nn.Linear(3, 2)
    f = graphnn.compile(lambda x: lin(x) * 2 + 1)
    x = graphnn.ones(1, 3)
    with graphnn.no_grad():
        f(x)
        n = 2000
        per_call = min(timeit.repeat(lambda: f(x), number=n, repeat=5)) / n
    assert per_call < 100e-6


# -- in-place ops inside compiled code (W4, W5) ---------------------------------------------------------------------
def test_inplace_on_non_leaf_inside_compiled_code(torch):
    """y = p * 2; y.mul_(3): the in-place op is differentiated when traced too."""

    def run(L, compiled):
        p = L.nn.Parameter(L.tensor([1.0, 2.0]))

        def step():
            y = p * 2
            y.mul_(3)
            y.add_(p)
            y.clamp_(max=8.0)
            s = y.sum()
            s.backward()
            return s

        s = (graphnn.compile(step) if compiled else step)()
        return float(s.detach()), arr(p.grad).tolist()

    assert run(graphnn, True) == run(graphnn, False) == run(torch, False)


ARG_OPS = {
    "mul_": lambda x: x.mul_(3),
    "iadd": lambda x: x.__iadd__(1),
    "clamp_": lambda x: x.clamp_(min=-1.0, max=2.0),
    "copy_": lambda x: x.copy_(x * 0 + 4),
    "zero_": lambda x: x.zero_(),
    "chain": lambda x: x.sub_(1).div_(2).neg_(),
}


@pytest.mark.parametrize("name", sorted(ARG_OPS))
def test_inplace_on_arguments_writes_back(torch, name):
    """An in-place op on an argument of a compiled function updates the caller's tensor, as eager code does; the
    result read after it is the new value."""

    def run(L, compiled):
        def f(x, y):
            ARG_OPS[name](x)
            return x * 2 + y

        fn = graphnn.compile(f) if compiled else f
        x, y = L.tensor([[1.0, -2.0], [3.0, 0.5]]), L.tensor([1.0, 1.0])
        outs = []
        for _ in range(2):
            outs.append((arr(fn(x, y)).tolist(), arr(x).tolist(), arr(y).tolist()))
        return outs

    assert run(graphnn, True) == run(graphnn, False) == run(torch, False)


def test_results_that_are_arguments_are_those_tensors():
    """`return x.mul_(2)` returns x itself eagerly: the compiled call too (so later in-place ops on the result change
    the argument, as eagerly)."""
    f = graphnn.compile(lambda x, y: (x.mul_(2), y, x + y))
    x, y = graphnn.tensor([1.0, 2.0]), graphnn.tensor([3.0, 4.0])
    for _ in range(2):
        a, b, c = f(x, y)
        assert a is x and b is y and c is not x
    same(x, np.array([4.0, 8.0], np.float32))
    same(c, np.array([7.0, 12.0], np.float32))


def test_inplace_on_arguments_inside_a_compiled_module(torch):
    class M(graphnn.nn.Module):
        def forward(self, x):
            x.mul_(2)
            return x + 1

    m = graphnn.compile(M())
    x = graphnn.tensor([1.0, 2.0])
    same(m(x), np.array([3.0, 5.0], np.float32))
    same(x, np.array([2.0, 4.0], np.float32))


def test_inplace_on_views_inside_compiled_code():
    """An in-place op on a view updates the base inside compiled code too (and the caller's argument), as the eager
    run does."""

    def f(x):
        x[0].mul_(10)
        return x * 1

    def g(x):
        x.t()[1].add_(1)
        return x * 1

    for fn, want in (
        (f, [[10.0, 20.0], [3.0, 4.0]]),
        (g, [[1.0, 3.0], [3.0, 5.0]]),
    ):
        x = graphnn.tensor([[1.0, 2.0], [3.0, 4.0]])
        out = graphnn.compile(fn)(x)
        same(out, np.array(want, np.float32))
        same(x, np.array(want, np.float32))
        y = graphnn.tensor([[1.0, 2.0], [3.0, 4.0]])
        fn(y)
        same(y, np.array(want, np.float32))


def test_view_taken_before_an_inplace_op_follows_it_in_compiled_code():
    def f(x):
        v = x.view(-1)
        x.mul_(2)
        return v + 1, v  # as eagerly: v shows the doubled values (also returned as it is)

    for run in (f, graphnn.compile(f, fullgraph=True)):
        x = graphnn.ones(2, 2)
        a, v = run(x)
        same(a, np.full(4, 3.0, np.float32))
        same(v, np.full(4, 2.0, np.float32))
        same(x, np.full((2, 2), 2.0, np.float32))


def test_same_tensor_as_two_updated_arguments_is_refused():
    f = graphnn.compile(lambda a, b: a.add_(1) + b)
    x = graphnn.ones(2)
    f(graphnn.ones(2), graphnn.ones(2))
    with pytest.raises(NotImplementedError, match="same tensor is passed as two arguments"):
        f(x, x)
    same(x, np.ones(2, np.float32))


def test_leaf_inplace_in_compiled_code_raises(torch):
    p = graphnn.nn.Parameter(graphnn.ones(2))
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        graphnn.compile(lambda: p.add_(1))()


def test_data_and_grad_inplace_training_step(torch):
    """The classic `p.data.sub_(lr * p.grad.data)` step and `p.grad.zero_()`, compiled, as eager and PyTorch."""

    def run(L, compiled, style):
        lin = _linear(L, W0, B0)
        x = L.tensor(X)

        def step():
            loss = (lin(x) * lin(x)).sum()
            loss.backward()
            for p in lin.parameters():
                if style == "data":
                    p.data.sub_(0.0625 * p.grad.data)
                    p.grad.data.zero_()
                else:
                    with L.no_grad():
                        p.sub_(p.grad * 0.0625)
                        p.grad.zero_()
            return loss

        s = graphnn.compile(step) if compiled else step
        return [
            (
                float(s().detach()),
                [arr(p).tolist() for p in lin.parameters()],
                [arr(p.grad).tolist() for p in lin.parameters()],
            )
            for _ in range(2)
        ]

    for style in ("data", "no_grad"):
        assert run(graphnn, True, style) == run(graphnn, False, style) == run(torch, False, style), style


def test_inplace_without_gradient_on_traced_value_with_gradient_runs_eagerly():
    """An in-place op under no_grad on a value with gradient history cannot be traced yet: a graph break (the call
    runs eagerly, as eager code computes it); fullgraph=True makes it an error."""
    import warnings

    p = graphnn.nn.Parameter(graphnn.ones(2))

    def f():
        y = p * 2
        with graphnn.no_grad():
            y.add_(1)
        return y.sum()

    with pytest.raises(graphnn.core.tensor.TraceError, match="add_: in-place op without gradient"):
        graphnn.compile(f, fullgraph=True)()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = graphnn.compile(f)()
    out.backward()
    assert out.item() == 6.0 and p.grad.tolist() == [2.0, 2.0]


# -- arguments' .grad and differentiable results (W7) ------------------------------------------------------------------
def test_arguments_get_grad(torch):
    def run(L, compiled):
        a = L.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
        b = L.tensor([1.0, 2.0])

        def step(x, y):
            loss = (x * x * y).sum()
            loss.backward()
            inside = x.grad * 1  # .grad is usable inside the trace
            return loss, inside

        s = graphnn.compile(step) if compiled else step
        log = []
        for _ in range(3):  # accumulates, as in eager code
            loss, inside = s(a, b)
            log.append((float(loss.detach()), arr(inside).tolist(), arr(a.grad).tolist(), b.grad is None))
        a.grad = None
        loss, inside = s(a, b)
        log.append((arr(inside).tolist(), arr(a.grad).tolist()))
        return log

    assert run(graphnn, True) == run(graphnn, False) == run(torch, False)


def test_adversarial_example_step(torch):
    """FGSM: the input's gradient, read inside the compiled function, perturbs it."""

    def run(L, compiled):
        lin = _linear(L, W0, B0)

        def attack(x):
            loss = lin(x).sum()
            loss.backward()
            with L.no_grad():
                return x + 0.25 * x.grad.sign()

        a = graphnn.compile(attack) if compiled else attack
        x = L.tensor(X, requires_grad=True)
        return arr(a(x)).tolist(), arr(x.grad).tolist()

    assert run(graphnn, True) == run(graphnn, False) == run(torch, False)


def test_results_requiring_grad_are_differentiable(torch):
    """A compiled function that does not call backward() returns results with a grad_fn; backward() runs the
    compiled backward into parameters and arguments. Under no_grad the results are plain tensors."""

    def run(L, compiled):
        lin = _linear(L, W0, B0)
        f = lambda x: (lin(x) * lin(x)).sum(1)
        fn = graphnn.compile(f) if compiled else f
        x = L.tensor(X, requires_grad=True)
        out = fn(x)
        assert out.requires_grad and out.grad_fn is not None
        (out * L.tensor([1.0, 2.0, 0.5, 1.0])).sum().backward()
        with L.no_grad():
            plain = fn(x)
        assert not plain.requires_grad and plain.grad_fn is None
        return arr(out).tolist(), arr(x.grad).tolist(), arr(lin.weight.grad).tolist(), arr(lin.bias.grad).tolist()

    assert run(graphnn, True) == run(graphnn, False) == run(torch, False)
    lin = graphnn.nn.Linear(3, 2)
    out = graphnn.compile(lambda x: lin(x).sum())(graphnn.ones(1, 3))
    assert out.grad_fn.name() == "CompiledFunctionBackward"


def test_retain_grad_inside_compiled_code(torch):
    def run(L, compiled):
        w = L.nn.Parameter(L.tensor([1.0, 2.0]))

        def f():
            y = w * 2
            y.retain_grad()
            (y * y).sum().backward()
            return y.grad * 1

        return arr((graphnn.compile(f) if compiled else f)()).tolist(), arr(w.grad).tolist()

    assert run(graphnn, True) == run(graphnn, False) == run(torch, False)


# -- results of any container type (U6) and op errors in compiled code ----------------------------------------------
class Pair(tuple):
    """A tuple subclass whose constructor takes the items as separate arguments."""

    def __new__(cls, a, b):
        return super().__new__(cls, (a, b))


P = namedtuple("P", "tensor shape")


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.shape,
        lambda x: (x.shape, x * 2),
        lambda x: P(x + 1, x.size()),
        lambda x: {"s": x.shape, "t": [x.shape, x.sum()]},
        lambda x: Pair(x * 3, x.shape),
        lambda x: x.max(0),
        lambda x: [x.shape[0], x.size(1)],
    ],
)
def test_results_of_any_container_type_round_trip(make):
    x = graphnn.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    eager = make(x)
    f = graphnn.compile(make)
    for _ in range(2):
        got = f(x)

        def check(a, b):
            assert type(a) is type(b), (type(a), type(b))
            if isinstance(b, graphnn.Tensor):
                same(a, b)
            elif isinstance(b, dict):
                assert list(a) == list(b)
                for k in b:
                    check(a[k], b[k])
            elif isinstance(b, (tuple, list)):
                assert len(a) == len(b)
                for p, q in zip(a, b):
                    check(p, q)
            else:
                assert a == b

        check(got, eager)


def test_integer_negative_power_and_bitwise_errors_in_compiled_code():
    x = graphnn.tensor([2, 3, -1])
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
        graphnn.compile(lambda x: x**-1)(x)
    same(graphnn.compile(lambda x: ~x & 6)(x), np.array([~2 & 6, ~3 & 6, ~-1 & 6]))
    with pytest.raises(TypeError, match="bitwise ops take integer or bool tensors"):
        graphnn.compile(lambda x: ~x)(x.float())
    b = graphnn.tensor([True, False])
    same(graphnn.compile(lambda b: ~b | (b & False))(b), np.array([False, True]))


def test_grad_mode_decorators_inside_compiled_code():
    lin = graphnn.nn.Linear(2, 2)

    @graphnn.no_grad()
    def helper(x):
        return lin(x)

    f = graphnn.compile(lambda x: helper(x) * 2)
    out = f(graphnn.ones(1, 2))
    assert not out.requires_grad
    with graphnn.set_grad_enabled(False):
        assert not f(graphnn.ones(1, 2)).requires_grad
    assert graphnn.is_grad_enabled()


def test_a_view_written_through_a_view_of_it_stays_usable():
    """`flat = x.reshape(-1); flat[2:4] += 1; flat * 2`: the in-place op on a slice of `flat` changes x and flat
    alike, and flat is read afterwards (eagerly, with gradients, and compiled), with PyTorch's values."""

    def f(x):
        flat = (x * 1).reshape(-1)
        flat[2:4] += 1
        sub = flat[1:5]
        sub[0:2] *= 10
        return flat * 2, sub + 0

    x = graphnn.arange(6.0).reshape(2, 3)
    want = ([0.0, 20.0, 60.0, 8.0, 8.0, 10.0], [10.0, 30.0, 4.0, 4.0])  # worked out by hand
    for run in (f, graphnn.compile(f)):
        got = run(x)
        assert [t.tolist() for t in got] == [want[0], want[1]]
    xg = graphnn.arange(6.0).reshape(2, 3).requires_grad_()
    a, b = f(xg)
    (a.sum() + b.sum()).backward()
    # d/dx: flat's elements each count 2; the two multiplied by 10 count 20 in a and 10 in b; 1..4 count once more in b
    np.testing.assert_array_equal(xg.grad.numpy().reshape(-1), [2.0, 30.0, 30.0, 3.0, 3.0, 2.0])


def test_a_step_that_reads_a_value_runs_eagerly_with_a_warning():
    """As torch.compile at a graph break: a compiled training step whose trace needs a concrete value (.item() for a
    running loss, a branch on a tensor) runs eagerly for those arguments, with the eager results (Adam's state
    included), after one TraceWarning; fullgraph=True makes it an error."""
    import graphnn.nn as nn
    import graphnn.nn.functional as F
    from graphnn.compiler.python_state import TraceWarning
    from graphnn.core.tensor import TraceError

    def run(compiled: bool):
        graphnn.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        opt = graphnn.optim.Adam(model.parameters(), lr=0.01)

        def step(x, y):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            return loss.item() if loss > 0 else 0.0

        f = graphnn.compile(step) if compiled else step
        x, y = graphnn.randn(16, 4), graphnn.randn(16, 1)
        return [f(x, y) for _ in range(4)], [p.detach().numpy().copy() for p in model.parameters()]

    want, want_params = run(False)
    with pytest.warns(TraceWarning, match="runs eagerly for these arguments"):
        got, got_params = run(True)
    assert got == want
    for a, b in zip(got_params, want_params):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TraceError, match="concrete value"):
        graphnn.compile(lambda x: x * x.sum().item(), fullgraph=True)(graphnn.ones(3))


def test_a_factory_tensor_changed_in_place_starts_fresh_at_every_call():
    """A tensor a factory makes inside the compiled function (an accumulator, a GNN's aggregation buffer) starts
    from its initial value at every call, as eagerly, however in-place ops change it."""

    def aggregate(x, idx):
        total = graphnn.tensor(0.0)
        total += x.sum()
        out = graphnn.zeros(3).index_add_(0, idx, x)
        out.mul_(2)
        logdet = graphnn.zeros(())
        for i in range(2):
            logdet += x[i]
        return out, total, logdet

    x, idx = graphnn.tensor([1.0, 2.0, 3.0]), graphnn.tensor([0, 0, 2])
    c = graphnn.compile(aggregate)
    for _ in range(3):
        got, want = c(x, idx), aggregate(x, idx)
        assert [t.tolist() for t in got] == [t.tolist() for t in want] == [[6.0, 0.0, 6.0], 6.0, 3.0]


def test_a_factory_tensor_stored_where_it_outlives_the_call_is_state():
    """A custom optimizer creating its momentum buffer on its first (traced) step: the buffer lives on in
    self.state, so its in-place updates are written back at every compiled call, as eager steps keep them; the
    step also reads self.state[p] as PyTorch's defaultdict."""

    class Momentum(graphnn.optim.Optimizer):
        def __init__(self, params, lr=0.1, beta=0.9):
            super().__init__(params, dict(lr=lr, beta=beta))

        @graphnn.no_grad()
        def step(self):
            for g in self.param_groups:
                for p in g["params"]:
                    st = self.state[p]
                    if "buf" not in st:
                        st["buf"] = graphnn.zeros_like(p)
                    st["buf"].mul_(g["beta"]).add_(p.grad)
                    p.add_(st["buf"], alpha=-g["lr"])

    def run(compiled):
        lin = graphnn.nn.Linear(3, 1)
        with graphnn.no_grad():
            lin.weight.copy_(graphnn.tensor([[0.1, -0.2, 0.3]]))
            lin.bias.fill_(0.0)
        opt = Momentum(lin.parameters())
        x, y = graphnn.tensor([[1.0, 2.0, 3.0]] * 4), graphnn.ones(4, 1)

        def step():
            opt.zero_grad()
            loss = ((lin(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        step = graphnn.compile(step) if compiled else step
        return [float(step()) for _ in range(5)], opt.state[lin.weight]["buf"].tolist()

    eager, compiled = run(False), run(True)
    # five momentum steps of a 4-sample linear fit: float32 rounding of sums of a few terms
    np.testing.assert_allclose(compiled[0], eager[0], rtol=1e-5)
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-5)
    assert eager[0][1] < 0.7 and eager[0][3] < 0.05  # (the momentum carried over: PyTorch's 0.64, 0.022)


def test_inplace_into_a_fresh_tensor_keeps_the_gradient():
    """`loss = zeros(()); loss += term` (and writes through indexing, copy_, add_) inside a compiled function: the
    result requires grad and backward() outside gives eager's gradients."""

    def f1(x, w):
        total = graphnn.zeros(())
        for k in range(2):
            total += ((x[k] * w) ** 2).sum()
        return total

    def f2(x, w):
        acc = graphnn.zeros(2, 3)
        acc[0] = x[0] * w
        acc[1].copy_(x[1] * w)
        return acc

    def f3(x, w):
        return x.new_zeros(3).add_(x[1] * w)

    data = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    for f in (f1, f2, f3):
        grads = []
        for run in (f, graphnn.compile(f)):
            w = graphnn.tensor([1.0, -2.0, 0.5], requires_grad=True)
            out = run(graphnn.tensor(data), w)
            assert out.requires_grad and out.grad_fn is not None, f.__name__
            (out * out).sum().backward()
            grads.append(w.grad.numpy())
        same(grads[1], grads[0])


def test_compiled_results_not_computed_from_grad_inputs_do_not_require_grad():
    def f(x):
        return graphnn.arange(3.0) * 2, x * 2, x.detach() + 1

    x = graphnn.ones(3, requires_grad=True)
    for run in (f, graphnn.compile(f)):
        a, b, c = run(x)
        assert (a.requires_grad, b.requires_grad, c.requires_grad) == (False, True, False)
        same(a.numpy(), np.array([0.0, 2.0, 4.0], np.float32))
