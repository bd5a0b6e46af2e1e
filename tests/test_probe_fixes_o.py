"""Fixes of session o's findings from probes of unseen programs: losses at the edges of their domains (infinite
differences, variances below eps), the weight argument of mse_loss / l1_loss, and PyTorch 2.13's
linear_cross_entropy and LinearCrossEntropyLoss."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from oracle import torch_or_skip

INF = float("inf")


@pytest.mark.parametrize("loss", ["smooth_l1", "huber"])
def test_infinite_differences_have_the_linear_pieces_gradient(loss):
    """The quadratic piece's gradient at an infinite difference was 0 * inf = NaN (its branch not taken)."""
    x = graphnn.tensor([INF, -INF, 1e30, 0.3], requires_grad=True)
    if loss == "smooth_l1":
        F.smooth_l1_loss(x, graphnn.zeros(4), reduction="sum", beta=1.0).backward()
        want = [1.0, -1.0, 1.0, 0.3]
    else:
        F.huber_loss(x, graphnn.zeros(4), reduction="sum", delta=2.0).backward()
        want = [2.0, -2.0, 2.0, 0.3]
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-6)


def test_gaussian_nll_gradient_reaches_a_variance_below_eps():
    """PyTorch clamps var in place under no_grad: below eps its gradient is that of the clamped value (graphnn's
    clamp gave zero there: a predicted variance that fell below eps could never move up again)."""
    var = graphnn.tensor([0.0, 1e-9, 0.5], requires_grad=True)
    loss = nn.GaussianNLLLoss(eps=1e-4)(graphnn.ones(3), graphnn.zeros(3), var)
    loss.backward()
    # d/dv of 0.5 (log v + 1 / v) / 3 at v = eps (the first two) and at 0.5
    want = [(0.5 / 1e-4 - 0.5 / 1e-8) / 3] * 2 + [(0.5 / 0.5 - 0.5 / 0.25) / 3]
    np.testing.assert_allclose(var.grad.numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(
        loss.item(), np.mean([0.5 * (np.log(1e-4) + 1e4)] * 2 + [0.5 * (np.log(0.5) + 2)]), rtol=1e-6
    )


def test_mse_and_l1_take_a_weight_per_element():
    x, w = graphnn.tensor([[1.0, 2.0], [3.0, 4.0]]), graphnn.tensor([[1.0, 0.0], [2.0, 1.0]])
    assert F.mse_loss(x, graphnn.zeros(2, 2), weight=w).item() == pytest.approx(35 / 4)
    assert F.l1_loss(x, graphnn.zeros(2, 2), weight=w, reduction="sum").item() == pytest.approx(11.0)
    with pytest.raises(ValueError, match="same size"):
        F.mse_loss(x, graphnn.zeros(2, 2), weight=graphnn.ones(2))


@pytest.mark.parametrize("out_features, bias, smoothing", [((), False, 0.0), ((2,), True, 0.1)])
def test_linear_cross_entropy_matches_pytorch(out_features, bias, smoothing):
    torch = torch_or_skip()
    torch.manual_seed(0)
    tm = torch.nn.LinearCrossEntropyLoss(4, 3, out_features=out_features, bias=bias, label_smoothing=smoothing)
    gm = nn.LinearCrossEntropyLoss(4, 3, out_features=out_features, bias=bias, label_smoothing=smoothing)
    gm.load_state_dict({k: graphnn.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    assert repr(gm) == repr(tm)
    r = np.random.default_rng(0)
    x = r.standard_normal((5, 4)).astype(np.float32)
    t = r.integers(0, 3, (5,) + out_features)
    want = tm(torch.tensor(x), torch.tensor(t))
    want.backward()
    for run in (gm, graphnn.compile(gm)):
        gm.zero_grad()
        got = run(graphnn.tensor(x), graphnn.tensor(t))
        got.backward()
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
        np.testing.assert_allclose(gm.linear.weight.grad.numpy(), tm.linear.weight.grad.numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(RuntimeError, match="in_features"):
        F.linear_cross_entropy(graphnn.ones(5, 3), gm.linear.weight, graphnn.tensor(t))


def _bn_model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))


def test_drawing_a_training_step_leaves_the_model_as_it_was():
    """viz.summary(train=True) and draw(stage='backward') ran one real SGD step on the model passed (weights moved,
    .grad filled, BatchNorm statistics updated): a trained model in a notebook was changed by looking at it."""
    import graphnn.viz as viz

    m = _bn_model()
    before = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
    viz.summary(m, (2, 1, 8, 8), train=True)
    viz.draw(m, (2, 1, 8, 8), stage="backward")
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.detach().numpy(), before[k], err_msg=k)
    assert all(p.grad is None for p in m.parameters())


def test_export_never_replaces_files_that_are_not_an_earlier_exports(tmp_path):
    m, x = nn.Linear(3, 2), graphnn.randn(4, 3)
    d = tmp_path / "out"
    d.mkdir()
    (d / "weights.bin").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="weights.bin"):
        graphnn.export(m, x, str(d), link=False)
    assert (d / "weights.bin").read_bytes() == b"mine" and not (d / "manifest.json").exists()
    graphnn.export(m, x, str(d), link=False, overwrite=True)
    graphnn.export(m, x, str(d), link=False)  # (an earlier export in it: replaced)
    # (sums of 3 float32 products: a few ulp of the largest term)
    np.testing.assert_allclose(graphnn.load(str(d))(x).numpy(), m(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        graphnn.export(m, x, str(tmp_path / "afile"), link=False)


def test_exporting_batch_norms_in_training_mode_warns(tmp_path):
    with pytest.warns(UserWarning, match=r"training mode.*model.eval\(\)"):
        graphnn.export(_bn_model(), graphnn.randn(2, 1, 8, 8), str(tmp_path / "bn"), link=False)


@pytest.mark.parametrize("compiled", [False, True])
def test_scatter_and_index_copy_keep_a_bool_or_integer_sources_dtype(compiled):
    """scatter of a bool or int64 src gave float32 (a nucleus-sampling filter's `remove.scatter(1, order, remove)`
    then failed as a mask; int64 values above 2^24 lost their low bits)."""

    def f(b, order, big):
        return (
            b.scatter(1, order, b),
            graphnn.zeros(1, 3, dtype=graphnn.long).scatter(1, order, big),
            graphnn.zeros(3, 1, dtype=graphnn.bool).index_copy(0, order[0], b.reshape(3, 1)),
        )

    run = graphnn.compile(f) if compiled else f
    order = graphnn.tensor([[2, 0, 1]])
    masks, ints, copied = run(graphnn.tensor([[True, False, False]]), order, graphnn.tensor([[10**9 + 1, 5, 7]]))
    assert masks.dtype == graphnn.bool and masks.tolist() == [[False, False, True]]
    assert ints.dtype == graphnn.long and ints.tolist() == [[5, 7, 10**9 + 1]]
    assert copied.dtype == graphnn.bool and copied.reshape(-1).tolist() == [False, False, True]


def test_topk_of_a_few_among_many_matches_a_stable_sort():
    """topk's reference kernel selects the k first by a partition (an eager topk over a vocabulary sorted every row:
    26x PyTorch's time); ties keep PyTorch's stable order."""
    r = np.random.default_rng(0)
    for x in (r.standard_normal((4, 5000)).astype(np.float32), r.integers(0, 3, (5, 64))):
        for largest in (True, False):
            got = graphnn.tensor(x).topk(7, largest=largest)
            order = np.argsort(-x if largest else x, axis=-1, kind="stable")[:, :7]
            np.testing.assert_array_equal(got.indices.numpy(), order)
            np.testing.assert_array_equal(got.values.numpy(), np.take_along_axis(x, order, -1))


@pytest.mark.parametrize("compiled", [False, True])
def test_global_optimizer_step_hooks(compiled):
    from graphnn.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    seen = []
    w = nn.Parameter(graphnn.ones(2))
    opt = graphnn.optim.SGD([w], lr=0.5)

    def step():
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()

    run = graphnn.compile(step) if compiled else step
    pre = register_optimizer_step_pre_hook(lambda o, a, k: seen.append(("pre", o is opt)))
    post = register_optimizer_step_post_hook(lambda o, a, k: seen.append(("post", o is opt)))
    try:
        run()
    finally:
        pre.remove()
        post.remove()
    assert seen == [("pre", True), ("post", True)]
    np.testing.assert_allclose(w.detach().numpy(), [0.0, 0.0])


def test_a_text_cnn_serves_every_sequence_length_from_one_program(monkeypatch):
    """A convolution's input gradient (col2im) kept a scratch plane of the representative length: the dynamic code
    held at that length only, and a text CNN over variable-length batches compiled every new length (2-9 s each)."""
    import graphnn.codegen.dynamic as dynamic

    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()
    graphnn.manual_seed(0)
    emb, conv, head = nn.Embedding(30, 8), nn.Conv1d(8, 6, 3, padding=1), nn.Linear(6, 2)
    opt = graphnn.optim.SGD([*emb.parameters(), *conv.parameters(), *head.parameters()], lr=0.1)

    def step(tokens, y):
        opt.zero_grad()
        h = conv(emb(tokens).transpose(1, 2)).relu().max(dim=2).values
        loss = F.cross_entropy(head(h), y)
        loss.backward()
        opt.step()
        return loss

    run = graphnn.compile(step)
    r = np.random.default_rng(0)
    before = dict(dynamic.STATS)
    for length in (9, 12, 7, 15, 11):
        run(graphnn.tensor(r.integers(0, 30, (4, length))), graphnn.tensor(r.integers(0, 2, 4)))
    assert dynamic.STATS["dynamic_compiled"] - before["dynamic_compiled"] == 1
    assert dynamic.STATS["dynamic_reused"] - before["dynamic_reused"] == 3


@pytest.mark.parametrize("nesterov, adjust", [(True, None), (False, "match_rms_adamw")])
def test_muon_matches_pytorch_up_to_its_bfloat16(nesterov, adjust):
    """optim.Muon (PyTorch 2.9+): PyTorch runs the Newton-Schulz iterations in bfloat16 (8 bits of mantissa), graphnn
    in float32: five steps of lr 0.02 agree to a few bfloat16 roundings of the updates; compiled agrees with eager."""
    torch = torch_or_skip()
    r = np.random.default_rng(0)
    w0, x = r.standard_normal((6, 4)).astype(np.float32), r.standard_normal((5, 6)).astype(np.float32)
    tw = torch.nn.Parameter(torch.tensor(w0))
    to = torch.optim.Muon([tw], lr=0.02, nesterov=nesterov, adjust_lr_fn=adjust)
    runs = []
    for compiled in (False, True):
        gw = nn.Parameter(graphnn.tensor(w0))
        go = graphnn.optim.Muon([gw], lr=0.02, nesterov=nesterov, adjust_lr_fn=adjust)

        def step():
            go.zero_grad()
            (graphnn.tensor(x) @ gw).square().sum().backward()
            go.step()

        run = graphnn.compile(step) if compiled else step
        for _ in range(5):
            run()
        runs.append(gw.detach().numpy())
    for _ in range(5):
        to.zero_grad()
        (torch.tensor(x) @ tw).square().sum().backward()
        to.step()
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-5, atol=1e-6)
    step_size = 0.02 * (np.sqrt(1.5) if adjust is None else 0.2 * np.sqrt(6))
    # (per step, PyTorch's update rounds to bfloat16, 2^-8 relative, in each of the 3 products of each of the 5
    # iterations; the update's entries are at most about 1)
    np.testing.assert_allclose(runs[0], tw.detach().numpy(), rtol=0, atol=5 * step_size * 15 * 2**-8)
    with pytest.raises(ValueError, match="2D parameters"):
        graphnn.optim.Muon([nn.Parameter(graphnn.ones(3))])


@pytest.mark.parametrize(
    "options", [{}, {"weight_decay": 0.1, "lr": 0.05}, {"eps": (1e-6, 1e-2), "d": 2.0, "maximize": True}]
)
def test_adafactor_matches_pytorch(options):
    """optim.Adafactor (PyTorch 2.5+): factored second moments of a matrix, a full one of a vector; eager and
    compiled, six steps."""
    torch = torch_or_skip()
    r = np.random.default_rng(0)
    w0, b0 = r.standard_normal((6, 4)).astype(np.float32), r.standard_normal(4).astype(np.float32)
    x = r.standard_normal((5, 6)).astype(np.float32)
    tw, tb = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(b0))
    to = torch.optim.Adafactor([tw, tb], **options)
    for _ in range(6):
        to.zero_grad()
        (torch.tensor(x) @ tw + tb).square().sum().backward()
        to.step()
    for compiled in (False, True):
        gw, gb = nn.Parameter(graphnn.tensor(w0)), nn.Parameter(graphnn.tensor(b0))
        go = graphnn.optim.Adafactor([gw, gb], **options)

        def step():
            go.zero_grad()
            (graphnn.tensor(x) @ gw + gb).square().sum().backward()
            go.step()

        run = graphnn.compile(step) if compiled else step
        for _ in range(6):
            run()
        # (six updates of at most lr times the parameters' RMS, each a few float32 roundings off)
        np.testing.assert_allclose(gw.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gb.detach().numpy(), tb.detach().numpy(), rtol=1e-5, atol=1e-6)
        assert sorted(go.state[gw]) == sorted(to.state[tw]) and sorted(go.state[gb]) == sorted(to.state[tb])


def test_multinomial_with_replacement_over_a_vocabulary_is_a_binary_search():
    """Draws with replacement counted the running sums below each uniform through an (S, n) comparison matrix:
    5120 negatives among 50k words took 3.8 s and 2 GB eagerly. The count is a binary search now, the same
    numbers (ties with running sums included)."""
    from graphnn.core.tensor_ops import count_below

    r = np.random.default_rng(0)
    for n, s in ((1, 4), (2, 9), (7, 50), (1000, 300)):
        p = r.random((3, n))
        p[:, ::3] = 0.0
        cdf = np.cumsum(p, -1)
        t = r.random((3, s)) * cdf[:, -1:]
        t[:, : min(3, n)] = cdf[:, : min(3, s)]  # (exactly on running sums)
        want = (cdf[:, None, :] <= t[:, :, None]).sum(-1)
        np.testing.assert_array_equal(count_below(graphnn.tensor(cdf), graphnn.tensor(t)).numpy(), want)
    graphnn.manual_seed(0)
    w = graphnn.rand(50000)
    draws = graphnn.multinomial(w, 5120, replacement=True).numpy()
    assert draws.min() >= 0 and draws.max() < 50000 and len(np.unique(draws)) > 4000


def test_searchsorted_by_binary_search_matches_pytorch():
    """searchsorted (and bucketize) count by the same binary search as multinomial: 1-d and batched sequences, both
    sides, ties, infinities and NaN values."""
    torch = torch_or_skip()
    r = np.random.default_rng(0)
    cases = [
        (np.sort(r.standard_normal(10)).astype(np.float32), r.standard_normal((3, 4)).astype(np.float32)),
        (np.sort(r.integers(0, 5, (2, 7)), -1), r.integers(-1, 7, (2, 5))),
        (np.array([1.0, 2.0, 2.0, 3.0], np.float32), np.array([2.0, np.nan, -np.inf, np.inf, 3.0], np.float32)),
        (np.array([5.0], np.float32), np.array([4.0, 5.0, 6.0], np.float32)),
    ]
    for seq, v in cases:
        for right in (False, True):
            want = torch.searchsorted(torch.tensor(seq), torch.tensor(v), right=right).numpy()
            got = graphnn.searchsorted(graphnn.tensor(seq), graphnn.tensor(v), right=right)
            np.testing.assert_array_equal(got.numpy(), want)
