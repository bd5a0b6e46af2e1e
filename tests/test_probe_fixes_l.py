"""What the probes of unseen programs found (GNN message passing, custom optimizers and autograd functions,
cumulative products), each checked eagerly and compiled, against PyTorch where it is the oracle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphnn


def _grads(lib, fn, *arrays):
    """fn's result and the gradients of its float inputs, for one library (`lib` graphnn or torch)."""
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(lib, *xs)
    weights = lib.tensor(np.linspace(-1.0, 2.0, int(np.prod(out.shape))).reshape(tuple(out.shape)))
    (out * weights).sum().backward()
    return [out.detach().numpy()] + [x.grad.numpy() for x in xs]


@pytest.mark.parametrize("reduce", ["amax", "amin", "sum", "mean"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_by_scatter_kernels(torch, reduce, include_self):
    """Ties among the sources and with the input split the gradient evenly, as PyTorch's; slots nothing is scattered
    to keep the input; compiled as eagerly."""
    index = np.array([[0, 2, 0, 1, 0], [3, 3, 1, 0, 1]])
    src = np.array([[1.0, 5.0, 1.0, 2.0, 0.5], [4.0, 4.0, -1.0, 7.0, -1.0]])
    base = np.array([[1.0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0.0, 9, 1, 4, 2]])

    def fn(lib, x, s):
        return x.scatter_reduce(1, lib.tensor(index), s, reduce, include_self=include_self)

    want = _grads(torch, fn, base, src)
    compiled = graphnn.compile(lambda x, s: fn(graphnn, x, s))
    for got in (_grads(graphnn, fn, base, src), _grads(graphnn, lambda lib, x, s: compiled(x, s), base, src)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_scatter_reduce_amax_of_many_edges_stays_small():
    """A GAT's per-node maximum over 200k edges (a dense node x edge mask would be 8 GB): scattered in place."""
    rng = np.random.default_rng(0)
    n, e = 10_000, 200_000
    dst = graphnn.tensor(rng.integers(0, n, e))
    logits = graphnn.tensor(rng.standard_normal(e).astype(np.float32))
    got = graphnn.zeros(n).scatter_reduce(0, dst, logits, "amax", include_self=False).numpy()
    want = np.zeros(n, np.float32)
    best = np.full(n, -np.inf, np.float32)
    np.maximum.at(best, dst.numpy(), logits.numpy())
    want[np.isfinite(best)] = best[np.isfinite(best)]
    np.testing.assert_array_equal(got, want)


def test_message_passing_into_a_fresh_tensor_compiles_once():
    """`zeros(n, d).index_add_(0, dst, msg)` with msg requiring grad, in a compiled training step: the fresh tensor
    is no leaf (no .grad, no guard on it), so every call runs the one compiled program."""

    def run(compiled: bool):
        w = graphnn.nn.Parameter(graphnn.tensor(np.arange(12, dtype=np.float32).reshape(4, 3) / 10))
        idx = graphnn.tensor([0, 2, 2, 1])
        opt = graphnn.optim.SGD([w], lr=0.1)

        def step():
            opt.zero_grad()
            out = graphnn.zeros(3, 3).index_add_(0, idx, w * 2)
            loss = (out**2).sum()
            loss.backward()
            opt.step()
            return loss

        f = graphnn.compile(step) if compiled else step
        losses = [f().item() for _ in range(5)]
        return losses, f

    eager, _ = run(False)
    compiled, f = run(True)
    np.testing.assert_allclose(compiled, eager, rtol=1e-6)
    assert f.cache.programs == 1


class _LazyMomentum(graphnn.optim.Optimizer):
    """A user's SGD with momentum whose buffer is made at the first step (torch.optim.SGD's own idiom)."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @graphnn.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if "buf" not in state:
                    buf = state["buf"] = graphnn.clone(p.grad).detach()
                else:
                    buf = state["buf"]
                    buf.mul_(group["momentum"]).add_(p.grad)
                p.add_(buf, alpha=-group["lr"])


def test_user_optimizer_creating_its_state_lazily_inside_compile():
    """The step that creates the state runs eagerly (the trace's changes undone), later steps run one compiled
    program that reads the state: the momentum is applied from the second step on, as eagerly."""

    def run(compiled: bool):
        w = graphnn.nn.Parameter(graphnn.tensor([1.0, -2.0]))
        opt = _LazyMomentum([w])
        x = graphnn.tensor([0.5, 0.5])

        def step():
            opt.zero_grad()
            loss = (w * x).sum() ** 2
            loss.backward()
            opt.step()

        f = graphnn.compile(step) if compiled else step
        out = []
        for _ in range(5):
            f()
            out.append(w.detach().numpy().copy())
        return out, f

    eager, _ = run(False)
    compiled, f = run(True)
    np.testing.assert_allclose(compiled, eager, rtol=1e-6)
    assert f.cache.programs == 1


def test_once_differentiable_backward_is_not_differentiated_again(torch):
    def script(L):
        class Square(L.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @L.autograd.function.once_differentiable
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        x = L.tensor([1.0, 2.0], requires_grad=True)
        (g,) = L.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
        with pytest.raises(RuntimeError, match="does not require grad"):
            g.sum().backward()
        return g.requires_grad, g.detach().numpy()

    got, want = script(graphnn), script(torch)
    assert got[0] == want[0] is False
    np.testing.assert_array_equal(got[1], want[1])


def test_cumulative_product_gradient_compiles_small():
    """cumprod's doubling scan: its gradient reads each step's value directly and shifted; fusion materializes the
    steps instead of recomputing them at both positions (which doubled the work per step: 2^8 copies at 256)."""
    x = np.random.default_rng(1).uniform(0.5, 1.5, (4, 256)).astype(np.float32)

    def step(a):
        loss = a.cumprod(1).sum()
        loss.backward()
        return loss

    results = []
    for f in (step, graphnn.compile(step)):
        a = graphnn.tensor(x, requires_grad=True)
        loss = f(a)
        results.append((loss.item(), a.grad.numpy()))
    # products of up to 256 factors in [0.5, 1.5]: float32 rounding of each, in two association orders
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=256 * 2**-23 * 4)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=256 * 2**-23 * 4, atol=1e-30)
    plan = f.graphs["fused"]
    biggest = max(len(g.nodes) for g in plan.groups)
    assert biggest < 20, f"a kernel of {biggest} nodes: the doubling steps were inlined into one another"


_RNG = np.random.default_rng(0)


def test_drawing_from_a_generator_object_while_tracing_runs_eagerly():
    def augment(x):
        return x + float(_RNG.standard_normal())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = graphnn.compile(augment)
        a, b = c(graphnn.ones(2)), c(graphnn.ones(2))
    assert any("random generator" in str(w.message) for w in caught)
    assert a[0] != b[0]  # (the calls run eagerly, each drawing anew)


def test_index_put_accumulating_at_several_indices_compiles():
    def f(z):
        y = z.clone()
        y.index_put_((graphnn.tensor([0, 1, 1]), graphnn.tensor([0, 2, 2])), graphnn.ones(3), accumulate=True)
        return y

    got = graphnn.compile(f, fullgraph=True)(graphnn.zeros(3, 3))
    want = np.zeros((3, 3), np.float32)
    want[0, 0], want[1, 2] = 1.0, 2.0
    np.testing.assert_array_equal(got.numpy(), want)


def test_a_growing_sequence_from_length_one_gets_one_dynamic_program():
    """A generation loop's first call has length 1 (which no dynamic program serves): the next lengths unify with a
    later partner instead of each compiling anew while the length-1 graph stays the chosen one."""
    from graphnn.codegen.dynamic import STATS

    lin = graphnn.nn.Linear(8, 8)
    f = graphnn.compile(lambda x: lin(x).tanh().sum(0))
    before = STATS["dynamic_compiled"] + STATS["dynamic_reused"]
    for n in range(1, 8):
        x = graphnn.tensor(np.arange(8 * n, dtype=np.float32).reshape(n, 8) / 50)
        np.testing.assert_allclose(f(x).detach().numpy(), lin(x).tanh().sum(0).detach().numpy(), rtol=2e-6, atol=2e-6)
    assert STATS["dynamic_compiled"] + STATS["dynamic_reused"] - before >= 4  # (lengths 4 to 7 at least)


def test_a_trace_that_stops_gives_back_the_numbers_it_drew():
    """Python's random numbers drawn before a graph break (.item()) are drawn again by the eager call: the stream is
    the eager one."""
    import random

    def step(x):
        teacher = random.random() < 0.5
        y = x * (2.0 if teacher else 3.0)
        if y.sum().item() > 0:  # a graph break
            y = y + 1
        return y

    random.seed(7)
    eager = [step(graphnn.ones(2)).numpy().tolist() for _ in range(4)] + [random.random()]
    random.seed(7)
    f = graphnn.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = [f(graphnn.ones(2)).numpy().tolist() for _ in range(4)] + [random.random()]
    assert compiled == eager


def test_leaves_made_inside_a_compiled_function(torch):
    """x.detach().requires_grad_() and zeros_like(x, requires_grad=True) inside a compiled function: backward()
    gives them .grad, and calls run one program (a factory's leaf starts afresh at every call)."""

    def input_grad(L, x):
        x_in = x.detach().requires_grad_(True)
        (x_in**3).sum().backward()
        return x_in.grad

    def pgd(L, x):
        delta = L.zeros_like(x, requires_grad=True)
        ((x + delta) ** 2).sum().backward()
        return delta.grad.sign()

    data = np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3)
    for fn in (input_grad, pgd):
        want = fn(torch, torch.tensor(data)).numpy()
        f = graphnn.compile(lambda x, fn=fn: fn(graphnn, x))
        for _ in range(3):
            np.testing.assert_allclose(f(graphnn.tensor(data)).numpy(), want, rtol=1e-6)
        assert f.cache.programs == 1, fn.__name__


def test_get_last_lr_after_a_step_inside_compile_is_current():
    def run(compiled: bool):
        w = graphnn.nn.Parameter(graphnn.ones(2))
        opt = graphnn.optim.SGD([w], lr=0.01)
        sched = graphnn.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)

        def step():
            opt.zero_grad()
            (w**2).sum().backward()
            opt.step()
            sched.step()
            return sched.get_last_lr()[0]

        f = graphnn.compile(step) if compiled else step
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [f() for _ in range(4)]

    assert run(True) == run(False)


def test_inductor_settings_are_accepted():
    import graphnn._inductor.config as config

    graphnn._inductor.config.coordinate_descent_tuning = True
    config.triton.unique_kernel_names = True
    assert graphnn._inductor.config is config


def test_mask_assignment_of_one_row_per_element_compiles():
    """DQN's `next_values[non_final] = target(next_states).max(1).values`: one value per True element of a mask
    computed inside the compiled function, compiled whole (gradients as eagerly)."""

    def f(x, mask, v):
        z = x * 1
        z[mask] = v * 3
        return (z * graphnn.arange(z.numel()).reshape(z.shape)).sum()

    mask = graphnn.tensor([True, False, True, False, True])
    results = []
    for run in (f, graphnn.compile(f, fullgraph=True)):
        x = graphnn.tensor(np.arange(15, dtype=np.float32).reshape(5, 3) / 7, requires_grad=True)
        v = graphnn.tensor(np.arange(9, dtype=np.float32).reshape(3, 3) / 5, requires_grad=True)
        loss = run(x, mask, v)
        loss.backward()
        results.append((loss.item(), x.grad.numpy(), v.grad.numpy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])


def test_tensor_learning_rate_is_read_at_every_call():
    """lr=torch.tensor(0.01) changed with fill_ between compiled steps: one program, eager's numbers."""

    def run(compiled: bool):
        graphnn.manual_seed(0)
        net = graphnn.nn.Linear(3, 1)
        opt = graphnn.optim.Adam(net.parameters(), lr=graphnn.tensor(0.01))

        def step(x):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()

        f = graphnn.compile(step) if compiled else step
        for i in range(6):
            opt.param_groups[0]["lr"].fill_(0.01 * (1 - i / 10))
            f(graphnn.ones(4, 3))
        return net.weight.detach().numpy(), f

    eager, _ = run(False)
    compiled, f = run(True)
    np.testing.assert_allclose(compiled, eager, rtol=1e-6, atol=1e-7)
    assert f.cache.programs == 1


def test_a_group_entry_changed_and_restored_inside_the_step_does_not_retrace():
    """A LARS-style wrapper zeroes weight_decay around the base optimizer's step and puts it back: the guard takes
    the group as the step leaves it."""
    model = graphnn.nn.Linear(4, 2)
    opt = graphnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def step(x):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        wd = opt.param_groups[0]["weight_decay"]
        opt.param_groups[0]["weight_decay"] = 0.0
        opt.step()
        opt.param_groups[0]["weight_decay"] = wd

    f = graphnn.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(6):
            f(graphnn.ones(3, 4))
    # (two programs: the first step's, before SGD's momentum buffers exist, and every later step's)
    assert f.cache.programs == 2 and opt.param_groups[0]["weight_decay"] == 1e-4


def test_anomaly_mode_reports_nan_gradients_of_compiled_steps():
    def step(x):
        y = x.sqrt().sum()
        y.backward()
        return y

    with graphnn.autograd.set_detect_anomaly(True):
        with pytest.raises(RuntimeError, match="CompiledFunctionBackward' returned nan"):
            graphnn.compile(step)(graphnn.tensor([-1.0, 4.0], requires_grad=True))
    x = graphnn.tensor([-1.0, 4.0], requires_grad=True)
    graphnn.compile(step)(x)  # (anomaly mode off: no check)
    assert np.isnan(x.grad.numpy()[0])


def test_deepcopy_of_parameters_and_state_dict_errors_as_pytorch(torch):
    import copy

    for L in (torch, graphnn):
        m = L.nn.Linear(2, 2)
        m(L.ones(1, 2)).sum().backward()
        assert copy.deepcopy(m).weight.grad is None and m.weight.grad is not None
    messages = []
    for L in (torch, graphnn):
        m = L.nn.Linear(16, 4)
        sd = {k: v.detach().clone() for k, v in L.nn.Linear(16, 5).state_dict().items()}
        with pytest.raises(RuntimeError) as size:
            m.load_state_dict(sd)
        with pytest.raises(RuntimeError) as keys:
            m.load_state_dict({"weight": m.weight.detach().clone(), "extra": L.ones(1)})
        messages.append((str(size.value), str(keys.value)))
    assert messages[0] == messages[1]


def test_import_paths_of_pytorch_modules():
    import importlib

    for path, name in [
        ("graphnn.utils.data._utils.collate", "default_collate_fn_map"),
        ("graphnn.utils.data.dataloader", "get_worker_info"),
        ("graphnn.random", "fork_rng"),
        ("graphnn.autograd.grad_mode", "no_grad"),
        ("graphnn.nn.init", "_calculate_correct_fan"),
        ("graphnn.nn.parameter", "UninitializedParameter"),
        ("graphnn.utils.checkpoint", "noop_context_fn"),
    ]:
        assert hasattr(importlib.import_module(path), name), (path, name)
    from graphnn.utils import _pytree

    tree = {"a": [1, (2, 3)], "b": None, "c": 4}
    leaves, spec = _pytree.tree_flatten(tree)
    assert leaves == [1, 2, 3, 4]
    assert _pytree.tree_unflatten([x * 10 for x in leaves], spec) == {"a": [10, (20, 30)], "b": None, "c": 40}
    assert _pytree.tree_map(lambda a, b: a + b, [1, 2], [10, 20]) == [11, 22]


def test_copying_one_updated_state_tensor_into_another_inside_compile():
    """An EMA copy kept up to date inside a compiled step: `a.add_(x); b.copy_(a)` (both captured) and a BatchNorm's
    running mean copied into its average's."""
    a, b = graphnn.zeros(3), graphnn.zeros(3)

    def f(x):
        a.add_(x)
        b.copy_(a)
        return x.sum()

    g = graphnn.compile(f)
    for i in range(3):
        g(graphnn.ones(3))
        assert a.tolist() == b.tolist() == [i + 1.0] * 3
    net, ema = graphnn.nn.BatchNorm1d(3), graphnn.nn.BatchNorm1d(3)

    def step(x):
        net(x)
        ema.running_mean.copy_(net.running_mean)

    s = graphnn.compile(step)
    for _ in range(2):
        s(graphnn.tensor(np.arange(12, dtype=np.float32).reshape(4, 3)))
        np.testing.assert_array_equal(ema.running_mean.numpy(), net.running_mean.numpy())


@pytest.mark.parametrize(
    "shape, orthogonal_map, trivialization",
    [((4, 4), None, True), ((4, 4), "cayley", True), ((5, 3), "householder", False), ((4, 4), "householder", False)],
)
def test_orthogonal_parametrization_as_pytorch(torch, shape, orthogonal_map, trivialization):
    """parametrizations.orthogonal (matrix exponential, Cayley, Householder; with and without the trivialization's
    base): the initial orthogonalized weight and three SGD steps, eagerly and compiled, as PyTorch's."""
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    xs = np.random.default_rng(1).standard_normal((6, shape[1])).astype(np.float32)

    def run(L, compiled=False):
        lin = L.nn.Linear(shape[1], shape[0], bias=False)
        with L.no_grad():
            lin.weight.copy_(L.tensor(data))
        L.nn.utils.parametrizations.orthogonal(lin, orthogonal_map=orthogonal_map, use_trivialization=trivialization)
        opt = L.optim.SGD(lin.parameters(), lr=0.1)
        x = L.tensor(xs)

        def step():
            opt.zero_grad()
            loss = (lin(x) ** 2).sum() + lin(x)[:, 0].sum()
            loss.backward()
            opt.step()

        f = graphnn.compile(step) if compiled else step
        w0 = lin.weight.detach().numpy().copy()
        for _ in range(3):
            f()
        return w0, lin.weight.detach().numpy(), sorted(lin.state_dict())

    want = run(torch)
    for got in (run(graphnn), run(graphnn, compiled=True)):
        # orthogonal factors of 4x4 float32 matrices (QR, exp, solves): a few ulp per entry, grown by three steps
        np.testing.assert_allclose(got[0], want[0], atol=2e-6)
        np.testing.assert_allclose(got[1], want[1], atol=2e-5)
        assert got[2] == want[2]


@pytest.mark.parametrize(
    "dims, kernel, padding, dilation",
    [(2, 3, 1, 1), (2, 5, 2, 1), (2, 3, 2, 2), (1, 4, 3, 1)],
)
def test_depthwise_convolutions_by_taps_as_pytorch(torch, dims, kernel, padding, dilation):
    """Depthwise convolutions (groups = channels, stride 1) run as sums over kernel taps: values and both gradients,
    eagerly and compiled, as PyTorch's (float32 sums of kernel-size terms, and of N*H*W terms for the weight)."""
    shape = (3, 8) + (9,) * dims
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((8, 1) + (kernel,) * dims).astype(np.float32)

    def run(L, compiled=False):
        conv = getattr(L.nn, f"Conv{dims}d")(8, 8, kernel, padding=padding, dilation=dilation, groups=8)
        with L.no_grad():
            conv.weight.copy_(L.tensor(w))
            conv.bias.fill_(0.25)
        xt = L.tensor(x, requires_grad=True)

        def step(xt):
            y = conv(xt)
            (y * y).sum().backward()
            return y

        y = (graphnn.compile(step) if compiled else step)(xt)
        return y.detach().numpy(), xt.grad.numpy(), conv.weight.grad.numpy(), conv.bias.grad.numpy()

    want = run(torch)
    for got in (run(graphnn), run(graphnn, compiled=True)):
        for g, t in zip(got, want):
            scale = np.abs(t).max()
            np.testing.assert_allclose(g, t, rtol=0, atol=scale * 2e-6 * np.sqrt(g.size))


def test_eager_recurrent_layers_trace_their_step_once(torch):
    """An eager RNN layer keeps its traced step body between calls (same weights, same shapes): later calls read
    the weights' current values (an optimizer's updates), and a replaced weight traces anew."""
    from graphnn.compiler import scan as scan_module

    rng = np.random.default_rng(0)
    tm, gm = torch.nn.GRU(5, 7, num_layers=2), graphnn.nn.GRU(5, 7, num_layers=2)
    gm.load_state_dict({k: graphnn.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    topt, gopt = torch.optim.SGD(tm.parameters(), lr=0.05), graphnn.optim.SGD(gm.parameters(), lr=0.05)
    scan_module._BODIES.clear()
    traced = 0
    for step in range(4):
        x = rng.standard_normal((6, 3, 5)).astype(np.float32)
        outs = []
        for L, m, opt in ((torch, tm, topt), (graphnn, gm, gopt)):
            opt.zero_grad()
            y, _ = m(L.tensor(x))
            (y**2).sum().backward()
            opt.step()
            outs.append(y.detach().numpy())
        # float32 recurrences of 6 steps, two layers: a few ulp per step, amplified by the updates in between
        np.testing.assert_allclose(outs[1], outs[0], atol=5e-6)
        if step == 0:
            assert len(scan_module._BODIES) == traced + 2  # (one body per layer)
        if step == 1:
            with graphnn.no_grad():
                gm.weight_hh_l0 = graphnn.nn.Parameter(gm.weight_hh_l0.detach().clone())
            gopt = graphnn.optim.SGD(gm.parameters(), lr=0.05)
    assert len(scan_module._BODIES) == traced + 3


def test_lists_and_dicts_passed_to_a_compiled_function_are_changed(torch):
    """A compiled step appending to a list argument and setting dict entries: the caller's containers change at every
    call, as PyTorch's (the trace saw copies: the call runs eagerly)."""

    def run(L, compiled: bool):
        w = L.nn.Parameter(L.ones(2))

        def step(x, stats, history):
            loss = (w * x).sum()
            stats["loss"] = loss.detach()
            stats["steps"] = stats.get("steps", 0) + 1
            history.append(loss.detach())
            return loss

        f = graphnn.compile(step) if compiled else step
        stats, history = {}, []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(3):
                f(L.ones(2) * i, stats, history)
        return sorted(stats), stats["steps"], [float(h) for h in history]

    want = run(torch, False)
    assert run(graphnn, False) == want and run(graphnn, True) == want


def test_a_trace_that_stops_gives_back_graphnn_generator_draws():
    """A shuffling DataLoader iterated inside a compiled function before a graph break: the eager rerun shuffles as
    the uncompiled code does (the aborted trace's draw from graphnn's generator is undone)."""
    data = graphnn.utils.data.TensorDataset(graphnn.arange(24.0).reshape(12, 2))

    def train():
        loader = graphnn.utils.data.DataLoader(data, batch_size=4, shuffle=True)
        first = next(iter(loader))[0]
        return first.sum().item(), graphnn.rand(()).item()

    graphnn.manual_seed(3)
    eager = train()
    graphnn.manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = graphnn.compile(train)()
    assert compiled == eager


def test_a_positional_table_sliced_by_length_gets_one_dynamic_program():
    """`x + pos[:, :x.size(1)]` in a compiled training step (BERT/ViT): the table's gradient sums columns whose count
    is symbolic in the length; one dynamic program serves every length, with eager's numbers."""
    from graphnn.codegen.dynamic import STATS

    def run(compiled: bool):
        graphnn.manual_seed(0)
        lin = graphnn.nn.Linear(16, 16)
        pos = graphnn.nn.Parameter(graphnn.randn(1, 32, 16))
        opt = graphnn.optim.SGD(list(lin.parameters()) + [pos], 1e-2)

        def step(x):
            opt.zero_grad()
            loss = lin(x + pos[:, : x.size(1)]).pow(2).mean()
            loss.backward()
            opt.step()
            return loss

        f = graphnn.compile(step) if compiled else step
        rng = np.random.default_rng(0)
        losses = [
            f(graphnn.tensor(rng.standard_normal((4, t, 16)).astype(np.float32))).item() for t in (8, 11, 6, 10, 7, 13)
        ]
        return losses, pos.detach().numpy()

    before = STATS["dynamic_reused"]
    eager, compiled = run(False), run(True)
    np.testing.assert_allclose(compiled[0], eager[0], rtol=1e-5)
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-5, atol=1e-6)
    assert STATS["dynamic_reused"] - before >= 3  # (lengths 10, 7 and 13 at least from one program)


@pytest.mark.parametrize("m, k, n", [(16, 8192, 40), (5, 4100, 7), (13, 5000, 37), (64, 4096, 250)])
def test_weight_gradient_products_by_slices_of_k(m, k, n):
    """A @ W^T over a long k with a small result (a convolution's weight gradient) runs as dot products over slices
    of k added up in scratch: within float32's bound for k-term sums, with its epilogue, ragged tiles and slices."""
    a = np.random.default_rng(0).standard_normal((m, k)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((n, k)).astype(np.float32)
    got = graphnn.compile(lambda a, w: (a @ w.t()) * 2 + 1)(graphnn.tensor(a), graphnn.tensor(w)).numpy()
    want = (a.astype(np.float64) @ w.T.astype(np.float64)) * 2 + 1
    bound = 2 * k * 2**-24 * (np.abs(a).astype(np.float64) @ np.abs(w.T).astype(np.float64)) + 4 * 2**-24 * np.abs(want)
    assert (np.abs(got - want) <= bound).all()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "lead, m, k, n, dt",
    [
        ((), 64, 9300, 288, "float32"),
        ((), 7, 4100, 1000, "float32"),
        ((3,), 9, 5000, 21, "float32"),
        ((), 11, 4500, 30, "float64"),
        ((), 128, 2100, 500, "float32"),
        ((), 100, 2048, 300, "float64"),
    ],
)
def test_weight_gradient_products_shared_among_threads(threads, lead, m, k, n, dt):
    """The sliced dot products with a larger result (the m x n scratch up to MAX_PANEL floats), A's slice packed,
    each thread's share of the columns, batched products and float64: within the dtype's bound for k-term sums."""
    eps = 2.0**-24 if dt == "float32" else 2.0**-53
    a = np.random.default_rng(0).standard_normal(lead + (m, k)).astype(dt)
    w = np.random.default_rng(1).standard_normal(lead + (n, k)).astype(dt)
    before = graphnn.get_num_threads()
    graphnn.set_num_threads(threads)
    try:
        got = graphnn.compile(lambda a, w: (a @ w.transpose(-1, -2)) - 3)(graphnn.tensor(a), graphnn.tensor(w)).numpy()
    finally:
        graphnn.set_num_threads(before)
    a64, w64 = a.astype(np.float64), w.astype(np.float64)
    want = a64 @ np.swapaxes(w64, -1, -2) - 3
    bound = 2 * k * eps * (np.abs(a64) @ np.abs(np.swapaxes(w64, -1, -2))) + 4 * eps * np.abs(want)
    assert (np.abs(got - want) <= bound).all()


@pytest.mark.parametrize("m, k, n", [(70, 2048, 1100), (13, 1100, 2048), (40, 8192, 1024)])
def test_products_over_a_big_b_prefetch_its_panels(m, k, n):
    """A B beyond any L2 with rows a page or more apart (a convolution's column matrix) is packed with prefetches of
    later panels (hints past a row's or the buffer's end included): results within float32's bound, with a ragged
    last panel and the sliced long-k schedule."""
    a = np.random.default_rng(0).standard_normal((m, k)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((k, n)).astype(np.float32)
    got = graphnn.compile(lambda a, w: a @ w)(graphnn.tensor(a), graphnn.tensor(w)).numpy()
    want = a.astype(np.float64) @ w.astype(np.float64)
    bound = 2 * k * 2**-24 * (np.abs(a).astype(np.float64) @ np.abs(w).astype(np.float64))
    assert (np.abs(got - want) <= bound).all()
