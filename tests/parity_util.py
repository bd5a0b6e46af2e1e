"""Helpers for the PyTorch parity suite (tests/test_parity_layers.py).

`check` runs a graphnn callable and a PyTorch callable on the same NumPy inputs, compares every output, then
back-propagates the same random weighting of the outputs through both and compares the gradients of the float
inputs and of every parameter of the given module pair. With compiled=True the graphnn side runs through
graphnn.compile (a Module is compiled as is, a function is wrapped in `Lambda` first), and its outputs are
differentiated by the compiled backward.
"""
from __future__ import annotations

import numpy as np

import graphnn
import graphnn.nn as gnn

RTOL, ATOL = 1e-5, 1e-6


def to_np(x) -> np.ndarray:
    if isinstance(x, graphnn.Tensor):
        return np.asarray(x.detach().numpy())
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def close(actual, expected, what: str = "", rtol: float = RTOL, atol: float = ATOL) -> None:
    a, e = to_np(actual), to_np(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if e.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e, err_msg=what)
    else:
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)


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


def check(torch, g_call, t_call, inputs, g_mod=None, t_mod=None, compiled: bool = False, grad: bool = True,
          rtol: float = RTOL, atol: float = ATOL, seed: int = 0):
    """Compare g_call(*inputs) with t_call(*inputs): outputs, input gradients, parameter gradients.

    inputs: NumPy arrays (float ones require grad when `grad`) or other Python values passed through.
    g_mod / t_mod: modules whose parameters' gradients are compared (by name, in order).
    Returns (graphnn outputs, torch outputs, graphnn inputs, torch inputs).
    """
    g_ins, t_ins = _inputs(graphnn, inputs, grad), _inputs(torch, inputs, grad)
    fn = g_call
    if compiled:
        mod = g_call if isinstance(g_call, gnn.Module) else Lambda(g_call, *([g_mod] if g_mod is not None else []))
        fn = graphnn.compile(mod)
    g_out, t_out = fn(*g_ins), t_call(*t_ins)
    go, to = _flat(g_out), _flat(t_out)
    assert len(go) == len(to), f"{len(go)} outputs, PyTorch gives {len(to)}"
    for i, (a, b) in enumerate(zip(go, to)):
        close(a, b, f"output {i}", rtol, atol)
    if not grad:
        return g_out, t_out, g_ins, t_ins
    rng = np.random.default_rng(seed)
    g_loss = t_loss = None
    for a, b in zip(go, to):
        if b.dtype.is_floating_point and b.requires_grad:
            w = rng.standard_normal(tuple(b.shape))
            gl = (a * graphnn.tensor(w.astype(to_np(a).dtype))).sum()
            tl = (b * torch.tensor(w, dtype=b.dtype)).sum()
            g_loss, t_loss = (gl, tl) if g_loss is None else (g_loss + gl, t_loss + tl)
    if t_loss is None:
        return g_out, t_out, g_ins, t_ins
    assert g_loss.requires_grad, "graphnn output does not require grad while PyTorch's does"
    g_loss.backward()
    t_loss.backward()
    for i, (a, b) in enumerate(zip(g_ins, t_ins)):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            assert a.grad is not None or b.grad is None, f"no gradient for input {i}"
            if b.grad is not None:
                close(a.grad, b.grad, f"d input {i}", rtol, atol)
    if g_mod is not None:
        compare_grads(g_mod, t_mod, rtol, atol)
    return g_out, t_out, g_ins, t_ins


def compare_grads(g_mod, t_mod, rtol: float = RTOL, atol: float = ATOL) -> None:
    gp, tp = list(g_mod.named_parameters()), list(t_mod.named_parameters())
    assert [n for n, _ in gp] == [n for n, _ in tp]
    for (name, a), (_, b) in zip(gp, tp):
        if b.grad is None:
            assert a.grad is None or not to_np(a.grad).any(), f"d {name}: PyTorch has no gradient"
        else:
            assert a.grad is not None, f"d {name}: missing gradient"
            close(a.grad, b.grad, f"d {name}", rtol, atol)


def compare_params(g_mod, t_mod, rtol: float = RTOL, atol: float = ATOL, buffers: bool = True) -> None:
    g_sd, t_sd = g_mod.state_dict(), t_mod.state_dict()
    assert list(g_sd) == list(t_sd)
    for k in g_sd:
        if buffers or k in dict(g_mod.named_parameters()):
            close(g_sd[k], t_sd[k], k, rtol, atol)
