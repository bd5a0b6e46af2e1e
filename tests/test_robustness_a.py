"""Robustness against hostile or unusual input (adversarial-test findings): read-only parameter memory under a
compiled training step, closed and damaged exports, zero-length recurrences, window arguments that used to
divide by zero, and bad GRAPHNN_NUM_THREADS values. Every case ends in a clear Python exception naming the op
or layer and the offending value, or works; the cases that used to crash the interpreter run in a subprocess,
so that a signal fails the test instead of the test run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from graphnn import ExportError
from tolerance import assert_close, recorded_bounds
from train_steps import sum_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(code: str, **env) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (with the repository and tests/ importable)."""
    path = os.pathsep.join([ROOT, os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=path, **env),
    )


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit code {proc.returncode} (negative: a signal)\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.rstrip().endswith("ok"), proc.stdout
    return proc.stdout


# -- read-only parameter memory under a compiled step (C1) -----------------------------------------------------
def test_compiled_step_refuses_a_read_only_memory_map(tmp_path):
    """A Parameter over np.load(mmap_mode='r') used to make the compiled step write into read-only pages: SIGSEGV."""
    _ok(
        _script(f"""
        import numpy as np, graphnn as g
        np.save({str(tmp_path / "w.npy")!r}, np.ones((3, 4), np.float32))
        w = g.nn.Parameter(g.from_numpy(np.load({str(tmp_path / "w.npy")!r}, mmap_mode="r")))
        opt = g.optim.SGD([w], lr=0.1)

        @g.compile
        def step(x):
            opt.zero_grad(); l = (x @ w.t()).sum(); l.backward(); opt.step(); return l
        for _ in range(2):  # the check holds on the path that reuses the bound arrays too
            try:
                step(g.ones(2, 4))
                raise SystemExit("no error")
            except ValueError as e:
                assert "read-only" in str(e) and "updated in place" in str(e) and "parameter" in str(e), e
        assert (np.load({str(tmp_path / "w.npy")!r}) == 1).all()
        print("ok")
    """)
    )


def test_compiled_step_never_writes_into_an_immutable_bytes_object():
    """np.frombuffer(bytes) is read-only: the step used to rewrite the immutable bytes object silently."""
    _ok(
        _script("""
        import numpy as np, graphnn as g
        buf = bytes(48)
        net = g.nn.Linear(4, 3)
        net.weight = g.nn.Parameter(g.from_numpy(np.frombuffer(buf, np.float32).reshape(3, 4)))
        opt = g.optim.SGD(net.parameters(), lr=1.0)

        @g.compile
        def step(x):
            opt.zero_grad(); l = net(x).sum(); l.backward(); opt.step(); return l
        try:
            step(g.ones(2, 4))
            raise SystemExit("no error")
        except ValueError as e:
            assert "read-only" in str(e), e
        assert buf == bytes(48)
        cnet = g.compile(net)  # a compiled module's forward reads the weight and never writes it: fine
        cnet(g.ones(2, 4)).sum().backward()
        print("ok")
    """)
    )


def test_read_only_parameter_is_named_and_a_writeable_copy_works():
    net = nn.Linear(4, 3)
    ro = np.ones((3, 4), np.float32)
    ro.flags.writeable = False
    net.weight = nn.Parameter(graphnn.from_numpy(ro))
    step = graphnn.compile(sum_step(net, graphnn.optim.SGD(net.parameters(), lr=0.5)))
    with pytest.raises(ValueError, match=r"parameter '[^']+' is updated in place .* read-only \(float32\[3, 4\]"):
        step(graphnn.ones(2, 4))
    assert (ro == 1).all()
    net.weight.data = graphnn.from_numpy(np.array(ro))  # a writeable copy: the guard retraces
    for _ in range(3):
        step(graphnn.ones(2, 4))
    np.testing.assert_array_equal(net.weight.detach().numpy(), np.full((3, 4), 1 - 3 * 0.5 * 2, np.float32))


def test_read_only_writeback_names_the_module_parameter():
    """The graph input of a compiled module's parameter carries its name: the error names it."""
    from graphnn.codegen import CompiledGraph
    from graphnn.ir import Graph, TensorType

    g = Graph("update")
    w = g.add_input(TensorType((2, 3), "float32"), "fc.weight", "param")
    g.outputs = [g.emit("mul", w, g.emit("full", shape=(), dtype="float32", value=2.0))]
    g.meta["writeback"] = {0: 0}
    c = CompiledGraph(g)
    a = np.ones((2, 3), np.float32)
    c([a])
    c([a])  # the same array again: bound already, written again
    np.testing.assert_array_equal(a, np.full((2, 3), 4.0, np.float32))
    b = a.copy()
    b.flags.writeable = False
    with pytest.raises(ValueError, match=r"parameter 'fc\.weight' is updated in place.*read-only"):
        c([b])  # a new read-only array is refused when it is bound


# -- closed and damaged exports (W8) ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def linear_export(tmp_path_factory):
    graphnn.manual_seed(0)
    path = str(tmp_path_factory.mktemp("robust") / "lin")
    graphnn.export(nn.Linear(3, 2), graphnn.randn(1, 3), path)
    return path


def _copy(src: str, dst) -> str:
    dst = str(dst)
    shutil.copytree(src, dst)
    return dst


def test_every_method_of_a_closed_export_raises(linear_export, tmp_path):
    path = _copy(linear_export, tmp_path / "m")
    before = open(os.path.join(path, "weights.bin"), "rb").read()
    m = graphnn.load(path)
    w = m.weights()
    assert not m.closed and w["bias"].any()
    m.close()
    m.close()  # closing twice is fine
    assert m.closed and "closed" in repr(m)
    for call in (
        m.weights,
        m.weights_blob,
        m.save_weights,
        lambda: m.save_weights(str(tmp_path / "w.npz")),
        lambda: m.load_weights(path),
        lambda: m(np.ones((1, 3), np.float32)),
    ):
        with pytest.raises(ExportError, match="the model was closed"):
            call()
    assert open(os.path.join(path, "weights.bin"), "rb").read() == before  # not overwritten with zeros
    assert not os.path.exists(tmp_path / "w.npz")
    np.testing.assert_array_equal(graphnn.load(path).weights()["bias"], w["bias"])


def test_native_return_codes_are_checked(linear_export, tmp_path):
    m = graphnn.load(_copy(linear_export, tmp_path / "m"))
    native = m._native
    m._native = type(
        "Failing",
        (),
        {
            "get_weights": staticmethod(lambda ctx, buf: -1),
            "set_weights": staticmethod(lambda ctx, blob, n: -2),
            "run": staticmethod(lambda ctx, *ptrs: 3),
        },
    )()
    try:
        with pytest.raises(ExportError, match=r"linear_get_weights failed with return code -1"):
            m.weights()
        with pytest.raises(ExportError, match=r"linear_set_weights failed with return code -2 \(the weights blob"):
            m.load_weights(linear_export)
        with pytest.raises(ExportError, match=r"linear_forward failed with return code 3"):
            m(np.ones((1, 3), np.float32))
    finally:
        m._native = native


def _relist(path: str, edit) -> None:
    """Apply edit(manifest) and rewrite every listed file's size and checksum, so only the damage remains."""
    mp = os.path.join(path, "manifest.json")
    m = json.load(open(mp))
    edit(m, path)
    for fname in m["files"]:
        if os.path.isfile(os.path.join(path, fname)):
            data = open(os.path.join(path, fname), "rb").read()
            m["files"][fname] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    json.dump(m, open(mp, "w"))


def _object_only(m: dict, path: str) -> None:
    """Drop the shared library: graphnn.load links the object file itself (with LLVM)."""
    if m.get("library"):
        os.remove(os.path.join(path, m["library"]))
        del m["files"][m["library"]]
        m["library"] = None


def test_object_only_export_still_loads(linear_export, tmp_path):
    path = _copy(linear_export, tmp_path / "m")
    _relist(path, _object_only)
    m = graphnn.load(path)
    assert m._native.kind == "object"
    want = graphnn.load(linear_export)
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(m(x), want(x))  # the same code


def _damage_object(kind: str):
    def edit(m: dict, path: str) -> None:
        _object_only(m, path)
        obj = os.path.join(path, m["object"])
        data = bytearray(open(obj, "rb").read())
        if kind == "garbage":
            data = bytearray(np.random.default_rng(0).integers(0, 256, 600, dtype=np.uint8).tobytes())
        elif kind == "elf_header_only":
            data = data[:64] + bytes(500)
        elif kind == "truncated":
            data = data[: len(data) // 2]
        elif kind == "strtab_unterminated":  # section 1 (.strtab) one byte shorter: its last byte is not NUL
            shoff = int.from_bytes(data[0x28:0x30], "little")
            size_at = shoff + 64 + 32
            size = int.from_bytes(data[size_at : size_at + 8], "little")
            data[size_at : size_at + 8] = (size - 1).to_bytes(8, "little")
        elif kind == "relocation_moved":  # the first relocation moved onto bytes of code (a huge implicit addend)
            import struct

            (shoff,) = struct.unpack_from("<Q", data, 0x28)
            (shnum,) = struct.unpack_from("<H", data, 0x3C)
            for k in range(shnum):
                _n, typ, _f, _a, off, size, _l, _i, _al, _es = struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * k)
                if typ == 4 and size:
                    r_offset, r_info = struct.unpack_from("<QQ", data, off)
                    struct.pack_into("<QQ", data, off, max(r_offset - 6, 0), (r_info & ~0xFFFFFFFF) | 2)  # PC32
                    break
        open(obj, "wb").write(bytes(data))

    return edit


@pytest.mark.parametrize("kind", ["garbage", "elf_header_only", "truncated", "strtab_unterminated", "relocation_moved"])
def test_damaged_object_file_is_refused_without_crashing(linear_export, tmp_path, kind):
    """With the manifest's checksums matching, LLVM used to be handed any bytes: it crashed (SIGSEGV) or aborted
    on an assertion. The ELF structure is now checked first."""
    path = _copy(linear_export, tmp_path / "m")
    _relist(path, _damage_object(kind))
    proc = _script(f"""
        import graphnn
        try:
            graphnn.load({path!r})
            print("loaded")
        except graphnn.ExportError as e:
            print("refused:", e)
        print("ok")
    """)
    out = _ok(proc)
    assert "refused:" in out and "cannot load the export's native code" in out and "lin" in out, out


def _damage_library(kind: str):
    def edit(m: dict, path: str) -> None:
        import struct

        lib = os.path.join(path, m["library"])
        data = bytearray(open(lib, "rb").read())
        (phoff,) = struct.unpack_from("<Q", data, 0x20)
        _, phnum = struct.unpack_from("<HH", data, 0x36)
        phdrs = [struct.unpack_from("<IIQQQQ", data, phoff + 56 * k) for k in range(phnum)]
        dyn_off, dyn_size = next((off, size) for typ, _f, off, _va, _pa, size in phdrs if typ == 2)  # PT_DYNAMIC
        if kind == "truncated":  # cut right after the dynamic table, inside the last segment the loader maps
            assert dyn_off + dyn_size < max(off + size for typ, _f, off, _va, _pa, size in phdrs if typ == 1)
            data = data[: dyn_off + dyn_size]
        else:  # a dynamic-table pointer (the symbol table's) far outside the library: the loader follows it
            for e in range(dyn_off, dyn_off + dyn_size, 16):
                if struct.unpack_from("<q", data, e)[0] == 6:  # DT_SYMTAB
                    struct.pack_into("<Q", data, e + 8, 0x7FFF00000000)
        open(lib, "wb").write(bytes(data))

    return edit


@pytest.mark.parametrize("kind", ["truncated", "symtab_pointer"])
def test_damaged_library_never_crashes_the_loading_process(linear_export, tmp_path, kind):
    """The system loader trusts the library's headers: a truncated library, or one whose dynamic table points
    outside it, used to kill the process in graphnn.load (SIGSEGV/SIGBUS). Now it is refused with a clear error,
    or (when only the loader's probe fails) the export's object file is linked instead."""
    if not json.load(open(os.path.join(linear_export, "manifest.json"))).get("library"):
        pytest.skip("no C compiler: the export has no library")
    path = _copy(linear_export, tmp_path / "m")
    _relist(path, _damage_library(kind))
    out = _ok(
        _script(f"""
        import numpy as np, graphnn
        try:
            m = graphnn.load({path!r})
            print("loaded", m._native.kind, m(np.ones((1, 3), np.float32)).shape)
        except graphnn.ExportError as e:
            print("refused:", e)
        print("ok")
    """)
    )
    if kind == "truncated":
        assert "refused:" in out and "a segment lies outside the file" in out, out
    else:
        assert "loaded object (1, 2)" in out, out


def test_library_and_object_from_another_export_are_refused(linear_export, tmp_path):
    other = str(tmp_path / "other")
    graphnn.export(nn.Linear(5, 2), graphnn.randn(1, 5), other)  # same name "linear", another layout
    path = _copy(linear_export, tmp_path / "m")

    def swap(m, p):
        for f in (m["object"], m.get("library")):
            if f:
                shutil.copy(os.path.join(other, f), os.path.join(p, f))

    _relist(path, swap)
    with pytest.raises(ExportError, match="does not describe the compiled code"):
        graphnn.load(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m, p: m["files"]["graph.json"].update(bytes=2**62), "graph.json is truncated"),  # read 4 EiB
        (lambda m, p: m["files"]["weights.bin"].update(bytes=-1), "lacks a checksum or size"),
        (lambda m, p: m["inputs"][0].update(dtype=["float32"]), "unknown dtype"),  # used to be unhashable
        (lambda m, p: m["weights"].update(file=["weights.bin"]), "bad weights entry"),
        (lambda m, p: m["inputs"][0].update(shape=[True, 3]), "bad shape"),
        (lambda m, p: m["target"].update(features="garbage,,+"), "bad target features"),
        (lambda m, p: m.update(entry="free"), "no entry points"),
        (lambda m, p: m.update(object=["linear.o"]), "object file not listed"),
    ],
)
def test_malformed_manifest_is_a_clear_error(linear_export, tmp_path, edit, message):
    path = _copy(linear_export, tmp_path / "m")
    mp = os.path.join(path, "manifest.json")
    m = json.load(open(mp))
    edit(m, path)
    json.dump(m, open(mp, "w"))
    with pytest.raises(ExportError, match=message):
        graphnn.load(path)


def test_deeply_nested_manifest_is_a_clear_error(linear_export, tmp_path):
    path = _copy(linear_export, tmp_path / "m")
    open(os.path.join(path, "manifest.json"), "w").write("[" * 100000 + "]" * 100000)
    with pytest.raises(ExportError, match="corrupted manifest"):
        graphnn.load(path)


def test_truncated_weights_with_a_consistent_manifest_are_refused(linear_export, tmp_path):
    path = _copy(linear_export, tmp_path / "m")

    def truncate(m, p):
        os.truncate(os.path.join(p, "weights.bin"), 8)
        m["weights"]["nbytes"] = 8

    _relist(path, truncate)
    with pytest.raises(ExportError, match="outside the weights blob"):
        graphnn.load(path)


# -- zero-length recurrences (U1) ------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("compiled", [False, True])
def test_recurrent_layers_reject_an_empty_sequence(layer, compiled):
    m = layer(3, 4)
    run = graphnn.compile(m) if compiled else m
    with pytest.raises(
        RuntimeError, match=rf"{layer.__name__}: expected sequence length to be larger than 0.*\(0, 2, 3\)"
    ):
        run(graphnn.randn(0, 2, 3))
    bf = layer(3, 4, batch_first=True)
    with pytest.raises(RuntimeError, match="sequence length to be larger than 0"):
        (graphnn.compile(bf) if compiled else bf)(graphnn.randn(2, 0, 3))
    out = run(graphnn.randn(1, 0, 3))[0]  # an empty batch is fine
    assert tuple(out.shape) == (1, 0, 4)


def test_scan_of_length_zero_runs_no_steps():
    """As lax.scan: the final carries are the initial ones and the stacked outputs are empty, eager and compiled,
    and the gradient passes straight through to the initial carry."""

    def body(c, x):
        return c * 0.5 + x, c * x

    for run in (lambda f: f, graphnn.compile):
        final, ys = run(lambda c, xs: graphnn.scan(body, c, xs))(graphnn.ones(3), graphnn.randn(0, 3))
        np.testing.assert_array_equal(final.numpy(), np.ones(3, np.float32))
        assert tuple(ys.shape) == (0, 3)
    c = graphnn.ones(3, requires_grad=True)
    graphnn.scan(body, c, graphnn.randn(0, 3))[0].sum().backward()
    np.testing.assert_array_equal(c.grad.numpy(), np.ones(3, np.float32))


def test_recurrent_layer_sizes_are_checked():
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="num_layers must be greater than zero"):
        nn.GRU(3, 4, num_layers=0)
    with pytest.raises(TypeError, match="hidden_size should be of type int"):
        nn.RNN(3, 4.0)


# -- window arguments: strides, kernels, dilations, paddings, output sizes (U2) -------------------------------
X4 = (1, 2, 5, 5)


def _x():
    return graphnn.randn(*X4)


def _pooled():
    return F.max_pool2d(_x(), 2, return_indices=True)


BAD_ARGS = [
    (
        "conv stride 0",
        lambda: F.conv2d(_x(), graphnn.randn(2, 2, 2, 2), stride=0),
        r"conv\(.*non-positive stride \(0, 0\)",
    ),
    ("conv stride -1", lambda: F.conv2d(_x(), graphnn.randn(2, 2, 2, 2), stride=-1), r"non-positive stride"),
    (
        "conv dilation 0",
        lambda: F.conv2d(_x(), graphnn.randn(2, 2, 2, 2), dilation=0),
        r"dilation should be greater than zero",
    ),
    ("conv padding -1", lambda: F.conv2d(_x(), graphnn.randn(2, 2, 2, 2), padding=-1), r"negative padding"),
    ("conv groups 0", lambda: F.conv2d(_x(), graphnn.randn(2, 2, 2, 2), groups=0), r"non-positive groups 0"),
    ("conv kernel 0", lambda: F.conv2d(_x(), graphnn.randn(2, 2, 0, 2)), r"kernel size should be greater than zero"),
    (
        "conv kernel too big",
        lambda: F.conv2d(_x(), graphnn.randn(2, 2, 6, 6)),
        r"larger than the padded input \(5, 5\)",
    ),
    (
        "conv padding string",
        lambda: F.conv2d(_x(), graphnn.randn(2, 2, 2, 2), padding="foo"),
        r"conv2d: invalid padding string 'foo'",
    ),
    (
        "conv stride length",
        lambda: F.conv2d(_x(), graphnn.randn(2, 2, 2, 2), stride=(1, 1, 1)),
        r"conv2d: expected stride .* 2 values.*\(1, 1, 1\)",
    ),
    ("max_pool kernel 0", lambda: F.max_pool2d(_x(), 0), r"max_pool\(.*kernel size should be greater than zero"),
    ("max_pool stride 0", lambda: F.max_pool2d(_x(), 2, 0), r"max_pool\(.*non-positive stride \(0, 0\)"),
    ("max_pool dilation 0", lambda: F.max_pool2d(_x(), 2, dilation=0), r"dilation should be greater than zero"),
    ("max_pool padding -1", lambda: F.max_pool2d(_x(), 2, padding=-1), r"negative padding"),
    (
        "max_pool indices kernel 0",
        lambda: F.max_pool2d(_x(), 0, return_indices=True),
        r"kernel size should be greater than zero",
    ),
    (
        "max_pool1d kernel 0",
        lambda: F.max_pool1d(graphnn.randn(1, 2, 5), 0),
        r"kernel size should be greater than zero",
    ),
    ("MaxPool2d kernel 0", lambda: nn.MaxPool2d(0)(_x()), r"kernel size should be greater than zero"),
    (
        "avg_pool kernel 0",
        lambda: F.avg_pool2d(_x(), 0),
        r"avg_pool2d: kernel_size should be greater than zero, but got kernel_size=\(0, 0\)",
    ),
    ("avg_pool stride 0", lambda: F.avg_pool2d(_x(), 2, 0), r"avg_pool2d: stride should be greater than zero"),
    ("avg_pool stride -2", lambda: F.avg_pool2d(_x(), 2, -2), r"avg_pool2d: stride should be greater than zero"),
    ("avg_pool padding -1", lambda: F.avg_pool2d(_x(), 2, padding=-1), r"avg_pool2d: padding should be non-negative"),
    (
        "avg_pool divisor 0",
        lambda: F.avg_pool2d(_x(), 2, divisor_override=0),
        r"avg_pool2d: divisor_override must be not zero",
    ),
    ("avg_pool 1-d input", lambda: F.avg_pool2d(graphnn.randn(5), 2), r"avg_pool2d: expected a 3-d .* or 4-d .* input"),
    ("AvgPool2d kernel 0", lambda: nn.AvgPool2d(0)(_x()), r"avg_pool2d: kernel_size should be greater than zero"),
    (
        "max_unpool kernel 0",
        lambda: F.max_unpool2d(*_pooled(), 0),
        r"max_unpool2d: kernel_size should be greater than zero",
    ),
    (
        "max_unpool stride 0",
        lambda: F.max_unpool2d(*_pooled(), 2, 0),
        r"max_unpool2d: stride should be greater than zero",
    ),
    (
        "max_unpool padding too big",
        lambda: F.max_unpool2d(*_pooled(), 2, padding=3),
        r"max_unpool2d: output_size must contain non-negative",
    ),
    (
        "max_unpool output 0",
        lambda: F.max_unpool2d(*_pooled(), 2, output_size=(0, 0)),
        r"max_unpool2d: invalid output_size \(0, 0\) \(dim 0 must be between 2 and 6",
    ),
    ("max_unpool output too big", lambda: F.max_unpool2d(*_pooled(), 2, output_size=(9, 9)), r"invalid output_size"),
    ("max_unpool output length", lambda: F.max_unpool2d(*_pooled(), 2, output_size=(1, 5, 5)), r"2 or 4 elements"),
    (
        "interpolate size 0",
        lambda: F.interpolate(_x(), size=0),
        r"interpolate: input and output sizes should be greater than 0.*\(0, 0\)",
    ),
    ("interpolate size -1", lambda: F.interpolate(_x(), size=-1), r"sizes should be greater than 0"),
    (
        "interpolate scale 0",
        lambda: F.interpolate(_x(), scale_factor=0),
        r"interpolate: scale_factor must be positive and finite, got 0",
    ),
    ("interpolate scale 0.1", lambda: F.interpolate(_x(), scale_factor=0.1), r"sizes should be greater than 0"),
    ("interpolate scale nan", lambda: F.interpolate(_x(), scale_factor=float("nan")), r"positive and finite"),
    (
        "interpolate empty input",
        lambda: F.interpolate(graphnn.randn(1, 2, 0, 4), size=(3, 3)),
        r"sizes should be greater than 0",
    ),
    ("Upsample size 0", lambda: nn.Upsample(size=0)(_x()), r"sizes should be greater than 0"),
    ("upsample_bilinear size 0", lambda: F.upsample_bilinear(_x(), size=0), r"sizes should be greater than 0"),
    (
        "pad crops below 0",
        lambda: F.pad(_x(), (-3, -3)),
        r"pad: the input size 5, plus negative padding -3 and -3 .* negative output size",
    ),
    ("ZeroPad2d -3", lambda: nn.ZeroPad2d(-3)(_x()), r"negative output size"),
    (
        "pad replicate empty",
        lambda: F.pad(graphnn.randn(1, 2, 0), (1, 1), mode="replicate"),
        r"replicate padding of dimension 2",
    ),
    (
        "pixel_shuffle 0",
        lambda: F.pixel_shuffle(graphnn.randn(1, 4, 2, 2), 0),
        r"pixel_shuffle expects a positive integer upscale_factor, but got 0",
    ),
    ("pixel_shuffle 2-d", lambda: F.pixel_shuffle(graphnn.randn(4, 2), 2), r"at least 3 dimensions"),
]


def _raises(exc, pattern: str, call) -> None:
    """call() raises exc whose message proper matches pattern: only its first line (errors end with the user's
    source line, which here holds the pattern itself)."""
    with pytest.raises(exc) as err:
        call()
    first = str(err.value).splitlines()[0]
    assert re.search(pattern, first), f"{pattern!r} not in {first!r}"


@pytest.mark.parametrize("name, call, pattern", BAD_ARGS, ids=[c[0] for c in BAD_ARGS])
def test_bad_window_arguments_are_clear_value_errors(name, call, pattern):
    _raises(ValueError, pattern, call)


IN_COMPILED = [
    c for c in BAD_ARGS if c[0] in ("conv stride 0", "max_pool kernel 0", "avg_pool kernel 0", "interpolate size 0")
]


@pytest.mark.parametrize("name, call, pattern", IN_COMPILED, ids=[c[0] for c in IN_COMPILED])
def test_bad_window_arguments_inside_compiled_code(name, call, pattern):
    _raises(ValueError, pattern, graphnn.compile(lambda: call() * 1))


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: F.interpolate(graphnn.randn(4, 4), size=3), NotImplementedError, "only 3-d, 4-d and 5-d inputs"),
        (
            lambda: F.interpolate(graphnn.randn(1, 2, 4), size=3, mode="bilinear"),
            NotImplementedError,
            "bilinear mode needs a 4-d input",
        ),
        (lambda: F.interpolate(_x(), scale_factor=(2, 2, 2)), ValueError, "same number of spatial dimensions"),
        (lambda: F.pad(_x(), (1.5, 1)), TypeError, r"pad: padding must be a tuple of ints, got \(1.5, 1\)"),
        (lambda: nn.Conv2d(2, 2, 3, groups=0), ValueError, "Conv2d: groups must be a positive integer, got 0"),
        (lambda: nn.Conv2d(2, 2, 3, padding="foo"), ValueError, "Conv2d: invalid padding string 'foo'"),
        (lambda: nn.Conv2d(2, 2, 3, padding="same", stride=2), ValueError, "not supported for strided convolutions"),
        (lambda: nn.Linear(-1, 2), ValueError, "Linear: in_features and out_features must be non-negative"),
        (
            lambda: nn.PixelShuffle(0)(graphnn.randn(1, 4, 2, 2)),
            ValueError,
            r"upscale_factor, but got 0 \[in module PixelShuffle\]",
        ),
    ],
)
def test_bad_layer_arguments(call, exc, pattern):
    _raises(exc, pattern, call)


def test_valid_edge_arguments_still_work():
    x = _x()
    assert tuple(F.pad(x, (-3, -2)).shape) == (1, 2, 5, 0)  # cropped to nothing: allowed, as in PyTorch
    assert tuple(F.max_unpool2d(*_pooled(), 2, output_size=(5, 5)).shape) == (1, 2, 5, 5)
    assert tuple(F.max_unpool2d(*_pooled(), 2, padding=-1).shape) == (1, 2, 6, 6)  # PyTorch allows it too
    assert tuple(F.avg_pool2d(x, 2, divisor_override=-1).shape) == (1, 2, 2, 2)
    assert tuple(F.interpolate(x, size=(3, 7), mode="bilinear", align_corners=False).shape) == (1, 2, 3, 7)
    assert tuple(F.conv2d(x, graphnn.randn(2, 2, 2, 2), padding="same").shape) == X4


def test_zero_in_features_linear_is_a_bias_only_layer():
    """nn.Linear(0, 2) used to divide by zero in kaiming_uniform_; PyTorch builds it (warning that initializing a
    zero-element tensor is a no-op) and its forward on (N, 0) input is the bias."""
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        m = nn.Linear(0, 2)
    m.bias.data = graphnn.tensor([0.5, -1.0])
    x = graphnn.randn(3, 0)
    want = np.tile(np.array([0.5, -1.0], np.float32), (3, 1))
    np.testing.assert_array_equal(m(x).detach().numpy(), want)
    np.testing.assert_array_equal(graphnn.compile(m)(x).detach().numpy(), want)
    with pytest.warns(UserWarning, match="zero-element"):
        c = nn.Conv2d(0, 2, 1)
    assert tuple(c(graphnn.randn(1, 0, 3, 3)).shape) == (1, 2, 3, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        nn.init.xavier_uniform_(graphnn.empty(0, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.init.orthogonal_(graphnn.empty(3, 0))  # a silent no-op, as in PyTorch


def test_checked_conv_matches_eager_on_valid_arguments():
    """The argument checks change nothing for valid arguments (compiled within twice the eager bound)."""
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, dilation=2)
    x = graphnn.randn(2, 2, 9, 9)
    ref = conv(x)
    got = graphnn.compile(conv)(x)
    assert_close(got.detach().numpy(), ref.detach().numpy(), recorded_bounds([ref]).tol(0), "conv")


# -- GRAPHNN_NUM_THREADS (U5) ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expect",
    [
        ("abc", "default"),
        ("1.5", "default"),
        ("", "default"),
        ("0", "default"),
        ("-3", "default"),
        (" 2 ", 2),
        ("1000", 64),
        ("9" * 30, 64),
    ],
)
def test_bad_thread_count_in_the_environment_warns_and_falls_back(value, expect):
    proc = _script(
        """
        import os, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import graphnn
        print([str(w.message) for w in caught if "GRAPHNN_NUM_THREADS" in str(w.message)])
        print(graphnn.get_num_threads(), min(os.cpu_count() or 1, 64))
        print("ok")
    """,
        GRAPHNN_NUM_THREADS=value,
    )
    lines = _ok(proc).splitlines()
    messages, (threads, default) = eval(lines[-3]), map(int, lines[-2].split())
    assert threads == (default if expect == "default" else expect)
    if value.strip() in ("", "2"):
        assert messages == []
    else:
        assert len(messages) == 1 and repr(value) in messages[0], messages


def test_set_num_threads_checks_its_argument():
    before = graphnn.get_num_threads()
    try:
        with pytest.raises(TypeError, match="expects an int"):
            graphnn.set_num_threads(1.5)
        with pytest.raises(ValueError, match="at least 1"):
            graphnn.set_num_threads(0)
        graphnn.set_num_threads(10**30)  # more than the pool holds: all of it
        assert graphnn.get_num_threads() == 64
        graphnn.set_num_threads(np.int64(2))
        assert graphnn.get_num_threads() == 2
    finally:
        graphnn.set_num_threads(before)
