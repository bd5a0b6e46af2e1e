"""JIT compilation of LLVM IR text to native code, with an in-memory and on-disk object cache.

A graph may come as several modules (kernels spread over them, see module.build_module); modules not cached
yet are compiled in parallel, the extra ones in a forked helper process, and all objects are loaded into
one engine.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
import threading
import time

import llvmlite.binding as llvm

from .target import host_machine, init_llvm, target_key

_lock = threading.Lock()
_engines: dict = {}   # cache key -> (engine, keepalive)
STATS = {"compiled": 0, "disk_hits": 0, "memory_hits": 0, "llvm_seconds": 0.0}


def cache_dir() -> str | None:
    """On-disk cache folder: $GRAPHNN_CACHE_DIR, else ~/.cache/graphnn; set GRAPHNN_CACHE_DIR=off to disable."""
    d = os.environ.get("GRAPHNN_CACHE_DIR")
    if d == "off":
        return None
    return d or os.path.join(os.path.expanduser("~"), ".cache", "graphnn")


# Loop unrolling makes small kernels faster but triples LLVM's time on big modules (a whole training
# step), so it is on for small modules only; GRAPHNN_UNROLL=0/1 forces it off/on.
UNROLL_MAX_IR_CHARS = 60_000


UNROLL_MARK = "; graphnn: unroll="  # first line of a module whose graph decided (by its total size)


def _unroll(ir_text: str) -> bool:
    forced = os.environ.get("GRAPHNN_UNROLL")
    if forced in ("0", "1"):
        return forced == "1"
    if ir_text.startswith(UNROLL_MARK):
        return ir_text[len(UNROLL_MARK)] == "1"
    return len(ir_text) < UNROLL_MAX_IR_CHARS


def _optimize(mod, tm, unroll: bool = False) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = unroll
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)


def _ir_key(ir_text: str) -> str:
    return hashlib.sha256((target_key() + f"\nunroll={_unroll(ir_text)}\n" + ir_text).encode()).hexdigest()


def _modules_key(texts: list) -> str:
    return _ir_key(texts[0]) if len(texts) == 1 else hashlib.sha256("".join(map(_ir_key, texts)).encode()).hexdigest()


def compile_ir(ir_text: str, symbols: list, variables: tuple = ()) -> dict:
    """Compile a module and return {symbol: address} for its functions `symbols` and global `variables`.
    Identical modules are compiled once per process and, through the disk cache, once per machine."""
    return compile_modules([ir_text], symbols, variables)


def compile_modules(texts: list, symbols: list, variables: tuple = ()) -> dict:
    """Compile modules that call each other's functions into one engine; {symbol: address} as compile_ir."""
    init_llvm()
    key = _modules_key(texts)
    with _lock:
        if key in _engines:
            STATS["memory_hits"] += 1
            eng = _engines[key]
        else:
            objs = _objects(texts)
            eng = _engines[key] = _engine([_object(t) if o is None else o for t, o in zip(texts, objs)])
    out = {s: eng.get_function_address(s) for s in symbols}
    out.update({v: eng.get_global_value_address(v) for v in variables})
    return out


def parallel_compile() -> bool:
    """May modules be compiled in a forked helper process? (Linux, 2+ CPUs, GRAPHNN_PARALLEL_COMPILE not 0.)
    LLVM compiles one module at a time per process, so a helper halves the wait for a cold compile."""
    if os.environ.get("GRAPHNN_PARALLEL_COMPILE", "1") == "0" or not hasattr(os, "fork"):
        return False
    return sys.platform.startswith("linux") and (os.cpu_count() or 1) > 1


PARALLEL_MIN_CHARS = 80_000  # graphs with less LLVM IR compile faster than a helper process starts
CHILD_TIMEOUT_S = 120.0


def _objects(texts: list) -> list:
    """Object code per module from the disk cache; with parallel compilation, the uncached ones except the
    first are compiled by a helper while this process compiles the first. None where still to compile."""
    objs = [_cached_object(t) for t in texts]
    todo = [i for i, o in enumerate(objs) if o is None]
    child = _fork_compile([texts[i] for i in todo[1:]]) if len(todo) > 1 and parallel_compile() else None
    if child is None:
        return objs
    objs[todo[0]] = _object(texts[todo[0]])
    for i, obj in zip(todo[1:], _collect(child)):
        if obj is not None:
            _store_object(texts[i], obj)
            STATS["compiled"] += 1
        objs[i] = obj
    return objs


def _fork_compile(texts: list):
    """Start a helper process compiling `texts`; it writes their objects to a pipe. (pid, fd, count) or None."""
    from llvmlite.binding import ffi

    try:
        r, w = os.pipe()
    except OSError:
        return None
    with ffi.lib._lock:  # no other thread is inside LLVM while the process is copied
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            return None
        if pid == 0:  # the helper: compile, write the objects, exit without any Python clean-up
            code = 1
            try:
                os.close(r)
                blob = _pack([_emit(t) for t in texts])
                with os.fdopen(w, "wb") as f:
                    f.write(blob)
                code = 0
            finally:
                os._exit(code)
    os.close(w)
    return pid, r, len(texts)


def _collect(child) -> list:
    """The helper's objects, or None for each when it failed or timed out (they are then compiled here)."""
    import select

    pid, r, n = child
    data, deadline = bytearray(), time.monotonic() + CHILD_TIMEOUT_S
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, 9)
                break
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    try:
        objs = _unpack(bytes(data)) if status == 0 else []
    except ValueError:
        objs = []
    return objs if len(objs) == n else [None] * n


def _pack(objs: list) -> bytes:
    """Objects as one blob, each preceded by its length (8 bytes, little-endian)."""
    return b"".join(len(o).to_bytes(8, "little") + o for o in objs)


def _unpack(data: bytes) -> list:
    objs, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 8], "little")
        if pos + 8 > len(data) or pos + 8 + size > len(data):
            raise ValueError("truncated object blob")
        objs.append(bytes(data[pos + 8:pos + 8 + size]))
        pos += 8 + size
    return objs


@functools.lru_cache(maxsize=None)
def codegen_version() -> str:
    """Hash of the sources that decide what code a graph becomes (part of graph-keyed cache entries)."""
    import graphnn.ir as gir

    here = os.path.dirname(os.path.abspath(__file__))
    irdir = os.path.dirname(os.path.abspath(gir.__file__))
    h = hashlib.sha256()
    files = [os.path.join(here, f) for f in sorted(os.listdir(here)) if f.endswith(".py")]
    files += [os.path.join(irdir, f) for f in ("fusion.py", "memory.py")]
    for f in files:
        with open(f, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def graph_key(graph_text: str) -> str:
    """Cache key of a graph's native code: target, codegen sources, options and the graph's structure."""
    from . import module

    opts = (f"unroll={os.environ.get('GRAPHNN_UNROLL', 'auto')} parallel_work={module.PARALLEL_WORK} "
            f"profile={module.profiling()}")
    return hashlib.sha256(f"{target_key()}\n{codegen_version()}\n{opts}\n{graph_text}".encode()).hexdigest()


def load_cached(key: str, symbols: list, variables: tuple = ()):
    """({symbol: address}, layout dict) for a graph-keyed entry in memory or on disk, or None."""
    init_llvm()
    with _lock:
        hit = _engines.get("graph:" + key)
        if hit is None:
            d = cache_dir()
            if not d:
                return None
            obj_path, meta_path = os.path.join(d, key + ".g.o"), os.path.join(d, key + ".g.json")
            try:
                with open(meta_path) as f:
                    meta = json.load(f)
                with open(obj_path, "rb") as f:
                    data = f.read()
                if hashlib.sha256(data).hexdigest() != meta["object_sha256"]:
                    return None
                eng = _engine(_unpack(data))
            except (OSError, ValueError, KeyError, RuntimeError):
                return None
            STATS["disk_hits"] += 1
            hit = _engines["graph:" + key] = (eng, meta)
        else:
            STATS["memory_hits"] += 1
    eng, meta = hit
    out = {s: eng.get_function_address(s) for s in symbols}
    out.update({v: eng.get_global_value_address(v) for v in variables})
    return out, meta["layout"]


def store_cached(key: str, texts: list, layout: dict) -> None:
    """Record the objects compiled from `texts` under a graph key, with the layout the runtime needs, so a new
    process loads them without building LLVM IR."""
    with _lock:
        eng = _engines.get(_modules_key(texts))
        if eng is not None:
            _engines["graph:" + key] = (eng, {"layout": layout})
    d = cache_dir()
    paths = [_cache_path(t) for t in texts]
    if not d or not all(p and os.path.exists(p) for p in paths):
        return
    try:
        objs = []
        for path in paths:
            with open(path, "rb") as f:
                objs.append(f.read())
        data = _pack(objs)
        _write_atomic(os.path.join(d, key + ".g.o"), data)
        meta = {"layout": layout, "object_sha256": hashlib.sha256(data).hexdigest()}
        _write_atomic(os.path.join(d, key + ".g.json"), json.dumps(meta).encode())
    except OSError:
        pass


def _write_atomic(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _empty_engine():
    tm = host_machine()
    backing = llvm.parse_assembly("")
    backing.triple = llvm.get_process_triple()
    return llvm.create_mcjit_compiler(backing, tm)


def _cache_path(ir_text: str) -> str | None:
    d = cache_dir()
    return os.path.join(d, _ir_key(ir_text) + ".o") if d else None


def _cached_object(ir_text: str):
    """The object compiled earlier from ir_text (disk cache), or None."""
    path = _cache_path(ir_text)
    if path and os.path.exists(path):
        try:
            with open(path, "rb") as f:
                data = f.read()
            llvm.ObjectFileRef.from_data(data)  # a damaged cache entry is recompiled, never trusted
            STATS["disk_hits"] += 1
            return data
        except Exception:
            pass
    return None


def _store_object(ir_text: str, obj: bytes) -> None:
    path = _cache_path(ir_text)
    if path:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            _write_atomic(path, obj)
        except OSError:
            pass


def _emit(ir_text: str) -> bytes:
    """Optimize one module and compile it to an object file."""
    tm = host_machine()
    mod = llvm.parse_assembly(ir_text)
    mod.triple = llvm.get_process_triple()
    mod.data_layout = str(tm.target_data)
    mod.verify()
    _optimize(mod, tm, _unroll(ir_text))
    return tm.emit_object(mod)


def _object(ir_text: str) -> bytes:
    t0 = time.perf_counter()
    obj = _emit(ir_text)
    STATS["compiled"] += 1
    STATS["llvm_seconds"] += time.perf_counter() - t0
    _store_object(ir_text, obj)
    return obj


def _engine(objects: list):
    eng = _empty_engine()
    for obj in objects:
        eng.add_object_file(llvm.ObjectFileRef.from_data(obj))
    eng.finalize_object()
    return eng
