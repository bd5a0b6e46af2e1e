"""Strided views: a chain of index remaps (reshape, transpose, slice, broadcast_to) over a buffer, as an element
offset and one stride per dimension, so that a schedule can read the chain's result in place instead of a copy.

    strided_view(v, through) -> View(base, offset, strides) | None

`through(value)` says which values of the chain are computed inline (not materialized); the walk stops at the first
value that is not, the buffer the view reads. A reshape is a view when every run of dimensions it merges or splits
is contiguous in the source (else None, as for any other op on the way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .graph import Value
from .registry import family
from .symbolic import Sym


def swaps_last_two(n) -> bool:
    """Is node n a transpose of its input's last two axes (every other axis in place)?"""
    if family(n) != "transpose":
        return False
    perm = tuple(n.attrs["perm"])
    nd = len(perm)
    return nd >= 2 and perm == tuple(range(nd - 2)) + (nd - 1, nd - 2)


@dataclass(frozen=True)
class View:
    """base[offset + sum(i_d * strides[d])] is element (i_0, i_1, ...) of the viewed value (strides in elements)."""

    base: Value
    offset: int
    strides: tuple


def row_major(shape: tuple) -> tuple:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return tuple(out[::-1])


def _reshaped(shape: tuple, strides: tuple, new_shape: tuple) -> tuple | None:
    """Strides of `new_shape` over the same elements, or None when a merged or split run is not contiguous. The
    source's dimensions (size-1 ones dropped) are grouped into contiguous runs (a dimension continues the previous
    run when that run's innermost stride is this dimension's extent); each run is one strided range, which the new
    dimensions must cover in order, a whole run each."""
    if 0 in shape:
        return row_major(new_shape)
    runs: list = []  # [elements, innermost stride]
    for n, st in zip(shape, strides):
        if n == 1:
            continue
        if runs and runs[-1][1] == st * n:
            runs[-1] = [runs[-1][0] * n, st]
        else:
            runs.append([n, st])
    out = [0] * len(new_shape)
    run, covered, pending = 0, 1, []
    for d, n in enumerate(new_shape):
        if n == 1:
            continue
        if run == len(runs):
            return None
        pending.append(d)
        covered *= n
        if covered == runs[run][0]:
            st = runs[run][1]
            for dd in reversed(pending):
                out[dd] = st
                st *= new_shape[dd]
            run, covered, pending = run + 1, 1, []
        elif _indivisible(runs[run][0], covered):
            return None
    return tuple(out) if run == len(runs) and not pending else None


def _indivisible(a, b) -> bool:
    """Does b not divide a? For symbolic sizes, True unless b divides a as polynomials (no guard pinning N)."""
    if isinstance(b, Sym):
        return not (isinstance(a, Sym) and a._exact_quotient(b) is not None)
    return bool(a % b)


def _step(node, shape: tuple, offset: int, strides: tuple):
    """(offset, strides) of node's result from those of its input (shape `shape`); None: not a strided view."""
    at, fam = node.attrs, family(node)
    out_shape = node.outputs[0].shape
    if fam == "reshape":
        st = _reshaped(shape, strides, out_shape)
        return None if st is None else (offset, st)
    if fam == "transpose":
        return offset, tuple(strides[p] for p in at["perm"])
    if fam == "slice":
        offset += sum(s * st for s, st in zip(at["starts"], strides))
        return offset, tuple(st * p for st, p in zip(strides, at["steps"]))
    if fam == "broadcast_to":
        lead = len(out_shape) - len(shape)
        kept = tuple(0 if n == 1 else st for n, st in zip(shape, strides))
        return offset, (0,) * lead + tuple(
            0 if out_shape[lead + i] != n else s for i, (n, s) in enumerate(zip(shape, kept))
        )
    return None


def strided_view(v: Value, through: Callable[[Value], bool]) -> View | None:
    """v as a strided view of the buffer under its chain of inline index remaps (v itself when not inline)."""
    chain = []
    while through(v):
        n = v.producer
        if n is None or not n.inputs or family(n) not in ("reshape", "transpose", "slice", "broadcast_to"):
            return None
        chain.append(n)
        v = n.inputs[0]
    offset, strides, shape = 0, row_major(v.shape), v.shape
    for n in reversed(chain):
        step = _step(n, shape, offset, strides)
        if step is None:
            return None
        (offset, strides), shape = step, n.outputs[0].shape
    return View(v, offset, tuple(strides))
