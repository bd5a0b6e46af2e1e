"""Reading an export directory: manifest checks, checksums, linking the native code, and the callable model.

Nothing from the artifact runs before its manifest is validated and every file's size and sha256 match: the
library is then loaded from the verified bytes (a private copy), and only its documented entry points are
called. Weights are raw bytes; nothing is unpickled.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import re
import tempfile
import threading

import numpy as np

FORMAT = "graphnn-export"
FORMAT_VERSION = 1
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_}
ROLES = ("init", "weights_size", "get_weights", "set_weights", "free", "signature")
ENTRIES = ("forward", "step")  # the entry point of an inference export and of a train_step export
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


def _count(x) -> bool:
    """A non-negative JSON integer (not a bool)."""
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _check_port(p, what: str) -> None:
    _need(isinstance(p, dict) and isinstance(p.get("name"), str), f"{what} needs a name")
    _need(
        isinstance(p.get("shape"), list) and all(_count(s) for s in p["shape"]), f"{what} {p['name']!r} has a bad shape"
    )
    _need(
        isinstance(p.get("dtype"), str) and p["dtype"] in DTYPES,
        f"{what} {p['name']!r} has an unknown dtype {p.get('dtype')!r}",
    )


def _nbytes(p: dict) -> int:
    return math.prod(p["shape"]) * np.dtype(DTYPES[p["dtype"]]).itemsize  # Python ints: no overflow


def _listed(m: dict, fname) -> bool:
    """Is fname (from the manifest) one of its listed files?"""
    return isinstance(fname, str) and fname in m["files"]


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
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        raise ExportError(f"{mpath}: corrupted manifest ({e})") from None
    _need(isinstance(m, dict) and m.get("format") == FORMAT, f"not a {FORMAT} manifest")
    v = m.get("format_version")
    if v != FORMAT_VERSION:
        raise ExportError(
            f"{path}: export format version {v!r} (graphnn {m.get('graphnn_version', '?')}) is not "
            f"supported; this graphnn reads version {FORMAT_VERSION}: export the model again"
        )
    _need(isinstance(m.get("name"), str) and re.fullmatch(r"[A-Za-z_]\w*", m["name"]) is not None, "bad name")
    _need(isinstance(m.get("files"), dict) and m["files"], "no file list")
    for fname, info in m["files"].items():
        _need(
            os.path.basename(fname) == fname and fname not in ("", ".", "..", "manifest.json"),
            f"bad file name {fname!r}",
        )
        _need(
            isinstance(info, dict) and isinstance(info.get("sha256"), str) and _count(info.get("bytes")),
            f"file {fname!r} lacks a checksum or size",
        )
    for key in ("object", "header"):
        _need(_listed(m, m.get(key)), f"{key} file not listed")
    _need(m.get("library") is None or _listed(m, m["library"]), "library file not listed")
    for what in ("inputs", "outputs"):
        _need(isinstance(m.get(what), list), f"no {what}")
        for p in m[what]:
            _check_port(p, what[:-1])
    w = m.get("weights")
    _need(
        isinstance(w, dict)
        and _listed(m, w.get("file"))
        and _count(w.get("nbytes"))
        and isinstance(w.get("tensors"), list),
        "bad weights entry",
    )
    for t in w["tensors"]:
        _check_port(t, "weight")
        _need(
            _count(t.get("offset"))
            and _count(t.get("nbytes"))
            and t["nbytes"] == _nbytes(t)
            and t["offset"] + t["nbytes"] <= w["nbytes"],
            f"weight {t['name']!r} lies outside the weights blob",
        )
    _need(m["files"][w["file"]]["bytes"] == w["nbytes"], "weights size disagrees with the file list")
    eps = m.get("entry_points")
    _need(m.get("entry") in ENTRIES and isinstance(eps, dict), "no entry points")
    for role in ROLES + (m["entry"],):
        _need(
            isinstance(eps.get(role), dict) and eps[role].get("symbol") == f"{m['name']}_{role}",
            f"entry point {role!r} missing",
        )
    t = m.get("target")
    _need(isinstance(t, dict) and all(isinstance(t.get(k), str) for k in ("triple", "cpu", "features")), "bad target")
    _need(
        re.fullmatch(r"([+-][\w.-]+(,[+-][\w.-]+)*)?", t["features"]) is not None,
        f"bad target features {t['features'][:80]!r}",
    )
    return m


def verify_files(path: str, m: dict) -> dict:
    """Read every listed file, checking size and sha256; returns {file name: bytes}."""
    data = {}
    for fname, info in m["files"].items():
        fpath = os.path.join(path, fname)
        if not os.path.isfile(fpath):
            raise ExportError(f"{path}: {fname} is missing")
        with open(fpath, "rb") as f:
            size = os.fstat(f.fileno()).st_size  # first, so an absurd size in the manifest reads nothing
            blob = f.read(info["bytes"] + 1) if size == info["bytes"] else b""
        if len(blob) != info["bytes"]:
            got = max(size, len(blob)) if size != info["bytes"] else len(blob)
            raise ExportError(
                f"{path}: {fname} is {'truncated' if got < info['bytes'] else 'too long'} "
                f"({got} bytes, the manifest says {info['bytes']})"
            )
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
        raise ExportError(
            f"export built for CPU {t['cpu']} needs {', '.join(f[1:] for f in missing[:8])}, which "
            "this CPU lacks: export it again with target='generic'"
        )


def _signature(m: dict) -> str:
    from graphnn.codegen.export import signature

    port = lambda p: (p["name"], tuple(p["shape"]), p["dtype"])  # noqa: E731
    return signature(
        m["name"],
        m["entry"],
        [port(p) for p in m["inputs"]],
        [port(p) for p in m["outputs"]],
        m["weights"]["nbytes"],
        [port(t) + (t["offset"],) for t in m["weights"]["tensors"]],
    )


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
        (e_type,) = struct.unpack_from("<H", data, 0x10)
        if e_type != 3:
            raise ExportError(f"{fname}: not a shared library (ELF type {e_type})")
        (phoff,) = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        if phentsize != 56 or phoff + phnum * phentsize > len(data):
            raise ExportError(f"{fname}: malformed ELF library (program headers outside the file)")
        phdrs = [struct.unpack_from("<IIQQQQ", data, phoff + k * phentsize) for k in range(phnum)]
        # The loader maps every segment from the file: one that extends past its end (a truncated library)
        # faults when touched.
        for typ, _f, off, _va, _pa, size in phdrs:
            if typ in (1, 2) and off + size > len(data):
                raise ExportError(f"{fname}: malformed ELF library (a segment lies outside the file: truncated?)")
        loads = [(vaddr, off, size) for typ, _f, off, vaddr, _pa, size in phdrs if typ == 1]
        dyn = [(off, size) for typ, _f, off, _va, _pa, size in phdrs if typ == 2]
        entries = [struct.unpack_from("<qQ", data, off + k) for off, size in dyn for k in range(0, size, 16)]
        strtab = next((v for tag, v in entries if tag == 5), None)
        for tag, val in entries:
            if tag in _RUNS_CODE:
                raise ExportError(
                    f"{fname}: the library runs code when loaded or unloaded ({_RUNS_CODE[tag]}); "
                    "graphnn only calls an export's entry points"
                )
            if tag == 1:
                base = next(o + strtab - v for v, o, n in loads if v <= strtab < v + n)
                name = data[base + val : data.index(b"\0", base + val)].decode()
                if not _SYSTEM_LIB.fullmatch(name):
                    raise ExportError(f"{fname}: the library needs {name}; an export may only use libc and libm")
    except (struct.error, ValueError, IndexError, TypeError, StopIteration, UnicodeDecodeError, OverflowError):
        raise ExportError(f"{fname}: malformed ELF library") from None


_ELF_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183, "ppc64le": 21, "riscv64": 243}
# x86-64 relocations of position-independent small-code-model objects (what graphnn exports), which LLVM's RuntimeDyld
# links: NONE, 64, PC32, PLT32, GOTPCREL, PC64, GOTPCRELX, REX_GOTPCRELX
_X86_64_RELOCATIONS = {0, 1, 2, 4, 9, 24, 41, 42}
_MAX_SECTION = 1 << 31  # bytes of one section (exported code and constants are far smaller)
_MAX_ALIGN = 1 << 16  # alignment of a section or common symbol
_MAX_REACH = 1 << 24  # how far a relocation may point past its symbol's section (32-bit fields reach 2 GiB)


def check_object(data: bytes, fname: str) -> None:
    """Refuse an object file LLVM's linker cannot safely read. It trusts every offset, index, size and relocation
    in the file (a truncated or garbled object crashes the process or trips an assertion), so the ELF structure
    is checked here first: header, section table, names, alignments, symbols and relocations all inside the file,
    pointing at what exists, of kinds the linker handles, and within reach of their targets."""
    import platform
    import struct
    import sys

    if data[:4] != b"\x7fELF":
        if sys.platform.startswith("linux"):
            raise ExportError(f"{fname}: not an ELF object file")
        return  # another object format (e.g. Mach-O): LLVM reads it unchecked
    bad = lambda why: ExportError(f"{fname}: malformed object file ({why})")  # noqa: E731
    try:
        if data[4] != 2 or data[5] != 1:
            raise ExportError(f"{fname}: not a 64-bit little-endian ELF object file")
        e_type, e_machine = struct.unpack_from("<HH", data, 0x10)
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        ehsize, _phentsize, _phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHHH", data, 0x34)
        if e_type != 1:
            raise ExportError(f"{fname}: not a relocatable object file (ELF type {e_type})")
        machine = _ELF_MACHINES.get(platform.machine().lower())
        if machine is not None and e_machine != machine:
            raise ExportError(
                f"{fname}: object code for ELF machine {e_machine}, this machine is {platform.machine()} ({machine})"
            )
        if ehsize != 64 or shentsize != 64 or not 0 < shnum < 0xFF00 or not 0 < shstrndx < shnum:
            raise bad("bad header")
        if shoff + shnum * 64 > len(data):
            raise bad("the section table lies outside the file")
        secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * k) for k in range(shnum)]
        if secs[shstrndx][1] != 3:
            raise bad("the section names are not a string table")
        for k, (name, typ, flags, _a, off, size, link, _i, align, _es) in enumerate(secs):
            if name >= max(secs[shstrndx][5], 1):
                raise bad(f"section {k} has its name outside the string table")
            if typ != 8 and off + size > len(data):  # all but SHT_NOBITS hold their bytes in the file
                raise bad(f"section {k} lies outside the file")
            if size > _MAX_SECTION:
                raise bad(f"section {k} claims {size} bytes")
            if link >= shnum:
                raise bad(f"section {k} links to section {link} of {shnum}")
            if align & (align - 1) or align > _MAX_ALIGN:
                raise bad(f"section {k} has alignment {align}")
            if flags & 0x400:  # SHF_TLS
                raise bad(f"section {k} is thread-local storage")
            if typ == 3 and size and data[off + size - 1] != 0:  # SHT_STRTAB
                raise bad(f"string table {k} is not NUL-terminated")
        sizes = [sec[5] for sec in secs]
        symbols = {}  # symbol table -> [(defining section, or "external"/"common"/"absolute"/"null", value)]
        for k, (_n, typ, _f, _a, off, size, link, _i, _al, es) in enumerate(secs):
            if typ not in (2, 11):  # SHT_SYMTAB, SHT_DYNSYM
                continue
            if es != 24 or size % 24 or secs[link][1] != 3:
                raise bad(f"symbol table {k}")
            strsize, syms = secs[link][5], []
            for j in range(size // 24):
                st_name, st_info, _other, st_shndx, value, st_size = struct.unpack_from("<IBBHQQ", data, off + 24 * j)
                where = f"symbol {j} of section {k}"
                if st_name >= max(strsize, 1) or (st_info & 0xF) > 4 or (st_info >> 4) > 2:
                    raise bad(where)
                if 0 < st_shndx < 0xFF00:  # defined in a section: inside it
                    if st_shndx >= shnum or value + st_size > sizes[st_shndx]:
                        raise bad(f"{where} lies outside its section")
                    syms.append((st_shndx, value))
                elif st_shndx == 0xFFF2:  # SHN_COMMON: value is the alignment
                    if value & (value - 1) or value > _MAX_ALIGN or st_size > _MAX_SECTION:
                        raise bad(where)
                    syms.append(("common", 0))
                elif st_shndx == 0:
                    syms.append(("external" if j and st_name else "null", 0))
                elif st_shndx == 0xFFF1:
                    syms.append(("absolute", 0))
                else:
                    raise bad(f"{where} has section index {st_shndx:#x}")
            symbols[k] = syms
        for k, (_n, typ, _f, _a, off, size, link, info, _al, es) in enumerate(secs):
            if typ not in (4, 9):  # SHT_RELA, SHT_REL
                continue
            width = 24 if typ == 4 else 16
            if es != width or size % width or link not in symbols or not 0 < info < shnum:
                raise bad(f"relocation section {k}")
            syms = symbols[link]
            for j in range(size // width):
                r_offset, r_info = struct.unpack_from("<QQ", data, off + width * j)
                addend = struct.unpack_from("<q", data, off + width * j + 16)[0] if typ == 4 else 0
                sym, rtype = r_info >> 32, r_info & 0xFFFFFFFF
                where = f"relocation {j} of section {k}"
                if e_machine == 62 and rtype not in _X86_64_RELOCATIONS:
                    raise bad(f"{where} has the unsupported x86-64 type {rtype}")
                field = (8 if rtype in (1, 24) else 4) if e_machine == 62 else 1  # bytes the relocation writes
                if sym >= len(syms) or r_offset + field > sizes[info]:
                    raise bad(f"{where} points outside its section or symbol table")
                sec, value = syms[sym]
                # PC-relative fields reach 2 GiB: only symbols in this object (PLT32 also reaches external ones
                # through a stub). RuntimeDyld adds the bytes already at a PC32/PC64 field to the addend.
                if (
                    e_machine == 62
                    and rtype in (2, 4, 24)
                    and not (isinstance(sec, int) or (rtype == 4 and sec == "external"))
                ):
                    raise bad(f"{where} is PC-relative to a {sec} symbol")
                if e_machine == 62 and rtype in (2, 24) and secs[info][1] != 8:
                    addend += struct.unpack_from("<I" if rtype == 2 else "<Q", data, secs[info][4] + r_offset)[0]
                if (
                    e_machine == 62
                    and rtype in (9, 41, 42)
                    and sec not in ("external", "common")
                    and not isinstance(sec, int)
                ):
                    raise bad(f"{where} loads the address of a {sec} symbol")
                lo, hi = (-_MAX_REACH, sizes[sec] + _MAX_REACH) if isinstance(sec, int) else (-_MAX_REACH, _MAX_REACH)
                if not lo <= value + addend <= hi:
                    raise bad(f"{where} reaches {addend:+d} bytes past its symbol")
    except (struct.error, IndexError, OverflowError):
        raise bad("truncated") from None


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
                check_object(files[m["object"]], m["object"])
                self._engine, addrs = load_object(files[m["object"]], list(symbols.values()))
                self.kind = "object"
            except Exception as e:  # llvmlite reports bad objects as RuntimeError/OSError
                errors.append(f"{m['object']}: {e}")
                raise ExportError("cannot load the export's native code: " + "; ".join(errors)) from None
        n = 1 + len(m["inputs"]) + len(m["outputs"])
        vp, i64 = ctypes.c_void_p, ctypes.c_int64
        protos = {
            "init": ctypes.CFUNCTYPE(vp, vp, i64),
            "weights_size": ctypes.CFUNCTYPE(i64),
            "get_weights": ctypes.CFUNCTYPE(ctypes.c_int, vp, vp),
            "set_weights": ctypes.CFUNCTYPE(ctypes.c_int, vp, vp, i64),
            "free": ctypes.CFUNCTYPE(None, vp),
            "signature": ctypes.CFUNCTYPE(ctypes.c_char_p),
            m["entry"]: ctypes.CFUNCTYPE(ctypes.c_int, *([vp] * n)),
        }
        for role, sym in symbols.items():
            setattr(self, "run" if role == m["entry"] else role, protos[role](addrs[sym]))

    def _dlopen(self, data: bytes, symbols: list) -> dict:
        # Load the verified bytes from a private copy: the file cannot change between check and load, and a
        # re-export at the same path is never confused with a library this process already loaded.
        fd, tmp = tempfile.mkstemp(suffix=".so")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            _probe_library(tmp, symbols)
            self._lib = ctypes.CDLL(tmp, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        finally:
            os.remove(tmp)
        return {s: ctypes.cast(getattr(self._lib, s), ctypes.c_void_p).value for s in symbols}


# The system loader trusts a library's headers, dynamic table, relocations and hash tables: a damaged library
# (with a manifest that matches it) can crash the process that loads it. So it is loaded first in a child
# interpreter, which only links it and looks its entry points up (a library that runs code when loaded is
# refused before, by check_library).
_PROBE = (
    "import ctypes, os, sys\n"
    "lib = ctypes.CDLL(sys.argv[1], mode=os.RTLD_NOW | os.RTLD_LOCAL)\n"
    "for s in sys.argv[2:]:\n"
    "    getattr(lib, s)\n"
)
PROBE_TIMEOUT_S = 60.0


def _probe_library(path: str, symbols: list) -> None:
    """Raise OSError when loading the library at `path` kills, hangs or fails in a child process."""
    import signal
    import subprocess
    import sys

    if not sys.executable:
        return  # embedded without an interpreter to run: the library is loaded without the probe
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _PROBE, path, *symbols],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise OSError(f"loading it did not finish within {PROBE_TIMEOUT_S:.0f} s") from None
    except OSError:
        return  # no child process here: the library is loaded without the probe
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise OSError(f"the system loader crashes on it ({name}): the library is damaged")
    if proc.returncode:
        lines = proc.stderr.strip().splitlines()
        raise OSError(lines[-1] if lines else f"loading it failed (exit code {proc.returncode})")


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
            raise ExportError(
                f"{self.path}: the manifest does not describe the compiled code (inputs, outputs or "
                "weights layout differ): the export is corrupted"
            )
        weights = files[m["weights"]["file"]]
        self._ctx = self._native.init(weights, nbytes)
        if not self._ctx:
            raise ExportError(f"{self.path}: {m['entry_points']['init']['symbol']} failed (out of memory?)")

    def __call__(self, *inputs):
        if len(inputs) != len(self.inputs):
            raise TypeError(f"{self.name} takes {len(self.inputs)} input(s), got {len(inputs)}")
        from graphnn.core.tensor import Tensor

        self._check_open("call")
        arrays = [self._array(x, p) for x, p in zip(inputs, self.inputs)]
        outs = [np.empty(p["shape"], DTYPES[p["dtype"]]) for p in self.outputs]
        with self._lock:
            rc = self._native.run(self._open_ctx("call"), *[a.ctypes.data for a in arrays + outs])
        if rc == -2:
            raise IndexError(
                f"{self.name}: an index in the inputs (e.g. a class label) was out of range; nothing was updated"
            )
        self._check_rc(self.manifest["entry"], rc)
        if any(isinstance(x, Tensor) for x in inputs):
            outs = [Tensor._wrap(o) for o in outs]
        keys = self.manifest.get("output_keys")
        if keys:  # (the model returned a dict)
            return dict(zip(keys, outs))
        return outs[0] if len(outs) == 1 else tuple(outs)

    @staticmethod
    def _array(x, port: dict) -> np.ndarray:
        from graphnn.core.tensor import Tensor

        dt = np.dtype(DTYPES[port["dtype"]])
        if isinstance(x, Tensor):
            x = x.numpy()
        a = np.asarray(x) if isinstance(x, np.ndarray) else np.asarray(x, dt)
        if a.dtype != dt or list(a.shape) != port["shape"]:
            raise ValueError(
                f"input {port['name']} expects {port['dtype']}{port['shape']}, got {a.dtype.name}{list(a.shape)}"
            )
        return np.require(a, requirements="C")

    # -- weights ----------------------------------------------------------------------------------------------
    def weights_blob(self) -> bytes:
        """The current weights (and optimizer state) as a raw blob with the manifest's layout."""
        buf = ctypes.create_string_buffer(max(1, self.manifest["weights"]["nbytes"]))
        with self._lock:
            rc = self._native.get_weights(self._open_ctx("read the weights of"), buf)
        self._check_rc("get_weights", rc)
        return buf.raw[: self.manifest["weights"]["nbytes"]]

    def weights(self) -> dict:
        """{name: array} of every parameter and state tensor, copied out of the library."""
        blob = self.weights_blob()
        return {
            t["name"]: np.frombuffer(blob, DTYPES[t["dtype"]], int(np.prod(t["shape"], dtype=np.int64)), t["offset"])
            .reshape(t["shape"])
            .copy()
            for t in self.manifest["weights"]["tensors"]
        }

    def save_weights(self, path: str | None = None) -> str:
        """Write the current weights: into this export (path None, or another export directory with the same
        layout; its checksum is updated), to a `.npz` file (one array per tensor), or to a raw blob file."""
        from graphnn.artifact.io import save_weights

        self._check_open("save the weights of")
        return save_weights(self, path)

    def load_weights(self, path: str) -> None:
        """Replace the weights from an export directory, a `.npz` file or a raw blob file (as save_weights writes)."""
        from graphnn.artifact.io import read_weights

        self._check_open("load weights into")
        blob = read_weights(self, path)
        with self._lock:
            rc = self._native.set_weights(self._open_ctx("load weights into"), blob, len(blob))
        self._check_rc("set_weights", rc)

    # -- the native context -----------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once close() freed the library's context: the model can no longer run or give its weights."""
        return not self._ctx

    def _check_open(self, action: str) -> None:
        if not self._ctx:
            raise ExportError(
                f"{self.name}: cannot {action} the model: the model was closed (graphnn.load {self.path!r} again)"
            )

    def _open_ctx(self, action: str):
        """The live context (call with the lock held: close() cannot free it meanwhile)."""
        self._check_open(action)
        return self._ctx

    def _check_rc(self, role: str, rc: int) -> None:
        """Raise for a failed entry point (codegen/export.py lists the codes): 0 is success, -1 a NULL context."""
        if rc == 0:
            return
        symbol = self.manifest["entry_points"][role]["symbol"]
        why = {
            -1: "it was given no context (the model was closed)",
            -2: "the weights blob does not have the library's size" if role == "set_weights" else None,
        }.get(rc)
        why = why or "unknown error"
        raise ExportError(f"{self.name}: {symbol} failed with return code {rc} ({why})")

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
        return (
            f"ExportedModel({self.name!r}, {self.mode}, ({sig(self.inputs)}) -> ({sig(self.outputs)}), "
            f"{self._native.kind}{', closed' if self.closed else ''})"
        )
