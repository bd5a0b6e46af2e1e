"""Differential fuzzing (graphnn.tools.fuzz): random well-typed graphs must give the same results and gradients
through every pass, compiled, and (smooth graphs) against finite differences; random small models the same
eagerly and under graphnn.compile.

The CI budget is fixed (GRAPH_EXAMPLES graphs of fixed seeds, MODEL_EXAMPLES derandomized hypothesis cases); the long mode is
`python -m graphnn.tools.fuzz --count 10000 --jobs 2`. A failure shows the hypothesis-shrunk graph in IR text
form, further shrunk by delta debugging.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from graphnn.ir import OPS, Graph, IRError, TensorType, verify
from graphnn.tools.fuzz import failure, same_stage, shrink
from graphnn.tools.fuzz_check import Mismatch, check_case
from graphnn.tools.fuzz_gen import DrawSource, FuzzCase, build_case, case_from_seed, covered_ops, skipped_ops

GRAPH_EXAMPLES = 160
GRAPH_BLOCKS = 8
GRAPH_SEED = 7_000_000  # (seeds the fuzz tool's default runs do not start from)
MODEL_EXAMPLES = 24
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def _check(case: FuzzCase, model: bool = False, seed: int | None = None) -> None:
    if seed is None:
        note(case.text())  # (hypothesis shows it with the failure)
    m = failure(case, model)
    if m is not None:
        small = shrink(case, same_stage(m.stage, model))
        where = "" if seed is None else f"seed {seed} (python -m graphnn.tools.fuzz --replay {seed}): "
        raise AssertionError(f"{where}{m}\nshrunk by delta debugging to:\n{small.text()}")


@pytest.mark.parametrize("block", range(GRAPH_BLOCKS))
def test_random_graphs(block):
    """Pass invariants, compiled vs interpreted results and gradients, finite differences on smooth graphs: the
    graphs of fixed seeds, in blocks that the test workers share."""
    per = GRAPH_EXAMPLES // GRAPH_BLOCKS
    for seed in range(GRAPH_SEED + block * per, GRAPH_SEED + (block + 1) * per):
        _check(case_from_seed(seed), seed=seed)


@settings(max_examples=MODEL_EXAMPLES, **SETTINGS)
@given(st.data())
def test_random_models(data):
    """The same graphs as graphnn.nn.Modules: eager vs graphnn.compile (no_grad and training, with backward)."""
    _check(build_case(DrawSource(data), max_ops=8), model=True)


def test_generator_covers_every_op():
    assert covered_ops() == set(OPS) - skipped_ops()


def test_generated_graphs_are_well_typed_and_varied():
    ops, profiles, dtypes = set(), set(), set()
    for seed in range(600):  # (every op appears by seed ~320: the bitwise ops are rare)
        case = case_from_seed(seed)
        verify(case.graph)
        assert all(a.shape == v.shape and a.dtype.name == v.dtype for a, v in zip(case.arrays, case.graph.inputs))
        assert any(v.type.is_float for v in case.graph.outputs)
        ops.update(n.op for n in case.graph.nodes)
        profiles.add(case.profile)
        dtypes.update(v.dtype for v in case.graph.values())
    assert (
        ops == covered_ops() and profiles == {"general", "smooth"} and dtypes == {"float32", "float64", "int64", "bool"}
    )


def test_shrink_reaches_a_minimal_graph():
    """Delta debugging keeps only what the failure needs (here: a sigmoid somewhere in the graph)."""
    seed = next(
        s
        for s in range(200)
        if any(n.op == "sigmoid" for n in case_from_seed(s).graph.nodes) and len(case_from_seed(s).graph.nodes) >= 5
    )
    small = shrink(case_from_seed(seed), lambda c: any(n.op == "sigmoid" for n in c.graph.nodes))
    assert [n.op for n in small.graph.nodes] == ["sigmoid"]
    assert len(small.graph.inputs) == 1 and len(small.arrays) == 1


def test_injected_codegen_bug_is_caught(monkeypatch):
    """A lowering that is off by 0.1% is reported at the 'compiled' stage and shrunk to the one op."""
    import graphnn.codegen.jit as jit
    from graphnn.ir import OPS

    # the patched code must not land in the compile caches under the real code's keys
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", "off")
    monkeypatch.setattr(jit, "codegen_version", lambda: "injected-bug")
    orig = OPS["sigmoid"].scalar
    monkeypatch.setattr(OPS["sigmoid"], "scalar", lambda s, x: s.mul(orig(s, x), s.const(1.001)))
    g = Graph("bug")
    x = g.add_input(TensorType((3, 4), "float64"), "x")
    g.outputs = [g.emit("sum", g.emit("sigmoid", g.emit("exp", x)), axes=(1,), keepdims=False)]
    case = FuzzCase(g, [np.random.default_rng(0).standard_normal((3, 4))])
    with pytest.raises(Mismatch, match=r"\[compiled"):
        check_case(case)
    small = shrink(case, same_stage("compiled"))
    assert [n.op for n in small.graph.nodes] == ["sigmoid"]


def test_injected_gradient_bug_is_caught(monkeypatch):
    """A wrong gradient rule is invisible to compiled-vs-interpreted checks but not to finite differences."""
    monkeypatch.setattr(OPS["tanh"], "grad", lambda b, n, ct: [b.mul(ct[0], n.outputs[0])])
    g = Graph("bug")
    x = g.add_input(TensorType((2, 3), "float64"), "x")
    g.outputs = [g.emit("tanh", x)]
    with pytest.raises(Mismatch, match="finite differences"):
        check_case(FuzzCase(g, [np.random.default_rng(1).standard_normal((2, 3))], "smooth"))


def test_tools_entry_point_counts_and_replays():
    env = dict(os.environ)
    run = [sys.executable, "-m", "graphnn.tools.fuzz"]
    out = subprocess.run(run + ["--count", "6", "--seed", "3"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6 graphs, 0 mismatches" in out.stdout
    out = subprocess.run(run + ["--replay", "4"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and "graph fuzz(" in out.stdout and "graph seed 4: ok" in out.stdout


def test_a_worker_that_dies_is_reported_against_its_seed(tmp_path, monkeypatch):
    """--jobs N: a worker process killed by a signal while checking a seed is reported for that seed, and the rest
    of its chunk is checked by a new worker (the run neither hangs nor loses seeds)."""
    from graphnn.tools import fuzz

    real = sys.executable
    wrapper = tmp_path / "python"
    wrapper.write_text(f"""#!{real}
import os, signal, sys
args = sys.argv[1:]
if "--worker" in args:
    seeds = args[args.index("--worker") + 1].split(",")
    if "5" in seeds:  # check the seeds before 5, then die while checking 5
        from graphnn.tools.fuzz import _run_worker
        _run_worker([int(s) for s in seeds[:seeds.index("5")]], 12)
        os.kill(os.getpid(), signal.SIGSEGV)
os.execv({real!r}, [{real!r}] + args)
""")
    wrapper.chmod(0o755)
    monkeypatch.setattr(fuzz, "CHUNK", 4)
    monkeypatch.setattr(sys, "executable", str(wrapper))
    results = dict(fuzz._results([(s, 12) for s in range(10)], jobs=2))
    assert sorted(results) == list(range(10))
    assert "died" in results[5] and "signal 11" in results[5]
    assert all(results[s] is None for s in range(10) if s != 5)


# -- minimal graphs of bugs the fuzzer found (each now passes every check) -------------------------------------------
def _case(build, *arrays, profile="general") -> FuzzCase:
    g = Graph("regression")
    ins = [g.add_input(TensorType(a.shape, a.dtype.name), f"x{i}") for i, a in enumerate(arrays)]
    g.outputs = [build(g, *ins)]
    return FuzzCase(g, list(arrays), profile)


def _select_shared(g, x, c):
    y = g.emit("neg", g.emit("reshape", g.emit("tanh", x), shape=(4, 3, 3)))
    return g.emit("select", c, g.emit("broadcast_to", y, shape=(2, 4, 3, 3)), y)


REGRESSIONS = {
    # the pow gradient took log() of / subtracted 1 from int64 and bool operands
    "pow_int_base": lambda: _case(
        lambda g, x, y: g.emit("pow", x, y), np.array([[1, 2, 3]]), np.array([0.5, 1.5, -2.0])
    ),
    "pow_bool_exponent": lambda: _case(
        lambda g, x, y: g.emit("pow", x, y), np.array([1.5, 2.0], np.float32), np.array([True, False])
    ),
    # NumPy computes x ** 0.5 with sqrt for a broadcast exponent (NaN at -inf); compiled code uses pow (inf)
    "pow_scalar_half_at_minus_inf": lambda: _case(
        lambda g, x: g.emit("pow", x, g.emit("full", value=0.5, shape=(), dtype="float32")),
        np.array([-np.inf, 4.0, 0.25], np.float32),
    ),
    # max_pool_grad's reference kernel failed on an empty channel axis
    "max_pool_grad_empty": lambda: _case(
        lambda g, x, dy: g.emit(
            "max_pool_grad", x, dy, kernel=(3, 1), stride=(3, 2), padding=(1, 0), dilation=(1, 1), ceil_mode=False
        ),
        np.zeros((1, 0, 1, 3), np.float32),
        np.zeros((1, 0, 1, 2), np.float32),
    ),
    # conv_to_gemm divided by the channel count, which may be 0
    "conv_grad_weight_no_channels": lambda: _case(
        lambda g, x, dy: g.emit(
            "conv_grad_weight", x, dy, stride=(2,), padding=((0, 1),), dilation=(1,), groups=1, weight_shape=(2, 0, 1)
        ),
        np.zeros((0, 0, 1)),
        np.zeros((0, 2, 1)),
    ),
    # float -> int64 casts of Inf compiled to an undefined value (now INT64_MIN, as NumPy on x86)
    "cast_inf_to_int": lambda: _case(
        lambda g, x, y: g.emit("gt", y, g.emit("cast", x, dtype="int64")),
        np.array([np.inf, -np.inf, np.nan, 2.5]),
        np.array([0.5, 0.5, 0.5, 0.5]),
    ),
    # in the gradient graph, two sums read through one reshape in one kernel: the reshape's index was derived
    # inside the first sum's loop and reused by the second (invalid LLVM IR: "does not dominate all uses")
    "two_reductions_behind_a_reshape": lambda: _case(
        _select_shared,
        np.random.default_rng(0).standard_normal((2, 3, 6)).astype(np.float32),
        np.random.default_rng(1).random((4, 3, 3)) < 0.5,
    ),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_fuzzer_regressions(name):
    check_case(REGRESSIONS[name](), model=True)


@pytest.mark.parametrize(
    "op, x, dtype, ok",
    [
        ("atanh", [0.5, 6.0], "float32", False),  # 1 - tanh(6) = 1.2e-5 < 100 * tanh's bound (about 5e-7)
        ("atanh", [0.5, 4.0], "float32", True),  # 1 - tanh(4) = 6.7e-4
        ("atanh", [0.5, 6.0], "float64", True),  # float64's bound is about 1e-15
        ("asin", [-6.0, 0.5], "float32", False),
        ("erfinv", [-6.0, 0.5], "float32", False),
        ("acosh", [6.0, 0.5], "float32", False),  # (NaN below 1: only its singular point 1 counts)
    ],
)
def test_inexact_operands_keep_away_from_singular_points_by_their_error_bound(op, x, dtype, ok):
    """Seed 1009506: atanh(tanh(y)) with NumPy's float32 tanh(y) = 1 - 6e-8 and compiled code's = 1 (1 ulp, within
    the bound; the exact value rounds to 1): atanh's gradient was 0 / 0 = NaN in compiled code only. The builder
    keeps an inexact operand of a singular op farther than SINGULAR_MARGIN times its rounding-error bound from the
    op's singular points; an exact operand (computed alike everywhere) may be as close as it likes."""
    from graphnn.tools.fuzz_builder import Builder, RngSource

    b = Builder(RngSource(0), "general", 0)
    y = b.new_input((2,), dtype)
    b.env[y.id] = np.array(x, dtype)
    assert (b.add(op, [b.add("tanh", [y], {})], {}) is not None) == ok
    near = b.new_input((2,), dtype)  # an input at the singular point's neighbour: exact, accepted
    b.env[near.id] = np.nextafter(np.array([1.0, 1.0], dtype), 0 if op != "acosh" else 2)
    assert b.add(op, [near], {}) is not None


def test_max_and_argmax_of_an_empty_axis_are_rejected_by_the_type_rule():
    """(The reference kernels failed on them after the type rule had accepted them.)"""

    g = Graph()
    x = g.add_input(TensorType((1, 0), "int64"), "x")
    for op, attrs in (("argmax", {"axis": 1}), ("max", {"axes": (1,)}), ("max", {"axes": None})):
        with pytest.raises(IRError, match="cannot reduce axis 1 of size 0"):
            g.emit(op, x, **attrs)
    assert g.emit("max", x, axes=(0,)).shape == (0,)
