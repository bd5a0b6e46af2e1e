"""Kernel building blocks: LLVM types, loops, buffer access and the inline element emitter.

A kernel computes one group root element by element. `Kernel.elem(value, index)` returns the LLVM scalar of
`value` at `index`: a load when the value is materialized, otherwise the inline lowering of its producer.
"""

from __future__ import annotations

import contextlib
import threading

import llvmlite.ir as ir

from graphnn.ir.symbolic import Quot, Sym

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I64 = ir.IntType(64)
PTR = ir.PointerType()
LLTYPE = {"float32": ir.FloatType(), "float64": ir.DoubleType(), "int64": I64, "bool": I1}
MEMTYPE = {"float32": ir.FloatType(), "float64": ir.DoubleType(), "int64": I64, "bool": I8}
FLOAT = ("float32", "float64")
FASTMATH = ("contract", "arcp", "afn")  # never nnan/ninf (NaN and Inf must propagate) and never nsz: with the
# reassoc of a reduction's adds, nsz let LLVM fold acc + (x - x) to acc, losing the NaN of inf - inf (fuzz 1003470)


def strides(shape: tuple) -> list:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return out[::-1]


# chunk sizes of a cascaded floating-point fold (Kernel.reduce): 64 chunks of 1024 terms, each of those folded by
# the vectorized loop in (vector width x interleave) partial sums, then chunks of 65536 in one chain
CASCADE = (65536, 1024)
DYN_VAR = "graphnn_dyn_n"  # module global: the dynamic size N of the call (graphs with symbolic shapes)
_emitting = threading.local()  # .stack: builders of the functions being emitted (the innermost last)


def push_emitter(b: ir.IRBuilder) -> None:
    """Sizes symbolic in N (ir/symbolic.py) used from now on are computed at b's position (until pop_emitter)."""
    stack = getattr(_emitting, "stack", None)
    if stack is None:
        stack = _emitting.stack = []
    stack.append(b)


def pop_emitter(b: ir.IRBuilder) -> None:
    stack = getattr(_emitting, "stack", None)
    if stack and b in stack:
        stack.remove(b)


def i64(n) -> ir.Value:
    """An i64 size or index: a constant, or for a size symbolic in N its value computed from the call's N."""
    if isinstance(n, Sym):
        return _symbolic(n)
    return ir.Constant(I64, int(n))


def as_i64(n) -> ir.Value:
    """n as an i64 value: LLVM values as they are, Python ints and symbolic sizes through i64()."""
    return n if isinstance(n, ir.Value) else i64(n)


@contextlib.contextmanager
def dynamic_module(on: bool):
    """A module being built: functions created inside (kernels, graph functions) load the call's N first when `on`
    (see start_function); the emitter stack starts empty (a kernel abandoned by an error leaves nothing behind)."""
    before = getattr(_emitting, "dynamic", False), getattr(_emitting, "stack", None)
    _emitting.dynamic, _emitting.stack = on, []
    try:
        yield
    finally:
        _emitting.dynamic, _emitting.stack = before


def start_function(fn: ir.Function, b: ir.IRBuilder) -> None:
    """Called with the builder of a new function's entry block before anything is emitted there: in a dynamic
    module, load the call's N (the module global DYN_VAR, declared in modules other than the graph function's,
    which defines it) as the function's first instruction."""
    if getattr(_emitting, "dynamic", False):
        module = fn.module
        g = module.globals.get(DYN_VAR) or ir.GlobalVariable(module, I64, DYN_VAR)
        fn.graphnn_n = b.load(g, name="dyn_n")


def _symbolic(s: Sym) -> ir.Value:
    stack = getattr(_emitting, "stack", None)
    if not stack:
        raise RuntimeError(f"internal: the dynamic size {s} used outside a kernel or graph function being emitted")
    b = stack[-1]
    n = getattr(b.function, "graphnn_n", None)
    if n is None:
        raise RuntimeError(f"internal: the dynamic size {s} used in {b.function.name}, which does not load N")
    acc = ir.Constant(I64, s.coefs[-1])
    for c in reversed(s.coefs[:-1]):  # Horner
        acc = b.add(b.mul(acc, n), ir.Constant(I64, c))
    return acc if s.den == 1 else b.sdiv(acc, ir.Constant(I64, s.den))  # (sizes are not negative)


def scratch_count(count, limit: int) -> int:
    """Elements of a stack buffer for `count` of them: count itself, or for a count symbolic in N, `limit` (with
    the guard count <= limit)."""
    if isinstance(count, Sym):
        if not count <= limit:
            raise RuntimeError(f"internal: scratch of {count} elements exceeds {limit} at N = {count.rep}")
        return limit
    return count


def emit_loop(fn: ir.Function, b: ir.IRBuilder, count, body) -> None:
    """Emit `for i in range(count): body(i)` into `fn` at the builder's position (i is an i64)."""
    count = as_i64(count)
    pre = b.block
    head = fn.append_basic_block("loop")
    inner = fn.append_basic_block("body")
    done = fn.append_basic_block("done")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64)
    i.add_incoming(i64(0), pre)
    b.cbranch(b.icmp_signed("<", i, count), inner, done)
    b.position_at_end(inner)
    body(i)
    i.add_incoming(b.add(i, i64(1)), b.block)
    b.branch(head)
    b.position_at_end(done)


class Index:
    """A position in a tensor of `shape`, known as per-dimension indices, a row-major flat index, or both."""

    def __init__(self, k: "Kernel", shape: tuple, dims: list | None = None, flat=None):
        self.k, self.shape, self._dims, self._flat = k, tuple(shape), dims, flat
        # Identity of the position for memoization, fixed at construction (lazily derived forms don't change it):
        # the flat index object when given (one flat value is one position, whatever dims came with it).
        self._key = ("flat", id(flat)) if flat is not None else ("dims", id(dims))
        self.coalesced = None  # (runs of axes looped as one, their indices): see module._coalescable

    @property
    def dims(self) -> list:
        if self._dims is None:
            b = self.k.b
            dims, rest = [], self._flat
            for s, st in zip(self.shape, strides(self.shape)):
                if s == 1:
                    dims.append(i64(0))
                    continue
                dims.append(b.udiv(rest, i64(st)) if st != 1 else rest)
                if st != 1:
                    rest = b.urem(rest, i64(st))
            self._dims = dims
        return self._dims

    @property
    def flat(self):
        if self._flat is None:
            b = self.k.b
            acc = i64(0)
            for d, s, st in zip(self._dims, self.shape, strides(self.shape)):
                if s != 1:
                    acc = b.add(acc, b.mul(d, i64(st)) if st != 1 else d)
            self._flat = acc
        return self._flat

    def key(self):
        return self._key


def regroup(k: "Kernel", src_shape: tuple, dims: list, dst_shape: tuple) -> list:
    """Per-dimension indices in dst_shape of the element at `dims` in src_shape (same row-major order).
    The shapes are split into runs of dimensions with equal products; indices are only raveled and unraveled
    within a run, so merging or splitting a leading dimension costs no division (unused ones fold away)."""
    b = k.b
    out, i, j = [], 0, 0
    while i < len(src_shape) or j < len(dst_shape):
        si, sj, ps, pd = i, j, 1, 1
        while True:  # grow the run until both sides cover the same number of elements
            if ps <= pd and i < len(src_shape):
                ps *= src_shape[i]
                i += 1
            elif j < len(dst_shape):
                pd *= dst_shape[j]
                j += 1
            else:
                break
            if ps == pd and (i == len(src_shape) or src_shape[i] != 1) and (j == len(dst_shape) or dst_shape[j] != 1):
                break
        flat = None
        for d, s in zip(dims[si:i], src_shape[si:i]):
            if s == 1:
                continue
            flat = d if flat is None else b.add(b.mul(flat, i64(s)), d)
        flat = flat if flat is not None else i64(0)
        out.extend(Index(k, tuple(dst_shape[sj:j]), flat=flat).dims)
    return out


class Kernel:
    """One LLVM function `void name(ptr buf0, ptr buf1, ...)` computing a group."""

    def __init__(
        self,
        module: ir.Module,
        name: str,
        buffers: list,
        inlined: set,
        lower,
        split: bool = False,
        errors: list | None = None,
    ):
        self.module = module
        # errors: the module's list of error messages; a kernel that checks indices gets a pointer to the call's
        # status words [code, value] (see checked_index) after its buffers.
        self.errors = errors
        extra = ([PTR] if errors is not None else []) + ([I64, I64] if split else [])
        self.fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * len(buffers) + extra), name)
        self.fn.linkage = "internal"
        # (kept a function of its own: inlined, every kernel of a graph became one huge function whose O3
        # optimization and code generation took most of a cold compile; a call per kernel costs nothing)
        self.fn.attributes.add("noinline")
        for a in self.fn.args[: len(buffers)]:  # (distinct buffers: an in-place update reads its root's pointer)
            a.add_attribute("noalias")
        self.ptr = {v.id: a for v, a in zip(buffers, self.fn.args)}
        self.status = self.fn.args[len(buffers)] if errors is not None else None
        # With split=True the kernel takes (part, parts) and runs only its share of its outermost loop,
        # so that several threads can each run one part (see ModuleBuilder.call_kernel).
        self.split = split
        self.split_used = False
        # every top-level parallel loop is split, not only the first (a merged kernel's independent loops)
        self.split_each = False
        self.epilogue: list = []  # sibling roots store_epilogue computes after the root (ir/epilogue.py)
        self.known: dict = {}  # value id -> its LLVM scalar: one-element values computed once (a merged kernel's)
        self._top_loops = 0  # loops emitted at the top level so far (only the first may be split)
        self._speculation: list = []  # conditions under which the values being computed are actually used
        self._in_once = False
        self.streaming = False  # write the root with non-temporal stores (set by the module builder)
        self._depth = 0
        self.entry = self.fn.append_basic_block("entry")  # allocas only; branches to `start` in finish()
        self.start = self.fn.append_basic_block("start")
        self._allocas = ir.IRBuilder(self.entry)
        start_function(self.fn, self._allocas)
        self.b = ir.IRBuilder(self.start)
        push_emitter(self.b)
        self.inlined = inlined
        self.lower = lower  # lower(k, node, idx): one element of node's output (codegen.lowerings.lower)
        self._memo = [{}]

    # -- arithmetic helpers -----------------------------------------
    def flags(self, inst, extra=(), exact_division: bool = False):
        """inst with the kernel's fast-math flags (and `extra`). exact_division: without arcp, which lets x86 turn
        c / sqrt(x) into a refined reciprocal-square-root estimate (NaN at x = 0 and x = inf)."""
        t = inst.type.element if isinstance(inst.type, ir.VectorType) else inst.type
        if hasattr(inst, "flags") and isinstance(t, (ir.FloatType, ir.DoubleType)):
            flags = FASTMATH + tuple(extra)
            inst.flags.extend(f for f in flags if not (exact_division and f == "arcp"))
        return inst

    def const(self, value, dtype: str):
        if isinstance(value, Sym):  # a size symbolic in N used as a number (a mean's count): computed from N
            n = i64(value)
            if dtype == "int64":
                return n
            return self.b.icmp_signed("!=", n, i64(0)) if dtype == "bool" else self.b.sitofp(n, LLTYPE[dtype])
        if isinstance(value, Quot):  # a ratio of counts, rounded as it was folded (exact division)
            t = LLTYPE[value.dtype]
            r = self.b.fdiv(self.b.sitofp(i64(value.num), t), self.b.sitofp(i64(value.den), t))
            return self.convert(r, value.dtype, dtype)
        if dtype == "bool":
            return ir.Constant(I1, int(bool(value)))
        if dtype == "int64":
            return ir.Constant(I64, int(value))
        return ir.Constant(LLTYPE[dtype], float(value))

    def alloca(self, typ):
        return self._allocas.alloca(typ)

    def finish(self) -> None:
        pop_emitter(self.b)
        self._allocas.branch(self.start)
        self.b.ret_void()

    def intrinsic(self, name: str, dtype: str, args: list):
        t = LLTYPE[dtype]
        suffix = "f32" if dtype == "float32" else "f64"
        fname = f"llvm.{name}.{suffix}"
        fn = self.module.globals.get(fname) or ir.Function(self.module, ir.FunctionType(t, [t] * len(args)), fname)
        return self.flags(self.b.call(fn, args))

    def libm(self, name: str, dtype: str, args: list):
        t = LLTYPE[dtype]
        fname = name + ("f" if dtype == "float32" else "")
        fn = self.module.globals.get(fname) or ir.Function(self.module, ir.FunctionType(t, [t] * len(args)), fname)
        return self.b.call(fn, args)

    def convert(self, x, src: str, dst: str):
        b = self.b
        if src == dst:
            return x
        if dst == "bool":
            if src in FLOAT:
                return b.fcmp_unordered("!=", x, self.const(0, src))
            return b.icmp_signed("!=", x, self.const(0, src))
        if src == "bool":
            return b.uitofp(x, LLTYPE[dst]) if dst in FLOAT else b.zext(x, I64)
        if src in FLOAT and dst in FLOAT:
            return b.fpext(x, LLTYPE[dst]) if dst == "float64" else b.fptrunc(x, LLTYPE[dst])
        if src in FLOAT:  # NaN, +-Inf and out-of-range values give INT64_MIN, as NumPy and PyTorch do on x86
            lim = 2.0**63
            inside = b.and_(
                b.fcmp_ordered(">=", x, self.const(-lim, src)), b.fcmp_ordered("<", x, self.const(lim, src))
            )
            return b.select(inside, b.fptosi(x, I64), i64(-(2**63)))
        return b.sitofp(x, LLTYPE[dst])

    def checked_index(self, raw, size: int, message: str):
        """`raw` (an i64) clamped into [0, size): an index outside the range records `message` (with `{value}` for
        the index) in the call's status words, and the runtime raises IndexError after the call."""
        if self.status is None:
            raise RuntimeError(f"internal: kernel {self.fn.name} checks indices but has no status pointer")
        b = self.b
        if message not in self.errors:
            self.errors.append(message)
        code = self.errors.index(message) + 1
        bad = b.or_(b.icmp_signed("<", raw, i64(0)), b.icmp_signed(">=", raw, i64(size)))
        for used in self._speculation:  # a value computed but then discarded reports nothing
            bad = b.and_(bad, used)
        with b.if_then(bad, likely=False):
            with b.if_then(b.icmp_signed("==", b.load(self.status, typ=I64), i64(0))):  # the first error is kept
                b.store(i64(code), self.status)
                b.store(raw, b.gep(self.status, [i64(1)], source_etype=I64))
        return b.select(bad, i64(0), raw)

    @contextlib.contextmanager
    def speculating(self, used):
        """Values computed inside are used only where `used` (an i1) holds, e.g. under a select."""
        self._speculation.append(used)
        try:
            yield
        finally:
            self._speculation.pop()

    # -- loops ----------------------------------------------------------
    def loop(self, count, body, parallel: bool = False) -> None:
        """Emit `for i in range(count): body(i)` at the builder's position.

        `parallel=True` promises that the iterations are independent and write disjoint parts of the kernel's
        outputs. In a split kernel only such a loop is split (each part runs its share of the range), and only
        when it is the kernel's first loop at the top level; work after it that must run once goes in once().
        Any other loop runs whole in every part, so a kernel whose first top-level loop is not parallel (a
        reduction to one value, say) is simply not split. With `split_each` every parallel top-level loop is split
        (the loops of a merged kernel, none of which reads what another writes)."""

        def scoped(i):
            self._memo.append({})
            self._depth += 1
            body(i)
            self._depth -= 1
            self._memo.pop()

        if self.split and self._depth == 0:
            first = self._top_loops == 0
            self._top_loops += 1
            if parallel and (first or self.split_each):
                self.split_used = True
                b = self.b
                lo, hi = self._part_range(count)
                emit_loop(self.fn, b, b.sub(hi, lo), lambda t: scoped(b.add(lo, t)))
                return
            if self.split_used and not self._in_once:
                raise RuntimeError(
                    f"internal: kernel {self.fn.name} has a loop after its split loop that every "
                    "part would run (wrap work after the split loop in Kernel.once)"
                )
        emit_loop(self.fn, self.b, count, scoped)

    def share(self, count, body) -> None:
        """body(lo, hi) over this part's share [lo, hi) of range(count): the whole range unless the kernel is split
        and this is its first top-level loop (see loop(), parallel=True). For a schedule that reuses data across
        the iterations of its share (a slice of a matrix read once per part, not once per iteration)."""
        lo, hi = i64(0), as_i64(count)
        if self.split and self._depth == 0:
            first = self._top_loops == 0
            self._top_loops += 1
            if first:
                self.split_used = True
                lo, hi = self._part_range(count)
            elif self.split_used and not self._in_once:
                raise RuntimeError(f"internal: kernel {self.fn.name} shares a range after its split loop")
        self._memo.append({})
        self._depth += 1
        body(lo, hi)
        self._depth -= 1
        self._memo.pop()

    def _part_range(self, count) -> tuple:
        """[lo, hi): this part's share of range(count) in a split kernel (its (part, parts) arguments)."""
        b = self.b
        part, parts = self.fn.args[-2], self.fn.args[-1]
        n = as_i64(count)
        return b.sdiv(b.mul(n, part), parts), b.sdiv(b.mul(n, b.add(part, i64(1))), parts)

    def once(self, body) -> None:
        """Run body() in one part only of a split kernel (work after the split loop that parts would repeat)."""
        if self.split and self.split_used:
            self._in_once = True
            self.if_else(self.b.icmp_signed("==", self.fn.args[-2], i64(0)), body, lambda: None)
            self._in_once = False
        else:
            body()

    def if_else(self, cond, then, otherwise) -> None:
        """Emit `if cond: then() else: otherwise()`, each branch with its own memo scope."""
        with self.b.if_else(cond) as (t, e):
            with t:
                self._memo.append({})
                then()
                self._memo.pop()
            with e:
                self._memo.append({})
                otherwise()
                self._memo.pop()

    def loops(self, shape: tuple, body, parallel: bool = False) -> None:
        """Nested loops over `shape`; body(dims) receives one index per dimension. `parallel=True` marks the
        outermost loop (of a dimension bigger than 1) as splittable: see loop()."""

        def rec(d, dims, par):
            if d == len(shape):
                body(dims)
            elif not isinstance(shape[d], Sym) and shape[d] == 1:  # (a size symbolic in N: looped at any value)
                rec(d + 1, dims + [i64(0)], par)
            else:
                self.loop(shape[d], lambda i: rec(d + 1, dims + [i], False), parallel=par)

        rec(0, [], parallel)

    def reduce(self, shape: tuple, init, dtype: str, step, combine=None) -> "ir.Value":
        """Fold `acc = step(acc, dims)` over every index of `shape`, starting from `init`. With `combine` (joining
        two partial results of the fold; init its identity) a floating-point fold of more than CASCADE[-1] terms
        is a cascade: each loop level folds into a partial of its own, and a long innermost level goes in chunks of
        CASCADE elements, so rounding grows with the levels' extents added, not multiplied (one chain of 10M
        float32 terms of 0.1 summed to 998501, 0.15% off; PyTorch sums in a cascade too)."""
        T = LLTYPE[dtype]
        b = self.b
        total = 1
        for n in shape:
            total = None if total is None or isinstance(n, Sym) else total * n
        if combine is None or dtype not in FLOAT or (total is not None and total <= CASCADE[-1]):
            slot = self.alloca(T)
            b.store(init, slot)

            def body(dims):
                b.store(step(b.load(slot), dims), slot)

            self.loops(shape, body)
            return b.load(slot)

        def run(lo, count, level: int, dims: list):
            """The partial fold over [lo, lo + count) of the innermost dimension (chunked from CASCADE[level] on)."""
            acc = self.alloca(T)
            b.store(init, acc)
            if level == len(CASCADE):
                self.loop(count, lambda i: b.store(step(b.load(acc), dims + [b.add(lo, i)]), acc))
            else:
                c = CASCADE[level]

                def chunk(j):
                    start = b.mul(j, i64(c))
                    left = b.sub(count, start)
                    size = b.select(b.icmp_signed("<", left, i64(c)), left, i64(c))
                    b.store(combine(b.load(acc), run(b.add(lo, start), size, level + 1, dims)), acc)

                self.loop(b.sdiv(b.add(count, i64(c - 1)), i64(c)), chunk)
            return b.load(acc)

        def level(d: int, dims: list):
            """The partial fold over shape[d:] with dims fixed."""
            n = shape[d]
            if d == len(shape) - 1:
                first = next((i for i, c in enumerate(CASCADE) if isinstance(n, Sym) or n > c), len(CASCADE))
                return run(i64(0), as_i64(n), first, dims)
            acc = self.alloca(T)
            b.store(init, acc)
            self.loop(n, lambda i: b.store(combine(b.load(acc), level(d + 1, dims + [i])), acc))
            return b.load(acc)

        return level(0, [])

    # -- memory ---------------------------------------------------------
    def address(self, v, flat):
        return self.b.gep(self.ptr[v.id], [flat], source_etype=MEMTYPE[v.dtype], inbounds=True)

    def load(self, v, idx: Index):
        x = self.b.load(self.address(v, idx.flat if v.type.size > 1 else i64(0)), typ=MEMTYPE[v.dtype])
        return self.b.trunc(x, I1) if v.dtype == "bool" else x

    def store(self, v, flat, x) -> None:
        if v.dtype == "bool":
            x = self.b.zext(x, I8)
        self.b.store(x, self.address(v, flat))

    # -- element emitter --------------------------------------------------
    def elem(self, v, idx: Index):
        """The value of `v` at `idx` (an Index over v.shape)."""
        if v.id in self.known:
            return self.known[v.id]
        key = (v.id, idx.key())
        for scope in reversed(self._memo):
            if key in scope:
                return scope[key][0]
        if v.id in self.inlined:
            node = v.producer
            x = self.lower(self, node, idx)
        else:
            if v.id not in self.ptr:
                raise KeyError(f"kernel reads {v} which is neither inlined nor passed in")
            x = self.load(v, idx)
        # Keep idx alive with the entry: the key holds ids of its dims list / flat value, and a freed
        # object's id can be reused by a different index later in the same scope.
        self._memo[-1][key] = (x, idx)
        return x

    def hoist_scalars(self, groups: list) -> None:
        """Compute once, here (before any loop), the one-element float values that `groups` compute inline from
        one-element values known at this point only (an optimizer's bias corrections 1 - beta**t, a learning-rate
        scale): left in a loop body they are computed per element, as LLVM does not hoist a call such as pow out of
        a loop, which then does not vectorize either. The groups' roots are not computed yet unless known.
        (Float arithmetic cannot trap, so computing it where a loop might not run is safe.)"""
        written = {g.root.id for g in groups}

        def ready(x) -> bool:  # read from outside the kernel, or already computed
            return x.id in self.known or (x.id not in self.inlined and x.id not in written)

        def one(v) -> bool:  # (sizes symbolic in N are not compared: a comparison would add a guard)
            return all(isinstance(d, int) and d == 1 for d in v.shape)

        for g in groups:
            for n in g.nodes:
                v = n.outputs[0] if len(n.outputs) == 1 else None
                if v is None or v.id not in self.inlined or v.id in self.known or not v.type.is_float or not one(v):
                    continue
                if all(one(x) and ready(x) for x in n.inputs):
                    self.known[v.id] = self.elem(v, Index(self, v.shape, [i64(0)] * len(v.shape), i64(0)))

    def provide(self, v, idx: Index, x) -> None:
        """Make elem(v, idx) return x in the current loop scope (values computed by a custom schedule)."""
        self._memo[-1][(v.id, idx.key())] = (x, idx)

    def compute(self, v, idx: Index):
        """The value of `v` at `idx` from its producer's lowering (used for a group's root)."""
        return self.lower(self, v.producer, idx)

    def input_index(self, v, out_idx: Index) -> Index:
        """Index into input `v` of a broadcasting op for output position `out_idx`."""
        if v.shape == out_idx.shape:
            return out_idx
        if v.type.size == 1:
            return Index(self, v.shape, [i64(0)] * len(v.shape), i64(0))
        lead = len(out_idx.shape) - len(v.shape)
        if out_idx.coalesced is not None:  # v is all size 1 or all full along each run of the loop's axes
            b, flat = self.b, i64(0)
            padded = (1,) * lead + tuple(v.shape)
            for (a, e), d in zip(*out_idx.coalesced):
                extent = 1
                for s in padded[a:e]:
                    extent *= s
                if extent != 1:
                    flat = b.add(b.mul(flat, i64(extent)), d)
            return Index(self, v.shape, flat=flat)
        dims = [i64(0) if s == 1 else out_idx.dims[lead + i] for i, s in enumerate(v.shape)]
        return Index(self, v.shape, dims)
