"""graphnn.save / graphnn.load: checkpoints without pickle.

A checkpoint is a safetensors file: 8 bytes (little-endian length of the header), a JSON header naming each tensor's
dtype, shape and byte range, then the raw little-endian tensor bytes. The object saved (tensors, state_dicts,
optimizer state, nested dicts/lists/tuples of them and of numbers, strings, None) is described in the header's
`__metadata__` ("graphnn.structure": JSON, with tensors referred to by name), so loading runs no code from the file.
A dict of tensors keyed by strings (a state_dict) is saved under its own keys, so other safetensors readers see
the usual layout; a plain safetensors file loads as a dict of tensors.

An object that does not fit that description (a whole Module, as `torch.save(model, f)` saves it) is pickled
instead, behind the PICKLE_MAGIC line; graphnn.load reads such a file only with weights_only=False, as PyTorch's
torch.load does, since unpickling may run any code.

graphnn.load also reads files written by torch.save (torch_format.py) and export directories (export.py).
"""

from __future__ import annotations

import base64
import json
import math
import os
import pickle
import struct
from collections import Counter, OrderedDict

import numpy as np

from graphnn.core.complex_tensor import ComplexTensor
from graphnn.core.tensor import Tensor

FORMAT = "graphnn"
STRUCTURE_KEY = "graphnn.structure"
# safetensors dtype names <-> NumPy (bfloat16 is read by widening to float32)
ST_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "U16": "<u2",
    "U32": "<u4",
    "U64": "<u8",
    "BOOL": "?",
}
NP_TO_ST = {np.dtype(v).str.replace("|", ""): k for k, v in ST_DTYPES.items()}


PICKLE_MAGIC = b"GRAPHNN-PICKLE\n"


class CheckpointError(pickle.UnpicklingError):
    """A file graphnn.load cannot or will not read (damaged, foreign, or asking to run code)."""


class _NotData(TypeError):
    """An object the safetensors checkpoint cannot describe."""


# -- saving ---------------------------------------------------------------------------------------------------------
def save(obj, f, *args, **kwargs) -> None:
    """Save `obj` (tensors, state_dicts, optimizer state; nested dicts, lists and tuples of them and of numbers,
    strings, bytes and None) to `f`, a path or a writable binary file, as a safetensors file (see the module
    docstring); anything else (a whole Module) is pickled. Extra arguments of torch.save (pickle_module,
    pickle_protocol, ...) are accepted and ignored."""
    try:
        blob = dumps(obj)
    except _NotData as e:
        blob = _pickled(obj, e)
    if isinstance(f, (str, os.PathLike)):
        from graphnn.artifact.model import write_atomic

        write_atomic(os.fspath(f), blob)
    else:
        f.write(blob)


def dumps(obj) -> bytes:
    enc = _Encoder()
    structure = enc.encode(obj, "")
    header: dict = {"__metadata__": {"format": FORMAT, STRUCTURE_KEY: json.dumps(structure, allow_nan=False)}}
    offset, chunks = 0, []
    for name, arr in enc.arrays.items():
        data = arr.tobytes()
        header[name] = {"dtype": NP_TO_ST[arr.dtype.str.replace("|", "")], "shape": list(arr.shape)}
        header[name]["data_offsets"] = [offset, offset + len(data)]
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def _pickled(obj, why: _NotData) -> bytes:
    try:
        return PICKLE_MAGIC + pickle.dumps(obj, protocol=4)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise TypeError(f"{why}; nor can it be pickled: {e}") from None


class _Encoder:
    """The JSON description of an object, collecting its tensors (each distinct tensor once, by name)."""

    def __init__(self):
        self.arrays: dict = {}  # name -> little-endian contiguous array
        self.names: dict = {}  # id(tensor) -> name
        self.keep: list = []

    def encode(self, obj, path: str):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"float": repr(obj)}
        if isinstance(obj, (np.integer, np.floating, np.bool_)):
            return self.encode(obj.item(), path)
        if isinstance(obj, Tensor):
            return self._tensor(obj, path)
        if isinstance(obj, ComplexTensor):  # (its real view, marked)
            return dict(self._tensor(obj._ri, path), complex=True)
        if isinstance(obj, np.ndarray):
            return {"ndarray": self._array(obj, path, obj)}
        if isinstance(obj, (bytes, bytearray)):
            return {"bytes": base64.b64encode(bytes(obj)).decode()}
        return self._container(obj, path)

    def _container(self, obj, path: str):
        if isinstance(obj, dict):
            tag = "counter" if isinstance(obj, Counter) else "odict" if isinstance(obj, OrderedDict) else "dict"
            return {tag: [[self.encode(k, path), self.encode(v, _join(path, k))] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            tag = "list" if isinstance(obj, list) else "tuple"
            return {tag: [self.encode(v, _join(path, i)) for i, v in enumerate(obj)]}
        if isinstance(obj, (set, frozenset)):
            return {"set": [self.encode(v, path) for v in obj]}
        hint = " (save its state_dict() instead)" if callable(getattr(obj, "state_dict", None)) else ""
        raise _NotData(
            f"graphnn.save: cannot save a {type(obj).__name__}{hint} (at {path or 'the top level'}); a checkpoint "
            "holds tensors, NumPy arrays, numbers, strings, bytes, None and dicts, lists and tuples of them"
        )

    def _tensor(self, t: Tensor, path: str) -> dict:
        node = {"tensor": self._array(t._concrete("graphnn.save"), path, t)}
        from graphnn.nn.parameter import Parameter

        if isinstance(t, Parameter):
            node["parameter"] = True
        if t.requires_grad:
            node["requires_grad"] = True
        return node

    def _array(self, arr: np.ndarray, path: str, owner) -> str:
        if id(owner) in self.names:
            return self.names[id(owner)]
        # two tensors over the same memory (a state_dict's tied weights) are saved once, and load as one
        memory = (arr.__array_interface__["data"][0], arr.shape, arr.strides, arr.dtype.str) if arr.size else None
        if memory is not None and memory in self.names:
            self.names[id(owner)] = self.names[memory]
            self.keep.append(owner)
            return self.names[memory]
        name = path or "tensor"
        while name in self.arrays:
            name += "_"
        a = np.array(arr, order="C", copy=None)  # (np.ascontiguousarray would make a 0-d array 1-d)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        if a.dtype.str.replace("|", "") not in NP_TO_ST:  # (complex, strings, objects: pickled instead)
            raise _NotData(f"graphnn.save: no safetensors dtype for a {a.dtype} array (at {path or 'the top level'})")
        self.arrays[name] = a
        self.names[id(owner)] = name
        if memory is not None:
            self.names[memory] = name
        self.keep.append(owner)  # (ids stay unique while encoding)
        return name


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


# -- loading ---------------------------------------------------------------------------------------------------------
def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **kwargs):
    """Load what graphnn.save or torch.save wrote (a path or a readable binary file), or an export directory (a
    path to a directory written by graphnn.export: returns the runnable ExportedModel).

    Files written by torch.save are read without torch and without running pickled code: only tensors, storages
    and containers are rebuilt; a file asking for anything else is refused. A file graphnn.save pickled (a whole
    Module) loads only with weights_only=False. map_location and mmap are accepted for compatibility (everything
    loads on the CPU)."""
    if isinstance(f, (str, os.PathLike)) and os.path.isdir(f):
        from graphnn.artifact.export import load as load_export

        return load_export(os.fspath(f))
    name, data = _read_all(f)
    return loads(data, name, weights_only)


def _read_all(f) -> tuple:
    if isinstance(f, (str, os.PathLike)):
        try:
            with open(f, "rb") as fh:
                return os.fspath(f), fh.read()
        except OSError as e:
            raise FileNotFoundError(f"graphnn.load: cannot read {os.fspath(f)!r}: {e.strerror}") from None
    data = f.read()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("graphnn.load: the file object must be opened in binary mode")
    return getattr(f, "name", "<file object>"), bytes(data)


def loads(data: bytes, name: str = "<bytes>", weights_only=None):
    """The object in a checkpoint's bytes (graphnn/safetensors, torch.save zip or legacy format, or an object
    graphnn.save pickled, read only with weights_only=False)."""
    from graphnn.artifact import torch_format

    if not data:
        raise CheckpointError(f"graphnn.load: {name} is empty")
    if data.startswith(PICKLE_MAGIC):
        return _unpickle(data, name, weights_only)
    if data[:4] == b"PK\x03\x04" or torch_format.is_legacy(data):
        token = torch_format.TRUSTED.set(weights_only is False)
        try:
            return (torch_format.load_zip if data[:4] == b"PK\x03\x04" else torch_format.load_legacy)(data, name)
        finally:
            torch_format.TRUSTED.reset(token)
    if _looks_like_safetensors(data):
        return _load_safetensors(data, name)
    raise CheckpointError(
        f"graphnn.load: {name} is not a checkpoint (neither a safetensors file nor a torch.save file); "
        "an export is a directory"
    )


def _unpickle(data: bytes, name: str, weights_only):
    if weights_only is not False:
        raise CheckpointError(
            f"graphnn.load: {name} holds pickled Python objects (graphnn.save pickles what is not tensors and "
            "containers of them, e.g. a whole Module), which loading with weights_only=True, the default as in "
            "PyTorch, refuses: unpickling can run any code. Pass weights_only=False for a file you trust, or save "
            "and load the model's state_dict()"
        )
    try:
        return pickle.loads(data[len(PICKLE_MAGIC) :])
    except Exception as e:  # a damaged or truncated pickle
        raise CheckpointError(f"graphnn.load: cannot unpickle {name}: {type(e).__name__}: {e}") from None


def _looks_like_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    (n,) = struct.unpack("<Q", data[:8])
    return 8 + n <= len(data) and data[8:9] == b"{"


def _load_safetensors(data: bytes, name: str):
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + n].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"graphnn.load: {name}: damaged header ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"graphnn.load: {name}: damaged header (not a JSON object)")
    meta = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n :]
    arrays = {k: _tensor_bytes(k, v, body, name) for k, v in header.items()}
    if STRUCTURE_KEY not in meta:  # a plain safetensors file: its tensors by name
        return OrderedDict((k, Tensor._wrap(a)) for k, a in arrays.items())
    try:
        structure = json.loads(meta[STRUCTURE_KEY])
    except (TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"graphnn.load: {name}: damaged structure metadata ({e})") from None
    return _Decoder(arrays, name).decode(structure)


def _tensor_bytes(key: str, info, body: memoryview, name: str) -> np.ndarray:
    try:
        dtype, shape, (start, end) = info["dtype"], [int(s) for s in info["shape"]], info["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise CheckpointError(f"graphnn.load: {name}: damaged entry for tensor {key!r}") from None
    if dtype == "BF16":
        raw = _slice(body, start, end, 2 * math.prod(shape), key, name)
        return bf16_to_f32(np.frombuffer(raw, "<u2")).reshape(shape)
    if dtype not in ST_DTYPES:
        raise CheckpointError(f"graphnn.load: {name}: tensor {key!r} has dtype {dtype}, which graphnn cannot hold")
    np_dtype = np.dtype(ST_DTYPES[dtype])
    raw = _slice(body, start, end, np_dtype.itemsize * math.prod(shape), key, name)
    return np.frombuffer(raw, np_dtype).reshape(shape).astype(np_dtype.newbyteorder("="))


def _slice(body: memoryview, start: int, end: int, nbytes: int, key: str, name: str) -> bytes:
    if not (0 <= start <= end <= len(body)) or end - start != nbytes:
        raise CheckpointError(
            f"graphnn.load: {name}: tensor {key!r} needs bytes {start}..{end} ({nbytes} expected) but the data "
            f"holds {len(body)} bytes (truncated or damaged file)"
        )
    return bytes(body[start:end])


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values (as uint16 bit patterns) widened exactly to float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


class _Decoder:
    """Rebuilds the saved object from its JSON description and the named arrays (a tensor named twice is one
    tensor, as it was when saved)."""

    def __init__(self, arrays: dict, name: str):
        self.arrays, self.name, self.made = arrays, name, {}

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list) or not isinstance(node, dict) or len(node) < 1:
            raise CheckpointError(f"graphnn.load: {self.name}: damaged structure metadata")
        if "tensor" in node:
            t = self._tensor(node)
            return ComplexTensor(t) if node.get("complex") else t
        (tag, value), *_ = node.items()
        if tag == "ndarray":
            return np.array(self._array(value))
        if tag == "float":
            return float(value)
        if tag == "bytes":
            return base64.b64decode(value)
        if tag in ("list", "tuple", "set"):
            items = [self.decode(v) for v in value]
            return {"list": list, "tuple": tuple, "set": set}[tag](items)
        if tag in ("dict", "odict", "counter"):
            kind = {"dict": dict, "odict": OrderedDict, "counter": Counter}[tag]
            return kind(dict((self.decode(k), self.decode(v)) for k, v in value))
        raise CheckpointError(f"graphnn.load: {self.name}: unknown structure tag {tag!r}")

    def _array(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise CheckpointError(f"graphnn.load: {self.name}: the structure names a missing tensor {key!r}")
        return self.arrays[key]

    def _tensor(self, node: dict) -> Tensor:
        key = node["tensor"]
        if key in self.made:
            return self.made[key]
        arr = self._array(key)
        if node.get("parameter"):
            from graphnn.nn.parameter import Parameter

            t = Parameter(Tensor._wrap(arr), requires_grad=bool(node.get("requires_grad")))
        else:
            t = Tensor._wrap(arr)
            if node.get("requires_grad"):
                t.requires_grad_(True)
        self.made[key] = t
        return t
