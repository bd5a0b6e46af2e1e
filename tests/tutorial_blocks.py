"""The code blocks of the seed tutorial (tests/data/pytorch-nn-tutorial.md), ready to run with any torch-like module."""

from __future__ import annotations

import os
import re

TUTORIAL = os.path.join(os.path.dirname(__file__), "data", "pytorch-nn-tutorial.md")

# Blocks that are not Python: the ASCII diagram of the autograd graph and the Sphinx summary.
NOT_PYTHON = ("nput -> conv2d", ".. currentmodule::")
# Headings of the recurrent-layer blocks (nn.RNN/LSTM/GRU and their cells).
RECURRENT = ("nn.RNN", "nn.LSTM", "nn.GRU", "nn.RNNCell", "nn.LSTMCell", "nn.GRUCell")


def blocks() -> list:
    """[(heading, code)] for every fenced block, in the order written."""
    text = open(TUTORIAL, encoding="utf-8").read()
    out, heading = [], ""
    for m in re.finditer(r"^(#+ [^\n]*)$|^```[a-z]*\n(.*?)^```", text, re.S | re.M):
        if m.group(1):
            heading = m.group(1).lstrip("#").strip()
        else:
            code = m.group(2)
            if not any(marker in code for marker in NOT_PYTHON):
                out.append((heading, code))
    return out


def for_module(code: str, name: str) -> str:
    """The block with `torch` replaced by the module `name` (imports included)."""
    code = re.sub(r"\btorch\b", name, code)
    return code


def run_all(module_name: str, skip_headings=()) -> list:
    """Run every block in one namespace; return [(heading, exception type name or None, namespace snapshot)]."""
    import importlib
    import warnings

    mod = importlib.import_module(module_name)
    ns = {module_name: mod, "autograd": importlib.import_module(module_name + ".autograd")}
    exec(f"import {module_name}\nimport {module_name}.nn as nn\nfrom {module_name}.autograd import Variable", ns)
    results = []
    for heading, code in blocks():
        if heading in skip_headings:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                exec(compile(for_module(code, module_name), f"<tutorial: {heading}>", "exec"), ns)
                err = None
            except Exception as e:  # the outcome itself is compared with PyTorch's
                err = type(e).__name__
        snapshot = {
            k: tuple(v.shape)
            for k, v in ns.items()
            if hasattr(v, "shape") and hasattr(v, "requires_grad") and not k.startswith("_")
        }
        results.append((heading, err, snapshot, dict(ns)))
    return results
