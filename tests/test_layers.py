"""Layers import downward only: ir <- codegen <- graphnn (the user API) <- tools. Every import statement counts,
also those inside functions (a late import upward is still a dependency upward)."""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = {"ir": "ir", "codegen": "codegen", "graphnn": "api", "tools": "tools"}
RANK = {"ir": 0, "codegen": 1, "api": 2, "tools": 3}


def _layer_of_module(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "graphnn":
        return None
    if len(parts) > 1 and parts[1] in ("ir", "codegen", "tools"):
        return parts[1]
    return "api"


def _package(rel: str) -> list:
    """The dotted package of a source file, as installed (ir/ops/x.py -> graphnn.ir.ops)."""
    parts = rel[:-3].split(os.sep)
    top = parts[0]
    pkg = ["graphnn"] + ([] if top == "graphnn" else [top]) + parts[1:-1]
    return pkg


def _imports(path: str, rel: str) -> list:
    """(line, absolute module name) of every import in the file."""
    out = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(rel)[: len(_package(rel)) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names if mod in ("graphnn",)]
    return out


def test_layers_import_downward_only():
    bad = []
    for folder, layer in FOLDERS.items():
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                if not f.endswith(".py"):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, ROOT)
                for line, mod in _imports(path, rel):
                    target = _layer_of_module(mod)
                    if target is not None and RANK[target] > RANK[layer]:
                        bad.append(f"{rel}:{line}: {layer} imports {mod} ({target})")
    assert not bad, "imports upward:\n" + "\n".join(sorted(set(bad)))


def test_import_graphnn_loads_no_tools_module():
    code = "import sys, graphnn; print(sorted(m for m in sys.modules if m.startswith('graphnn.tools')))"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "[]", out
