"""graphnn.compile with containers of tensors (pytrees) as arguments, keyword arguments and results, and the bound on
the specializations a compiled callable keeps (least recently used ones are evicted)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import weakref
from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
from graphnn.compiler.pytree import flatten, map_tensors
from graphnn.compiler.program import DEFAULT_MAX_SPECIALIZATIONS, Specializations
from graphnn.core.tensor import TraceError
from tolerance import assert_close, recorded_bounds

HC = namedtuple("HC", "h c")


def _t(*shape, seed=None, requires_grad=False):
    rng = np.random.default_rng(seed)
    return graphnn.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=requires_grad)


def _np(x) -> np.ndarray:
    return x.detach().numpy()


def _eager(fn, *args, **kwargs) -> tuple:
    """fn(*args, **kwargs) run eagerly on copies of its float tensor leaves that require grad, so that the IR of the
    computation is recorded: (the result's tensor leaves, their rounding-error Bounds)."""

    def recorded(t, _path):
        return t.detach().requires_grad_() if t.dtype_name.startswith("float") else t

    with graphnn.enable_grad():
        out = fn(*map_tensors(list(args), recorded), **map_tensors(dict(kwargs), recorded))
    leaves: list = []
    flatten(out, leaves)
    return leaves, recorded_bounds(leaves)


def _close(got, fn, *args, what: str = "", **kwargs) -> None:
    """A compiled result (any tree) against fn(*args, **kwargs) evaluated eagerly, leaf by leaf: both evaluate the
    same formulas, so they agree within twice the eager graph's rounding-error bound (exactly where it is 0)."""
    want, bounds = _eager(fn, *args, **kwargs)
    leaves: list = []
    flatten(got, leaves)
    assert len(leaves) == len(want), f"{what}: {len(leaves)} results, expected {len(want)}"
    for i, (g, w) in enumerate(zip(leaves, want)):
        tol = bounds.tol(i)
        assert tol is None or np.isfinite(tol).all(), f"{what} [{i}]: no finite rounding-error bound"
        assert_close(_np(g), _np(w), tol, f"{what} [{i}]")


def _grads(tensors) -> list:
    out = [t.grad.numpy().copy() for t in tensors]
    for t in tensors:
        t.grad = None
    return out


# -- arguments --------------------------------------------------------------------------------------------------
def test_issue_example_new_tensors_every_call():
    """A tuple of tensors used to be a hashable constant compared with `==` (ValueError on the second call)."""
    f = graphnn.compile(lambda x, hc: x * hc[0] + hc[1])
    for i in range(5):
        x, h, c = _t(3, seed=3 * i), _t(3, seed=3 * i + 1), _t(3, seed=3 * i + 2)
        _close(f(x, (h, c)), f.fn, x, (h, c), what=f"call {i}")
    assert len(f.cache) == 1 and f.cache.programs == 1


def test_nested_containers_in_and_out():
    """dict/list/tuple/namedtuple/OrderedDict/defaultdict arguments; results keep their container types."""

    def fn(cfg, scale):
        a, (b, nothing) = cfg["pair"]
        hc = cfg["hc"]
        return {
            "sum": [a + b * scale, (hc.h * hc.c, nothing)],
            "hc": HC(h=hc.h.tanh(), c=hc.c + cfg["od"]["z"]),
            "od": OrderedDict(first=a * 2, second=cfg["dd"]["k"] - 1),
            "tag": cfg["tag"],
        }

    f = graphnn.compile(fn)
    for i in range(3):
        ts = [_t(2, 3, seed=10 * i + j) for j in range(6)]
        cfg = {
            "pair": [ts[0], (ts[1], None)],
            "hc": HC(ts[2], ts[3]),
            "od": OrderedDict(z=ts[4]),
            "dd": defaultdict(list, k=ts[5]),
            "tag": "run",
        }
        got = f(cfg, 2.0)
        assert list(got) == ["sum", "hc", "od", "tag"] and got["tag"] == "run"
        assert type(got["sum"]) is list and type(got["sum"][1]) is tuple and got["sum"][1][1] is None
        assert type(got["hc"]) is HC and type(got["od"]) is OrderedDict and list(got["od"]) == ["first", "second"]
        # leaves in tree order: sum0, sum1, h, c, first, second
        _close(got, fn, cfg, 2.0, what=f"call {i}")
    assert f.cache.programs == 1


def test_tuple_subclasses_in_and_out():
    """A Size argument and result (Size(*items) used to fail), and max(dim)'s (values, indices)."""
    f = graphnn.compile(lambda x, shape: (x.reshape(shape), shape, x.max(0)))
    for i in range(2):
        x = _t(2, 3, seed=i)
        r, s, mm = f(x, graphnn.Size((3, 2)))
        assert r.shape == (3, 2) and type(s) is graphnn.Size and s == (3, 2)
        want = x.max(0)
        assert type(mm) is type(want)
        np.testing.assert_array_equal(mm.values.numpy(), want.values.numpy())  # a max is exact
        np.testing.assert_array_equal(mm.indices.numpy(), want.indices.numpy())
    assert f.cache.programs == 1


def test_lstm_carry_through_compiled_step_matches_eager():
    """Recurrent code passes (h, c) between calls: a compiled LSTMCell step, and a compiled module, over a sequence."""
    graphnn.manual_seed(0)
    cell = nn.LSTMCell(4, 5)
    step = graphnn.compile(lambda x, hc: cell(x, hc))
    ccell = graphnn.compile(cell)
    xs = [_t(2, 4, seed=i) for i in range(6)]
    hc_e = hc_s = hc_m = (graphnn.zeros(2, 5), graphnn.zeros(2, 5))
    for i, x in enumerate(xs):
        hc_e = cell(x, hc_e)  # eager with the graph of every step so far recorded (the cell's weights require grad)
        with graphnn.no_grad():
            hc_s, hc_m = step(x, hc_s), ccell(x, hc_m)
        # each compiled chain is within the eager chain's bound of the exact values: 2 E from the eager one
        bounds = recorded_bounds(list(hc_e))
        for k, (a, b, c) in enumerate(zip(hc_e, hc_s, hc_m)):
            assert_close(_np(b), _np(a), bounds.tol(k), f"step {i}")
            assert_close(_np(c), _np(a), bounds.tol(k), f"module {i}")
    assert step.cache.programs == 1 and ccell.cache.programs == 1


def test_lstm_backward_through_time_across_compiled_calls():
    """Carried states that require grad (outputs of the previous compiled call) back-propagate through every call."""
    graphnn.manual_seed(1)
    cell = nn.LSTMCell(3, 4)
    ccell = graphnn.compile(cell)
    xs = [_t(2, 3, seed=20 + i) for i in range(4)]
    h0 = _t(2, 4, seed=1, requires_grad=True)
    c0 = _t(2, 4, seed=2, requires_grad=True)
    leaves = [h0, c0, *cell.parameters()]
    results = []
    for run in (cell, ccell):
        hc = (h0, c0)
        loss = 0
        for x in xs:
            hc = run(x, hc)
            loss = loss + (hc[0] * hc[1]).sum()
        if run is cell:  # the eager graph of the whole sequence bounds the loss and every gradient
            bounds = recorded_bounds([loss], loss)
        loss.backward()
        results.append((loss.item(), _grads(leaves)))
    (le, ge), (lc, gc_) = results
    assert_close(lc, le, bounds.tol(0), "loss")
    for t, a, b in zip(leaves, gc_, ge):
        assert_close(a, b, bounds.grad_tol(t), "gradient")


def test_keyword_arguments_are_pytrees():
    f = graphnn.compile(lambda x, *, extra, scale=1.0: x * scale + extra[0] - extra[1]["b"])
    for i in range(3):
        x, a, b = _t(4, seed=i), _t(4, seed=10 + i), _t(4, seed=20 + i)
        _close(f(x, extra=(a, {"b": b}), scale=2.0), f.fn, x, extra=(a, {"b": b}), scale=2.0, what=f"call {i}")
    assert f.cache.programs == 1
    _close(f(x, extra=(a, {"b": b}), scale=3.0), f.fn, x, extra=(a, {"b": b}), scale=3.0)  # a new specialization
    assert f.cache.programs == 2


def test_keyword_tensor_is_an_input_not_a_captured_constant():
    """A tensor passed by keyword used to be captured as a constant: later calls silently reused the first one."""
    f = graphnn.compile(lambda x, y=None: x + y)
    x = _t(3, seed=0)
    for i in range(3):
        y = _t(3, seed=i + 1)
        _close(f(x, y=y), f.fn, x, y=y, what=f"call {i}")


def test_structure_and_constants_are_part_of_the_signature():
    calls = []

    def traced():  # (counts traces; a list the compiled function changed itself would make its calls run eagerly)
        calls.append(1)

    def fn(x, tree):
        traced()
        leaves = tree.values() if isinstance(tree, dict) else tree
        return sum((v if isinstance(v, graphnn.Tensor) else x * float(v or 0)) for v in leaves) + x

    f = graphnn.compile(fn)
    x, y = _t(2, seed=0), _t(2, seed=1)
    variants = [
        (x, y),
        [x, y],
        (x, y, y),
        {"a": x, "b": y},
        {"b": y, "a": x},
        (x, 1),
        (x, 2),
        (x, True),
        (x, 1.0),
        (x, None),
        (x, -0.0),
        (x, 0.0),
        (y.double(),),
        (_t(2, 2, seed=2),),
    ]
    for tree in variants:
        _close(f(x, tree), fn, x, tree, what=repr(tree))
    n = len(variants)
    assert len(f.cache) == n and f.cache.programs == n
    for tree in variants:  # all seen: no new trace
        f(x, tree)
    # n traces + n eager calls above, and a trace each of the int and float variants' second values trying the
    # number as a graph input (`float(v or 0)` needs its value: constants)
    assert len(f.cache) == n and len(calls) == 2 * n + 2
    f(x, (x, float("nan")))
    f(x, (x, float("nan")))  # another nan object: the same constant
    assert len(f.cache) == n + 1


def test_requires_grad_of_a_leaf_is_part_of_the_signature():
    f = graphnn.compile(lambda hc: hc[0] * hc[1])
    a, b = _t(2, seed=0), _t(2, seed=1)
    f((a, b))
    f((a, b.requires_grad_()))
    assert f.cache.programs == 2


def test_same_tensor_twice_and_captured_parameters_in_containers():
    lin = nn.Linear(3, 2)
    f = graphnn.compile(lambda x, t: x * t[0] + t[1] * 2)
    x = _t(3, seed=0)
    _close(f(x, (x, x)), lambda x: x * x + x * 2, x)
    y = _t(3, seed=1)
    _close(f(y, (y, y)), lambda y: y * y + y * 2, y)
    g = graphnn.compile(lambda x, d: lin(x) + d["w"].sum() + d["b"])
    for i in range(2):
        x = _t(4, 3, seed=i)
        _close(g(x, {"w": lin.weight, "b": lin.bias}), lambda x: lin(x) + lin.weight.sum() + lin.bias, x)


def test_compiled_module_with_tuple_input_backward_matches_eager():
    class Cell(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x, hc, gain=1.0):
            h, c = hc
            c2 = c * (self.lin(x) + h).sigmoid() * gain
            return HC(h=c2.tanh(), c=c2)

    graphnn.manual_seed(2)
    cell = Cell()
    ccell = graphnn.compile(cell)
    for i in range(3):
        x = _t(2, 3, seed=3 * i, requires_grad=True)
        h = _t(2, 3, seed=3 * i + 1, requires_grad=True)
        c = _t(2, 3, seed=3 * i + 2)  # does not require grad
        leaves = [x, h, cell.lin.weight, cell.lin.bias]
        grads = []
        for run in (cell, ccell):
            out = run(x, (h, c), gain=0.5)
            assert type(out) is HC
            loss = out.h.sum() + (out.c * out.c).sum()
            if run is cell:
                bounds = recorded_bounds([loss], loss)
            loss.backward()
            grads.append(_grads(leaves))
        assert c.grad is None
        for t, a, b in zip(leaves, *grads):
            assert_close(b, a, bounds.grad_tol(t), "gradient")
    assert ccell.cache.programs == 1


def test_same_tensor_twice_backward_sums_both_uses():
    class Cube(nn.Module):
        def forward(self, a, t):
            return (a * t[0] * t[1]).sum()

    z = _t(3, seed=0, requires_grad=True)
    graphnn.compile(Cube())(z, (z, z)).backward()
    # within the gradient's rounding-error bound of the exact 3 z^2 (float64: exact enough), doubled for its own
    zc = z.detach().requires_grad_()
    tol = recorded_bounds([], Cube()(zc, (zc, zc))).grad_tol(zc)
    assert_close(z.grad.numpy(), 3 * z.detach().numpy().astype(np.float64) ** 2, tol, "gradient")


def test_parameter_passed_in_a_container_and_captured_gets_both_gradients():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x, extra):
            return (self.lin(x) * extra["w"][0].sum()).sum() + extra["b"][0][1]

    graphnn.manual_seed(3)
    m = M()
    cm = graphnn.compile(m)
    x = _t(4, 3, seed=0)
    grads = []
    for run in (m, cm, cm):
        loss = run(x, {"w": [m.lin.weight], "b": (m.lin.bias,)})
        if run is m:
            bounds = recorded_bounds([loss], loss)
        loss.backward()
        grads.append(_grads(list(m.parameters())))
    for got in grads[1:]:
        for p, a, b in zip(m.parameters(), got, grads[0]):
            assert_close(a, b, bounds.grad_tol(p), "gradient")


def _bad(x, hc):
    return x


def test_unhashable_leaf_error_names_its_path():
    f = graphnn.compile(_bad)
    x = _t(2, seed=0)
    with pytest.raises(TypeError, match=r"argument hc\[1\]\['w'\] is a ndarray"):
        f(x, (x, {"w": np.zeros(2)}))
    with pytest.raises(TypeError, match=r"argument hc\.c\[0\] is a set"):
        f(x, HC(x, [{1}]))
    with pytest.raises(TypeError, match=r"argument opts\['k'\]\[0\] is a set"):
        graphnn.compile(lambda x, **kw: x)(x, opts={"k": [set()]})
    with pytest.raises(TypeError, match=r"argument rest\[1\] is a bytearray"):
        graphnn.compile(lambda x, *rest: x)(x, x, bytearray(b"1"))
    with pytest.raises(TypeError, match=r"argument hx\[0\] is a ndarray"):
        graphnn.compile(nn.LSTMCell(2, 2))(x, [np.zeros(2)])


def test_escaped_symbolic_tensor_in_a_container_is_a_trace_error():
    kept = []

    def keep(v):  # (through a helper: the compiled function's own code does not name the list)
        kept.append(v)

    @graphnn.compile
    def leak(x):
        keep(x * 2)
        return x

    leak(_t(2, seed=0))
    with pytest.raises(TraceError):
        graphnn.compile(lambda t: t[0] + 1)((kept[0],))


def test_a_list_the_compiled_function_appends_to_gets_values():
    """`history.append(x * 2)` named in the compiled function: a change of Python state, so the calls run eagerly
    (after a first one that traces again) and the list holds tensors with values, one per call, as eagerly."""
    history = []

    @graphnn.compile
    def step(x):
        history.append(x * 2)
        return x + 1

    x = _t(2, seed=0)
    with pytest.warns(UserWarning, match="changed Python state"):
        for _ in range(3):
            step(x)
    assert len(history) == 3 and all(h.tolist() == (x * 2).tolist() for h in history)


def test_repeated_calls_take_the_fast_path(monkeypatch):
    """A call with the last call's signature reuses its program without looking in the cache."""
    f = graphnn.compile(lambda x, hc: x * hc[0] + hc[1])
    x = _t(3, seed=0)
    f(x, (x, x))
    looked = []
    find = Specializations.find
    monkeypatch.setattr(Specializations, "find", lambda self, key: looked.append(key) or find(self, key))
    for i in range(5):
        f(_t(3, seed=i), (_t(3, seed=i + 1), _t(3, seed=i + 2)))
    assert looked == []
    f(x, [x, x])
    assert len(looked) == 1


# -- bounded specializations --------------------------------------------------------------------------------------
def _mlp():
    graphnn.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_least_recently_used_specializations_are_evicted():
    net = _mlp()
    cnet = graphnn.compile(net, max_specializations=4)
    natives = {}
    with graphnn.no_grad():
        for b in range(1, 11):
            x = _t(b, 4, seed=b)
            _close(cnet(x), net, x, what=f"batch {b}")
            natives[b] = weakref.ref(cnet.last.native)
    assert len(cnet.cache) == 4 and cnet.cache.programs == 4
    gc.collect()
    assert [b for b, r in natives.items() if r() is not None] == [7, 8, 9, 10]  # evicted code is freed
    with graphnn.no_grad():
        _close(cnet(_t(8, 4, seed=0)), net, _t(8, 4, seed=0))  # a hit makes 8 the most recently used
        _close(cnet(_t(1, 4, seed=0)), net, _t(1, 4, seed=0))  # evicted before: traced again, evicts 7
    gc.collect()
    assert natives[8]() is not None and natives[7]() is None and cnet.cache.programs == 4


def test_fast_path_program_counts_as_recently_used():
    """The last program is used without touching the cache; it must still not be the one evicted next."""
    f = graphnn.compile(lambda x: x + 1, max_specializations=2)
    a, b, c = _t(1, seed=0), _t(2, seed=0), _t(3, seed=0)
    f(a)
    f(b)
    for _ in range(3):
        f(a)  # first via the cache, then the fast path
    f(c)  # evicts b, not a
    assert [k[1][0][0][0] for k in f.cache] == [(1,), (3,)]


def test_pending_backward_survives_eviction():
    net = _mlp()
    cnet = graphnn.compile(net, max_specializations=2)
    x = _t(3, 4, seed=0)
    loss = (cnet(x) ** 2).sum()  # training mode: the compiled backward runs later
    prog = weakref.ref(cnet.last)
    for b in range(5, 9):
        (cnet(_t(b, 4, seed=b)) ** 2).sum().backward()
    assert all(prog() is not p for k in cnet.cache for p in cnet.cache[k])
    net.zero_grad()
    loss.backward()
    got = _grads(list(net.parameters()))
    eager = (net(x) ** 2).sum()
    bounds = recorded_bounds([eager], eager)
    eager.backward()
    for a, p in zip(got, net.parameters()):
        assert_close(a, p.grad.numpy(), bounds.grad_tol(p), "gradient")
    del loss
    gc.collect()
    assert prog() is None


def test_limit_from_environment_and_keyword(monkeypatch):
    monkeypatch.delenv("GRAPHNN_MAX_SPECIALIZATIONS", raising=False)
    assert graphnn.compile(lambda x: x).max_specializations == DEFAULT_MAX_SPECIALIZATIONS == 64
    monkeypatch.setenv("GRAPHNN_MAX_SPECIALIZATIONS", "3")
    assert graphnn.compile(lambda x: x).max_specializations == 3
    assert graphnn.compile(nn.ReLU(), max_specializations=5).max_specializations == 5
    monkeypatch.setenv("GRAPHNN_MAX_SPECIALIZATIONS", "lots")
    with pytest.warns(RuntimeWarning, match="GRAPHNN_MAX_SPECIALIZATIONS"):
        assert graphnn.compile(lambda x: x).max_specializations == 64
    with pytest.raises(ValueError, match="at least 1"):
        graphnn.compile(lambda x: x, max_specializations=0)
    with pytest.raises(TypeError, match="positive int"):
        graphnn.compile(lambda x: x, max_specializations="4")

    @graphnn.compile(max_specializations=2)
    def double(x):
        return x * 2

    for n in range(1, 5):
        _close(double(_t(n, seed=n)), double.fn, _t(n, seed=n))
    assert double.cache.programs == 2
    double.max_specializations = 1
    assert double.cache.programs == 1


def test_eviction_under_threads():
    """Threads with different signatures and a limit below their number: constant eviction, correct results."""
    f = graphnn.compile(lambda x, hc: x * hc[0] - hc[1], max_specializations=2)
    errors = []

    def work(n):
        try:
            for i in range(4):
                x, h, c = _t(n, seed=i), _t(n, seed=i + 1), _t(n, seed=i + 2)
                _close(f(x, (h, c)), f.fn, x, (h, c), what=f"thread {n}, call {i}")
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append((n, e))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert f.cache.programs <= 2


_RSS_SCRIPT = """
    import gc, json, weakref
    import graphnn, graphnn.nn as nn

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2 ** 20

    graphnn.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    cnet = graphnn.compile(net)
    natives, rss = [], []
    with graphnn.no_grad():
        for b in range(1, 101):
            cnet(graphnn.randn(b, 16))
            natives.append(weakref.ref(cnet.last.native))
            if b % 25 == 0:
                gc.collect()
                rss.append(round(rss_mb(), 1))
    gc.collect()
    print(json.dumps({"limit": cnet.max_specializations, "kept": cnet.cache.programs,
                      "alive": sum(r() is not None for r in natives), "rss_mb": rss}))
"""


def test_specializations_stay_bounded_in_a_long_running_process():
    """~100 batch sizes with the default limit, in a fresh process: the specializations kept, and the native code
    alive, stay at the limit (the RSS at every 25 sizes is printed for the record)."""
    env = {k: v for k, v in os.environ.items() if k != "GRAPHNN_MAX_SPECIALIZATIONS"}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_RSS_SCRIPT)], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print("rss", res)
    assert res["limit"] == DEFAULT_MAX_SPECIALIZATIONS
    assert res["kept"] == res["alive"] == DEFAULT_MAX_SPECIALIZATIONS


def test_dataclass_results_of_a_compiled_model_hold_values():
    """A model returning a dataclass (a record of loss and logits; also one that is an OrderedDict, as transformers'
    ModelOutput): the compiled call returns the same class with real tensors, and backward through a field works."""
    import dataclasses
    from collections import OrderedDict

    @dataclasses.dataclass
    class Out:
        loss: graphnn.Tensor
        logits: graphnn.Tensor
        note: str = "ok"

    @dataclasses.dataclass
    class MappingOut(OrderedDict):
        loss: graphnn.Tensor = None
        logits: graphnn.Tensor = None

    lin = nn.Linear(4, 3)
    x = _t(2, 4, seed=1)
    for cls in (Out, MappingOut):
        f = graphnn.compile(lambda x, cls=cls: cls(loss=lin(x).sum(), logits=lin(x)))
        out = f(x)
        assert type(out) is cls and out.logits.shape == (2, 3)
        np.testing.assert_allclose(out.logits.detach().numpy(), lin(x).detach().numpy(), rtol=1e-5, atol=1e-6)
        lin.zero_grad()
        out.loss.backward()
        assert lin.weight.grad is not None and np.isfinite(lin.weight.grad.numpy()).all()
    assert list(out.keys()) == ["loss", "logits"]
