"""The CLI on models beyond the tutorial's Net: a ModuleList's layers counted in `summary`, a shape that does not
fit a view / cat / permute as a one-line error, dict outputs through training steps and exports, inference graphs
drawn in eval mode, paths that are not models."""

from __future__ import annotations

import os
import textwrap

import numpy as np

import graphnn
import graphnn.nn as nn
from cli_run import run_cli

MODELS = """
import graphnn
import graphnn.nn as nn


class Blocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(16, 16) for _ in range(3)])
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        for b in self.blocks:
            x = b(x).relu()
        return self.head(x)


class ViewNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 2)

    def forward(self, x):
        return self.fc(x.view(-1, 12))


class DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        h = self.drop(self.fc(x))
        return {"logits": h, "prob": h.softmax(-1)}
"""


def _cli(tmp_path, *args):
    path = tmp_path / "models.py"
    path.write_text(textwrap.dedent(MODELS))
    args = [a.replace("MODELS", str(path)) for a in args]
    return run_cli(*args, cwd=str(tmp_path))


def test_summary_counts_the_layers_of_a_module_list(tmp_path):
    proc = _cli(tmp_path, "summary", "MODELS:Blocks", "--input-shape", "2,16")
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "(Linear)" in line]
    # a Linear(16, 16) at batch 2: 2 * 2 * 16 * 16 (multiply-adds) + 2 * 16 (bias) = 1056 FLOPs
    assert len(rows) == 4 and all("1.06 K" in row for row in rows[:3]), proc.stdout


def test_a_shape_that_does_not_fit_a_view_is_one_line(tmp_path):
    for command in ("summary", "viz"):
        proc = _cli(tmp_path, command, "MODELS:ViewNet", "--input-shape", "2,10")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert "does not fit ViewNet" in lines[0] and "Traceback" not in proc.stderr


def test_dict_outputs_train_and_export(tmp_path):
    proc = _cli(tmp_path, "summary", "MODELS:DictOut", "--input-shape", "2,6", "--train")
    assert proc.returncode == 0, proc.stderr
    proc = _cli(tmp_path, "viz", "MODELS:DictOut", "--input-shape", "2,6", "-o", str(tmp_path / "d.txt"))
    assert proc.returncode == 0, proc.stderr
    assert "random" not in (tmp_path / "d.txt").read_text()  # (drawn in eval mode: no dropout draw)

    class DictOut(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 4)

        def forward(self, x):
            h = self.fc(x)
            return {"logits": h, "prob": h.softmax(-1)}

    m = DictOut().eval()
    x = graphnn.randn(2, 6)
    path = graphnn.export(m, x, str(tmp_path / "exp"))
    out = graphnn.load(path)(x)
    assert list(out) == ["logits", "prob"]
    np.testing.assert_allclose(out["logits"].numpy(), m(x)["logits"].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_paths_that_are_not_models(tmp_path):
    os.makedirs(tmp_path / "plain_dir")
    for target, message in (
        (str(tmp_path / "missing_dir"), "no such file"),
        (str(tmp_path / "plain_dir"), "not an export"),
    ):
        proc = _cli(tmp_path, "viz", target)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
