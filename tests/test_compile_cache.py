"""The compile caches: a damaged or unwritable disk cache never kills the process (it is rebuilt), keys cover
everything that changes the code, the in-memory cache is bounded without unloading code in use, and threads
compiling different graphs do not wait for each other.

Runs that could crash (loading damaged entries, calling evicted code) happen in their own interpreter, so a
signal fails the test instead of killing pytest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph, jit
from graphnn.codegen.cache import (
    FORMAT_VERSION,
    HEADER,
    MAGIC,
    BadEntry,
    CacheWarning,
    KeyLocks,
    LRUCache,
    decode_entry,
    encode_entry,
    write_entry,
)
from graphnn.codegen.pool import pool_address
from graphnn.ir import Graph, TensorType, interpret
from tolerance import assert_close, graph_tolerance

# A child process: compile a small graph, print its output and the cache statistics as JSON.
CHILD = """
import json, sys
import numpy as np
from graphnn.codegen import CompiledGraph, jit
from graphnn.ir import Graph, TensorType

g = Graph("small")
x = g.add_input(TensorType((5, 7), "float32"), "x")
w = g.add_input(TensorType((7, 3), "float32"), "w")
g.outputs = [g.emit("tanh", g.emit("relu", g.emit("matmul", x, w)))]
rng = np.random.default_rng(0)
arrays = [rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs]
out = CompiledGraph(g)(arrays)[0]
print(json.dumps({"out": out.tolist(), "stats": jit.STATS}))
"""


def _run(cache: str, code: str = CHILD, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, GRAPHNN_CACHE_DIR=str(cache), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _result(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"child exited with {proc.returncode}:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _entries(folder, kind: str | None = None) -> list:
    ext = {"module": ".mod", "graph": ".graph"}
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if any(f.endswith(e) for k, e in ext.items() if kind in (None, k))
    )


def _kind_key(path: str) -> tuple:
    name = os.path.basename(path)
    return ("module" if name.endswith(".mod") else "graph"), name.rsplit(".", 1)[0]


def _assert_valid(folder) -> None:
    """Every entry decodes; no temporary file is left behind."""
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")]
    for path in _entries(folder):
        with open(path, "rb") as f:
            decode_entry(f.read(), *_kind_key(path))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A cache folder filled by one cold run, and that run's result."""
    folder = tmp_path_factory.mktemp("pristine")
    result = _result(_run(folder))
    assert result["stats"]["compiled"] >= 2  # the worker pool's module and the graph's
    assert len(_entries(folder, "graph")) == 1 and len(_entries(folder, "module")) >= 2
    return folder, result


# --------------------------------------------------------------------------------- damaged entries


def _split(blob: bytes) -> tuple:
    """(metadata bytes, data) of an entry."""
    _, _, meta_len, _, _ = HEADER.unpack_from(blob)
    payload = blob[HEADER.size :]
    return payload[:meta_len], payload[meta_len:]


def _reentry(blob: bytes, meta: bytes | None = None, version: int = FORMAT_VERSION) -> bytes:
    """The entry with other metadata bytes and/or format version, and a correct length and checksum."""
    old_meta, data = _split(blob)
    meta = old_meta if meta is None else meta
    payload = meta + data
    return HEADER.pack(MAGIC, version, len(meta), len(payload), hashlib.sha256(payload).digest()) + payload


def _flip(pos):
    def damage(blob: bytes) -> bytes:
        b = bytearray(blob)
        b[pos(len(b))] ^= 0x5A
        return bytes(b)

    return damage


def _with_meta(change):
    def damage(blob: bytes) -> bytes:
        meta = json.loads(_split(blob)[0])
        change(meta)
        return _reentry(blob, json.dumps(meta).encode())

    return damage


DAMAGE = {
    "flip_magic": _flip(lambda n: 0),
    "flip_payload_length": _flip(lambda n: 17),
    "flip_checksum": _flip(lambda n: 40),
    "flip_middle": _flip(lambda n: n // 2),
    "flip_last_byte": _flip(lambda n: n - 1),
    "truncated": lambda b: b[: len(b) // 2],
    "truncated_header": lambda b: b[:20],
    "extended": lambda b: b + bytes(16),
    "empty": lambda b: b"",
    "foreign_format_version": lambda b: _reentry(b, version=FORMAT_VERSION + 1),
    "garbage_json_metadata": lambda b: _reentry(b, b'{"kind": "gra\xff'),
    "metadata_not_an_object": lambda b: _reentry(b, b"[1, 2, 3]"),
    "metadata_of_another_key": _with_meta(lambda m: m.update(key="0" * 64)),
    "metadata_of_another_kind": _with_meta(lambda m: m.update(kind="other")),
}
GRAPH_DAMAGE = {
    "layout_missing": _with_meta(lambda m: m.pop("layout")),
    "layout_wrong_types": _with_meta(lambda m: m["layout"].update(n_inputs="2", arena_bytes=-1)),
    "layout_missing_keys": _with_meta(lambda m: m.update(layout={"n_inputs": 2})),
    "layout_bad_slot": _with_meta(lambda m: m["layout"].update(output_slots=[99])),
    "module_count_mismatch": _with_meta(lambda m: m.update(modules=5)),
}
# Both kinds of entry are read by one function (every damage above, on module entries); on graph entries, one
# damage per check it fails (checksum, length, key) and what only a graph entry holds (its layout, its module count).
CASES = (
    [("module", d) for d in DAMAGE]
    + [("graph", d) for d in ("flip_checksum", "truncated", "metadata_of_another_key")]
    + [("graph", d) for d in GRAPH_DAMAGE]
)


@pytest.mark.parametrize("kind,damage", CASES)
def test_damaged_entry_is_rebuilt(pristine, tmp_path, kind, damage):
    """A damaged entry is deleted with a warning naming it, the code is rebuilt with the same results, and the
    cache ends valid. (Module entries are only read when the graph entry is missing, so it is removed.)"""
    folder, want = pristine
    cache = tmp_path / "cache"
    shutil.copytree(folder, cache)
    if kind == "module":
        for path in _entries(cache, "graph"):
            os.unlink(path)
    damaged = _entries(cache, kind)
    for path in damaged:
        with open(path, "rb") as f:
            blob = f.read()
        with open(path, "wb") as f:
            f.write({**DAMAGE, **GRAPH_DAMAGE}[damage](blob))
    proc = _run(cache)
    got = _result(proc)
    assert got["out"] == want["out"]
    if kind == "module":  # (a graph entry is rebuilt from the module entries)
        assert got["stats"]["compiled"] == len(damaged)
    for path in damaged:
        assert f"damaged compile-cache entry {path}" in proc.stderr
    assert "CacheWarning" in proc.stderr
    _assert_valid(cache)
    assert sorted(map(os.path.basename, _entries(cache))) == sorted(map(os.path.basename, _entries(folder)))


def test_intact_cache_is_a_disk_hit(pristine, tmp_path):
    folder, want = pristine
    shutil.copytree(folder, tmp_path / "cache")
    proc = _run(tmp_path / "cache")
    got = _result(proc)
    assert got["out"] == want["out"]
    assert got["stats"]["compiled"] == 0 and got["stats"]["disk_hits"] == 2  # the pool's module and the graph
    assert "CacheWarning" not in proc.stderr


def test_processes_racing_on_one_key(tmp_path):
    """Four processes compile the same graph into an empty cache at once: all succeed alike, the cache ends
    valid and a further process loads from it."""
    env = dict(os.environ, GRAPHNN_CACHE_DIR=str(tmp_path))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append(_result(subprocess.CompletedProcess(p.args, p.returncode, out, err)))
    assert all(r["out"] == results[0]["out"] for r in results)
    _assert_valid(tmp_path)
    again = _result(_run(tmp_path))
    assert again["out"] == results[0]["out"]
    assert again["stats"]["compiled"] == 0 and again["stats"]["disk_hits"] >= 1


# ------------------------------------------------------------------------------- unwritable caches


def test_cache_folder_that_cannot_be_created(pristine, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = _run(blocker / "cache")
    assert _result(proc)["out"] == pristine[1]["out"]
    assert "cannot write the compile cache" in proc.stderr


def test_disk_full(pristine, tmp_path):
    """Writes fail part-way (file size limit): compiling succeeds and no partial entry or temporary is left."""
    code = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))\n" + CHILD
    )
    proc = _run(tmp_path, code)
    assert _result(proc)["out"] == pristine[1]["out"]
    assert "cannot write the compile cache" in proc.stderr
    assert _entries(tmp_path) == [] and os.listdir(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write read-only folders")
def test_read_only_cache(pristine, tmp_path):
    shutil.copytree(pristine[0], tmp_path / "cache")
    for path in _entries(tmp_path / "cache", "graph"):
        os.unlink(path)
    os.chmod(tmp_path / "cache", 0o555)
    try:
        proc = _run(tmp_path / "cache")
    finally:
        os.chmod(tmp_path / "cache", 0o755)
    assert _result(proc)["out"] == pristine[1]["out"]


def test_unwritable_cache_folder(tmp_path, monkeypatch):
    """Permission denied on every cache write (as for a read-only folder, whoever runs the tests)."""
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "mkstemp", denied)
    g = _graph(1.4375)
    with pytest.warns(CacheWarning, match="cannot write the compile cache"):
        compiled = CompiledGraph(g)
    _check(compiled, g)
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_no_temporary(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.warns(CacheWarning, match="No space left"):
        assert not write_entry(str(tmp_path / "k.mod"), "module", "k", {}, b"data")
    assert os.listdir(tmp_path) == []


def test_entry_round_trip_and_checks():
    blob = encode_entry("graph", "abc", {"layout": {"n": 1}}, b"\x00\x01object")
    meta, data = decode_entry(blob, "graph", "abc")
    assert data == b"\x00\x01object" and meta["layout"] == {"n": 1}
    for kind, key in (("module", "abc"), ("graph", "abd")):
        with pytest.raises(BadEntry, match="metadata"):
            decode_entry(blob, kind, key)
    for name, damage in DAMAGE.items():
        if name.startswith("metadata_of"):
            continue
        with pytest.raises(BadEntry):
            decode_entry(damage(blob), "graph", "abc")


# ------------------------------------------------------------------------------------------ cache keys


def test_source_hash_covers_every_compiler_file(tmp_path):
    rels = [rel for rel, _ in jit.compiler_sources()]
    for rel in (
        "codegen/jit.py",
        "codegen/lowerings.py",
        "ir/fusion.py",
        "ir/graph.py",
        "ir/ops/elementwise.py",
        "ir/passes/__init__.py",
    ):
        assert rel in rels
    roots = {}
    for pkg, root in jit._source_roots().items():
        roots[pkg] = str(tmp_path / pkg)
        shutil.copytree(root, roots[pkg], ignore=shutil.ignore_patterns("__pycache__"))
    before = jit.source_hash(roots)
    assert before == jit.codegen_version()
    op_file = os.path.join(roots["ir"], "ops", "elementwise.py")
    with open(op_file, "a") as f:
        f.write("\n# a changed op pattern\n")
    edited = jit.source_hash(roots)
    assert edited != before
    with open(os.path.join(roots["ir"], "ops", "new_op.py"), "w") as f:
        f.write("")
    assert jit.source_hash(roots) not in (before, edited)


def test_graph_key_covers_code_settings(monkeypatch):
    import llvmlite
    from graphnn.codegen import module, runtime

    base = jit.graph_key("g")
    changes = [
        lambda: monkeypatch.setattr(jit, "codegen_version", lambda: "other sources"),
        lambda: monkeypatch.setattr(jit, "target_key", lambda: "other-cpu"),
        lambda: monkeypatch.setattr(llvmlite, "__version__", "0.0.1"),
        lambda: monkeypatch.setenv("GRAPHNN_UNROLL", "1"),
        lambda: monkeypatch.setenv("GRAPHNN_PROFILE", "1"),
        lambda: monkeypatch.setenv("GRAPHNN_PARALLEL_COMPILE", "0" if jit.parallel_compile() else "1"),
        lambda: monkeypatch.setattr(module, "PARALLEL_WORK", 7),
        lambda: monkeypatch.setattr(module, "MAX_THREADS", 3),
        lambda: monkeypatch.setattr(runtime, "PARALLEL_MIN_GROUPS", 2),
    ]
    for i, change in enumerate(changes):
        change()
        assert jit.graph_key("g") != base, i
        monkeypatch.undo()
        assert jit.graph_key("g") == base
    assert jit.graph_key("h") != base


def test_module_key_covers_toolchain(monkeypatch):
    base = jit._ir_key("define void @f() { ret void }")
    monkeypatch.setattr(jit, "codegen_version", lambda: "other sources")
    assert jit._ir_key("define void @f() { ret void }") != base


# ------------------------------------------------------------------------------------ in-memory cache


class _Blob:
    def __init__(self, nbytes):
        self.nbytes = nbytes


def test_lru_is_bounded_by_bytes():
    lru = LRUCache(250)
    a, b, c = _Blob(100), _Blob(100), _Blob(100)
    lru.put("a", a)
    lru.put("a2", a)  # a second key for one value counts once
    lru.put("b", b)
    assert lru.nbytes == 200 and len(lru) == 3
    assert lru.get("a")[0] is a  # now b is the least recently used
    lru.put("c", c)
    assert lru.get("b") is None and lru.get("a") is not None and lru.get("c") is not None
    assert lru.nbytes == 200
    lru.set_limit(150)
    assert lru.nbytes <= 150 and lru.get("a") is None
    lru.set_limit(0)
    assert len(lru) == 0 and lru.nbytes == 0


def test_memory_limit_from_environment(monkeypatch):
    monkeypatch.setenv("GRAPHNN_MEMORY_CACHE_MB", "1.5")
    assert jit._env_limit() == 3 << 19
    monkeypatch.setenv("GRAPHNN_MEMORY_CACHE_MB", "lots")
    with pytest.warns(RuntimeWarning, match="GRAPHNN_MEMORY_CACHE_MB"):
        assert jit._env_limit() == jit.DEFAULT_MEMORY_CACHE_MB << 20
    with pytest.raises(ValueError):
        jit.set_memory_cache_limit(-1)


EVICTION = """
import ctypes, gc, weakref
import numpy as np
from graphnn.codegen import CompiledGraph, jit
from graphnn.ir import Graph, TensorType, interpret
from graphnn.ir.roundoff import error_bounds, mismatches

def graph(n):
    g = Graph("g%d" % n)
    x = g.add_input(TensorType((n, 6), "float32"), "x")
    w = g.add_input(TensorType((6, 4), "float32"), "w")
    g.outputs = [g.emit("sigmoid", g.emit("matmul", x, w))]
    return g

def check(c, g):
    rng = np.random.default_rng(g.inputs[0].shape[0])
    arrays = [rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs]
    tol = 2 * error_bounds(g, arrays)[0]  # compiled and interpreted: each within the graph's rounding-error bound
    bad = mismatches(c(arrays)[0], interpret(g, arrays)[0], tol)
    assert not bad.any(), (g.name, int(bad.sum()))

answer = jit.compile_ir("define i64 @answer() {\\n  ret i64 42\\n}\\n", ["answer"])["answer"]
limit = 4 * (jit.ENGINE_OVERHEAD_BYTES + 20000)
jit.set_memory_cache_limit(limit)
graphs, compiled = [graph(n) for n in range(1, 15)], []
for g in graphs:
    compiled.append(CompiledGraph(g))
    entries, nbytes = jit.memory_cache_usage()
    assert nbytes <= limit and entries <= 8, (entries, nbytes)
refs = [weakref.ref(c._engine) for c in compiled]
for c, g in zip(compiled, graphs):  # most engines were evicted from the cache but are still in use
    check(c, g)
del c
compiled.clear()
gc.collect()
alive = sum(r() is not None for r in refs)
assert 0 < alive <= 4, alive  # only the engines the cache still holds
jit.set_memory_cache_limit(0)
gc.collect()
assert all(r() is None for r in refs)
assert jit.memory_cache_usage() == (0, 0)
assert ctypes.CFUNCTYPE(ctypes.c_int64)(answer)() == 42  # compile_ir's code is never unloaded
g = graph(20)
check(CompiledGraph(g), g)  # compiling and running goes on after engines were freed
jit.set_memory_cache_limit(1 << 30)
c1, c2 = CompiledGraph(g), CompiledGraph(g)
assert c1._engine is c2._engine and jit.STATS["memory_hits"] >= 1
print("ok")
"""


def test_evicted_code_in_use_stays_loaded(tmp_path):
    proc = _run(tmp_path, EVICTION)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


# ------------------------------------------------------------------------------------------- locking


def _graph(tag: float, n: int = 4) -> Graph:
    g = Graph("locks")
    x = g.add_input(TensorType((n, 5), "float32"), "x")
    g.outputs = [g.emit("mul", g.emit("exp", x), g.emit("full", shape=(), dtype="float32", value=tag))]
    return g


def _check(compiled: CompiledGraph, g: Graph) -> None:
    x = np.linspace(-1, 1, g.inputs[0].type.size, dtype=np.float32).reshape(g.inputs[0].shape)
    assert_close(compiled([x])[0], interpret(g, [x])[0], graph_tolerance(g, [x])[0], g.name)


def _in_thread(fn, name: str | None = None):
    """Run fn in a new thread: (thread, box that gets its "value" or "error")."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001  (re-raised by the caller)
            box["error"] = e

    t = threading.Thread(target=run, name=name)
    t.start()
    return t, box


def test_different_graphs_compile_concurrently(monkeypatch, tmp_path):
    """While one thread's compile is stuck inside the JIT, another thread compiles a different graph."""
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    pool_address()
    slow, fast = _graph(0.375), _graph(0.625)
    entered, release = threading.Event(), threading.Event()
    real = jit._emit

    def emit(text):
        if threading.current_thread().name == "slow":
            entered.set()
            release.wait(60)
        return real(text)

    monkeypatch.setattr(jit, "_emit", emit)
    t_slow, slow_box = _in_thread(lambda: CompiledGraph(slow), "slow")
    try:
        assert entered.wait(60), "the slow compile never started"
        t_fast, fast_box = _in_thread(lambda: CompiledGraph(fast))
        t_fast.join(30)
        assert not t_fast.is_alive(), "compiling another graph waited for the stuck one"
        assert t_slow.is_alive()
    finally:
        release.set()
        t_slow.join(60)
    assert "error" not in slow_box and "error" not in fast_box, (slow_box, fast_box)
    _check(fast_box["value"], fast)
    _check(slow_box["value"], slow)


def test_same_graph_from_threads_compiles_once(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    pool_address()
    g = _graph(0.8125, 6)
    real, calls = jit._emit, []

    def emit(text):
        calls.append(text)
        time.sleep(0.2)  # every thread arrives while the first compiles
        return real(text)

    monkeypatch.setattr(jit, "_emit", emit)
    before = jit.STATS["compiled"]
    barrier = threading.Barrier(4)
    threads = [_in_thread(lambda: (barrier.wait(), CompiledGraph(g))[1]) for _ in range(4)]
    for t, _ in threads:
        t.join(120)
    boxes = [box for _, box in threads]
    assert all("value" in box for box in boxes), boxes
    assert len(calls) == 1 and jit.STATS["compiled"] - before == 1
    assert len({id(box["value"]._engine) for box in boxes}) == 1
    for box in boxes:
        _check(box["value"], g)
    assert len(jit._key_locks) == 0  # per-key locks are dropped when no thread uses them


def test_key_locks_serialize_one_key_only():
    locks, order = KeyLocks(), []

    def take(key):
        with locks.hold(key):
            order.append(key)

    with locks.hold("a"):
        t_b, _ = _in_thread(lambda: take("b"))
        t_b.join(10)
        assert order == ["b"]  # another key did not wait
        t_a, _ = _in_thread(lambda: take("a"))
        time.sleep(0.1)
        assert order == ["b"]  # the same key waits
    t_a.join(10)
    assert order == ["b", "a"] and len(locks) == 0


def test_warnings_are_issued_once_per_entry(tmp_path):
    path = tmp_path / "x.mod"
    from graphnn.codegen.cache import read_entry

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(2):
            path.write_bytes(b"junk")
            assert read_entry(str(path), "module", "x") is None
            assert not path.exists()
    assert len([w for w in seen if issubclass(w.category, CacheWarning)]) == 1
