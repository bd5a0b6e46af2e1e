"""PyTorch parity of the transformer layers: activations, layer/RMS/group norm, one_hot, scaled dot-product
attention, MultiheadAttention, the Transformer encoder/decoder layers and stacks, nn.Transformer and a user subclass
of it (as PyTorch's word_language_model example writes one).

Same weights and float64 inputs in both libraries; forward values and the gradients of inputs and parameters must
agree within twice graphnn's rounding-error bound of its recorded computation (parity_util.check), eagerly and under
graphnn.compile. Initialization is compared by statistics, with tolerances from the sampling error of each statistic.
"""

import math

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.nn.functional as gF
from parity_util import Lambda, check, close, compare_params, copy_state, steps_tolerance, to_np
from tolerance import accumulation_tolerance

MODES = pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
# PyTorch's (and graphnn's) advisory warnings about the arguments the tests give
pytestmark = [
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask and attn_mask"),
]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _id(v):
    if isinstance(v, dict):
        return ",".join(f"{k}={_id(x)}" for k, x in v.items()) or "default"
    if isinstance(v, (tuple, list)):
        return "x".join(_id(x) for x in v)
    return str(v)


def _cases(table, compile_every: int = 1):
    """Every case eagerly; every `compile_every`-th case also compiled."""
    out = []
    for i, case in enumerate(table):
        name = "-".join(_id(c) for c in case)
        out.append(pytest.param(case, False, id=name + "-eager"))
        if compile_every and i % compile_every == 0:
            out.append(pytest.param(case, True, id=name + "-compiled"))
    return out


def _pair(torch, name: str, *args, **kw):
    """The same module in both libraries (float64), PyTorch's carrying graphnn's parameters."""
    g = getattr(gnn, name)(*args, **kw).double()
    t = getattr(torch.nn, name)(*args, **kw).double()
    copy_state(torch, g, t)
    return g, t


def _randomize(torch, g, t, seed=0, scale=0.5) -> None:
    """Random parameters (affine weights away from their ones/zeros init), the same in both modules."""
    r = _rng(seed)
    for p in g.parameters():
        p.data = graphnn.tensor(r.standard_normal(tuple(p.shape)) * scale + (1.0 if p.ndim == 1 else 0.0))
    copy_state(torch, g, t)


# -- activations ---------------------------------------------------------------------------------------------------
ACTS = [
    ("GELU", {}),
    ("GELU", dict(approximate="tanh")),
    ("Mish", {}),
    ("SiLU", {}),
    ("SELU", {}),
    ("CELU", dict(alpha=0.5)),  # (PyTorch's gradient rounds 1 / alpha to float32: exact for 0.5)
    ("ELU", dict(alpha=0.5)),
    ("Softsign", {}),
    ("LogSigmoid", {}),
    ("Hardswish", {}),
    ("GLU", {}),
    ("GLU", dict(dim=1)),
    ("Tanhshrink", {}),
    ("Threshold", dict(threshold=0.3, value=-2.0)),
    ("Hardtanh", dict(min_val=-0.5, max_val=2.0)),
    ("ReLU6", {}),
    ("PReLU", {}),
    ("PReLU", dict(num_parameters=4, init=0.1)),
    ("Softmin", dict(dim=1)),
]


@pytest.mark.parametrize("case,compiled", _cases(ACTS, 2))
def test_activation_modules(torch, case, compiled):
    name, kw = case
    g, t = _pair(torch, name, **kw)
    assert repr(g) == repr(t)
    x = _rng(1).standard_normal((3, 4, 6)) * 4  # crosses every threshold (-3, 0, 3, 6, ...)
    check(torch, g, t, [x], g, t, compiled=compiled)


INPLACE = ["silu", "mish", "selu", "celu", "hardswish", "hardtanh", "threshold"]


@pytest.mark.parametrize("name", INPLACE)
@MODES
def test_inplace_activations(torch, name, compiled):
    """inplace=True on an intermediate result: the tensor is overwritten and holds the out-of-place function's
    values and gradients (PyTorch's out-of-place function is the reference: its in-place ELU family differentiates
    through the result, elu(x) + alpha, which cancels for very negative x)."""
    extra = (0.1, 5.0) if name == "threshold" else ()

    def run(F, inplace):
        def f(x):
            y = x * 1.5
            out = getattr(F, name)(y, *extra, inplace=inplace)
            return out, (y if inplace else out)  # in place: y is overwritten with the result

        return f

    x = _rng(2).standard_normal((4, 5)) * 3
    out = check(torch, run(gF, True), run(torch.nn.functional, False), [x], compiled=compiled)
    if not compiled:
        assert out[0][0] is out[0][1]


@MODES
def test_hardsigmoid(torch, compiled):
    """Values as PyTorch's; PyTorch's gradient multiplies by 1/6 rounded to float32 (also for float64 tensors), so
    the gradients may differ by that rounding, |g| * |fl32(1/6) - 1/6|, beyond the rounding-error bound."""
    g, t = _pair(torch, "Hardsigmoid")
    assert repr(g) == repr(t)
    x = _rng(1).standard_normal((3, 4, 6)) * 4
    check(torch, g, t, [x], compiled=compiled, grad=False)
    f = graphnn.compile(g) if compiled else g
    gx, tx = graphnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    w = _rng(2).standard_normal(x.shape)
    f(gx).backward(graphnn.tensor(w))
    t(tx).backward(torch.tensor(w))
    inside = np.abs(x) < 3
    tol = accumulation_tolerance("float64", 1, w / 6) + np.abs(w) * abs(float(np.float32(1 / 6)) - 1 / 6)
    close(gx.grad, tx.grad, "d input", np.where(inside, tol, 0.0))


def test_activation_reprs_and_errors(torch):
    for name, args in [("SiLU", (True,)), ("Mish", (True,)), ("SELU", (True,)), ("CELU", (0.5, True))]:
        assert repr(getattr(gnn, name)(*args)) == repr(getattr(torch.nn, name)(*args))
    with pytest.raises(RuntimeError, match="approximate"):
        gF.gelu(graphnn.randn(3), approximate="exact")
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        gF.glu(graphnn.randn(3, 5))
    with pytest.raises(RuntimeError, match="mismatch of parameter numbers"):
        gF.prelu(graphnn.randn(2, 3), graphnn.ones(4))


def test_grad_fn_names(torch):
    for name in ("gelu", "mish", "silu", "logsigmoid", "hardswish", "glu", "selu", "celu"):
        x, tx = graphnn.randn(4, requires_grad=True), torch.randn(4, requires_grad=True)
        g, t = getattr(gF, name)(x), getattr(torch.nn.functional, name)(tx)
        assert type(g.grad_fn).__name__ == type(t.grad_fn).__name__, name
    x, tx = graphnn.randn(2, 6, requires_grad=True), torch.randn(2, 6, requires_grad=True)
    for name in ("layer_norm", "group_norm"):
        arg = (6,) if name == "layer_norm" else 2
        g, t = getattr(gF, name)(x, arg), getattr(torch.nn.functional, name)(tx, arg)
        assert type(g.grad_fn).__name__ == type(t.grad_fn).__name__, name


# -- normalization -------------------------------------------------------------------------------------------------
NORMS = [
    ("LayerNorm", (6,), {}, (3, 4, 6)),
    ("LayerNorm", ((4, 6),), dict(eps=1e-3), (2, 3, 4, 6)),
    ("LayerNorm", (6,), dict(elementwise_affine=False), (5, 6)),
    ("LayerNorm", (6,), dict(bias=False), (2, 3, 6)),
    ("LayerNorm", ([5],), {}, (5,)),
    ("RMSNorm", (6,), {}, (3, 4, 6)),
    ("RMSNorm", ((4, 6),), dict(eps=1e-3), (2, 4, 6)),
    ("RMSNorm", (6,), dict(elementwise_affine=False), (5, 6)),
    ("GroupNorm", (2, 6), {}, (3, 6, 5)),
    ("GroupNorm", (3, 6), dict(eps=1e-3, affine=False), (2, 6, 2, 3)),
    ("GroupNorm", (1, 4), dict(bias=False), (2, 4, 3, 2)),
    ("GroupNorm", (4, 4), {}, (2, 4, 5)),
    ("BatchNorm1d", (6,), dict(bias=False), (4, 6, 3)),
]


@pytest.mark.parametrize("case,compiled", _cases(NORMS))
def test_norm_modules(torch, case, compiled):
    name, args, kw, shape = case
    g, t = _pair(torch, name, *args, **kw)
    assert repr(g) == repr(t)
    assert [(n, tuple(p.shape)) for n, p in g.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in t.named_parameters()
    ]
    compare_params(g, t)  # ones and zeros, exactly
    _randomize(torch, g, t, seed=3)
    x = _rng(4).standard_normal(shape) * 3 + 1
    check(torch, g, t, [x], g, t, compiled=compiled)


FNORMS = [
    ("layer_norm", (2, 3, 5), ((5,),), dict(eps=1e-4), True, True),
    ("layer_norm", (4, 2, 3), ((2, 3),), {}, True, False),
    ("layer_norm", (4, 6), ([6],), {}, False, False),
    ("rms_norm", (3, 5), ((5,),), {}, True, False),
    ("rms_norm", (2, 3, 4), ([3, 4],), dict(eps=0.01), False, False),
    ("group_norm", (2, 6, 4), (3,), {}, True, True),
]


@pytest.mark.parametrize("case,compiled", _cases(FNORMS))
def test_functional_norms(torch, case, compiled):
    name, shape, args, kw, weight, bias = case
    r = _rng(5)
    affine_shape = (shape[1],) if name == "group_norm" else tuple(shape[len(shape) - len(np.atleast_1d(args[0])) :])
    ins = [r.standard_normal(shape) * 2]
    names = []
    if weight:
        ins.append(r.standard_normal(affine_shape))
        names.append("weight")
    if bias:
        ins.append(r.standard_normal(affine_shape))
        names.append("bias")

    def call(F):
        return lambda x, *wb: getattr(F, name)(x, *args, **dict(zip(names, wb)), **kw)

    check(torch, call(gF), call(torch.nn.functional), ins, compiled=compiled)


@MODES
def test_rms_norm_default_eps_is_the_dtype_epsilon(torch, compiled):
    """eps=None: float32's machine epsilon for float32 input (it matters for inputs of small magnitude)."""
    g, t = gnn.RMSNorm(8), torch.nn.RMSNorm(8)
    x = (_rng(6).standard_normal((3, 8)) * 1e-4).astype(np.float32)
    check(torch, g, t, [x], g, t, compiled=compiled)
    assert g.weight.dtype_name == "float32"


def test_norm_errors():
    with pytest.raises(graphnn.OpError, match=r"normalized_shape=\[4\], expected input with shape \[\*, 4\]"):
        gF.layer_norm(graphnn.randn(2, 3), (4,))
    with pytest.raises(graphnn.OpError, match="weight of shape"):
        gF.layer_norm(graphnn.randn(2, 3), (3,), graphnn.ones(4))
    with pytest.raises(graphnn.OpError, match="divisible by num_groups"):
        gF.group_norm(graphnn.randn(2, 5, 3), 2)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        gF.group_norm(graphnn.randn(1, 2), 2)
    with pytest.raises(ValueError, match="must be divisible by num_groups"):
        gnn.GroupNorm(2, 5)


# -- one_hot -------------------------------------------------------------------------------------------------------
@MODES
def test_one_hot(torch, compiled):
    idx = _rng(7).integers(0, 5, (3, 4))
    idx[0, 0] = 4
    for n in (5, 7):

        def f(i, n=n):
            return gF.one_hot(i, n)

        f = graphnn.compile(f) if compiled else f
        out = f(graphnn.tensor(idx))
        want = torch.nn.functional.one_hot(torch.tensor(idx), n)
        assert out.dtype_name == "int64"
        np.testing.assert_array_equal(to_np(out), want.numpy())
    if not compiled:
        np.testing.assert_array_equal(
            to_np(gF.one_hot(graphnn.tensor(idx))), torch.nn.functional.one_hot(torch.tensor(idx)).numpy()
        )
        assert tuple(gF.one_hot(graphnn.zeros(0, dtype=graphnn.int64), 3).shape) == (0, 3)


def test_one_hot_errors():
    with pytest.raises(graphnn.OpError, match="smaller than num_classes"):
        gF.one_hot(graphnn.tensor([0, 3]), 3)
    with pytest.raises(graphnn.OpError, match="non-negative"):
        gF.one_hot(graphnn.tensor([0, -1]))
    with pytest.raises(graphnn.OpError, match="LongTensor"):
        gF.one_hot(graphnn.tensor([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="empty tensor"):
        gF.one_hot(graphnn.zeros(0, dtype=graphnn.int64))
    f = graphnn.compile(lambda i: gF.one_hot(i), fullgraph=True)
    with pytest.raises(graphnn.TraceError, match="pass num_classes"):
        f(graphnn.tensor([0, 2]))
    g = graphnn.compile(lambda i: gF.one_hot(i, 3))
    with pytest.raises(graphnn.OpError, match="smaller than num_classes"):  # checked at every call
        g(graphnn.tensor([0, 3]))


# -- scaled dot-product attention ----------------------------------------------------------------------------------
def _mask(kind: str, shape, seed: int):
    """A NumPy mask: 'bool' (True = take part, one row fully masked), 'float' (additive, some -inf)."""
    r = _rng(seed)
    if kind == "bool":
        m = r.random(shape) > 0.3
        m[..., 1, :] = False  # a query without any key: PyTorch gives zeros there
        return m
    m = r.standard_normal(shape)
    m[r.random(shape) < 0.2] = -np.inf
    return m


SDPA = [
    ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), None, {}),
    ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), None, dict(is_causal=True)),
    ((2, 2, 6, 4), (2, 2, 4, 4), (2, 2, 4, 3), None, dict(is_causal=True, scale=0.3)),
    ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), ("bool", (4, 6)), {}),
    ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), ("bool", (2, 1, 4, 6)), {}),
    ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), ("float", (4, 6)), dict(scale=0.5)),
    ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), ("float", (2, 3, 4, 6)), {}),
    ((3, 4, 5), (3, 6, 5), (3, 6, 2), ("bool", (3, 4, 6)), {}),
    ((2, 4, 3, 5), (2, 2, 6, 5), (2, 2, 6, 5), None, dict(enable_gqa=True)),
    ((2, 4, 3, 5), (2, 1, 6, 5), (2, 1, 6, 5), None, dict(enable_gqa=True, is_causal=True)),
]


@pytest.mark.parametrize("case,compiled", _cases(SDPA))
def test_scaled_dot_product_attention(torch, case, compiled):
    qs, ks, vs, mask, kw = case
    r = _rng(8)
    m = None if mask is None else _mask(mask[0], mask[1], 9)

    def call(lib):
        attn_mask = None if m is None else lib.tensor(m)
        return lambda q, k, v: lib.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, **kw)

    check(
        torch,
        call(graphnn),
        call(torch),
        [r.standard_normal(qs), r.standard_normal(ks), r.standard_normal(vs)],
        compiled=compiled,
    )


def test_scaled_dot_product_attention_errors():
    """Clear errors naming the problem (PyTorch raises RuntimeError; graphnn may raise its OpError, a ValueError:
    the function's internals may change, so only the exception kinds and key words are checked)."""
    q = graphnn.randn(2, 3, 4)
    errors = (RuntimeError, ValueError)
    # (is_causal with an attn_mask applies both, as PyTorch's CPU kernel: see test_causal_and_a_mask_together)
    with pytest.raises(errors, match="dtype"):
        gF.scaled_dot_product_attention(q, q.double(), q)
    with pytest.raises(errors, match="4 vs 5"):
        gF.scaled_dot_product_attention(q, graphnn.randn(2, 3, 5), graphnn.randn(2, 3, 5))
    with pytest.raises(errors, match="heads"):
        gF.scaled_dot_product_attention(graphnn.randn(1, 3, 2, 4), *[graphnn.randn(1, 2, 2, 4)] * 2, enable_gqa=True)


@MODES
def test_scaled_dot_product_attention_dropout(compiled):
    """dropout_p drops attention weights with graphnn's seeded generator: the output equals the attention computed
    with the mask the same seed draws, new masks at each call, and the kept fraction is 1 - p."""
    r = _rng(10)
    q, k, v = (graphnn.tensor(r.standard_normal(s)) for s in [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5)])
    p = 0.4
    f = lambda q, k, v: gF.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # noqa: E731
    f = graphnn.compile(Lambda(f)) if compiled else f
    graphnn.manual_seed(5)
    out = to_np(f(q, k, v))
    graphnn.manual_seed(5)
    keep = to_np(gF.dropout(graphnn.ones(2, 3, 4, 6, dtype=graphnn.float64), p))  # the same draw: mask / (1 - p)
    scores = np.einsum("bhle,bhse->bhls", to_np(q), to_np(k)) / math.sqrt(5)
    scores = np.where(np.tril(np.ones((4, 6), bool)), scores, -np.inf)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True) * keep
    want = np.einsum("bhls,bhse->bhle", w, to_np(v))
    # softmax (exp, a sum of 6 terms, a division), the dropout scaling (2) and a product of 6 terms
    close(out, want, "output", steps_tolerance(want, 20, np.abs(w).sum(-1, keepdims=True) * np.abs(to_np(v)).max()))
    assert (to_np(f(q, k, v)) != out).any(), "a new mask at each call"


# -- MultiheadAttention --------------------------------------------------------------------------------------------
def _mha_masks(lib, spec: dict, L: int, S: int, N: int, H: int):
    """Masks for a case: 'kpm' bool (N, S) True = padding; 'bool2d' (L, S) True = not allowed; 'float3d'
    (N*H, L, S) additive; 'causal' the float causal mask."""
    r = _rng(11)
    out = {}
    if "kpm" in spec:
        kpm = r.random((N, S)) < 0.3
        kpm[:, 0] = False  # every query keeps a key
        out["key_padding_mask"] = lib.tensor(kpm)
    if spec.get("mask") == "bool2d":
        m = r.random((L, S)) < 0.3
        m[:, 0] = False
        out["attn_mask"] = lib.tensor(m)
    elif spec.get("mask") == "float3d":
        out["attn_mask"] = lib.tensor(r.standard_normal((N * H, L, S)))
    elif spec.get("mask") == "causal":
        out["attn_mask"] = lib.tensor(np.triu(np.full((L, S), -np.inf), 1))
    return out


MHA = [
    (dict(), dict(self=True)),
    (dict(), dict(self=True, need_weights=False)),
    (dict(batch_first=True), dict(self=True, kpm=True, average_attn_weights=False)),
    (dict(), dict(S=7, kpm=True, mask="bool2d")),
    (dict(), dict(S=7, kv_same=False, mask="bool2d", need_weights=False)),
    (dict(kdim=4, vdim=6), dict(S=7, mask="float3d")),
    (dict(kdim=4, vdim=6, batch_first=True), dict(S=7, kpm=True, need_weights=False)),
    (dict(bias=False, add_bias_kv=True, add_zero_attn=True), dict(S=7, kpm=True, mask="bool2d")),
    (dict(add_bias_kv=True), dict(self=True, mask="float3d", need_weights=False)),
    (dict(), dict(self=True, unbatched=True)),
    (dict(), dict(self=True, mask="causal", is_causal=True, need_weights=False)),
    (dict(dropout=0.3), dict(self=True, eval=True)),
]


def _mha_call(lib, mod, spec: dict, L=5, N=2, E=8, H=2):
    S = spec.get("S", L)
    masks = _mha_masks(lib, spec, L, S, N, H)
    kw = {k: spec[k] for k in ("need_weights", "average_attn_weights", "is_causal") if k in spec}
    if spec.get("unbatched"):
        masks.pop("key_padding_mask", None)

    def f(*xs):
        if spec.get("self"):
            q = k = v = xs[0]
        elif spec.get("kv_same", True):
            q, k = xs
            v = k
        else:
            q, k, v = xs
        out, w = mod(q, k, v, **masks, **kw)
        return (out,) if w is None else (out, w)

    return f


def _mha_inputs(g, spec: dict, L=5, N=2, E=8):
    r = _rng(12)
    S = spec.get("S", L)
    first = g.batch_first and not spec.get("unbatched")

    def shape(n, e):
        if spec.get("unbatched"):
            return (n, e)
        return (N, n, e) if first else (n, N, e)

    q = r.standard_normal(shape(L, E))
    if spec.get("self"):
        return [q]
    k, v = r.standard_normal(shape(S, g.kdim)), r.standard_normal(shape(S, g.vdim))
    return [q, k] if spec.get("kv_same", True) and g.kdim == g.vdim else [q, k, v]


@pytest.mark.parametrize("case,compiled", _cases(MHA))
def test_multihead_attention(torch, case, compiled):
    ctor, spec = case
    if ctor.get("kdim") and spec.get("kv_same", True):
        spec = dict(spec, kv_same=False)
    g, t = _pair(torch, "MultiheadAttention", 8, 2, **ctor)
    assert repr(g) == repr(t)
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    _randomize(torch, g, t, seed=13)
    if spec.get("eval"):
        g.eval()
        t.eval()
    check(torch, _mha_call(graphnn, g, spec), _mha_call(torch, t, spec), _mha_inputs(g, spec), g, t, compiled=compiled)


def test_multihead_attention_errors():
    mha = gnn.MultiheadAttention(8, 2)
    x = graphnn.randn(5, 2, 8)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(RuntimeError, match="The shape of the 2D attn_mask is"):
        mha(x, x, x, attn_mask=graphnn.zeros(4, 5))
    with pytest.raises(AssertionError, match="expecting key_padding_mask shape"):
        mha(x, x, x, key_padding_mask=graphnn.zeros(2, 4).bool())
    with pytest.raises(AssertionError, match="only bool and floating types"):
        mha(x, x, x, attn_mask=graphnn.zeros(5, 5, dtype=graphnn.int64))
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        gnn.MultiheadAttention(8, 3)


# -- transformer layers and stacks ---------------------------------------------------------------------------------
def _layer_kwargs(lib, kw: dict) -> dict:
    """Constructor arguments; an 'activation' given as 'GELU_module' becomes each library's own nn.GELU()."""
    kw = dict(kw)
    if kw.get("activation") == "GELU_module":
        kw["activation"] = lib.nn.GELU()
    elif kw.get("activation") == "F.gelu":
        kw["activation"] = lib.nn.functional.gelu
    return kw


def _build(torch, name: str, *args, **kw):
    g = getattr(gnn, name)(*args, **_layer_kwargs(graphnn, kw)).double()
    t = getattr(torch.nn, name)(*args, **_layer_kwargs(torch, kw)).double()
    copy_state(torch, g, t)
    return g, t


ENC = [
    dict(dropout=0.0),
    dict(dropout=0.0, norm_first=True, activation="gelu", masks=("src_mask", "kpm")),
    dict(dropout=0.0, batch_first=True, activation="GELU_module", masks=("causal",)),
    dict(dropout=0.0, bias=False, layer_norm_eps=1e-3, activation="F.gelu", masks=("kpm",)),
    dict(dropout=0.2, eval=True, masks=("src_mask",)),
]


def _enc_masks(lib, masks, S: int, N: int):
    r = _rng(14)
    out = {}
    if "src_mask" in masks:
        m = r.random((S, S)) < 0.3
        np.fill_diagonal(m, False)
        out["src_mask"] = lib.tensor(m)
    if "causal" in masks:
        out["src_mask"] = lib.nn.Transformer.generate_square_subsequent_mask(S).double()
        out["is_causal"] = True
    if "kpm" in masks:
        kpm = r.random((N, S)) < 0.3
        kpm[:, 0] = False
        out["src_key_padding_mask"] = lib.tensor(kpm)
    return out


@pytest.mark.parametrize("case,compiled", _cases(ENC))
def test_transformer_encoder_layer(torch, case, compiled):
    kw = {k: v for k, v in case.items() if k not in ("masks", "eval")}
    g, t = _build(torch, "TransformerEncoderLayer", 8, 2, 16, **kw)
    assert repr(g) == repr(t)
    assert g.activation_relu_or_gelu == t.activation_relu_or_gelu
    _randomize(torch, g, t, seed=15)
    if case.get("eval"):
        g.eval()
        t.eval()
    S, N = 5, 3
    shape = (N, S, 8) if kw.get("batch_first") else (S, N, 8)

    def call(lib, mod):
        masks = _enc_masks(lib, case.get("masks", ()), S, N)
        return lambda x: mod(x, **masks)

    check(torch, call(graphnn, g), call(torch, t), [_rng(16).standard_normal(shape)], g, t, compiled=compiled)


DEC = [
    dict(dropout=0.0),
    dict(dropout=0.0, norm_first=True, masks=True),
    dict(dropout=0.0, batch_first=True, activation="gelu", masks=True),
]


def _dec_masks(lib, T: int, S: int, N: int):
    r = _rng(17)
    mem_kpm = r.random((N, S)) < 0.3
    mem_kpm[:, 0] = False
    tgt_kpm = r.random((N, T)) < 0.3
    tgt_kpm[:, 0] = False
    mem_mask = r.random((T, S)) < 0.2
    mem_mask[:, 1] = False
    return dict(
        tgt_mask=lib.nn.Transformer.generate_square_subsequent_mask(T, dtype=lib.float64),
        memory_mask=lib.tensor(mem_mask),
        tgt_key_padding_mask=lib.tensor(tgt_kpm),
        memory_key_padding_mask=lib.tensor(mem_kpm),
    )


@pytest.mark.parametrize("case,compiled", _cases(DEC))
def test_transformer_decoder_layer(torch, case, compiled):
    kw = {k: v for k, v in case.items() if k != "masks"}
    g, t = _build(torch, "TransformerDecoderLayer", 8, 2, 16, **kw)
    assert repr(g) == repr(t)
    _randomize(torch, g, t, seed=18)
    T, S, N = 4, 6, 2
    first = kw.get("batch_first")
    shapes = [(N, T, 8), (N, S, 8)] if first else [(T, N, 8), (S, N, 8)]

    def call(lib, mod):
        masks = _dec_masks(lib, T, S, N) if case.get("masks") else {}
        return lambda tgt, mem: mod(tgt, mem, **masks)

    r = _rng(19)
    check(torch, call(graphnn, g), call(torch, t), [r.standard_normal(s) for s in shapes], g, t, compiled=compiled)


@MODES
def test_encoder_and_decoder_stacks(torch, compiled):
    """Stacks of deep copies (equal initial values, separate parameters), with a final norm."""

    def build(nn):
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2, nn.LayerNorm(8))
        dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), 2, nn.LayerNorm(8))
        return enc.double(), dec.double()

    (ge, gd), (te, td) = build(gnn), build(torch.nn)
    a, b = ge.layers[0].linear1.weight, ge.layers[1].linear1.weight
    assert a is not b
    np.testing.assert_array_equal(to_np(a), to_np(b))
    assert list(ge.state_dict()) == list(te.state_dict()) and list(gd.state_dict()) == list(td.state_dict())
    _randomize(torch, ge, te, seed=20)
    _randomize(torch, gd, td, seed=21)
    S, T, N = 5, 4, 2

    def call(lib, enc, dec):
        mask = lib.nn.Transformer.generate_square_subsequent_mask(T, dtype=lib.float64)

        def f(src, tgt):
            memory = enc(src, is_causal=False)
            return dec(tgt, memory, tgt_mask=mask, tgt_is_causal=True)

        return f

    r = _rng(22)
    ins = [r.standard_normal((S, N, 8)), r.standard_normal((T, N, 8))]
    g_mod = Lambda(call(graphnn, ge, gd), ge, gd)
    t_mod = torch.nn.ModuleList([te, td])
    check(torch, g_mod, call(torch, te, td), ins, g_mod, _Named(torch, t_mod), compiled=compiled)


def _Named(torch, modules):
    """PyTorch modules under Lambda's names (m0, m1), so that parameter names line up."""
    t = torch.nn.Module()
    for i, m in enumerate(modules):
        t.add_module(f"m{i}", m)
    return t


def _transformer_pair(torch, **kw):
    g = gnn.Transformer(**_layer_kwargs(graphnn, kw)).double()
    t = torch.nn.Transformer(**_layer_kwargs(torch, kw)).double()
    copy_state(torch, g, t)
    return g, t


TRANSFORMERS = [
    dict(batch_first=False, masks=False),
    dict(batch_first=True, masks=True, norm_first=True),
    dict(batch_first=False, masks=True, activation="gelu", bias=False),
]


@pytest.mark.parametrize("case,compiled", _cases(TRANSFORMERS))
def test_transformer(torch, case, compiled):
    kw = {k: v for k, v in case.items() if k != "masks"}
    g, t = _transformer_pair(
        torch, d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16, dropout=0.0, **kw
    )
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())
    S, T, N = 5, 4, 2
    first = kw["batch_first"]
    shapes = [(N, S, 8), (N, T, 8)] if first else [(S, N, 8), (T, N, 8)]

    def call(lib, mod):
        kws = {}
        if case["masks"]:
            d = _dec_masks(lib, T, S, N)
            src_kpm = _enc_masks(lib, ("kpm",), S, N)["src_key_padding_mask"]
            kws = dict(d, src_key_padding_mask=src_kpm, src_mask=None)
        return lambda src, tgt: mod(src, tgt, **kws)

    r = _rng(23)
    check(torch, call(graphnn, g), call(torch, t), [r.standard_normal(s) for s in shapes], g, t, compiled=compiled)


def test_transformer_errors_and_mask(torch):
    g = gnn.Transformer(8, 2, 1, 1, 16)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        g(graphnn.randn(5, 2, 8), graphnn.randn(4, 3, 8))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
        g(graphnn.randn(5, 2, 8), graphnn.randn(4, 2, 6))
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        gnn.TransformerEncoderLayer(8, 2, activation="tanh")
    for sz in (1, 4):
        m = gnn.Transformer.generate_square_subsequent_mask(sz)
        tm = torch.nn.Transformer.generate_square_subsequent_mask(sz)
        assert m.dtype_name == "float32"
        np.testing.assert_array_equal(to_np(m), tm.numpy())
    custom = gnn.Transformer(8, 2, custom_encoder=gnn.Identity(), custom_decoder=gnn.Linear(8, 8))
    assert [n for n, _ in custom.named_children()] == ["encoder", "decoder"]
    assert isinstance(custom.encoder, gnn.Identity)


def _sample_error(kind: str, n: int) -> float:
    """Standard error of a sample's standard deviation, relative to it: 1/sqrt(5n) for a uniform distribution,
    1/sqrt(2n) for a normal one."""
    return 1 / math.sqrt((5 if kind == "uniform" else 2) * n)


def test_transformer_initialization_statistics(torch):
    """Every parameter initialized as PyTorch's: matrices Xavier-uniform (nn.Transformer resets them all), biases
    zero, LayerNorm weights one; MultiheadAttention alone: Xavier-uniform in_proj_weight, out_proj by Linear's
    init, Xavier-normal bias_k / bias_v. Compared by shape, exact values (constants) or statistics: means and
    standard deviations within 5 combined standard errors, the range within the bound."""
    graphnn.manual_seed(0)
    torch.manual_seed(0)
    models = [
        (gnn.Transformer(32, 4, 1, 1, 64), torch.nn.Transformer(32, 4, 1, 1, 64)),
        (gnn.MultiheadAttention(48, 4, add_bias_kv=True), torch.nn.MultiheadAttention(48, 4, add_bias_kv=True)),
        (gnn.TransformerEncoderLayer(32, 4, 64), torch.nn.TransformerEncoderLayer(32, 4, 64)),
    ]
    for g, t in models:
        tp = dict(t.named_parameters())
        for name, p in g.named_parameters():
            a, b = to_np(p), tp[name].detach().numpy()
            assert a.shape == b.shape and a.dtype == b.dtype, name
            if np.all(b == b.flat[0]):
                np.testing.assert_array_equal(a, b, err_msg=name)
                continue
            kind = "normal" if name.startswith("bias_") else "uniform"
            rel = _sample_error(kind, a.size)
            s = b.std()
            assert abs(a.std() - s) <= 5 * math.sqrt(2) * rel * s, name
            assert abs(a.mean() - b.mean()) <= 5 * math.sqrt(2) * s / math.sqrt(a.size), name
            if kind == "uniform":
                bound = math.sqrt(3) * s * (1 + 5 * rel)
                assert np.abs(a).max() <= bound, name


# -- a user subclass of nn.Transformer (PyTorch's word_language_model example) -------------------------------------
def _word_lm(lib):
    nn, F = lib.nn, lib.nn.functional

    class PositionalEncoding(nn.Module):
        def __init__(self, d_model, dropout=0.1, max_len=50):
            super().__init__()
            self.dropout = nn.Dropout(p=dropout)
            position = lib.arange(0, max_len, dtype=lib.float).unsqueeze(1)
            div_term = lib.exp(lib.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
            # pe[:, 0::2] = sin, pe[:, 1::2] = cos, interleaved by a stack
            pe = lib.stack([(position * div_term).sin(), (position * div_term).cos()], 2).reshape(max_len, d_model)
            self.register_buffer("pe", pe.unsqueeze(0).transpose(0, 1))

        def forward(self, x):
            return self.dropout(x + self.pe[: x.size(0), :])

    class TransformerModel(nn.Transformer):
        def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
            super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid, num_encoder_layers=nlayers)
            self.model_type = "Transformer"
            self.src_mask = None
            self.pos_encoder = PositionalEncoding(ninp, dropout)
            self.input_emb = nn.Embedding(ntoken, ninp)
            self.ninp = ninp
            self.decoder = nn.Linear(ninp, ntoken)
            self.init_weights()

        def init_weights(self):
            initrange = 0.1
            nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, src, has_mask=True):
            mask = self.generate_square_subsequent_mask(len(src)).to(src.device) if has_mask else None
            src = self.input_emb(src) * math.sqrt(self.ninp)
            src = self.pos_encoder(src)
            output = self.encoder(src, mask=mask)
            output = self.decoder(output)
            return F.log_softmax(output, dim=-1)

    return TransformerModel


@MODES
def test_transformer_subclass_word_language_model(torch, compiled):
    """The example's model (nn.Transformer's encoder, its decoder replaced by a Linear) trains the same: two SGD
    steps with gradient clipping, in float64, eval-mode dropout."""
    graphnn.manual_seed(0)
    g = _word_lm(graphnn)(20, 8, 2, 16, 2).double()
    t = _word_lm(torch)(20, 8, 2, 16, 2).double()
    assert isinstance(g.decoder, gnn.Linear) and "decoder.weight" in g.state_dict()
    assert list(g.state_dict()) == list(t.state_dict())
    copy_state(torch, g, t)
    for m in (g, t):
        for d in m.modules():  # dropout off (in training mode), also on the attention weights
            if type(d).__name__ == "Dropout":
                d.p = 0.0
            if type(d).__name__ == "MultiheadAttention":
                d.dropout = 0.0
    criterion = gnn.NLLLoss(), torch.nn.NLLLoss()

    def stepper(lib, model, crit):
        def step(data, targets):
            model.zero_grad()
            output = model(data)
            loss = crit(output.view(-1, 20), targets)
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-0.5)
            return loss

        return step

    g_step, t_step = stepper(graphnn, g, criterion[0]), stepper(torch, t, criterion[1])
    g_step = graphnn.compile(g_step) if compiled else g_step
    r = _rng(24)
    # per step: embedding and positional encoding (3), 2 post-norm encoder layers (each attention ~ 3 products of
    # <= 8 terms, a softmax of 6, two LayerNorms of 8, a feed-forward of 8 + 16 terms: ~ 120), the decoder and
    # log_softmax over 20 (30), the mean (12); backward about as much again; clipping a norm over ~ 2000 values (450)
    rounds = 2 * (3 + 2 * 120 + 30 + 12) + 450
    for i in range(2):
        data, targets = r.integers(0, 20, (6, 2)), r.integers(0, 20, (12,))
        t_loss = t_step(torch.tensor(data), torch.tensor(targets))
        g_loss = g_step(graphnn.tensor(data), graphnn.tensor(targets))
        close(g_loss, t_loss, "loss", steps_tolerance(t_loss, rounds * (i + 1)))
    compare_params(g, t, rounds * 2)


@pytest.mark.parametrize("compiled", [False, True])
def test_causal_and_a_mask_together(compiled):
    """is_causal with an explicit mask (PyTorch's CPU kernel accepts it): both apply, as the causal mask combined
    with the given one."""
    rng = np.random.default_rng(3)
    q, k, v = (graphnn.tensor(rng.standard_normal((2, 3, 5, 4)).astype(np.float32)) for _ in range(3))
    causal = np.tril(np.ones((5, 5), bool))
    for m in (rng.standard_normal((5, 5)).astype(np.float32), rng.random((5, 5)) > 0.3):
        both = lambda q, k, v, m: gF.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=True)  # noqa: E731
        got = (graphnn.compile(both) if compiled else both)(q, k, v, graphnn.tensor(m))
        combined = np.where(causal, m, -np.inf) if m.dtype != bool else (m & causal)
        want = gF.scaled_dot_product_attention(q, k, v, attn_mask=graphnn.tensor(combined))
        # the same sums in another order: float32 rounding of <= 5-term softmax-weighted sums of O(1) values
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_encoder_inference_with_a_padding_mask_gives_zeros_at_padded_positions():
    """PyTorch's encoder runs inference calls with a left-aligned padding mask on nested tensors and pads the result
    with zeros (before the final norm); in training, with gradients, or with a mask that is not left-aligned the
    padded positions hold ordinary values."""
    graphnn.manual_seed(0)
    enc = gnn.TransformerEncoder(gnn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True), 2)
    x = graphnn.randn(2, 5, 8)
    pad = graphnn.tensor([[False, False, False, True, True], [False] * 5])
    enc.eval()
    with graphnn.no_grad():
        y = enc(x, src_key_padding_mask=pad).numpy()
        right = enc(x, src_key_padding_mask=graphnn.tensor([[True, False, False, False, False], [False] * 5]))
    assert (y[0, 3:] == 0).all() and (y[0, :3] != 0).all() and (y[1] != 0).all()
    assert (right.numpy()[0, 0] != 0).all()  # (padding first: not left-aligned, no nested path)
    with_grad = enc(x, src_key_padding_mask=pad).detach().numpy()
    assert (with_grad[0, 3:] != 0).all()
    np.testing.assert_allclose(with_grad[0, :3], y[0, :3], rtol=1e-5, atol=1e-6)
    with pytest.warns(UserWarning, match="batch_first was not True"):
        gnn.TransformerEncoder(gnn.TransformerEncoderLayer(8, 2), 1)
