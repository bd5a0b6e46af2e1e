"""JIT compilation of LLVM IR text to native code, with an in-memory and an on-disk cache.

A graph may come as several modules (kernels spread over them, see module.build_module); modules not cached
yet are compiled in parallel, the extra ones in a forked helper process, and all objects are loaded into
one engine.

Caches: loaded engines are kept in memory, least recently used first, up to GRAPHNN_MEMORY_CACHE_MB (or
set_memory_cache_limit); each compiled graph holds its own Engine, so eviction never unloads code in use. On
disk (cache_dir()) each module's object is stored under a hash of its IR, and each graph's objects with their
layout under graph_key(); entries are checked before use (see cache.py). Keys cover the target, LLVM and
llvmlite versions, every source file of the compiler and the settings that change the code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import sys
import threading
import time

import llvmlite
import llvmlite.binding as llvm

from graphnn.ir import config

from .cache import BadEntry, CacheWarning, KeyLocks, LRUCache, discard, read_entry, write_entry
from .target import host_machine, init_llvm, target_key

__all__ = [
    "CacheWarning",
    "Engine",
    "STATS",
    "cache_dir",
    "codegen_version",
    "compile_ir",
    "compile_modules",
    "graph_key",
    "load_cached",
    "memory_cache_limit",
    "memory_cache_usage",
    "set_memory_cache_limit",
    "store_cached",
]

STATS = {"compiled": 0, "disk_hits": 0, "memory_hits": 0, "llvm_seconds": 0.0}
_lock = threading.Lock()  # guards the memory cache, _pinned and STATS; never held while compiling or loading
_key_locks = KeyLocks()  # one compile or load per key at a time; different keys proceed concurrently
_pinned: dict = {}  # compile_ir's engines (their addresses are handed out without an owner): never freed


def _count(stat: str) -> None:
    with _lock:
        STATS[stat] += 1


def cache_dir() -> str | None:
    """On-disk cache folder: $GRAPHNN_CACHE_DIR, else ~/.cache/graphnn; set GRAPHNN_CACHE_DIR=off to disable."""
    d = config.get("GRAPHNN_CACHE_DIR")
    if d == "off":
        return None
    return d or os.path.join(os.path.expanduser("~"), ".cache", "graphnn")


# ---------------------------------------------------------------------------------------------- cache keys


def _source_roots() -> dict:
    """The compiler's packages: {name: folder}."""
    import graphnn.ir as gir

    return {"codegen": os.path.dirname(os.path.abspath(__file__)), "ir": os.path.dirname(os.path.abspath(gir.__file__))}


def compiler_sources(roots: dict | None = None) -> list:
    """[(package-relative path, file path)] of every .py file under the compiler's packages, sorted."""
    files = []
    for pkg, root in (roots or _source_roots()).items():
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for n in names:
                if n.endswith(".py"):
                    path = os.path.join(folder, n)
                    files.append((pkg + "/" + os.path.relpath(path, root).replace(os.sep, "/"), path))
    return sorted(files)


def source_hash(roots: dict | None = None) -> str:
    """sha256 of the compiler's source files: their relative paths and contents."""
    h = hashlib.sha256()
    for rel, path in compiler_sources(roots):
        with open(path, "rb") as f:
            data = f.read()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def codegen_version() -> str:
    """Hash of the sources that decide what code a graph becomes: every .py file of graphnn.ir and
    graphnn.codegen (part of every cache key)."""
    return source_hash()


@functools.lru_cache(maxsize=None)
def _compiler_modules() -> tuple:
    """The modules of graphnn.ir and graphnn.codegen (all imported by the runtime already)."""
    names = []
    for rel, _ in compiler_sources():
        name = "graphnn." + rel[:-3].replace("/", ".")
        names.append(name[: -len(".__init__")] if name.endswith(".__init__") else name)
    return tuple(importlib.import_module(n) for n in names)


def _plain(value) -> bool:
    if isinstance(value, tuple):
        return all(map(_plain, value))
    return isinstance(value, (bool, int, float, str))


@functools.lru_cache(maxsize=None)
def _tunable_names() -> tuple:
    """(module, name) of every UPPER_CASE scalar constant the compiler's modules define (found once)."""
    return tuple((m, k) for m in _compiler_modules() for k, v in sorted(vars(m).items()) if k.isupper() and _plain(v))


def _tunables() -> str:
    """Every UPPER_CASE scalar constant of the compiler's modules, as now (programs and tests change some,
    e.g. module.PARALLEL_WORK, and their source values are covered by codegen_version)."""
    return "\n".join(f"{m.__name__}.{k}={getattr(m, k)!r}" for m, k in _tunable_names())


def _toolchain() -> str:
    """What turns LLVM IR into code: target machine, LLVM and llvmlite versions, compiler sources."""
    llvm_version = ".".join(map(str, llvm.llvm_version_info))
    return f"{target_key()}\nllvm={llvm_version} llvmlite={llvmlite.__version__}\ncodegen={codegen_version()}"


def graph_key(graph_text: str) -> str:
    """Cache key of a graph's native code: toolchain, code-changing settings and the graph's structure."""
    from . import module

    opts = f"{config.code_key()} profile={module.profiling()} parallel_compile={parallel_compile()}\n{_tunables()}"
    return hashlib.sha256(f"{_toolchain()}\n{opts}\n{graph_text}".encode()).hexdigest()


def _ir_key(ir_text: str) -> str:
    return hashlib.sha256(f"{_toolchain()}\nunroll={_unroll(ir_text)}\n{ir_text}".encode()).hexdigest()


def _modules_key(texts: list) -> str:
    return _ir_key(texts[0]) if len(texts) == 1 else hashlib.sha256("".join(map(_ir_key, texts)).encode()).hexdigest()


# ---------------------------------------------------------------------------------------- loaded engines

ENGINE_OVERHEAD_BYTES = 64 << 10  # an engine's memory besides its code (measured: about 50 KB)
DEFAULT_MEMORY_CACHE_MB = config.SETTINGS["GRAPHNN_MEMORY_CACHE_MB"].default


class Engine:
    """Native code loaded from object files; it stays callable while this object is referenced, so whoever
    keeps addresses from it keeps the Engine too (caches only drop their reference)."""

    __slots__ = ("_ee", "nbytes", "__weakref__")

    def __init__(self, objects: list):
        backing = llvm.parse_assembly("")
        backing.triple = llvm.get_process_triple()
        ee = llvm.create_mcjit_compiler(backing, _engine_machine())
        for obj in objects:
            ee.add_object_file(llvm.ObjectFileRef.from_data(obj))
        ee.finalize_object()
        self._ee = ee
        # MCJIT keeps the object file and copies its sections into executable memory
        self.nbytes = ENGINE_OVERHEAD_BYTES + 2 * sum(map(len, objects))

    def addresses(self, symbols: list, variables: tuple = ()) -> dict:
        """{name: address} of functions `symbols` and globals `variables`."""
        out = {s: self._ee.get_function_address(s) for s in symbols}
        out.update({v: self._ee.get_global_value_address(v) for v in variables})
        return out


def _engine_machine():
    """A new target machine for one engine: an engine owns (and deletes) the machine it is given, so it must
    never get the shared host_machine(). Objects are compiled already: a generic machine suffices."""
    return llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(codemodel="jitdefault")


def _env_limit() -> int:
    return int(config.get("GRAPHNN_MEMORY_CACHE_MB") * (1 << 20))


_memory = LRUCache(_env_limit())  # key -> (Engine, layout or None)


def set_memory_cache_limit(nbytes: int) -> None:
    """Bound the memory of cached engines (least recently used ones are dropped; code in use stays loaded)."""
    if int(nbytes) < 0:
        raise ValueError(f"memory cache limit must be >= 0 bytes, got {nbytes}")
    with _lock:
        _memory.set_limit(int(nbytes))


def memory_cache_limit() -> int:
    return _memory.limit


def memory_cache_usage() -> tuple:
    """(entries, estimated bytes) of the in-memory engine cache."""
    with _lock:
        return len(_memory), _memory.nbytes


def _memory_get(key: str):
    with _lock:
        hit = _memory.get(key)
        if hit is not None:
            STATS["memory_hits"] += 1
        return hit


def _memory_put(key: str, engine: Engine, extra=None) -> None:
    with _lock:
        _memory.put(key, engine, extra)


# ----------------------------------------------------------------------------------------------- compiling

# LLVM's loop unrolling is off unless GRAPHNN_UNROLL=1. Fully unrolled short inner loops (a 24-wide image row, a
# 4-tap window) left the vectorizer the next loop out, which it vectorized with gathers and scatters: with it on, a
# (64, 64, 24, 24) + (1, 64, 1, 1) bias add took 4.2 ms instead of 0.4, im2col of a DCGAN layer 3 ms instead of 0.9,
# LeNet inference was 1.3x and an MLP training step 1.2x slower (AMD Zen 5), and LLVM took longer.
UNROLL_MARK = "; graphnn: unroll="  # first line of a module: whether its graph was built for unrolling


def _unroll(ir_text: str) -> bool:
    forced = config.get("GRAPHNN_UNROLL")
    if forced is not None:
        return forced
    return ir_text.startswith(UNROLL_MARK + "1")


def _optimize(mod, tm, unroll: bool = False) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    # SLP vectorization of fully unrolled loops miscompiled a small float64 product with AVX-512 on LLVM 22
    # (x0^T (5 x 6) @ x1 (2, 2, 6, 3): 4 of 60 elements wrong; fuzz seed 1004024 and four others), so unrolled
    # modules go without it: the loop vectorizer and graphnn's own vector code do the vector work there.
    pto.slp_vectorization = not unroll
    pto.loop_unrolling = unroll
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)


def compile_ir(ir_text: str, symbols: list, variables: tuple = ()) -> dict:
    """Compile a module and return {symbol: address} for its functions `symbols` and global `variables`.
    Identical modules are compiled once per process and, through the disk cache, once per machine. The code
    stays loaded for the life of the process (use compile_modules to own it)."""
    key = _modules_key([ir_text])
    with _lock:
        eng = _pinned.get(key)
    if eng is None:
        eng = _compiled_engine([ir_text], key)
        with _lock:
            eng = _pinned.setdefault(key, eng)
    return eng.addresses(symbols, variables)


def compile_modules(texts: list, symbols: list, variables: tuple = (), ahead: tuple = ()) -> tuple:
    """Compile modules that call each other's functions into one engine: ({symbol: address} as compile_ir,
    Engine). The addresses are valid while the Engine is referenced. `ahead`: modules this process will compile
    next (compile_ir), which a parallel compile's helper also compiles into the disk cache meanwhile."""
    eng = _compiled_engine(texts, _modules_key(texts), ahead)
    return eng.addresses(symbols, variables), eng


def _compiled_engine(texts: list, key: str, ahead: tuple = ()) -> Engine:
    """The engine of `texts` from memory, else built from disk-cached or new objects (once per key at a time)."""
    init_llvm()
    hit = _memory_get(key)
    if hit is not None:
        return hit[0]
    with _key_locks.hold(key):
        hit = _memory_get(key)  # another thread may have built it meanwhile
        if hit is not None:
            return hit[0]
        eng = Engine([_object(t) if o is None else o for t, o in zip(texts, _objects(texts, ahead))])
        _memory_put(key, eng)
        return eng


def can_fork_compile() -> bool:
    """Can this host compile in a forked helper at all (Linux with fork, 2+ CPUs)?"""
    return hasattr(os, "fork") and sys.platform.startswith("linux") and (os.cpu_count() or 1) > 1


def parallel_compile() -> bool:
    """May modules be compiled in a forked helper process? (can_fork_compile, GRAPHNN_PARALLEL_COMPILE not 0.)
    LLVM compiles one module at a time per process, so a helper halves the wait for a cold compile."""
    return bool(config.get("GRAPHNN_PARALLEL_COMPILE")) and can_fork_compile()


PARALLEL_MIN_CHARS = 80_000  # graphs with less LLVM IR compile faster than a helper process starts
CHILD_TIMEOUT_S = 120.0


def _objects(texts: list, ahead: tuple = ()) -> list:
    """Object code per module from the disk cache; with parallel compilation, the uncached ones except the
    first are compiled by a helper while this process compiles the first (the helper also compiles the uncached
    modules of `ahead` into the disk cache). None where still to compile."""
    objs = [_cached_object(t) for t in texts]
    todo = [i for i, o in enumerate(objs) if o is None]
    if len(todo) < 2 or not parallel_compile():
        return objs
    ahead = [t for t in ahead if cache_dir() and _cached_object(t) is None]
    child = _fork_compile([texts[i] for i in todo[1:]] + ahead)
    if child is None:
        return objs
    objs[todo[0]] = _object(texts[todo[0]])
    got = _collect(child)
    for i, obj in zip(todo[1:], got):
        if obj is not None:
            _store_object(texts[i], obj)
            _count("compiled")
        objs[i] = obj
    for t, obj in zip(ahead, got[len(todo) - 1 :]):
        if obj is not None:
            _store_object(t, obj)
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
        size = int.from_bytes(data[pos : pos + 8], "little")
        if pos + 8 > len(data) or pos + 8 + size > len(data):
            raise ValueError("truncated object blob")
        objs.append(bytes(data[pos + 8 : pos + 8 + size]))
        pos += 8 + size
    return objs


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
    with _lock:
        STATS["compiled"] += 1
        STATS["llvm_seconds"] += time.perf_counter() - t0
    _store_object(ir_text, obj)
    return obj


# ---------------------------------------------------------------------------------------- on-disk entries


def _module_path(key: str) -> str | None:
    d = cache_dir()
    return os.path.join(d, key + ".mod") if d else None


def _read_object(ir_text: str) -> bytes | None:
    """The checked object compiled earlier from ir_text (disk cache), or None."""
    key = _ir_key(ir_text)
    path = _module_path(key)
    entry = read_entry(path, "module", key) if path else None
    return entry[1] if entry else None


def _cached_object(ir_text: str) -> bytes | None:
    obj = _read_object(ir_text)
    if obj is not None:
        _count("disk_hits")
    return obj


def _store_object(ir_text: str, obj: bytes) -> None:
    key = _ir_key(ir_text)
    path = _module_path(key)
    if path:
        write_entry(path, "module", key, {}, obj)


def _graph_path(key: str) -> str | None:
    d = cache_dir()
    return os.path.join(d, key + ".graph") if d else None


def load_cached(key: str, symbols: list, variables: tuple = (), parse=None):
    """({symbol: address}, layout, Engine) for a graph-keyed entry in memory or on disk, or None. `parse`
    turns the stored layout dict into what the caller needs, raising on anything invalid (the entry is then
    treated as damaged). The addresses are valid while the Engine is referenced."""
    init_llvm()
    mkey = "graph:" + key
    hit = _memory_get(mkey)
    if hit is None:
        path = _graph_path(key)
        if not path:
            return None
        with _key_locks.hold(mkey):
            hit = _memory_get(mkey)
            if hit is None:
                hit = _load_graph(path, key, parse)
                if hit is None:
                    return None
                _memory_put(mkey, *hit)
                _count("disk_hits")
    eng, layout = hit
    return eng.addresses(symbols, variables), (parse(layout) if parse else layout), eng


def _load_graph(path: str, key: str, parse) -> tuple | None:
    """(Engine, layout dict) of a checked graph entry on disk, or None (a bad entry is deleted)."""
    entry = read_entry(path, "graph", key)
    if entry is None:
        return None
    meta, data = entry
    try:
        objs = _unpack(data)
        if not objs or meta.get("modules") != len(objs) or not isinstance(meta.get("layout"), dict):
            raise BadEntry("metadata does not match the objects")
        if parse:
            parse(meta["layout"])
        return Engine(objs), meta["layout"]
    except (BadEntry, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:
        discard(path, str(e) or type(e).__name__)
        return None


def store_cached(key: str, texts: list, layout: dict, engine: Engine | None = None) -> None:
    """Record the objects compiled from `texts` (and loaded in `engine`) under a graph key, with the layout
    the runtime needs, so a new process loads them without building LLVM IR."""
    if engine is not None:
        _memory_put("graph:" + key, engine, layout)
    path = _graph_path(key)
    if not path:
        return
    objs = [_read_object(t) for t in texts]
    if all(o is not None for o in objs):
        write_entry(path, "graph", key, {"layout": layout, "modules": len(objs)}, _pack(objs))
