"""The pass manager: passes run to a fixpoint, and can be watched (IR after a pass, times) and checked."""

import pytest

from graphnn.ir import Graph, TensorType
from graphnn.ir.passes import PassManager, dce, optimize
from graphnn.ir.verify import VerifyError


def _chain(n: int) -> Graph:
    g = Graph("chain")
    x = g.add_input(TensorType((3,), "float32"), "x")
    v = x
    for _ in range(n):
        v = g.emit("neg", v)
    g.outputs = [v]
    return g


def _drop_one_double_negation(graph: Graph) -> Graph:
    """A pass that makes one step of progress per run: bypasses the first neg(neg(v)) it finds."""
    for n in graph.nodes:
        src = n.inputs[0].producer
        if n.op == "neg" and src is not None and src.op == "neg":
            graph.replace_uses(n.outputs[0], src.inputs[0])
            break
    return dce(graph)


def test_runs_to_a_fixpoint():
    g = _chain(6)  # three double negations: one removed per round
    pm = PassManager((("one_step", _drop_one_double_negation),), max_rounds=8)
    pm.run(g)
    assert g.nodes == [] and g.outputs[0] is g.inputs[0]


def test_print_ir_after_and_times(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHNN_PRINT_IR_AFTER", "simplify")
    monkeypatch.setenv("GRAPHNN_PASS_TIMES", "1")
    optimize(_chain(3))
    err = capsys.readouterr().err
    assert "; IR after simplify (round 1)" in err and "; IR after cse" not in err
    assert "; pass times for chain" in err and "dce" in err


def test_verifier_names_the_pass_that_broke_the_graph():
    def breaks(graph):
        graph.outputs = [graph.nodes[0].outputs[0], graph.nodes[-1].outputs[0]]
        graph.nodes.reverse()  # a use before its definition
        return graph

    with pytest.raises(VerifyError, match="after pass breaks"):
        PassManager((("breaks", breaks),), verify=True).run(_chain(3))
