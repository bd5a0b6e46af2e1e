"""Exported native code: a graph's function wrapped in C entry points that own weights and scratch memory.

The module holds the graph function of codegen.module (internal) and these external functions, all in LLVM IR
so that the object file alone is usable without a C compiler (malloc/free/memcpy come from the C library):

    void   *<name>_init(const void *weights, int64_t nbytes)   context = copy of the weights + scratch, or NULL
                                                                 (weights may be NULL when there are none)
    int     <name>_<entry>(void *ctx, const T *in..., T *out...) run once; 0, -1 for a NULL context, -2 when an
                                                                 index was out of range (state left unchanged)
    int64_t <name>_weights_size(void)
    const char *<name>_signature(void)                         the layout it was built for (see signature())
    int     <name>_get_weights(const void *ctx, void *dst)      copy the (possibly updated) weights out
    int     <name>_set_weights(void *ctx, const void *src, int64_t nbytes)
    void    <name>_free(void *ctx)

A context is one 64-byte aligned block: [raw malloc pointer | slot array | status | weights (state) | scratch outputs |
arena]. The weights blob has the layout of the state region: every non-user graph input at a 64-byte aligned
offset. Calls on one context must not overlap (one context per thread).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

import llvmlite.binding as llvm
import llvmlite.ir as ir

from graphnn.ir.graph import Graph
from graphnn.ir.registry import get_op
from graphnn.ir.types import TensorType

from .jit import _optimize
from .kernel import I8, I64, PTR, i64
from .module import LoweringError, ModuleBuilder
from .target import host_features, init_llvm

I32 = ir.IntType(32)
ALIGN = 64
C_TYPES = {"float32": "float", "float64": "double", "int64": "int64_t", "bool": "bool"}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Port:
    """A user input or output, or one tensor of the weights blob (offset/kind set for those)."""

    name: str
    shape: tuple
    dtype: str
    kind: str = ""
    offset: int = 0

    @property
    def nbytes(self) -> int:
        return TensorType(self.shape, self.dtype).nbytes

    @property
    def size(self) -> int:
        return TensorType(self.shape, self.dtype).size


@dataclass
class ExportABI:
    """The entry points of an exported module and the weights layout they expect."""

    name: str
    entry: str
    inputs: list
    outputs: list
    weights: list
    weights_bytes: int
    ctx_bytes: int
    symbols: dict = field(default_factory=dict)  # role -> symbol name
    signatures: dict = field(default_factory=dict)  # role -> C prototype


C_KEYWORDS = set(
    "auto break case char const continue default do double else enum extern float for goto if inline int "
    "long register restrict return short signed sizeof static struct switch typedef union unsigned void "
    "volatile while bool true false ctx".split()
)


def _c_ident(text: str) -> str:
    s = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    return s if s and not s[0].isdigit() else "_" + s


def _c_params(names: list) -> list:
    """Distinct C parameter names (no keyword, none called ctx) for the given port names."""
    out: list = []
    for n in names:
        s = _c_ident(n)
        while s in C_KEYWORDS or s in out:
            s += "_"
        out.append(s)
    return out


def build_export_module(
    graph: Graph, name: str, entry: str, user_inputs: list, user_outputs: list, output_names: list
) -> tuple:
    """(LLVM IR text, ExportABI) for `graph`: inputs at positions `user_inputs` come from the caller, every other
    input is state kept in the context; the outputs at positions `user_outputs` are returned to the caller."""
    talks = sorted({n.op for n in graph.nodes if get_op(n.op).communicates})
    if talks:
        raise LoweringError(
            f"cannot export {', '.join(talks)}: exported code runs without a process group (export the model, "
            "or a training step without DistributedDataParallel)"
        )
    hosted = sorted({n.op for n in graph.nodes if get_op(n.op).host})
    if hosted:
        raise LoweringError(
            f"cannot export {', '.join(hosted)}: compiled code runs these ops on the Python side (a host call), and "
            "an export runs without Python"
        )
    mb = ModuleBuilder(name)
    inner, layout, _plan = mb.graph_function(graph, f"{name}_graph", globals_for_constants=True)
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    state_pos = [i for i in range(n_in) if i not in user_inputs]
    status_off = ALIGN + (n_in + n_out + 2) * 8  # the status words [error code, value] after the slot array
    off = _align(status_off + 16)
    state_base, weights, state_off = off, [], {}
    for i in state_pos:
        v = graph.inputs[i]
        p = Port(v.name, v.shape, v.dtype, v.meta.get("kind", "param"), off - state_base)
        weights.append(p)
        state_off[i] = off
        off = _align(off + p.nbytes)
    weights_bytes = off - state_base
    scratch_off = {}
    for j, s in enumerate(layout.output_slots):
        if isinstance(s, int) and j not in user_outputs:
            scratch_off[j] = off
            off = _align(off + graph.outputs[j].type.nbytes)
    arena_off, off = off, _align(off + max(ALIGN, layout.arena_bytes))
    ctx_bytes = off
    inputs = [Port(graph.inputs[i].name, graph.inputs[i].shape, graph.inputs[i].dtype) for i in user_inputs]
    outputs = [Port(nm, graph.outputs[j].shape, graph.outputs[j].dtype) for j, nm in zip(user_outputs, output_names)]
    abi = ExportABI(name, entry, inputs, outputs, weights, weights_bytes, ctx_bytes)

    m = mb.module
    malloc = ir.Function(m, ir.FunctionType(PTR, [I64]), "malloc")
    free = ir.Function(m, ir.FunctionType(ir.VoidType(), [PTR]), "free")
    null = ir.Constant(PTR, None)

    def func(role: str, ret, args: list, c_sig: str):
        sym = f"{name}_{role}"
        abi.symbols[role] = sym
        abi.signatures[role] = c_sig.format(sym=sym)
        fn = ir.Function(m, ir.FunctionType(ret, args), sym)
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def at(b, base, offset):
        return b.gep(base, [i64(offset)], source_etype=I8, inbounds=True)

    def guard_null(fn, b, ptr, ret_value):
        bad, ok = fn.append_basic_block("null"), fn.append_basic_block("ok")
        b.cbranch(b.icmp_unsigned("==", ptr, null), bad, ok)
        b.position_at_end(bad)
        b.ret(ret_value) if ret_value is not None else b.ret_void()
        b.position_at_end(ok)

    def set_slot(b, ctx, slot, ptr):
        b.store(ptr, at(b, ctx, ALIGN + 8 * slot))

    # init: allocate, align, copy the weights in, point the fixed slots at the context's regions.
    fn, b = func("init", PTR, [PTR, I64], "void *{sym}(const void *weights, int64_t nbytes)")
    w, nb = fn.args
    bad, ok = fn.append_basic_block("bad"), fn.append_basic_block("ok")
    size_ok = b.icmp_signed("==", nb, i64(weights_bytes))
    b.cbranch(b.and_(size_ok, b.icmp_unsigned("!=", w, null)) if weights_bytes else size_ok, ok, bad)
    b.position_at_end(bad)
    b.ret(null)
    b.position_at_end(ok)
    raw = b.call(malloc, [i64(ctx_bytes + ALIGN)])
    guard_null(fn, b, raw, null)
    pad = b.sub(i64(ALIGN), b.and_(b.ptrtoint(raw, I64), i64(ALIGN - 1)))
    ctx = b.gep(raw, [pad], source_etype=I8, inbounds=True)
    b.store(raw, ctx)
    mb.memcpy(b, at(b, ctx, state_base), w, weights_bytes)
    for i, o in state_off.items():
        set_slot(b, ctx, i, at(b, ctx, o))
    for j, o in scratch_off.items():
        set_slot(b, ctx, layout.output_slots[j], at(b, ctx, o))
    set_slot(b, ctx, n_in + n_out, at(b, ctx, arena_off))
    set_slot(b, ctx, n_in + n_out + 1, at(b, ctx, status_off))
    b.store(i64(0), at(b, ctx, status_off))
    b.ret(ctx)

    # the entry: store the caller's pointers, run the graph, copy outputs that are inputs or duplicates.
    params = _c_params([p.name for p in inputs + outputs])
    c_args = ", ".join(
        [f"const {C_TYPES[p.dtype]} *{c}" for p, c in zip(inputs, params)]
        + [f"{C_TYPES[p.dtype]} *{c}" for p, c in zip(outputs, params[len(inputs) :])]
    )
    fn, b = func(entry, I32, [PTR] * (1 + len(inputs) + len(outputs)), "int {sym}(void *ctx, " + c_args + ")")
    ctx, args = fn.args[0], fn.args[1:]
    guard_null(fn, b, ctx, ir.Constant(I32, -1))
    user_ptr = {("in", i): a for i, a in zip(user_inputs, args)}
    user_ptr.update({("out", j): a for j, a in zip(user_outputs, args[len(inputs) :])})
    for i in user_inputs:
        set_slot(b, ctx, i, user_ptr[("in", i)])
    for j in user_outputs:
        if isinstance(layout.output_slots[j], int):
            set_slot(b, ctx, layout.output_slots[j], user_ptr[("out", j)])
    b.call(inner, [at(b, ctx, ALIGN)])
    status = at(b, ctx, status_off)
    with b.if_then(b.icmp_signed("!=", b.load(status, typ=I64), i64(0)), likely=False):  # an index out of range
        b.store(i64(0), status)
        b.ret(ir.Constant(I32, -2))

    def ptr_of(kind: str, k: int):
        if (kind, k) in user_ptr:
            return user_ptr[(kind, k)]
        return at(b, ctx, state_off[k] if kind == "in" else scratch_off[k])

    for j in user_outputs:
        s = layout.output_slots[j]
        if isinstance(s, tuple):
            src = ptr_of("in", s[1]) if s[0] == "input" else ptr_of("out", s[1])
            mb.memcpy(b, user_ptr[("out", j)], src, graph.outputs[j].type.nbytes)
    b.ret(ir.Constant(I32, 0))

    fn, b = func("weights_size", I64, [], "int64_t {sym}(void)")
    b.ret(i64(weights_bytes))

    text = (
        signature(
            name,
            entry,
            [_shape_of(p) for p in inputs],
            [_shape_of(p) for p in outputs],
            weights_bytes,
            [_shape_of(p) + (p.offset,) for p in weights],
        ).encode()
        + b"\0"
    )
    sig = ir.GlobalVariable(m, ir.ArrayType(I8, len(text)), f"{name}_signature_text")
    sig.global_constant, sig.linkage, sig.initializer = (
        True,
        "internal",
        ir.Constant(ir.ArrayType(I8, len(text)), bytearray(text)),
    )
    fn, b = func("signature", PTR, [], "const char *{sym}(void)")
    b.ret(b.bitcast(sig, PTR))

    fn, b = func("get_weights", I32, [PTR, PTR], "int {sym}(const void *ctx, void *weights)")
    guard_null(fn, b, fn.args[0], ir.Constant(I32, -1))
    mb.memcpy(b, fn.args[1], at(b, fn.args[0], state_base), weights_bytes)
    b.ret(ir.Constant(I32, 0))

    fn, b = func("set_weights", I32, [PTR, PTR, I64], "int {sym}(void *ctx, const void *weights, int64_t nbytes)")
    guard_null(fn, b, fn.args[0], ir.Constant(I32, -1))
    bad, ok = fn.append_basic_block("bad"), fn.append_basic_block("ok")
    b.cbranch(b.icmp_signed("==", fn.args[2], i64(weights_bytes)), ok, bad)
    b.position_at_end(bad)
    b.ret(ir.Constant(I32, -2))
    b.position_at_end(ok)
    mb.memcpy(b, at(b, fn.args[0], state_base), fn.args[1], weights_bytes)
    b.ret(ir.Constant(I32, 0))

    fn, b = func("free", ir.VoidType(), [PTR], "void {sym}(void *ctx)")
    guard_null(fn, b, fn.args[0], None)
    b.call(free, [b.load(fn.args[0], typ=PTR)])
    b.ret_void()

    for f in m.functions:  # only the entry points are visible outside the object
        if not f.is_declaration and f.name not in abi.symbols.values():
            f.linkage = "internal"
    return str(m), abi


def _shape_of(p: Port) -> tuple:
    return (p.name, tuple(p.shape), p.dtype)


def signature(name: str, entry: str, inputs: list, outputs: list, weights_bytes: int, weights: list) -> str:
    """The text `<name>_signature()` returns: what the code was built for (ports as (name, shape, dtype), weights
    as (name, shape, dtype, offset)). graphnn.load compares it with the manifest before running anything."""
    port = lambda p: f"{p[0]}:{p[2]}[{','.join(map(str, p[1]))}]"  # noqa: E731
    return (
        f"graphnn-export/1 {name}_{entry} in {' '.join(map(port, inputs))} out {' '.join(map(port, outputs))} "
        f"weights {weights_bytes} " + " ".join(f"{port(w)}@{w[3]}" for w in weights)
    )


# -- target and object code ---------------------------------------------------------------------------------
def target_info(target: str) -> dict:
    """Triple, CPU and features of an export target: 'generic' (any CPU of the host's architecture; x86-64
    without AVX) or 'host' (this CPU's full instruction set)."""
    init_llvm()
    triple = llvm.get_process_triple()
    if target == "generic":
        cpu = "x86-64" if platform.machine().lower() in ("x86_64", "amd64") else "generic"
        about = "any x86-64 CPU (baseline x86-64: SSE2, no AVX)" if cpu == "x86-64" else f"any {triple} CPU"
        return {"kind": "generic", "triple": triple, "cpu": cpu, "features": "", "description": about}
    if target == "host":
        cpu = llvm.get_host_cpu_name()
        return {
            "kind": "host",
            "triple": triple,
            "cpu": cpu,
            "features": host_features(),
            "description": f"CPUs with every feature of this {cpu}",
        }
    raise ValueError(f"export target must be 'generic' or 'host', got {target!r}")


def emit_object(ir_text: str, target: dict) -> bytes:
    """Optimize the module for `target` (from target_info) and return a position-independent ELF object."""
    init_llvm()
    tm = llvm.Target.from_triple(target["triple"]).create_target_machine(
        cpu=target["cpu"], features=target["features"], opt=3, reloc="pic", codemodel="default"
    )
    mod = llvm.parse_assembly(ir_text)
    mod.triple = target["triple"]
    mod.data_layout = str(tm.target_data)
    mod.verify()
    _optimize(mod, tm)
    return tm.emit_object(mod)


def missing_features(features: str) -> list:
    """The '+feature' flags of `features` this CPU lacks (code built for them could fault here)."""
    have = set(host_features().split(","))
    return sorted(f for f in features.split(",") if f.startswith("+") and f not in have)


def load_object(data: bytes, symbols: list) -> tuple:
    """Link an object file into this process with MCJIT (no C compiler needed): (engine, {symbol: address}).
    Keep the engine alive while the code is used."""
    init_llvm()
    # The engine owns (and frees with itself) its target machine, so it gets its own, not the cached host one.
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=host_features(), codemodel="jitdefault"
    )
    backing = llvm.parse_assembly("")
    backing.triple = llvm.get_process_triple()
    eng = llvm.create_mcjit_compiler(backing, tm)
    eng.add_object_file(llvm.ObjectFileRef.from_data(data))
    eng.finalize_object()
    addrs = {s: eng.get_function_address(s) for s in symbols}
    missing = [s for s, a in addrs.items() if not a]
    if missing:
        raise LookupError(f"object file lacks entry points {', '.join(missing)}")
    return eng, addrs


def c_header(abi: ExportABI, comment: str) -> str:
    """A C header declaring the entry points, with sizes as macros."""
    up = _c_ident(abi.name).upper()
    guard = f"GRAPHNN_EXPORT_{up}_H"
    lines = [
        f"/* {comment} */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stdbool.h>",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"/* Bytes of the weights blob (weights.bin) that {abi.symbols['init']} copies. */",
        f"#define {up}_WEIGHTS_BYTES {abi.weights_bytes}",
        "",
        "/* Element counts of the inputs and outputs (row-major C arrays). */",
    ]
    for what, ports in (("INPUT", abi.inputs), ("OUTPUT", abi.outputs)):
        for p in ports:
            lines.append(
                f"#define {up}_{what}_{_c_ident(p.name).upper()}_SIZE {p.size}"
                f"  /* {p.dtype}[{','.join(map(str, p.shape))}] */"
            )
    doc = {
        "init": "A context holding a copy of the weights (nbytes must be the weights size) plus scratch memory;\n"
        "   NULL on a size mismatch or when out of memory. Calls on one context must not overlap.",
        abi.entry: "Run once: reads the inputs, writes the outputs"
        + (" and updates the weights in the context" if abi.entry == "step" else "")
        + ". Returns 0, -1 for a NULL context, or -2 when an index (e.g. a class label) was out of range"
        + " (the outputs are then undefined"
        + (" and the weights unchanged)." if abi.entry == "step" else ")."),
        "weights_size": "Bytes of the weights blob.",
        "signature": "The inputs, outputs and weights layout the code was built for, as text.",
        "get_weights": "Copy the context's current weights (weights_size bytes) to `weights`. Returns 0 or -1.",
        "set_weights": "Replace the context's weights. Returns 0, -1 for a NULL context, -2 on a size mismatch.",
        "free": "Release a context (NULL is ignored).",
    }
    for role in ("init", abi.entry, "weights_size", "get_weights", "set_weights", "free", "signature"):
        lines += ["", f"/* {doc[role]} */", abi.signatures[role] + ";"]
    lines += ["", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
    return "\n".join(lines)


__all__ = [
    "ExportABI",
    "Port",
    "build_export_module",
    "signature",
    "target_info",
    "emit_object",
    "load_object",
    "c_header",
    "missing_features",
    "C_TYPES",
]
