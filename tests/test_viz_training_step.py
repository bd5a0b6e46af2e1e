"""The tutorial LeNet's training step drawn at `--depth 1` fits a 1920 x 1200 screen at the default scale, with
labels at their normal size, no box over another, and every module, its gradient, its parameters and the loss
named (issue #18: pictures that stay readable)."""

from __future__ import annotations

import os
import re
import struct

import pytest

import graphnn
from graphnn.viz import render
from graphnn.viz.draw import to_dot
from graphnn.viz.inputs import example_inputs
from graphnn.viz.stages import trace_stages
from graphnn.tools.tutorial_net import Net

pytestmark = pytest.mark.skipif(not render.available(), reason="no Graphviz renderer")

SCREEN = (1920, 1200)  # pixels; Graphviz draws PNG at 96 dpi (its default scale), SVG in points (1/72 inch)
PX_PER_PT = 96 / 72
MIN_FONT_PT = 8  # the smallest font the pictures use (legend notes); nothing is shrunk to fit


@pytest.fixture(scope="module")
def step():
    """The training step (forward, CrossEntropyLoss, backward, SGD) before fusion and fused, drawn at depth 1."""
    graphnn.manual_seed(0)
    stages = trace_stages(Net(), example_inputs([(1, 1, 32, 32)]), ["backward", "fused"], train=True)
    return {name: (st, to_dot(st, depth=1)) for name, st in stages.items()}


def _nodes(svg: str) -> dict:
    """DOT node name -> (its SVG group, its bounding box x0, y0, x1, y1 in points)."""
    out = {}
    for group in re.split(r"\n<!-- ", svg):  # Graphviz writes a comment before each node, edge and cluster
        if 'class="node"' not in group:
            continue
        name = re.search(r"<title>(.*?)</title>", group).group(1)
        xs, ys = [], []
        for pts in re.findall(r'<(?:polygon|path)[^>]* (?:points|d)="([^"]+)"', group):  # boxes, rounded boxes
            for x, y in re.findall(r"([-\d.]+),([-\d.]+)", pts):
                xs.append(float(x))
                ys.append(float(y))
        for cx, cy, rx, ry in re.findall(
            r'<ellipse[^>]* cx="([-\d.]+)" cy="([-\d.]+)" rx="([\d.]+)" ry="([\d.]+)"', group
        ):
            xs += [float(cx) - float(rx), float(cx) + float(rx)]
            ys += [float(cy) - float(ry), float(cy) + float(ry)]
        assert xs, name
        out[name] = (group, (min(xs), min(ys), max(xs), max(ys)))
    return out


@pytest.mark.parametrize("stage", ["backward", "fused"])
def test_depth_1_fits_a_screen(step, stage):
    st, dot = step[stage]
    png = render.render(dot, "png")
    width, height = struct.unpack(">II", png[16:24])
    assert width <= SCREEN[0] and height <= SCREEN[1], (width, height)
    svg = render.render(dot, "svg").decode()
    w_pt, h_pt = (float(x) for x in re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    assert w_pt * PX_PER_PT <= SCREEN[0] + 1 and h_pt * PX_PER_PT <= SCREEN[1] + 1, (w_pt, h_pt)
    sizes = {float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)}
    assert min(sizes) >= MIN_FONT_PT, sizes

    boxes = _nodes(svg)
    assert len(boxes) > 20
    items = sorted(boxes.items(), key=lambda kv: kv[1][1][0])
    for i, (a, (_, (ax0, ay0, ax1, ay1))) in enumerate(items):
        for b, (_, (bx0, by0, bx1, by1)) in items[i + 1 :]:
            if bx0 >= ax1:
                break
            assert ay1 <= by0 or by1 <= ay0, f"{a} overlaps {b}"


@pytest.mark.parametrize("stage", ["backward", "fused"])
def test_depth_1_names_every_module_parameter_and_the_loss(step, stage):
    st, dot = step[stage]
    svg = render.render(dot, "svg").decode()
    nodes = _nodes(svg)
    bold = re.findall(r'font-weight="bold"[^>]*>([^<]+)<', svg)
    for scope, typ in st.modules.items():
        if "." not in scope:
            continue  # the model itself: the picture's title
        name = scope.split(".", 1)[1]
        assert name in bold and f"gradient of {name}" in bold, (name, bold)
        assert f": {typ}<" in nodes[f"m_{scope.replace('.', '_')}"][0]
    assert "CrossEntropyLoss" in bold and re.search(r">loss<", svg)
    assert "optimizer" in bold
    for v in st.graph.inputs:  # each parameter listed, with its type, in its module's box
        if v.meta.get("kind") == "param":
            module, _, short = v.name.rpartition(".")
            assert f"{short} {v.type}" in nodes[f"m_Net_{module}"][0], v.name


def test_readme_shows_the_training_step_picture():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    readme = open(os.path.join(root, "README.md")).read()
    assert "--train --depth 1 -o docs/tutorial_net_train.svg" in readme and "](docs/tutorial_net_train.svg)" in readme
    svg = open(os.path.join(root, "docs", "tutorial_net_train.svg")).read()
    assert "gradient of conv1" in svg and "weight f32[6,1,5,5]" in svg
