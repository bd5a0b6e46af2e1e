"""graphnn.export / graphnn.load: round trips in a fresh process, from C, object-only, training steps, bad artifacts."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.optim as optim
from graphnn.tools.cli import main
from graphnn.tools.data import make_dataset
from graphnn.tools.tutorial_net import Net
from tolerance import assert_close, recorded_bounds, sgd_trajectory
from train_steps import sgd_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _batches(batch=16, n=8, seed=3):
    images, labels = make_dataset(batch * n, seed=seed)
    return [
        (
            graphnn.from_numpy(images[i * batch : (i + 1) * batch]),
            graphnn.from_numpy(labels[i * batch : (i + 1) * batch]),
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """The tutorial Net after a few compiled SGD steps, exported as `lenet`, with in-process compiled outputs and
    their tolerance: twice the rounding-error bound of the eager forward (exports target other vector widths)."""
    graphnn.manual_seed(0)
    net = Net()
    step = graphnn.compile(sgd_step(net, momentum=0.9))
    for x, y in _batches()[:3]:
        step(x, y)
    x = np.random.default_rng(1).standard_normal((1, 1, 32, 32)).astype(np.float32)
    with graphnn.no_grad():
        ref = graphnn.compile(net)(graphnn.from_numpy(x)).numpy()
    tol = recorded_bounds([net(graphnn.from_numpy(x))]).tol(0)
    path = str(tmp_path_factory.mktemp("export") / "lenet")
    assert graphnn.export(net, graphnn.from_numpy(x), path, name="lenet") == path
    return {"path": path, "net": net, "x": x, "ref": ref, "tol": tol}


LOADER = r"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.endswith("tutorial_net"):
            raise ImportError(name + " is blocked in this process")

sys.meta_path.insert(0, Block())
import numpy as np
import graphnn

model = graphnn.load(sys.argv[1])
np.save(sys.argv[3], model(np.load(sys.argv[2], allow_pickle=False)))
try:
    import graphnn.tools.tutorial_net
    raise SystemExit("the model's module is importable")
except ImportError:
    pass
assert not [m for m in sys.modules if m.endswith("tutorial_net")], "the model's module was imported"
print(model)
"""


def test_round_trip_in_a_process_without_the_model_source(lenet, tmp_path):
    np.save(tmp_path / "x.npy", lenet["x"])
    res = subprocess.run(
        [sys.executable, "-I", "-c", LOADER, lenet["path"], str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "library" in res.stdout
    out = np.load(tmp_path / "y.npy")
    assert out.shape == (1, 10) and out.dtype == np.float32
    assert_close(out, lenet["ref"], lenet["tol"], "loaded model")


def test_manifest_and_header(lenet):
    m = json.load(open(os.path.join(lenet["path"], "manifest.json")))
    assert (
        m["format"] == "graphnn-export"
        and m["format_version"] == 1
        and m["graphnn_version"] == graphnn.version.graphnn_version
    )
    assert m["inputs"] == [{"name": "x", "shape": [1, 1, 32, 32], "dtype": "float32"}]
    assert m["outputs"] == [{"name": "output", "shape": [1, 10], "dtype": "float32"}]
    assert m["target"]["kind"] == "generic" and m["target"]["features"] == ""
    if m["target"]["triple"].startswith("x86_64"):
        assert m["target"]["cpu"] == "x86-64"
    assert set(m["files"]) == {"lenet.o", "lenet.h", "weights.bin", "liblenet.so", "graph.json"}
    names = [t["name"] for t in m["weights"]["tensors"]]
    assert names[:2] == ["conv1.weight", "conv1.bias"] and len(names) == 10
    header = open(os.path.join(lenet["path"], "lenet.h")).read()
    assert "int lenet_forward(void *ctx, const float *x, float *output);" in header
    assert "void *lenet_init(const void *weights, int64_t nbytes);" in header
    if shutil.which("objdump") and m["target"]["cpu"] == "x86-64":  # generic x86-64: no AVX registers
        asm = subprocess.run(["objdump", "-d", os.path.join(lenet["path"], "lenet.o")], capture_output=True, text=True)
        assert "xmm" in asm.stdout and "ymm" not in asm.stdout and "zmm" not in asm.stdout
    model = graphnn.load(lenet["path"])
    w = model.weights()
    np.testing.assert_array_equal(w["fc1.weight"], lenet["net"].fc1.weight.detach().numpy())


def test_host_target(lenet, tmp_path):
    graphnn.export(lenet["net"], graphnn.from_numpy(lenet["x"]), str(tmp_path / "host"), target="host")
    model = graphnn.load(str(tmp_path / "host"))
    assert model.manifest["target"]["kind"] == "host" and model.manifest["target"]["features"]
    assert_close(model(lenet["x"]), lenet["ref"], lenet["tol"], "host export")


def test_object_file_without_a_c_compiler(lenet, tmp_path, monkeypatch):
    monkeypatch.setenv("CC", os.path.join(str(tmp_path), "no-such-cc"))
    path = graphnn.export(lenet["net"], graphnn.from_numpy(lenet["x"]), str(tmp_path / "obj"), name="lenet")
    m = json.load(open(os.path.join(path, "manifest.json")))
    assert m["library"] is None and set(m["files"]) == {"lenet.o", "lenet.h", "weights.bin", "graph.json"}
    model = graphnn.load(path)
    assert "object" in repr(model)
    out = model(graphnn.from_numpy(lenet["x"]))  # graphnn tensors in, graphnn tensors out
    assert isinstance(out, graphnn.Tensor)
    np.testing.assert_array_equal(out.numpy(), graphnn.load(lenet["path"])(lenet["x"]))


def test_c_program_runs_the_export(lenet, tmp_path):
    from graphnn.artifact.export import find_cc

    cc = find_cc()
    if cc is None:
        pytest.skip("no C compiler")
    exe = str(tmp_path / "run_lenet")
    d = lenet["path"]
    build = subprocess.run(
        cc.split()
        + [
            "-O2",
            "-Wall",
            "-I",
            d,
            os.path.join(ROOT, "examples", "run_lenet.c"),
            "-L",
            d,
            "-llenet",
            f"-Wl,-rpath,{d}",
            "-o",
            exe,
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    lenet["x"].astype("<f4").tofile(tmp_path / "x.f32")
    res = subprocess.run(
        [exe, os.path.join(d, "weights.bin"), str(tmp_path / "x.f32")], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    printed = np.array([float(s) for s in res.stdout.split()])
    # printed with %.6f: within half a unit of the 6th decimal more
    assert_close(printed, lenet["ref"].ravel().astype(np.float64), lenet["tol"].ravel() + 5e-7, "C program")
    bad = subprocess.run([exe, os.path.join(d, "lenet.h"), str(tmp_path / "x.f32")], capture_output=True, text=True)
    assert bad.returncode == 1 and "expected" in bad.stderr


def test_train_step_export_updates_and_saves_weights(tmp_path):
    graphnn.manual_seed(5)
    net = Net()
    cstep = graphnn.compile(sgd_step(net, momentum=0.9))
    data = _batches(seed=4)
    graphnn.manual_seed(5)  # the same steps eagerly, with their rounding-error bounds
    _, loss_bounds, param_bounds = sgd_trajectory(Net(), nn.CrossEntropyLoss(), data[:4], 0.02, 0.9)
    cstep(*data[0])
    path = graphnn.export(cstep, data[1], str(tmp_path / "train"), mode="train_step", name="lenet")
    m = graphnn.load(path)
    assert [p["name"] for p in m.inputs] == ["x", "y"] and m.inputs[1]["dtype"] == "int64"
    assert m.outputs == [{"name": "loss", "shape": [], "dtype": "float32"}]
    kinds = {t["name"]: t["kind"] for t in m.manifest["weights"]["tensors"]}
    assert kinds["conv1.weight"] == "param" and kinds["conv1.weight.momentum_buffer"] == "state"
    for (x, y), bound in zip(data[1:4], loss_bounds[1:]):
        assert_close(m(x.numpy(), y.numpy()), cstep(x, y).item(), 2 * bound, "loss")
    w = m.weights()
    fc2 = [n for n, _ in net.named_parameters()].index("fc2.weight")
    assert_close(w["fc2.weight"], net.fc2.weight.detach().numpy(), 2 * param_bounds[fc2], "fc2.weight")
    assert m.save_weights() == m.path
    again = graphnn.load(path)  # the checksum of the rewritten weights.bin is updated
    for k, v in again.weights().items():
        np.testing.assert_array_equal(v, w[k], err_msg=k)
    x, y = data[4]
    assert again(x.numpy(), y.numpy()) == m(x.numpy(), y.numpy())
    m.save_weights(str(tmp_path / "w.npz"))
    again.load_weights(str(tmp_path / "w.npz"))
    for k, v in m.weights().items():
        np.testing.assert_array_equal(again.weights()[k], v, err_msg=k)
    with pytest.raises(graphnn.ExportError, match="expected"):
        again.load_weights(os.path.join(path, "lenet.h"))


def test_accumulated_gradients_are_state(tmp_path):
    """A step without zero_grad: .grad accumulates across calls inside the library too."""

    def model():
        graphnn.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    def make():
        m = model()
        opt = optim.SGD(m.parameters(), lr=0.1)
        crit = nn.CrossEntropyLoss()

        def step(x, y):
            loss = crit(m(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    x, y = graphnn.randn(5, 4), graphnn.tensor([0, 1, 2, 1, 0])
    exported = graphnn.load(graphnn.export(make(), (x, y), str(tmp_path / "acc"), mode="train_step"))
    eager = make()
    _, bounds, _ = sgd_trajectory(model(), nn.CrossEntropyLoss(), [(x, y)] * 3, 0.1, zero_grad=False)
    for bound in bounds:
        assert_close(exported(x, y).item(), eager(x, y).item(), 2 * bound, "loss")


def test_outputs_that_are_inputs_or_repeated_and_int_inputs(tmp_path):
    def f(a, n):
        s = a * 2.0
        return s, a, n + 1, s

    a, n = graphnn.randn(3, 4), graphnn.tensor([1, 2, 3])
    m = graphnn.load(graphnn.export(f, (a, n), str(tmp_path / "f"), link=False))
    outs = m(a.numpy(), n.numpy())
    for got, want in zip(outs, [a.numpy() * 2, a.numpy(), n.numpy() + 1, a.numpy() * 2]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="expects int64"):
        m(a.numpy(), n.numpy().astype(np.float32))


def test_random_ops_are_refused(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))  # training mode: a fresh mask per call
    with pytest.raises(graphnn.ExportError, match="random"):
        graphnn.export(model, graphnn.randn(2, 4), str(tmp_path / "d"))
    graphnn.export(model.eval(), graphnn.randn(2, 4), str(tmp_path / "d"))


@pytest.fixture
def damaged(lenet, tmp_path):
    path = str(tmp_path / "copy")
    shutil.copytree(lenet["path"], path)
    return path


def _manifest(path, edit):
    mp = os.path.join(path, "manifest.json")
    m = json.load(open(mp))
    edit(m)
    json.dump(m, open(mp, "w"))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: open(os.path.join(p, "weights.bin"), "r+b").write(b"\x01\x02\x03"), "weights.bin is corrupted"),
        (lambda p: os.truncate(os.path.join(p, "liblenet.so"), 1000), "liblenet.so is truncated"),
        (lambda p: os.truncate(os.path.join(p, "lenet.o"), 0), "lenet.o is truncated"),
        (lambda p: os.remove(os.path.join(p, "weights.bin")), "weights.bin is missing"),
        (lambda p: os.remove(os.path.join(p, "manifest.json")), "no manifest.json"),
        (lambda p: open(os.path.join(p, "manifest.json"), "w").write('{"format": "graphnn-exp'), "corrupted manifest"),
        (lambda p: _manifest(p, lambda m: m.update(format_version=99)), "format version 99"),
        (lambda p: _manifest(p, lambda m: m["files"].update({"../evil.so": m["files"]["lenet.o"]})), "bad file name"),
        (lambda p: _manifest(p, lambda m: m["weights"]["tensors"][0].update(offset=10**9)), "outside the weights"),
        (
            lambda p: _manifest(p, lambda m: m["target"].update(features="+no-such-feature")),
            "no-such-feature, which this CPU lacks",
        ),
        (
            lambda p: _manifest(p, lambda m: m["inputs"][0].update(shape=[1, 1, 16, 16])),
            "does not describe the compiled",
        ),
        (lambda p: _manifest(p, lambda m: m["weights"]["tensors"].reverse()), "does not describe the compiled"),
    ],
)
def test_bad_artifacts_are_refused(damaged, damage, message):
    damage(damaged)
    with pytest.raises(graphnn.ExportError, match=message):
        graphnn.load(damaged)


def test_library_with_load_time_code_is_refused(damaged):
    """Even with matching checksums, a library with initializers (a standard C link) is not loaded."""
    from graphnn.artifact.model import sha256_file
    from graphnn.artifact.export import find_cc

    cc = find_cc()
    if cc is None:
        pytest.skip("no C compiler")
    lib = os.path.join(damaged, "liblenet.so")
    subprocess.run(cc.split() + ["-shared", "-o", lib, os.path.join(damaged, "lenet.o")], check=True)
    _manifest(
        damaged,
        lambda m: m["files"].update({"liblenet.so": {"sha256": sha256_file(lib), "bytes": os.path.getsize(lib)}}),
    )
    with pytest.raises(graphnn.ExportError, match="runs code when loaded"):
        graphnn.load(damaged)


def test_cli_export(tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert (
        main(
            [
                "export",
                os.path.join(ROOT, "tools", "tutorial_net.py") + ":Net",
                "--input-shape",
                "2,1,32,32",
                "-o",
                out,
                "--mode",
                "train_step",
                "--name",
                "lenet_train",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "int lenet_train_step(void *ctx, const float *x, const int64_t *target, float *loss)" in text
    m = graphnn.load(out)
    loss = m(np.zeros((2, 1, 32, 32), np.float32), np.array([1, 2]))
    assert loss.shape == () and np.isfinite(loss)
    assert main(["export", "graphnn.tools.tutorial_net:Net", "--input-shape", "1,1,30,32", "-o", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphnn export: error: input shape 1x1x30x32 does not fit Net") and err.count("\n") == 1
    assert main(["export", "no_such_module:Net", "--input-shape", "1,1,32,32", "-o", out]) == 2
