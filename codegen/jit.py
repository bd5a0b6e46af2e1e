"""JIT compilation of LLVM IR text to native code, with an in-memory and on-disk object cache."""
from __future__ import annotations

import functools
import hashlib
import json
import os
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


def _unroll(ir_text: str) -> bool:
    forced = os.environ.get("GRAPHNN_UNROLL")
    return forced == "1" if forced in ("0", "1") else len(ir_text) < UNROLL_MAX_IR_CHARS


def _optimize(mod, tm, unroll: bool = False) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = unroll
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)


def _ir_key(ir_text: str) -> str:
    return hashlib.sha256((target_key() + f"\nunroll={_unroll(ir_text)}\n" + ir_text).encode()).hexdigest()


def compile_ir(ir_text: str, symbols: list, variables: tuple = ()) -> dict:
    """Compile a module and return {symbol: address} for its functions `symbols` and global `variables`.
    Identical modules are compiled once per process and, through the disk cache, once per machine."""
    init_llvm()
    key = _ir_key(ir_text)
    with _lock:
        if key in _engines:
            STATS["memory_hits"] += 1
            eng = _engines[key]
        else:
            eng = _build(ir_text, key)
            _engines[key] = eng
    out = {s: eng.get_function_address(s) for s in symbols}
    out.update({v: eng.get_global_value_address(v) for v in variables})
    return out


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
                eng = _empty_engine()
                eng.add_object_file(llvm.ObjectFileRef.from_data(data))
                eng.finalize_object()
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


def store_cached(key: str, ir_text: str, layout: dict) -> None:
    """Record the object compiled from ir_text under a graph key (with the layout the runtime needs)."""
    ir_key = _ir_key(ir_text)
    with _lock:
        eng = _engines.get(ir_key)
        if eng is not None:
            _engines["graph:" + key] = (eng, {"layout": layout})
    d = cache_dir()
    src = os.path.join(d, ir_key + ".o") if d else None
    if not src or not os.path.exists(src):
        return
    try:
        with open(src, "rb") as f:
            data = f.read()
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


def _build(ir_text: str, key: str):
    tm = host_machine()
    d = cache_dir()
    path = os.path.join(d, key + ".o") if d else None
    if path and os.path.exists(path):
        try:
            with open(path, "rb") as f:
                data = f.read()
            eng = _empty_engine()
            eng.add_object_file(llvm.ObjectFileRef.from_data(data))
            eng.finalize_object()
            STATS["disk_hits"] += 1
            return eng
        except Exception:  # a damaged cache entry is recompiled, never trusted
            pass
    t0 = time.perf_counter()
    mod = llvm.parse_assembly(ir_text)
    mod.triple = llvm.get_process_triple()
    mod.data_layout = str(tm.target_data)
    mod.verify()
    _optimize(mod, tm, _unroll(ir_text))
    obj = tm.emit_object(mod)
    eng = _empty_engine()
    eng.add_object_file(llvm.ObjectFileRef.from_data(obj))
    eng.finalize_object()
    STATS["compiled"] += 1
    STATS["llvm_seconds"] += time.perf_counter() - t0
    if path:
        try:
            os.makedirs(d, exist_ok=True)
            _write_atomic(path, obj)
        except OSError:
            pass
    return eng
