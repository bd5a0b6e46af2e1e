"""Big graphs are compiled as two LLVM modules, the second in a forked helper process; the result is the same
code as one module, a failing helper falls back to compiling in-process, and the graph cache reloads both; the
modules are balanced by their loops (what LLVM's time follows), not only their length."""

import os
import subprocess
import sys

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph, jit
from graphnn.codegen.module import build_module
from graphnn.codegen.runtime import PARALLEL_MIN_GROUPS
from graphnn.ir import Graph, TensorType, interpret
from tolerance import assert_close, graph_tolerance

pytestmark = pytest.mark.skipif(not jit.can_fork_compile(), reason="parallel compilation needs fork and 2 CPUs")


@pytest.fixture(autouse=True)
def _parallel_compile_on(monkeypatch):
    """On, whatever the test run chose for the rest of the suite (tests/conftest.py), also for subprocesses."""
    monkeypatch.setenv("GRAPHNN_PARALLEL_COMPILE", "1")
    assert jit.parallel_compile()


def _chain(n_kernels: int, tag: float) -> Graph:
    """A graph of many kernels: each step is a row sum (a reduction ends a kernel) broadcast back."""
    g = Graph("chain")
    x = g.add_input(TensorType((8, 33), "float32"), "x")
    v = x
    for i in range(n_kernels):
        s = g.emit("sum", g.emit("tanh", v), axes=(1,), keepdims=True)
        v = g.emit("add", g.emit("mul", v, g.emit("full", shape=(), dtype="float32", value=tag + i / 64)), s)
    g.outputs = [v]
    return g


def test_two_modules_match_the_interpreter(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = _chain(PARALLEL_MIN_GROUPS, 0.25)
    texts, _, _ = build_module(g, "e", None, 2)
    assert len(texts) == 2 and all("define" in t for t in texts)
    from graphnn.codegen.pool import pool_address

    pool_address()  # compiled once per process: not part of this count
    before = jit.STATS["compiled"]
    compiled = CompiledGraph(g)
    assert jit.STATS["compiled"] - before == 2  # both modules compiled (one by the helper)
    assert compiled.ir_text.count('define void @"graphnn_entry"(') == 1
    assert compiled.ir_text.count("; ModuleID") == 2
    x = np.random.default_rng(0).standard_normal((8, 33)).astype(np.float32)
    assert_close(compiled([x])[0], interpret(g, [x])[0], graph_tolerance(g, [x])[0], "output")


def test_failing_helper_falls_back_to_this_process(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    parent = os.getpid()
    real = jit._emit

    def emit_only_here(text):
        if os.getpid() != parent:
            raise RuntimeError("helper fails")
        return real(text)

    monkeypatch.setattr(jit, "_emit", emit_only_here)
    g = _chain(PARALLEL_MIN_GROUPS, 0.5)
    compiled = CompiledGraph(g)
    x = np.random.default_rng(1).standard_normal((8, 33)).astype(np.float32)
    assert_close(compiled([x])[0], interpret(g, [x])[0], graph_tolerance(g, [x])[0], "output")


def test_graph_cache_reloads_both_objects_in_a_new_process(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "sys.path.insert(0, %r)\n"
        "from test_parallel_compile import _chain\n"
        "from graphnn.codegen import CompiledGraph, jit\n"
        "from graphnn.ir import interpret\n"
        "from tolerance import assert_close, graph_tolerance\n"
        "g = _chain(30, 0.75)\n"
        "c = CompiledGraph(g)\n"
        "x = np.ones((8, 33), np.float32)\n"
        "assert_close(c([x])[0], interpret(g, [x])[0], graph_tolerance(g, [x])[0], 'output')\n"
        "print(jit.STATS['compiled'], jit.STATS['disk_hits'])\n"
    ) % os.path.dirname(__file__)
    env = dict(os.environ, GRAPHNN_CACHE_DIR=str(tmp_path))
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    cold, warm = (tuple(map(int, r.stdout.split()[-2:])) for r in runs)
    # both graph modules were compiled, this process's and the helper's; the helper also compiled the worker
    # pool's module (needed next) into the disk cache, where this process then found it
    assert cold == (2, 1)
    assert warm == (0, 2)  # the pool module's object and the graph's two objects came from disk


def test_a_loop_weighs_more_than_straight_code():
    """The balance of the two modules counts loops (what LLVM's time follows), not only instructions."""
    import llvmlite.ir as ir

    from graphnn.codegen.kernel import I64, emit_loop
    from graphnn.codegen.module import _llvm_cost

    m = ir.Module()
    straight = ir.Function(m, ir.FunctionType(I64, [I64]), "straight")
    b = ir.IRBuilder(straight.append_basic_block())
    v = straight.args[0]
    for i in range(60):
        v = b.add(v, ir.Constant(I64, i))
    b.ret(v)
    looped = ir.Function(m, ir.FunctionType(ir.VoidType(), [I64]), "looped")
    b = ir.IRBuilder(looped.append_basic_block())
    emit_loop(looped, b, looped.args[0], lambda i: None)
    b.ret_void()
    assert sum(len(bb.instructions) for bb in looped.blocks) < 10
    assert _llvm_cost(looped) > _llvm_cost(straight) > 60
