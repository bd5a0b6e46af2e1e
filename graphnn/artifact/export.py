"""graphnn.export / graphnn.load: a compiled model as a native artifact that runs without the model's source.

An export is one directory:

    manifest.json   format and graphnn versions, target, inputs/outputs, entry points, weights layout, sha256 per file
    <name>.h        C declarations of the entry points (codegen/export.py documents them)
    lib<name>.so    the shared library (linked with the system C compiler; absent when there is none)
    <name>.o        the object code (llvmlite), which graphnn.load links itself when there is no library
    weights.bin     every parameter and state tensor, raw little-endian, at the offsets the manifest lists

`mode="inference"` exports `model(*inputs)` traced under no_grad; `mode="train_step"` exports a training-step
function (forward, loss, backward, optimizer step) whose weights and optimizer state live in the library's
context and are updated by each call.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from contextlib import contextmanager

import numpy as np

from graphnn.ir.serialize import from_json, to_json

from graphnn.codegen.export import build_export_module, c_header, emit_object, target_info

from graphnn.artifact.model import FORMAT, FORMAT_VERSION, ExportError, ExportedModel, write_atomic
from graphnn.core.grad_mode import enable_grad, no_grad
from graphnn.compiler.tracer import ArgGrad
from graphnn.compiler.program import CompiledFunction, CompiledModule, Program, build_program, trace_function
from graphnn.core.tensor import Tensor

MODES = {"inference": "forward", "train_step": "step"}


def export(
    model_or_compiled,
    example_inputs,
    path: str,
    *,
    mode: str = "inference",
    target: str = "generic",
    name: str | None = None,
    link: bool = True,
    input_names: list | None = None,
    overwrite: bool = False,
) -> str:
    """Compile `model_or_compiled` for `example_inputs` (their shapes and dtypes are fixed) and write an export
    directory at `path`; returns the path.

    mode: "inference" (a Module or function, traced under no_grad) or "train_step" (a function running one
    training step; its parameter and optimizer-state updates happen in the library's memory).
    target: "generic" (runs on any x86-64 CPU) or "host" (this CPU's full instruction set).
    name: C prefix of the entry points (default: the model class or function name, lower case).
    link: build the shared library with the system C compiler ($CC or cc); False writes the object file only.
    input_names: names of the inputs in the manifest and C header (default: the parameter names of the
    function or forward).
    overwrite: replace files of the same names that are not an earlier export's (an earlier export in `path` is
    always replaced, weights.bin too); without it such files are an error and nothing is written.
    """
    if mode not in MODES:
        raise ValueError(f"export mode must be 'inference' or 'train_step', got {mode!r}")
    tinfo = target_info(target)
    args = _as_tensors(example_inputs)
    fn, names, default_name = _resolve(model_or_compiled, mode)
    name = name or re.sub(r"\W", "_", default_name).lower()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"export name must be a C identifier, got {name!r}")
    with _traced(fn, args, names, mode, name) as prog:
        graph, user_in, user_out, state = _export_graph(prog, fn, mode, input_names)
    keys = _output_keys(prog.out_spec, len(user_out))
    out_names = (
        [re.sub(r"\W", "_", str(k)) for k in keys]
        if keys is not None
        else ["loss" if mode == "train_step" else "output"]
        if len(user_out) == 1
        else [f"output{j}" for j in range(len(user_out))]
    )
    ir_text, abi = build_export_module(graph, name, MODES[mode], user_in, user_out, out_names)
    blob = bytearray(abi.weights_bytes)
    for port, arr in zip(abi.weights, state):
        blob[port.offset : port.offset + port.nbytes] = np.ascontiguousarray(arr, port.dtype).tobytes()
    files = {
        f"{name}.o": emit_object(ir_text, tinfo),
        "weights.bin": bytes(blob),
        f"{name}.h": c_header(abi, _banner(name, mode, tinfo)).encode(),
        "graph.json": to_json(graph).encode(),
    }  # the compiled graph, for tools (graphnn viz) to read back
    _check_collisions(path, [*files, "manifest.json", _library_name(name)], overwrite)
    _write(
        path,
        files,
        _link if link else None,
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "graphnn_version": _version(),
            "name": name,
            "mode": mode,
            "target": tinfo,
            "llvm_version": _llvm_version(),
            "inputs": [_port(p) for p in abi.inputs],
            "outputs": [_port(p) for p in abi.outputs],
            "output_keys": keys,  # (a dict of outputs: loading returns a dict with these keys)
            "entry": abi.entry,
            "entry_points": {role: {"symbol": abi.symbols[role], "c": abi.signatures[role]} for role in abi.symbols},
            "header": f"{name}.h",
            "library": None,
            "object": f"{name}.o",
            "graph": "graph.json",
            "weights": {
                "file": "weights.bin",
                "nbytes": abi.weights_bytes,
                "tensors": [dict(_port(p), kind=p.kind, offset=p.offset, nbytes=p.nbytes) for p in abi.weights],
            },
        },
    )
    return path


def read_graph(path: str):
    """The IR graph an export was compiled from (its manifest and the graph file's checksum are checked first)."""
    from graphnn.artifact.model import read_manifest, verify_files

    m = read_manifest(path)
    if not isinstance(m.get("graph"), str) or m["graph"] not in m["files"]:
        raise ExportError(f"{path}: this export holds no graph file")
    data = verify_files(path, {**m, "files": {m["graph"]: m["files"][m["graph"]]}})
    try:
        return from_json(data[m["graph"]].decode("utf-8"))
    except (ValueError, KeyError, TypeError) as e:
        raise ExportError(f"{path}: unreadable graph file ({e})") from None


def load(path: str) -> ExportedModel:
    """Load an export directory: checks the format version and every file's checksum first, then links the
    library (or the object file) and copies the weights into a fresh context. The result is callable with
    NumPy arrays or graphnn tensors; see ExportedModel."""
    return ExportedModel(path)


# -- tracing --------------------------------------------------------------------------------------------------
def _as_tensors(example_inputs) -> list:
    items = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [example_inputs]
    out = []
    for x in items:
        if isinstance(x, Tensor):
            out.append(x)
        elif isinstance(x, np.ndarray):
            out.append(Tensor._wrap(np.require(x, requirements="C")))  # keeps 0-d arrays 0-d
        else:
            raise TypeError(f"example inputs must be graphnn tensors or NumPy arrays, got {type(x).__name__}")
    return out


def _resolve(obj, mode: str) -> tuple:
    """(callable to trace, {id(tensor): name}, default export name)."""
    from graphnn.nn.modules.module import Module

    from graphnn.compiler.optimized_module import OptimizedModule

    if isinstance(obj, OptimizedModule):
        obj = obj._orig_mod
    if isinstance(obj, CompiledModule):
        obj = obj.module
    if isinstance(obj, Module):
        if mode == "train_step":
            raise ValueError(
                "mode='train_step' exports a training-step function (forward, loss, backward, "
                "optimizer step), not a Module"
            )
        _warn_batch_statistics(obj)
        return obj, _module_names(obj), type(obj).__name__
    if isinstance(obj, CompiledFunction):
        names = _closure_names(obj.fn)
        names.update(obj._names())
        return obj.fn, names, obj.name
    if callable(obj):
        return obj, _closure_names(obj), getattr(obj, "__name__", "model")
    raise TypeError(
        f"graphnn.export expects a Module, a function or a graphnn.compile result, got {type(obj).__name__}"
    )


def _warn_batch_statistics(model) -> None:
    """An inference export of a model in training mode whose batch norms would normalize by each call's batch (not
    their running statistics): almost always a missing model.eval()."""
    from graphnn.nn.modules.regularization import _BatchNorm

    norms = [n for n, m in model.named_modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    if norms:
        warnings.warn(
            f"graphnn.export: {type(model).__name__} is in training mode: its batch norms ({', '.join(norms[:3])}"
            f"{', ...' if len(norms) > 3 else ''}) normalize by each call's batch, not their running statistics; call "
            "model.eval() before exporting for inference",
            UserWarning,
            stacklevel=3,
        )


def _module_names(m, prefix: str = "") -> dict:
    names = {id(p): prefix + n for n, p in m.named_parameters()}
    names.update({id(b): prefix + n for n, b in m.named_buffers()})
    return names


def _closure_names(fn) -> dict:
    """Names for the parameters and optimizer state a step function reaches through its closure or globals."""
    from graphnn.nn.modules.module import Module
    from graphnn.optim.optimizer import Optimizer

    try:
        cv = inspect.getclosurevars(fn)
        objs = {**cv.globals, **cv.nonlocals}
    except TypeError:
        objs = {}
    if isinstance(getattr(fn, "__self__", None), Module):
        objs["self"] = fn.__self__
    mods = [(k, v) for k, v in objs.items() if isinstance(v, Module) and _module_names(v)]
    names: dict = {}
    for k, m in mods:
        for key, n in _module_names(m, k + "." if len(mods) > 1 else "").items():
            names.setdefault(key, n)
    for _, opt in ((k, v) for k, v in objs.items() if isinstance(v, Optimizer)):
        for g in opt.param_groups:
            for p in g["params"]:
                for k, t in opt.state.get(p, {}).items():
                    if isinstance(t, Tensor):
                        names.setdefault(id(t), f"{names.get(id(p), 'param')}.{k}")
    return names


@contextmanager
def _traced(fn, args: list, names: dict, mode: str, name: str):
    """Trace fn until its program is a steady state, i.e. the program the next call would reuse: tracing a first
    step can create optimizer state (momentum buffers), and running one sets each `.grad` it computes. While the
    program is in use, `.grad`s that were None hold zeros (the value an accumulating step starts from)."""
    placeholders = []
    try:
        for _ in range(3):
            with no_grad() if mode == "inference" else enable_grad():
                tracer, spec, leaves, finals = trace_function(fn, tuple(args), {}, dict(names), name)
                prog = build_program(tracer, spec, leaves, finals)
            for t, pos, _ in prog.grad_targets:  # as Program.run leaves them
                if pos is not None and t._grad is None:
                    t._grad = Tensor._wrap(np.zeros(tuple(t.shape), t.dtype_name))
                    placeholders.append(t)
            if prog.valid():
                yield prog
                return
            names = {**_closure_names(fn), **names}  # name the state the first trace created
        raise ExportError("the traced program depends on state that changes at every call; it cannot be exported")
    finally:
        for t in placeholders:
            t._grad = None


def _output_keys(spec, n: int) -> list | None:
    r"""The keys of a model returning a flat dict of its n tensor outputs (each a C identifier once \W becomes _,
    all distinct), else None."""
    if spec[0] != "map" or len(spec[2]) != n or any(s[0] != "leaf" for _, s in spec[2]):
        return None
    keys = [k for k, _ in spec[2]]
    names = [re.sub(r"\W", "_", str(k)) for k in keys]
    ok = all(isinstance(k, str) and re.fullmatch(r"[A-Za-z_]\w*", c) for k, c in zip(keys, names))
    return keys if ok and len(set(names)) == len(names) else None


def _export_graph(prog: Program, fn, mode: str, input_names: list | None) -> tuple:
    """(graph copy, user input positions, user output positions, state arrays in graph-input order)."""
    g = prog.stages.get("lowered", prog.stages["optimized"]).copy()  # the graph the JIT compiles
    n_args = sum(acc is None for acc in prog.bindings)
    arg_names = _arg_names(getattr(fn, "forward", fn), n_args)
    if input_names is not None:
        if len(input_names) != n_args or not all(re.fullmatch(r"[A-Za-z_]\w*", str(s)) for s in input_names):
            raise ValueError(f"input_names must be {n_args} C identifiers, got {input_names!r}")
        arg_names = list(input_names)
    user_in, state, seen = [], [], set()
    if any(isinstance(acc, ArgGrad) for acc in prog.bindings):
        raise ExportError(
            "the exported function uses the .grad of one of its arguments (an argument that requires "
            "grad); exported inputs are plain arrays: pass arguments that do not require grad"
        )
    for i, (v, acc) in enumerate(zip(g.inputs, prog.bindings)):
        if acc is None:
            v.name = arg_names[len(user_in)]
            user_in.append(i)
            continue
        if v.meta.get("kind") == "random":
            raise ExportError(
                "the model draws random numbers at every call (e.g. dropout in training mode), which "
                "an export cannot do; call model.eval() or remove the random op"
            )
        v.name = _unique(v.name or f"state{i}", seen)
        state.append(np.array(acc()._data))
    writeback = dict(g.meta.get("writeback") or {})
    grads = {
        id(acc()): i
        for i, (v, acc) in enumerate(zip(g.inputs, prog.bindings))
        if acc is not None and v.meta.get("kind") == "grad"
    }
    for t, pos, _ in prog.grad_targets:  # accumulated .grad (no zero_grad) is state too
        if pos is not None and id(t._grad) in grads:
            writeback[pos] = grads[id(t._grad)]
    if any(i in user_in for i in writeback.values()):
        raise ExportError("the exported function updates one of its arguments in place; exported inputs are read-only")
    g.meta["writeback"] = writeback
    for i, v in enumerate(g.inputs):  # the kind the manifest lists: trained, updated by the step, or read-only
        if i not in user_in and v.meta.get("kind") != "param":
            v.meta["kind"] = "state" if i in writeback.values() else "const"
    if not prog.n_user:
        raise ExportError(f"the exported {'model' if mode == 'inference' else 'step'} returns no tensor")
    return g, user_in, list(range(prog.n_user)), state


def _arg_names(fn, n: int) -> list:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params[:n]]
    names += [f"x{i}" for i in range(len(names), n)]
    seen: set = set()
    return [_unique(re.sub(r"\W", "_", s), seen) for s in names]


def _unique(name: str, seen: set) -> str:
    base, k = name, 1
    while name in seen:
        k += 1
        name = f"{base}_{k}"
    seen.add(name)
    return name


# -- files ----------------------------------------------------------------------------------------------------
def _port(p) -> dict:
    return {"name": p.name, "shape": list(p.shape), "dtype": p.dtype}


def _version() -> str:
    from graphnn.version import graphnn_version

    return graphnn_version


def _llvm_version() -> str:
    import llvmlite.binding as llvm

    return ".".join(map(str, llvm.llvm_version_info))


def _banner(name: str, mode: str, tinfo: dict) -> str:
    return f"{name}: a graphnn {_version()} export ({mode}) for {tinfo['description']} ({tinfo['triple']})"


def _previous_files(path: str) -> set | None:
    """The files an earlier graphnn export in `path` listed (with its manifest), or None when path holds none."""
    try:
        with open(os.path.join(path, "manifest.json"), "rb") as f:
            old = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or old.get("format") != FORMAT or not isinstance(old.get("files"), dict):
        return None
    return {f for f in old["files"] if isinstance(f, str)} | {"manifest.json"}


def _check_collisions(path: str, names: list, overwrite: bool) -> None:
    """Refuse to replace files in an existing directory that an export would write over and that are not an
    earlier export's own (a user's manifest.json or header of the same name): never a lost file, unless asked."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"graphnn.export: {path} is a file, not a directory to write the export in")
    if overwrite or not os.path.isdir(path):
        return
    ours = _previous_files(path) or set()
    taken = sorted(n for n in names if n not in ours and os.path.lexists(os.path.join(path, n)))
    if taken:
        raise FileExistsError(
            f"graphnn.export: {path} already holds {', '.join(taken)}, which the export would replace (they are not "
            "an earlier export's): choose another directory, or pass overwrite=True (graphnn export --force)"
        )


def _library_name(name: str) -> str:
    return f"lib{name}" + (".dylib" if sys.platform == "darwin" else ".so")


def _remove_previous(path: str) -> None:
    """Delete the files an earlier export in `path` listed (and its manifest), so no stale file remains."""
    for fname in _previous_files(path) or ():
        if os.path.basename(fname) == fname and fname not in (".", ".."):
            try:
                os.remove(os.path.join(path, fname))
            except OSError:
                pass


def _write(path: str, files: dict, link, manifest: dict) -> None:
    """Write the files, link the library (link(path, name) -> file name or None), then the manifest (last, so an
    interrupted export has none and is refused)."""
    os.makedirs(path, exist_ok=True)
    _remove_previous(path)
    for fname, data in files.items():
        write_atomic(os.path.join(path, fname), data)
    if link is not None:
        lib = link(path, manifest["name"])
        if lib is not None:
            with open(os.path.join(path, lib), "rb") as f:
                files[lib] = f.read()
            manifest["library"] = lib
    manifest["files"] = {
        fname: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)} for fname, data in sorted(files.items())
    }
    write_atomic(os.path.join(path, "manifest.json"), json.dumps(manifest, indent=1).encode())


def find_cc() -> str | None:
    """The system C compiler: $CC, else cc, gcc or clang on PATH."""
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc.split()[0]) and cc
    return next((c for c in (shutil.which(n) for n in ("cc", "gcc", "clang")) if c), None)


def _link(path: str, name: str) -> str | None:
    """Link <name>.o into lib<name>.so; None (object only) when there is no C compiler or linking fails."""
    cc = find_cc()
    if cc is None:
        return None
    lib = _library_name(name)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, lib)
        # -nostartfiles: no C runtime start-up code, so loading the library runs nothing (graphnn.load checks)
        cmd = cc.split() + ["-shared", "-nostartfiles", "-o", out, os.path.join(path, f"{name}.o"), "-lm"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            warnings.warn(f"graphnn.export: linking with {cc} failed ({e}); exporting the object file only")
            return None
        if res.returncode != 0:
            warnings.warn(
                f"graphnn.export: linking with {cc} failed: {res.stderr.strip()[:500]}; exporting the object file only"
            )
            return None
        with open(out, "rb") as f:
            write_atomic(os.path.join(path, lib), f.read())
    return lib


__all__ = ["export", "load", "ExportError", "ExportedModel", "find_cc"]
