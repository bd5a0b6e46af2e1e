"""Helpers for the PyTorch parity suite (tests/test_parity_layers.py).

`check` runs a graphnn callable and a PyTorch callable on the same NumPy inputs, compares every output, then
back-propagates the same random weighting of the outputs through both and compares the gradients of the float
inputs and of every parameter of the given module pair. With compiled=True the graphnn side runs through
graphnn.compile (a Module is compiled as is, a function is wrapped in `Lambda` first), and its outputs are
differentiated by the compiled backward.

Tolerances (tolerance.py): the graphnn computation is run once more eagerly, its recorded IR (forward, and the
joint graph of the weighted loss) gives each output's and gradient's rounding-error bound E, and both libraries,
which evaluate the same formulas with their own summation orders, must agree within 2 E.
"""

from __future__ import annotations

import numpy as np

import graphnn
import graphnn.nn as gnn
from graphnn.core import random as _random
from graphnn.compiler.optimized_module import OptimizedModule
from tolerance import Bounds, accumulation_tolerance, assert_close, recorded_bounds  # noqa: F401 (re-exported)


def to_np(x) -> np.ndarray:
    if isinstance(x, graphnn.Tensor):
        return np.asarray(x.detach().numpy())
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def close(actual, expected, what: str = "", tol=None) -> None:
    """Floats within `tol` (allowed |difference|, elementwise or scalar; None: exactly equal), others equal."""
    a, e = to_np(actual), to_np(expected)
    assert_close(a, e.astype(a.dtype) if e.dtype.kind == "f" else e, tol, what)


def steps_tolerance(value, steps: int, magnitude=None):
    """For values computed without a recorded graph (optimizer states, running statistics, norms): `steps`
    roundings, each relative to `magnitude`, by default the array's largest magnitude (which bounds every term of
    the elementwise updates compared), in both libraries."""
    a = to_np(value)
    if a.dtype.kind != "f":
        return None
    return accumulation_tolerance(a.dtype, steps, np.abs(a).max(initial=0.0) if magnitude is None else magnitude)


def copy_state(torch, g, t) -> None:
    """Load the graphnn module's parameters and buffers into the PyTorch module."""
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in g.state_dict().items()})


def pair(torch, name: str, *args, **kwargs):
    """The same layer built in both libraries (float64), PyTorch's carrying graphnn's weights."""
    g = getattr(gnn, name)(*args, **kwargs).double()
    t = getattr(torch.nn, name)(*args, **kwargs).double()
    copy_state(torch, g, t)
    return g, t


class Lambda(gnn.Module):
    """A graphnn Module around a function, so that graphnn.compile gives outputs that support backward."""

    def __init__(self, fn, *modules):
        super().__init__()
        self.fn = fn
        for i, m in enumerate(modules):
            self.add_module(f"m{i}", m)

    def forward(self, *args):
        return self.fn(*args)


def _flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [y for o in out for y in _flat(o)]
    return [out]


def _inputs(lib, arrays, grad: bool):
    out = []
    for a in arrays:
        if isinstance(a, np.ndarray):
            req = grad and a.dtype.kind == "f"
            out.append(lib.tensor(a.copy(), requires_grad=req))
        else:
            out.append(a)
    return out


def _snapshot(modules: list):
    """Restores the modules' parameters and buffers and graphnn's random generator when called."""
    tensors = [t for m in modules for t in list(m.parameters()) + [b for _, b in m.named_buffers()]]
    saved = [(t, t._data, t._data.copy()) for t in tensors]
    rng = _random.generator().bit_generator.state

    def restore():
        for t, arr, copy in saved:
            arr[...] = copy
            t._data = arr
        _random.generator().bit_generator.state = rng

    return restore


def _eager_bounds(g_call, inputs: list, g_mod, weights: list, state_errors: dict | None) -> tuple:
    """(Bounds, eager input tensors) of g_call run eagerly once more, leaving module state and random state as
    they were. state_errors: name -> error bound of g_mod's parameters and buffers."""
    plain = g_call._orig_mod if isinstance(g_call, OptimizedModule) else g_call
    restore = _snapshot([m for m in (plain, g_mod) if isinstance(m, gnn.Module)])
    try:
        ins = _inputs(graphnn, inputs, True)
        outs = _flat(plain(*ins))
        loss = None
        for o, w in zip(outs, weights):
            if w is not None and o.requires_grad:
                term = (o * graphnn.tensor(w.astype(to_np(o).dtype))).sum()
                loss = term if loss is None else loss + term
        state = dict(g_mod.named_parameters()) | dict(g_mod.named_buffers()) if g_mod is not None else {}
        errs = [(state[k]._data, e) for k, e in (state_errors or {}).items()]
        return recorded_bounds(outs, loss, errs), ins
    finally:
        restore()


def check(
    torch,
    g_call,
    t_call,
    inputs,
    g_mod=None,
    t_mod=None,
    compiled: bool = False,
    grad: bool = True,
    seed: int = 0,
    state_errors: dict | None = None,
):
    """Compare g_call(*inputs) with t_call(*inputs): outputs, input gradients, parameter gradients.

    inputs: NumPy arrays (float ones require grad when `grad`) or other Python values passed through.
    g_mod / t_mod: modules whose parameters' gradients are compared (by name, in order).
    state_errors: name -> how far g_mod's parameter or buffer of that name may already be from t_mod's.
    Returns (graphnn outputs, torch outputs, graphnn inputs, torch inputs).
    """
    t_ins = _inputs(torch, inputs, grad)
    t_out = t_call(*t_ins)
    to = _flat(t_out)
    rng = np.random.default_rng(seed)
    weights = [
        rng.standard_normal(tuple(b.shape)) if grad and b.dtype.is_floating_point and b.requires_grad else None
        for b in to
    ]
    bounds, b_ins = _eager_bounds(g_call, inputs, g_mod, weights, state_errors)
    g_ins = _inputs(graphnn, inputs, grad)
    fn = g_call
    if compiled:
        mod = g_call if isinstance(g_call, gnn.Module) else Lambda(g_call, *([g_mod] if g_mod is not None else []))
        fn = graphnn.compile(mod)
    g_out = fn(*g_ins)
    go = _flat(g_out)
    assert len(go) == len(to), f"{len(go)} outputs, PyTorch gives {len(to)}"
    for i, (a, b) in enumerate(zip(go, to)):
        close(a, b, f"output {i}", bounds.tol(i))
    if not grad:
        return g_out, t_out, g_ins, t_ins
    g_loss = t_loss = None
    for a, b, w in zip(go, to, weights):
        if w is not None:
            gl = (a * graphnn.tensor(w.astype(to_np(a).dtype))).sum()
            tl = (b * torch.tensor(w, dtype=b.dtype)).sum()
            g_loss, t_loss = (gl, tl) if g_loss is None else (g_loss + gl, t_loss + tl)
    if t_loss is None:
        return g_out, t_out, g_ins, t_ins
    assert g_loss.requires_grad, "graphnn output does not require grad while PyTorch's does"
    g_loss.backward()
    t_loss.backward()
    for i, (a, b, e) in enumerate(zip(g_ins, t_ins, b_ins)):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            assert a.grad is not None or b.grad is None, f"no gradient for input {i}"
            if b.grad is not None:
                close(a.grad, b.grad, f"d input {i}", bounds.grad_tol(e))
    if g_mod is not None:
        compare_grads(
            g_mod, t_mod, {n: bounds.grad_tol(p) for n, p in g_mod.named_parameters() if id(p) in bounds.grads}
        )
    return g_out, t_out, g_ins, t_ins


def compare_grads(g_mod, t_mod, tols: dict) -> None:
    """Parameter gradients, each within tols[name] (a parameter without an entry must have no gradient)."""
    gp, tp = list(g_mod.named_parameters()), list(t_mod.named_parameters())
    assert [n for n, _ in gp] == [n for n, _ in tp]
    for (name, a), (_, b) in zip(gp, tp):
        if b.grad is None:
            assert a.grad is None or not to_np(a.grad).any(), f"d {name}: PyTorch has no gradient"
        else:
            assert a.grad is not None, f"d {name}: missing gradient"
            close(a.grad, b.grad, f"d {name}", tols[name])


def compare_params(g_mod, t_mod, steps: int = 0, buffers: bool = True) -> None:
    """Parameters and buffers after `steps` roundings of elementwise updates (steps_tolerance; 0: equal)."""
    g_sd, t_sd = g_mod.state_dict(), t_mod.state_dict()
    assert list(g_sd) == list(t_sd)
    for k in g_sd:
        if buffers or k in dict(g_mod.named_parameters()):
            close(g_sd[k], t_sd[k], k, steps_tolerance(t_sd[k], steps) if steps else None)


def check_recurrent(mode: str, got: tuple, want: tuple, bounds, graphnn_inputs: list, torch_inputs: list, ins: list):
    """Compare a recurrent layer's (output, h_n, c_n, loss) in both libraries within the recorded bounds, then
    back-propagate both losses and compare the gradients of the input, h0 and (LSTM) c0."""
    go, ghn, gcn, loss_g = got
    to, thn, tcn, loss_t = want
    close(go, to, "output", bounds.tol(0))
    close(ghn, thn, "h_n", bounds.tol(1))
    if mode == "LSTM":
        close(gcn, tcn, "c_n", bounds.tol(2))
    loss_g.backward()
    loss_t.backward()
    for a, b, e, what in zip(graphnn_inputs, torch_inputs, ins, ("d input", "d h0", "d c0")):
        if mode == "LSTM" or what != "d c0":
            close(a.grad, b.grad, what, bounds.grad_tol(e))
