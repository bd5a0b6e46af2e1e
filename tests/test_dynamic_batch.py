"""One compiled program for every batch size: symbolic sizes and their guards (ir/symbolic.py), the unification of
two traces (ir/unify.py), the symbolic arena plan (ir/memory.py) and graphnn.compile reusing dynamic code
(codegen/dynamic.py) with the results of code compiled for each size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from graphnn.codegen import CompiledGraph, dynamic
from graphnn.codegen import jit
from graphnn.ir.memory import ALIGN, plan_memory
from graphnn.ir.symbolic import Guards, Sym, SymbolicDecision, guarded, heuristic
from graphnn.ir.unify import size_of, unify

REP = 40
N = Sym.var(REP)
EXPRS = {
    "N": N,
    "3N+5": 3 * N + 5,
    "2N-7": 2 * N - 7,
    "N*N": N * N,
    "N//3": N // 3,
    "(5N+2)//4": (5 * N + 2) // 4,
    "7": 7,
}
OPS = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "//4": lambda x, y: x // 4,
    "%6": lambda x, y: x % 6,
    "//y": lambda x, y: x // y if (y if isinstance(y, int) else y.value) > 0 else 0,
    "%y": lambda x, y: x % y if (y if isinstance(y, int) else y.value) > 0 else 0,
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    "==": lambda x, y: x == y,
    "!=": lambda x, y: x != y,
    "max": lambda x, y: max(x, y),
    "bool": lambda x, y: bool(x),
    "int": lambda x, y: int(x),
    "neg": lambda x, y: -x,
    "ceil/4": lambda x, y: -(-x // 4),
}


def _at(x, n):
    return x.at(n) if isinstance(x, Sym) else x


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_result_is_right_wherever_its_guards_hold(op):
    """Symbolic arithmetic and decisions against plain integers at every N in 2..299: where the recorded guards
    hold, the symbolic result evaluates to the integer result (and at the representative they hold)."""
    f = OPS[op]
    for (na, a), (nb, b) in itertools.product(EXPRS.items(), repeat=2):
        with guarded(REP) as guards:
            r = f(a, b)
        assert guards.hold(REP) or op in ("==", "!=")  # equalities answer as at a generic N (see _compare)
        for n in range(2, 300):
            if guards.hold(n):
                assert _at(r, n) == f(_at(a, n), _at(b, n)), (na, op, nb, n, r, guards)


def test_decisions_outside_a_guarded_compile_are_errors():
    with pytest.raises(SymbolicDecision):
        N < 100
    with pytest.raises(SymbolicDecision):
        int(N)
    assert 8 * N != 7 * N  # decided symbolically: no guard needed
    assert N >= 2 and 3 * N + 1 > 0  # N is at least 2


def test_heuristic_decisions_record_nothing():
    with guarded(REP) as guards:
        with heuristic():
            assert N < 100
        assert N > 10
    assert guards.hold(5000) and guards.hold(11) and not guards.hold(10)  # only N > 10, not N < 100


def test_guards_survive_json():
    with guarded(REP) as guards:
        _ = N % 8, N < 64, (3 * N) // 7 >= 2
    again = Guards.from_json(REP, guards.to_json())
    assert [again.hold(n) for n in range(2, 100)] == [guards.hold(n) for n in range(2, 100)]
    with pytest.raises(ValueError):
        Guards.from_json(REP, [[[1, "x"], 1, "<"]])


def test_symbolic_arena_plan_is_valid_at_every_size():
    rng = np.random.default_rng(0)
    buffers = []
    for i in range(60):
        size = int(rng.integers(1, 5000))
        if i % 3:
            size = Sym((int(rng.integers(0, 300)), int(rng.integers(1, 3000))), REP)
        first = int(rng.integers(0, 30))
        buffers.append((i, size, first, first + int(rng.integers(0, 8))))
    plan = plan_memory(buffers, {})  # no guarded() block: the plan takes no decision on N
    for n in (2, 3, 17, 40, 1000, 10**6):
        size = _at(plan.size, n)
        spans = []
        for vid, nbytes, first, last in buffers:
            off, nb = _at(plan.offsets[vid], n), _at(nbytes, n)
            assert off % ALIGN == 0 and off + nb <= size
            spans.append((off, off + nb, first, last))
        for (o1, e1, f1, l1), (o2, e2, f2, l2) in itertools.combinations(spans, 2):
            if not (l1 < f2 or l2 < f1):
                assert e1 <= o2 or e2 <= o1


# -- graphs of a compiled training step ----------------------------------------------------------------------


def _mlp_step(seed: int = 0):
    graphnn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 5))
    opt = graphnn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, step


def _batch(n: int, seed: int):
    r = np.random.default_rng(seed)
    return graphnn.tensor(r.standard_normal((n, 20)).astype(np.float32)), graphnn.tensor(r.integers(0, 5, n))


def _lowered(sizes):
    _, step = _mlp_step()
    cstep = graphnn.compile(step)
    graphs = {}
    for n in sizes:
        cstep(*_batch(n, n))
        graphs[n] = cstep.graphs["lowered"]
    return graphs


def test_unify_fits_sizes_and_checks_a_third_trace(monkeypatch):
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "0")
    g = _lowered([24, 24, 17, 9])  # the first call creates the momentum buffers: a different graph
    sym = unify(g[24], g[17])
    assert sym is not None and sym.meta["dynamic"] == 17
    assert sym.inputs[0].shape == (N, 20) and sym.inputs[1].shape[0] == N
    assert size_of(sym, g[9]) == 9 and size_of(sym, g[24]) == 24
    assert "f32[N,32]" in sym.to_text()
    assert unify(g[24], g[24]) is None  # no size differs
    first_call = _lowered([24])[24]  # the step that creates the momentum buffers: another graph
    assert size_of(sym, first_call) is None and unify(first_call, g[17]) is None


def _train(sizes, monkeypatch, dynamic_on: bool):
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1" if dynamic_on else "0")
    dynamic.clear()
    model, step = _mlp_step()
    cstep = graphnn.compile(step)
    losses = [cstep(*_batch(n, i)).item() for i, n in enumerate(sizes)]
    return losses, [p.detach().numpy().copy() for p in model.parameters()], cstep


SIZES = [24, 24, 17, 9, 31, 24, 17, 2, 60]


def test_a_compiled_step_serves_every_batch_size_with_one_program(monkeypatch):
    before = dict(dynamic.STATS)
    losses, params, cstep = _train(SIZES, monkeypatch, True)
    compiled = dynamic.STATS["dynamic_compiled"] - before["dynamic_compiled"]
    reused = dynamic.STATS["dynamic_reused"] - before["dynamic_reused"]
    assert compiled == 1 and reused >= 3  # 9, 31, 2, 60 (and no compile for them)
    ref_losses, ref_params, _ = _train(SIZES, monkeypatch, False)
    # Same kernels up to tile shapes: products over k <= 60 may sum in another order (~k ulp of the magnitudes).
    np.testing.assert_allclose(losses, ref_losses, rtol=64 * 2**-23)
    for p, q in zip(params, ref_params):
        np.testing.assert_allclose(p, q, rtol=0, atol=64 * 2**-23 * max(1.0, float(np.abs(q).max())))


def test_dynamic_code_comes_back_from_the_compile_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "0")
    g = _lowered([24, 24, 17, 9])
    sym = unify(g[24], g[17])
    r = np.random.default_rng(3)
    feeds = []
    for v in g[9].inputs:
        if v.dtype == "int64":
            feeds.append(r.integers(0, 5, v.shape))
        else:
            feeds.append(r.standard_normal(v.shape).astype(v.dtype))
    first = CompiledGraph(sym)
    guards = repr(first.guards)
    a = first.sized(9, g[9])([f.copy() for f in feeds])
    del first
    compiled = jit.STATS["compiled"]
    again = CompiledGraph(sym)  # its layout and guards come back through the cache record (Layout.from_json)
    assert jit.STATS["compiled"] == compiled
    assert repr(again.guards) == guards
    b = again.sized(9, g[9])([f.copy() for f in feeds])
    c = CompiledGraph(g[9])([f.copy() for f in feeds])
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(x, z, rtol=64 * 2**-23, atol=64 * 2**-23 * max(1.0, float(np.abs(z).max())))


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc(graphnn.flatten(x, 1))


def test_a_compiled_conv_model_runs_every_batch_size_like_eager(monkeypatch):
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()
    graphnn.manual_seed(1)
    net = _ConvNet().eval()
    cnet = graphnn.compile(net)
    before = dict(dynamic.STATS)
    r = np.random.default_rng(0)
    for n in (8, 8, 5, 13, 3, 6, 8, 21):  # (3 = the output width: a size the code leaves out)
        x = graphnn.tensor(r.standard_normal((n, 2, 8, 8)).astype(np.float32))
        with graphnn.no_grad():
            got, want = cnet(x).numpy(), net(x).numpy()
        # sums of 18 (conv) and 64 (linear) products: a few ulp of the largest terms
        np.testing.assert_allclose(got, want, rtol=0, atol=128 * 2**-23 * max(1.0, float(np.abs(want).max())))
    assert dynamic.STATS["dynamic_compiled"] - before["dynamic_compiled"] == 1
    assert dynamic.STATS["dynamic_reused"] - before["dynamic_reused"] >= 3


def test_dynamic_off_compiles_each_size(monkeypatch):
    before = dict(dynamic.STATS)
    _train([24, 24, 17, 9], monkeypatch, False)
    assert dynamic.STATS == before


# -- a zoo of small training steps: one dynamic program each, results as eager --------------------------------


class _LastStep(nn.Module):
    """An LSTM over the sequence, a linear head on its last output (a scan in the compiled graph)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 8, batch_first=True)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


ZOO = {
    "lstm": (_LastStep, (5, 4), "ce"),
    "cnn_batchnorm": (
        lambda: nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 4),
        ),
        (3, 12, 12),
        "ce",
    ),
    "conv_transpose": (
        lambda: nn.Sequential(
            nn.ConvTranspose2d(3, 4, 3, stride=2), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 12 * 12, 4)
        ),
        (3, 12, 12),
        "ce",
    ),
    "conv1d_groupnorm": (
        lambda: nn.Sequential(nn.Conv1d(4, 8, 3), nn.GroupNorm(2, 8), nn.GELU(), nn.Flatten(), nn.Linear(8 * 14, 4)),
        (4, 16),
        "ce",
    ),
    "layernorm_bce": (
        lambda: nn.Sequential(nn.Linear(10, 32), nn.LayerNorm(32), nn.SiLU(), nn.Linear(32, 1)),
        (10,),
        "bce",
    ),
    "transformer_layer": (
        lambda: nn.Sequential(
            nn.Embedding(20, 16),
            nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True),
            nn.Flatten(),
            nn.Linear(16 * 6, 4),
        ),
        (6,),
        "tokens",
    ),
    "mse_mean": (lambda: nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 3)), (10,), "mse"),
    # (a weight gradient over N*H*W with more than 64 rows: the blocked GEMM's k symbolic in N)
    "pointwise_conv": (
        lambda: nn.Sequential(nn.Conv2d(72, 16, 1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 16, 4)),
        (72, 4, 4),
        "ce",
    ),
}


def _zoo_run(name: str, sizes: list, compiled: bool):
    make, shape, kind = ZOO[name]
    graphnn.manual_seed(0)
    model = make()
    opt = graphnn.optim.SGD(model.parameters(), lr=0.01)

    def step(x, y):
        opt.zero_grad()
        out = model(x)
        if kind == "bce":
            loss = F.binary_cross_entropy_with_logits(out.squeeze(1), y.float())
        elif kind == "mse":
            loss = F.mse_loss(out, y)
        else:
            loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return loss

    run = graphnn.compile(step) if compiled else step
    r = np.random.default_rng(0)
    losses = []
    for n in sizes:
        if kind == "tokens":
            x = graphnn.tensor(r.integers(0, 20, (n,) + shape))
        else:
            x = graphnn.tensor(r.standard_normal((n,) + shape).astype(np.float32))
        if kind == "mse":
            y = graphnn.tensor(r.standard_normal((n, 3)).astype(np.float32))
        else:
            y = graphnn.tensor(r.integers(0, 2 if kind == "bce" else 4, n))
        losses.append(run(x, y).item())
    return np.array(losses), [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_training_steps_of_many_layers_run_every_batch_size_from_one_program(name, monkeypatch):
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()
    sizes = [16, 16, 12, 9, 7, 16]
    before = dict(dynamic.STATS)
    losses, params = _zoo_run(name, sizes, compiled=True)
    assert dynamic.STATS["dynamic_compiled"] - before["dynamic_compiled"] == 1
    assert dynamic.STATS["dynamic_reused"] - before["dynamic_reused"] == 2  # 9 and 7: traced, never compiled
    want_losses, want_params = _zoo_run(name, sizes, compiled=False)
    # float32 sums of at most a few hundred terms per step, six steps: well inside 2**-12 of the magnitudes
    np.testing.assert_allclose(losses, want_losses, rtol=2**-12)
    for p, q in zip(params, want_params):
        np.testing.assert_allclose(p, q, rtol=0, atol=2**-12 * max(1.0, float(np.abs(q).max())))


def test_compile_dynamic_false_compiles_each_size(monkeypatch):
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()
    _, step = _mlp_step()
    cstep = graphnn.compile(step, dynamic=False)
    before = dict(dynamic.STATS)
    for n in (24, 24, 17, 9):
        cstep(*_batch(n, n))
    assert dynamic.STATS == before
    assert len(cstep.cache) == 3  # the momentum-creating first step, 17, 9 (24's second call: same signature)


def test_threads_calling_one_dynamic_program_at_different_sizes(monkeypatch):
    """Calls with different N take turns on the module's N (each with its own arena): every result is right."""
    import threading

    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()
    graphnn.manual_seed(2)
    net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5)).eval()
    f = graphnn.compile(lambda x: net(x).softmax(-1))
    r = np.random.default_rng(1)
    xs = {n: graphnn.tensor(r.standard_normal((n, 20)).astype(np.float32)) for n in (32, 24, 11, 13, 40)}
    before = dynamic.STATS["dynamic_reused"]
    with graphnn.no_grad():
        want = {n: net(x).softmax(-1).numpy() for n, x in xs.items()}
        for n in (32, 24, 11, 13, 40):  # the dynamic program, and each size traced once
            f(xs[n])
    assert dynamic.STATS["dynamic_reused"] - before == 3
    errors = []

    def work(n):
        try:
            for _ in range(200):
                with graphnn.no_grad():
                    got = f(xs[n]).numpy()
                np.testing.assert_allclose(got, want[n], rtol=0, atol=2**-16)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in (11, 13, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


@pytest.mark.parametrize("cols", ["fixed", "symbolic"])
def test_weight_gradient_products_over_a_symbolic_k(cols):
    """A^T @ B with k = N (a weight gradient over the batch): long k runs in slices counted at run time, also for
    a ragged last column panel and columns symbolic in N; every element within the rounding bound of its sum."""
    from graphnn.ir import Graph, TensorType

    def graph_at(n):
        g = Graph("wgrad")
        x = g.add_input(TensorType((n, 260), "float32"), "x")
        w = g.add_input(TensorType((n, 40 if cols == "fixed" else 3 * n), "float32"), "w")
        g.outputs = [g.emit("matmul", g.emit("transpose", x, perm=(1, 0)), w)]
        return g

    code = CompiledGraph(unify(graph_at(520), graph_at(523)))
    r = np.random.default_rng(0)
    for n in (523, 520, 527, 100, 30, 1100):
        g = graph_at(n)
        a, w = (r.standard_normal(v.shape).astype(np.float32) for v in g.inputs)
        got = code.sized(n, g)([a, w])[0]
        exact = a.astype(np.float64).T @ w.astype(np.float64)
        bound = n * 2**-24 * (np.abs(a).T.astype(np.float64) @ np.abs(w).astype(np.float64))
        assert np.all(np.abs(got - exact) <= bound), n


def test_memory_does_not_grow_with_the_sizes_run(monkeypatch):
    """The programs of many batch sizes share the dynamic code's arena and its size-independent buffers, and none
    keeps the gradients it saw while tracing alive."""
    import weakref

    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()
    model, step = _mlp_step()
    cstep = graphnn.compile(step)
    cstep(*_batch(24, 0))
    cstep(*_batch(24, 1))
    cstep(*_batch(17, 2))  # the dynamic program
    seen = []
    for n in range(5, 15):
        cstep(*_batch(n, n))
        seen.append(weakref.ref(next(model.parameters()).grad._data))
    assert sum(r() is not None for r in seen) <= 2  # not one per size (the current .grad, and one kept for reuse)
    views = [p.native for p in (cstep.cache.find(k) for k in cstep.cache.keys()) if p is not None]
    views = [v for v in views if v.guards is not None]
    assert len(views) >= 10
    arenas = {id(v._local.arena) for v in views if getattr(v._local, "arena", None) is not None}
    assert len(arenas) <= 2  # (a view last run before the arena grew points at the old one until it runs again)
    assert len({id(v._local.wb[j]) for v in views for j in v._local.wb}) == len(views[0]._local.wb)


def test_symbolic_types_are_not_shared_between_representatives():
    """A TensorType over Syms is not interned: each carries the representative N its code is generated for."""
    from graphnn.ir.types import TensorType

    a, b = TensorType((Sym.var(8) * 4, 3), "float32"), TensorType((Sym.var(40) * 4, 3), "float32")
    assert a.shape[0].value == 32 and b.shape[0].value == 160


def test_guards_that_pin_n_are_recognized():
    with guarded(REP) as guards:
        _ = N < 100
    assert not guards.pinned()
    with guarded(REP) as guards:
        _ = int(N * 3)  # (a Python range over a size): valid at N = 40 only
    assert guards.pinned() and guards.hold(REP) and not guards.hold(REP + 1)


def test_a_generation_loop_whose_context_grows_runs_one_program(monkeypatch):
    """A compiled next-token function of a small GPT called with contexts of 1, 2, 3, ... tokens (the sequence
    length is the symbol: its attention's key blocks and query tiles are counted at run time): one dynamic
    program serves every length from the third on, with the tokens and logits of the eager model."""
    from graphnn.tools.gpt import GPTSpec, gpt_class

    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    monkeypatch.setenv("GRAPHNN_EAGER_NATIVE", "0")  # (the eager reference model's GELU: not counted below)
    dynamic.clear()
    graphnn.manual_seed(0)
    spec = GPTSpec(block_size=24, n_layer=2, n_head=2, n_embd=32, vocab_size=50)
    model = gpt_class(graphnn)(spec).eval()
    last_logits = graphnn.compile(lambda idx: model(idx)[:, -1, :])
    before = dict(dynamic.STATS)
    ctx = np.zeros((2, 1), dtype=np.int64)
    with graphnn.no_grad():
        for t in range(1, 14):
            got = last_logits(graphnn.tensor(ctx)).numpy()
            want = model(graphnn.tensor(ctx))[:, -1, :].numpy()
            # one sum per score over n_embd / n_head products, then a softmax over t of them: a few ulp of 1
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, float(np.abs(want).max())))
            ctx = np.concatenate([ctx, np.argmax(want, axis=-1)[:, None]], axis=1)
    assert dynamic.STATS["dynamic_compiled"] - before["dynamic_compiled"] == 1
    assert dynamic.STATS["dynamic_reused"] - before["dynamic_reused"] >= 9


def test_polynomial_divisors_divide_without_guards():
    """16N+16 / (2N+2) is 8 at every N: no guard (a view's check of it once pinned each KV-cache length)."""
    a, b = Sym((16, 16), REP), Sym((2, 2), REP)
    with guarded(REP) as guards:
        assert a % b == 0 and a // b == 8 and (Sym((3, 4, 1), REP) // Sym((1, 1), REP)).coefs == (3, 1)
    assert guards.items == []
    assert Sym((1, 2), REP)._exact_quotient(Sym((1, 1), REP)) is None  # (2N+1) / (N+1) is not a polynomial


@pytest.mark.parametrize("repeat", ["repeat_interleave", "expand"])
def test_a_kv_cache_repeated_over_heads_runs_one_program(monkeypatch, repeat):
    """Grouped-query attention over a growing key cache: the cached keys repeated over query heads (repeat_interleave,
    or expand + reshape: a strided view whose check divides symbolic sizes) are one dynamic program for every
    length from the third on, with the eager results."""
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()

    def step(q, cache, new):
        k = graphnn.cat([cache, new], dim=2)
        if repeat == "expand":
            b, h, t, d = k.shape
            kk = k[:, :, None].expand(b, h, 2, t, d).reshape(b, h * 2, t, d)
        else:
            kk = graphnn.repeat_interleave(k, 2, dim=1)
        return F.scaled_dot_product_attention(q, kk, kk), k

    compiled = graphnn.compile(step)
    graphnn.manual_seed(0)
    cache = graphnn.randn(1, 2, 3, 8)
    before = dict(dynamic.STATS)
    for _ in range(7):
        q, new = graphnn.randn(1, 4, 1, 8), graphnn.randn(1, 2, 1, 8)
        got, nxt = compiled(q, cache, new)
        want, _ = step(q, cache, new)
        # a softmax over at most 10 scores of 8 products each: a few ulp of the values' magnitude
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-5)
        cache = nxt
    assert dynamic.STATS["dynamic_compiled"] - before["dynamic_compiled"] == 1
    assert dynamic.STATS["dynamic_reused"] - before["dynamic_reused"] >= 4


def test_a_growing_cache_read_by_the_row_schedule_runs_one_program(monkeypatch):
    """A decode step whose key cache grows by one position per call: its (1 x T) score products run the row
    schedule, whose scratch width was min(T, 256) and pinned T (every length compiled anew)."""
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()
    graphnn.manual_seed(0)
    w = graphnn.randn(8, 8)

    def step(x, k):
        k = graphnn.cat([k, x @ w], dim=1)
        att = (x @ k.transpose(1, 2)).softmax(-1)
        return att @ k, k

    compiled = graphnn.compile(step)
    x, k = graphnn.randn(2, 1, 8), graphnn.randn(2, 3, 8)
    before = dict(dynamic.STATS)
    for _ in range(8):
        (got, nk), (want, _) = compiled(x, k), step(x, k)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)  # (sums of a few products)
        x, k = got, nk
    assert dynamic.STATS["dynamic_compiled"] - before["dynamic_compiled"] == 1
    assert dynamic.STATS["dynamic_reused"] - before["dynamic_reused"] >= 5


def test_a_training_step_over_sequence_lengths_runs_one_program(monkeypatch):
    """Dynamic padding: a language model's step over batches of several lengths, with `logits[:, :-1]` (buffers of
    floor((800 S - 9537) / 64)-like sizes, which the arena planner multiplied and so pinned S) is one program."""
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()
    graphnn.manual_seed(0)
    emb, head = nn.Embedding(50, 16), nn.Linear(16, 50)
    opt = graphnn.optim.SGD(list(emb.parameters()) + list(head.parameters()), lr=0.1)

    def step(ids):
        logits = head(emb(ids))
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, 50), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.detach()

    compiled = graphnn.compile(step)
    before = dict(dynamic.STATS)
    for s in (8, 12, 9, 14, 10, 16, 11):
        compiled(graphnn.randint(0, 50, (4, s)))
    assert dynamic.STATS["dynamic_compiled"] - before["dynamic_compiled"] <= 2
    assert dynamic.STATS["dynamic_reused"] - before["dynamic_reused"] >= 4


def test_memory_bound_of_a_size_that_is_not_a_polynomial():
    from graphnn.ir.memory import _bound

    n = Sym((-9537, 800), REP, 64)  # floor((800 N - 9537) / 64)
    b = _bound(n)
    assert b.den == 1 and all(c >= 0 for c in b.coefs)
    assert all(b.at(x) >= n.at(x) for x in range(2, 500))
