"""The CPU's measured float32 FMA peak: a register-only loop of independent vector FMAs, JIT-compiled for this CPU.

`graphnn bench` states its GEMM figures as a share of this, so a figure from one CPU reads against what that CPU can
do (its vector width, FMA ports and clock, whatever they are), not against a number from another machine.
"""

from __future__ import annotations

import ctypes
import platform
import time

import llvmlite.ir as ir

from .jit import compile_ir
from .target import vector_width_bits

# independent FMA chains: more than latency x ports on any x86-64 core, so the ports never wait, and few enough
# that the chains and the two operands stay in registers (16 chains spilled with AVX2's 16 registers: half the peak)
ACCUMULATORS = 12
ROUNDS = 1 << 16  # loop iterations per timed call (each: ACCUMULATORS vector FMAs)


def _module() -> str:
    lanes = vector_width_bits() // 32
    f32, i64 = ir.FloatType(), ir.IntType(64)
    vec = ir.VectorType(f32, lanes)
    m = ir.Module("graphnn_fma_peak")
    fma = ir.Function(m, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fma.v{lanes}f32")
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [ir.PointerType(), i64]), "graphnn_fma_peak")
    out, rounds = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    start = b.block
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    a = ir.Constant(vec, [ir.Constant(f32, 0.999999)] * lanes)
    c = ir.Constant(vec, [ir.Constant(f32, 1e-7)] * lanes)
    init = [ir.Constant(vec, [ir.Constant(f32, 1.0 + i)] * lanes) for i in range(ACCUMULATORS)]
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), start)
    accs = []
    for x in init:
        phi = b.phi(vec)
        phi.add_incoming(x, start)
        accs.append(phi)
    nxt = [b.call(fma, [acc, a, c]) for acc in accs]  # acc = acc * a + c: no chain depends on another
    for phi, x in zip(accs, nxt):
        phi.add_incoming(x, loop)
    i2 = b.add(i, ir.Constant(i64, 1))
    i.add_incoming(i2, loop)
    b.cbranch(b.icmp_signed("<", i2, rounds), loop, done)
    b.position_at_end(done)
    total = nxt[0]
    for x in nxt[1:]:
        total = b.fadd(total, x)  # every chain reaches memory, so none is optimized away
    b.store(total, out, align=4)
    b.ret_void()
    return str(m)


def fma_peak_gflops(seconds: float = 0.2) -> float:
    """float32 GFLOP/s of one core running only vector FMAs (2 flops per lane each): the best of repeated timed
    calls over about `seconds`."""
    addr = compile_ir(_module(), ["graphnn_fma_peak"])["graphnn_fma_peak"]
    run = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)(addr)
    lanes = vector_width_bits() // 32
    sink = (ctypes.c_float * lanes)()
    run(sink, 1000)  # warm up
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        run(sink, ROUNDS)
        best = min(best, time.perf_counter() - t0)
    return 2 * lanes * ACCUMULATORS * ROUNDS / best / 1e9


def cpu_model() -> str:
    """The CPU's name as the OS reports it (/proc/cpuinfo's model name), else the platform's."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
