"""graphnn.compile: compiled forward/backward agree with eager, and a whole training step is one native call."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
from graphnn.tools.data import make_dataset
from graphnn.tools.tutorial_net import Net
from parity_util import close
from tolerance import recorded_bounds, sgd_trajectory
from train_steps import sgd_step


def _pair(seed=0):
    graphnn.manual_seed(seed)
    a = Net()
    b = Net()
    b.load_state_dict(a.state_dict())
    return a, b


def test_compiled_module_forward_and_backward_match_eager():
    eager, comp = _pair()
    cnet = graphnn.compile(comp)
    x = graphnn.randn(4, 1, 32, 32)
    y = graphnn.tensor([1, 5, 0, 9])
    crit = nn.CrossEntropyLoss()
    le = crit(eager(x), y)
    lc = crit(cnet(x), y)
    bounds = recorded_bounds([le], le)  # both within the eager graph's rounding-error bound: 2 E apart
    close(lc, le, "loss", bounds.tol(0))
    le.backward()
    lc.backward()
    assert type(cnet(x).grad_fn).__name__ == "CompiledFunctionBackward"
    for (name, pe), pc in zip(eager.named_parameters(), comp.parameters()):
        close(pc.grad, pe.grad, name, bounds.grad_tol(pe))
    stages = cnet.graphs
    assert {"traced", "forward", "backward", "fused"} <= set(stages)
    graphnn.ir.verify(stages["forward"])
    graphnn.ir.verify(stages["backward"])


def test_compiled_inference_under_no_grad():
    net = Net().eval()
    cnet = graphnn.compile(net)
    x = graphnn.randn(2, 1, 32, 32)
    with graphnn.no_grad():
        out = cnet(x)
    ref = net(x)  # eager, with its graph recorded for the bound
    assert not out.requires_grad
    close(out, ref, "output", recorded_bounds([ref]).tol(0))


def test_fusion_groups_are_visible():
    """Bias add and ReLU run in the loop of the producing conv/linear GEMM; the IR of every stage is exposed."""
    net = Net()
    cnet = graphnn.compile(net)
    with graphnn.no_grad():
        cnet(graphnn.randn(1, 1, 32, 32))
    plan = cnet.graphs["fused"]
    kinds = [tuple(n.op for n in g.nodes) for g in plan.groups]
    # conv1, conv2 (as im2col + GEMM), fc1 and fc2: GEMM, bias add and activation in one kernel
    assert sum("matmul" in k and "add" in k and "relu" in k for k in kinds) == 4, kinds
    assert kinds.count(("im2col",)) == 2, kinds
    assert len(plan.groups) == 9, kinds
    assert "conv" in str(cnet.graphs["traced"]) and "conv" in str(cnet.graphs["optimized"])
    assert "im2col" in str(cnet.graphs["lowered"]) and "conv(" not in str(cnet.graphs["lowered"])


def _train(step_fn, images, labels, steps, batch):
    losses = []
    for i in range(steps):
        j = i % (len(images) // batch)
        x = graphnn.from_numpy(images[j * batch : (j + 1) * batch])
        y = graphnn.from_numpy(labels[j * batch : (j + 1) * batch])
        losses.append(step_fn(x, y).item())
    return losses


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_compiled_training_step_matches_eager_trajectory(momentum):
    """Losses and parameters of 20 compiled steps within twice the eager trajectory's rounding-error bounds."""
    images, labels = make_dataset(256, seed=3)
    eager, comp = _pair(seed=2)
    batches = [
        (graphnn.from_numpy(images[j * 32 : (j + 1) * 32]), graphnn.from_numpy(labels[j * 32 : (j + 1) * 32]))
        for j in (i % (len(images) // 32) for i in range(20))
    ]
    le, le_bounds, param_bounds = sgd_trajectory(eager, nn.CrossEntropyLoss(), batches, 0.02, momentum)
    cstep = graphnn.compile(sgd_step(comp, momentum=momentum))
    lc = _train(cstep, images, labels, 20, 32)
    close(np.array(lc), np.array(le), "losses", 2 * np.array(le_bounds))
    for (name, pe), pc, bound in zip(eager.named_parameters(), comp.parameters(), param_bounds):
        close(pc, pe, name, 2 * bound)
    # One native entry point per step: the whole step is one graph with parameter write-back.
    g = cstep.graphs["optimized"]
    assert len(g.meta["writeback"]) >= 10
    assert any(n.op == "conv_grad_weight" for n in g.nodes)


def test_compiled_training_reaches_90_percent():
    from graphnn.tools.demo import run

    res = run(steps=120, batch=64, quiet=True)
    assert res["train_accuracy"] > 0.9, res


def test_new_shape_retraces():
    net = Net()
    cnet = graphnn.compile(net)
    with graphnn.no_grad():
        a = cnet(graphnn.randn(1, 1, 32, 32))
        b = cnet(graphnn.randn(3, 1, 32, 32))
    assert a.shape == (1, 10) and b.shape == (3, 10)
    assert len(cnet.cache) == 2


def test_a_compiled_module_is_a_module_as_torch_compile_makes_it():
    """graphnn.compile(module) returns a Module (torch.compile's OptimizedModule): the original is its child
    `_orig_mod` (state_dict keys and parameter names carry that prefix), train()/eval()/to() return it, and it can
    replace a child of another module (per-block compilation), whose parameters stay registered."""
    graphnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = graphnn.randn(5, 4)
    want = model(x).detach().numpy()
    first = model[0]
    model[0] = graphnn.compile(first)
    cm = model[0]
    assert isinstance(cm, nn.Module) and cm._orig_mod is first
    assert cm.train() is cm and cm.eval() is cm and cm.to("cpu") is cm and not first.training
    assert list(cm.state_dict()) == ["_orig_mod.weight", "_orig_mod.bias"]
    assert [n for n, _ in model.named_parameters()][:2] == ["0._orig_mod.weight", "0._orig_mod.bias"]
    assert sum(p.numel() for p in model.parameters()) == 4 * 8 + 8 + 8 * 2 + 2
    np.testing.assert_allclose(model(x).detach().numpy(), want, rtol=1e-6, atol=1e-6)
    assert cm.last is not None and cm.in_features == 4  # the engine's and the original's attributes
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    plain = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    plain.load_state_dict({k.replace("_orig_mod.", ""): v for k, v in sd.items()})
    np.testing.assert_allclose(plain(x).detach().numpy(), want, rtol=1e-6, atol=1e-6)
    calls = []
    cm.register_forward_hook(lambda m, args, out: calls.append(out.shape))
    model(x)
    assert calls == [(5, 8)]  # a hook on the wrapper runs around the compiled call


def test_a_compiled_module_deep_copies_and_pickles():
    """copy.deepcopy (early stopping's best model, swa_utils.AveragedModel) and pickling of a compiled module give a
    compiled module of a copy of the original, with the same results."""
    import copy
    import pickle

    graphnn.manual_seed(0)
    cm = graphnn.compile(nn.Sequential(nn.Linear(3, 4), nn.Tanh()), max_specializations=5)
    x = graphnn.randn(2, 3)
    for twin in (copy.deepcopy(cm), None, copy.deepcopy(cm), pickle.loads(pickle.dumps(cm))):
        if twin is None:
            cm(x)  # (a copy after native code exists)
            continue
        assert twin._orig_mod is not cm._orig_mod and twin.max_specializations == 5
        np.testing.assert_array_equal(twin(x).detach().numpy(), cm(x).detach().numpy())
    avg = graphnn.optim.swa_utils.AveragedModel(cm)
    np.testing.assert_array_equal(avg(x).detach().numpy(), cm(x).detach().numpy())
