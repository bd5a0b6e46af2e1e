"""JIT compilation of LLVM IR text to native code, with an in-memory and on-disk object cache."""
from __future__ import annotations

import hashlib
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


def compile_ir(ir_text: str, symbols: list, variables: tuple = ()) -> dict:
    """Compile a module and return {symbol: address} for its functions `symbols` and global `variables`.
    Identical modules are compiled once per process and, through the disk cache, once per machine."""
    init_llvm()
    key = hashlib.sha256((target_key() + f"\nunroll={_unroll(ir_text)}\n" + ir_text).encode()).hexdigest()
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
            fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(obj)
            os.replace(tmp, path)
        except OSError:
            pass
    return eng
