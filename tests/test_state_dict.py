"""state_dict, named_parameters and load_state_dict with tied weights, shared buffers and shared submodules, checked
against PyTorch; optimizers and compiled training steps update a tied parameter once and keep the tie."""

from __future__ import annotations

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.optim as goptim
from parity_util import close, copy_state, steps_tolerance

V, D = 7, 4
# Roundings per training step of _tied on a batch of 5: forward: Linear over D (4 + 1), tanh (8), scale (1),
# decoder over D (4 + 1), cross-entropy over V (max, exp 8, sum 7, log 8, 2) and the mean over 5: ~50; the
# backward pass about as many again; a momentum SGD update 3: 110 per step, errors carried into later steps.
STEP_ROUNDINGS = 110


def _tied(nn, tensor_fn):
    """The word_language_model / GPT pattern: the decoder's weight is the embedding's; plus a buffer shared by two
    modules and a non-persistent buffer."""

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Embedding(V, D)
            self.mid = nn.Linear(D, D)
            self.dec = nn.Linear(D, V)
            self.dec.weight = self.enc.weight
            self.mid.register_buffer("scale", tensor_fn(np.full(D, 0.5, np.float32)))
            self.dec.register_buffer("scale2", self.mid.scale)
            self.dec.register_buffer("scratch", tensor_fn(np.zeros(2, np.float32)), persistent=False)

        def forward(self, idx):
            return self.dec(self.mid(self.enc(idx)).tanh() * self.mid.scale)

    return Tied()


def _shared_child(nn):
    """One Linear registered under two names and inside a Sequential."""

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = self.a
            self.c = nn.Sequential(self.a, nn.ReLU())

        def forward(self, x):
            return self.c(self.b(x))

    return Shared()


def _models(torch, make):
    graphnn.manual_seed(0)
    g = make(gnn, graphnn.from_numpy) if make is _tied else make(gnn)
    t = make(torch.nn, torch.from_numpy) if make is _tied else make(torch.nn)
    copy_state(torch, g, t)
    return g, t


def _names(pairs) -> list:
    return [n for n, _ in pairs]


@pytest.mark.parametrize("make", [_tied, _shared_child])
def test_key_lists_match_pytorch(torch, make):
    g, t = _models(torch, make)
    assert list(g.state_dict()) == list(t.state_dict())
    for dup in (True, False):
        assert _names(g.named_parameters(remove_duplicate=dup)) == _names(t.named_parameters(remove_duplicate=dup))
        assert _names(g.named_buffers(remove_duplicate=dup)) == _names(t.named_buffers(remove_duplicate=dup))
        assert _names(g.named_modules(remove_duplicate=dup)) == _names(t.named_modules(remove_duplicate=dup))
        assert _names(g.named_parameters(prefix="m", remove_duplicate=dup)) == _names(
            t.named_parameters(prefix="m", remove_duplicate=dup)
        )
    assert len(list(g.parameters())) == len(list(t.parameters()))
    assert list(g.state_dict(prefix="p.")) == list(t.state_dict(prefix="p."))


def test_tied_state_dict_shares_memory():
    g = _tied(gnn, graphnn.from_numpy)
    sd = g.state_dict()
    assert np.shares_memory(sd["enc.weight"].numpy(), sd["dec.weight"].numpy())
    assert np.shares_memory(sd["mid.scale"].numpy(), sd["dec.scale2"].numpy())
    assert "dec.scratch" not in sd and "dec.scratch" in dict(g.named_buffers())


@pytest.mark.parametrize("make", [_tied, _shared_child])
def test_load_own_state_dict_keeps_the_tie(torch, make):
    g, _ = _models(torch, make)
    before = {k: v.numpy().copy() for k, v in g.state_dict().items()}
    res = g.load_state_dict(g.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    fresh = make(gnn, graphnn.from_numpy) if make is _tied else make(gnn)
    fresh.load_state_dict({k: graphnn.from_numpy(v) for k, v in before.items()})
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    if make is _tied:
        assert fresh.dec.weight is fresh.enc.weight and fresh.dec.scale2 is fresh.mid.scale
    else:
        assert fresh.b is fresh.a and fresh.c[0] is fresh.a


@pytest.mark.parametrize("make", [_tied, _shared_child])
def test_conflicting_tied_entries_load_like_pytorch(torch, make):
    """Entries of one tied tensor are copied in state_dict order: the last one wins, in both libraries."""
    g, t = _models(torch, make)
    rng = np.random.default_rng(1)
    values = {k: rng.standard_normal(tuple(v.shape)).astype(np.float32) for k, v in g.state_dict().items()}
    g.load_state_dict({k: graphnn.from_numpy(v) for k, v in values.items()})
    t.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in values.items()})
    tsd = t.state_dict()
    for k, v in g.state_dict().items():
        close(v, tsd[k], k)
    if make is _tied:
        assert g.dec.weight is g.enc.weight
        np.testing.assert_array_equal(g.enc.weight.detach().numpy(), values["dec.weight"])
        np.testing.assert_array_equal(g.mid.scale.numpy(), values["dec.scale2"])


@pytest.mark.parametrize("drop", ["dec.weight", "enc.weight"])
def test_missing_tied_key_reported_like_pytorch(torch, drop):
    g, t = _models(torch, _tied)
    sd = {k: v for k, v in g.state_dict().items() if k != drop}
    res = g.load_state_dict(sd, strict=False)
    tres = t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in sd.items()}, strict=False)
    assert res.missing_keys == tres.missing_keys == [drop] and res.unexpected_keys == tres.unexpected_keys == []
    with pytest.raises(RuntimeError, match=drop.replace(".", r"\.")):
        g.load_state_dict(sd)
    extra = dict(g.state_dict(), **{"dec.nothing": graphnn.zeros(1)})
    assert g.load_state_dict(extra, strict=False).unexpected_keys == ["dec.nothing"]


def test_replacing_a_parameter_keeps_its_place():
    lin = gnn.Linear(2, 3)
    lin.weight = gnn.Parameter(graphnn.zeros(3, 2))
    assert list(lin.state_dict()) == ["weight", "bias"]
    m = gnn.Module()
    m.w = None
    m.w = gnn.Parameter(graphnn.ones(2))
    assert m.w is m._parameters["w"]


def _lm_batch(seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, size=(5,)), rng.integers(0, V, size=(5,))


@pytest.mark.parametrize("compiled", [False, True])
def test_tied_training_matches_pytorch(torch, compiled):
    """SGD with momentum on the tied model: the optimizer holds the tied weight once, a (compiled) step updates it
    once with the sum of both uses' gradients, and the tie survives."""
    g, t = _models(torch, _tied)
    gopt = goptim.SGD(g.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(t.parameters(), lr=0.1, momentum=0.9)
    assert len(gopt.param_groups[0]["params"]) == len(topt.param_groups[0]["params"]) == 4
    gcrit, tcrit = gnn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    def step(x, y):
        gopt.zero_grad()
        loss = gcrit(g(x), y)
        loss.backward()
        gopt.step()
        return loss

    run = graphnn.compile(step) if compiled else step
    for i in range(4):
        x, y = _lm_batch(i)
        loss = run(graphnn.from_numpy(x), graphnn.from_numpy(y))
        topt.zero_grad()
        tloss = tcrit(t(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        close(loss, tloss, f"loss {i}", steps_tolerance(tloss.detach().numpy(), (i + 1) * STEP_ROUNDINGS))
    assert g.dec.weight is g.enc.weight
    tsd = t.state_dict()
    for k, v in g.state_dict().items():
        close(v, tsd[k], k, steps_tolerance(tsd[k].numpy(), 4 * STEP_ROUNDINGS))
    if compiled:
        assert len(run.cache) == 1


def test_compiled_module_backward_accumulates_tied_gradient(torch):
    g, t = _models(torch, _tied)
    x, y = _lm_batch(9)
    cg = graphnn.compile(g)
    gnn.CrossEntropyLoss()(cg(graphnn.from_numpy(x)), graphnn.from_numpy(y)).backward()
    torch.nn.CrossEntropyLoss()(t(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    assert g.dec.weight.grad is g.enc.weight.grad
    for (name, p), (tname, q) in zip(g.named_parameters(), t.named_parameters()):
        assert name == tname
        close(p.grad, q.grad, name, steps_tolerance(q.grad.numpy(), STEP_ROUNDINGS))


class _Vocab(graphnn.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = graphnn.nn.Embedding(4, 2)
        self.vocab = {}

    def get_extra_state(self):
        return {"vocab": dict(self.vocab)}

    def set_extra_state(self, state):
        self.vocab = dict(state["vocab"])


class _Legacy(graphnn.nn.Module):
    """Renames a legacy key on load by overriding _load_from_state_dict, as older models do."""

    def __init__(self):
        super().__init__()
        self.gain = graphnn.nn.Parameter(graphnn.ones(3))

    def _load_from_state_dict(self, state_dict, prefix, *args):
        if prefix + "scale" in state_dict:
            state_dict[prefix + "gain"] = state_dict.pop(prefix + "scale")
        super()._load_from_state_dict(state_dict, prefix, *args)


def test_state_dict_protocol_extra_state_overrides_and_hooks(tmp_path):
    """PyTorch's state_dict protocol: get_extra_state/set_extra_state under `_extra_state`, an overridden
    _load_from_state_dict per module, and the state_dict / load_state_dict hooks."""
    m = _Vocab()
    m.vocab = {"hello": 0}
    sd = m.state_dict()
    assert list(sd) == ["_extra_state", "emb.weight"]
    graphnn.save(sd, tmp_path / "v.pt")
    m2 = _Vocab()
    m2.load_state_dict(graphnn.load(tmp_path / "v.pt"))
    assert m2.vocab == {"hello": 0}
    outer = graphnn.nn.Sequential(_Legacy())
    outer.load_state_dict({"0.scale": graphnn.tensor([2.0, 3.0, 4.0])})
    assert outer[0].gain.tolist() == [2.0, 3.0, 4.0]
    seen = []
    outer.register_state_dict_post_hook(lambda mod, d, prefix, meta: seen.append(sorted(d)))
    outer[0].register_load_state_dict_pre_hook(lambda mod, d, prefix, *rest: seen.append(prefix))
    outer.register_load_state_dict_post_hook(lambda mod, keys: keys.missing_keys.clear())
    keys = outer.load_state_dict({}, strict=False)
    assert seen == ["0."] and keys.missing_keys == []
    assert list(outer.state_dict()) == ["0.gain"] and seen[-1] == ["0.gain"]
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict"):
        outer.load_state_dict({"0.gain": graphnn.ones(3), "0.other": graphnn.ones(1)})


def test_private_load_state_dict_pre_hook_takes_no_module_by_default():
    """PyTorch's _register_load_state_dict_pre_hook(hook) calls hook(state_dict, prefix, ...) (with_module=False),
    the form key-renaming hooks in model code are written for."""
    m = graphnn.nn.Linear(2, 2)
    sd = {("old_" + k): v for k, v in m.state_dict().items()}

    def rename(state_dict, prefix, *rest):
        for k in list(state_dict):
            if k.startswith(prefix + "old_"):
                state_dict[prefix + k[len(prefix) + 4 :]] = state_dict.pop(k)

    m._register_load_state_dict_pre_hook(rename)
    assert str(m.load_state_dict(sd)) == "<All keys matched successfully>"
