"""graphnn.save / graphnn.load: pickle-free checkpoints (safetensors with the object's structure in its metadata),
resuming training from them, files written by torch.save (zip and legacy formats) read without running pickled
code, and damaged, foreign or malicious files refused with clear errors."""

import collections
import io
import warnings
import json
import math
import os
import pathlib
import pickle
import struct
import zipfile

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.optim as goptim
from graphnn import CheckpointError
from tolerance import assert_close, recorded_bounds


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _equal(a, b, path="obj"):
    """Same structure (container types, keys, order), same values; tensors: same dtype, shape and bits."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, graphnn.Tensor):
        assert a.dtype_name == b.dtype_name and a.requires_grad == b.requires_grad, path
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=path)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _equal(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _equal(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


def _objects():
    x = graphnn.arange(12).float().view(3, 4)
    shared = graphnn.randn(2, 2)
    opt = goptim.Adam([gnn.Parameter(graphnn.randn(3))], lr=0.01)
    opt.param_groups[0]["params"][0].grad = graphnn.ones(3)
    opt.step()
    return {
        "tensor": x,
        "transposed": x.t(),
        "dtypes": [graphnn.randn(3).double(), graphnn.tensor([1, -2]), graphnn.tensor([True, False])],
        "zero_d": graphnn.tensor(2.5),
        "empty": graphnn.zeros(0, 3),
        "state_dict": gnn.Linear(3, 2).state_dict(),
        "optimizer": opt.state_dict(),
        "nested": {1: [None, (1, 2.5, "s", True)], (2, "k"): {"deep": [shared, shared]}, "b": b"\x00\xff"},
        "floats": [math.inf, -math.inf, math.nan, 1e-310, -0.0],
        "param": gnn.Parameter(graphnn.ones(2)),
        "frozen_param": gnn.Parameter(graphnn.ones(2), requires_grad=False),
        "needs_grad": graphnn.ones(2, requires_grad=True),
        "numpy": np.arange(6, dtype=np.float32).reshape(2, 3),
        "counter": collections.Counter([3, 3, 5]),
        "set": {1, 2},
        "big_int": 2**70,
    }


@pytest.mark.parametrize("target", ["path", "pathlib", "file"])
def test_round_trip(tmp_path, target):
    obj = _objects()
    path = tmp_path / "ckpt.pt"
    if target == "file":
        buf = io.BytesIO()
        graphnn.save(obj, buf)
        back = graphnn.load(io.BytesIO(buf.getvalue()))
    else:
        graphnn.save(obj, str(path) if target == "path" else path)
        back = graphnn.load(str(path) if target == "path" else pathlib.Path(path))
    _equal(back, obj)
    deep = back["nested"][(2, "k")]["deep"]
    assert deep[0] is deep[1]  # one tensor saved once, loaded once
    assert isinstance(back["param"], gnn.Parameter) and back["param"].requires_grad
    assert isinstance(back["state_dict"], collections.OrderedDict)


def _read_safetensors(blob: bytes) -> tuple:
    """An independent reader of the safetensors layout: (metadata, {name: array})."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__")
    kinds = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "BOOL": "?"}
    data = blob[8 + n :]
    out = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(data[a:b], kinds[h["dtype"]]).reshape(h["shape"])
    assert (8 + n) % 8 == 0
    return meta, out


def test_file_is_safetensors_with_state_dict_names():
    model = gnn.Sequential(gnn.Linear(3, 4), gnn.ReLU(), gnn.Linear(4, 2))
    buf = io.BytesIO()
    graphnn.save(model.state_dict(), buf)
    meta, arrays = _read_safetensors(buf.getvalue())
    assert meta["format"] == "graphnn"
    assert list(arrays) == list(model.state_dict())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(arrays[k], v.numpy())
    # a plain safetensors file (no graphnn structure) loads as a dict of tensors
    blob = buf.getvalue()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    del header["__metadata__"]
    head = json.dumps(header).encode()
    plain = graphnn.load(io.BytesIO(struct.pack("<Q", len(head)) + head + blob[8 + n :]))
    _equal(dict(plain), dict(model.state_dict()))


def test_save_pickles_other_objects_which_load_needs_weights_only_false_for(tmp_path):
    """A whole Module (torch.save(model, f), as the word language model example saves its best model) is pickled;
    loading it runs code, so, as with PyTorch's torch.load, only weights_only=False loads it."""
    with pytest.raises(TypeError, match=r"cannot save a function \(at layers.1\).*nor can it be pickled"):
        graphnn.save({"layers": [1, lambda: 0]}, io.BytesIO())
    model = gnn.Sequential(gnn.Linear(2, 3), gnn.ReLU())
    with open(tmp_path / "model.pt", "wb") as f:
        graphnn.save(model, f)
    with pytest.raises(graphnn.CheckpointError, match=r"holds pickled Python objects .* Pass weights_only=False"):
        graphnn.load(tmp_path / "model.pt")
    with open(tmp_path / "model.pt", "rb") as f:
        loaded = graphnn.load(f, weights_only=False)
    assert repr(loaded) == repr(model)
    _equal(dict(loaded.state_dict()), dict(model.state_dict()))
    x = graphnn.randn(4, 2)
    assert (loaded(x).detach().numpy() == model(x).detach().numpy()).all()
    blob = (tmp_path / "model.pt").read_bytes()
    with pytest.raises(graphnn.CheckpointError, match="cannot unpickle"):
        graphnn.load(io.BytesIO(blob[: len(blob) // 2]), weights_only=False)


def test_training_resumes_from_a_checkpoint(tmp_path):
    """Model, optimizer and epoch saved mid-training; a fresh model and optimizer loading them continue exactly as
    the original run (compiled steps on both sides)."""

    def make(seed):
        graphnn.manual_seed(seed)
        m = gnn.Sequential(gnn.Linear(4, 8), gnn.Tanh(), gnn.Linear(8, 1)).double()
        return m, goptim.RMSprop(m.parameters(), lr=0.01, momentum=0.9)

    def stepper(m, opt):
        @graphnn.compile
        def step(x, y):
            opt.zero_grad()
            loss = gnn.functional.mse_loss(m(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    r = np.random.default_rng(0)
    batches = [(graphnn.tensor(r.standard_normal((5, 4))), graphnn.tensor(r.standard_normal((5, 1)))) for _ in range(6)]
    m1, o1 = make(0)
    s1 = stepper(m1, o1)
    for x, y in batches[:3]:
        s1(x, y)
    graphnn.save({"model": m1.state_dict(), "optimizer": o1.state_dict(), "epoch": 3}, tmp_path / "c.pt")
    m2, o2 = make(1)
    ck = graphnn.load(tmp_path / "c.pt")
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["optimizer"])
    assert ck["epoch"] == 3
    s2 = stepper(m2, o2)
    for x, y in batches[3:]:
        assert s1(x, y).item() == s2(x, y).item()
    _equal(m2.state_dict(), m1.state_dict())


# -- files written by torch.save ----------------------------------------------------------------------------------------
def _torch_objects(torch):
    torch.manual_seed(0)
    x = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    return {
        "x": x,
        "row": x[1],  # shares x's storage, at an offset
        "t": x.t(),  # non-contiguous
        "strided": x[1:, ::2],  # offset and strides
        "dtypes": {
            str(d): (torch.arange(-3, 3) * 1.25).to(d)
            for d in (torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16, torch.int8)
        },
        "uint8": torch.arange(250, 256, dtype=torch.uint8),
        "bool": torch.tensor([[True], [False]]),
        "zero_d": torch.tensor(3.5),
        "empty": torch.zeros(0, 2),
        "param": torch.nn.Parameter(torch.ones(2)),
        "requires_grad": torch.ones(3, requires_grad=True),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "containers": [(1, 2.5, None, "s", b"\x01"), collections.OrderedDict(a=[x, {"k": True}]), torch.Size([2, 3])],
    }


def _check_against_torch(torch, got, want, path="obj"):
    if isinstance(want, torch.Tensor):
        assert isinstance(got, graphnn.Tensor), path
        expect = want.detach()
        if expect.dtype in (torch.float16, torch.bfloat16):
            expect = expect.float()
        expect = expect.numpy()
        assert got.shape == tuple(expect.shape), path
        assert (
            got.dtype_name
            == {"f": "float32" if expect.itemsize <= 4 else "float64", "i": "int64", "u": "int64", "b": "bool"}[
                expect.dtype.kind
            ]
        ), path
        np.testing.assert_array_equal(got.detach().numpy(), expect, err_msg=path)
        assert got.requires_grad == want.requires_grad, path
        assert isinstance(got, gnn.Parameter) == isinstance(want, torch.nn.Parameter), path
    elif isinstance(want, dict):
        assert type(got).__name__ == type(want).__name__ and list(got) == list(want), path
        for k in want:
            _check_against_torch(torch, got[k], want[k], f"{path}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, tuple if isinstance(want, tuple) else list) and len(got) == len(want), path
        for i, (a, b) in enumerate(zip(got, want)):
            _check_against_torch(torch, a, b, f"{path}[{i}]")
    else:
        assert got == want and type(got) is type(want), path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_reads_torch_save(torch, tmp_path, legacy):
    obj = _torch_objects(torch)
    path = tmp_path / "t.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    got = graphnn.load(path)
    _check_against_torch(torch, got, obj)
    assert got["model"]._metadata == obj["model"]._metadata  # the state_dict's version metadata


def test_torch_checkpoint_loads_into_graphnn_and_training_continues(torch, tmp_path):
    """A model and Adam state saved by PyTorch: graphnn loads them and its next steps equal PyTorch's."""
    from parity_util import compare_params, steps_tolerance, close

    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).double()
    topt = torch.optim.Adam(t.parameters(), lr=0.01)
    r = np.random.default_rng(1)
    batches = [(r.standard_normal((8, 4)), r.standard_normal((8, 2))) for _ in range(5)]

    def t_step(x, y):
        topt.zero_grad()
        loss = torch.nn.functional.mse_loss(t(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        topt.step()
        return loss

    for x, y in batches[:2]:
        t_step(x, y)
    torch.save({"model": t.state_dict(), "opt": topt.state_dict()}, tmp_path / "t.pt")
    ck = graphnn.load(tmp_path / "t.pt")
    g = gnn.Sequential(gnn.Linear(4, 6), gnn.Tanh(), gnn.Linear(6, 2)).double()
    g.load_state_dict(ck["model"])
    gopt = goptim.Adam(g.parameters(), lr=0.5)
    gopt.load_state_dict(ck["opt"])

    @graphnn.compile
    def g_step(x, y):
        gopt.zero_grad()
        loss = gnn.functional.mse_loss(g(x), y)
        loss.backward()
        gopt.step()
        return loss

    for n, (x, y) in enumerate(batches[2:], 1):
        t_loss = t_step(x, y)
        close(g_step(graphnn.tensor(x), graphnn.tensor(y)), t_loss, "loss", steps_tolerance(t_loss, 120 * n))
    compare_params(g, t, 120 * 3)


# -- bad files ------------------------------------------------------------------------------------------------------------
class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _zip_with(pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def _legacy_with(pkl: bytes) -> bytes:
    head = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    return b"".join(pickle.dumps(h, protocol=2) for h in head) + pkl + pickle.dumps([], protocol=2)


@pytest.mark.parametrize("wrap", ["zip", "legacy"])
def test_a_pickle_asking_for_os_system_does_not_run(tmp_path, wrap):
    marker = tmp_path / "ran"
    pkl = pickle.dumps({"weights": _Evil(marker)}, protocol=2)
    blob = _zip_with(pkl) if wrap == "zip" else _legacy_with(pkl)
    with pytest.raises(CheckpointError, match=r"refusing to load .*: the file asks for posix\.system"):
        graphnn.load(io.BytesIO(blob))
    assert not marker.exists()
    # a bare pickle is not a checkpoint: refused before any unpickling
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        graphnn.load(io.BytesIO(pkl))
    assert not marker.exists()


class State:
    pass


def test_other_refused_pickles(torch, tmp_path):
    s = State()
    s.x = 1
    with pytest.raises(CheckpointError, match="the file asks for test_checkpoint.State"):
        graphnn.load(io.BytesIO(_zip_with(pickle.dumps(s, protocol=2))))
    buf = io.BytesIO()
    with warnings.catch_warnings():  # (PyTorch: "ComplexHalf support is experimental")
        warnings.simplefilter("ignore")
        torch.save({"c": torch.ones(2, dtype=torch.complex32)}, buf)
    with pytest.raises(CheckpointError, match="complex32 tensor, which graphnn cannot represent"):
        graphnn.load(io.BytesIO(buf.getvalue()))


def test_a_trusted_torch_file_loads_numpy_arrays_and_plain_objects(torch):
    """torch.save of a checkpoint holding NumPy arrays and the program's own objects: refused by default (as
    PyTorch's weights-only loader refuses it), loaded with weights_only=False."""
    s = State()
    s.x = 3
    buf = io.BytesIO()
    mean = np.linspace(0, 1, 5)
    torch.save({"w": torch.ones(2, 3), "mean": mean, "state": s}, buf)
    with pytest.raises(CheckpointError, match="pass it for a file you trust"):
        graphnn.load(io.BytesIO(buf.getvalue()))
    got = graphnn.load(io.BytesIO(buf.getvalue()), weights_only=False)
    np.testing.assert_array_equal(got["mean"], mean)
    assert got["state"].x == 3 and got["w"].tolist() == [[1.0] * 3] * 2


def test_damaged_files(torch, tmp_path):
    buf = io.BytesIO()
    graphnn.save({"w": graphnn.randn(100)}, buf)
    ours = buf.getvalue()
    tbuf = io.BytesIO()
    torch.save({"w": torch.randn(100)}, tbuf)
    tlegacy = io.BytesIO()
    torch.save({"w": torch.randn(100)}, tlegacy, _use_new_zipfile_serialization=False)
    cases = {
        "empty": (b"", "is empty"),
        "truncated graphnn file": (ours[:-50], "truncated"),
        "truncated header": (ours[:20], "not a checkpoint"),
        "truncated torch zip": (tbuf.getvalue()[: len(tbuf.getvalue()) // 2], "damaged zip archive|truncated|damaged"),
        "truncated legacy file": (tlegacy.getvalue()[:-100], "truncated"),
        "foreign file": (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a checkpoint"),
        "text": (b"hello world, not a tensor file\n", "not a checkpoint"),
        "zip without data.pkl": (_zip_of({"a/other.txt": b"x"}), "without data.pkl"),
        "damaged structure": (ours.replace(b"graphnn.structure", b"graphnn.structurX"), None),
    }
    for what, (blob, msg) in cases.items():
        if msg is None:  # without its structure the file is still a valid safetensors file of named tensors
            assert list(graphnn.load(io.BytesIO(blob))) == ["w"]
            continue
        with pytest.raises(CheckpointError, match=msg):
            graphnn.load(io.BytesIO(blob))
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt is empty"):
        graphnn.load(p)
    with pytest.raises(FileNotFoundError, match="cannot read"):
        graphnn.load(tmp_path / "missing.pt")


def _zip_of(entries: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in entries.items():
            z.writestr(k, v)
    return buf.getvalue()


def test_load_of_a_directory_is_an_export(tmp_path):
    net = gnn.Sequential(gnn.Linear(3, 2))
    x = graphnn.randn(1, 3)
    graphnn.export(net, x, str(tmp_path / "exp"), name="tiny")
    model = graphnn.load(str(tmp_path / "exp"))
    assert type(model).__name__ == "ExportedModel"
    out = net(x)
    bound = recorded_bounds([out]).tol(0)  # the export and eager graphnn evaluate the same formulas
    assert_close(model(x.numpy()), out.detach().numpy(), bound, "exported output")
