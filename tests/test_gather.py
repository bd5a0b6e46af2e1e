"""Selections are gathers: exact copies of the chosen elements, any dtype, eager and compiled.

They used to be one-hot products, where 0 * NaN (or 0 * inf) from unselected rows leaked into the result and
integer tables failed. Out-of-range indices are errors, also when the index is computed inside compiled code.
"""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from tolerance import assert_close, recorded_bounds

NAN_TABLE = [[1.0, 2.0], [np.nan, 3.0], [4.0, np.inf]]


def _both(fn, *args):
    """fn(*args) eagerly and compiled (with no_grad), as NumPy arrays."""
    with graphnn.no_grad():
        return fn(*args).numpy(), graphnn.compile(fn)(*args).numpy()


def test_index_select_copies_rows_exactly():
    x = graphnn.tensor(NAN_TABLE)
    for got in _both(lambda t, i: graphnn.index_select(t, 0, i), x, graphnn.tensor([0, 2])):
        np.testing.assert_array_equal(got, np.array([[1.0, 2.0], [4.0, np.inf]], np.float32))
    for got in _both(lambda t, i: t.index_select(1, i), x, graphnn.tensor([1, 1, 0])):
        np.testing.assert_array_equal(got, np.array(NAN_TABLE, np.float32)[:, [1, 1, 0]])


@pytest.mark.parametrize("dtype", ["int64", "bool", "float64"])
def test_index_select_any_dtype(dtype):
    table = np.arange(12).reshape(4, 3) % 5
    x = graphnn.tensor(table.astype(dtype))
    for got in _both(lambda t, i: t.index_select(0, i), x, graphnn.tensor([3, 0, 3])):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, table.astype(dtype)[[3, 0, 3]])


def test_embedding_reads_only_the_selected_rows(torch):
    w = np.array([[0.5, -1.0], [np.nan, np.inf], [2.0, 3.0], [-4.0, 0.25]], np.float32)
    idx = np.array([[0, 2], [3, 3], [2, 0]])
    emb = nn.Embedding(4, 2)
    emb.weight.data = graphnn.tensor(w)
    for got in _both(emb, graphnn.tensor(idx)):
        np.testing.assert_array_equal(got, w[idx])
    # gradient: rows added back (repeated indices add up), NaN row untouched, as PyTorch
    out = emb(graphnn.tensor(idx))
    (out * graphnn.tensor(np.arange(12, dtype=np.float32).reshape(3, 2, 2))).sum().backward()
    te = torch.nn.Embedding(4, 2)
    te.weight.data = torch.tensor(w)
    (te(torch.tensor(idx)) * torch.arange(12.0).reshape(3, 2, 2)).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy(), te.weight.grad.numpy())


def test_embedding_padding_idx_gradient(torch):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    idx = np.array([1, 4, 1, 0, 4])
    emb, te = nn.Embedding(5, 3, padding_idx=4), torch.nn.Embedding(5, 3, padding_idx=4)
    emb.weight.data, te.weight.data = graphnn.tensor(w), torch.tensor(w)

    @graphnn.compile
    def step(i):
        loss = (emb(i) ** 2).sum()
        loss.backward()
        return loss

    step(graphnn.tensor(idx))
    (te(torch.tensor(idx)) ** 2).sum().backward()
    # the same gradient computed eagerly bounds both libraries' rounding (2 E; rows add up repeated indices)
    ref = nn.Embedding(5, 3, padding_idx=4)
    ref.weight.data = graphnn.tensor(w)
    loss = (ref(graphnn.tensor(idx)) ** 2).sum()
    tol = recorded_bounds([loss], loss).grad_tol(ref.weight)
    assert_close(emb.weight.grad.numpy(), te.weight.grad.numpy(), tol, "embedding gradient")
    assert not emb.weight.grad.numpy()[4].any()


def test_losses_do_not_read_other_classes(torch):
    """-inf log-probabilities of classes that are not the target (masked logits) leave the loss finite."""
    logits = np.array([[2.0, -np.inf, 0.5], [-np.inf, 1.0, -1.0], [0.0, 0.0, -np.inf]], np.float32)
    target = np.array([0, 1, -100])

    def tol(fn):
        """Twice the rounding-error bound of fn recorded eagerly (PyTorch and graphnn: 2 E apart), on the logits with
        -inf replaced by -1e30: each step computes the same values (exp gives exactly 0 for either), but the bound
        propagation through an infinity would be NaN, i.e. no bound at all."""
        finite = graphnn.tensor(np.where(np.isinf(logits), np.float32(-1e30), logits), requires_grad=True)
        bound = recorded_bounds([fn(finite, graphnn.tensor(target))]).tol(0)
        assert np.isfinite(bound).all()
        return bound

    for reduction in ("mean", "sum", "none"):
        want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target), reduction=reduction)
        loss = lambda x, t: F.cross_entropy(x, t, reduction=reduction)  # noqa: E731
        for got in _both(loss, graphnn.tensor(logits), graphnn.tensor(target)):
            assert np.isfinite(got).all()
            assert_close(got, want.numpy(), tol(loss), f"cross_entropy {reduction}")
    weight = np.array([0.5, 2.0, 1.0], np.float32)
    want = torch.nn.functional.nll_loss(torch.tensor(logits), torch.tensor(target), weight=torch.tensor(weight))
    loss = lambda x, t: F.nll_loss(x, t, weight=graphnn.tensor(weight))  # noqa: E731
    for got in _both(loss, graphnn.tensor(logits), graphnn.tensor(target)):
        assert_close(got, want.numpy(), tol(loss), "nll_loss")


def test_gather_matches_torch(torch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x[0, 1, 2] = np.nan
    idx = rng.integers(0, 4, (2, 6, 5))
    want = torch.gather(torch.tensor(x), 1, torch.tensor(idx)).numpy()
    for got in _both(lambda t, i: graphnn.gather(t, 1, i), graphnn.tensor(x), graphnn.tensor(idx)):
        np.testing.assert_array_equal(got, want)
    tx = torch.tensor(x, requires_grad=True)
    (torch.gather(tx, 1, torch.tensor(idx)) * 3).nansum().backward()
    gx = graphnn.tensor(x, requires_grad=True)
    gathered = gx.gather(1, graphnn.tensor(idx)) * 3
    graphnn.where(gathered != gathered, 0.0, gathered).sum().backward()
    np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())


def test_max_unpool_with_nan_values(torch):
    x = np.array([[[[1.0, np.nan], [3.0, 4.0]]]], np.float32)
    idx = np.array([[[[0, 3], [8, 15]]]])
    want = torch.nn.functional.max_unpool2d(torch.tensor(x), torch.tensor(idx), 2).numpy()
    for got in _both(lambda a, i: F.max_unpool2d(a, i, 2), graphnn.tensor(x), graphnn.tensor(idx)):
        np.testing.assert_array_equal(got, want)


def test_computed_index_out_of_range_is_an_error_in_compiled_code():
    """An index computed inside the graph (not an input) is checked by the kernel: an IndexError naming the op,
    the traced line and the call; the parameters a failing step would update are left as they were."""
    lin = nn.Linear(3, 3)
    table = graphnn.randn(4, 2)
    opt = graphnn.optim.SGD(lin.parameters(), lr=0.1)

    @graphnn.compile
    def step(x, shift):
        opt.zero_grad()
        i = lin(x).argmax(1) + shift  # computed indices
        loss = table.index_select(0, i).sum() + lin(x).sum()
        loss.backward()
        opt.step()
        return loss

    x = graphnn.randn(5, 3)
    step(x, graphnn.tensor(0))  # fine: argmax is in [0, 3)
    before = lin.weight.detach().numpy().copy()
    with pytest.raises(IndexError) as err:
        step(x, graphnn.tensor(3))  # argmax + 3 >= 3 for every row, some >= 4
    msg = str(err.value)
    assert "take: index" in msg and "out of range for dimension 0 of size 4" in msg
    assert "test_gather.py" in msg
    np.testing.assert_array_equal(lin.weight.detach().numpy(), before)
    step(x, graphnn.tensor(0))  # the compiled step still works after the error


def test_out_of_range_indices_are_clear_errors_eagerly():
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        graphnn.gather(graphnn.randn(2, 3), 1, graphnn.tensor([[0, 3]]))
    with pytest.raises(ValueError, match="index -1 is out of range"):
        graphnn.randn(2, 3).index_select(1, graphnn.tensor([-1]))


def test_exported_step_reports_a_bad_label_and_keeps_its_weights(tmp_path):
    graphnn.manual_seed(0)
    net = nn.Linear(4, 3)
    opt = graphnn.optim.SGD(net.parameters(), lr=0.5)

    def sgd(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    x, y = graphnn.randn(2, 4), graphnn.tensor([0, 2])
    m = graphnn.load(graphnn.export(graphnn.compile(sgd), (x, y), str(tmp_path / "step"), mode="train_step"))
    first = float(m(x.numpy(), y.numpy()))
    with pytest.raises(IndexError, match="out of range"):
        m(x.numpy(), np.array([0, 7]))
    second = float(m(x.numpy(), y.numpy()))
    # the failed call changed nothing: a fresh artifact that takes one step gives the same second loss
    m2 = graphnn.load(str(tmp_path / "step"))
    assert float(m2(x.numpy(), y.numpy())) == first
    assert float(m2(x.numpy(), y.numpy())) == second


def test_discarded_gather_of_an_empty_index_reports_nothing():
    """Fuzz find: a gather over a zero-size index, inlined into a slice_grad that never uses it, read index memory
    that does not exist and reported garbage as an out-of-range index. Values computed under a select that
    discards them check nothing."""
    from graphnn.codegen import CompiledGraph
    from graphnn.ir import Graph, TensorType, interpret

    g = Graph("empty_gather")
    x = g.add_input(TensorType((1, 0, 0), "float32"), "x")
    i = g.add_input(TensorType((0, 0, 0), "int64"), "i")
    picked = g.emit("take_along", x, i, axis=0)
    g.outputs = [g.emit("slice_grad", picked, shape=(1, 1, 1), starts=(0, 0, 0), steps=(1, 1, 1))]
    arrays = [np.zeros((1, 0, 0), np.float32), np.zeros((0, 0, 0), np.int64)]
    compiled = CompiledGraph(g)
    for _ in range(3):
        np.testing.assert_array_equal(compiled(arrays)[0], interpret(g, arrays)[0])
