"""Indexing with PyTorch's semantics: `x[key]` and `x[key] = value`, eagerly and inside graphnn.compile.

A key is split into its basic part (ints, slices, None, Ellipsis: one `slice` and a reshape, a view of x) and its
advanced part (integer tensors, lists of ints, bool masks), applied to the basic result as in PyTorch: ints first
(they remove their dimension), then the advanced indices, broadcast together; their result dimensions replace the
indexed ones when those are adjacent, else they come first. Advanced indices become one gather (`take`) over the
indexed dimensions merged into one (a linear index), whose gradient is a scatter-add.

Assignment is functional: the new value of x is computed with ordinary ops (`select` between x and the value
placed by `slice_grad` or by a scatter-add `take_grad`; an index that repeats places the last of its values, as
PyTorch's CPU loops do, where it leaves the winner undefined) and x stands for it from then on (Tensor._inplace_op:
its storage is written eagerly, its traced value renamed inside graphnn.compile). So the overwritten region gets
no gradient and the assigned value gets the gradient of its positions, as in PyTorch. A bool mask has a
data-dependent number of True elements: reading x[mask] needs its values (eager code), assigning through it
does not when the value is the same for every selected element (a number, or a tensor broadcast over them).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.core.dispatch import apply, located, relabel
from graphnn.core.sym_number import SymNumber


def _tensor():
    from graphnn.core import tensor

    return tensor


@dataclass
class Plan:
    """An index into a tensor of shape `shape`: the basic slice of every dimension and what follows it."""

    shape: tuple
    starts: list = field(default_factory=list)
    stops: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    final: list = field(default_factory=list)  # shape of the basic result (int dims gone, None dims added)
    selects: list = field(default_factory=list)  # (position in final, 0-d int64 tensor): int-like tensor indices
    adv: list = field(default_factory=list)  # (position in final, int64 tensor | ("mask", bool tensor, literal))

    @property
    def slice_shape(self) -> tuple:
        return tuple(max(0, -(-(e - s) // p)) for s, e, p in zip(self.starts, self.stops, self.steps))

    @property
    def sliced(self) -> bool:
        return (self.starts, self.stops, self.steps) != ([0] * len(self.shape), list(self.shape), [1] * len(self.shape))

    @property
    def basic(self) -> bool:
        return not self.adv and not self.selects

    @property
    def key(self) -> tuple:
        return (tuple(self.starts), tuple(self.stops), tuple(self.steps), tuple(self.final))


# -- parsing -----------------------------------------------------------------------------------------------------
def _as_index(k):
    """Lists, ranges, tuples inside the key and NumPy arrays become int64 or bool tensors (literals of the call)."""
    T = _tensor()
    if isinstance(k, SymNumber) and k.kind is int:  # (an int argument traced as a graph input: a 0-d index)
        return k.as_tensor("int64")
    if isinstance(k, range):
        k = list(k)
    if isinstance(k, (list, np.ndarray)) or (isinstance(k, tuple) and k and not isinstance(k[0], slice)):
        arr = np.asarray(k)
        if arr.dtype == object:
            raise IndexError(located(f"unsupported index {k!r}"))
        if arr.size == 0:
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "biu":
            raise IndexError(located("tensors used as indices must be long, int, byte or bool tensors"))
        t = T.Tensor._wrap(np.asarray(arr, bool if arr.dtype.kind == "b" else np.int64))
        t._literal = True
        return t
    return k


def _dims_used(k) -> int:
    T = _tensor()
    if k is None or k is Ellipsis:
        return 0
    if isinstance(k, (bool, np.bool_)):
        return 0
    if isinstance(k, T.Tensor) and k.dtype_name == "bool":
        return k.ndim
    return 1


def parse(x, key) -> Plan:
    """The Plan of x[key] (PyTorch's IndexErrors for keys that do not fit x)."""
    T = _tensor()
    if not isinstance(key, tuple):
        key = (key,)
    items = [_as_index(k) for k in key]
    if sum(1 for k in items if k is Ellipsis) > 1:
        raise IndexError(located("an index can only have a single ellipsis ('...')"))
    used = sum(_dims_used(k) for k in items)
    if used > x.ndim:
        raise IndexError(located(f"too many indices for tensor of dimension {x.ndim}"))
    if any(k is Ellipsis for k in items):
        i = next(j for j, k in enumerate(items) if k is Ellipsis)
        items = items[:i] + [slice(None)] * (x.ndim - used) + items[i + 1 :]
    plan = Plan(tuple(x.shape))
    d = 0
    for k in items:
        if k is None:
            plan.final.append(1)
            continue
        if isinstance(k, (bool, np.bool_)) or (isinstance(k, T.Tensor) and k.dtype_name == "bool" and not k.ndim):
            _bool_scalar(plan, k)
            continue
        if isinstance(k, T.Tensor):
            d = _tensor_index(plan, x, d, k)
            continue
        n = x.shape[d]
        if isinstance(k, (numbers.Integral, np.integer)) and not isinstance(k, bool):
            i = int(k)
            if not -n <= i < n:
                raise IndexError(located(f"index {i} is out of bounds for dimension {d} with size {n}"))
            i %= n
            _keep(plan, i, i + 1, 1)
        elif isinstance(k, slice):
            s, e, p = k.indices(n)
            if p <= 0:
                raise ValueError(located("step must be greater than zero"))
            _keep(plan, s, max(e, s), p)
            plan.final.append(max(0, -(-(max(e, s) - s) // p)))
        else:
            raise IndexError(
                located(
                    f"only integers, slices (`:`), ellipsis (`...`), None and long or bool tensors are valid "
                    f"indices (got {type(k).__name__})"
                )
            )
        d += 1
    for n in x.shape[d:]:
        _keep(plan, 0, n, 1)
        plan.final.append(n)
    return plan


def _keep(plan: Plan, start: int, stop: int, step: int) -> None:
    plan.starts.append(start)
    plan.stops.append(stop)
    plan.steps.append(step)


def _tensor_index(plan: Plan, x, d: int, k) -> int:
    """Record a tensor index of dimension(s) d...: a bool mask, a 0-d integer (like an int), an integer tensor."""
    dt = k.dtype_name
    if dt == "bool":
        m = k.ndim
        for j, (a, b) in enumerate(zip(k.shape, x.shape[d:])):
            if a != b:
                raise IndexError(
                    located(
                        f"The shape of the mask {list(k.shape)} at index {j} does not match the shape of the "
                        f"indexed tensor {list(x.shape)} at index {d + j}"
                    )
                )
        plan.adv.append((len(plan.final), ("mask", k, getattr(k, "_literal", False))))
        for n in x.shape[d : d + m]:
            _keep(plan, 0, n, 1)
            plan.final.append(n)
        return d + m
    if dt != "int64":
        raise IndexError(located("tensors used as indices must be long, int, byte or bool tensors"))
    n = x.shape[d]
    if k.ndim == 0 and k._data is not None and _tracer.current() is None:
        return _int_like(plan, x, d, int(k.item()))
    _keep(plan, 0, n, 1)
    (plan.selects if k.ndim == 0 else plan.adv).append((len(plan.final), k))
    plan.final.append(n)
    return d + 1


def _bool_scalar(plan: Plan, k) -> None:
    """A Python bool or 0-d bool tensor: a new dimension of size 1 with an advanced index into it, [0] (True) or []
    (False), which broadcasts with the other advanced indices as in PyTorch."""
    T = _tensor()
    if isinstance(k, T.Tensor):
        if k._data is None or (_tracer.current() is not None and not getattr(k, "_literal", False)):
            raise T.TraceError(
                located(
                    "indexing with a 0-d bool tensor needs its value (the result has a dimension of size 1 or 0), "
                    "but it is symbolic inside graphnn.compile; use torch.where instead"
                )
            )
        k = bool(k._data)
    plan.final.append(1)
    at = T.Tensor._wrap(np.zeros(int(k), np.int64))
    at._literal = True
    plan.adv.append((len(plan.final) - 1, at))


def _int_like(plan: Plan, x, d: int, i: int) -> int:
    n = x.shape[d]
    if not -n <= i < n:
        raise IndexError(located(f"index {i} is out of bounds for dimension {d} with size {n}"))
    i %= n
    _keep(plan, i, i + 1, 1)
    return d + 1


# -- reading -----------------------------------------------------------------------------------------------------
def apply_basic(x, plan: Plan):
    """The basic part of the index: a slice and a reshape (a view of x)."""
    T = _tensor()
    out = x
    if plan.sliced:
        attrs = {"starts": tuple(plan.starts), "stops": tuple(plan.stops), "steps": tuple(plan.steps)}
        out = apply("slice", [x], attrs, name="SliceBackward0")
    if tuple(plan.final) != tuple(out.shape):
        out = T.reshape(out, tuple(plan.final), "SelectBackward0")
    if out is not x and out._base is not None:
        out._view_op = "slice"
        out._view_src, out._view_key = x, plan.key
        out._view_fns = (lambda t, p=plan: apply_basic(t, p), lambda t, v, p=plan: basic_update(t, p, v))
    return out


def getitem(x, key):
    """x[key]."""
    plan = parse(x, key)
    y = apply_basic(x, plan)
    if plan.basic:
        return y
    y, adv = _apply_selects(y, plan)
    if not adv:
        return y
    y2, L, dest = _linear_index(y, adv, read=True)
    return relabel(apply("take", [y2, L], {"axis": dest}, name="IndexBackward0"), "IndexBackward0", [x])


def _apply_selects(y, plan: Plan):
    """0-d integer tensors select their dimension (like ints) before the advanced indices: (result, adv indices
    with their positions moved accordingly)."""
    adv = list(plan.adv)
    for pos, k in sorted(plan.selects, key=lambda s: -s[0]):
        idx = _checked(k, y.shape[pos], pos)
        y = apply("take", [y, idx], {"axis": pos}, name="SelectBackward0")
        adv = [(p - 1 if p > pos else p, a) for p, a in adv]
    return y, adv


def _checked(idx, n: int, dim: int):
    """idx with negative entries wrapped (as PyTorch), after checking every entry is in [-n, n): now for concrete
    indices, at every call of compiled code for indices that are its inputs (the gather checks the rest)."""
    from graphnn.compiler.tracer import check_values

    def check(a):
        bad = (a < -n) | (a >= n)
        if bad.any():
            raise IndexError(located(f"index {int(a[bad].flat[0])} is out of bounds for dimension {dim} with size {n}"))

    check_values(idx, check)
    if getattr(idx, "_literal", False) or (idx._data is not None and _tracer.current() is None):
        a = idx._data
        return _tensor().Tensor._wrap(np.where(a < 0, a + n, a)) if (a < 0).any() else idx
    return apply("select", [idx < 0, idx + n, idx])


def _mask_positions(mask, literal: bool, what: str) -> list:
    """The integer positions of a bool mask's True elements (one int64 tensor per mask dimension): needs its
    values, so a mask computed inside graphnn.compile is refused."""
    T = _tensor()
    tr = _tracer.current()
    if tr is not None and not literal and mask._data is not None:
        # a concrete mask captured by the trace (a global or a module's attribute, e.g. a GCN's train mask): its
        # True positions are constants of the trace, which is used again only while the mask holds these values
        tr.guard(_tracer.SameValues(mask), True)
        literal = True
    if mask._data is None or (tr is not None and not literal):
        raise T.TraceError(
            located(
                f"{what} with a bool mask needs the mask's values (the result has one element per True element), "
                "but the mask is symbolic inside graphnn.compile; use torch.where(mask, x, other) or "
                "x.masked_fill(mask, value) instead, or index outside the compiled function"
            )
        )
    return [T.Tensor._wrap(np.asarray(p, np.int64)) for p in np.nonzero(mask._data)]


def _integer_indices(adv: list, what: str) -> list:
    """[(position, int64 tensor)] with masks expanded to their positions."""
    out = []
    for pos, k in adv:
        if isinstance(k, tuple):
            _, mask, literal = k
            for j, p in enumerate(_mask_positions(mask, literal, what)):
                p._literal = True
                out.append((pos + j, p))
        else:
            out.append((pos, k))
    return out


def _linear_index(y, adv: list, read: bool):
    """(y with the indexed dimensions merged into one, the linear index into it, that dimension's position)."""
    from graphnn.ir.types import broadcast_shapes

    idx = _integer_indices(adv, "indexing" if read else "assignment")
    pos = [p for p, _ in idx]
    ks = [_checked(k, y.shape[p], p) for p, k in idx]
    if len(idx) == 1:
        return y, ks[0], pos[0]
    try:
        broadcast_shapes(*[tuple(k.shape) for k in ks])
    except ValueError:
        shapes = ", ".join(str(list(k.shape)) for k in ks)
        raise IndexError(
            located(f"shape mismatch: indexing tensors could not be broadcast together with shapes {shapes}")
        )
    adjacent = pos == list(range(pos[0], pos[0] + len(pos)))
    dest = pos[0] if adjacent else 0
    rest = [d for d in range(y.ndim) if d not in pos]
    perm = rest[:dest] + pos + rest[dest:]
    yp = y.permute(*perm) if perm != list(range(y.ndim)) else y
    sizes = [y.shape[p] for p in pos]
    merged = tuple(yp.shape[:dest]) + (int(np.prod(sizes, dtype=np.int64)),) + tuple(yp.shape[dest + len(pos) :])
    L, stride = None, 1
    for k, n in reversed(list(zip(ks, sizes))):
        term = k * stride if stride != 1 else k
        L = term if L is None else term + L
        stride *= n
    return _tensor().reshape(yp, merged), L, dest


# -- assignment ----------------------------------------------------------------------------------------------------
def setitem(x, key, value) -> None:
    """x[key] = value, in place (see the module docstring)."""
    T = _tensor()
    plan = parse(x, key)
    if plan.basic and _same_view(value, x, plan):
        return  # x[k] op= v: the view x[k] was already updated in place, and x with it
    if isinstance(value, T.Tensor):
        if not plan.basic and value.dtype_name != x.dtype_name:
            raise RuntimeError(
                located(
                    f"Index put requires the source and destination dtypes match, got {T._TORCH_TYPE[x.dtype_name]} "
                    f"for the destination and {T._TORCH_TYPE[value.dtype_name]} for the source."
                )
            )
        value = value.type_as_dtype(x.dtype_name)
    elif not isinstance(value, (numbers.Number, np.generic)):
        value = T.as_tensor(value, x.dtype_name)
    x._inplace_op("__setitem__", lambda: update(x, plan, value), cast=True, view_leaf=plan.basic)


def _same_view(value, x, plan: Plan) -> bool:
    """Is value the current view x[key] itself (so assigning it changes nothing)?"""
    if getattr(value, "_view_src", None) is not x or value._view_key != plan.key:
        return False
    tr = _tracer.current()
    if tr is not None:
        return value._trace is tr and tr.rebinds.get(id(value._base), 0) == value._view_gen
    return value._vc is not None and value._vc[1] == value._view_gen


def update(x, plan: Plan, value):
    """The new value of x after x[plan] = value (value: a number or a tensor of x's dtype)."""
    if plan.basic:
        return relabel(basic_update(x, plan, value), "CopySlices", [x, value])
    y = apply_basic(x, plan)
    y_new = _advanced_update(y, plan.selects, plan.adv, value)
    if plan.sliced:
        new = basic_update(x, plan, y_new)
    else:  # the basic part only added dimensions of size 1
        new = _tensor().reshape(y_new, tuple(x.shape)) if tuple(y_new.shape) != tuple(x.shape) else y_new
    return relabel(new, "IndexPutBackward0", [x, value])


def _broadcast_value(value, shape: tuple):
    """A tensor value broadcast to the indexing result's shape (PyTorch's error when it does not fit)."""
    T = _tensor()
    if not isinstance(value, T.Tensor) or tuple(value.shape) == tuple(shape):
        return value
    v = value
    while v.ndim > len(shape) and v.shape[0] == 1:
        v = v.reshape(tuple(v.shape[1:]))
    try:
        fits = v.ndim <= len(shape) and np.broadcast_shapes(tuple(v.shape), tuple(shape)) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(
            located(
                f"shape mismatch: value tensor of shape {list(value.shape)} cannot be broadcast to indexing result "
                f"of shape {list(shape)}"
            )
        )
    return T.broadcast_to(v, tuple(shape))


def basic_update(x, plan: Plan, value):
    """x with its basic region (plan's slices) replaced by value (a number, or a tensor of the region's shape)."""
    T = _tensor()
    value = _broadcast_value(value, tuple(plan.final))
    region = plan.slice_shape
    if isinstance(value, T.Tensor) and tuple(value.shape) != region:
        value = T.reshape(value, region, "ViewBackward0")
    if not plan.sliced:  # the whole tensor
        return apply("select", [T._true(), value, x])
    at = {"shape": tuple(x.shape), "starts": tuple(plan.starts), "steps": tuple(plan.steps)}
    inside = apply("full", [], {"value": True, "shape": region, "dtype": "bool"})
    mask = apply("slice_grad", [inside], at)
    placed = apply("slice_grad", [value], at) if isinstance(value, T.Tensor) else value
    return apply("select", [mask, placed, x])


def _advanced_update(y, selects: list, adv: list, value):
    """y (the basic result) with the elements its tensor indices select replaced by value."""
    T = _tensor()
    if selects:  # a 0-d integer tensor selects its dimension first: update that slice, then put it back
        pos, k = selects[0]
        rest = [(p - 1 if p > pos else p, a) for p, a in selects[1:]]
        moved = [(p - 1 if p > pos else p, a) for p, a in adv]
        sub = apply("take", [y, _checked(k, y.shape[pos], pos)], {"axis": pos})
        sub_new = _advanced_update(sub, rest, moved, value)
        return _advanced_update(y, [], [(pos, k.reshape((1,)))], sub_new.unsqueeze(pos))
    if not adv:  # the whole of y
        return apply("select", [T._true(), _broadcast_value(value, tuple(y.shape)), y])
    if len(adv) == 1 and isinstance(adv[0][1], tuple):
        done = _mask_update(y, adv[0][0], adv[0][1], value)
        if done is not None:
            return done
    y2, L, dest = _linear_index(y, adv, read=False)
    M, B = y2.shape[dest], tuple(L.shape)
    pre, post = tuple(y2.shape[:dest]), tuple(y2.shape[dest + 1 :])
    ones = apply("full", [], {"value": 1.0, "shape": B, "dtype": "float32"})
    count = apply("take_grad", [ones, L], {"axis": 0, "size": M})  # how often each position is selected
    count = count.reshape((1,) * len(pre) + (M,) + (1,) * len(post))
    placed = value
    if isinstance(value, T.Tensor):
        from graphnn.core.index_api import scatter_rows
        from graphnn.core.tensor_ops import last_writes, zero_of

        v = _broadcast_value(value, pre + B + post)
        # a position selected several times takes the last of its values (PyTorch's CPU order; it leaves the winner
        # undefined): the others are left out of the sum
        last = last_writes(L.reshape((-1,)), 0, (M,)).reshape((1,) * len(pre) + B + (1,) * len(post))
        v = apply("select", [last, v, zero_of(v.dtype_name)])
        placed = scatter_rows(v, L, dest, M).type_as_dtype(y.dtype_name)
    new2 = apply("select", [count > 0, placed, y2])
    return _undo_merge(new2, y, [p for p, _ in _integer_indices(adv, "assignment")])


def _undo_merge(new2, y, pos: list):
    """Back from the merged layout of _linear_index to y's."""
    T = _tensor()
    if len(pos) == 1:
        return new2
    adjacent = pos == list(range(pos[0], pos[0] + len(pos)))
    dest = pos[0] if adjacent else 0
    rest = [d for d in range(y.ndim) if d not in pos]
    perm = rest[:dest] + pos + rest[dest:]
    out = T.reshape(new2, tuple(y.shape[p] for p in perm))
    if perm != list(range(y.ndim)):
        out = out.permute(*[int(i) for i in np.argsort(perm)])
    return out


def _check_fit(shape, lead: tuple, tail: tuple, pre: tuple, post: tuple, n) -> None:
    """A mask assignment's value (of `shape`) fits when its dimensions before the selected elements' (lead) broadcast
    to the result's before the mask (pre) and those after (tail) to the result's after it (post); PyTorch's error
    otherwise (n: the number of selected elements, or 'N' when unknown)."""
    try:
        ok = (
            len(lead) <= len(pre)
            and len(tail) <= len(post)
            and np.broadcast_shapes(lead, pre[len(pre) - len(lead) :]) == pre[len(pre) - len(lead) :]
            and np.broadcast_shapes(tail, post[len(post) - len(tail) :]) == post[len(post) - len(tail) :]
        )
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(
            located(
                f"shape mismatch: value tensor of shape {list(shape)} cannot be broadcast to indexing result of "
                f"shape [{', '.join(str(d) for d in pre + (n,) + post)}]"
            )
        )


def _rows_by_rank(y, mask, mask_b, v, r: int, pre: tuple, post: tuple):
    """y[mask] = v with one row of v per True element, for a mask computed inside graphnn.compile (its values unknown
    while tracing): the k-th True element takes row k of v (dimension r), found by a running count of the mask, as
    masked_scatter does. (The compiled code does not check that v has as many rows as the mask has True elements,
    which the eager call does: extra rows go unused, missing ones repeat the last.)"""
    T = _tensor()
    n = v.shape[r]
    rank = (mask.reshape(-1).type_as_dtype("int64").cumsum(0) - 1).clamp(0, max(n - 1, 0))
    rows = v.index_select(r, rank)
    tail = tuple(v.shape[r + 1 :])
    lead = tuple(v.shape[:r])
    _check_fit(v.shape, lead, tail, pre, post, "N")
    rows = T.reshape(rows, lead + tuple(mask.shape) + (1,) * (len(post) - len(tail)) + tail)
    return apply("select", [mask_b, rows, y])


def _mask_update(y, pos: int, mask_entry: tuple, value):
    """y[mask] = value for a value that is the same for every selected element (a number, or a tensor that
    broadcasts over the selected elements): a select, with no need for the mask's values. None otherwise."""
    T = _tensor()
    _, mask, _literal = mask_entry
    m = mask.ndim
    pre, post = tuple(y.shape[:pos]), tuple(y.shape[pos + m :])
    mask_b = mask.reshape(tuple(mask.shape) + (1,) * len(post)) if post else mask
    if not isinstance(value, T.Tensor):
        return apply("select", [mask_b, value, y])
    v = value
    while v.ndim > len(pre) + 1 + len(post) and v.shape[0] == 1:
        v = v.reshape(tuple(v.shape[1:]))
    r = v.ndim - len(post) - 1  # dims of v before the selected elements' position (aligned from the right)
    if r >= 0 and v.shape[r] != 1:
        if mask._data is not None:
            return None  # one value per selected element: the mask's positions (their count checked)
        return _rows_by_rank(y, mask, mask_b, v, r, pre, post)
    if r >= 0:  # the selected elements' dimension is 1: drop it
        v = v.reshape(tuple(v.shape[:r]) + tuple(v.shape[r + 1 :]))
    lead = tuple(v.shape[: max(0, v.ndim - len(post))])
    tail = tuple(v.shape[len(lead) :])
    _check_fit(value.shape, lead, tail, pre, post, int(mask._data.sum()) if mask._data is not None else "N")
    if lead:  # dimensions of v before the mask's: keep them there
        v = v.reshape(lead + (1,) * m + tail)
    return apply("select", [mask_b, v, y])
