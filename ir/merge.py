"""Multi-output and horizontal fusion: a run of consecutive flat elementwise groups becomes one kernel.

Fusion (ir/fusion.py) gives each materialized value a kernel of its own, so an optimizer's update of one parameter
is several kernels (Adam: m, v, the parameter, its step count), each reading the gradient and the state again, and
a model's update is several kernels per parameter. Here consecutive groups that run as one flat loop each
(`flat_elementwise`) are merged into one kernel:
  * one-element roots (step counts, hyper-parameters cast to the parameters' dtype) are computed first, once;
  * a group that reads the root of another group of the run (other than a one-element one) reads it at the
    element it computes, so both share one flat loop (multi-output: m, v and p of one parameter are written by one
    loop that reads g, m, v and p once, and p's update takes the new m and v from registers);
  * groups that share no root are independent loops of the same kernel (horizontal: every parameter's update).
Runs only: a group is never moved across another kernel, so what each kernel reads is computed before it as in the
plan, and no buffer lives longer than from the run's first kernel to its last.
"""

from __future__ import annotations

from .fusion import Group, flat_elementwise
from .registry import get_op


def mergeable(group: Group) -> bool:
    """May the group join a merged kernel: a flat elementwise loop writing one value, with no index checks."""
    node = group.root.producer
    return (
        len(node.outputs) == 1 and flat_elementwise(group) and not any(get_op(n.op).index_checked for n in group.nodes)
    )


# Nodes one merged kernel computes, at most (but a group that reads a root the kernel computes at the element being
# computed is added beyond it, up to twice that): LLVM's time grows faster than linearly with the size of a function,
# and smaller kernels spread over the modules compiled in parallel; identical ones (a model's layers) share code.
MAX_MERGED_NODES = 256


def merge_runs(groups: list, inlined: set) -> list:
    """The groups (in execution order) with each run of consecutive mergeable groups merged, in pieces of about
    MAX_MERGED_NODES nodes."""
    out, run = [], []
    for g in groups + [None]:
        if g is not None and mergeable(g):
            run.append(g)
            continue
        for piece in _pieces(run):
            out.append(_merge(piece, inlined) if len(piece) > 1 else piece[0])
        run = []
        if g is not None:
            out.append(g)
    return out


def _pieces(run: list) -> list:
    """The run cut where a piece has MAX_MERGED_NODES nodes and the next group reads none of its roots other than
    one-element ones (so the update of one parameter stays in one loop), or has twice that."""
    pieces, piece, size, written = [], [], 0, set()
    for g in run:
        reads = {v.id for n in g.nodes for v in n.inputs}
        if piece and (size >= 2 * MAX_MERGED_NODES or (size >= MAX_MERGED_NODES and not reads & written)):
            pieces.append(piece)
            piece, size, written = [], 0, set()
        piece.append(g)
        size += len(g.nodes)
        if g.root.type.size != 1:
            written.add(g.root.id)
    return pieces + ([piece] if piece else [])


def _merge(run: list, inlined: set) -> Group:
    """One kernel for `run`: its one-element groups, then one flat loop per set of groups linked by reads."""
    scalars = [g for g in run if g.root.type.size == 1]
    wide = [g for g in run if g.root.type.size != 1]
    parent = list(range(len(wide)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    writer = {g.root.id: i for i, g in enumerate(wide)}
    for i, g in enumerate(wide):
        for n in g.nodes:
            for v in n.inputs:
                j = writer.get(v.id)
                if j is not None and v.id not in inlined:
                    parent[find(i)] = find(j)  # g reads that root at the element it computes: same loop
    loops: dict = {}
    for i, g in enumerate(wide):
        loops.setdefault(find(i), []).append(g)
    loops = list(loops.values())
    nodes = {n.id: n for g in run for n in g.nodes}
    first = scalars[0] if scalars else loops[0][0]
    return Group(first.root, sorted(nodes.values(), key=lambda n: n.id), scalars, loops)
