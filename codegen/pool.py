"""A persistent worker pool for split kernels, written in LLVM IR and compiled once per process.

`graphnn_pool_run(task, block, parts, threads)` runs `task(block, part, parts)` for every part in [0, parts):
the caller and up to threads-1 pool workers claim parts from one shared ticket (generation << 32 | next
part) with compare-and-swap, so a part is never run twice, a late worker cannot touch the next task, and
the caller alone finishes the job when no worker is awake (or none exists, e.g. after fork). Idle workers
spin on the ticket for a short while (kernels of one graph follow each other closely), then sleep on a
condition variable. One caller uses the pool at a time; a concurrent caller runs its parts itself.

Graph modules hold a pointer to `graphnn_pool_run` in the global `graphnn_pool` (set when loaded); while
it is null they run split kernels serially.
"""

from __future__ import annotations

import functools

import llvmlite.ir as ir

from .kernel import I64, PTR, emit_loop, i64

I32 = ir.IntType(32)
TASK = ir.FunctionType(ir.VoidType(), [PTR, I64, I64])
RUN = ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I64])
MAX_WORKERS = 63
SPIN_CYCLES = 400_000  # time-stamp-counter ticks an idle worker polls before it sleeps (~0.1-0.2 ms)
SYNC_BYTES = 256  # room for a pthread mutex or condition variable on any supported libc


def pool_ir() -> str:
    m = ir.Module(name="graphnn_pool")

    def var(name, typ=I64):
        g = ir.GlobalVariable(m, typ, "graphnn_pool_" + name)
        g.initializer = ir.Constant(typ, None)
        g.linkage = "internal"
        g.align = 64  # one cache line each: the ticket and the done counter are written by different cores
        return g

    ticket, done, parts_g, busy, workers, sleepers, inited = (
        var(n) for n in ("ticket", "done", "parts", "busy", "workers", "sleepers", "inited")
    )
    task_g, block_g = var("task"), var("block")  # pointers, stored as integers
    mutex, cond = (
        var("mutex", ir.ArrayType(ir.IntType(8), SYNC_BYTES)),
        var("cond", ir.ArrayType(ir.IntType(8), SYNC_BYTES)),
    )

    def extern(name, ret, args):
        return ir.Function(m, ir.FunctionType(ret, args), name)

    pthread_create = extern("pthread_create", I32, [PTR, PTR, PTR, PTR])
    pthread_detach = extern("pthread_detach", I32, [I64])
    mutex_init, cond_init = extern("pthread_mutex_init", I32, [PTR, PTR]), extern("pthread_cond_init", I32, [PTR, PTR])
    lock, unlock = extern("pthread_mutex_lock", I32, [PTR]), extern("pthread_mutex_unlock", I32, [PTR])
    cond_wait, cond_broadcast = (
        extern("pthread_cond_wait", I32, [PTR, PTR]),
        extern("pthread_cond_broadcast", I32, [PTR]),
    )
    pause = extern("llvm.x86.sse2.pause", ir.VoidType(), [])
    cycles = extern("llvm.readcyclecounter", I64, [])
    null = ir.Constant(PTR, None)

    def load(b, g, typ=I64):
        return b.load_atomic(g, "seq_cst", 8, typ=typ)

    def store(b, v, g):
        b.store_atomic(v, g, "seq_cst", 8)

    # claim(gen): run parts of task `gen` until none is left
    claim = ir.Function(m, ir.FunctionType(ir.VoidType(), [I64]), "graphnn_pool_claim")
    claim.linkage = "internal"
    b = ir.IRBuilder(claim.append_basic_block("entry"))
    head, try_, run, out = (claim.append_basic_block(n) for n in ("head", "try", "run", "out"))
    b.branch(head)
    b.position_at_end(head)
    t = load(b, ticket)
    task, block, parts = load(b, task_g), b.inttoptr(load(b, block_g), PTR), load(b, parts_g)
    part = b.and_(t, i64(0xFFFFFFFF))
    same = b.icmp_unsigned("==", b.lshr(t, i64(32)), claim.args[0])
    b.cbranch(b.and_(same, b.icmp_signed("<", part, parts)), try_, out)
    b.position_at_end(try_)
    won = b.extract_value(b.cmpxchg(ticket, t, b.add(t, i64(1)), "seq_cst", "seq_cst"), 1)
    b.cbranch(won, run, head)
    b.position_at_end(run)
    b.call(b.inttoptr(task, ir.PointerType(TASK)), [block, part, parts])
    b.atomic_rmw("add", done, i64(1), "seq_cst")
    b.branch(head)
    b.position_at_end(out)
    b.ret_void()

    # worker(arg): wait for a new generation (spin, then sleep), help with it, repeat
    worker = ir.Function(m, ir.FunctionType(PTR, [PTR]), "graphnn_pool_worker")
    worker.linkage = "internal"
    b = ir.IRBuilder(worker.append_basic_block("entry"))
    seen = b.alloca(I64)
    since = b.alloca(I64)
    wait, spin, idle, sleep, woke, nap = (
        worker.append_basic_block(n) for n in ("wait", "spin", "idle", "sleep", "woke", "nap")
    )
    b.store(b.lshr(load(b, ticket), i64(32)), seen)
    b.branch(wait)
    b.position_at_end(wait)
    b.store(b.call(cycles, []), since)
    b.branch(spin)
    b.position_at_end(spin)
    gen = b.lshr(load(b, ticket), i64(32))
    fresh = b.icmp_unsigned("!=", gen, b.load(seen))
    with b.if_then(fresh):
        b.store(gen, seen)
        b.call(claim, [gen])
        b.branch(wait)
    b.call(pause, [])
    b.cbranch(b.icmp_unsigned(">", b.sub(b.call(cycles, []), b.load(since)), i64(SPIN_CYCLES)), idle, spin)
    b.position_at_end(idle)
    b.call(lock, [mutex])
    b.atomic_rmw("add", sleepers, i64(1), "seq_cst")
    b.branch(sleep)
    b.position_at_end(sleep)
    gen = b.lshr(load(b, ticket), i64(32))
    b.cbranch(b.icmp_unsigned("!=", gen, b.load(seen)), woke, nap)
    b.position_at_end(nap)  # nothing new yet: sleep until a caller broadcasts
    b.call(cond_wait, [cond, mutex])
    b.branch(sleep)
    b.position_at_end(woke)
    b.atomic_rmw("sub", sleepers, i64(1), "seq_cst")
    b.call(unlock, [mutex])
    b.branch(spin)  # the fresh generation is picked up there

    # run(task, block, parts, threads)
    fn = ir.Function(m, RUN, "graphnn_pool_run")
    task, block, parts, threads = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    tid = b.alloca(I64)
    serial, pooled, start, spawn, spawned, publish, finish, end = (
        fn.append_basic_block(n) for n in ("serial", "pooled", "start", "spawn", "spawned", "publish", "finish", "end")
    )
    want = b.select(b.icmp_signed(">", threads, i64(MAX_WORKERS + 1)), i64(MAX_WORKERS), b.sub(threads, i64(1)))
    can = b.and_(b.icmp_signed(">", want, i64(0)), b.icmp_signed(">", parts, i64(1)))
    got = b.extract_value(b.cmpxchg(busy, i64(0), i64(1), "seq_cst", "seq_cst"), 1)
    b.cbranch(can, pooled, serial)
    b.position_at_end(pooled)
    with b.if_then(b.not_(got)):
        b.branch(serial)
    with b.if_then(b.icmp_signed("==", load(b, inited), i64(0))):
        b.call(mutex_init, [mutex, null])
        b.call(cond_init, [cond, null])
        store(b, i64(1), inited)
    b.branch(start)
    b.position_at_end(start)  # start workers up to the wanted count (under the busy flag: no race)
    b.cbranch(b.icmp_signed("<", load(b, workers), want), spawn, publish)
    b.position_at_end(spawn)
    rc = b.call(pthread_create, [tid, null, worker, null])
    b.cbranch(b.icmp_signed("==", rc, ir.Constant(I32, 0)), spawned, publish)
    b.position_at_end(spawned)
    b.call(pthread_detach, [b.load(tid)])
    b.atomic_rmw("add", workers, i64(1), "seq_cst")
    b.branch(start)
    b.position_at_end(publish)
    store(b, i64(0), done)
    store(b, b.ptrtoint(task, I64), task_g)
    store(b, b.ptrtoint(block, I64), block_g)
    store(b, parts, parts_g)
    gen = b.add(b.lshr(load(b, ticket), i64(32)), i64(1))
    gen = b.and_(gen, i64(0xFFFFFFFF))
    store(b, b.shl(gen, i64(32)), ticket)
    with b.if_then(b.icmp_signed(">", load(b, sleepers), i64(0))):
        b.call(lock, [mutex])
        b.call(cond_broadcast, [cond])
        b.call(unlock, [mutex])
    b.call(claim, [gen])
    b.branch(finish)
    b.position_at_end(finish)  # wait for parts that workers claimed
    with b.if_then(b.icmp_signed("<", load(b, done), parts)):
        b.call(pause, [])
        b.branch(finish)
    store(b, i64(0), busy)
    b.branch(end)
    b.position_at_end(serial)
    with b.if_then(got):
        store(b, i64(0), busy)
    emit_loop(
        fn, b, parts, lambda p: b.call(b.inttoptr(b.ptrtoint(task, I64), ir.PointerType(TASK)), [block, p, parts])
    )
    b.branch(end)
    b.position_at_end(end)
    b.ret_void()
    return str(m)


@functools.lru_cache(maxsize=None)
def pool_address() -> int:
    """Address of graphnn_pool_run in this process (the pool module is compiled, or loaded from cache, once)."""
    from .jit import compile_ir

    return compile_ir(pool_ir(), ["graphnn_pool_run"])["graphnn_pool_run"]
