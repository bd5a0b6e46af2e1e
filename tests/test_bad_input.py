"""Bad input from the public API: every case runs as a script in a fresh interpreter (a crash would kill only
that process) and must end with a clean Python exception (exit code 1, never a signal) whose message names
the op, the shapes and the script's own source line (marked `# <- line` below), or run to completion (exit 0)
where the input is legal. README.md's "Reliability" table lists these cases.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Gradient)): (.*)$")


def run_script(tmp_path, code: str) -> tuple:
    """(completed process, 1-based number of the line marked '# <- line' or None)."""
    code = textwrap.dedent(code).strip() + "\n"
    path = tmp_path / "case.py"
    path.write_text(code)
    marked = [i + 1 for i, line in enumerate(code.splitlines()) if line.rstrip().endswith("# <- line")]
    path_ = os.pathsep.join([ROOT, os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH", "")])  # + tolerance.py
    env = dict(os.environ, PYTHONPATH=path_)
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    return proc, (marked[0] if marked else None)


def raised(proc) -> tuple:
    """(exception class name, full message) of the traceback that ended the process."""
    lines = proc.stderr.rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        m = EXC_LINE.match(lines[i])
        if m:
            return m.group(1).rsplit(".", 1)[-1], "\n".join([m.group(2)] + lines[i + 1 :])
    raise AssertionError(f"no exception at the end of stderr:\n{proc.stderr}")


def expect_error(tmp_path, code: str, exc: str, *patterns: str) -> str:
    proc, line = run_script(tmp_path, code)
    assert proc.returncode == 1, f"exit code {proc.returncode} (a negative code is a signal)\n{proc.stderr}"
    name, msg = raised(proc)
    assert name == exc, f"{name}: {msg}"
    for p in patterns:
        assert re.search(p, msg), f"{p!r} not in:\n{msg}"
    assert line is not None and re.search(rf"at \S*case\.py:{line}: ", msg), f"line {line} not named:\n{msg}"
    return msg


def expect_ok(tmp_path, code: str) -> str:
    proc, _ = run_script(tmp_path, code)
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.rstrip().endswith("ok"), proc.stdout
    return proc.stderr


# -- wrong shapes and dtypes ------------------------------------------------------------------------------------
def test_wrong_shape_eager(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        net(graphnn.randn(2, 5))  # <- line
    """,
        "OpError",
        r"matmul\(f32\[2,5\], f32\[5,4\]\|?.*f32\[3,4\]|matmul\(f32\[2,5\], f32\[3,4\]\)",
        r"inner dimensions differ",
        r"Sequential\.0",
    )


def test_wrong_shape_compiled(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        net = graphnn.compile(nn.Sequential(nn.Linear(3, 4), nn.ReLU()))
        net(graphnn.randn(2, 3))
        net(graphnn.randn(2, 5))  # <- line
    """,
        "OpError",
        r"matmul\(f32\[2,5\], f32\[3,4\]\)",
        r"inner dimensions differ",
    )


def test_wrong_dtype_eager(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        lin = nn.Linear(4, 2)
        lin(graphnn.ones(3, 4, dtype=graphnn.int64))  # <- line
    """,
        "OpError",
        r"matmul\(i64\[3,4\], f32\[4,2\]\)",
        r"floating inputs of one dtype",
    )


def test_wrong_dtype_compiled(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        lin = graphnn.compile(nn.Linear(4, 2))
        lin(graphnn.randn(3, 4).double())  # <- line
    """,
        "OpError",
        r"matmul\(f64\[3,4\], f32\[4,2\]\)",
        r"one dtype, got float64 and float32",
    )


def test_wrong_target_dtype(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        loss = nn.CrossEntropyLoss()
        loss(graphnn.randn(2, 5), graphnn.tensor([1.0, 2.0]))  # <- line
    """,
        "OpError",
        r"cross_entropy\(input f32\[2,5\], target f32\[2\]\)",
        r"must be int64 class indices",
    )


# -- out-of-range indices: checked before any kernel runs (eager, and at every compiled call) ---------------------
def test_embedding_index_out_of_range_eager(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        emb = nn.Embedding(5, 3)
        emb(graphnn.tensor([[1, 7], [0, 2]]))  # <- line
    """,
        "IndexOpError",  # (an IndexError too, as PyTorch raises)
        r"embedding\(indices i64\[2,2\], weight f32\[5,3\]\)",
        r"index 7 is out of range for 5 embeddings",
        r"in module Embedding",
    )


def test_embedding_negative_index_compiled(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        emb = graphnn.compile(nn.Embedding(5, 3))
        with graphnn.no_grad():
            emb(graphnn.tensor([[1, 4], [0, 2]]))
            emb(graphnn.tensor([[1, -1], [0, 2]]))  # <- line
    """,
        "IndexOpError",  # (an IndexError too, as PyTorch raises)
        r"embedding\(indices i64\[2,2\], weight f32\[5,3\]\)",
        r"index -1 is out of range",
        r"in module Embedding",
    )


def test_nll_loss_target_out_of_range_eager(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        loss = nn.NLLLoss()
        loss(graphnn.randn(3, 4).log_softmax(1), graphnn.tensor([0, 4, 1]))  # <- line
    """,
        "IndexOpError",  # (an IndexError too, as PyTorch raises)
        r"nll_loss\(input f32\[3,4\], target i64\[3\]\)",
        r"target 4 is out of bounds for 4 classes",
    )


def test_nll_loss_target_out_of_range_compiled(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        loss = graphnn.compile(nn.NLLLoss())
        x = graphnn.randn(3, 4).log_softmax(1)
        loss(x, graphnn.tensor([0, 3, 1]))
        loss(x, graphnn.tensor([0, -2, 1]))  # <- line
    """,
        "IndexOpError",  # (an IndexError too, as PyTorch raises)
        r"nll_loss\(input f32\[3,4\], target i64\[3\]\)",
        r"target -2 is out of bounds for 4 classes",
    )


def test_cross_entropy_target_out_of_range_in_compiled_training_step(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn, graphnn.optim as optim
        net = nn.Linear(6, 5)
        opt = optim.SGD(net.parameters(), lr=0.1)
        crit = nn.CrossEntropyLoss()

        @graphnn.compile
        def step(x, y):
            opt.zero_grad()
            loss = crit(net(x), y)
            loss.backward()
            opt.step()
            return loss

        x = graphnn.randn(4, 6)
        step(x, graphnn.tensor([0, 1, 2, 4]))
        w = net.weight.detach().numpy().copy()
        try:
            step(x, graphnn.tensor([0, 9, 2, 4]))  # <- line
        finally:
            assert (net.weight.detach().numpy() == w).all(), "a rejected call must not update parameters"
    """,
        "IndexOpError",  # (an IndexError too, as PyTorch raises)
        r"cross_entropy\(input f32\[4,5\], target i64\[4\]\)",
        r"target 9 is out of bounds for 5 classes",
    )


def test_index_select_index_out_of_range_compiled(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn
        pick = graphnn.compile(lambda x, i: x.index_select(0, i))
        x = graphnn.randn(3, 4)
        with graphnn.no_grad():
            pick(x, graphnn.tensor([2, 0]))
            pick(x, graphnn.tensor([2, 3]))  # <- line
    """,
        "OpError",
        r"index_select\(input f32\[3,4\], dim 0, index i64\[2\]\)",
        r"index 3 is out of range for dimension 0 "
        r"of size 3",
    )


def test_dimension_and_narrow_out_of_range(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn
        x = graphnn.randn(3, 4)
        try:
            x.narrow(0, 2, 5)
        except graphnn.OpError as e:
            assert "narrow(f32[3,4], dim 0, start 2, length 5): start + length exceeds dimension size 3" in str(e), e
        x.transpose(0, 5)  # <- line
    """,
        "IndexError",
        r"transpose\(f32\[3,4\]\): dimension out of range \(expected to be in range of \[-2, 1\], but got 5\)",
    )


# -- backward() ---------------------------------------------------------------------------------------------------
def test_backward_of_non_scalar_eager(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn
        x = graphnn.randn(2, 3, requires_grad=True)
        y = x * 2
        y.backward()  # <- line
    """,
        "RuntimeError",
        r"grad can be implicitly created only for scalar outputs",
        r"result of mul",
        r"f32\[2,3\]",
        r"pass a gradient argument",
    )


def test_backward_of_non_scalar_compiled(tmp_path):
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        net = nn.Linear(3, 2)

        @graphnn.compile
        def step(x):
            out = net(x)
            out.backward()  # <- line
            return out

        step(graphnn.randn(4, 3))
    """,
        "RuntimeError",
        r"grad can be implicitly created only for scalar outputs",
        r"result of add",
        r"f32\[4,2\]",
        r"in module Linear",
    )


# -- compiled models: new shapes, nested compile, Python state --------------------------------------------------------
def test_new_input_shape_recompiles(tmp_path):
    expect_ok(
        tmp_path,
        """
        import numpy as np, graphnn, graphnn.nn as nn
        from tolerance import assert_close, recorded_bounds
        net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
        c = graphnn.compile(net)
        for shape in [(1, 1, 8, 8), (3, 1, 8, 8), (2, 1, 11, 9), (1, 1, 8, 8)]:
            x = graphnn.randn(*shape)
            with graphnn.no_grad():
                got = c(x).numpy()
            want = net(x)  # eager and recorded: within twice its rounding-error bound
            assert_close(got, want.detach().numpy(), recorded_bounds([want]).tol(0), str(shape))
            out = c(x)                      # training mode: forward + compiled backward
            out.sum().backward()
        assert len([k for k in c.cache]) == 6, list(c.cache)
        print("ok")
    """,
    )


def test_nested_compile_traces_inline(tmp_path):
    """A compiled module called inside another compiled function (this used to reach native code with no data)."""
    expect_ok(
        tmp_path,
        """
        import numpy as np, graphnn, graphnn.nn as nn
        from tolerance import assert_close, recorded_bounds
        net = nn.Linear(3, 2)
        inner = graphnn.compile(net)

        @graphnn.compile
        def step(x):
            loss = inner(x).pow(2).sum()
            loss.backward()
            return loss

        x = graphnn.randn(4, 3)
        loss = step(x)
        g = net.weight.grad.numpy().copy()
        net.weight.grad = None
        ref = net(x).pow(2).sum()
        bounds = recorded_bounds([ref], ref)
        ref.backward()
        assert_close(loss.item(), ref.item(), bounds.tol(0), "loss")
        assert_close(g, net.weight.grad.numpy(), bounds.grad_tol(net.weight), "d weight")
        print("ok")
    """,
    )


def test_model_mutating_python_state_while_traced(tmp_path):
    """Python side effects run once, while tracing: graphnn warns (naming the attributes and the call), and a
    symbolic tensor stored that way raises a TraceError naming its op and shape where it is used."""
    proc, line = run_script(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn

        class Counting(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(3, 3)
                self.calls = 0
                self.history = []

            def forward(self, x):
                self.calls += 1
                y = self.lin(x).tanh()
                self.history.append(y)
                return y

        m = Counting()
        c = graphnn.compile(m)
        with graphnn.no_grad():
            c(graphnn.randn(2, 3))  # <- line
            c(graphnn.randn(2, 3))
        assert m.calls == 1 and len(m.history) == 1
        print(m.history[0] + 1)
    """,
    )
    assert proc.returncode == 1, proc.stderr
    changes = r"\(Counting\.calls: 0 -> 1; Counting\.history: list of 0 items -> list of 1 items\)"
    assert re.search(
        rf"case\.py:{line}: TraceWarning: graphnn\.compile: tracing Counting\.forward changed Python state " + changes,
        proc.stderr,
    ), proc.stderr
    name, msg = raised(proc)
    assert name == "TraceError", msg
    assert re.search(
        r"add: operand 0 \(f32\[2,3\], the result of tanh in module Counting\) was computed while "
        r"graphnn\.compile traced",
        msg,
    ), msg
    assert re.search(r"at \S*case\.py:\d+: print\(m\.history\[0\] \+ 1\)", msg), msg


def test_escaped_tensor_passed_to_a_compiled_model(tmp_path):
    """A symbolic tensor stored while tracing, passed to another compiled model (it used to reach native code)."""
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        seen = []
        keep = seen.append  # (not the list itself: a list the function changes makes its calls eager)
        first = graphnn.compile(lambda x: keep(x.exp()) or x)
        second = graphnn.compile(nn.Linear(3, 2))
        with graphnn.no_grad():
            first(graphnn.randn(2, 3))
            second(seen[0])  # <- line
    """,
        "TraceError",
        r"compiled call: argument \(f32\[2,3\], the result of exp\) was computed while graphnn\.compile traced",
    )


def test_item_inside_compile(tmp_path):
    """With fullgraph=True (without it the function runs eagerly, with a warning: see test_compile_semantics)."""
    expect_error(
        tmp_path,
        """
        import graphnn

        @graphnn.compile(fullgraph=True)
        def f(x):
            return x * x.sum().item()  # <- line

        f(graphnn.ones(3))
    """,
        "TraceError",
        r"item\(\) needs a concrete value",
        r"symbolic inside graphnn\.compile",
    )


# -- gradient rules and lowerings -------------------------------------------------------------------------------------
_CUSTOM_OP = """
    import numpy as np, graphnn, graphnn.nn as nn
    from graphnn.core.dispatch import apply
    graphnn.ir.register("softsign", infer=lambda t, a: t[0], ref=lambda a, at: a[0] / (1 + np.abs(a[0])),
                        grad=None, pattern="elementwise", num_inputs=1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            return apply("softsign", [self.lin(x)])

    net = Net()
"""


def test_missing_gradient_rule_eager(tmp_path):
    expect_error(
        tmp_path,
        _CUSTOM_OP
        + """
    out = net(graphnn.randn(4, 3))
    out.sum().backward()  # <- line
    """,
        "MissingGradient",
        r"op softsign has no gradient rule",
        r"softsign\(f32\[4,2\]\)",
        r"in module Net",
    )


def test_missing_gradient_rule_compiled(tmp_path):
    """The compiled forward runs; the backward names the op (here tanh, with its rule removed)."""
    expect_error(
        tmp_path,
        """
        import graphnn, graphnn.nn as nn
        graphnn.ir.OPS["tanh"].grad = None
        net = graphnn.compile(nn.Sequential(nn.Linear(3, 2), nn.Tanh()))
        out = net(graphnn.randn(4, 3))
        out.sum().backward()  # <- line
    """,
        "MissingGradient",
        r"op tanh has no gradient rule",
        r"tanh\(f32\[4,2\]\)",
        r"in module Sequential\.1",
    )


def test_op_without_native_lowering(tmp_path):
    expect_error(
        tmp_path,
        _CUSTOM_OP
        + """
    c = graphnn.compile(net)
    c(graphnn.randn(4, 3))  # <- line
    """,
        "LoweringError",
        r"op softsign has no native lowering",
        r"softsign\(f32\[4,2\]\)",
        r"in module Net",
    )


# -- NaN / Inf and native-code safety ------------------------------------------------------------------------------------
def test_nan_and_inf_inputs_propagate(tmp_path):
    """NaN and +-Inf flow through eager and compiled code as in NumPy / PyTorch (no exception, no crash)."""
    expect_ok(
        tmp_path,
        """
        import numpy as np, graphnn, graphnn.nn as nn, graphnn.nn.functional as F
        from tolerance import assert_close, recorded_bounds
        x = np.array([[np.nan, 1.0, -np.inf, 2.0], [np.inf, -1.0, 0.5, np.nan], [0.0, -3.0, 3.0, -2.0]], np.float32)
        fns = {
            "relu": lambda a: a.relu(), "exp": lambda a: a.exp(), "log": lambda a: a.log(), "tanh": lambda a: a.tanh(),
            "amax": lambda a: a.amax(1), "argmax": lambda a: a.argmax(1), "sum": lambda a: a.sum(1),
            "softmax": lambda a: F.softmax(a, 1), "clamp": lambda a: a.clamp(-1, 1), "long": lambda a: a.long(),
            "max_pool": lambda a: F.max_pool2d(a.reshape(1, 1, 3, 4), 2, 1), "matmul": lambda a: a @ graphnn.ones(4, 2),
            "where": lambda a: graphnn.where(a > 0, a, graphnn.zeros(1)), "pow": lambda a: a ** 0.5,
        }
        # NumPy semantics (PyTorch agrees on all of these)
        nan, inf = np.nan, np.inf
        want = {
            "relu": np.where(np.isnan(x), nan, np.maximum(x, 0)), "amax": np.array([nan, nan, 3.0]),
            "argmax": np.array([0, 3, 2]), "sum": np.array([nan, nan, -2.0]), "long": np.where(np.isfinite(x), x, -2.0 ** 63),
            "clamp": np.where(np.isnan(x), nan, np.clip(x, -1, 1)),
        }
        for name, fn in fns.items():
            recorded = fn(graphnn.tensor(x, requires_grad=True))
            eager = recorded.detach().numpy()
            with graphnn.no_grad():
                compiled = graphnn.compile(fn)(graphnn.tensor(x)).numpy()
            assert np.array_equal(np.isnan(eager), np.isnan(compiled)), name
            # within twice the rounding-error bound (none where a NaN or an infinity entered: those must match)
            assert_close(compiled, eager, recorded_bounds([recorded]).tol(0), name)
            if name in want:  # exact: selections, clipping, casts and a sum of small integers
                assert np.array_equal(eager, want[name].astype(eager.dtype), equal_nan=True), (name, eager)
        # a model: NaN in one sample stays in that sample's outputs and reaches the loss and the gradients
        net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        c = graphnn.compile(net)
        out = c(graphnn.tensor(x))
        assert np.isnan(out.detach().numpy()[:2]).all() and np.isfinite(out.detach().numpy()[2]).all()
        loss = out.sum()
        loss.backward()
        assert np.isnan(loss.item()) and np.isnan(net[0].weight.grad.numpy()).any()
        print("ok")
    """,
    )


def test_integer_division_by_zero_in_native_code(tmp_path):
    """Division of int64 tensors by zero (and INT64_MIN / -1) trap in hardware: native code must not crash."""
    expect_ok(
        tmp_path,
        """
        import numpy as np
        from graphnn.ir import Graph, TensorType, interpret
        from graphnn.codegen import CompiledGraph
        g = Graph()
        x, y = (g.add_input(TensorType((4,), "int64"), n) for n in "xy")
        g.outputs = [g.emit("div", x, y)]
        a = [np.array([7, -2 ** 63, 5, -7]), np.array([0, -1, 2, 2])]
        got = CompiledGraph(g)(a)[0]
        assert got.tolist() == [-2 ** 63, -2 ** 63, 2, -3], got
        print("ok")
    """,
    )


def test_float_to_int_cast_of_nan_and_inf_in_native_code(tmp_path):
    expect_ok(
        tmp_path,
        """
        import numpy as np, graphnn
        x = graphnn.tensor([np.nan, np.inf, -np.inf, 1e30, -2.5, 3.9])
        with graphnn.no_grad():
            got = graphnn.compile(lambda t: t.long())(x).numpy()
        assert got.tolist() == [-2 ** 63] * 4 + [-2, 3], got
        print("ok")
    """,
    )
