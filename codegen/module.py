"""Lower a whole graph to one LLVM module: a kernel per fusion group and a function that runs them in order.

A graph function has the signature `void f(ptr slots)`, where slots is an array of pointers laid out as
[inputs..., outputs..., constants..., arena] (constants are module globals for scan bodies, so their
slots hold only inputs, outputs and the arena). Outputs listed in graph.meta["writeback"] (output position ->
input position) are copied into that input's buffer at the end of the call (in-place state updates).
A scan node becomes a native loop that calls its body's graph function once per step. A collective (an allreduce)
is started where its group comes and completed right before the first kernel that reads its result
(codegen/collective.py), so the exchange overlaps the kernels in between. An op defined with `host=True` is a call
back into its reference kernel on the Python side (codegen/host.py).
"""

from __future__ import annotations

import llvmlite.ir as ir

from graphnn.ir import config
from graphnn.ir.fusion import FusionPlan, flat_elementwise, plan_fusion
from graphnn.ir.graph import Graph, format_attr
from graphnn.ir.memory import kernel_liveness, plan_memory
from graphnn.ir.ops.shape import concat_offsets
from graphnn.ir.registry import describe, family, get_op, graph_flops, node_flops
from graphnn.ir.rows import split_rows
from graphnn.ir.symbolic import Sym, heuristic

from . import collective, host
from .kernel import DYN_VAR, I1, I8, I64, PTR, Index, Kernel, as_i64, dynamic_module, i64, pop_emitter, push_emitter
from .kernel import start_function
from .layout import Layout, SlotLayout
from .pool import RUN, TASK
from .gemm import same_rounding_at_fewer_rows
from .heavy import SCHEDULES, heavy_node
from .lowerings import has_element_rule, lower
from .merged import emit_merged
from .scan_loop import emit_scan, half_scan_buffers
from .schedule import prod

MODULE_LOWERED = ("constant", "scan", "collective")  # element rule families the module builder lowers itself


def can_lower(d) -> bool:
    """Does codegen know how to compile op definition d?"""
    return has_element_rule(d) or d.schedule in SCHEDULES or d.lowering in MODULE_LOWERED or d.host


class LoweringError(NotImplementedError):
    pass


PROFILE_VAR = "graphnn_profile"  # module global: [2 x i64] per kernel (cycles, calls) when profiling
MAX_PROFILED = 4096


def profiling() -> bool:
    """GRAPHNN_PROFILE=1 builds code that counts cycles per kernel (see CompiledGraph.profile)."""
    return config.get("GRAPHNN_PROFILE")


# Graph outputs this big are written with streaming stores, which need 64-byte aligned buffers: the Layout lists
# them (`aligned`) and the runtime allocates exactly those aligned (also when they are written back in place).
ALIGNED_OUTPUT_BYTES = 1 << 22
THREADS_VAR = "graphnn_num_threads"  # module global: how many threads split kernels use (set by the runtime)
POOL_VAR = "graphnn_pool"  # module global: address of the worker pool's run function (set by the runtime)
MAX_THREADS = 8
# Estimated multiply-adds/element-ops above which a kernel is split over threads. Handing parts to the
# pool's spinning workers costs about a microsecond, so kernels from a few tens of microseconds up gain.
PARALLEL_WORK = 1 << 18
# a scan splits its batch between two threads when each half has at least this many rows (fewer rows make the
# products of each step too small to run at speed)
SCAN_SPLIT_MIN_ROWS = 4


def _parallel_work() -> int:
    return PARALLEL_WORK  # read at build time (tests lower it to exercise split kernels on small graphs)


def _work(group) -> int:
    """Rough operation count of a kernel, to decide whether threads pay off: per node the larger of its
    multiply-adds (half its FLOPs, from the op's definition) and the elements it reads and writes; a merged
    kernel's is the sum of its members'."""
    if group.loops or group.scalars:
        return sum(_work(m) for m in group.members)
    work = group.root.type.size
    for n in group.nodes:
        moved = sum(v.type.size for v in n.inputs) + n.outputs[0].type.size
        work = max(work, node_flops(n) // 2, moved if get_op(n.op).pattern != "elementwise" else 0)
    return work * max(1, len(group.nodes) // 4)


def group_signature(group, buffers: list, inlined: set) -> str | None:
    """What a group's kernel computes, independent of value ids: its buffers' types and, per node, the op, its
    attributes, its operands (buffer i or the output of an earlier node of the group) and result types (for a
    merged kernel, per member group, marked with its place: computed once or in flat loop i). Two groups with the
    same signature compile to the same function. None when an operand is neither."""
    where = {v.id: f"b{i}" for i, v in enumerate(buffers)}
    lines = [",".join(str(v.type) for v in buffers)]
    if group.loops or group.scalars:
        parts = [("once", m) for m in group.scalars] + [(f"loop{i}", m) for i, ms in enumerate(group.loops) for m in ms]
    else:
        parts = [("", group)]
        lines.extend(f"epilogue:{where.get(m.root.id)}" for m in group.extra)
    j = 0
    for place, member in parts:
        if place:
            lines.append(f"{place}:{where.get(member.root.id)}")
        for n in member.nodes:
            refs = []
            for v in n.inputs:
                ref = where.get(v.id)
                if ref is None:
                    return None
                refs.append(ref + ("i" if v.id in inlined else ""))
            for o_i, o in enumerate(n.outputs):
                where.setdefault(o.id, f"n{j}.{o_i}")
            attrs = ",".join(f"{a}={format_attr(x)}" for a, x in sorted(n.attrs.items()))
            outs = ",".join(str(o.type) + ("i" if o.id in inlined else "") for o in n.outputs)
            lines.append(f"{n.op}({','.join(refs)}){{{attrs}}}->{outs}")
            j += 1
    return "\n".join(lines)


def updates_in_place(graph: Graph, groups: list, plan: FusionPlan) -> dict:
    """{value id: input position} of the write-back outputs (in-place state updates: an optimizer's new parameters
    and moments) that can be computed straight into their input's buffer instead of being copied there at the end
    of the call: each computed element by element (flat) from that input at the same position, in a kernel after
    every other kernel that reads the input and every kernel that checks indices (the graph function returns
    before it when a check failed, leaving the state as it was), in a graph with no collectives, scans or host
    calls (their buffers and order are their own), the input not returned itself."""
    writeback = graph.meta.get("writeback") or {}
    if not writeback or any(
        family(g.root.producer) in ("collective", "scan") or get_op(g.root.producer.op).host for g in groups
    ):
        return {}
    producer, readers = {}, {}
    for gi, g in enumerate(groups):
        for m in g.members:
            producer[m.root.id] = (gi, m)
            for n in m.nodes:
                for v in n.inputs:
                    readers.setdefault(v.id, set()).add((gi, id(m)))
    outputs = [v.id for v in graph.outputs]
    done, targets = {}, set()
    for out_pos, in_pos in sorted(writeback.items()):
        v, x = graph.outputs[out_pos], graph.inputs[in_pos]
        gi, member = producer.get(v.id, (None, None))
        if gi is None or in_pos in targets or outputs.count(v.id) > 1 or x.id in outputs:
            continue
        if x.type != v.type or not flat_elementwise(member):
            continue
        if any(ri > gi or (ri == gi and mid != id(member)) for ri, mid in readers.get(x.id, ())):
            continue
        done[v.id] = in_pos
        targets.add(in_pos)
    return done


def _check_lowerable(graph: Graph) -> None:
    for n in graph.nodes:
        if not can_lower(get_op(n.op)):
            scope = f" [in module {n.meta['scope']}]" if n.meta.get("scope") else ""
            raise LoweringError(
                f"op {n.op} has no native lowering: cannot compile "
                f"{describe(n.op, [v.type for v in n.inputs], n.attrs)}{scope}"
            )


class _GraphEmission:
    """The graph function being emitted: its builder and the pointers of buffers, loaded once at first use."""

    def __init__(self, mb: "ModuleBuilder", fn: ir.Function, slots: SlotLayout, mem):
        self.mb, self.fn, self.slots, self.mem = mb, fn, slots, mem
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        start_function(fn, self.b)
        push_emitter(self.b)
        self._cache: dict = {}

    def slot(self, i: int):
        return self.b.load(self.b.gep(self.fn.args[0], [i64(i)], source_etype=PTR, inbounds=True), typ=PTR)

    def ptr_of(self, key):
        """Pointer to a buffer: a value id (slot, global constant or arena offset), a scan scratch key, or
        "status"."""
        c, s = self._cache, self.slots
        if key not in c:
            if key == "status":
                c[key] = self.slot(s.status_slot)
            elif key in s.slot_of:
                c[key] = self.slot(s.slot_of[key])
            elif key in s.global_of:
                c[key] = self.b.bitcast(s.global_of[key], PTR)
            else:
                if "arena" not in c:
                    c["arena"] = self.slot(s.arena_slot)
                c[key] = self.b.gep(c["arena"], [i64(self.mem.offsets[key])], source_etype=I8, inbounds=True)
        return c[key]

    def return_if_failed(self) -> None:
        """Return at once if an index check has failed during the call (the state is left as it was)."""
        b = self.b
        failed = b.icmp_signed("!=", b.load(self.ptr_of("status"), typ=I64), i64(0))
        with b.if_then(failed, likely=False):
            b.ret_void()

    def finish(self, graph: Graph, checks: bool, in_place: dict) -> None:
        """Copy the graph's in-place updates back (unless an index check failed during the call) and return; those
        in `in_place` were computed into their input's buffer already."""
        b, writeback = self.b, graph.meta.get("writeback") or {}
        if writeback and checks:
            self.return_if_failed()
        for out_pos, in_pos in writeback.items():
            v = graph.outputs[out_pos]
            if v.id not in in_place:
                self.mb.memcpy(b, self.slot(in_pos), self.ptr_of(v.id), v.type.nbytes)
        b.ret_void()
        pop_emitter(b)


# LLVM's time for a function follows its loops more than its length (the loop passes and the vectorizer work per
# loop): over the kernels of a LeNet training step, time correlated 0.8-0.9 with phi nodes and 0.4-0.7 with
# instructions, at 3.5-7 ms per phi and 0.03-0.04 ms per instruction (AMD Zen 5, LLVM 22).
LOOP_COST = 100  # instructions a phi node weighs in the balance of the parallel-compiled modules


def _llvm_cost(f: ir.Function) -> int:
    """Estimated LLVM work for function f, in instructions (see LOOP_COST)."""
    n = phis = 0
    for bb in f.blocks:
        n += len(bb.instructions)
        phis += sum(isinstance(i, ir.PhiInstr) for i in bb.instructions)
    return n + LOOP_COST * phis


class ModuleBuilder:
    """Builds one LLVM module holding the functions of a graph and of every scan body inside it."""

    def __init__(self, name: str, modules: int = 1):
        self.module = ir.Module(name=name)
        # Kernels may be spread over extra modules that LLVM compiles in parallel (see jit.compile_modules); the
        # first module holds the graph function, which declares the kernels it calls from the others.
        self.modules = [self.module] + [ir.Module(name=f"{name}_part{i}") for i in range(1, modules)]
        # LLVM's work so far per module, as instructions + LOOP_COST per phi node (the graph function's calls come on
        # top)
        self._size = [0] * len(self.modules)
        self._counted: set = set()
        self._split_calls = 0
        self.kernel_names: list = []
        self._by_signature: dict = {}  # (flags, group_signature) -> Kernel already emitted
        self.errors: list = []  # messages of the index-check error codes (shared by every graph function here)
        self._scan_bodies: dict = {}  # scan node id -> (body function, Layout)
        self._scan_halves: dict = {}  # scan node id -> (half-batch body graph, function, Layout), or None
        self._untimed = False  # building code that threads run at once: no profile counters (they would race)
        self._memcpy = None
        self._n = 0
        self.threads = ir.GlobalVariable(self.module, I64, THREADS_VAR)
        self.threads.initializer = i64(1)
        self.pool = ir.GlobalVariable(self.module, I64, POOL_VAR)  # address of graphnn_pool_run, or 0
        self.pool.initializer = i64(0)
        # address of collective.TABLE (MPI entry points and handles), or 0
        self.collectives = ir.GlobalVariable(self.module, I64, collective.TABLE_VAR)
        self.collectives.initializer = i64(0)
        # the host callback's address (codegen/host.py) and the id of the graph its indices refer to
        self.host_fn = ir.GlobalVariable(self.module, I64, host.FN_VAR)
        self.host_fn.initializer = i64(0)
        self.host_graph = ir.GlobalVariable(self.module, I64, host.CTX_VAR)
        self.host_graph.initializer = i64(0)
        self.profile = None
        if profiling():
            typ = ir.ArrayType(I64, 2 * MAX_PROFILED)
            self.profile = ir.GlobalVariable(self.module, typ, PROFILE_VAR)
            self.profile.initializer = ir.Constant(typ, None)
            self._cycles = ir.Function(self.module, ir.FunctionType(I64, []), "llvm.readcyclecounter")

    def timed(self, eb: ir.IRBuilder, index: int, emit) -> None:
        """Run emit(); when profiling, add its cycles and one call to counter `index`."""
        if self.profile is None or index >= MAX_PROFILED:
            emit()
            return
        t0 = eb.call(self._cycles, [])
        emit()
        dt = eb.sub(eb.call(self._cycles, []), t0)
        for j, inc in ((2 * index, dt), (2 * index + 1, i64(1))):
            p = eb.gep(self.profile, [i64(0), i64(j)], inbounds=True)
            eb.store(eb.add(eb.load(p), inc), p)

    def kernel_module(self) -> ir.Module:
        """The module for the next top-level kernel: the one with the least code so far."""
        return self.modules[min(range(len(self.modules)), key=self._size.__getitem__)]

    def placed(self, k: Kernel) -> ir.Function:
        """Record k's size in its module and return what the graph function calls (a declaration when the
        kernel lives in another module, where it then has external linkage)."""
        i = next(j for j, m in enumerate(self.modules) if m is k.module)
        for f in k.module.functions:  # the kernel and helpers it added (micro-kernels, math functions)
            if f.blocks and f.name not in self._counted:
                self._counted.add(f.name)
                self._size[i] += _llvm_cost(f)
        if k.module is self.module:
            return k.fn
        k.fn.linkage = "external"
        return self.module.globals.get(k.fn.name) or ir.Function(self.module, k.fn.function_type, k.fn.name)

    def call_kernel(self, eb: ir.IRBuilder, k: Kernel, args: list) -> None:
        """Call kernel k; a split kernel runs in min(threads, MAX_THREADS) parts on the worker pool."""
        target = self.placed(k)
        self._split_calls += bool(k.split and k.split_used)
        if not (k.split and k.split_used):
            eb.call(target, args + ([i64(0), i64(1)] if k.split else []))
            return
        nb = len(args)
        blk = eb.alloca(ir.ArrayType(PTR, nb))
        for i, a in enumerate(args):
            eb.store(a, eb.gep(blk, [i64(0), i64(i)], inbounds=True))
        eb.call(self._run_parts(), [self._trampoline(k, target, nb), eb.bitcast(blk, PTR)])

    def _trampoline(self, k: Kernel, target, nb: int) -> ir.Function:
        """`void name_part(ptr block, i64 part, i64 parts)`: k's part `part` with its pointers read from block."""
        name = k.fn.name + "_part"
        tramp = self.module.globals.get(name)
        if tramp is None:
            tramp = ir.Function(self.module, TASK, name)
            tramp.linkage = "internal"
            tb = ir.IRBuilder(tramp.append_basic_block())
            block, part, parts = tramp.args  # block: the kernel's buffer pointers
            words = [tb.load(tb.gep(block, [i64(i)], source_etype=PTR), typ=PTR) for i in range(nb)]
            tb.call(target, words + [part, parts])
            tb.ret_void()
        return tramp

    def _run_parts(self) -> ir.Function:
        """`void graphnn_run_parts(ptr task, ptr block)`: the task in min(threads, MAX_THREADS) parts on the
        worker pool, or as one part when there is one thread or no pool (one call site per split kernel call)."""
        fn = self.module.globals.get("graphnn_run_parts")
        if fn is not None:
            return fn
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR, PTR]), "graphnn_run_parts")
        fn.linkage = "internal"
        task, block = fn.args
        eb = ir.IRBuilder(fn.append_basic_block("entry"))
        n = eb.load(self.threads)
        n = eb.select(eb.icmp_signed(">", n, i64(MAX_THREADS)), i64(MAX_THREADS), n)
        pool = eb.load(self.pool)
        use_pool = eb.and_(eb.icmp_signed(">", n, i64(1)), eb.icmp_unsigned("!=", pool, i64(0)))
        with eb.if_else(use_pool) as (pooled, alone):
            with pooled:
                eb.call(eb.inttoptr(pool, ir.PointerType(RUN)), [task, block, n, n])
            with alone:
                eb.call(eb.inttoptr(eb.ptrtoint(task, I64), ir.PointerType(TASK)), [block, i64(0), i64(1)])
        eb.ret_void()
        return fn

    def fresh(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def memcpy(self, b: ir.IRBuilder, dst, src, nbytes) -> None:
        if self._memcpy is None:
            self._memcpy = ir.Function(
                self.module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I1]), "llvm.memcpy.p0.p0.i64"
            )
        b.call(self._memcpy, [dst, src, as_i64(nbytes), ir.Constant(I1, 0)])

    def global_constant(self, arr) -> ir.GlobalVariable:
        data = bytearray(arr.tobytes())
        typ = ir.ArrayType(I8, len(data))
        gv = ir.GlobalVariable(self.module, typ, self.fresh("const"))
        gv.global_constant = True
        gv.linkage = "internal"
        gv.align = 64
        gv.initializer = ir.Constant(typ, data)
        return gv

    def graph_function(self, graph: Graph, name: str, plan: FusionPlan | None = None, globals_for_constants=False):
        """Emit `void name(ptr slots)` computing `graph`; returns (function, Layout, FusionPlan). Three steps: the
        slot layout (where inputs, outputs and constants live), the arena plan (liveness of the intermediates) and
        the kernels, emitted and called in order."""
        plan = plan or plan_fusion(graph)
        _check_lowerable(graph)
        slots = SlotLayout(graph, self if globals_for_constants else None)
        groups = [g for g in plan.groups if family(g.root.producer) != "constant"]
        live = {v.id for n in graph.nodes for v in n.inputs} | {v.id for v in graph.outputs}
        mem = self._plan_arena(groups, plan, slots, live, not globals_for_constants)
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR]), name)
        if globals_for_constants:
            fn.linkage = "internal"
        emit = _GraphEmission(self, fn, slots, mem)
        in_place = {} if globals_for_constants else updates_in_place(graph, groups, plan)
        for vid, in_pos in in_place.items():  # (computed into the input's buffer: no copy at the end)
            emit._cache[vid] = emit.slot(in_pos)
        checked = [gi for gi, g in enumerate(groups) if any(get_op(n.op).index_checked for n in g.nodes)]
        first_writer = min((gi for gi, g in enumerate(groups) if any(r.id in in_place for r in g.roots)), default=None)
        for vid, src in slots.const_outputs:
            srcp = emit.b.bitcast(src, PTR) if isinstance(src, ir.GlobalVariable) else emit.slot(src)
            self.memcpy(emit.b, emit.ptr_of(vid), srcp, next(v.type.nbytes for v in graph.outputs if v.id == vid))
        top = not globals_for_constants
        if top:
            self._size[0] += 10 * len(plan.groups)  # the graph function itself: about this much per kernel call
        aligned = []  # output positions this code assumes 64-byte aligned
        pending: dict = {}  # result id of a started collective -> collective.Pending
        host_index = {id(n): i for i, n in enumerate(host.host_nodes(graph))}
        for gi, g in enumerate(groups):
            node = g.root.producer
            self._complete_read(emit.b, g, pending)
            if family(node) == "collective":
                self._start_collective(fn, emit, node, f"{name}_k{gi}_{node.op}", pending)
                continue
            if pending:
                for p in pending.values():
                    p.progress()
            if id(node) in host_index:
                label = f"{name}_k{gi}_{node.op}"
                index = host_index[id(node)]
                self.timed(
                    emit.b,
                    self._counter(label),
                    lambda: host.emit_call(self, emit.b, node, index, emit.ptr_of),
                )
                continue
            if family(node) == "scan":
                self.timed(
                    emit.b,
                    self._counter(f"{name}_scan{gi} (with its body)"),
                    lambda: self._emit_scan(fn, emit.b, node, emit.ptr_of, f"{name}_scan{gi}", top),
                )
                continue
            label = f"{name}_k{gi}_" + (f"merged{len(g.roots)}" if g.loops or g.scalars else node.op)
            if gi == first_writer and checked:  # (a failed index check leaves the state as it was)
                emit.return_if_failed()
            alias = {graph.inputs[in_place[r.id]].id: r.id for r in g.roots if r.id in in_place}
            k, kargs = self._kernel(g, plan, label, top, slots, aligned, emit.ptr_of, live, alias)
            self.timed(emit.b, self._counter(label), lambda: self.call_kernel(emit.b, k, kargs))
        self._complete_read(emit.b, None, pending)
        emit.finish(graph, bool(self.errors), in_place)
        layout = Layout(
            slots.n_in,
            slots.n_out,
            slots.constants,
            mem.size,
            slots.output_slots,
            dict(graph.meta.get("writeback") or {}),
            self.kernel_names,
            self._split_calls > 0,
            aligned,
            self.errors,
        )
        return fn, layout, plan

    def _start_collective(self, fn, emit: "_GraphEmission", node, label: str, pending: dict) -> None:
        """Start a collective; it completes where its result is first read (or at once, GRAPHNN_DIST_OVERLAP=0)."""
        started = []
        self.timed(
            emit.b, self._counter(label), lambda: started.append(collective.start(self, fn, emit.b, node, emit.ptr_of))
        )
        p = started[0]
        p.label = label
        pending[node.outputs[0].id] = p
        if not collective.overlap():
            self._complete_read(emit.b, None, pending)

    def _complete_read(self, eb: ir.IRBuilder, group, pending: dict) -> None:
        """Complete the started collectives whose results `group` reads (None: all of them)."""
        if not pending:
            return
        reads = None if group is None else {v.id for n in group.nodes for v in n.inputs}
        for vid in [v for v in pending if reads is None or v in reads]:
            p = pending.pop(vid)
            self.timed(eb, self._counter(p.label + "_wait"), p.complete)

    def _counter(self, label: str) -> int:
        """A profile counter for `label` (one list per module: scan bodies' kernels are timed too)."""
        if self._untimed:  # (no counter: timed() then runs the code alone)
            return MAX_PROFILED
        self.kernel_names.append(label)
        return len(self.kernel_names) - 1

    def _plan_arena(self, groups: list, plan: FusionPlan, slots: "SlotLayout", live: set, top: bool):
        """Offsets in the arena of every intermediate (and scan scratch), from their liveness over the kernels. An
        extra output of a kernel's node that nothing reads (attention's log-sum-exp without a gradient) gets no memory
        (a scan writes all of its outputs)."""
        first, last, sizes = kernel_liveness(groups, plan.inlined, live)
        for step, g in enumerate(groups):
            if family(g.root.producer) == "scan":
                for key, nbytes in self._scan_scratch(g.root.producer, top).items():
                    first[key], last[key], sizes[key] = step, step, nbytes
        buffers = [
            (vid, sizes[vid], first[vid], last.get(vid, first[vid])) for vid in sizes if vid not in slots.slot_of
        ]
        return plan_memory(buffers, {})

    def _kernel(
        self, g, plan: FusionPlan, name: str, top: bool, slots: "SlotLayout", aligned: list, ptr_of, live, alias=None
    ):
        """Emit the kernel of group g; returns it and the pointers the graph function passes it: the roots, the
        other outputs of a single root's node that something reads (a kernel stores no others), then what the group
        reads. `alias`: {input id: root id} of roots stored into the buffer of an input they read at the same
        position (updates_in_place). Such an input is read through its root's pointer, so that every pointer the
        kernel takes is distinct (noalias): LLVM then vectorizes its loops without run-time overlap checks, which
        an in-place update fails (its scalar fallback ran instead), and optimizes it faster."""
        roots = g.roots
        extra = [o for o in g.root.producer.outputs if o is not g.root and o.id in live] if len(roots) == 1 else []
        reads, seen = [], {v.id for v in roots + extra}
        for n in g.nodes:
            for v in n.inputs:
                if v.id not in plan.inlined and v.id not in seen:
                    seen.add(v.id)
                    reads.append(v)
        full = roots + extra + reads
        alias = {x: r for x, r in (alias or {}).items() if x in seen}
        kbufs = [v for v in full if v.id not in alias]
        pos = {v.id: i for i, v in enumerate(full)}
        shared = tuple(sorted((pos[x], pos[r]) for x, r in alias.items()))  # (in the signature)
        checks = any(get_op(n.op).index_checked for n in g.nodes)
        with heuristic():  # for sizes symbolic in N: a split kernel and streaming stores are right at every N
            split = top and _work(g) >= _parallel_work()
            nbytes = g.root.type.nbytes
            big = not isinstance(nbytes, Sym) and nbytes >= ALIGNED_OUTPUT_BYTES  # (streamed in whole blocks)
        align, streaming = (), False  # align: positions of the roots known to be 64-byte aligned
        if top:  # the runtime aligns the arena and the outputs listed in `aligned`
            align = tuple(i for i, r in enumerate(roots) if slots.slot_of.get(r.id) is None)
            out_slot = slots.slot_of.get(g.root.id)
            if len(roots) == 1 and out_slot is not None and not alias:
                if slots.is_output(out_slot) and big:
                    # a big result that is only returned goes around the caches (no read-for-ownership traffic)
                    align, streaming = (0,), True
                    aligned.append(out_slot - slots.n_in)
        args = [ptr_of(v.id) for v in kbufs] + ([ptr_of("status")] if checks else [])
        # Groups that compute the same thing on buffers of the same types share one function (a transformer's
        # layers, a forward and its recomputation): kernels with index checks keep their own error messages.
        key = None if checks else (top, split, align, streaming, shared, group_signature(g, full, plan.inlined))
        if key is not None and key[-1] is not None and key in self._by_signature:
            return self._by_signature[key], args
        k = Kernel(
            self.kernel_module() if top else self.module,
            name,
            kbufs,
            plan.inlined,
            lower,
            split=split,
            errors=self.errors if checks else None,
        )
        for x, r in alias.items():
            k.ptr[x] = k.ptr[r]
        for i in align:
            k.fn.args[i].attributes.align = 64
        k.streaming = streaming
        _emit_group(k, g)
        k.finish()
        if key is not None and key[-1] is not None:
            self._by_signature[key] = k
        return k, args

    # -- scan ------------------------------------------------------------------------------------------------
    def _scan_body(self, node):
        """(function, Layout) of a scan node's body, built once per node by this builder."""
        if node.id not in self._scan_bodies:
            hosted = sorted({n.op for n in host.host_nodes(node.attrs["body"].graph)})
            if hosted:
                raise LoweringError(
                    f"op {', '.join(hosted)} runs on the host and cannot be compiled inside a scan loop"
                )
            fn, layout, _ = self.graph_function(
                node.attrs["body"].graph, self.fresh("scan_body"), globals_for_constants=True
            )
            self._scan_bodies[node.id] = (fn, layout)
        return self._scan_bodies[node.id]

    def _scan_half(self, node):
        """(body graph, function, Layout) of a top-level scan's body at half its batch rows, when two threads may
        each run the whole scan on their half (ir/rows.py: every output row reads the same row of the carries and
        per-step inputs only); else None. Only for an even batch of at least 2 * SCAN_SPLIT_MIN_ROWS rows, enough
        work to pay for starting the pool, and products that round the same at half the rows (gemm.py)."""
        if node.id not in self._scan_halves:
            at = node.attrs
            body = at["body"].graph
            half = None
            rows = body.inputs[0].shape[0] if body.inputs and body.inputs[0].type.ndim else 0
            length = at["length"]
            with heuristic():
                work = graph_flops(body) * length
            if (
                isinstance(rows, int)
                and isinstance(length, int)
                and length > 0
                and rows % 2 == 0
                and rows >= 2 * SCAN_SPLIT_MIN_ROWS
                and not isinstance(work, Sym)
                and work >= _parallel_work()
                and not any(get_op(n.op).communicates for n in body.nodes)
            ):
                g = split_rows(body, at["n_carry"], at["n_xs"], rows // 2)
                if g is not None and same_rounding_at_fewer_rows(g):
                    self._untimed = True  # (the scan's own counter times both halves; its kernels get none)
                    try:
                        fn, layout, _ = self.graph_function(g, self.fresh("scan_body_half"), globals_for_constants=True)
                    finally:
                        self._untimed = False
                    half = (g, fn, layout)
            self._scan_halves[node.id] = half
        return self._scan_halves[node.id]

    def _scan_scratch(self, node, top: bool) -> dict:
        """Arena scratch a scan needs: one buffer per carry (the body's next carry) and the body's arena (and for a
        scan that threads may split by rows, an arena for each half's body)."""
        _fn, layout = self._scan_body(node)
        scratch = {("carry", node.id, i): v.type.nbytes for i, v in enumerate(node.outputs[: node.attrs["n_carry"]])}
        scratch[("body_arena", node.id)] = max(64, layout.arena_bytes)
        half = self._scan_half(node) if top else None
        if half is not None:
            for h in range(2):
                scratch[("body_arena_half", node.id, h)] = max(64, half[2].arena_bytes)
        return scratch

    def _emit_scan(self, fn, eb: ir.IRBuilder, node, ptr_of, name: str, top: bool) -> None:
        """The scan's loop; for a scan that threads may split by rows, with two threads or more each half of the
        batch runs the whole loop in a part of its own (the loop over a half of every buffer's rows)."""
        body_fn, bl = self._scan_body(node)
        half = self._scan_half(node) if top else None
        if half is None:
            emit_scan(self, fn, eb, node, ptr_of, body_fn, bl)
            return
        keys, slabs = half_scan_buffers(node)
        keys = keys + [("body_arena_half", node.id, h) for h in range(2)]
        slabs = slabs + [0, 0]
        task = self._half_scan_task(node, name, half, keys, slabs)
        blk = eb.alloca(ir.ArrayType(PTR, len(keys)))
        for i, key in enumerate(keys):
            eb.store(ptr_of(key), eb.gep(blk, [i64(0), i64(i)], inbounds=True))
        two = eb.icmp_signed(">=", eb.load(self.threads), i64(2))
        with eb.if_else(two) as (then, otherwise):
            with then:
                eb.call(self._run_parts(), [task, eb.bitcast(blk, PTR)])
            with otherwise:
                emit_scan(self, fn, eb, node, ptr_of, body_fn, bl)

    def _half_scan_task(self, node, name: str, half, keys: list, slabs: list) -> ir.Function:
        """`void name_rows(ptr block, i64 part, i64 parts)`: half h of the batch (h = 0, 1) runs in part h % parts,
        its buffers read from block (keys) and moved h * slab / 2 bytes along (slabs: bytes of one step's rows of
        each buffer; 0 for the half's own arena, the weights and the status word)."""
        g, body_fn, bl = half
        task = ir.Function(self.module, TASK, name + "_rows")
        task.linkage = "internal"
        tb = ir.IRBuilder(task.append_basic_block("entry"))
        block, part, parts = task.args
        words = [tb.load(tb.gep(block, [i64(i)], source_etype=PTR), typ=PTR) for i in range(len(keys))]
        for h in range(2):
            mine = tb.icmp_signed("==", tb.srem(i64(h), parts), part)
            with tb.if_then(mine):
                at = {}
                for key, w, slab in zip(keys, words, slabs):
                    at[key] = tb.gep(w, [i64(h * slab // 2)], source_etype=I8) if slab else w
                arena = at[("body_arena_half", node.id, h)]

                def ptr_of(key, at=at, arena=arena):
                    return arena if key == ("body_arena", node.id) else at[key]

                emit_scan(self, task, tb, node, ptr_of, body_fn, bl, body=g)
        tb.ret_void()
        return task


def build_module(graph: Graph, name: str = "entry", plan: FusionPlan | None = None, modules: int = 1):
    """Return ([llvm ir text per module], Layout, FusionPlan) for the graph's entry function `name`; with
    modules > 1 the kernels are spread over that many modules (the entry function is in the first)."""
    from .jit import UNROLL_MARK

    mb = ModuleBuilder(name, modules)
    dynamic = "dynamic" in graph.meta
    if dynamic:  # shapes symbolic in N: the runtime stores each call's N here
        dyn = ir.GlobalVariable(mb.module, I64, DYN_VAR)
        dyn.initializer = i64(0)
    with dynamic_module(dynamic):
        _fn, layout, plan = mb.graph_function(graph, name, plan)
    texts = [str(m) for m in mb.modules if m is mb.module or m.globals]
    unroll = int(bool(config.get("GRAPHNN_UNROLL")))  # see jit.py: off by default
    return [f"{UNROLL_MARK}{unroll}\n{t}" for t in texts], layout, plan


STREAM_BLOCK = 2048  # elements computed into an L1 scratch block before it is streamed out


def _emit_streaming(k: Kernel, root) -> None:
    """Flat loop writing a big, 64-byte aligned result with non-temporal stores: each block is computed into a
    scratch buffer by an ordinary (vectorizable) loop, then copied out as aligned vectors that bypass the
    caches. (LLVM does not vectorize loops whose stores are marked non-temporal.)"""
    from .kernel import MEMTYPE
    from .target import vector_width_bits

    b = k.b
    T = MEMTYPE[root.dtype]
    vw = vector_width_bits() // (32 if root.dtype == "float32" else 64)
    V = ir.VectorType(T, vw)
    scratch = k.alloca(ir.ArrayType(T, STREAM_BLOCK))
    scratch.align = 64
    nontemporal = k.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
    n_blocks, rest = divmod(root.type.size, STREAM_BLOCK)

    def block(blk):
        base = b.mul(blk, i64(STREAM_BLOCK))

        def compute(j):
            x = k.compute(root, Index(k, root.shape, flat=b.add(base, j)))
            b.store(x, b.gep(scratch, [i64(0), j], inbounds=True))

        k.loop(STREAM_BLOCK, compute)

        def copy(v):
            off = b.mul(v, i64(vw))
            x = b.load(b.bitcast(b.gep(scratch, [i64(0), off], inbounds=True), ir.PointerType(V)), align=64)
            dst = b.bitcast(k.address(root, b.add(base, off)), ir.PointerType(V))
            b.store(x, dst, align=64).set_metadata("nontemporal", nontemporal)

        k.loop(STREAM_BLOCK // vw, copy)

    k.loop(n_blocks, block, parallel=True)
    if rest:

        def tail():
            first = n_blocks * STREAM_BLOCK
            k.loop(
                rest,
                lambda t: k.store(
                    root, b.add(i64(first), t), k.compute(root, Index(k, root.shape, flat=b.add(i64(first), t)))
                ),
            )

        k.once(tail)


def _emit_group(k: Kernel, g) -> None:
    if g.loops or g.scalars:
        emit_merged(k, g)
        return
    k.hoist_scalars(g.members)
    root = g.root
    shape = root.shape
    heavy, via_flat = heavy_node(g)
    if g.extra:  # siblings stored by the schedule's epilogue (ir/epilogue.py)
        if heavy is None:
            raise LoweringError(f"kernel {k.fn.name}: no schedule stores the epilogue siblings of {root}")
        k.epilogue = [m.root for m in g.extra]
    if heavy is not None:
        SCHEDULES[get_op(heavy.op).schedule][1](k, g, heavy, via_flat)
        return
    if flat_elementwise(g):
        if k.streaming and root.dtype in ("float32", "float64", "int64") and root.type.size >= STREAM_BLOCK:
            _emit_streaming(k, root)
        else:
            k.loop(root.type.size, lambda i: k.store(root, i, k.compute(root, Index(k, shape, flat=i))), parallel=True)
        return
    node = root.producer
    if family(node) == "reshape" and node.inputs[0].id in k.inlined:
        # Loop over the reshape's input shape (same row-major order), so the ops feeding it get their
        # per-dimension indices without divisions.
        src = node.inputs[0]

        def body_src(dims):
            idx = Index(k, src.shape, dims)
            k.store(root, idx.flat, k.elem(src, idx))

        k.loops(src.shape, body_src, parallel=True)
        return

    def body(dims):
        idx = Index(k, shape, dims)
        k.store(root, idx.flat, k.compute(root, idx))

    groups = _coalescable(g)
    if groups is not None:  # adjacent axes that every operand reads alike run as one loop (a long inner one)
        cshape = tuple(prod(shape[a:b]) for a, b in groups)

        def body_coalesced(cdims):
            idx = Index(k, shape, flat=Index(k, cshape, cdims).flat)
            idx.coalesced = (groups, cdims)
            k.store(root, idx.flat, k.compute(root, idx))

        k.loops(cshape, body_coalesced, parallel=True)
        return
    cuts = _segments(g)
    if cuts:
        # Pieces of the last axis where each slice_grad is either wholly inside or wholly outside: with the
        # index range of each loop known, LLVM folds the guards and drops the chains that only feed zeros.
        def pieces(lead):
            for lo, hi in zip(cuts, cuts[1:]):
                k.loop(hi - lo, lambda t, lo=lo: body(list(lead) + [k.b.add(t, i64(lo))]))

        k.loops(shape[:-1], pieces, parallel=True)
        return
    k.loops(shape, body, parallel=True)


def _coalescable(g) -> list | None:
    """Runs [a, b) of the root's axes that can be looped over as one: every node elementwise on operands of the
    root's shape or broadcast to it, and within a run each operand has all of its axes of size 1 or all of the
    root's sizes (a bias (1, C, 1, 1) added to (N, C, H, W): N, C and H*W). None when no two axes merge."""
    shape = g.root.shape
    nd = len(shape)
    operands = []
    for n in g.nodes:
        d = get_op(n.op)
        if d.scalar is not None and not n.inputs:
            continue  # a scalar fill
        if d.pattern not in ("elementwise", "broadcast") or d.remap or n.outputs[0].shape != shape:
            return None
        operands.extend(v.shape for v in n.inputs if v.shape != shape and v.type.size != 1)
    if any(len(s) > nd for s in operands):
        return None
    padded = [(1,) * (nd - len(s)) + tuple(s) for s in operands]
    groups, start, kinds = [], 0, None  # kinds: per operand, is it broadcast along the run's axes
    for ax in range(nd):
        if shape[ax] == 1:
            continue  # joins the current run
        here = tuple(p[ax] == 1 for p in padded)
        if kinds is not None and here != kinds:
            groups.append((start, ax))
            start = ax
        kinds = here
    groups.append((start, nd))
    return groups if len(groups) < nd else None


def _segments(g) -> list:
    """Breakpoints along the root's last axis from the unit-step slice_grads and last-axis concats of the root's
    shape in the group (e.g. an LSTM's gate gradients placed into one (batch, 4*hidden) matrix), or [] when there
    are none (or so many that one loop per piece would bloat the code more than the guards cost)."""
    shape = g.root.shape
    cuts = {0, shape[-1]} if shape else set()
    for n in g.nodes:
        if family(n) == "slice_grad" and n.outputs[0].shape == shape and n.attrs["steps"][-1] == 1:
            start = n.attrs["starts"][-1]
            cuts.update({start, start + n.inputs[0].shape[-1]})
        elif family(n) == "concat" and n.outputs[0].shape == shape and n.attrs["axis"] == len(shape) - 1:
            cuts.update(concat_offsets(n))
    cuts = sorted(c for c in cuts if 0 <= c <= (shape[-1] if shape else 0))
    return cuts if 2 < len(cuts) <= MAX_SEGMENTS + 1 else []


MAX_SEGMENTS = 64
