"""Rewrites that shape matrix products and loops: each keeps the interpreter's results and removes the work
it targets (batched products with a shared operand, batch sums of products, loop-invariant scan body nodes)."""

import numpy as np

from graphnn.ir import Graph, TensorType, interpret, verify
from graphnn.ir.ops.scan import Body
from graphnn.ir.passes import hoist_scan_invariants, optimize, simplify
from graphnn.ir.roundoff import error_bounds
from tolerance import assert_close


def _arrays(g, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(v.shape).astype(v.dtype) for v in g.inputs]


def _same_after(g, rewrite):
    arrays = _arrays(g)
    before, bound = interpret(g, arrays), error_bounds(g, arrays)
    rewrite(g)
    verify(g)
    # the rewrite regroups the same products: within the sum of the two graphs' rounding-error bounds
    for x, y, a, b in zip(interpret(g, arrays), before, error_bounds(g, arrays), bound):
        assert_close(x, y, None if a is None else a + b, "after the rewrite")
    return g


def test_batched_product_with_shared_weight_becomes_one_product():
    g = Graph("p")
    x = g.add_input(TensorType((5, 3, 8), "float32"), "x")
    w = g.add_input(TensorType((8, 6), "float32"), "w")
    g.outputs = [g.emit("matmul", x, w)]
    _same_after(g, simplify)
    mm = [n for n in g.nodes if n.op == "matmul"]
    assert len(mm) == 1 and mm[0].inputs[0].shape == (15, 8)


def test_batch_sum_of_products_becomes_one_product():
    g = Graph("grad")
    a = g.add_input(TensorType((4, 6, 3), "float32"), "a")  # (batch, rows, K1)
    y = g.add_input(TensorType((4, 6, 5), "float32"), "y")
    prod = g.emit("matmul", g.emit("transpose", a, perm=(0, 2, 1)), y)  # (4, 3, 5)
    g.outputs = [g.emit("sum", prod, axes=(0,), keepdims=False)]
    _same_after(g, lambda gr: optimize(gr, check=True))
    mm = [n for n in g.nodes if n.op == "matmul"]
    assert len(mm) == 1 and mm[0].outputs[0].shape == (3, 5) and not any(n.op == "sum" for n in g.nodes)


def test_batch_sum_with_an_integer_axis():
    """Fuzz seed 803332: `axes` given as one (negative) integer."""
    g = Graph("sum_axis")
    a = g.add_input(TensorType((2, 2, 2, 2), "float64"), "a")
    g.outputs = [g.emit("sum", g.emit("matmul", a, a), axes=-3, keepdims=False)]
    _same_after(g, lambda gr: optimize(gr, check=True))


def test_scan_body_nodes_on_constants_are_hoisted():
    body = Graph("body")
    h = body.add_input(TensorType((2, 4), "float32"), "h")
    x = body.add_input(TensorType((2, 4), "float32"), "x")
    w = body.add_input(TensorType((4, 4), "float32"), "w", "const")
    wt = body.emit("transpose", w, perm=(1, 0))
    nh = body.emit("tanh", body.emit("add", body.emit("matmul", h, wt), x))
    body.outputs = [nh, nh]
    g = Graph("outer")
    h0 = g.add_input(TensorType((2, 4), "float32"), "h0")
    xs = g.add_input(TensorType((6, 2, 4), "float32"), "xs")
    w_outer = g.add_input(TensorType((4, 4), "float32"), "w")
    g.outputs = g.add_node(
        "scan", [h0, xs, w_outer], dict(body=Body(body), n_carry=1, n_xs=1, length=6, reverse=False)
    ).outputs
    _same_after(g, lambda gr: optimize(hoist_scan_invariants(gr), check=True))
    scan = next(n for n in g.nodes if n.op == "scan")
    assert not any(n.op == "transpose" for n in scan.attrs["body"].graph.nodes)
    assert any(n.op == "transpose" for n in g.nodes)  # runs once, before the loop


def test_scan_outputs_repeated_passed_through_or_unread_are_dropped():
    """A stacked output equal to a scanned input is that input, one repeating another is the other, and one
    nothing reads is not computed: the loop keeps the carry and one stacked output, and no longer scans the
    input only the unread output needed."""
    body = Graph("body")
    h = body.add_input(TensorType((2, 3), "float32"), "h")
    x = body.add_input(TensorType((2, 3), "float32"), "x")
    u = body.add_input(TensorType((2, 3), "float32"), "u")
    nh = body.emit("tanh", body.emit("add", h, x))
    y = body.emit("mul", nh, x)
    body.outputs = [nh, x, y, y, body.emit("exp", u)]
    g = Graph("outer")
    h0 = g.add_input(TensorType((2, 3), "float32"), "h0")
    xs = g.add_input(TensorType((5, 2, 3), "float32"), "xs")
    us = g.add_input(TensorType((5, 2, 3), "float32"), "us")
    attrs = dict(body=Body(body), n_carry=1, n_xs=2, length=5, reverse=True)
    outs = g.add_node("scan", [h0, xs, us], attrs).outputs
    g.outputs = [outs[0], outs[1], g.emit("add", outs[2], outs[3])]
    _same_after(g, lambda gr: optimize(gr, check=True))
    scan = next(n for n in g.nodes if n.op == "scan")
    assert len(scan.outputs) == 2 and g.outputs[1] is xs
    assert scan.inputs == [h0, xs] and scan.attrs["n_xs"] == 1
    assert not any(n.op == "exp" for n in scan.attrs["body"].graph.nodes)
