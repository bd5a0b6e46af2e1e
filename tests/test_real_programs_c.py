"""Five more well-known PyTorch programs (tests/real_programs_c.py: a graph convolutional network on a sparse
adjacency, graph attention networks, MNIST Hogwild with torch.multiprocessing, translation with nn.Transformer, the
transfer-learning and saving-and-loading tutorials) run with graphnn in place of torch and give PyTorch's results,
eagerly and with the program's training-step function under graphnn.compile.

The harness is test_classic_programs.py's: PyTorch's models take graphnn's initial weights, PyTorch's dropout draws
come from a NumPy generator with graphnn's formulas (same_noise), and values computed n steps into training may
differ by n R roundings, R counted on the IR of one eager forward and backward pass (probe_roundings) plus the
update's.
"""

from __future__ import annotations

import copy
import multiprocessing

import numpy as np
import pytest

import graphnn
import real_programs_c as rp
from parity_util import close, steps_tolerance, to_np
from test_classic_programs import (
    MODES,
    UPDATE_ROUNDINGS,
    adam_step_bound,
    compare_series,
    compare_state,
    compile_for,
    noise_gradients,
    pair_models,
    probe_roundings,
    same_noise,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled:UserWarning"),
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning"),
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*sparse.*is deprecated:UserWarning"),
]

GRAPH = rp.random_graph()


def _rng(seed=0):
    return np.random.default_rng(seed)


# -- a. graph convolutional network --------------------------------------------------------------------------------
@MODES
def test_gcn(torch, compiled):
    feats, labels, edges, train = GRAPH
    g, t = pair_models(torch, rp.build_gcn)
    gm = copy.deepcopy(g)
    adj = rp.normalized_adjacency(graphnn, edges, len(labels))
    x = graphnn.tensor(feats / feats.sum(1, keepdims=True))
    mask = graphnn.tensor(train)
    probe = lambda: graphnn.nn.functional.nll_loss(gm(x, adj)[mask], graphnn.tensor(labels)[mask])  # noqa: E731
    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["adam"] + 2  # (+ the weight decay's product and sum)
    with same_noise(torch, 2):
        t_res = rp.train_gcn(torch, t, feats, labels, edges, train)
    graphnn.manual_seed(2)
    g_res = rp.train_gcn(graphnn, g, feats, labels, edges, train, compile=compile_for(compiled))
    assert g_res["nnz"] == t_res["nnz"] and g_res["shape"] == t_res["shape"]
    close(g_res["dense"], t_res["dense"], "normalized adjacency", steps_tolerance(t_res["dense"], 8))
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    compare_series([h[0] for h in g_res["tests"]], [h[0] for h in t_res["tests"]], "test loss", rounds)
    assert [h[1] for h in g_res["tests"]] == [h[1] for h in t_res["tests"]]
    close(g_res["x_grad"], t_res["x_grad"], "d/dx sparse.mm(adj, x)", steps_tolerance(t_res["x_grad"], rounds))
    compare_state(g, t, rounds * 4)


def _sparse_cases(torch):
    """Sparse COO operations GCN programs use, with their results as NumPy arrays and Python values."""
    i = torch.tensor([[0, 1, 1, 0, 2], [1, 0, 2, 1, 2]])
    v = torch.tensor([1.0, 2.0, 3.0, 4.0, -1.5])
    a = torch.sparse_coo_tensor(i, v, (3, 4))
    c = a.coalesce()
    out = {
        "flags": (a.is_sparse, a.is_coalesced(), c.is_coalesced(), a._nnz(), c._nnz(), a.sparse_dim(), a.dense_dim()),
        "layouts": (str(a.layout).split(".")[-1], str(torch.ones(2).layout).split(".")[-1], torch.ones(2).is_sparse),
        "isinstance": isinstance(a, torch.Tensor),
        "shape": (tuple(a.shape), tuple(a.size()), a.dim(), str(a.dtype).split(".")[-1]),
        "dense": a.to_dense().numpy(),
        "c.indices": c.indices().numpy(),
        "c.values": c.values().numpy(),
        "a._indices": a._indices().numpy(),
        "sum1": torch.sparse.sum(c, dim=1).to_dense().numpy(),
        "sum1.nnz": torch.sparse.sum(c, dim=1)._nnz(),
        "sum0": torch.sparse.sum(a, dim=0).to_dense().numpy(),
        "sum": torch.sparse.sum(c).item(),
        "t": c.t().to_dense().numpy(),
        "t.coalesced": c.t().is_coalesced(),
        "scaled": (c * 2.0).to_dense().numpy(),
        "neg_div": (-c / 4).to_dense().numpy(),
        "mul_dense": (c * torch.arange(12.0).view(3, 4)).to_dense().numpy(),
        "dense_plus_sparse": (torch.ones(3, 4) + c).numpy(),
        "to_sparse": torch.eye(3).to_sparse()._indices().numpy(),
        "to_sparse.coalesced": torch.eye(3).to_sparse().is_coalesced(),
        "no_size": tuple(torch.sparse_coo_tensor(i, v).shape),
        "double": str(c.double().dtype).split(".")[-1],
    }
    e = torch.sparse_coo_tensor(torch.tensor([[0, 2], [3, 0]]), torch.tensor([1.0, 1.0]), (3, 4))
    s = c + e
    out["add"] = (s.to_dense().numpy(), s.is_coalesced(), s._nnz(), (a + e).is_coalesced(), (a + e)._nnz())
    out["sub"] = (c - e).to_dense().numpy()
    # pygcn's legacy constructor
    legacy = torch.sparse.FloatTensor(i, v.double(), torch.Size([3, 4]))
    out["legacy"] = (str(legacy.dtype).split(".")[-1], legacy.to_dense().numpy())
    # products and their gradients: with respect to the dense operand, and to the values
    x = torch.arange(8.0).view(4, 2).requires_grad_(True)
    vals = v.clone().requires_grad_(True)
    m = torch.sparse_coo_tensor(i, vals, (3, 4))
    y = torch.sparse.mm(m, x)
    z = torch.spmm(c, x) + torch.mm(c, x) + c @ x
    (y.pow(2).sum() + z.sum()).backward()
    out["mm"] = (y.detach().numpy(), z.detach().numpy(), x.grad.numpy(), vals.grad.numpy())
    return out


def test_sparse_coo_api(torch):
    """The sparse COO tensors of graphnn (dense-backed) give PyTorch's indices, values, sums, products and
    gradients; float32 sums of a few small integers and halves are exact."""
    g, t = _sparse_cases(graphnn), _sparse_cases(torch)
    assert g.keys() == t.keys()
    for k in g:
        a, b = g[k], t[k]
        if isinstance(a, tuple):
            assert len(a) == len(b), k
            for j, (x, y) in enumerate(zip(a, b)):
                close(x, y, f"{k}[{j}]") if isinstance(x, np.ndarray) else None
                assert isinstance(x, np.ndarray) or x == y, (k, j, x, y)
        elif isinstance(a, np.ndarray):
            close(a, b, k)
        else:
            assert a == b, (k, a, b)


def test_sparse_errors(torch):
    """What PyTorch refuses, or graphnn does not support, is a clear error naming the op."""
    i, v = graphnn.tensor([[0, 1], [1, 0]]), graphnn.tensor([1.0, 2.0])
    a = graphnn.sparse_coo_tensor(i, v, (2, 2))
    with pytest.raises(RuntimeError, match="uncoalesced"):
        a.indices()
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported"):
        a + graphnn.ones(2, 2)
    with pytest.raises(NotImplementedError, match=r"exp: not supported for sparse COO tensors .*to_dense"):
        a.exp()
    with pytest.raises(NotImplementedError, match="view: not supported for sparse"):
        a.view(4)
    with pytest.raises(RuntimeError, match=r"sparse_coo_tensor\(indices i64\[2,2\].*index 5 is out of bounds for dim"):
        graphnn.sparse_coo_tensor(graphnn.tensor([[0, 5], [1, 0]]), v, (2, 2))
    with pytest.raises(RuntimeError, match="values must have one row per index column"):
        graphnn.sparse_coo_tensor(i, graphnn.ones(3), (2, 2))
    assert "layout=graphnn.sparse_coo" in repr(a) and "nnz=2" in repr(a)


# -- b. graph attention networks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("variant,compiled", [("examples", False), ("examples", True), ("pair", False), ("pair", True)])
def test_gat(torch, variant, compiled):
    feats, labels, edges, train = GRAPH
    g, t = pair_models(torch, rp.build_gat, 8, 8, 2, 3, variant)
    gm = copy.deepcopy(g)
    n = len(labels)
    adj = np.eye(n, dtype=np.float32)
    adj[edges[:, 0], edges[:, 1]] = adj[edges[:, 1], edges[:, 0]] = 1.0
    x, a = graphnn.tensor(feats), graphnn.tensor(adj)
    probe = lambda: graphnn.nn.functional.nll_loss(gm(x, a), graphnn.tensor(labels))  # noqa: E731
    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["adam"] + 2
    with same_noise(torch, 4):
        t_res = rp.train_gat(torch, t, feats, labels, edges, train)
    graphnn.manual_seed(4)
    g_res = rp.train_gat(graphnn, g, feats, labels, edges, train, compile=compile_for(compiled))
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    compare_series([h[0] for h in g_res["tests"]], [h[0] for h in t_res["tests"]], "test loss", rounds)
    assert [h[1] for h in g_res["tests"]] == [h[1] for h in t_res["tests"]]
    compare_state(g, t, rounds * 3)


# -- c. MNIST hogwild ----------------------------------------------------------------------------------------------
@pytest.fixture
def start_method():
    """The program sets the start method with force=True: the test process's is restored afterwards."""
    saved = multiprocessing.get_start_method(allow_none=True)
    yield
    multiprocessing.set_start_method(saved, force=True)


def _mnist(n=24, seed=5):
    r = _rng(seed)
    labels = r.integers(0, 10, n)
    images = r.standard_normal((n, 1, 14, 14)).astype(np.float32) * 0.3
    images[np.arange(n), 0, labels] += 2.0
    return images, labels


def test_hogwild_one_process_matches_pytorch(torch, start_method):
    """One spawned worker trains the shared model: the parent's model then holds what the worker's steps made of
    it, as with PyTorch (whose worker starts from graphnn's weights)."""
    images, labels = _mnist()
    g, t = pair_models(torch, rp.build_hogwild)
    gm = copy.deepcopy(g)
    probe = lambda: graphnn.nn.functional.nll_loss(gm(graphnn.tensor(images[:8])), graphnn.tensor(labels[:8]))  # noqa: E731
    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["sgd"] + 2
    t_res = rp.train_hogwild(torch, t, images, labels, num_processes=1, start_method="spawn")
    g_res = rp.train_hogwild(graphnn, g, images, labels, num_processes=1, start_method="spawn")
    assert g_res["exitcodes"] == t_res["exitcodes"] == [0]
    assert [r for r, _ in g_res["logs"]] == [r for r, _ in t_res["logs"]] == [0, 0]
    compare_series([v for _, v in g_res["logs"]], [v for _, v in t_res["logs"]], "worker loss", rounds, offset=0)
    compare_series([g_res["test"][0]], [t_res["test"][0]], "test loss", rounds, offset=2)
    assert g_res["test"][1] == t_res["test"][1]
    compare_state(g, t, rounds * 2)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_hogwild_two_processes_share_the_model(method, start_method):
    """Two workers update the one shared model (their updates interleave as the scheduler runs them, so only what
    holds for any interleaving is checked): each ran its two steps, and the parent's parameters moved."""
    images, labels = _mnist()
    graphnn.manual_seed(0)
    model = rp.build_hogwild(graphnn)
    before = {k: to_np(v).copy() for k, v in model.state_dict().items()}
    res = rp.train_hogwild(graphnn, model, images, labels, num_processes=2, start_method=method)
    assert res["exitcodes"] == [0, 0]
    assert sorted(r for r, _ in res["logs"]) == [0, 0, 1, 1]
    assert all(np.isfinite(v) for _, v in res["logs"]) and np.isfinite(res["test"][0])
    moved = [k for k, v in model.state_dict().items() if np.abs(to_np(v) - before[k]).max() > 0]
    assert sorted(moved) == sorted(before)


def _add_in_child(t, q):
    t.add_(1.0)  # writes the shared storage
    q.put(t.is_shared())


def test_shared_tensor_through_spawn_and_queue():
    """A tensor moved to shared memory reaches a spawned process as the same memory: its in-place change shows in
    the parent. An ordinary tensor reaches it as a copy."""
    ctx = multiprocessing.get_context("spawn")
    t = graphnn.zeros(3).share_memory_()
    plain = graphnn.zeros(3)
    assert t.is_shared() and not plain.is_shared()
    q = ctx.SimpleQueue()
    for x in (t, plain):
        p = ctx.Process(target=_add_in_child, args=(x, q))
        p.start()
        p.join()
        assert p.exitcode == 0
    assert [q.get(), q.get()] == [True, False]
    assert to_np(t).tolist() == [1.0, 1.0, 1.0] and to_np(plain).tolist() == [0.0, 0.0, 0.0]
    copied = copy.deepcopy(t)  # ordinary pickling copies
    assert not copied.is_shared()


@pytest.mark.parametrize("lib", ["graphnn", "torch"])
def test_multiprocessing_spawn(lib, torch):
    """spawn(fn, args, nprocs) runs fn(rank, *args) in each process; a worker's exception reaches the parent as
    ProcessRaisedException with its traceback, as in PyTorch."""
    mod = graphnn if lib == "graphnn" else torch
    shared = mod.zeros(3).share_memory_()
    mod.multiprocessing.spawn(rp.spawn_worker, args=(lib, shared, -1), nprocs=3)
    assert to_np(shared).tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(mod.multiprocessing.ProcessRaisedException, match="worker 1 fails on purpose"):
        mod.multiprocessing.spawn(rp.spawn_worker, args=(lib, shared, 1), nprocs=2)


# -- d. translation with nn.Transformer ----------------------------------------------------------------------------
@MODES
def test_translation_transformer(torch, compiled):
    g, t = pair_models(torch, rp.build_translation)
    pairs = rp.translation_pairs()
    gm = copy.deepcopy(g)

    def probe():
        src = graphnn.tensor([[2, 5, 6, 3], [2, 7, 3, 1]]).t()
        tgt = graphnn.tensor([[2, 6, 5, 3], [2, 7, 3, 1]]).t()
        masks = rp.create_mask(graphnn, src, tgt[:-1])
        logits = gm(src, tgt[:-1], masks[0], masks[1], masks[2], masks[3], masks[2])
        return graphnn.nn.CrossEntropyLoss(ignore_index=rp.PAD_IDX)(logits.reshape(-1, 10), tgt[1:].reshape(-1))

    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["adam"]
    noise = noise_gradients(probe, gm, rounds)  # the key projection's bias: no gradient in exact arithmetic
    assert noise["transformer.encoder.layers.0.self_attn.in_proj_bias"][16:32].all()
    t_res = rp.train_translation(torch, t, pairs)
    g_res = rp.train_translation(graphnn, g, pairs, compile=compile_for(compiled))
    # an epoch's loss averages two steps' losses, the second taken one step further
    compare_series(g_res["train"], t_res["train"], "train loss", rounds * 2)
    compare_series(g_res["val"], t_res["val"], "val loss", rounds * 2, offset=2)
    assert g_res["translation"] == t_res["translation"]
    compare_state(g, t, rounds * 4, noise, 4 * adam_step_bound(1e-3, (0.9, 0.98)))


# -- e. transfer learning; saving and loading ----------------------------------------------------------------------
def test_transfer_learning_loop(torch):
    g, t = pair_models(torch, rp.build_small_cnn)
    r = _rng(8)
    images, labels = r.standard_normal((16, 3, 6, 6)).astype(np.float32), r.integers(0, 2, 16)
    gm = copy.deepcopy(g)
    crit = graphnn.nn.CrossEntropyLoss()
    rounds = probe_roundings(lambda: crit(gm(graphnn.tensor(images[:4])), graphnn.tensor(labels[:4]))) + 4
    t_res = rp.train_transfer(torch, t, images, labels)
    g_res = rp.train_transfer(graphnn, g, images, labels)
    assert [h[0] for h in g_res["history"]] == [h[0] for h in t_res["history"]]
    compare_series([h[1] for h in g_res["history"]], [h[1] for h in t_res["history"]], "epoch loss", rounds * 3)
    assert [h[2] for h in g_res["history"]] == [h[2] for h in t_res["history"]]  # accuracies (float64 quotients)
    assert {h[3].split(".")[-1] for h in g_res["history"]} == {"float64"}
    assert g_res["best_acc"] == t_res["best_acc"]
    assert g_res["lr"] == pytest.approx(t_res["lr"], rel=1e-15)
    compare_state(g, t, rounds * 6)


def test_save_and_load_tutorial(torch, tmp_path):
    g, t = pair_models(torch, rp.build_small_cnn)
    (tmp_path / "g").mkdir()
    (tmp_path / "t").mkdir()
    t_res = rp.save_and_load(torch, rp.build_small_cnn, t, str(tmp_path / "t"))
    g_res = rp.save_and_load(graphnn, rp.build_small_cnn, g, str(tmp_path / "g"))
    assert g_res.keys() == t_res.keys()
    for k in g_res:
        if k == "loss":
            assert g_res[k] == pytest.approx(t_res[k], rel=1e-5), k
        elif k == "resumed_fc":
            close(g_res[k], t_res[k], k, steps_tolerance(t_res[k], 200))
        else:
            assert g_res[k] == t_res[k], k
