"""Indexing against PyTorch: reading with integer tensors, lists of ints and bool masks (with slices, None, Ellipsis,
negative indices), and assignment through every indexing form (`x[k] = v`, `x[k] op= v`), eagerly (in place, with
PyTorch's gradients: the overwritten region gets none, the assigned value the gradient of its positions) and under
graphnn.compile (functionalized: the compiled graph computes the updated tensor, forward and backward).

parity_util.check compares values and gradients within twice their rounding-error bound (integers exactly).
"""

from __future__ import annotations

import numpy as np
import pytest

import graphnn
from parity_util import check, close, to_np


def _x(shape=(4, 5, 3), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def both(torch, fn, inputs, grad=True, compiled=(False, True)):
    """fn(L, *tensors) with L = graphnn and L = torch: outputs and gradients, eagerly and compiled."""
    for c in compiled:
        check(torch, lambda *a: fn(graphnn, *a), lambda *a: fn(torch, *a), inputs, compiled=c, grad=grad)


def grad_fn_name(torch, fn, shape=(4, 5, 3)) -> None:
    names = []
    for L in (graphnn, torch):
        x = L.tensor(_x(shape), requires_grad=True)
        names.append(type(fn(L, x).grad_fn).__name__)
    assert names[0] == names[1], names


# -- reading ---------------------------------------------------------------------------------------------------
READS = {
    "tensor": lambda L, x: x[L.tensor([2, 0, 2])],
    "tensor_2d": lambda L, x: x[L.tensor([[0, 1], [3, 3]])],
    "list": lambda L, x: x[[0, 2]],
    "list_last": lambda L, x: x[:, [-1], :],
    "negative_tensor": lambda L, x: x[L.tensor([-1, -4, 1])],
    "second_dim": lambda L, x: x[:, [4, 0, 1]],
    "two_adjacent": lambda L, x: x[:, [0, 4], [2, 1]],
    "two_apart": lambda L, x: x[[0, 3], :, [2, 1]],
    "broadcast": lambda L, x: x[[[0], [3]], [1, 2, 4]],
    "int_and_list": lambda L, x: x[1, [0, 3]],
    "int_apart": lambda L, x: x[1, :, [0, 2]],
    "none_ellipsis": lambda L, x: x[None, ..., [2, 0]],
    "slice_and_list": lambda L, x: x[1:3, [1, 2], ::2],
    "zero_d_tensor": lambda L, x: x[L.tensor(2)],
    "zero_d_and_list": lambda L, x: x[L.tensor(1), :, [0, 2]],
    "repeated": lambda L, x: x[[1, 1, 1]] * x[[1, 2, 1]],
    "bool_scalars": lambda L, x: x[True][0, False].sum() + x[..., True][..., 0] + x[True, [1, 3]].sum(0),
    "bool_with_list": lambda L, x: x[0, True, [1, 2]],
}


@pytest.mark.parametrize("name", sorted(READS))
def test_read_with_integer_indices(torch, name):
    both(torch, lambda L, x: READS[name](L, x) * 2, [_x()])


def test_bool_scalar_indices(torch):
    """x[True] adds a dimension (x[False] an empty one), as a 0-d bool tensor does; assigning through them."""
    outs = []
    for L in (graphnn, torch):
        x = L.tensor(_x())
        shapes = [tuple(x[k].shape) for k in (True, False, L.tensor(True), (L.tensor(False), 1), ([0, 1], True))]
        y = L.zeros(2, 3)
        y[True] = 1.0
        y[L.tensor(False)] = 5.0
        y[0, True, [1]] = 7.0
        outs.append((shapes, to_np(y).tolist()))
    assert outs[0] == outs[1]
    with pytest.raises(graphnn.TraceError, match="0-d bool tensor needs its value"):
        graphnn.compile(lambda x: x[x.sum() > 0], fullgraph=True)(graphnn.ones(2))


def test_read_index_tensor_arguments(torch):
    """Index tensors passed to the compiled function: bound at every call (negative ones wrapped)."""
    both(torch, lambda L, x, i: (x[i], x[:, i[:2]]), [_x(), np.array([3, -1, 0, -4])])


MASK_READS = {
    "full": lambda L, x: x[x > 0.2],
    "rows": lambda L, x: x[x[:, 0, 0] > 0],
    "second_dim": lambda L, x: x[:, x[0, :, 1] < 0.5],
    "two_dims": lambda L, x: x[x[:, :, 0] > 0],
    "list": lambda L, x: x[[True, False, True, True]],
}


@pytest.mark.parametrize("name", sorted(MASK_READS))
def test_read_with_bool_masks(torch, name):
    both(torch, lambda L, x: MASK_READS[name](L, x) * 3, [_x()], compiled=(False,))


def test_read_with_a_mask_inside_compiled_code_is_a_clear_error():
    f = graphnn.compile(lambda x: x[x > 0], fullgraph=True)
    with pytest.raises(graphnn.TraceError, match="bool mask needs the mask's values"):
        f(graphnn.randn(3, 4))
    g = graphnn.compile(lambda x: x[[True, False, True]] * 2)  # a literal mask is a constant of the trace
    x = graphnn.randn(3, 2)
    close(g(x), to_np(x)[[0, 2]] * 2)


def test_read_grad_fn_names(torch):
    grad_fn_name(torch, lambda L, x: x[[0, 1]])
    grad_fn_name(torch, lambda L, x: x[x > 0])
    grad_fn_name(torch, lambda L, x: x[0])
    grad_fn_name(torch, lambda L, x: x[:, 1:])


# -- assignment ------------------------------------------------------------------------------------------------
def _assign(key_fn, value_fn, op=None, finite=False):
    """fn(L, x, v): y = x * 1, then y[key] = value (or y[key] op= value), returning y and y's later use (finite:
    exp(y) instead of y, for infinite values)."""

    def fn(L, x, v):
        y = x * 1
        key, value = key_fn(L, y), value_fn(L, v)
        if op is None:
            y[key] = value
        elif op == "mul":
            y[key] *= value
        elif op == "add":
            y[key] += value
        else:
            y[key] -= value
        if finite:
            y = y.exp()
        return y, (y * y).sum(-1)

    return fn


V = np.random.default_rng(5).standard_normal((4, 5, 3))
SETS = {
    "slice_number": _assign(lambda L, y: (slice(None), slice(None, 2)), lambda L, v: 0.0),
    "row_tensor": _assign(lambda L, y: 0, lambda L, v: v[0]),
    "slice_broadcast": _assign(lambda L, y: (slice(1, None), slice(None, None, 2)), lambda L, v: v[0, 0]),
    "ellipsis_last": _assign(lambda L, y: (Ellipsis, -1), lambda L, v: 5.0),
    "none_int": _assign(lambda L, y: (None, 2), lambda L, v: v[:1, 0]),
    "whole": _assign(lambda L, y: slice(None), lambda L, v: v[0]),
    "mask_inf": _assign(lambda L, y: y > 0.5, lambda L, v: -float("inf"), finite=True),
    "mask_0d_tensor": _assign(lambda L, y: y < 0, lambda L, v: v[0, 0, 0]),
    "mask_rows_broadcast": _assign(lambda L, y: y[:, 0, 0] > 0, lambda L, v: v[0]),
    "mask_inner_broadcast": _assign(lambda L, y: y[..., 0] > 0, lambda L, v: v[0, 0]),
    "tensor_index": _assign(lambda L, y: L.tensor([2, 0]), lambda L, v: v[:2]),
    "list_number": _assign(lambda L, y: [0, 2], lambda L, v: 1.0),
    "second_dim_list": _assign(lambda L, y: (slice(None), [1, 3]), lambda L, v: v[:, :2]),
    "two_adjacent": _assign(lambda L, y: (slice(None), [0, 4], [2, 1]), lambda L, v: v[:, 0, :2]),
    "two_apart": _assign(lambda L, y: ([0, 3], slice(None), [2, 1]), lambda L, v: v[:2, :, 0]),
    "negative_list": _assign(lambda L, y: [-1, -3], lambda L, v: v[0]),
    "zero_d_index": _assign(lambda L, y: L.tensor(1), lambda L, v: v[3]),
    "zero_d_and_list": _assign(lambda L, y: (L.tensor(2), slice(None), [0, 2]), lambda L, v: v[0, :, :2]),
    "slice_and_list": _assign(lambda L, y: (slice(1, 3), [1, 2]), lambda L, v: v[0, :2]),
    "mul_slice": _assign(lambda L, y: (slice(None), slice(None, 2)), lambda L, v: 0.0, "mul"),
    "mul_slice_tensor": _assign(lambda L, y: (slice(None), slice(1, 3)), lambda L, v: v[0, :2], "mul"),
    "add_row": _assign(lambda L, y: 1, lambda L, v: v[1], "add"),
    "sub_int_int": _assign(lambda L, y: (0, 1), lambda L, v: 1.0, "sub"),
    "add_list": _assign(lambda L, y: [0, 3], lambda L, v: v[:2], "add"),
    "mul_mask": _assign(lambda L, y: y[:, 0, 0] > 0, lambda L, v: 2.0, "mul"),
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_assignment(torch, name):
    compiled = (False,) if name == "mul_mask" else (False, True)  # y[mask] *= 2 reads y[mask] first
    both(torch, SETS[name], [_x(), V], compiled=compiled)


def test_assignment_with_one_value_per_selected_element(torch):
    """x[mask] = t with one value per True element: eager code (the count needs the mask's values)."""
    fn = _assign(lambda L, y: y > 0, lambda L, v: v[v > 0] * 2)
    both(torch, fn, [_x(), _x(seed=0)], compiled=(False,))
    fn = _assign(lambda L, y: y[:, 0, 0] > 0, lambda L, v: v[: int((V[:, 0, 0] > 0).sum())])
    both(torch, fn, [V, V], compiled=(False,))


def test_view_of_view_and_transposed_assignment(torch):
    def fn(L, x, v):
        y = x * 1
        y[1][2:] = v[0, :3]
        y[2][1:4] *= 3.0
        y.t()[1, 1] += 1.0
        z = y.transpose(0, 1)
        z[0] = v[0, :4]
        return y, z * 2

    both(torch, fn, [_x((4, 5)), _x((4, 5), 1)])


def test_generation_masking(torch):
    """The masked assignment of top-k sampling: logits below the k-th largest become -inf."""

    def fn(L, logits):
        logits = logits * 1
        v, _ = L.topk(logits, 3)
        logits[logits < v[:, [-1]]] = -float("Inf")
        return L.softmax(logits, dim=-1)

    both(torch, fn, [_x((3, 8))])


def test_assignment_grad_fn_names(torch):
    def setter(key_fn, value=0.0, op=None):
        def fn(L, x):
            y = x * 1
            if op == "mul":
                y[key_fn(L, y)] *= value
            else:
                y[key_fn(L, y)] = value
            return y

        return fn

    grad_fn_name(torch, setter(lambda L, y: (slice(None), slice(None, 2))))
    grad_fn_name(torch, setter(lambda L, y: y > 0))
    grad_fn_name(torch, setter(lambda L, y: L.tensor([0, 2])))
    grad_fn_name(torch, setter(lambda L, y: 0))
    grad_fn_name(torch, setter(lambda L, y: (slice(None), slice(None, 2)), 2.0, "mul"))


def test_assignment_writes_storage_and_views_follow(torch):
    """Eager assignment writes the tensor's memory: views taken before see it (without gradients)."""
    outs = []
    for L in (graphnn, torch):
        x = L.zeros(3, 4)
        row, col = x[1], x[:, 2]
        x[1, 1:3] = 5.0
        x[x > 4] += 1.0
        x[[0, 2], 3] = L.tensor([7.0, 8.0])
        col *= 2
        outs.append((to_np(x).tolist(), to_np(row).tolist(), to_np(col).tolist(), x._version > 0))
    assert outs[0] == outs[1]


def test_assignment_inside_compiled_code_updates_arguments():
    def f(x, m):
        x[:, 0] = 0.0
        x[m] = -1.0
        x[[1, 2], [3, 1]] += 10.0
        x[1:, 1:3] *= 2.0
        return x.sum()

    for fn in (f, graphnn.compile(f)):
        x = graphnn.tensor(np.arange(12.0).reshape(3, 4))
        m = x > 9.5
        total = fn(x, m)
        want = np.arange(12.0).reshape(3, 4)
        want[:, 0] = 0.0
        want[want > 9.5] = -1.0
        want[[1, 2], [3, 1]] += 10.0
        want[1:, 1:3] *= 2.0
        close(x, want.astype(np.float32))
        close(total, np.float32(want.sum()))


def test_assignment_of_a_value_that_requires_grad(torch):
    """A tensor without gradient takes a value that requires grad: it then requires grad (as in PyTorch)."""

    def fn(L, v):
        y = L.zeros(4, 3, dtype=L.float64)
        y[1:3] = v[:2]
        y[L.tensor([3])] = v[2:3] * 2
        return y

    both(torch, fn, [_x((3, 3))])


def test_repeated_indices(torch):
    """A position assigned several times: PyTorch leaves the winner undefined, and its CPU loops leave the last
    value written (programs rely on it: the last position of each token); so does graphnn, for setitem, scatter and
    integer tensors alike."""
    for L in (graphnn, torch):
        y = L.zeros(4)
        y[[0, 0, 2]] = L.tensor([2.0, 2.0, 5.0])
        y[L.tensor([3, 3])] = 1.5
        assert to_np(y).tolist() == [2.0, 0.0, 5.0, 1.5]
        y = L.zeros(3)
        y[[1, 1]] = L.tensor([1.0, 4.0])
        assert to_np(y).tolist() == [0.0, 4.0, 0.0]
        last = L.zeros(5, dtype=L.long)
        last[L.tensor([3, 1, 3, 4, 1])] = L.arange(5)
        assert to_np(last).tolist() == [0, 4, 0, 2, 3]
        w = L.zeros(3, 4)
        w[L.tensor([0, 0, 2]), 1:3] = L.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        assert to_np(w).tolist() == [[0, 3, 4, 0], [0, 0, 0, 0], [0, 5, 6, 0]]
        s = L.zeros(3, 2).scatter(0, L.tensor([[0, 1], [0, 1], [2, 1]]), L.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
        assert to_np(s).tolist() == [[3, 0], [0, 6], [5, 0]]
    put = graphnn.compile(lambda a, i, v: a.index_put((i,), v))
    got = put(graphnn.zeros(3), graphnn.tensor([0, 0, 2, 0]), graphnn.tensor([1.0, 2.0, 3.0, 4.0]))
    assert to_np(got).tolist() == [4.0, 0.0, 3.0]


def test_integer_and_bool_tensors(torch):
    def fn(L, a, b):
        a = a * 1
        a[a > 2] = 0
        a[[0, 1], [1, 0]] = L.tensor([7, 9])
        a[:, 2] += 1
        b = b.clone()
        b[0] = True
        b[[1, 2], [0, 0]] = False
        return a, b, a[[2, 0]], b[[1]]

    both(torch, fn, [np.random.default_rng(0).integers(-4, 5, (3, 4)), np.random.default_rng(1).random((3, 4)) < 0.5])


# -- errors ------------------------------------------------------------------------------------------------------
ERRORS = [
    (lambda L, x: x[5], IndexError, "index 5 is out of bounds for dimension 0 with size 4"),
    (lambda L, x: x[[0, 4]], IndexError, "index 4 is out of bounds for dimension 0 with size 4"),
    (lambda L, x: x[L.tensor([0, -5])], IndexError, "index -5 is out of bounds for dimension 0 with size 4"),
    (lambda L, x: x[:, :, :, 0], IndexError, "too many indices for tensor of dimension 3"),
    (lambda L, x: x[L.tensor([[True, False]])], IndexError, "The shape of the mask"),
    (lambda L, x: x[L.tensor([1.0])], IndexError, "tensors used as indices must be long"),
    (lambda L, x: x[::-1], ValueError, "step must be greater than zero"),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_index_errors(torch, i):
    fn, exc, match = ERRORS[i]
    for L in (graphnn, torch):
        with pytest.raises(exc, match=match if L is graphnn else None):
            fn(L, L.tensor(_x()))


def test_assignment_errors(torch):
    def value_shape(L):
        x = L.zeros(3, 4)
        x[:, [0, 1]] = L.ones(3)

    def mask_values(L):
        x = L.zeros(3, 4)
        x[x > -1] = L.ones(5)

    def leaf_view(L):
        L.zeros(3, requires_grad=True)[0] = 1.0

    def leaf_index(L):
        L.zeros(3, requires_grad=True)[[0]] = 1.0

    def dtypes(L):
        L.zeros(3, dtype=L.int64)[L.tensor([0])] = L.tensor([1.5])

    for fn, match in [
        (
            value_shape,
            r"shape mismatch: value tensor of shape \[3\] cannot be broadcast to indexing result of shape \[3, 2\]",
        ),
        (mask_values, r"shape mismatch: value tensor of shape \[5\] cannot be broadcast"),
        (leaf_view, "a view of a leaf Variable that requires grad is being used in an in-place operation"),
        (leaf_index, "a leaf Variable that requires grad is being used in an in-place operation"),
        (dtypes, "Index put requires the source and destination dtypes match"),
    ]:
        for L in (graphnn, torch):
            with pytest.raises(RuntimeError, match=match if L is graphnn else None):
                fn(L)


def test_out_of_range_index_argument_in_compiled_code():
    f = graphnn.compile(lambda x, i: x[i] * 2)
    x = graphnn.randn(3, 2)
    close(f(x, graphnn.tensor([2, -3])), to_np(x)[[2, 0]] * 2)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        f(x, graphnn.tensor([0, 3]))
