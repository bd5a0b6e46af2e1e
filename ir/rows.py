"""Row-separable graphs: a scan body whose every batch row is computed from the same row of its carries and
per-step inputs only, rebuilt for a part of the batch, so that threads can each run the whole scan on their rows.

An RNN step (h, c) -> (h', c') multiplies each row of h by the same weights and applies elementwise gates: row r of
the result reads row r of h and c alone. `split_rows(body, n_carry, n_xs, rows)` checks that node by node with each
op's row rule (OpDef.rows; by default from its fusion pattern, see `default_rows`) and returns the body rebuilt at
`rows` rows, or None. Values computed from the weights alone (no batch axis) stay as they are.

A row rule is `rows(node, batched, rows) -> attrs | None`: given which inputs carry the batch on their first axis,
the node's attributes at `rows` rows, or None when an output row would read other rows (a sum over the batch, a
slice of some rows, a reshape moving elements between rows). The rebuilt node's types must then be the original's
with `rows` first wherever the batch was (checked here): a rule only has to rewrite sizes its attributes name.
"""

from __future__ import annotations

from .graph import Graph
from .ops._util import norm_axes
from .registry import IRError, get_op
from .types import TensorType


def default_rows(node, batched: list, rows: int) -> dict | None:
    """Elementwise and broadcasting ops keep rows apart when every batched operand has the result's rank and every
    other operand broadcasts along the batch (fewer dimensions, or one row); a reduction does when it keeps the
    batch axis (its `axes` leave out axis 0)."""
    pattern = get_op(node.op).pattern
    out = node.outputs[0]
    if pattern in ("elementwise", "broadcast"):
        for v, b in zip(node.inputs, batched):
            if b and v.type.ndim != out.type.ndim:
                return None
            if not b and v.type.ndim == out.type.ndim and v.shape[0] != 1:
                return None
        return dict(node.attrs)
    if pattern == "reduce" and len(node.inputs) == 1:
        axes = norm_axes(node.attrs.get("axes", node.attrs.get("axis")), node.inputs[0].type.ndim)  # (None: all)
        return dict(node.attrs) if 0 not in axes else None
    return None


def leading_operand_rows(node, batched: list, rows: int) -> dict | None:
    """A product A @ W (or a like op) whose rows are A's: only its first operand is batched, as a matrix."""
    if batched[0] and not any(batched[1:]) and node.inputs[0].type.ndim == 2:
        return dict(node.attrs)
    return None


def sized_rows(node, batched: list, rows: int) -> dict | None:
    """An op whose `shape` attribute is its result's (a reshape, a slice's gradient): the batch axis must lead both
    the operand and the result with the same size (a reshape then moves no element between rows), and the
    `starts`/`steps` of a slice gradient must leave it whole."""
    at = dict(node.attrs)
    x, shape = node.inputs[0], tuple(at["shape"])
    if not batched[0] or not shape or x.type.ndim == 0 or shape[0] != x.shape[0]:
        return None
    if "starts" in at and (at["starts"][0] != 0 or at["steps"][0] != 1):
        return None
    at["shape"] = (rows,) + shape[1:]
    return at


def slice_rows(node, batched: list, rows: int) -> dict | None:
    """A slice that takes every row (and any part of the other axes)."""
    at = dict(node.attrs)
    n = node.inputs[0].shape[0]
    if not batched[0] or at["starts"][0] != 0 or at["steps"][0] != 1 or at["stops"][0] < n:
        return None
    at["stops"] = (rows,) + tuple(at["stops"][1:])
    return at


def transpose_rows(node, batched: list, rows: int) -> dict | None:
    """A transpose that keeps the batch axis first."""
    return dict(node.attrs) if batched[0] and tuple(node.attrs["perm"])[0] == 0 else None


def concat_rows(node, batched: list, rows: int) -> dict | None:
    """A concatenation of batched operands along another axis."""
    return dict(node.attrs) if all(batched) and node.attrs["axis"] % node.outputs[0].type.ndim != 0 else None


def split_rows(body: Graph, n_carry: int, n_xs: int, rows: int) -> Graph | None:
    """The scan body computing `rows` of its batch rows (the first axis of every carry and per-step input, all of one
    size), or None when some output row would read other rows, or the body's shapes do not allow it."""
    batch_inputs = body.inputs[: n_carry + n_xs]
    if not batch_inputs or any(v.type.ndim == 0 for v in batch_inputs):
        return None
    n = batch_inputs[0].shape[0]
    if not isinstance(n, int) or not 0 < rows < n or any(v.shape[0] != n for v in batch_inputs):
        return None
    g = Graph(body.name)
    g.meta = dict(body.meta)
    vmap, batched = {}, set()
    for i, v in enumerate(body.inputs):
        t = v.type
        if i < n_carry + n_xs:
            t = TensorType((rows,) + v.shape[1:], t.dtype)
        nv = g.add_input(t, v.name, v.meta.get("kind", "input"))
        nv.meta.update(v.meta)
        nv.data = v.data
        vmap[v.id] = nv
        if i < n_carry + n_xs:
            batched.add(nv.id)
    for node in body.nodes:
        ins = [vmap[v.id] for v in node.inputs]
        flags = [v.id in batched for v in ins]
        if not any(flags):  # (computed from the weights alone)
            attrs = dict(node.attrs)
        else:
            d = get_op(node.op)
            attrs = (d.rows or default_rows)(node, flags, rows)
            if attrs is None:
                return None
        try:
            new = g.add_node(node.op, ins, attrs)
        except (IRError, ValueError, TypeError, KeyError, IndexError):
            return None
        new.meta.update(node.meta)
        for o, no in zip(node.outputs, new.outputs):
            if any(flags):
                if o.type.ndim == 0 or o.shape[0] != n or no.type != TensorType((rows,) + o.shape[1:], o.dtype):
                    return None
                batched.add(no.id)
            elif no.type != o.type:
                return None
            no.name = o.name
            no.meta.update(o.meta)
            vmap[o.id] = no
    g.outputs = [vmap[v.id] for v in body.outputs]
    if any(v.id not in batched for v in g.outputs):
        return None
    return g
