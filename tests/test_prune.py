"""graphnn.nn.utils.prune against _tp(torch), following the pruning tutorial on the LeNet: the masks of the
deterministic methods (l1, ln, custom, global l1) equal PyTorch's on data without ties, the random ones prune the
right number of entries; parameter / buffer names, iterative pruning (PruningContainer), remove, custom methods,
the errors; and a pruned model's gradients and training steps, eager and compiled, against PyTorch (float64)."""

import importlib

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.optim as goptim
from graphnn.nn.utils import prune
from graphnn.tools.tutorial_net import Net
from parity_util import check, close, copy_state, steps_tolerance, to_np
from train_steps import sum_step


def _tp(torch):
    """torch.nn.utils.prune (a submodule torch does not import by itself)."""
    return importlib.import_module("torch.nn.utils.prune")


def _torch_net(torch):
    tnn, tf = torch.nn, torch.nn.functional

    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5), tnn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = tnn.Linear(400, 120), tnn.Linear(120, 84), tnn.Linear(84, 10)

        def forward(self, x):
            x = tf.max_pool2d(tf.relu(self.conv1(x)), (2, 2))
            x = tf.max_pool2d(tf.relu(self.conv2(x)), 2)
            x = tf.relu(self.fc1(x.view(-1, 400)))
            return self.fc3(tf.relu(self.fc2(x)))

    return TNet().double()


def _net_pair(torch, seed=0):
    graphnn.manual_seed(seed)
    g = Net().double()
    t = _torch_net(torch)
    copy_state(torch, g, t)
    return g, t


def _prune_like_tutorial(lib, net) -> None:
    """The tutorial's deterministic steps: a tensor and a bias pruned, one tensor pruned twice, global pruning."""
    lib.l1_unstructured(net.conv1, name="weight", amount=0.3)
    lib.l1_unstructured(net.conv1, name="bias", amount=3)
    lib.ln_structured(net.conv1, name="weight", amount=0.5, n=2, dim=0)  # iterative: a PruningContainer
    lib.ln_structured(net.conv2, name="weight", amount=4, n=1, dim=1)
    params = [(net.conv2, "weight"), (net.fc1, "weight"), (net.fc2, "weight"), (net.fc3, "weight")]
    lib.global_unstructured(params, pruning_method=lib.L1Unstructured, amount=0.2)


def _hook(module, name):
    return next(h for h in module._forward_pre_hooks.values() if h._tensor_name == name)  # (as the tutorial does)


def test_tutorial_flow_masks_names_and_remove(torch):
    g, t = _net_pair(torch)
    _prune_like_tutorial(prune, g)
    _prune_like_tutorial(_tp(torch), t)
    assert list(g.state_dict()) == list(t.state_dict())
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in g.conv1.named_buffers()] == ["weight_mask", "bias_mask"]
    for k, v in t.state_dict().items():  # masks equal, originals untouched
        close(g.state_dict()[k], v, k)
    for m in ("conv1", "conv2", "fc1"):
        gm, tm = getattr(g, m), getattr(t, m)
        close(gm.weight, tm.weight, f"{m}.weight")  # = weight_orig * weight_mask, exactly
    container = _hook(g.conv1, "weight")
    assert isinstance(container, prune.PruningContainer)
    assert [type(h).__name__ for h in container] == ["L1Unstructured", "LnStructured"]
    assert [type(h).__name__ for h in _hook(g.conv2, "weight")] == ["LnStructured", "CustomFromMask"]
    assert int(to_np(g.conv1.bias_mask).sum()) == 3 and prune.is_pruned(g)

    for lib, net in ((prune, g), (_tp(torch), t)):
        for m in ("conv1", "conv2", "fc1", "fc2", "fc3"):
            lib.remove(getattr(net, m), "weight")
    assert list(g.state_dict()) == list(t.state_dict())
    assert isinstance(g.fc1.weight, gnn.Parameter) and g.fc1.weight.requires_grad
    assert "weight" in dict(g.fc1.named_parameters())
    close(g.conv2.weight, t.conv2.weight, "conv2.weight after remove")
    assert prune.is_pruned(g)  # conv1's bias is still pruned
    prune.remove(g.conv1, "bias")
    assert not prune.is_pruned(g) and not g.conv1._forward_pre_hooks
    with pytest.raises(ValueError, match="has to be pruned before pruning can be removed"):
        prune.remove(g.conv1, "bias")


def test_iterative_pruning_prunes_only_unpruned_entries(torch):
    w = np.random.default_rng(3).standard_normal((4, 6))
    masks = []
    for lib, nn, tensor in ((prune, gnn, graphnn.tensor), (_tp(torch), torch.nn, torch.tensor)):
        m = nn.Linear(6, 4).double()
        m.weight.data = tensor(w)
        lib.l1_unstructured(m, "weight", amount=0.5)  # 12 of 24
        lib.l1_unstructured(m, "weight", amount=0.5)  # round(0.5 * 12) = 6 of the 12 left
        lib.ln_structured(m, "weight", amount=1, n=float("inf"), dim=0)  # one more row
        lib.custom_from_mask(m, "bias", mask=tensor(np.array([1.0, 0.0, 1.0, 0.0])))
        masks.append((to_np(m.weight_mask), to_np(m.bias_mask)))
    np.testing.assert_array_equal(masks[0][0], masks[1][0])
    np.testing.assert_array_equal(masks[0][1], masks[1][1])
    assert masks[0][0].sum() <= 6 and masks[0][0].sum(axis=1).tolist().count(0) >= 1


def test_importance_scores_and_prune_method(torch):
    w = np.random.default_rng(4).standard_normal((5, 3))
    scores = np.random.default_rng(5).standard_normal((5, 3))
    g, t = gnn.Linear(3, 5).double(), torch.nn.Linear(3, 5).double()
    prune.l1_unstructured(g, "weight", amount=4, importance_scores=graphnn.tensor(scores))
    _tp(torch).l1_unstructured(t, "weight", amount=4, importance_scores=torch.tensor(scores))
    close(g.weight_mask, t.weight_mask, "l1 mask from importance scores")
    got = prune.LnStructured(amount=2, n=1, dim=1).prune(graphnn.tensor(w))
    want = _tp(torch).LnStructured(amount=2, n=1, dim=1).prune(torch.tensor(w))
    close(got, want, "LnStructured.prune")
    with pytest.raises(AssertionError, match="importance_scores should have the same shape"):
        prune.l1_unstructured(g, "bias", amount=1, importance_scores=graphnn.ones(2))
    assert "bias" in dict(g.named_parameters())  # a failed apply leaves the parameter as it was


def test_random_methods_prune_the_right_count():
    graphnn.manual_seed(0)
    m = gnn.Conv2d(3, 8, 3)
    prune.random_unstructured(m, "weight", amount=0.25)
    mask = to_np(m.weight_mask)
    assert set(np.unique(mask)) <= {0.0, 1.0} and mask.dtype == np.float32
    assert (mask == 0).sum() == round(0.25 * mask.size)
    prune.random_structured(m, "weight", amount=3, dim=0)  # 3 of the 8 output channels, besides
    mask = to_np(m.weight_mask)
    assert (mask.reshape(8, -1).sum(axis=1) == 0).sum() >= 3 and set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_array_equal(to_np(m.weight), to_np(m.weight_orig) * mask)
    prune.identity(m, "bias")
    assert to_np(m.bias_mask).all()


class FooBarPruningMethod(prune.BasePruningMethod):
    """The tutorial's custom method: prunes every other entry of the tensor."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        mask = default_mask.clone()
        mask.view(-1)[::2] = 0
        return mask


def test_custom_method_subclass():
    m = gnn.Linear(3, 4)
    FooBarPruningMethod.apply(m, "bias")
    np.testing.assert_array_equal(to_np(m.bias_mask), [0.0, 1.0, 0.0, 1.0])
    FooBarPruningMethod.apply(m, "bias")  # again: every other one of the entries still unpruned
    np.testing.assert_array_equal(to_np(m.bias_mask), [0.0, 0.0, 0.0, 1.0])
    assert [type(h).__name__ for h in _hook(m, "bias")] == ["FooBarPruningMethod"] * 2


@pytest.mark.parametrize(
    "call, error, msg",
    [
        (lambda P, m: P.l1_unstructured(m, "weight", amount="a"), TypeError, "Invalid type for amount"),
        (lambda P, m: P.l1_unstructured(m, "weight", amount=1.5), ValueError, "should either be a float in the"),
        (lambda P, m: P.random_unstructured(m, "weight", amount=-1), ValueError, "non-negative integer"),
        (lambda P, m: P.l1_unstructured(m, "weight", amount=13), ValueError, "should be smaller than the number"),
        (lambda P, m: P.ln_structured(m, "bias", amount=1, n=2, dim=0), ValueError, "multidimensional tensors"),
        (lambda P, m: P.random_structured(m, "weight", amount=1, dim=2), IndexError, "Invalid index 2"),
        (lambda P, m: P.global_unstructured([(m, "weight")], P.LnStructured, amount=1, n=1), TypeError, "Only"),
    ],
)
def test_errors_as_pytorch(torch, call, error, msg):
    keys = []
    for P, m in ((prune, gnn.Linear(3, 4)), (_tp(torch), torch.nn.Linear(3, 4))):
        with pytest.raises(error, match=msg):
            call(P, m)
        assert not P.is_pruned(m)
        keys.append(list(m.state_dict()))  # the parameter back (last, when the mask failed, as PyTorch's)
    assert keys[0] == keys[1]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_pruned_gradients_as_pytorch(torch, compiled):
    g, t = _net_pair(torch, seed=1)
    _prune_like_tutorial(prune, g)
    _prune_like_tutorial(_tp(torch), t)
    x = np.random.default_rng(1).standard_normal((2, 1, 32, 32))
    check(torch, g, t, [x], g, t, compiled=compiled)  # gradients of weight_orig: zero where pruned, as PyTorch's


def test_training_a_pruned_model_compiled(torch):
    g, t = _net_pair(torch, seed=2)
    _prune_like_tutorial(prune, g)
    _prune_like_tutorial(_tp(torch), t)
    before = to_np(g.fc1.weight_orig).copy()
    gopt, topt = goptim.SGD(g.parameters(), lr=0.05), torch.optim.SGD(t.parameters(), lr=0.05)

    def step(lib, net, opt):
        def run(x, y):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss

        return run

    g_step, t_step = graphnn.compile(step(graphnn, g, gopt)), step(torch, t, topt)
    rng = np.random.default_rng(2)
    # the longest reduction of a step: conv1's weight gradient, over 2 x 28 x 28 positions
    roundings = 2 * 28 * 28
    for i in range(1, 4):
        x, y = rng.standard_normal((2, 1, 32, 32)), rng.integers(0, 10, 2)
        t_loss = t_step(torch.tensor(x), torch.tensor(y))
        close(g_step(graphnn.tensor(x), graphnn.tensor(y)), t_loss, f"loss {i}", steps_tolerance(t_loss, roundings * i))
    for (k, a), (_, b) in zip(g.named_parameters(), t.named_parameters()):
        close(a, b, k, steps_tolerance(b, roundings * 3, 1.0))
    pruned = to_np(g.fc1.weight_mask) == 0
    np.testing.assert_array_equal(to_np(g.fc1.weight_orig)[pruned], before[pruned])  # no gradient where pruned
    g(graphnn.randn(1, 1, 32, 32, dtype=graphnn.float64))  # the hook recomputes weight from the trained weight_orig
    assert not to_np(g.fc1.weight)[pruned].any()


def test_a_compiled_training_step_leaves_the_recomputed_weight_of_its_last_forward():
    """prune's hook sets module.weight = weight_orig * weight_mask before each forward: after compiled steps it holds
    the value the last call computed, as after eager steps (it kept the value from before training)."""
    import graphnn.nn.utils.prune as prune

    results = []
    for compiled in (False, True):
        lin = graphnn.nn.Linear(3, 2)
        with graphnn.no_grad():
            lin.weight.copy_(graphnn.tensor([[1.0, -2.0, 0.5], [0.1, 3.0, -1.5]]))
            lin.bias.zero_()
        prune.l1_unstructured(lin, "weight", amount=0.5)
        step = sum_step(lin, graphnn.optim.SGD(lin.parameters(), lr=0.1))
        f = graphnn.compile(step) if compiled else step
        for _ in range(3):
            f(graphnn.ones(4, 3))
        results.append((lin.weight.tolist(), lin.weight_orig.tolist()))
    assert results[0] == results[1]
    assert results[1][0] == [[0.0, -2.8, 0.0], [0.0, 2.2, -2.3]] or np.allclose(
        results[1][0], [[0.0, -2.8, 0.0], [0.0, 2.2, -2.3]], atol=1e-6
    )  # PyTorch's values
