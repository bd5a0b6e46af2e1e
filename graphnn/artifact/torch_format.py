"""Reading files written by torch.save without torch and without running pickled code.

torch.save writes a pickle of the object whose tensors refer to storages by persistent id, plus the storages' raw
bytes: in a zip archive (`<name>/data.pkl`, `<name>/data/<key>`, `<name>/byteorder`) or, in the legacy format, as
one stream (magic number, protocol, system info, the pickle, its storage keys, then each storage as its element
count and bytes). The restricted unpickler below accepts only the globals torch's own weights_only loader
accepts for such files (tensor and parameter rebuild functions, storage types, dtypes, OrderedDict, Counter,
torch.Size, builtins containers) and gives each a NumPy-based stand-in: tensors are rebuilt from the storages with
their sizes, strides, offsets and dtypes. Any other global is refused before anything runs."""

from __future__ import annotations

import contextvars
import io
import pickle
import struct
import zipfile
from collections import Counter, OrderedDict

import numpy as np

from graphnn.artifact.checkpoint import CheckpointError, bf16_to_f32
from graphnn.core.tensor import Size, Tensor

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage classes -> (NumPy dtype of their elements, torch dtype name)
STORAGE_DTYPES = {
    "DoubleStorage": ("<f8", "float64"),
    "FloatStorage": ("<f4", "float32"),
    "HalfStorage": ("<f2", "float16"),
    "BFloat16Storage": ("<u2", "bfloat16"),
    "LongStorage": ("<i8", "int64"),
    "IntStorage": ("<i4", "int32"),
    "ShortStorage": ("<i2", "int16"),
    "CharStorage": ("i1", "int8"),
    "ByteStorage": ("u1", "uint8"),
    "BoolStorage": ("?", "bool"),
    "UntypedStorage": ("u1", "uint8"),
    "ComplexFloatStorage": ("<c8", "complex64"),  # (complex tensors: graphnn's ComplexTensor)
    "ComplexDoubleStorage": ("<c16", "complex128"),
}
UNSUPPORTED_STORAGES = {"ComplexHalfStorage": "complex32"}
TORCH_DTYPES = {torch_name: np_dtype for np_dtype, torch_name in STORAGE_DTYPES.values()}
UNSUPPORTED_DTYPES = ("complex32", "float8_e4m3fn", "float8_e5m2", "uint16", "uint32")


class StorageType:
    """Stand-in for a torch storage class named in a persistent id (e.g. torch.FloatStorage)."""

    def __init__(self, name: str):
        self.name = name


class TorchDType:
    """Stand-in for a torch dtype global (e.g. torch.float32), as _rebuild_tensor_v3 receives it."""

    def __init__(self, name: str):
        self.name = name


class Storage:
    """A storage's elements as a flat NumPy array (bfloat16 kept as uint16 bit patterns)."""

    def __init__(self, array: np.ndarray, torch_dtype: str):
        self.array, self.torch_dtype = array, torch_dtype


class _Probe(Storage):
    """A storage whose bytes are not read yet (the legacy format's first pass): tensors on it are not built."""

    def __init__(self):
        super().__init__(np.zeros(0, "u1"), "uint8")


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, hooks=None, metadata=None) -> Tensor:
    """A tensor with the given view of a storage (its elements copied, so it owns its memory)."""
    if not isinstance(storage, Storage):
        raise CheckpointError("damaged torch.save file: a tensor without a storage")
    if isinstance(storage, _Probe):
        return None
    arr = _strided(storage.array, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))
    if storage.torch_dtype == "bfloat16":
        arr = bf16_to_f32(arr)
    if storage.torch_dtype.startswith("complex"):
        from graphnn.core.complex_tensor import from_numpy

        return from_numpy(arr.astype(arr.dtype.newbyteorder("=")), requires_grad=bool(requires_grad))
    t = Tensor._wrap(np.array(arr.astype(arr.dtype.newbyteorder("="))))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, hooks, dtype, metadata=None) -> Tensor:
    if type(storage) is Storage and isinstance(dtype, TorchDType) and storage.torch_dtype != dtype.name:
        storage = Storage(storage.array.view(_np_dtype(dtype.name)), dtype.name)  # an untyped storage
    return _rebuild_tensor(storage, storage_offset, size, stride, requires_grad)


def _strided(flat: np.ndarray, offset: int, size: tuple, stride: tuple) -> np.ndarray:
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise CheckpointError("damaged torch.save file: a tensor with an invalid size or stride")
    if 0 in size:
        return np.zeros(size, flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if offset < 0 or last >= len(flat):
        raise CheckpointError(
            f"damaged torch.save file: a tensor of size {list(size)} at offset {offset} with stride {list(stride)} "
            f"reaches element {last} of a storage of {len(flat)}"
        )
    base = flat[offset:]
    return np.lib.stride_tricks.as_strided(base, size, tuple(s * flat.itemsize for s in stride), writeable=False)


def _rebuild_parameter(data, requires_grad, hooks=None, state=None):
    from graphnn.nn.parameter import Parameter

    if data is None:  # (a first pass over a legacy file)
        return None
    from graphnn.core.complex_tensor import ComplexTensor

    if not isinstance(data, (Tensor, ComplexTensor)):
        raise CheckpointError("damaged torch.save file: a parameter without a tensor")
    return Parameter(data, requires_grad=bool(requires_grad))


def _encode(text, encoding="utf-8") -> bytes:
    """_codecs.encode as pickle protocol 2 uses it for bytes: (str, 'latin1') only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("refusing to load: the file calls _codecs.encode with unexpected arguments")
    return text.encode("latin1")


def _allowed() -> dict:
    table = {
        "collections.OrderedDict": OrderedDict,
        "collections.Counter": Counter,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch.Size": lambda dims=(): Size(tuple(dims)),
        "torch.device": lambda *args: "cpu",
        "_codecs.encode": _encode,
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.bytearray": bytearray,
        "builtins.complex": complex,
    }
    for name in (*STORAGE_DTYPES, *UNSUPPORTED_STORAGES):
        table[f"torch.{name}"] = StorageType(name)
        table[f"torch.storage.{name}"] = StorageType(name)
    for name in (*TORCH_DTYPES, *UNSUPPORTED_DTYPES):
        table[f"torch.{name}"] = TorchDType(name)
    return table


ALLOWED = _allowed()


def _np_dtype(torch_name: str) -> str:
    if torch_name not in TORCH_DTYPES:
        raise CheckpointError(
            f"graphnn.load: the file holds a {torch_name} tensor, which graphnn cannot represent (its dtypes are "
            "float32, float64, int64 and bool; float16, bfloat16 and smaller integers are widened)"
        )
    return TORCH_DTYPES[torch_name]


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickles only what ALLOWED names; storages come from `storage(key, storage_type, numel)`."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, f, storage, name: str):
        super().__init__(f)
        self._storage, self._name = storage, name

    def find_class(self, module: str, name: str):
        full = f"{module}.{name}"
        if full not in ALLOWED and TRUSTED.get() and module.split(".")[0] != "torch":
            return super().find_class(module, name)  # (weights_only=False: the caller trusts the file)
        if full not in ALLOWED:
            raise CheckpointError(
                f"graphnn.load: refusing to load {self._name}: the file asks for {full}, which is not a tensor, a "
                "storage or a container (graphnn.load runs no code from a file unless weights_only=False: pass it "
                "for a file you trust; PyTorch's own classes load only as tensors and containers)"
            )
        return ALLOWED[full]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"graphnn.load: refusing to load {self._name}: unknown persistent id {pid!r:.80}")
        _, kind, key, _location, numel, *rest = pid
        if not isinstance(kind, StorageType):
            raise CheckpointError(f"graphnn.load: {self._name}: damaged storage reference {pid!r:.80}")
        return self._storage(str(key), kind, int(numel), rest[0] if rest else None)

    def _build(self):
        """BUILD: only attribute dicts of OrderedDicts (a state_dict's `_metadata`) are accepted."""
        if TRUSTED.get() and not isinstance(self.stack[-1], OrderedDict):
            return pickle._Unpickler.load_build(self)
        state = self.stack.pop()
        inst = self.stack[-1]
        if not (isinstance(inst, OrderedDict) and isinstance(state, dict)):
            raise CheckpointError(
                f"graphnn.load: refusing to load {self._name}: the file sets the state of a {type(inst).__name__}"
            )
        inst.__dict__.update(state)

    dispatch[pickle.BUILD[0]] = _build


# weights_only=False: the caller trusts the file, whose other globals (NumPy arrays, its own classes) load as pickle
# loads them; PyTorch's own classes (a whole torch.nn module) still cannot be rebuilt without torch
TRUSTED: contextvars.ContextVar = contextvars.ContextVar("graphnn_load_trusted", default=False)


def _unpickle(data: bytes, storage, name: str, at: int = 0) -> tuple:
    """(object, end position) of the pickle starting at `at`."""
    f = io.BytesIO(data)
    f.seek(at)
    try:
        obj = RestrictedUnpickler(f, storage, name).load()
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"graphnn.load: {name}: damaged torch.save file ({type(e).__name__}: {e})") from None
    return obj, f.tell()


def _typed(raw: bytes, kind: StorageType, numel: int, big_endian: bool, key: str, name: str) -> Storage:
    if kind.name in UNSUPPORTED_STORAGES:
        _np_dtype(UNSUPPORTED_STORAGES[kind.name])  # (raises: graphnn has no such dtype)
    np_dtype, torch_dtype = STORAGE_DTYPES[kind.name]
    dt = np.dtype(np_dtype)
    if big_endian:
        dt = dt.newbyteorder(">")
    if len(raw) % dt.itemsize or (kind.name != "UntypedStorage" and len(raw) // dt.itemsize < numel):
        raise CheckpointError(f"graphnn.load: {name}: storage {key} has {len(raw)} bytes, too few for {numel} elements")
    return Storage(np.frombuffer(raw, dt), torch_dtype)


# -- the zip format ---------------------------------------------------------------------------------------------
def load_zip(data: bytes, name: str):
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        entries = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"graphnn.load: {name}: damaged zip archive ({e})") from None
    pkl = [n for n in entries if n.endswith("data.pkl") and n.count("/") <= 1]
    if not pkl:
        raise CheckpointError(f"graphnn.load: {name}: a zip archive without data.pkl is not a torch.save file")
    prefix = pkl[0][: -len("data.pkl")]
    big = _read_entry(z, prefix + "byteorder", name, default=b"little").strip() == b"big"
    cache: dict = {}

    def storage(key, kind, numel, _view):
        if key not in cache:
            raw = _read_entry(z, f"{prefix}data/{key}", name)
            cache[key] = _typed(raw, kind, numel, big, key, name)
        return cache[key]

    return _unpickle(_read_entry(z, pkl[0], name), storage, name)[0]


def _read_entry(z: zipfile.ZipFile, entry: str, name: str, default: bytes | None = None) -> bytes:
    try:
        return z.read(entry)
    except KeyError:
        if default is not None:
            return default
        raise CheckpointError(f"graphnn.load: {name}: the archive has no {entry} (truncated or damaged)") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise CheckpointError(f"graphnn.load: {name}: cannot read {entry} ({e})") from None


# -- the legacy format ---------------------------------------------------------------------------------------------
def is_legacy(data: bytes) -> bool:
    """Does data start with the pickled magic number of torch's legacy format?"""
    return data[:2] == b"\x80\x02" and data[2:3] == b"\x8a" and data[4:14] == LEGACY_MAGIC.to_bytes(10, "little")


def load_legacy(data: bytes, name: str):
    none = lambda *a: None  # noqa: E731  (the headers refer to no storage)
    magic, pos = _unpickle(data, none, name)
    protocol, pos = _unpickle(data, none, name, pos)
    info, pos = _unpickle(data, none, name, pos)
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL or not isinstance(info, dict):
        raise CheckpointError(f"graphnn.load: {name}: not a torch.save file of a known version")
    big = not info.get("little_endian", True)
    kinds: dict = {}  # key -> (storage type, numel, view metadata), found by a first pass over the main pickle

    def note(key, kind, numel, view):
        kinds[key] = (kind, numel, view)
        return _Probe()

    main_at = pos
    _, pos = _unpickle(data, note, name, main_at)
    keys, pos = _unpickle(data, none, name, pos)
    storages = _legacy_storages(data, pos, keys, kinds, big, name)

    def storage(key, kind, numel, view):
        if view is None:
            return storages[key]
        _view_key, offset, size = view  # (old files: a storage that is a slice of another)
        root = storages[key]
        return Storage(root.array[offset : offset + size], root.torch_dtype)

    return _unpickle(data, storage, name, main_at)[0]


def _legacy_storages(data: bytes, pos: int, keys, kinds: dict, big: bool, name: str) -> dict:
    """The storages after the pickles: per key in order, an int64 element count then the elements."""
    out = {}
    for key in keys if isinstance(keys, list) else []:
        key = str(key)
        if key not in kinds or pos + 8 > len(data):
            raise CheckpointError(f"graphnn.load: {name}: truncated or damaged storage table")
        kind = kinds[key][0]
        if kind.name in UNSUPPORTED_STORAGES:
            _np_dtype(UNSUPPORTED_STORAGES[kind.name])
        (numel,) = struct.unpack("<q" if not big else ">q", data[pos : pos + 8])
        itemsize = np.dtype(STORAGE_DTYPES[kind.name][0]).itemsize
        end = pos + 8 + numel * itemsize
        if numel < 0 or end > len(data):
            raise CheckpointError(f"graphnn.load: {name}: storage {key} is truncated")
        out[key] = _typed(data[pos + 8 : end], kind, numel, big, key, name)
        pos = end
    missing = [k for k in kinds if k not in out]
    if missing:
        raise CheckpointError(f"graphnn.load: {name}: storages {missing[:3]} are missing (truncated or damaged)")
    return out
