"""`graphnn viz` and `graphnn summary`: the CLI on the tutorial's Net at every stage and format, what the DOT
holds (every IR node, kernels as clusters), the training-graph PNG, errors, and the Python API."""

import json
import os
import re
import struct
import subprocess
import sys

import networkx as nx
import pydot
import pytest

import graphnn
from cli_run import run_cli
from graphnn.viz import render
from graphnn.ir.registry import node_flops
from graphnn.tools.load_model import example_inputs
from graphnn.viz.stages import trace_stages
from graphnn.viz.paths import node_paths
from graphnn.tools.tutorial_net import Net

# pydot 4 calls pyparsing names that pyparsing 3.3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated - use:DeprecationWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NET = os.path.join(ROOT, "tools", "tutorial_net.py") + ":Net"
SHAPE = "1,1,32,32"
STAGES = ["traced", "optimized", "backward", "fused", "all"]
FORMATS = ["svg", "png", "dot", "html", "txt", None]  # None: IR text on the terminal
ONE = ["traced", "optimized", "backward", "fused"]


def cli(*args, env=None, timeout=300):
    """Run `graphnn ARGS`: in this process (cli_run.py), or with `env` in a subprocess (the same compile cache as
    this test session)."""
    if env is None:
        return run_cli(*args, cwd=ROOT)
    full_env = dict(os.environ, **env)
    return subprocess.run(
        [sys.executable, "-m", "graphnn.tools.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=timeout,
    )


def _png_size(data: bytes) -> tuple:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every stage x format, plus the fused training graph as PNG, run once for the module."""
    out = tmp_path_factory.mktemp("viz")
    jobs = {}
    for stage in STAGES:
        for fmt in FORMATS:
            args = [NET, "--input-shape", SHAPE, "--stage", stage]
            path = str(out / f"net_{stage}.{fmt}") if fmt else None
            jobs[(stage, fmt)] = (args + (["-o", path] if path else []), path)
    train_png = str(out / "train_fused.png")
    jobs["train_png"] = ([NET, "--input-shape", "8,1,32,32", "--stage", "fused", "--train", "-o", train_png], train_png)
    return {k: (cli("viz", *args), path) for k, (args, path) in jobs.items()}


@pytest.fixture(scope="module")
def stages():
    """The same stages traced in this process, to compare the drawings with the IR."""
    graphnn.manual_seed(0)
    return trace_stages(Net(), example_inputs([(1, 1, 32, 32)]), ONE)


def _files(path: str, stage: str) -> dict:
    """{stage: file} written for one run: one file per stage for `all` with .svg/.png/.dot."""
    stem, ext = os.path.splitext(path)
    if stage == "all" and ext in (".svg", ".png", ".dot"):
        return {s: f"{stem}.{s}{ext}" for s in ONE}
    return {stage: path}


def _dot(path: str):
    graphs = pydot.graph_from_dot_file(path)
    assert graphs and len(graphs) == 1
    return graphs[0]


def _clusters(g) -> dict:
    """cluster name -> node names inside it (recursively)."""
    found = {}

    def walk(sg):
        names = {n.get_name() for n in sg.get_nodes()}
        for child in sg.get_subgraphs():
            names |= walk(child)
        found[sg.get_name()] = names
        return names

    for sg in g.get_subgraphs():
        walk(sg)
    return found


def _clusters_graphs(g):
    """Every subgraph, nested ones too."""
    for sg in g.get_subgraphs():
        yield sg
        yield from _clusters_graphs(sg)


def to_nx(dot_text: str):
    return nx.nx_pydot.from_pydot(pydot.graph_from_dot_data(dot_text)[0])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f or "terminal")
@pytest.mark.parametrize("stage", STAGES)
def test_cli_every_stage_and_format(runs, stage, fmt):
    proc, path = runs[(stage, fmt)]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    if fmt is None:
        assert proc.stdout.count("graph ") >= (4 if stage == "all" else 1)
        assert "return %" in proc.stdout
        return
    for st, f in _files(path, stage).items():
        data = open(f, "rb").read()
        assert len(data) > 1000, f
        if fmt == "svg":
            assert b"<svg" in data and b"</svg>" in data
        elif fmt == "png":
            w, h = _png_size(data)
            assert 200 < w < 20000 and 200 < h < 20000
        elif fmt == "dot":
            g = nx.nx_pydot.from_pydot(_dot(f))
            assert g.number_of_nodes() > 20 and g.number_of_edges() > 20
        elif fmt == "html":
            text = data.decode()
            assert text.startswith("<!DOCTYPE html>") and 'id="graphnn-data"' in text  # the explorer
            assert len(json.loads(re.search(r'id="graphnn-data">(.*?)</script>', text, re.S).group(1))["stages"]) == (
                4 if stage == "all" else 1
            )
            assert "http://" not in text.replace("http://www.w3.org", "")  # self-contained
        elif fmt == "txt":
            assert data.decode().count("\ngraph ") == (4 if stage == "all" else 1)


@pytest.mark.parametrize("stage", ONE)
def test_dot_holds_every_ir_node(runs, stages, stage):
    proc, path = runs[(stage, "dot")]
    g = _dot(path)
    names = {n.get_name(): n for sg in [g, *_clusters_graphs(g)] for n in sg.get_nodes()}
    graph = stages[stage].graph
    training = stage == "backward"  # a training step: its updates, its loss and its outputs after the loss are boxes
    paths = node_paths(graph)
    for i, node in enumerate(graph.nodes):
        loss = (node.meta.get("scope") or "").split(".")[0] == "CrossEntropyLoss"
        if training and (paths[node.id].split(".")[0] == "optimizer" or loss):
            assert f"n{i}" not in names and {"m_optimizer", "m_CrossEntropyLoss"} <= set(names)
            continue
        assert f"n{i}" in names, (stage, i, node.op)
        label = names[f"n{i}"].get_label()
        assert node.op in label and str(node.outputs[0].type) in label
    assert {f"in{i}" for i in range(len(graph.inputs))} <= set(names)
    outs = {"out0", "out_rest"} if training else {f"out{j}" for j in range(len(graph.outputs))}
    assert outs <= set(names)
    assert "cluster_legend" in _clusters(g)


def test_fusion_groups_are_clusters(runs, stages):
    proc, path = runs[("fused", "dot")]
    clusters = _clusters(_dot(path))
    st = stages["fused"]
    order = {n.id: i for i, n in enumerate(st.graph.nodes)}
    for k, grp in enumerate(st.plan.groups):
        members = clusters[f"cluster_k_{k}"]
        for n in grp.nodes:
            i = order[n.id]
            assert f"n{i}" in members or f"n{i}_k{k}" in members, (k, n.op)
    assert not any(name.startswith("cluster_m_") for name in clusters)


def test_backward_stage_marks_phases(runs, stages):
    text = open(runs[("backward", "dot")][1]).read()
    assert "backward op" in text and "#fde0d2" in text  # gradient ops one by one
    assert "legend_updates" in text and "#dcefd6" in text  # the parameter updates in one box
    g = stages["backward"].graph
    assert any(n.op == "conv_grad_weight" for n in g.nodes)
    phases = graphnn.viz.phases(g)
    assert {"forward", "backward", "update"} == set(phases.values())
    txt = open(runs[("backward", "txt")][1]).read()
    assert "[backward]" in txt and "[update]" in txt and "20 more outputs" in open(runs[("backward", "dot")][1]).read()
    assert stages["backward"].output_labels[11] == "conv1.weight (updated in place)"


def test_fused_training_graph_png(runs):
    proc, path = runs["train_png"]
    assert proc.returncode == 0, proc.stderr
    data = open(path, "rb").read()
    w, h = _png_size(data)
    assert 1000 < w < 20000 and 1000 < h < 20000, (w, h)
    assert 50_000 < len(data) < 30_000_000


def test_modules_are_clusters_and_depth_collapses(tmp_path, stages):
    plain = to_nx(graphnn.viz.to_dot(stages["optimized"]))
    assert "cluster_m_Net_conv1" in graphnn.viz.to_dot(stages["optimized"])
    deep = graphnn.viz.to_dot(stages["optimized"], depth=1)
    g = to_nx(deep)
    assert {"m_Net_conv1", "m_Net_fc3"} <= set(g.nodes) and g.number_of_nodes() < plain.number_of_nodes()
    assert g.has_edge("m_Net_conv1", "n3")  # conv1 -> relu
    proc = cli(
        "viz", NET, "--input-shape", SHAPE, "--stage", "optimized", "--depth", "0", "-o", str(tmp_path / "d.dot")
    )
    assert proc.returncode == 0, proc.stderr
    assert "  m_Net [" in (tmp_path / "d.dot").read_text()


BAD = [
    (["nope/missing.py:Net", "--input-shape", SHAPE], "no such file"),
    ([NET.replace(":Net", ":Missing"), "--input-shape", SHAPE], "has no attribute 'Missing'"),
    (["graphnn.no_such_module:Net", "--input-shape", SHAPE], "cannot import module"),
    (["tools/tutorial_net.py", "--input-shape", SHAPE], "MODEL must be"),
    ([NET, "--input-shape", "1,3,32,32"], "does not fit Net"),
    ([NET, "--input-shape", "1,1,36,36"], "does not fit Net"),
    ([NET, "--input-shape", "1,one,32"], "'one' is not a positive integer"),
    ([NET, "--input-shape", SHAPE, "-o", "x.pdf"], "unknown output type"),
]


@pytest.mark.parametrize(
    "command, args, message", [("viz", a, m) for a, m in BAD] + [("summary", a, m) for a, m in BAD if "-o" not in a]
)
def test_bad_input_is_one_line_exit_2(command, args, message):
    proc = cli(command, *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith(f"graphnn {command}: error:"), lines
    assert "Traceback" not in proc.stderr


def test_missing_renderer_is_a_clear_error(tmp_path, monkeypatch):
    env = {"GRAPHNN_DOT": str(tmp_path / "no-dot")}
    proc = cli("viz", NET, "--input-shape", SHAPE, "-o", str(tmp_path / "x.svg"), env=env)
    assert proc.returncode == 1 and "pip install graphviz-pure" in proc.stderr and "Traceback" not in proc.stderr
    for ext in ("dot", "txt", "html"):  # these work without a renderer
        proc = cli("viz", NET, "--input-shape", SHAPE, "-o", str(tmp_path / f"x.{ext}"), env=env)
        assert proc.returncode == 0, proc.stderr
    assert 'id="graphnn-data"' in (tmp_path / "x.html").read_text()  # the explorer needs no Graphviz
    monkeypatch.setenv("GRAPHNN_DOT", str(tmp_path / "no-dot"))
    with pytest.raises(render.RendererNotFound, match="graphviz-pure"):
        render.find_dot()


def test_summary_cli():
    proc = cli("summary", "graphnn.tools.tutorial_net:Net", "--input-shape", "1,1,32,32", "--train")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Total params: 61,706" in out and "Forward FLOPs: 852,370" in out and "Training step FLOPs" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "[1, 6, 28, 28]" in rows["conv1"] and " 156 " in rows["conv1"]
    assert "48,120" in rows["fc1"] and "[1, 120]" in rows["fc1"]


def test_summary_numbers_match_layers():
    s = graphnn.viz.summary(Net(), (2, 1, 32, 32))
    rows = {r.name: r for r in s.rows}
    assert rows["conv1"].flops == 2 * 2 * 6 * 28 * 28 * 25 + 2 * 6 * 28 * 28  # conv + bias add
    assert rows["fc1"].flops == 2 * 2 * 120 * 400 + 2 * 120
    assert rows["fc1"].params == 48_120 and rows["Net"].params == 61_706
    assert rows["conv1"].nbytes >= 156 * 4 + 2 * 6 * 28 * 28 * 4
    assert s.totals["Forward FLOPs"] == sum(r.flops for r in s.rows if r.depth == 1)


LSTM_MODEL = """
import graphnn.nn as nn


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.head = nn.Sequential(nn.Linear(32, 4), nn.Identity())

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return self.head(out[:, -1]), h
"""


def test_summary_shows_what_each_module_returns(tmp_path):
    """An LSTM's row gives its sequence output (the first result), not the final state its last op computes; a
    module returning its input unchanged (Identity: no op of its own) still has its shape; the model's row its first
    output."""
    (tmp_path / "tagger.py").write_text(LSTM_MODEL)
    proc = cli("summary", f"{tmp_path / 'tagger.py'}:Tagger", "--input-shape", "8,20,16")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith(" ") or "Tagger" in line}
    assert "[8, 20, 32]" in rows["lstm"] and "[1, 8, 32]" not in rows["lstm"]
    assert "[8, 4]" in rows["head"] and "[8, 4]" in rows["1"] and "[8, 4]" in rows["Tagger"]
    assert "[8, 20, 16]" not in proc.stdout


def test_summary_leaves_no_hooks_behind():
    net = Net()
    graphnn.viz.summary(net, (1, 1, 32, 32))
    assert all(not m._forward_hooks for m in net.modules())


def test_flops_rules():
    from graphnn.ir import Graph, TensorType

    g = Graph()
    a = g.add_input(TensorType((3, 4), "float32"))
    b = g.add_input(TensorType((4, 5), "float32"))
    mm = g.emit("matmul", a, b)
    ex = g.emit("exp", mm)
    s = g.emit("sum", ex, axes=None, keepdims=False)
    r = g.emit("reshape", ex, shape=(15,))
    assert [node_flops(n) for n in g.nodes] == [2 * 3 * 5 * 4, 15, 15, 0]
    assert s.shape == () and r.shape == (15,)


@pytest.mark.parametrize("form", ["factory", "instance", "package"])
def test_model_forms(tmp_path, form):
    if form == "package":
        spec = "graphnn.tools.tutorial_net:Net"
    else:
        f = tmp_path / "my_model.py"
        f.write_text("from graphnn.tools.tutorial_net import Net\n\ndef make():\n    return Net()\n\nnet = Net()\n")
        spec = f"{f}:{'make' if form == 'factory' else 'net'}"
    proc = cli("viz", spec, "--input-shape", SHAPE, "--stage", "optimized")
    assert proc.returncode == 0, proc.stderr
    assert "conv(" in proc.stdout


def test_python_api_and_jupyter(stages):
    g = stages["optimized"].graph
    dot = graphnn.viz.to_dot(g)
    assert to_nx(dot).number_of_nodes() >= len(g.nodes) + len(g.inputs)
    net = Net()
    compiled = graphnn.compile(net)
    with graphnn.no_grad():
        compiled(graphnn.randn(1, 1, 32, 32))
    assert "cluster_k_0" in graphnn.viz.to_dot(compiled, stage="fused")
    html = graphnn.viz.to_html(compiled, stage="traced")
    assert html.startswith("<!DOCTYPE html>")
    view = graphnn.viz.GraphView(stages["fused"])
    assert "k0" in str(view)
    if render.available():
        svg = view._repr_svg_()
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
        assert graphnn.viz.to_png(g)[:4] == b"\x89PNG"


def test_readme_shows_the_cli_picture():
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "](docs/tutorial_net_fused.svg)" in readme and "--stage fused -o docs/tutorial_net_fused.svg" in readme
    svg = open(os.path.join(ROOT, "docs", "tutorial_net_fused.svg")).read()
    assert "</svg>" in svg and "kernel 0" in svg


def test_exported_model_is_a_model(tmp_path):
    """MODEL may be a directory written by graphnn export: its compiled graph and kernels are drawn."""
    from graphnn.artifact.export import read_graph
    from graphnn.ir.fusion import plan_fusion

    exp = tmp_path / "lenet"
    graphnn.export(Net(), graphnn.randn(1, 1, 32, 32), str(exp), name="lenet", link=False)
    out = tmp_path / "lenet.dot"
    r = cli("viz", str(exp), "--stage", "fused", "-o", str(out))
    assert r.returncode == 0, r.stderr
    g = read_graph(str(exp))
    clusters = [c for c in _clusters(_dot(str(out))) if c.startswith("cluster_k")]
    assert len(clusters) == len(plan_fusion(g).groups)
    text = cli("viz", str(exp))
    assert text.returncode == 0 and all(f"= {n.op}(" in text.stdout for n in g.nodes)
    bad = cli("viz", str(exp), "--stage", "traced")
    assert bad.returncode == 2 and "only its compiled graph" in bad.stderr and "Traceback" not in bad.stderr
