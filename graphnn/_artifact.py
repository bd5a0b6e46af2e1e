"""Reading an export directory: manifest checks, checksums, linking the native code, and the callable model.

Nothing from the artifact runs before its manifest is validated and every file's size and sha256 match: the
library is then loaded from the verified bytes (a private copy), and only its documented entry points are
called. Weights are raw bytes; nothing is unpickled.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import tempfile
import threading

import numpy as np

FORMAT = "graphnn-export"
FORMAT_VERSION = 1
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_}
ROLES = ("init", "weights_size", "get_weights", "set_weights", "free", "signature")
_MAX_MANIFEST = 16 << 20


class ExportError(Exception):
    """An export that cannot be written or loaded: missing, corrupted, truncated or of another format version."""


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path: str, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# -- manifest -------------------------------------------------------------------------------------------------
def _need(cond: bool, what: str) -> None:
    if not cond:
        raise ExportError(f"invalid manifest: {what}")


def _check_port(p, what: str) -> None:
    _need(isinstance(p, dict) and isinstance(p.get("name"), str), f"{what} needs a name")
    _need(isinstance(p.get("shape"), list) and all(isinstance(s, int) and s >= 0 for s in p["shape"]),
          f"{what} {p['name']!r} has a bad shape")
    _need(p.get("dtype") in DTYPES, f"{what} {p['name']!r} has an unknown dtype {p.get('dtype')!r}")


def _nbytes(p: dict) -> int:
    return int(np.prod(p["shape"], dtype=np.int64)) * np.dtype(DTYPES[p["dtype"]]).itemsize


def read_manifest(path: str) -> dict:
    """The validated manifest of the export at `path` (its version checked; files not yet verified)."""
    mpath = os.path.join(path, "manifest.json")
    if not os.path.isdir(path):
        raise ExportError(f"{path}: not an export directory")
    if not os.path.isfile(mpath):
        raise ExportError(f"{path}: no manifest.json (not a graphnn export, or an incomplete one)")
    if os.path.getsize(mpath) > _MAX_MANIFEST:
        raise ExportError(f"{mpath}: manifest too large")
    try:
        with open(mpath, "rb") as f:
            m = json.loads(f.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ExportError(f"{mpath}: corrupted manifest ({e})") from None
    _need(isinstance(m, dict) and m.get("format") == FORMAT, f"not a {FORMAT} manifest")
    v = m.get("format_version")
    if v != FORMAT_VERSION:
        raise ExportError(f"{path}: export format version {v!r} (graphnn {m.get('graphnn_version', '?')}) is not "
                          f"supported; this graphnn reads version {FORMAT_VERSION}: export the model again")
    _need(isinstance(m.get("name"), str) and re.fullmatch(r"[A-Za-z_]\w*", m["name"]) is not None, "bad name")
    _need(isinstance(m.get("files"), dict) and m["files"], "no file list")
    for fname, info in m["files"].items():
        _need(os.path.basename(fname) == fname and fname not in ("", ".", "..", "manifest.json"),
              f"bad file name {fname!r}")
        _need(isinstance(info, dict) and isinstance(info.get("sha256"), str) and isinstance(info.get("bytes"), int),
              f"file {fname!r} lacks a checksum or size")
    for key in ("object", "header"):
        _need(m.get(key) in m["files"], f"{key} file not listed")
    _need(m.get("library") is None or m["library"] in m["files"], "library file not listed")
    for what in ("inputs", "outputs"):
        _need(isinstance(m.get(what), list), f"no {what}")
        for p in m[what]:
            _check_port(p, what[:-1])
    w = m.get("weights")
    _need(isinstance(w, dict) and w.get("file") in m["files"] and isinstance(w.get("nbytes"), int)
          and isinstance(w.get("tensors"), list), "bad weights entry")
    for t in w["tensors"]:
        _check_port(t, "weight")
        _need(isinstance(t.get("offset"), int) and t["offset"] >= 0 and t.get("nbytes") == _nbytes(t)
              and t["offset"] + t["nbytes"] <= w["nbytes"], f"weight {t['name']!r} lies outside the weights blob")
    _need(m["files"][w["file"]]["bytes"] == w["nbytes"], "weights size disagrees with the file list")
    eps = m.get("entry_points")
    _need(isinstance(m.get("entry"), str) and isinstance(eps, dict), "no entry points")
    for role in ROLES + (m["entry"],):
        _need(isinstance(eps.get(role), dict) and eps[role].get("symbol") == f"{m['name']}_{role}",
              f"entry point {role!r} missing")
    t = m.get("target")
    _need(isinstance(t, dict) and all(isinstance(t.get(k), str) for k in ("triple", "cpu", "features")), "bad target")
    return m


def verify_files(path: str, m: dict) -> dict:
    """Read every listed file, checking size and sha256; returns {file name: bytes}."""
    data = {}
    for fname, info in m["files"].items():
        fpath = os.path.join(path, fname)
        if not os.path.isfile(fpath):
            raise ExportError(f"{path}: {fname} is missing")
        with open(fpath, "rb") as f:
            blob = f.read(info["bytes"] + 1)
        if len(blob) != info["bytes"]:
            raise ExportError(f"{path}: {fname} is {'truncated' if len(blob) < info['bytes'] else 'too long'} "
                              f"({len(blob) if len(blob) <= info['bytes'] else 'more than ' + str(info['bytes'])} "
                              f"bytes, the manifest says {info['bytes']})")
        if hashlib.sha256(blob).hexdigest() != info["sha256"]:
            raise ExportError(f"{path}: {fname} is corrupted (sha256 mismatch)")
        data[fname] = blob
    return data


def check_target(m: dict) -> None:
    """Refuse code built for another architecture or for CPU features this machine lacks."""
    import llvmlite.binding as llvm

    from graphnn.codegen.export import missing_features
    from graphnn.codegen.target import init_llvm

    init_llvm()
    t = m["target"]
    here = llvm.get_process_triple()
    if t["triple"].split("-")[0] != here.split("-")[0]:
        raise ExportError(f"export built for {t['triple']}, this machine is {here}")
    missing = missing_features(t["features"])
    if missing:
        raise ExportError(f"export built for CPU {t['cpu']} needs {', '.join(f[1:] for f in missing[:8])}, which "
                          "this CPU lacks: export it again with target='generic'")


def _signature(m: dict) -> str:
    from graphnn.codegen.export import signature

    port = lambda p: (p["name"], tuple(p["shape"]), p["dtype"])  # noqa: E731
    return signature(m["name"], m["entry"], [port(p) for p in m["inputs"]], [port(p) for p in m["outputs"]],
                     m["weights"]["nbytes"], [port(t) + (t["offset"],) for t in m["weights"]["tensors"]])


# -- native code ----------------------------------------------------------------------------------------------
_RUNS_CODE = {12: "DT_INIT", 13: "DT_FINI", 25: "DT_INIT_ARRAY", 26: "DT_FINI_ARRAY", 32: "DT_PREINIT_ARRAY"}
_SYSTEM_LIB = re.compile(r"(libc|libm|ld-linux[\w.-]*)\.so(\.\d+)*")


def check_library(data: bytes, fname: str) -> None:
    """Refuse an ELF shared library that would run code when loaded or unloaded (initializers, finalizers)
    or that pulls in libraries other than libc and libm: only its entry points may run."""
    import struct

    if data[:4] != b"\x7fELF":
        return  # not ELF (e.g. Mach-O): nothing to inspect
    try:
        if data[4] != 2 or data[5] != 1:
            raise ExportError(f"{fname}: not a 64-bit little-endian ELF library")
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        phdrs = [struct.unpack_from("<IIQQQQ", data, phoff + k * phentsize) for k in range(phnum)]
        loads = [(vaddr, off, size) for typ, _f, off, vaddr, _pa, size in phdrs if typ == 1]
        dyn = [(off, size) for typ, _f, off, _va, _pa, size in phdrs if typ == 2]
        entries = [struct.unpack_from("<qQ", data, off + k) for off, size in dyn for k in range(0, size, 16)]
        strtab = next((v for tag, v in entries if tag == 5), None)
        for tag, val in entries:
            if tag in _RUNS_CODE:
                raise ExportError(f"{fname}: the library runs code when loaded or unloaded ({_RUNS_CODE[tag]}); "
                                  "graphnn only calls an export's entry points")
            if tag == 1:
                base = next(o + strtab - v for v, o, n in loads if v <= strtab < v + n)
                name = data[base + val:data.index(b"\0", base + val)].decode()
                if not _SYSTEM_LIB.fullmatch(name):
                    raise ExportError(f"{fname}: the library needs {name}; an export may only use libc and libm")
    except (struct.error, ValueError, IndexError, TypeError, StopIteration, UnicodeDecodeError):
        raise ExportError(f"{fname}: malformed ELF library") from None


class _Native:
    """The entry points of a verified library (via ctypes) or object file (via MCJIT)."""

    def __init__(self, m: dict, files: dict):
        symbols = {role: e["symbol"] for role, e in m["entry_points"].items() if role in ROLES + (m["entry"],)}
        errors = []
        addrs = None
        if m.get("library"):
            check_library(files[m["library"]], m["library"])
            try:
                addrs = self._dlopen(files[m["library"]], list(symbols.values()))
                self.kind = "library"
            except (OSError, AttributeError) as e:
                errors.append(f"{m['library']}: {e}")
        if addrs is None:
            from graphnn.codegen.export import load_object

            try:
                self._engine, addrs = load_object(files[m["object"]], list(symbols.values()))
                self.kind = "object"
            except Exception as e:  # llvmlite reports bad objects as RuntimeError/OSError
                errors.append(f"{m['object']}: {e}")
                raise ExportError("cannot load the export's native code: " + "; ".join(errors)) from None
        n = 1 + len(m["inputs"]) + len(m["outputs"])
        vp, i64 = ctypes.c_void_p, ctypes.c_int64
        protos = {"init": ctypes.CFUNCTYPE(vp, vp, i64), "weights_size": ctypes.CFUNCTYPE(i64),
                  "get_weights": ctypes.CFUNCTYPE(ctypes.c_int, vp, vp),
                  "set_weights": ctypes.CFUNCTYPE(ctypes.c_int, vp, vp, i64), "free": ctypes.CFUNCTYPE(None, vp),
                  "signature": ctypes.CFUNCTYPE(ctypes.c_char_p),
                  m["entry"]: ctypes.CFUNCTYPE(ctypes.c_int, *([vp] * n))}
        for role, sym in symbols.items():
            setattr(self, "run" if role == m["entry"] else role, protos[role](addrs[sym]))

    def _dlopen(self, data: bytes, symbols: list) -> dict:
        # Load the verified bytes from a private copy: the file cannot change between check and load, and a
        # re-export at the same path is never confused with a library this process already loaded.
        fd, tmp = tempfile.mkstemp(suffix=".so")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self._lib = ctypes.CDLL(tmp, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        finally:
            os.remove(tmp)
        return {s: ctypes.cast(getattr(self._lib, s), ctypes.c_void_p).value for s in symbols}


class ExportedModel:
    """A loaded export. `model(*inputs)` runs the entry point on NumPy arrays or graphnn tensors (one per input,
    with the exported shape and dtype) and returns the output (a tuple when there are several), as NumPy arrays,
    or graphnn tensors when an input was one. A train_step export updates its weights at every call;
    `weights()`, `save_weights(path)` and `load_weights(path)` read and write them."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        m = read_manifest(self.path)
        files = verify_files(self.path, m)
        check_target(m)
        self.manifest = m
        self.name, self.mode = m["name"], m.get("mode")
        self.inputs, self.outputs = m["inputs"], m["outputs"]
        self._lock = threading.Lock()
        self._ctx = None
        self._native = _Native(m, files)
        nbytes = m["weights"]["nbytes"]
        if self._native.signature() != _signature(m).encode():
            raise ExportError(f"{self.path}: the manifest does not describe the compiled code (inputs, outputs or "
                              "weights layout differ): the export is corrupted")
        weights = files[m["weights"]["file"]]
        self._ctx = self._native.init(weights, nbytes)
        if not self._ctx:
            raise ExportError(f"{self.path}: {m['entry_points']['init']['symbol']} failed (out of memory?)")

    def __call__(self, *inputs):
        if len(inputs) != len(self.inputs):
            raise TypeError(f"{self.name} takes {len(self.inputs)} input(s), got {len(inputs)}")
        from .tensor import Tensor

        arrays = [self._array(x, p) for x, p in zip(inputs, self.inputs)]
        outs = [np.empty(p["shape"], DTYPES[p["dtype"]]) for p in self.outputs]
        with self._lock:
            if not self._ctx:
                raise ExportError(f"{self.name}: the model was closed")
            rc = self._native.run(self._ctx, *[a.ctypes.data for a in arrays + outs])
        if rc == -2:
            raise IndexError(f"{self.name}: an index in the inputs (e.g. a class label) was out of range; nothing "
                             "was updated")
        if rc != 0:
            raise ExportError(f"{self.name}: {self.manifest['entry_points'][self.manifest['entry']]['symbol']} "
                              f"returned {rc}")
        if any(isinstance(x, Tensor) for x in inputs):
            outs = [Tensor._wrap(o) for o in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    @staticmethod
    def _array(x, port: dict) -> np.ndarray:
        from .tensor import Tensor

        dt = np.dtype(DTYPES[port["dtype"]])
        if isinstance(x, Tensor):
            x = x.numpy()
        a = np.asarray(x) if isinstance(x, np.ndarray) else np.asarray(x, dt)
        if a.dtype != dt or list(a.shape) != port["shape"]:
            raise ValueError(f"input {port['name']} expects {port['dtype']}{port['shape']}, "
                             f"got {a.dtype.name}{list(a.shape)}")
        return np.require(a, requirements="C")

    # -- weights ----------------------------------------------------------------------------------------------
    def weights_blob(self) -> bytes:
        """The current weights (and optimizer state) as a raw blob with the manifest's layout."""
        buf = ctypes.create_string_buffer(max(1, self.manifest["weights"]["nbytes"]))
        with self._lock:
            self._native.get_weights(self._ctx, buf)
        return buf.raw[:self.manifest["weights"]["nbytes"]]

    def weights(self) -> dict:
        """{name: array} of every parameter and state tensor, copied out of the library."""
        blob = self.weights_blob()
        return {t["name"]: np.frombuffer(blob, DTYPES[t["dtype"]], int(np.prod(t["shape"], dtype=np.int64)),
                                         t["offset"]).reshape(t["shape"]).copy()
                for t in self.manifest["weights"]["tensors"]}

    def save_weights(self, path: str | None = None) -> str:
        """Write the current weights: into this export (path None, or another export directory with the same
        layout; its checksum is updated), to a `.npz` file (one array per tensor), or to a raw blob file."""
        from ._artifact_io import save_weights

        return save_weights(self, path)

    def load_weights(self, path: str) -> None:
        """Replace the weights from an export directory, a `.npz` file or a raw blob file (as save_weights writes)."""
        from ._artifact_io import read_weights

        blob = read_weights(self, path)
        with self._lock:
            rc = self._native.set_weights(self._ctx, blob, len(blob))
        if rc != 0:
            raise ExportError(f"{self.name}: set_weights returned {rc}")

    def close(self) -> None:
        """Free the library's context (weights and scratch memory)."""
        with self._lock:
            if self._ctx:
                self._native.free(self._ctx)
                self._ctx = None

    def __del__(self):
        if getattr(self, "_ctx", None) and getattr(self, "_native", None):
            self._native.free(self._ctx)
            self._ctx = None

    def __repr__(self) -> str:
        sig = lambda ps: ", ".join(f"{p['name']}: {p['dtype']}{p['shape']}" for p in ps)  # noqa: E731
        return (f"ExportedModel({self.name!r}, {self.mode}, ({sig(self.inputs)}) -> ({sig(self.outputs)}), "
                f"{self._native.kind})")
