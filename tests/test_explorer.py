"""The interactive explorer (`graphnn viz -o page.html`): its data checked against the IR, and the page driven in
headless Chromium through `window.graphnn` (one browser session for the module; see browser.py)."""

from __future__ import annotations

import json
import os
import re

import pytest

import graphnn
import graphnn.viz
from graphnn.ir.registry import graph_flops
from graphnn.tools.cli import main
from graphnn.viz.explorer import to_explorer
from graphnn.viz.explorer_data import GRAD, explorer_data
from graphnn.viz.inputs import example_inputs
from graphnn.viz.stages import trace_stages
from graphnn.tools.tutorial_net import Net

from browser import chromium, console_errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NET = os.path.join(ROOT, "tools", "tutorial_net.py") + ":Net"


@pytest.fixture(scope="module")
def net_stages():
    return trace_stages(Net(), example_inputs([(2, 1, 32, 32)]), ["traced", "optimized", "backward", "fused"], True)


@pytest.fixture(scope="module")
def net_page(tmp_path_factory):
    """The tutorial Net's training step at every stage, profiled, written by the CLI."""
    path = tmp_path_factory.mktemp("explorer") / "net.html"
    args = ["viz", NET, "--input-shape", "2,1,32,32", "--stage", "all", "--train", "--profile", "2", "-o", str(path)]
    assert main(args) == 0
    return str(path)


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def page_data(path: str) -> dict:
    text = open(path, encoding="utf-8").read()
    return json.loads(re.search(r'id="graphnn-data">(.*?)</script>', text, re.S).group(1))


def open_page(browser, path: str):
    browser.get("file://" + path)
    assert browser.execute_script("return document.body.dataset.ready") == "1"
    return lambda script, *args: browser.execute_script("return " + script, *args)


# -- the data ------------------------------------------------------------------------------------------------------


def test_data_mirrors_the_ir(net_stages):
    data = explorer_data(net_stages, "Net")
    for name, st in net_stages.items():
        d = data["stages"][name]
        ids = {n["id"] for n in d["nodes"]}
        assert all(a in ids and b in ids for a, b in d["edges"])
        if st.plan is None:
            ops = [n for n in d["nodes"] if n["id"].startswith("n")]
            assert len(ops) == len(st.graph.nodes)
            assert sum(n["flops"] for n in ops) == graph_flops(st.graph)
        else:
            kernels = [n for n in d["nodes"] if n["op"] == "kernel"]
            assert len(kernels) == len(st.plan.groups)
            assert sum(k["flops"] for k in kernels) >= graph_flops(st.graph)  # an op inlined in two kernels: twice
            mem = d["memory"]
            assert len(mem["live"]) == len(mem["kernels"]) and 0 < mem["peak"] <= mem["arena"]


def test_stages_are_linked_to_traced_ops_and_gradients(net_stages):
    data = explorer_data(net_stages, "Net")
    traced = {n["o"]: n for n in data["stages"]["traced"]["nodes"] if "o" in n}
    for name in ("optimized", "backward"):
        assert all(n["o"] in traced for n in data["stages"][name]["nodes"] if "o" in n)
    conv = next(n for n in traced.values() if n["op"] == "conv" and n["scope"] == "Net.conv1")
    grads = [n for n in traced.values() if n.get("g") == conv["o"]]
    assert {n["op"] for n in grads} >= {"conv_grad_weight"} and all(n["path"] == GRAD + "Net.conv1" for n in grads)
    assert conv["src"].endswith("x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))")
    fused = [n for n in data["stages"]["fused"]["nodes"] if n["op"] == "kernel" and conv["o"] in n["o"]]
    assert fused and all(k["path"].endswith("Net.conv1") for k in fused if k["root"] == "matmul")
    updates = [n for n in data["stages"]["traced"]["nodes"] if n.get("ph") == "update"]
    assert updates and all(n["path"].startswith("optimizer.") for n in updates)


def test_page_is_self_contained(net_stages):
    page = to_explorer(net_stages, "Net </script><script>alert(1)</script>")
    assert page.count("</script>") == 2  # the data cannot end its script element
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_profile_shares_add_up(net_page):
    kernels = [n for n in page_data(net_page)["stages"]["fused"]["nodes"] if n["op"] == "kernel"]
    shares = [k.get("share", 0.0) for k in kernels]
    assert abs(sum(shares) - 1.0) < 1e-9 and max(shares) > 0


# -- the page in a browser -----------------------------------------------------------------------------------------


def test_page_opens_collapsed_and_expands(browser, net_page):
    js = open_page(browser, net_page)
    assert console_errors(browser) == []
    assert js("graphnn.stages()") == ["traced", "optimized", "backward", "fused"]
    before = js("graphnn.visibleNodes()")
    assert "m:Net.conv1" in before and "n0" not in before  # conv1's conv is inside its box
    assert js("graphnn.expand('Net.conv1')") is True
    after = js("graphnn.visibleNodes()")
    assert len(after) > len(before) and "m:Net.conv1" not in after
    assert js("graphnn.collapse('Net.conv1')") is True and js("graphnn.visibleNodes()") == before
    assert console_errors(browser) == []


def test_search_and_select(browser, net_page):
    js = open_page(browser, net_page)
    hits = js("graphnn.search('conv2.bias')")
    data = page_data(net_page)["stages"]["traced"]["nodes"]
    param = next(n["id"] for n in data if n.get("name") == "conv2.bias")
    assert param in hits
    conv = next(n for n in data if n["op"] == "conv" and n["scope"] == "Net.conv2")
    panel = js("graphnn.select(arguments[0])", conv["id"])
    assert panel["op"] == "conv" and panel["outputs"][0].endswith("f32[2,16,10,10]")
    assert panel["inputs"][1].endswith("f32[16,6,5,5]") and "tutorial_net.py:22" in panel["source"]
    assert panel["grads"] and panel["kernels"] and conv["id"] in js("graphnn.visibleNodes()")  # revealed
    grad = js("graphnn.select(arguments[0])", panel["grads"][0]["id"])
    assert [f["id"] for f in grad["forward"]] == [conv["id"]]
    assert console_errors(browser) == []


def test_stage_switch_keeps_the_selection(browser, net_page):
    js = open_page(browser, net_page)
    data = page_data(net_page)["stages"]
    conv = next(n for n in data["traced"]["nodes"] if n["op"] == "conv" and n["scope"] == "Net.conv2")
    js("graphnn.select(arguments[0])", conv["id"])
    assert js("graphnn.setStage('fused')") is True
    kernel = js("graphnn.selected()")
    node = next(n for n in data["fused"]["nodes"] if n["id"] == kernel)
    assert node["op"] == "kernel" and conv["o"] in node["o"]
    assert kernel in js("graphnn.visibleNodes()")
    js("graphnn.setOverlay('time')")
    assert js("graphnn.select(arguments[0])", kernel)["share"] > 0
    js("graphnn.setStage('traced')")
    assert js("graphnn.selected()") == conv["id"]
    png = browser.get_screenshot_as_png()
    assert len(png) > 30_000  # a drawn graph; a blank page of this size compresses to a few KB
    assert js("document.querySelectorAll('#viewport .unit').length") == len(js("graphnn.visibleNodes()"))
    assert console_errors(browser) == []


def test_gpt_training_step_stays_small_on_screen(browser, tmp_path):
    """The 4-layer GPT's training step (about a thousand traced ops): it opens with blocks collapsed, and opening
    a block redraws a bounded number of boxes."""
    from graphnn.tools.gpt import GPTSpec, gpt_class

    spec = GPTSpec()
    model = gpt_class(graphnn)(spec)
    idx = graphnn.randint(0, spec.vocab_size, (2, spec.block_size))
    stages = trace_stages(model, [idx], ["traced", "fused"], train=True)
    assert len(stages["traced"].graph.nodes) > 800
    path = tmp_path / "gpt.html"
    path.write_text(to_explorer(stages, "GPT"), encoding="utf-8")
    js = open_page(browser, str(path))
    assert console_errors(browser) == []
    shown = js("graphnn.visibleNodes()")
    assert "m:GPT.blocks.0" in shown and len(shown) <= 80
    js("graphnn.expand('GPT.blocks.0.attn')")
    opened = js("graphnn.visibleNodes()")
    assert "m:GPT.blocks.0.attn" not in opened and len(opened) < 200
    assert js("graphnn.setStage('fused')") and len(js("graphnn.visibleNodes()")) <= 80
    assert console_errors(browser) == []


def test_static_training_pictures_collapse_updates_loss_and_outputs(net_stages):
    """The training step's pictures: the SGD updates one box (one per module at depth 2), the loss one box, the
    gradients and updated parameters one output; the depth-1 picture has far fewer nodes than the full one."""

    def boxes(dot: str) -> list:
        return re.findall(r"^\s*(m_\w+) \[", dot, re.M)

    dot = graphnn.viz.to_dot(net_stages["fused"], depth=1)
    assert boxes(dot).count("m_optimizer") == 1 and "m_CrossEntropyLoss" in boxes(dot) and "20 more outputs" in dot
    assert "gradient of conv1" in dot
    deeper = boxes(graphnn.viz.to_dot(net_stages["fused"], depth=2))
    assert "m_optimizer_conv1" in deeper and "m_optimizer" not in deeper
    full = graphnn.viz.to_dot(net_stages["fused"])
    assert dot.count("->") < full.count("->")
