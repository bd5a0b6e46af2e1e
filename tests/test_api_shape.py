"""PyTorch's shape, indexing and linear-algebra helpers and tensor attributes, against PyTorch.

Each case is one function written once for both libraries (`fn(L, *tensors)` with L = graphnn or torch, so
torch.X and Tensor.X spellings are both exercised) and runs eagerly and under graphnn.compile on the same float64
inputs (parity_util.check: values and gradients within twice their rounding-error bound, integers exactly).
Functions whose result size depends on values run eagerly, and inside graphnn.compile raise a TraceError naming the
op. Gradient hooks (register_hook) are checked eagerly and compiled against PyTorch's.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphnn
from parity_util import check, close, to_np


def _r(*shape, seed=0):
    return np.random.default_rng(seed + len(shape)).standard_normal(shape)


def _i(*values):
    return np.array(values, dtype=np.int64)


# fn(L, *inputs) -> tensor(s); inputs: float64 arrays (differentiated), int64 arrays, Python values
CASES = {
    "flip": (lambda L, x: L.flip(x, (0, -1)), [_r(3, 4)]),
    "flip_method_varargs": (lambda L, x: x.flip(1, 2), [_r(2, 3, 4)]),
    "fliplr_flipud": (lambda L, x: (L.fliplr(x), x.flipud()), [_r(3, 4)]),
    "roll": (lambda L, x: L.roll(x, (1, -2), (0, -1)), [_r(3, 5)]),
    "roll_flat": (lambda L, x: x.roll(4), [_r(3, 5)]),
    "rot90": (lambda L, x: (L.rot90(x), L.rot90(x, 2, (1, 2)), x.rot90(-1, [0, 2])), [_r(2, 3, 4)]),
    "tile": (lambda L, x: (L.tile(x, (2,)), x.tile(2, 1, 3)), [_r(2, 3)]),
    "repeat_interleave": (lambda L, x: (L.repeat_interleave(x, 2), x.repeat_interleave(3, dim=-1)), [_r(2, 3)]),
    "repeat_interleave_tensor": (lambda L, x, r: x.repeat_interleave(r, dim=0), [_r(3, 2), _i(2, 0, 1)]),
    "movedim": (lambda L, x: (L.movedim(x, 0, -1), x.moveaxis((0, 1), (2, 0)), L.movedim(x, -1, 0)), [_r(2, 3, 4)]),
    "swapaxes": (lambda L, x: (L.swapaxes(x, 0, 2), x.swapdims(-1, 1)), [_r(2, 3, 4)]),
    "broadcast": (lambda L, x, y: L.broadcast_tensors(x, y) + (L.broadcast_to(y, (2, 3, 4)),), [_r(3, 1), _r(4)]),
    "stacks": (
        lambda L, a, b: (L.hstack([a, b]), L.vstack((a, b)), L.dstack([a, b]), L.row_stack([a, b])),
        [_r(2, 3), _r(2, 3, seed=1)],
    ),
    "stacks_1d": (
        lambda L, a, b: (L.hstack([a, b]), L.vstack([a, b]), L.column_stack([a, b]), L.dstack([a, b])),
        [_r(3), _r(3, seed=1)],
    ),
    "atleast": (
        lambda L, s, v, m: (L.atleast_1d(s), *L.atleast_2d(s, v), *L.atleast_3d((s, v, m))),
        [np.array(1.5), _r(3), _r(2, 3)],
    ),
    "meshgrid": (
        lambda L, a, b, c: L.meshgrid(a, b, c, indexing="ij") + L.meshgrid([a, b], indexing="xy"),
        [_r(2), _r(3), _r(4)],
    ),
    "cartesian_prod": (lambda L, a, b: L.cartesian_prod(a, b), [_r(2), _r(3)]),
    "tensor_split": (
        lambda L, x: L.tensor_split(x, 3, dim=1) + x.tensor_split([1, 4], -1) + L.tensor_split(x, (-1,)),
        [_r(3, 7)],
    ),
    "hvd_split": (lambda L, x: L.hsplit(x, 2) + x.vsplit([1]) + L.dsplit(x, [1, 3]), [_r(2, 4, 5)]),
    "unflatten": (lambda L, x: (L.unflatten(x, 1, (2, -1)), x.unflatten(-1, (3, 2, 1))), [_r(3, 6)]),
    "reshape_as": (lambda L, x, y: (x.reshape_as(y), x.expand_as(L.zeros(2, 6))), [_r(1, 6), _r(3, 2)]),
    "diagonal": (
        lambda L, x: (L.diagonal(x), x.diagonal(1), x.diagonal(-2, 2, 0), L.diagonal(x, 0, -1, -2)),
        [_r(3, 4, 5)],
    ),
    "diag": (lambda L, v, m: (L.diag(v), L.diag(v, -1), m.diag(), L.diag(m, 2), v.diag(3)), [_r(3), _r(4, 5)]),
    "diag_embed": (lambda L, x: (L.diag_embed(x), x.diag_embed(1, 0, 2), L.diag_embed(x, -1, -1, 0)), [_r(2, 3)]),
    "diagflat_trace": (lambda L, x: (L.diagflat(x), x.diagflat(-1), L.trace(x), x.trace()), [_r(3, 3)]),
    "tri_indices": (
        lambda L: (L.tril_indices(3, 4), L.tril_indices(4, 3, -1), L.triu_indices(3, 3, 1), L.triu_indices(2, 5)),
        [],
    ),
    "outer_inner": (
        lambda L, a, b, m, n: (L.outer(a, b), a.ger(b), L.inner(m, n), L.inner(a, a), m.inner(m[0])),
        [_r(3), _r(4), _r(2, 3), _r(4, 3)],
    ),
    "dot_mv": (lambda L, a, b, m: (L.dot(a, b), a.vdot(b), L.mv(m, a), m.mv(b)), [_r(3), _r(3, seed=1), _r(2, 3)]),
    "add_products": (
        lambda L, i, m1, m2, v, b1, b2: (
            L.addmm(i, m1, m2),
            i.addmm(m1, m2, beta=0.5, alpha=2),
            L.addmv(i[:, 0], m1, v, alpha=3),
            L.addbmm(i, b1, b2, beta=2),
            L.addr(i, i[:, 0], i[0], alpha=-1),
        ),
        [_r(2, 4), _r(2, 3), _r(3, 4), _r(3), _r(5, 2, 3), _r(5, 3, 4)],
    ),
    "kron": (lambda L, a, b, c: (L.kron(a, b), a.kron(c)), [_r(2, 3), _r(3, 2), _r(2)]),
    "tensordot": (
        lambda L, a, b: (L.tensordot(a, b, 1), L.tensordot(a, b.transpose(0, 1), ([1, 2], [0, 1]))),
        [_r(2, 3, 4), _r(4, 3, 5)],
    ),
    "cdist": (
        lambda L, x, y: (L.cdist(x, y), L.cdist(x, y, 1), L.cdist(x, y, 3), L.cdist(x, x), L.cdist(x, y, float("inf"))),
        [_r(2, 4, 3), _r(2, 5, 3)],
    ),
    "diff": (
        lambda L, x, p: (L.diff(x), x.diff(2, 0), L.diff(x, dim=1, prepend=p, append=x[:, :2])),
        [_r(4, 5), _r(4, 1)],
    ),
    "take": (lambda L, x, i: (L.take(x, i), x.take(i[:2])), [_r(3, 4), _i(0, -1, 5, 11, 5)]),
    "take_along_dim": (
        lambda L, x, i: (L.take_along_dim(x, i, 1), x.take_along_dim(i[:1], dim=1), L.take_along_dim(x, i)),
        [_r(3, 4), _i(0, 3, 1, 2, 2, 0).reshape(3, 2)],
    ),
    "index_add": (
        lambda L, x, i, s: (L.index_add(x, 0, i, s), x.index_add(0, i, s, alpha=2)),
        [_r(4, 3), _i(3, 0, 3), _r(3, 3, seed=1)],
    ),
    "index_copy_fill": (
        lambda L, x, i, s: (L.index_copy(x, 1, i, s), x.index_fill(1, i, -2.0), L.index_fill(x, -1, i[:1], 0.5)),
        [_r(3, 4), _i(2, 0), _r(3, 2, seed=1)],
    ),
    "index_inplace": (
        lambda L, x, i, s: (x * 1).index_add_(0, i, s).index_fill_(0, i[:1], 1.0).index_copy_(0, i[1:], s[:1]),
        [_r(4, 3), _i(1, 3), _r(2, 3, seed=1)],
    ),
    "searchsorted": (
        lambda L, s, v, b: (
            L.searchsorted(s, v),
            L.searchsorted(s, v, right=True),
            L.searchsorted(b, v[None]),
            L.bucketize(v, s),
            L.bucketize(v, s, right=True),
            L.searchsorted(s, 0.5, side="right"),
        ),
        [np.array([-1.0, 0.0, 0.5, 0.5, 2.0]), np.array([0.5, -3.0, 2.0, 1.0]), np.array([[0.0, 1.0, 2.0]])],
    ),
    "histc": (lambda L, x: (L.histc(x, 5, -1, 1), x.histc(bins=4)), [np.array([-0.9, -0.3, 0.05, 0.4, 0.45, 3.0])]),
}

EAGER_ONLY = {
    "nonzero": (
        lambda L, x: (L.nonzero(x > 0), *L.nonzero(x > 0, as_tuple=True), L.argwhere(x < 0), (x > 0).nonzero()),
        [_r(3, 4)],
    ),
    "masked_select": (lambda L, x, m: (L.masked_select(x, x > 0), x.masked_select(m > 0)), [_r(3, 4), _r(4)]),
    "unique": (
        lambda L, x: (*L.unique(x, return_inverse=True, return_counts=True), x.unique(), L.unique(x, dim=0)),
        [_i(3, 1, 3, 2, 1, 1).reshape(2, 3)],
    ),
    "unique_dim": (
        lambda L, x: L.unique(x, dim=0, return_inverse=True, return_counts=True),
        [_i(1, 2, 0, 0, 1, 2).reshape(3, 2)],
    ),
    "unique_consecutive": (
        lambda L, x: (*L.unique_consecutive(x, return_inverse=True, return_counts=True), x.unique_consecutive(dim=0)),
        [_i(1, 1, 2, 2, 3, 1, 1, 2).reshape(4, 2)],
    ),
    "bincount": (
        lambda L, x, w: (L.bincount(x), x.bincount(w.detach()), L.bincount(x, w.detach() * 0 + 1, 7)),
        [_i(1, 4, 1, 0, 4, 4), _r(6)],
    ),
    "repeat_interleave_counts": (lambda L, r: L.repeat_interleave(r), [_i(2, 0, 3)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_against_pytorch(torch, name, compiled):
    fn, inputs = CASES[name]
    if compiled and name == "repeat_interleave_tensor":  # data-dependent size: a constant of the trace
        compiled = False
    check(torch, lambda *a: fn(graphnn, *a), lambda *a: fn(torch, *a), inputs, compiled=compiled)


@pytest.mark.parametrize("name", sorted(EAGER_ONLY))
def test_data_dependent_sizes_eager(torch, name):
    fn, inputs = EAGER_ONLY[name]
    check(torch, lambda *a: fn(graphnn, *a), lambda *a: fn(torch, *a), inputs)


@pytest.mark.parametrize(
    "call, op",
    [
        (lambda x: x.nonzero(), "nonzero"),
        (lambda x: graphnn.argwhere(x), "nonzero"),
        (lambda x: x.masked_select(x > 0), "masked_select"),
        (lambda x: graphnn.unique(x), "unique"),
        (lambda x: x.unique_consecutive(), "unique_consecutive"),
        (lambda x: x.long().bincount(), "bincount"),
        (lambda x: x.repeat_interleave(x.long()), "repeat_interleave"),
    ],
)
def test_data_dependent_sizes_refused_inside_compile(call, op):
    f = graphnn.compile(call, fullgraph=True)
    with pytest.raises(graphnn.TraceError, match=op):
        f(graphnn.tensor([1.0, 0.0, 2.0]))


def test_grad_fn_names(torch):
    x = np.arange(6.0).reshape(2, 3)
    for name in ("flip", "roll", "diag_embed", "diagonal", "kron", "trace", "dot", "addmm", "cdist", "take"):
        fn = {
            "flip": lambda L, t: t.flip(0),
            "roll": lambda L, t: t.roll(1, 0),
            "diag_embed": lambda L, t: L.diag_embed(t),
            "diagonal": lambda L, t: t.diagonal(),
            "kron": lambda L, t: L.kron(t, t),
            "trace": lambda L, t: t[:, :2].trace(),
            "dot": lambda L, t: L.dot(t[0], t[1]),
            "addmm": lambda L, t: L.addmm(t[:, :2], t, t.t()),
            "cdist": lambda L, t: L.cdist(t, t),
            "take": lambda L, t: L.take(t, L.tensor([0, 2])),
        }[name]
        g = fn(graphnn, graphnn.tensor(x, requires_grad=True)).grad_fn
        t = fn(torch, torch.tensor(x, requires_grad=True)).grad_fn
        assert type(g).__name__ == type(t).__name__, name


def test_tensor_attributes(torch):
    a = np.arange(24.0).reshape(2, 3, 4)
    for L in (graphnn, torch):
        x = L.tensor(a)
        got = (
            x.stride(),
            x.stride(-1),
            x.transpose(0, 2).stride(),
            x[:, 1:].storage_offset(),
            x[1].storage_offset(),
            x.storage_offset(),
            x.element_size(),
            x.itemsize,
            x.nbytes,
            x.ndimension(),
            x.nelement(),
            x.is_contiguous(),
            x.transpose(0, 1).is_contiguous(),
            x.is_same_size(x + 1),
            x.is_same_size(x[0]),
            x.is_signed(),
            L.tensor([True]).is_signed(),
            x.is_floating_point(),
            L.is_floating_point(x.long()),
            tuple(x.new(2, 3).shape),
            x.new([1, 2]).dtype == L.float64,
            tuple(x.new().shape),
            x[1].data_ptr() - x.data_ptr(),
            L.broadcast_shapes((2, 1), (3,), 1),
        )
        if L is graphnn:
            mine = got
    assert mine == got


def _hooked_grads(L, x0, w0, compiled: bool):
    """Gradients through hooks: one scaling a non-leaf's gradient, one observing a leaf's, one removed."""
    seen = []
    x = L.tensor(x0, requires_grad=True)
    w = L.tensor(w0, requires_grad=True)

    def step(x, w):
        h = x * w
        h.register_hook(lambda g: g * 2)
        y = (h.tanh() * w).sum()
        y.backward()
        return y

    x.register_hook(lambda g: seen.append(tuple(g.shape) if compiled else np.array(to_np(g))))
    handle = w.register_hook(lambda g: g * 0)
    handle.remove()
    w.register_hook(lambda g: g + 1)
    (graphnn.compile(step) if compiled else step)(x, w)
    return to_np(x.grad), to_np(w.grad), seen


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_register_hook(torch, compiled):
    x0, w0 = _r(3), _r(3, seed=1)
    gx, gw, seen = _hooked_grads(graphnn, x0, w0, compiled)
    tx, tw, tseen = _hooked_grads(torch, x0, w0, False)
    tol = 8 * np.finfo(np.float64).eps * (1 + np.abs(tw))
    close(gx, tx, "x.grad", tol)
    close(gw, tw, "w.grad", tol)
    assert len(seen) == len(tseen) == 1
    if compiled:  # compiled code runs the hook while tracing, on the symbolic gradient
        assert seen[0] == tseen[0].shape
    else:
        close(seen[0], tseen[0], "hook argument", tol)


def test_register_hook_errors():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        graphnn.ones(2).register_hook(lambda g: g)
    x = graphnn.ones(2, requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match="shape"):
        y.sum().backward()


def test_errors_name_the_op():
    x = graphnn.ones(2, 3)
    with pytest.raises(RuntimeError, match="dot"):
        graphnn.dot(x[0], x[1, :2])
    with pytest.raises(RuntimeError, match="roll"):
        x.roll((1, 2), 0)
    with pytest.raises(IndexError, match="index_add"):
        x.index_add(0, graphnn.tensor([2]), graphnn.ones(1, 3))
    with pytest.raises(RuntimeError, match="hsplit"):
        graphnn.hsplit(x, 2)
    with pytest.raises(RuntimeError, match="broadcast_shapes"):
        graphnn.broadcast_shapes((2,), (3,))


def _module_hook_grads(L, nn, compiled: bool):
    """A compiled module (backward outside it): a hook on a parameter clamps its gradient, one in forward
    doubles an intermediate's."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2).double()

        def forward(self, x):
            h = self.lin(x)
            h.register_hook(lambda g: g * 2)
            return h.tanh().sum()

    net = Net()
    with L.no_grad():
        net.lin.weight.copy_(L.tensor(_r(2, 3, seed=3)))
        net.lin.bias.copy_(L.tensor(_r(2, seed=4)))
    net.lin.weight.register_hook(lambda g: g.clamp(-0.3, 0.3))
    x = L.tensor(_r(4, 3, seed=5), requires_grad=True)
    (graphnn.compile(net) if compiled else net)(x).backward()
    return [to_np(t) for t in (x.grad, net.lin.weight.grad, net.lin.bias.grad)]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_register_hook_in_module(torch, compiled):
    got = _module_hook_grads(graphnn, graphnn.nn, compiled)
    want = _module_hook_grads(torch, torch.nn, False)
    for g, w, name in zip(got, want, ("x", "weight", "bias")):
        close(g, w, f"d {name}", 64 * np.finfo(np.float64).eps * (1 + np.abs(w)))


def test_keyword_spellings(torch):
    a = _r(2, 3)
    for L in (graphnn, torch):
        x = L.tensor(a)
        got = [
            L.flip(x, dims=[0]),
            x.flip(dims=(1,)),
            L.tile(x, dims=(2, 1)),
            L.swapdims(x, dim0=0, dim1=1),
            L.swapaxes(x, axis0=1, axis1=0),
            L.roll(x, shifts=1, dims=1),
            L.movedim(x, source=1, destination=0),
            L.repeat_interleave(x, repeats=L.tensor([2]), dim=0),
            L.diagonal(x, offset=1, dim1=1, dim2=0),
        ]
        got = [to_np(t) for t in got]
        if L is graphnn:
            mine = got
    for m, t in zip(mine, got):
        close(m, t)


def test_hook_registered_after_compiling_traces_again():
    lin = graphnn.nn.Linear(3, 1)
    x = graphnn.ones(2, 3)

    @graphnn.compile
    def step(x):
        lin.zero_grad()
        lin(x).sum().backward()
        return lin.weight.grad * 1

    plain = step(x).numpy().copy()
    handle = lin.weight.register_hook(lambda g: g * 3)
    close(step(x), plain * 3)
    handle.remove()
    close(step(x), plain)
