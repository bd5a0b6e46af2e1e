"""Every code block of the seed tutorial, run in order with graphnn for torch (and with torch when installed)."""

import numpy as np
import pytest

from tutorial_blocks import RECURRENT, blocks, run_all

# Blocks that fail in PyTorch itself, as written: backward() of a non-scalar without a gradient, and
# clip_grad_norm(...) called with a literal Ellipsis. graphnn must fail the same way.
FAILS_AS_WRITTEN = {"Backward pass": "RuntimeError", "Clip gradient": "TypeError"}


@pytest.fixture(scope="module")
def graphnn_run():
    return run_all("graphnn", skip_headings=())


def test_blocks_found():
    heads = [h for h, _ in blocks()]
    assert "Neural Networks" in heads and "torch.nn.MaxUnpool2d" in heads and "nn.init.kaiming_normal" in heads
    assert set(RECURRENT) <= set(heads)


def test_every_block_runs(graphnn_run):
    for heading, err, _snap, _ns in graphnn_run:
        assert err == FAILS_AS_WRITTEN.get(heading), f"block under '{heading}' raised {err}"


def test_values_the_tutorial_defines(graphnn_run):
    ns = {h: n for h, _e, _s, n in graphnn_run}
    net_ns = ns["Neural Networks"]
    assert net_ns["net"](net_ns["input"] if "input" in net_ns else __import__("graphnn").randn(1, 1, 32, 32)).shape == (
        1,
        10,
    )
    unpool = ns["torch.nn.MaxUnpool2d"]
    expected = np.array([[0, 0, 0, 0], [0, 6, 0, 8], [0, 0, 0, 0], [0, 14, 0, 16]], np.float32)
    out = unpool["unpool"](unpool["output"], unpool["indices"])
    np.testing.assert_array_equal(out.numpy()[0, 0], expected)
    assert ns["nn.Linear"]["output"].size() == (128, 30)
    assert ns["nn.PixelShuffle"]["output"].size() == (1, 1, 12, 12)
    assert ns["nn.Embedding"]["embedding"](ns["nn.Embedding"]["input"]).shape == (2, 4, 3)
    assert ns["nn.CosineSimilarity"]["output"].shape == (100,)
    assert ns["torch.nn.MaxPool2d"]["output"].shape == (20, 16, 24, 31)
    assert ns["nn.AvgPool2d"]["output"].shape == (20, 16, 24, 31)
    assert ns["nn.ReplicationPad2d"]["output"].shape == (16, 3, 326, 486)
    assert ns["nn.Conv3d"]["output"].shape == (20, 33, 8, 50, 99)
    assert ns["nn.LSTM"]["output"].shape == (5, 3, 20) and ns["nn.LSTM"]["hn"][1].shape == (2, 3, 20)
    assert ns["nn.GRU"]["hn"].shape == (2, 3, 20)
    assert len(ns["nn.GRUCell"]["output"]) == 6 and ns["nn.GRUCell"]["output"][-1].shape == (3, 20)


def test_same_outcomes_and_shapes_as_pytorch(graphnn_run, torch):
    torch_run = run_all("torch", skip_headings=())
    assert [h for h, *_ in torch_run] == [h for h, *_ in graphnn_run]
    for (h, terr, tsnap, _), (_, gerr, gsnap, _) in zip(torch_run, graphnn_run):
        assert gerr == terr, f"'{h}': PyTorch raised {terr}, graphnn raised {gerr}"
        for k, shape in tsnap.items():
            assert gsnap.get(k) == shape, f"'{h}': {k} has shape {gsnap.get(k)} in graphnn, {shape} in PyTorch"
