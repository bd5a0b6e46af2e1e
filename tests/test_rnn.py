"""Recurrent layers: PyTorch parity (eager and compiled), scans that are loops, and a compiled LSTM that learns."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.optim as optim
from parity_util import check_recurrent, close, recorded_bounds
from train_steps import training_step

VARIANTS = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
    ("LSTM", {}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"batch_first": True, "bias": False}),
    ("GRU", {}),
    ("GRU", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
]


def _ids(v):
    return v[0] + "-" + "-".join(f"{k}={val}" for k, val in v[1].items())


def _pair(torch, mode, kw):
    g = getattr(nn, mode)(3, 4, **kw).double()
    t = getattr(torch.nn, mode)(3, 4, **kw).double()
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in g.state_dict().items()})
    return g, t


def _run(lib, model, mode, x, h, c):
    """(output, h_n, c_n or None, loss) of one layer call."""
    if mode == "LSTM":
        out, (hn, cn) = model(x, (h, c))
        return out, hn, cn, (out * out).sum() + hn.sum() + (cn * 2.0).sum()
    out, hn = model(x, h)
    return out, hn, None, (out * out).sum() + hn.sum()


@pytest.mark.parametrize("compiled", [False, True, "hot"], ids=["eager", "compiled", "hot"])
@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_parity_with_pytorch(torch, variant, compiled, monkeypatch):
    """Outputs and gradients agree within twice the rounding-error bound of graphnn's eager computation (its
    recorded graph; parity_util). 'hot': the layer has run eagerly GRAPHNN_HOT_CELLS times with this shape, so the
    call runs the layers compiled (one call node, differentiated by the compiled backward)."""
    mode, kw = variant
    monkeypatch.setenv("GRAPHNN_HOT_CELLS", "1" if compiled == "hot" else "0")
    g, t = _pair(torch, mode, kw)
    rng = np.random.default_rng(0)
    T, B = 5, 2
    x = rng.standard_normal((B, T, 3) if kw.get("batch_first") else (T, B, 3))
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    h0 = rng.standard_normal((layers, B, 4))
    c0 = rng.standard_normal((layers, B, 4))
    ins = [graphnn.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    *eager, e_loss = _run(graphnn, g, mode, *ins)
    bounds = recorded_bounds([o for o in eager if o is not None], e_loss)
    gx, gh, gc = (graphnn.tensor(a, requires_grad=True) for a in (x, h0, c0))
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    got = _run(graphnn, graphnn.compile(g) if compiled is True else g, mode, gx, gh, gc)
    if compiled == "hot":
        assert type(got[1].grad_fn).__name__ == "CompiledFunctionBackward"  # (h_n: straight from the call)
    want = _run(torch, t, mode, tx, th, tc)
    assert tuple(got[0].shape) == tuple(want[0].shape) and tuple(got[1].shape) == tuple(want[1].shape)
    check_recurrent(mode, got, want, bounds, (gx, gh, gc), (tx, th, tc), ins)
    for (name, gp), tp in zip(g.named_parameters(), t.parameters()):
        close(gp.grad, tp.grad, f"d {name}", bounds.grad_tol(gp))


@pytest.mark.parametrize("mode", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_pytorch(torch, mode):
    g = getattr(nn, mode)(3, 4).double()
    t = getattr(torch.nn, mode)(3, 4).double()
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in g.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((6, 2, 3))
    gx, tx = graphnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    gh = th = None
    gs, ts = [], []
    for i in range(6):
        gh = g(gx[i], gh)
        th = t(tx[i], th)
        gs.append(gh[0] if mode == "LSTMCell" else gh)
        ts.append(th[0] if mode == "LSTMCell" else th)
    outs = graphnn.stack(gs)
    loss = outs.sum()
    bounds = recorded_bounds([outs], loss)
    loss.backward()
    torch.stack(ts).sum().backward()
    close(outs, torch.stack(ts), "outputs", bounds.tol(0))
    close(gx.grad, tx.grad, "d input", bounds.grad_tol(gx))
    for (name, gp), tp in zip(g.named_parameters(), t.parameters()):
        close(gp.grad, tp.grad, f"d {name}", bounds.grad_tol(gp))


@pytest.mark.parametrize("mode", ["RNNCell", "LSTMCell", "GRUCell"])
def test_hot_cells_run_compiled_and_match_pytorch(torch, mode, monkeypatch):
    """After GRAPHNN_HOT_CELLS eager calls a cell's steps run compiled (one call node per step, differentiated by
    the compiled backward): outputs and gradients still agree with PyTorch within the rounding-error bound of the
    same loop run op by op."""
    g = getattr(nn, mode)(3, 4).double()
    t = getattr(torch.nn, mode)(3, 4).double()
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in g.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((7, 2, 3))

    def loop(lib, model, xs):
        h, outs = None, []
        for i in range(len(xs)):
            h = model(xs[i], h)
            outs.append(h[0] if mode == "LSTMCell" else h)
        return lib.stack(outs)

    monkeypatch.setenv("GRAPHNN_HOT_CELLS", "0")  # op by op: the recorded graph gives the bounds
    gx = graphnn.tensor(x, requires_grad=True)
    outs = loop(graphnn, g, gx)
    bounds = recorded_bounds([outs], outs.sum())
    monkeypatch.setenv("GRAPHNN_HOT_CELLS", "2")
    g._eager_calls = 0
    g.zero_grad()
    gx.grad = None
    outs = loop(graphnn, g, gx)
    assert type(outs.grad_fn).__name__ == "StackBackward0"
    last = g(gx[0], None)
    assert type((last[0] if mode == "LSTMCell" else last).grad_fn).__name__ == "CompiledFunctionBackward"
    outs.sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    touts = loop(torch, t, tx)
    touts.sum().backward()
    close(outs, touts, "outputs", bounds.tol(0))
    close(gx.grad, tx.grad, "d input", bounds.grad_tol(gx))
    for (name, gp), tp in zip(g.named_parameters(), t.parameters()):
        close(gp.grad, tp.grad, f"d {name}", bounds.grad_tol(gp))


def test_parameter_names_and_init():
    m = nn.LSTM(10, 20, 2, bidirectional=True)
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_ih_l1_reverse" in names and m.weight_ih_l1.shape == (80, 40)
    bound = 1 / np.sqrt(20)
    for p in m.parameters():
        a = p.detach().numpy()
        assert a.min() >= -bound and a.max() <= bound and a.std() > bound / 3
    assert repr(m) == "LSTM(10, 20, num_layers=2, bidirectional=True)"


def test_time_is_a_loop_not_unrolled():
    """The compiled graph holds one scan per layer and direction, whatever the sequence length."""
    m = nn.GRU(3, 4, num_layers=2)
    sizes = []
    for T in (4, 40):
        c = graphnn.compile(m)
        with graphnn.no_grad():
            c(graphnn.randn(T, 2, 3))
        g = c.graphs["optimized"]
        assert sum(n.op == "scan" for n in g.nodes) == 2
        sizes.append(len(g.nodes))
    assert sizes[0] == sizes[1]


def _scans(g):
    return [n for n in g.nodes if n.op == "scan"]


def _matmuls(scan):
    return sum(n.op == "matmul" for n in scan.attrs["body"].graph.nodes)


def test_backward_reads_saved_steps_instead_of_rerunning_the_loop():
    """Training through a compiled LSTM: the forward scan stacks what the reverse scan needs (its gate products),
    so the backward graph is one reverse scan with one product per step, and the forward loop runs once."""
    m = nn.LSTM(3, 8)
    c = graphnn.compile(m)
    out, _ = c(graphnn.randn(6, 2, 3))
    out.sum().backward()
    fwd, bwd = c.last.stages["forward"], c.last.stages["backward"]
    assert len(_scans(fwd)) == 1 and len(_scans(bwd)) == 1
    assert _matmuls(_scans(bwd)[0]) == 1
    assert len(_scans(fwd)[0].outputs) > 3  # h_T, c_T, the outputs, then the stacked residuals

    def step(x):
        y, _ = m(x)
        loss = (y * y).sum()
        loss.backward()
        return loss

    whole = graphnn.compile(step)
    whole(graphnn.randn(6, 2, 3))
    scans = _scans(whole.graphs["optimized"])
    assert len(scans) == 2 and [_matmuls(s) for s in scans] == [1, 1]


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_eager_backward_runs_the_loop_once_and_reuses_its_gradient_program(mode):
    """Eagerly, the forward scan stacks what its gradient reads as it runs (a backward() may follow), so the
    gradient program is the reverse scan alone; the program is kept for the next steps (scan bodies are keyed by
    their structure), and its gradients agree with those of the same layer compiled (within twice the rounding-error
    bound of the recorded graph)."""
    from graphnn.core import backward_cache

    backward_cache.clear()
    m = getattr(nn, mode)(3, 5)
    x = graphnn.randn(4, 2, 3, requires_grad=True)
    for _ in range(3):
        m.zero_grad()
        x.grad = None
        out, _ = m(x)
        loss = (out * out).sum()
        bounds = recorded_bounds([out], loss)
        loss.backward()
    eager = [x.grad.numpy()] + [p.grad.numpy().copy() for p in m.parameters()]
    (program,) = backward_cache._programs.values()
    assert program.hits == 2
    (scan,) = _scans(program.graph)
    assert scan.attrs["reverse"]
    c = graphnn.compile(m)
    m.zero_grad()
    x.grad = None
    out, _ = c(x)
    (out * out).sum().backward()
    for t, e in zip([x] + list(m.parameters()), eager):
        close(t.grad, e, "gradient, compiled vs eager", bounds.grad_tol(t))


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_reverse_scan_reads_saved_gates(mode):
    """The forward scan stacks the gate activations (sigmoid, tanh) and the reverse scan computes with them
    instead of evaluating them again; it stacks each gate gradient once (for the input, weight and bias
    gradients alike) and none of its inputs."""
    m = getattr(nn, mode)(3, 8)
    c = graphnn.compile(m)
    out, _ = c(graphnn.randn(6, 2, 3, requires_grad=True))
    out.sum().backward()
    (bwd,) = _scans(c.last.stages["backward"])
    body = bwd.attrs["body"].graph
    assert not {n.op for n in body.nodes} & {"sigmoid", "tanh"}
    stacked = body.outputs[bwd.attrs["n_carry"] :]
    assert len({v.id for v in stacked}) == len(stacked) and not {v.id for v in stacked} & {v.id for v in body.inputs}


def test_compiled_module_keeps_only_residuals_its_backward_reads():
    """A compiled LSTM's forward returns no residual its optimized backward graph does not read (the hoisted
    input projection, a [T, B, 4H] buffer, is not kept from forward to backward), and its gradients still
    equal eager mode's."""
    m = nn.LSTM(3, 8)
    x = graphnn.randn(6, 2, 3)
    c = graphnn.compile(m)
    xc = x.detach().requires_grad_()
    out, _ = c(xc)
    out.sum().backward()
    prog = c.last
    fwd, bwd = prog.stages["forward"], prog.stages["backward"]
    read = {v.id for n in bwd.nodes for v in n.inputs} | {v.id for v in bwd.outputs}
    assert all(v.id in read for v in bwd.inputs[: len(bwd.inputs) - len(prog.float_outs)])
    assert (6, 2, 32) not in [v.shape for v in fwd.outputs]
    assert len(fwd.outputs) == prog.n_out + prog.n_res
    got = [xc.grad.numpy().copy()] + [p.grad.numpy().copy() for p in m.parameters()]
    m.zero_grad()
    xe = x.detach().requires_grad_()
    out, _ = m(xe)
    out.sum().backward()
    want = [xe.grad.numpy()] + [p.grad.numpy() for p in m.parameters()]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


class SumModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, 16)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[-1])


def test_compiled_lstm_learns_to_sum_a_sequence():
    """An LSTM trained with one native call per step learns y = sum(x) over 10 steps: the MSE falls from
    about the target variance (10/3) to below 0.02."""
    graphnn.manual_seed(0)
    model = SumModel()
    step = graphnn.compile(training_step(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=0.01)))

    rng = np.random.default_rng(0)
    losses = []
    for _ in range(400):
        x = rng.uniform(-1, 1, (10, 32, 1)).astype(np.float32)
        y = x.sum(0)
        losses.append(step(graphnn.from_numpy(x), graphnn.from_numpy(y)).item())
    assert np.mean(losses[:10]) > 1.0
    assert np.mean(losses[-40:]) < 0.02, losses[-40:]


def test_dropout_between_layers(torch):
    """dropout applies between layers in training only; in eval mode the output matches PyTorch's."""
    g = nn.LSTM(3, 4, num_layers=2, dropout=0.5).double()
    t = torch.nn.LSTM(3, 4, num_layers=2, dropout=0.5).double()
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in g.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    a, _ = g(graphnn.tensor(x))
    b, _ = g(graphnn.tensor(x))
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    g.eval()
    t.eval()
    out = g(graphnn.tensor(x))[0]
    tol = recorded_bounds([out]).tol(0)
    want = t(torch.tensor(x))[0]
    close(out, want, "eval output", tol)
    c = graphnn.compile(g)
    with graphnn.no_grad():
        close(c(graphnn.tensor(x))[0], want, "compiled eval output", tol)


def test_hot_layers_compile_per_repeated_shape_only(monkeypatch):
    """A layer goes compiled for an input shape once it has run eagerly GRAPHNN_HOT_CELLS times with that shape: a
    new length starts eager again (a loop over sequences of many lengths compiles nothing), dropout between layers
    in training keeps it eager, and a hot layer still pickles and copies (state_dict unchanged)."""
    import copy
    import pickle

    monkeypatch.setenv("GRAPHNN_HOT_CELLS", "2")

    def runs_compiled(m, T):
        out, h = m(graphnn.randn(T, 2, 3))
        return type(h.grad_fn).__name__ == "CompiledFunctionBackward"

    m = nn.GRU(3, 4, num_layers=2)
    assert [runs_compiled(m, 5) for _ in range(3)] == [False, False, True]
    assert [runs_compiled(m, 6) for _ in range(3)] == [False, False, True]
    assert runs_compiled(m, 5)
    keys = list(m.state_dict())
    assert list(copy.deepcopy(m).state_dict()) == keys and list(pickle.loads(pickle.dumps(m)).state_dict()) == keys
    d = nn.GRU(3, 4, num_layers=2, dropout=0.5)
    assert not any(runs_compiled(d, 5) for _ in range(3))
    d.eval()
    assert [runs_compiled(d, 5) for _ in range(3)] == [False, False, True]
