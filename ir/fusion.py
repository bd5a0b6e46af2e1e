"""Fusion v1: decide which values are computed inline in their consumer's loop and which are materialized.

Each materialized value is the root of a group (one kernel: one loop nest over the root's shape); every
value inlined into it is recomputed per element inside that loop, so no intermediate goes to memory.
Rules, by the producer's op pattern (TVM's elementwise < broadcast < injective < reduce < out_fusable):
  * index remaps and scalars (reshape, transpose, broadcast_to, slice, full) are always inlined, also into opaque
    ops that read strided views of buffers (OpDef.reads_views: attention reads the heads of a qkv projection in place);
  * other elementwise / broadcast / injective values are inlined into their single consumer;
  * reduce and out_fusable values (sum, matmul, conv, ...) are inlined only into a single elementwise
    consumer that reads each of their elements exactly once, so conv/matmul + bias + activation is one loop;
  * opaque values and graph inputs/outputs are always materialized.
Then runs of consecutive flat elementwise groups become one kernel writing several roots (ir/merge.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import config
from .graph import Graph, Node, Value
from .registry import family, get_op
from .views import strided_view, swaps_last_two

ONCE_CONSUMERS = ("elementwise", "broadcast")


@dataclass
class Group:
    """One kernel: the root value it materializes and the nodes computed inline inside its loop; or, merged (see
    ir/merge.py), member groups run in one kernel: one-element roots computed first, then one flat loop each for
    `loops` (member groups computing their roots element by element in the same loop)."""

    root: Value
    nodes: list = field(default_factory=list)  # in graph order, root's producer last
    scalars: list = field(default_factory=list)  # merged: member groups of one-element roots, in execution order
    loops: list = field(default_factory=list)  # merged: lists of member groups of the same size, one flat loop each
    extra: list = field(default_factory=list)  # groups computed in this one's epilogue, in order (ir/epilogue.py)
    own: list | None = None  # with extra: the nodes of this group itself (nodes holds the siblings' too)

    @property
    def pattern(self) -> str:
        from .registry import PATTERNS

        return max((get_op(n.op).pattern for n in self.nodes), key=PATTERNS.index)

    @property
    def members(self) -> list:
        """The groups merged into this kernel, in the order it computes them ([self] when not merged)."""
        if self.extra:
            return [Group(self.root, self.own)] + self.extra
        return (self.scalars + [m for loop in self.loops for m in loop]) or [self]

    @property
    def roots(self) -> list:
        """The values this kernel writes."""
        return [m.root for m in self.members]


def epilogue_sources(group: Group):
    """Yield (node, via_flat) for each op with a schedule of its own (matmul, conv, ...) whose output the group's
    epilogue reads element for element: the path from it to the root is same-shape elementwise ops and (via_flat)
    row-major reshapes."""
    nodes = group.own if group.extra else group.nodes
    root = group.root
    consumer = {}
    for n in nodes:
        for v in n.inputs:
            consumer[v.id] = n
    for n in nodes:
        if get_op(n.op).schedule is None:
            continue
        v, via_flat = n.outputs[0], False
        while v is not root:
            c = consumer.get(v.id)
            if c is None:
                break
            same = c.outputs[0].shape == v.shape and get_op(c.op).pattern in ONCE_CONSUMERS
            if get_op(c.op).lowering == "reshape":
                via_flat = True
            elif not same:
                break
            v = c.outputs[0]
        if v is root:
            yield n, via_flat


def epilogue_source(group: Group) -> tuple:
    """The first of epilogue_sources(group), or (None, False)."""
    return next(epilogue_sources(group), (None, False))


def flat_elementwise(group: Group) -> bool:
    """Can the group run as one flat loop (no op needs per-dimension indices): every node elementwise on operands
    of its own shape or of one element, a row-major reshape (the flat index maps through) or a scalar fill."""
    for n in group.nodes:
        d = get_op(n.op)
        if d.lowering == "reshape" or (d.scalar is not None and not n.inputs):
            continue
        if d.pattern not in ("elementwise", "broadcast"):
            return False
        out = n.outputs[0]
        if any(v.shape != out.shape and v.type.size != 1 for v in n.inputs):
            return False
    return True


@dataclass
class FusionPlan:
    groups: list  # in execution order
    inlined: set  # ids of values computed inline
    materialized: set  # ids of node outputs written to memory

    def group_of(self) -> dict:
        """Map node id -> group index."""
        return {n.id: i for i, g in enumerate(self.groups) for n in g.nodes}


def _reads_once(consumer: Node, v: Value) -> bool:
    """Does `consumer` read each element of `v` once per element of its own output?"""
    pat = get_op(consumer.op).pattern
    if pat in ONCE_CONSUMERS:
        return consumer.outputs[0].shape == v.shape
    return get_op(consumer.op).reads_once


def _epilogue(c: Node, uses: dict, inlined: set) -> bool:
    """Can an out_fusable result flow into consumer c as the epilogue of its schedule: c elementwise, or a reshape
    with a single user that is, and the kernel c ends in elementwise too. Otherwise the matmul would be recomputed
    as naive dot products inside another loop: a reduction an elementwise consumer is inlined into (a LayerNorm
    weight's gradient, sum(dx * xhat)), or every kernel a reshape with several users is inlined into."""
    elementwise = get_op(c.op).pattern in ONCE_CONSUMERS
    if not elementwise and family(c) != "reshape":
        return False
    out = c.outputs[0]
    if out.id not in inlined:
        return elementwise  # c is the kernel's root
    users = uses.get(out.id, [])
    if not elementwise and len(users) != 1:
        return False
    return bool(users) and all(_reads_once(u, out) and _epilogue(u, uses, inlined) for u, _ in users)


MAX_RECOMPUTED_USERS = 3  # an elementwise value with at most this many users is computed inside each of them
MAX_INLINE_DEPTH = 48  # inlined values in a chain feeding one kernel, at most (code generation recurses per value:
# a 100-step elementwise loop, an ODE solver's unrolled updates, becomes several kernels instead of a RecursionError)


LONG_K = 2048  # a product summing more terms than this is its own kernel (see _long_k)


def _long_k(n: Node) -> bool:
    """A matrix product over a k too long for a whole packed panel of the blocked GEMM (k > 2048 with AVX-512):
    kept its own kernel, stored in place one slice of k at a time, rather than the epilogue source of its consumer
    (which left it to per-row dot products: a tied GPT head's input gradient times a LayerNorm weight)."""
    if family(n) != "matmul":
        return False
    k = n.inputs[0].shape[-1]
    return isinstance(k, int) and k > LONG_K


def _takes_inline(c: Node) -> bool:
    """Can consumer c compute an elementwise operand inline: c elementwise-like, or a reduction reading each
    element once."""
    cpat = get_op(c.op).pattern
    return cpat in ("elementwise", "broadcast", "injective") or (cpat == "reduce" and get_op(c.op).reads_once)


FUSED_COLUMNS = 1 << 16  # elements of one image's column matrix, at most, that a convolution's product builds itself


def _columns_of_product(n: Node, c: Node, operand: Value | None = None) -> bool:
    """Is n the per-image column matrix (im2col, per_image) of a convolution whose product c reads it as its right
    operand, small enough per image for the product to build each image's columns in a scratch just before using
    them (codegen/gemm.py), from cache, instead of the whole batch's being written to memory and read back?"""
    v = n.outputs[0]
    b = v if operand is None else operand  # (what c reads: v, or its transpose)
    return (
        get_op(n.op).schedule == "im2col"
        and bool(n.attrs.get("per_image"))
        and get_op(c.op).schedule == "gemm"
        and c.inputs[1] is b
        and c.inputs[0] is not b
        and isinstance(b.shape[-1], int)
        and b.shape[-1] >= 16  # (columns of the product: fewer would leave it to the row schedule, element-wise)
        and isinstance(c.inputs[0].shape[-2], int)
        and c.inputs[0].shape[-2] >= 4  # (output channels: the blocked GEMM's; fewer would read columns element-wise)
        and v.dtype in ("float32", "float64")
        and isinstance(v.shape[1], int)
        and isinstance(v.shape[2], int)
        and v.shape[1] * v.shape[2] <= FUSED_COLUMNS
    )


def _columns_of_products(n: Node, users: list, uses: dict) -> bool:
    """Several users of a per-image column matrix, each a product that builds its own copy of each image's columns
    (see _columns_of_product), directly or through the transpose a weight gradient reads (g[n] @ col[n]^T)."""
    if len(users) < 2:
        return False
    for c, _ in users:
        if swaps_last_two(c):
            t = c.outputs[0]
            t_users = uses.get(t.id, [])
            if len(t_users) != 1 or not _built_columns(t_users[0][0], t, {t.id, n.outputs[0].id}):
                return False
        elif not _columns_of_product(n, c):
            return False
    return True


def _built_columns(product: Node, v: Value, inlined: set) -> bool:
    """Is operand v of `product` per-image columns (or their transpose) that the product builds itself, image by
    image (see _columns_of_product)?"""
    if v.id not in inlined or v.producer is None:
        return False
    n, operand = v.producer, None
    if swaps_last_two(n):
        operand, src = v, n.inputs[0]
        n = src.producer
        if src.id not in inlined or n is None:
            return False
        rows = product.inputs[0].shape[-2]
        if not isinstance(rows, int) or rows < 16:  # (fewer rows: dot products over shared columns run faster)
            return False
    return _columns_of_product(n, product, operand)


def plan_fusion(graph: Graph) -> FusionPlan:
    uses = graph.users()
    outputs = {v.id for v in graph.outputs}
    forced: set = set()  # values the operand rules materialize; deciding again with them known keeps the rest right
    for _ in range(4):
        inlined = _decide_inline(graph, uses, outputs, forced)
        decided = set(inlined)
        _keep_matmul_operands_simple(graph, inlined)
        _keep_view_bases(graph, inlined)
        if inlined == decided:
            break
        forced |= decided - inlined
    _single_home_for_heavy(graph, inlined, uses)
    materialized = {o.id for n in graph.nodes for o in n.outputs if o.id not in inlined}
    # Build groups: each materialized output with the inlined nodes feeding it.
    groups = []
    for n in graph.nodes:
        if any(o.id in materialized and (uses.get(o.id) or o.id in outputs) for o in n.outputs):
            groups.append(Group(n.outputs[0], _collect(n, inlined)))  # a multi-output node is one group
    if config.get("GRAPHNN_EPILOGUE_SIBLINGS"):
        from .epilogue import attach_epilogues

        groups = attach_epilogues(groups, inlined, outputs)
    if config.get("GRAPHNN_MERGE_KERNELS"):
        from .merge import merge_runs

        groups = merge_runs(groups, inlined)
    return FusionPlan(groups, inlined, materialized)


def _decide_inline(graph: Graph, uses: dict, outputs: set, forced: set) -> set:
    """Ids of the values computed inline in their consumers' loops (see the module docstring), with `forced` ones
    materialized."""
    inlined: set = set()
    once: dict = {}  # value id -> is each element of it evaluated once per kernel run
    copies: set = set()  # ids of inlined values computed in more than one kernel, or more than once per element
    homes: dict = {}  # inlined value id -> ids of the roots of the kernels computing it
    depth: dict = {}  # inlined value id -> the longest chain of inlined values from it to its kernel's root
    heavy: set = set()  # roots of the kernels an out_fusable value (a product) is inlined into: one each
    aligned: dict = {}  # inlined value id -> is it read at its kernel's own position (elementwise all the way)
    for n in reversed(graph.nodes):
        if len(n.outputs) != 1:
            for o in n.outputs:
                once[o.id] = True
            continue
        v = n.outputs[0]
        users = uses.get(v.id, [])
        pat = get_op(n.op).pattern
        inline = False
        if v.id not in outputs and v.id not in forced and users and pat != "opaque":
            if get_op(n.op).remap:
                inline = all(get_op(c.op).pattern != "opaque" or _read_as_view(c, v) for c, _ in users)
            elif len(users) == 1:
                c = users[0][0]
                c_once = once.get(c.outputs[0].id, True) if len(c.outputs) == 1 else True
                c_once = c_once and c.outputs[0].id not in copies
                if pat in ("elementwise", "broadcast", "injective"):
                    inline = _takes_inline(c) or _columns_of_product(n, c)
                else:
                    # out_fusable ops only feed elementwise epilogues (the matmul/conv schedules apply them);
                    # reductions and remaps of their results run as separate kernels
                    # (one product per kernel: its schedule stores the epilogue; a second one inlined there, as
                    # the sum of two micro-batches' weight gradients, would be recomputed as naive dot products)
                    inline = (
                        _reads_once(c, v)
                        and c_once
                        and c.outputs[0].dtype == v.dtype
                        and (pat != "out_fusable" or (_epilogue(c, uses, inlined) and not _homes(users, homes) & heavy))
                        and not _long_k(n)
                    )
            elif _columns_of_products(n, users, uses):
                # (a training step's per-image columns: the forward product and the weight gradient's each build them)
                inline = True
            elif pat in ("elementwise", "broadcast") and len(users) <= MAX_RECOMPUTED_USERS:
                # a cheap value several kernels read is recomputed in each instead of written and read back (once
                # per value: never inside a value that is itself recomputed in several kernels)
                inline = all(_takes_inline(c) and not copies.intersection(o.id for o in c.outputs) for c, _ in users)
        if inline:
            d = 1 + max((depth.get(c.outputs[0].id, 0) for c, _ in users if len(c.outputs) == 1), default=0)
            if d > MAX_INLINE_DEPTH and not get_op(n.op).remap:
                inline, d = False, 0
            depth[v.id] = d
        if inline:
            inlined.add(v.id)
            homes[v.id] = _homes(users, homes)
            if pat == "out_fusable":
                heavy |= homes[v.id]
            # (computed more than once per element: in several kernels, at several positions, or inside such a
            # value; its producers with several users are then materialized, not recomputed in turn: a chain of
            # them would double the work at every step)
            if (
                len(homes[v.id]) > 1
                or (len(users) > 1 and not _read_alike(v, users, once, copies, aligned))
                or any(len(c.outputs) == 1 and c.outputs[0].id in copies for c, _ in users)
            ):
                copies.add(v.id)
            aligned[v.id] = all(
                len(c.outputs) == 1
                and aligned.get(c.outputs[0].id, True)
                and get_op(c.op).pattern in ONCE_CONSUMERS
                and c.outputs[0].shape == v.shape
                for c, _ in users
            )
            once[v.id] = all(
                (once.get(c.outputs[0].id, True) if len(c.outputs) == 1 else True) and _reads_once(c, v)
                for c, _ in users
            )
        else:
            once[v.id] = True
    return inlined


def _homes(users: list, homes: dict) -> frozenset:
    """The roots of the kernels that compute a value inlined into `users`."""
    out: set = set()
    for c, _ in users:
        o = c.outputs[0]
        out |= homes.get(o.id, {o.id}) if len(c.outputs) == 1 else {o.id}
    return frozenset(out)


def _read_alike(v: Value, users: list, once: dict, copies: set, aligned: dict) -> bool:
    """Do all users of v (in one kernel) read it at their own position, each evaluated once per element and read at
    the kernel's own position: then the kernel's memo computes v once per element (x + bias read by both halves of a
    GELU; not a value read directly and through a shifting slice, as a scan's doubling steps are)."""
    return all(
        len(c.outputs) == 1
        and get_op(c.op).pattern in ONCE_CONSUMERS
        and c.outputs[0].shape == v.shape
        and once.get(c.outputs[0].id, True)
        and c.outputs[0].id not in copies
        and aligned.get(c.outputs[0].id, True)
        for c, _ in users
    )


def _single_home_for_heavy(graph: Graph, inlined: set, uses: dict) -> None:
    """Materialize a reduction or product that the operand rules above split over several kernels (a user it was
    inlined into became a kernel of its own): recomputing it inside another loop would be naive dot products."""
    homes: dict = {}  # of the values still inlined (users come first: theirs are final when a value is reached)
    for n in reversed(graph.nodes):
        for v in n.outputs:
            if v.id not in inlined:
                continue
            homes[v.id] = _homes(uses.get(v.id, []), homes)
            if len(homes[v.id]) > 1 and get_op(n.op).pattern in ("reduce", "out_fusable"):
                inlined.discard(v.id)
                del homes[v.id]


def _simple_view(v: Value, inlined: set) -> bool:
    """Can the matmul schedule read v directly: a buffer, a reshape of one, or its last-two-axes transpose?"""
    if v.id not in inlined:
        return True
    n = v.producer
    if get_op(n.op).remap and not n.inputs:  # a scalar fill
        return True
    src = n.inputs[0] if n.inputs else None
    if src is None:
        return False
    if src.id in inlined:  # a 2-D transpose of a reshaped buffer is still read in place (strided)
        return (
            family(n) == "transpose"
            and tuple(n.attrs["perm"]) == (1, 0)
            and src.producer is not None
            and family(src.producer) == "reshape"
            and src.producer.inputs[0].id not in inlined
        )
    if family(n) == "reshape":
        return True
    return swaps_last_two(n)


def _keep_matmul_operands_simple(graph: Graph, inlined: set) -> None:
    """Materialize matmul operands that would otherwise be recomputed through index arithmetic per element. For a
    reshape of a computed value, the value itself is materialized: the product reads it in place, and the other
    consumers of the value (another reshape of it summed for a bias gradient, say) read it instead of recomputing
    it too."""
    for n in graph.nodes:
        if get_op(n.op).schedule == "gemm":
            for v in n.inputs:
                if _simple_view(v, inlined) or _built_columns(n, v, inlined):
                    continue
                # the values under v's reshapes and transposes: the deepest one whose materializing leaves v a view the
                # product reads in place is written (a gradient computed elementwise in its own order, one loop)
                chain, c = [], v
                while c.id in inlined and _remap_chain(c) and family(c.producer) in ("reshape", "transpose"):
                    c = c.producer.inputs[0]
                    chain.append(c)
                for c in reversed(chain):
                    if c.id in inlined:
                        inlined.discard(c.id)
                        if _simple_view(v, inlined):
                            break
                        inlined.add(c.id)
                else:
                    inlined.discard(v.id)


def _remap_chain(v: Value) -> bool:
    return v.producer is not None and get_op(v.producer.op).remap and bool(v.producer.inputs)


def _read_as_view(c: Node, v: Value) -> bool:
    """Does opaque consumer c read v in place: c reads strided views, and v is a float index remap of a buffer
    whose last dimension stays contiguous (so rows are vectors)?"""
    if not get_op(c.op).reads_views or not v.type.is_float:
        return False
    view = strided_view(v, _remap_chain)
    return view is not None and (v.shape[-1:] in ((), (1,)) or view.strides[-1] == 1)


def _keep_view_bases(graph: Graph, inlined: set) -> None:
    """Materialize what the inline remaps feeding a view-reading op read (their base), or the operand itself when
    the remaps that stayed inline are no strided view of a buffer."""
    for n in graph.nodes:
        if not get_op(n.op).reads_views:
            continue
        for v in n.inputs:
            while v.id in inlined:
                if strided_view(v, lambda u: u.id in inlined) is not None:
                    break
                base = v
                while base.id in inlined and _remap_chain(base):
                    base = base.producer.inputs[0]
                inlined.discard(base.id if base.id in inlined else v.id)


def _collect(root: Node, inlined: set) -> list:
    found: dict = {}
    stack = [root]
    while stack:
        n = stack.pop()
        if n.id in found:
            continue
        found[n.id] = n
        for v in n.inputs:
            if v.id in inlined:
                stack.append(v.producer)
    return sorted(found.values(), key=lambda n: n.id)
