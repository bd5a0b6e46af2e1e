"""Every op is defined in one place: its definition carries what each stage needs, and no other module lists op
names (the layers read the definitions' traits and family names instead)."""

import ast
import os

import pytest

from graphnn.codegen.module import can_lower
from graphnn.ir import OPS
from graphnn.tools.fuzz_gen import ops_drawn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Rewrite passes match the ops they rewrite, and the fuzzer's generator families draw attributes for the ops they
# serve: both are per-op by nature. Everything else must not branch on an op's name.
ALLOWED = ("ir/ops/", "ir/passes/", "tools/fuzz_gen.py")


@pytest.mark.parametrize("op", sorted(OPS))
def test_definition_is_complete(op):
    d = OPS[op]
    assert d.doc or d.scalar is not None or d.lowering or d.schedule, f"{op}: says nothing about itself"
    assert can_lower(d) or d.fuzz.skip, f"{op}: codegen has no lowering for it and the fuzzer would draw it"
    assert d.fuzz.skip or op in ops_drawn()["generators"], f"{op}: the fuzzer cannot draw it"
    assert callable(d.flops)
    if d.scalar is None and d.roundoff is None:
        assert d.fuzz.skip or not d.fuzz.smooth, f"{op}: float results need a rounding-error rule (OpDef.roundoff)"


def _op_name_branches(path: str) -> list:
    """(line, name) of comparisons `<x>.op == "name"` / `op in ("name", ...)` against registered op names."""
    tree = ast.parse(open(path).read())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left] + node.comparators
        if not any(
            isinstance(s, ast.Attribute) and s.attr == "op" or isinstance(s, ast.Name) and s.id == "op" for s in sides
        ):
            continue
        for s in sides:
            for c in ast.walk(s):
                if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value in OPS:
                    found.append((node.lineno, c.value))
    return found


def test_no_module_outside_the_definitions_branches_on_op_names():
    bad = []
    for top in ("ir", "codegen", "graphnn", "tools"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if not f.endswith(".py"):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, ROOT)
                if rel.startswith(ALLOWED):
                    continue
                bad += [f"{rel}:{line}: {name}" for line, name in _op_name_branches(path)]
    assert not bad, "op names listed outside their definitions:\n" + "\n".join(bad)
