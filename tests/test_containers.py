"""Containers and module features against PyTorch: ModuleDict, ParameterList, ParameterDict, Sequential and
ModuleList methods, Identity, Flatten/Unflatten, traversal names (named_modules/children/modules, prefixes, shared
submodules), apply, Module.to, and device=/dtype= on every constructor PyTorch gives them.

Structure (names, order, types, reprs) must be equal; values computed through the containers are compared with
parity_util.check (twice graphnn's rounding-error bound), eagerly and under graphnn.compile.
"""

from collections import OrderedDict

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
from parity_util import check, copy_state, to_np

MODES = pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])


def _rng(seed=0):
    return np.random.default_rng(seed)


def _structure(m) -> list:
    return [(n, type(p).__name__, tuple(p.shape)) for n, p in m.state_dict(keep_vars=True).items()]


# -- ModuleDict ----------------------------------------------------------------------------------------------------
def _dict_model(nn):
    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"b": nn.Linear(3, 2), "a": nn.Linear(3, 4)})
            self.heads.update([("c", nn.Tanh())])
            self.heads["d"] = nn.Linear(3, 1, bias=False)

        def forward(self, x):
            outs = [self.heads[k](x) for k in ("a", "b", "d")]
            return [self.heads["c"](o) for o in outs] + [v(x) for k, v in self.heads.items() if k == "b"]

    return Heads().double()


@MODES
def test_module_dict(torch, compiled):
    g, t = _dict_model(gnn), _dict_model(torch.nn)
    assert repr(g) == repr(t)
    assert _structure(g) == _structure(t)
    assert list(g.heads.keys()) == list(t.heads.keys()) == ["b", "a", "c", "d"]
    assert [type(v).__name__ for v in g.heads.values()] == [type(v).__name__ for v in t.heads.values()]
    copy_state(torch, g, t)
    check(torch, g, t, [_rng(1).standard_normal((5, 3))], g, t, compiled=compiled)


def test_module_dict_methods(torch):
    for nn in (gnn, torch.nn):
        d = nn.ModuleDict(OrderedDict([("x", nn.ReLU()), ("y", nn.Tanh())]))
        assert len(d) == 2 and "x" in d and list(d) == ["x", "y"]
        popped = d.pop("x")
        assert type(popped).__name__ == "ReLU" and list(d) == ["y"]
        del d["y"]
        assert len(d) == 0
        d.update({"z": nn.Sigmoid()})
        d.clear()
        assert list(d.named_children()) == []
    with pytest.raises(KeyError):
        gnn.ModuleDict()["missing"]
    with pytest.raises(TypeError):
        gnn.ModuleDict({"x": 3})


def test_module_dict_entry_replaced_after_compile():
    """A compiled model that reads a ModuleDict entry traces again when the entry is replaced."""
    m = gnn.ModuleDict({"f": gnn.Linear(2, 2)})
    body = gnn.Sequential(OrderedDict([("d", m)]))
    f = graphnn.compile(lambda x: body.d["f"](x))
    x = graphnn.randn(3, 2)
    f(x)
    m["f"] = gnn.Identity()
    np.testing.assert_array_equal(to_np(f(x)), to_np(x))


# -- ParameterList / ParameterDict ---------------------------------------------------------------------------------
def _param_model(nn, torch_lib):
    class Mixer(nn.Module):
        def __init__(self):
            super().__init__()
            r = np.random.default_rng(2)
            self.scales = nn.ParameterList([nn.Parameter(torch_lib.tensor(r.standard_normal(3)))])
            self.scales.append(torch_lib.tensor(r.standard_normal(3)))  # a tensor becomes a Parameter
            self.scales.extend([torch_lib.tensor(r.standard_normal(3))])
            self.shifts = nn.ParameterDict({"b": torch_lib.tensor(r.standard_normal(3))})
            self.shifts["a"] = nn.Parameter(torch_lib.tensor(r.standard_normal(3)))
            self.shifts.update(OrderedDict([("c", torch_lib.tensor(r.standard_normal(3)))]))

        def forward(self, x):
            for s in self.scales:
                x = (x * s).tanh()
            for k in self.shifts:
                x = x + self.shifts[k]
            return x * self.scales[-1] + self.shifts.get("a")

    return Mixer()


@MODES
def test_parameter_list_and_dict(torch, compiled):
    g, t = _param_model(gnn, graphnn), _param_model(torch.nn, torch)
    assert repr(g) == repr(t)
    assert _structure(g) == _structure(t)
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert all(p.requires_grad for p in g.parameters())
    check(torch, g, t, [_rng(3).standard_normal((4, 3))], g, t, compiled=compiled)


def test_parameter_list_methods(torch):
    for lib in (graphnn, torch):
        nn = lib.nn
        pl = nn.ParameterList([lib.ones(2), 3, None])
        assert len(pl) == 3 and isinstance(pl[0], nn.Parameter) and pl[1] == 3 and pl[2] is None
        pl += [lib.zeros(1)]
        assert len(pl) == 4 and isinstance(pl[-1], nn.Parameter)
        pl[1] = lib.ones(4)
        assert isinstance(pl[1], nn.Parameter) and len(list(pl.parameters())) == 3
        sub = pl[1:3]
        assert type(sub).__name__ == "ParameterList" and len(sub) == 2
        with pytest.raises(IndexError):
            pl[7]
    assert repr(gnn.ParameterList([graphnn.ones(2), 3, None])) == repr(torch.nn.ParameterList([torch.ones(2), 3, None]))


def test_parameter_dict_methods(torch):
    results = []
    for lib in (graphnn, torch):
        nn = lib.nn
        pd = nn.ParameterDict({"b": lib.ones(2), "a": lib.zeros(3), "s": "text"})  # a plain dict: sorted keys
        keys = list(pd.keys())
        assert isinstance(pd["a"], nn.Parameter) and pd["s"] == "text" and "b" in pd
        assert pd.setdefault("z", lib.ones(1)) is pd["z"]
        popped = pd.pop("s")
        k, _ = pd.popitem()
        copy = pd.copy()
        merged = pd | nn.ParameterDict({"q": lib.ones(5)})
        fk = pd.fromkeys(["u", "v"], lib.ones(2))
        results.append(
            (
                keys,
                popped,
                k,
                list(copy),
                list(merged),
                list(reversed(pd)),
                list(fk),
                pd.get("nope", 7),
                [tuple(v.shape) for v in pd.values()],
                [n for n, _ in pd.items()],
            )
        )
        pd.clear()
        assert len(pd) == 0
    assert results[0] == results[1]
    g = gnn.ParameterDict({"w": graphnn.ones(2, 3, dtype=graphnn.float64), "n": 5})
    t = torch.nn.ParameterDict({"w": torch.ones(2, 3, dtype=torch.float64), "n": 5})
    assert repr(g) == repr(t)
    with pytest.raises(RuntimeError, match="should not be called"):
        g()


# -- Sequential / ModuleList ---------------------------------------------------------------------------------------
def test_sequential_methods(torch):
    def run(nn):
        s = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU()), ("out", nn.Linear(3, 1))]))
        views = [list(s[1:]._modules), type(s[-1]).__name__]
        del s[0]  # (renumbers: '0', '1')
        views.append(list(s._modules))
        s.append(nn.Tanh())
        s.insert(1, nn.Sigmoid())
        s.insert(-1, nn.ReLU())
        views.append([type(m).__name__ for m in s])
        popped = s.pop(1)
        views += [type(popped).__name__, list(s._modules)]
        s[0] = nn.Identity()
        s.extend([nn.ReLU()])
        s += nn.Sequential(nn.Tanh())
        views += [list(s._modules), [type(m).__name__ for m in s], len(s)]
        return views, repr(s)

    assert run(gnn) == run(torch.nn)


def test_module_list_methods_and_repr(torch):
    def run(nn):
        ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU(), nn.ReLU(), nn.Linear(2, 3)])
        r1 = repr(ml)
        ml.insert(1, nn.Tanh())
        ml[0] = nn.Sigmoid()
        del ml[2]
        popped = ml.pop(-1)
        ml += [nn.Identity()]
        both = ml + nn.ModuleList([nn.ReLU()])
        return r1, repr(ml), type(popped).__name__, [type(m).__name__ for m in both], list(ml[1:3]._modules)

    g, t = run(gnn), run(torch.nn)
    assert g[0] == t[0] and g[2:] == t[2:]
    assert g[1] == t[1]


# -- Identity, Flatten, Unflatten ----------------------------------------------------------------------------------
@MODES
def test_identity_flatten_unflatten(torch, compiled):
    def build(nn):
        return nn.Sequential(nn.Identity(3, unused=True), nn.Flatten(1, 2), nn.Unflatten(1, (2, -1)), nn.Tanh())

    g, t = build(gnn), build(torch.nn)
    assert repr(g) == repr(t)
    check(torch, g, t, [_rng(4).standard_normal((2, 3, 4, 5))], compiled=compiled)
    assert repr(gnn.Unflatten(-1, [2, 3])) == repr(torch.nn.Unflatten(-1, [2, 3]))
    with pytest.raises(TypeError):
        gnn.Unflatten(1, 6)


# -- traversal -----------------------------------------------------------------------------------------------------
def _tree(nn):
    shared = nn.Linear(2, 2)

    class Tree(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Sequential(shared, nn.ReLU())
            self.b = nn.ModuleDict({"x": shared, "y": nn.Sequential(nn.Tanh())})
            self.c = shared

    return Tree()


def test_traversal_names(torch):
    g, t = _tree(gnn), _tree(torch.nn)

    def names(m):
        return (
            [n for n, _ in m.named_modules()],
            [n for n, _ in m.named_modules(prefix="model")],
            [n for n, _ in m.named_modules(remove_duplicate=False)],
            [n for n, _ in m.named_children()],
            [type(x).__name__ for x in m.modules()],
            [type(x).__name__ for x in m.children()],
            [n for n, _ in m.named_parameters()],
            [n for n, _ in m.named_parameters(prefix="p", remove_duplicate=False)],
            [n for n, _ in m.a.named_parameters(recurse=False)],
            list(m.state_dict()),
        )

    assert names(g) == names(t)
    visited = []
    for m in (g, t):
        seen = []
        m.apply(lambda mod, seen=seen: seen.append(type(mod).__name__))
        visited.append(seen)
    assert visited[0] == visited[1]
    assert g.get_submodule("b.y.0").__class__.__name__ == "Tanh"
    assert g.get_parameter("a.0.weight") is g.c.weight
    with pytest.raises(AttributeError):
        g.get_submodule("b.z")


# -- Module.to and the device= / dtype= arguments ------------------------------------------------------------------
def test_module_to(torch):
    m = gnn.Sequential(gnn.Linear(2, 3), gnn.BatchNorm1d(3))
    w = m[0].weight
    assert m.to("cpu") is m and m.to(device="cpu") is m and m.cpu() is m
    assert m.to("cpu:0", non_blocking=True) is m
    m.to(graphnn.float64)
    assert m[0].weight is w and w.dtype_name == "float64" and m[1].running_mean.dtype_name == "float64"
    assert m[1].num_batches_tracked.dtype_name == "int64"
    m.to(graphnn.zeros(1, dtype=graphnn.float32))
    assert w.dtype_name == "float32"
    m.to("cpu", graphnn.float64)
    m.to(device="cpu", dtype=graphnn.float32)
    assert w.dtype_name == "float32"
    for bad in ("cuda", "cuda:0", "mps", 0):
        with pytest.raises(RuntimeError, match="CPU only"):
            m.to(bad)
    assert m.to(device="meta") is m and w.dtype_name == "float32"  # ('meta' keeps the values: see Module.to)
    with pytest.raises(RuntimeError, match="CPU only"):
        m.to(device="xpu")
    with pytest.raises(RuntimeError, match="CPU only"):
        m.cuda()
    with pytest.raises(TypeError, match="floating point"):
        m.to(graphnn.int64)
    t = torch.nn.Linear(2, 3)
    with pytest.raises(TypeError, match="floating point"):
        t.to(torch.int64)


CONSTRUCTORS = [
    ("Linear", (3, 4), {}),
    ("Conv1d", (2, 3, 3), {}),
    ("Conv2d", (2, 3, 3), {}),
    ("Conv3d", (2, 3, 2), {}),
    ("Embedding", (5, 3), {}),
    ("LayerNorm", (4,), {}),
    ("RMSNorm", (4,), {}),
    ("GroupNorm", (2, 4), {}),
    ("BatchNorm1d", (3,), {}),
    ("BatchNorm2d", (3,), dict(bias=False)),
    ("BatchNorm3d", (3,), {}),
    ("RNN", (3, 4), {}),
    ("LSTM", (3, 4), dict(num_layers=2)),
    ("GRU", (3, 4), dict(bidirectional=True)),
    ("RNNCell", (3, 4), {}),
    ("LSTMCell", (3, 4), {}),
    ("GRUCell", (3, 4), {}),
    ("PReLU", (), {}),
    ("MultiheadAttention", (4, 2), dict(kdim=3, add_bias_kv=True)),
    ("TransformerEncoderLayer", (4, 2, 8), {}),
    ("TransformerDecoderLayer", (4, 2, 8), {}),
    ("Transformer", (4, 2, 1, 1, 8), {}),
]


@pytest.mark.parametrize("name,args,kw", CONSTRUCTORS, ids=[c[0] for c in CONSTRUCTORS])
@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_device_and_dtype_arguments(torch, name, args, kw):
    """device='cpu' (or None) is accepted, any other device is a clear error; dtype sets the dtype of every
    floating parameter and buffer, as in PyTorch."""
    g = getattr(gnn, name)(*args, **kw, device="cpu", dtype=graphnn.float64)
    t = getattr(torch.nn, name)(*args, **kw, device="cpu", dtype=torch.float64)
    assert [(n, v.dtype_name) for n, v in g.state_dict().items()] == [
        (n, str(v.dtype).replace("torch.", "")) for n, v in t.state_dict().items()
    ]
    assert [(n, tuple(p.shape)) for n, p in g.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in t.named_parameters()
    ]
    plain = getattr(gnn, name)(*args, **kw, device=None)
    assert all(p.dtype_name == "float32" for p in plain.parameters())
    with pytest.raises(RuntimeError, match=f"{name}: graphnn runs on the CPU only"):
        getattr(gnn, name)(*args, **kw, device="cuda")


def test_embedding_from_pretrained(torch):
    w = _rng(5).standard_normal((4, 3))
    g = gnn.Embedding.from_pretrained(graphnn.tensor(w), padding_idx=1)
    t = torch.nn.Embedding.from_pretrained(torch.tensor(w), padding_idx=1)
    assert repr(g) == repr(t) and g.weight.requires_grad == t.weight.requires_grad is False
    idx = np.array([[0, 3, 1]])
    np.testing.assert_array_equal(to_np(g(graphnn.tensor(idx))), t(torch.tensor(idx)).detach().numpy())
    assert gnn.Embedding.from_pretrained(graphnn.tensor(w), freeze=False).weight.requires_grad
    assert repr(gnn.Embedding(5, 2, max_norm=1.0, scale_grad_by_freq=True)) == repr(
        torch.nn.Embedding(5, 2, max_norm=1.0, scale_grad_by_freq=True)
    )
