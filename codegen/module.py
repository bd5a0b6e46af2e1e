"""Lower a whole graph to one LLVM module: a kernel per fusion group and an entry that runs them in order.

Entry signature: `void <name>(ptr slots)`, where slots is an array of pointers laid out as
[inputs..., outputs..., constants..., arena]. Outputs listed in graph.meta["writeback"] (output position ->
input position) are copied into that input's buffer at the end of the call (in-place state updates).
"""
from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from graphnn.ir.fusion import FusionPlan, plan_fusion
from graphnn.ir.graph import Graph
from graphnn.ir.memory import MemoryPlan, plan_memory
from graphnn.ir.registry import get_op

from .kernel import I8, I64, PTR, Index, Kernel, i64
from .lowerings import LOWER


class LoweringError(NotImplementedError):
    pass


@dataclass
class Layout:
    """Where each buffer of a compiled graph lives."""

    n_inputs: int
    n_outputs: int
    constants: list          # ndarray per constant slot
    arena_bytes: int
    output_slots: list       # per graph output: its slot, or ("dup", j) / ("input", i) when copied after the call
    writeback: dict          # output position -> input position


def _flat_friendly(group) -> bool:
    """Can the group run as one flat loop (no op needs per-dimension indices)?"""
    for n in group.nodes:
        pat = get_op(n.op).pattern
        if n.op == "reshape" or n.op == "full":
            continue
        if pat not in ("elementwise", "broadcast"):
            return False
        out = n.outputs[0]
        if any(v.shape != out.shape and v.type.size != 1 for v in n.inputs):
            return False
    return True


def build_module(graph: Graph, name: str = "entry", plan: FusionPlan | None = None):
    """Return (llvm ir text, Layout, FusionPlan)."""
    plan = plan or plan_fusion(graph)
    for n in graph.nodes:
        if n.op not in LOWER and n.op != "constant":
            raise LoweringError(f"op {n.op} has no native lowering")
    module = ir.Module(name=name)
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    slot_of: dict = {v.id: i for i, v in enumerate(graph.inputs)}
    output_slots = []
    for j, v in enumerate(graph.outputs):
        if v.id in slot_of and slot_of[v.id] < n_in:
            output_slots.append(("input", slot_of[v.id]))
        elif v.id in slot_of:
            output_slots.append(("dup", slot_of[v.id] - n_in))
        else:
            slot_of[v.id] = n_in + j
            output_slots.append(n_in + j)
    constants = []
    const_outputs = []  # (output slot, constant slot, nbytes): copied into the output at the start of the call
    for n in graph.nodes:
        if n.op == "constant":
            v = n.outputs[0]
            if v.id in slot_of:  # a graph output: no kernel writes it, so copy the literal in
                const_outputs.append((slot_of[v.id], n_in + n_out + len(constants), v.type.nbytes))
            else:
                slot_of[v.id] = n_in + n_out + len(constants)
            constants.append(n.attrs["value"])
    arena_slot = n_in + n_out + len(constants)

    groups = [g for g in plan.groups if g.root.producer.op != "constant"]
    # Liveness of arena buffers over the group sequence.
    first, last = {}, {}
    for step, g in enumerate(groups):
        first.setdefault(g.root.id, step)
        for n in g.nodes:
            for v in n.inputs:
                if v.id not in plan.inlined:
                    last[v.id] = step
    arena_vals = [g.root for g in groups if g.root.id not in slot_of]
    mem: MemoryPlan = plan_memory([(v.id, v.type.nbytes, first[v.id], last.get(v.id, first[v.id])) for v in arena_vals], {})

    entry = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR]), name)
    eb = ir.IRBuilder(entry.append_basic_block("entry"))
    slots = entry.args[0]
    slot_ptr: dict = {}

    def ptr_of(v):
        if v.id not in slot_ptr:
            if v.id in slot_of:
                addr = eb.gep(slots, [i64(slot_of[v.id])], source_etype=PTR, inbounds=True)
                slot_ptr[v.id] = eb.load(addr, typ=PTR)
            else:
                arena = ptr_of_arena()
                slot_ptr[v.id] = eb.gep(arena, [i64(mem.offsets[v.id])], source_etype=I8, inbounds=True)
        return slot_ptr[v.id]

    arena_cache = []
    memcpy_fn = []

    def memcpy(dst, src, nbytes):
        if not memcpy_fn:
            memcpy_fn.append(ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, ir.IntType(1)]),
                                         "llvm.memcpy.p0.p0.i64"))
        eb.call(memcpy_fn[0], [dst, src, i64(nbytes), ir.Constant(ir.IntType(1), 0)])

    def slot(i):
        return eb.load(eb.gep(slots, [i64(i)], source_etype=PTR, inbounds=True), typ=PTR)

    for out_slot, const_slot, nbytes in const_outputs:
        memcpy(slot(out_slot), slot(const_slot), nbytes)

    def ptr_of_arena():
        if not arena_cache:
            addr = eb.gep(slots, [i64(arena_slot)], source_etype=PTR, inbounds=True)
            arena_cache.append(eb.load(addr, typ=PTR))
        return arena_cache[0]

    for gi, g in enumerate(groups):
        reads = []
        for n in g.nodes:
            for v in n.inputs:
                if v.id not in plan.inlined and v.id not in {r.id for r in reads}:
                    reads.append(v)
        buffers = [g.root] + [v for v in reads if v.id != g.root.id]
        k = Kernel(module, f"k{gi}_{g.root.producer.op}", buffers, plan.inlined, LOWER)
        _emit_group(k, g)
        k.finish()
        eb.call(k.fn, [ptr_of(v) for v in buffers])

    for out_pos, in_pos in (graph.meta.get("writeback") or {}).items():
        v = graph.outputs[out_pos]
        memcpy(slot(in_pos), ptr_of(v), v.type.nbytes)
    eb.ret_void()
    layout = Layout(n_in, n_out, constants, mem.size, output_slots, dict(graph.meta.get("writeback") or {}))
    return str(module), layout, plan


def _emit_group(k: Kernel, g) -> None:
    root = g.root
    shape = root.shape
    if _flat_friendly(g):
        k.loop(root.type.size, lambda i: k.store(root, i, k.compute(root, Index(k, shape, flat=i))))
        return

    def body(dims):
        idx = Index(k, shape, dims)
        k.store(root, idx.flat, k.compute(root, idx))
    k.loops(shape, body)
