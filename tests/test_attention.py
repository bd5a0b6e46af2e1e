"""scaled_dot_product_attention as one attention op: values and gradients equal PyTorch's, eager and compiled, for
masks (boolean, additive, broadcast), the causal flag, scale, unequal lengths, rows that see no key and grouped
query heads; the compiled kernel never builds the score matrix."""

import numpy as np
import pytest

import graphnn
from graphnn.nn.functional import scaled_dot_product_attention as g_sdpa
from parity_util import check

RNG = np.random.default_rng(0)


def _qkv(b=2, h=3, lq=5, lk=7, e=4, ev=3, dtype=np.float32):
    return [RNG.standard_normal(s).astype(dtype) for s in ((b, h, lq, e), (b, h, lk, e), (b, h, lk, ev))]


CASES = {
    "plain": dict(),
    "causal": dict(lk=5, kw=dict(is_causal=True)),
    "causal_longer_keys": dict(lq=3, lk=6, kw=dict(is_causal=True)),
    "scale": dict(kw=dict(scale=0.2)),
    "bool_mask": dict(mask=lambda: RNG.random((5, 7)) < 0.7),
    "key_padding": dict(mask=lambda: (np.arange(7) < np.array([5, 7])[:, None]).reshape(2, 1, 1, 7)),
    "float_mask": dict(mask=lambda: RNG.standard_normal((2, 1, 5, 7)).astype(np.float32)),
    "row_without_keys": dict(mask=lambda: np.array([[True] * 7, [False] * 7, [True] * 7, [True] * 7, [True] * 7])),
    "float64": dict(dtype=np.float64),
    "three_dims": dict(three=True),
}


# feature sizes (e, ev): ones no vector width divides (the element-by-element kernels) and ones that several do
# (the vector-row kernels, with different lane counts for q/k and v)
GEOMETRIES = {"scalar_rows": (4, 3), "vector_rows": (8, 12)}


def _call(case, geometry="scalar_rows"):
    c = CASES[case]
    e, ev = GEOMETRIES[geometry]
    q, k, v = _qkv(lq=c.get("lq", 5), lk=c.get("lk", 7), e=e, ev=ev, dtype=c.get("dtype", np.float32))
    if c.get("three"):
        q, k, v = q[0], k[0], v[0]
    mask = c["mask"]() if "mask" in c else None
    if mask is not None and mask.dtype.kind == "f":
        mask = mask.astype(q.dtype)
    return q, k, v, mask, c.get("kw", {})


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pytorch(torch, case, compiled, geometry):
    q, k, v, mask, kw = _call(case, geometry)
    F = torch.nn.functional
    if mask is None:
        check(
            torch,
            lambda a, b, c: g_sdpa(a, b, c, **kw),
            lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kw),
            [q, k, v],
            compiled=compiled,
        )
    elif mask.dtype == bool:
        m_g, m_t = graphnn.tensor(mask), torch.tensor(mask)
        check(
            torch,
            lambda a, b, c: g_sdpa(a, b, c, attn_mask=m_g, **kw),
            lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=m_t, **kw),
            [q, k, v],
            compiled=compiled,
        )
    else:  # an additive mask that requires grad, too
        check(
            torch,
            lambda a, b, c, m: g_sdpa(a, b, c, attn_mask=m, **kw),
            lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m, **kw),
            [q, k, v, mask],
            compiled=compiled,
        )


def test_grouped_query_heads(torch):
    q = RNG.standard_normal((2, 4, 5, 3)).astype(np.float32)
    k, v = (RNG.standard_normal((2, 2, 6, 3)).astype(np.float32) for _ in range(2))
    F = torch.nn.functional
    check(
        torch,
        lambda a, b, c: g_sdpa(a, b, c, enable_gqa=True),
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, enable_gqa=True),
        [q, k, v],
    )


def test_compiled_code_never_builds_the_score_matrix():
    """Forward and backward of a causal attention at L = 512 compile to attention kernels whose buffers hold rows,
    never an L x L matrix."""
    q = graphnn.randn(1, 2, 512, 16, requires_grad=True)
    f = graphnn.compile(lambda a: g_sdpa(a, a, a, is_causal=True).sum())
    from graphnn.compiler.program import CompiledFunction

    assert isinstance(f, CompiledFunction)

    def step(a):
        loss = g_sdpa(a, a, a, is_causal=True).sum()
        loss.backward()
        return loss

    cstep = graphnn.compile(step)
    cstep(q)
    graph = cstep.graphs["lowered"]
    sizes = [o.type.size for n in graph.nodes for o in n.outputs]
    assert max(sizes) < 512 * 512, max(sizes)
    assert any(n.op == "attention" for n in graph.nodes) and any(n.op == "attention_backward" for n in graph.nodes)


@pytest.mark.parametrize("head_dim", [16, 5], ids=["vector_rows", "elementwise"])
def test_causal_attention_gradient_is_one_kernel(torch, head_dim):
    """The gradient of a causal attention for q, k and v (heads of a fused projection) is one attention_backward
    node, run as one kernel (no attention_grad), and matches PyTorch's."""
    x = RNG.standard_normal((2, 7, 3 * 2 * head_dim)).astype(np.float32)
    check(
        torch,
        lambda a: g_sdpa(*_heads(a, 2, graphnn), is_causal=True),
        lambda a: torch.nn.functional.scaled_dot_product_attention(*_heads(a, 2, torch), is_causal=True),
        [x],
        compiled=True,
    )

    def step(a):
        out = g_sdpa(*_heads(a, 2, graphnn), is_causal=True)
        (out * out).sum().backward()
        return out

    cstep = graphnn.compile(step)
    cstep(graphnn.tensor(x, requires_grad=True))
    ops = [[n.op for n in g.nodes] for g in cstep.graphs["fused"].groups]
    assert not any("attention_grad" in g for g in ops)
    assert sum(g.count("attention_backward") for g in ops) == 1


def test_dropout_path(torch):
    """dropout_p > 0 runs the composite form: with p close to 1 almost everything is dropped; with the same seed
    eager and compiled draw the same mask."""
    q, k, v = (graphnn.tensor(a) for a in _qkv())
    graphnn.manual_seed(3)
    a = g_sdpa(q, k, v, dropout_p=0.5)
    graphnn.manual_seed(3)
    b = graphnn.compile(lambda x, y, z: g_sdpa(x, y, z, dropout_p=0.5))(q, k, v)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_errors():
    q, k, v = (graphnn.tensor(a) for a in _qkv())
    with pytest.raises(ValueError, match="query and key sizes differ"):
        g_sdpa(q, graphnn.randn(2, 3, 7, 5), v)


def _heads(x, n_head: int, lib):
    """nanoGPT's layout: a fused (B, T, 3C) projection split into q, k, v, each viewed as (B, T, H, D) and
    transposed to (B, H, T, D) (strided views of the projection)."""
    b, t, c3 = x.shape
    return [y.view(b, t, n_head, c3 // 3 // n_head).transpose(1, 2) for y in x.chunk(3, -1)]


@pytest.mark.parametrize("head_dim", [16, 6])
def test_heads_of_a_fused_projection_are_read_in_place(torch, head_dim):
    """q, k, v as transposed views of one qkv tensor: values and gradients equal PyTorch's, and the compiled
    attention kernels read the projection itself (no kernel copies the heads into head-major tensors)."""
    F = torch.nn.functional
    x = RNG.standard_normal((2, 9, 3 * 2 * head_dim)).astype(np.float32)
    check(
        torch,
        lambda a: g_sdpa(*_heads(a, 2, graphnn), is_causal=True),
        lambda a: F.scaled_dot_product_attention(*_heads(a, 2, torch), is_causal=True),
        [x],
        compiled=True,
    )

    def step(a):
        out = g_sdpa(*_heads(a, 2, graphnn), is_causal=True)
        (out * out).sum().backward()
        return out

    cstep = graphnn.compile(step)
    cstep(graphnn.tensor(x, requires_grad=True))
    plan = cstep.graphs["fused"]
    for g in plan.groups:
        ops = {n.op for n in g.nodes}
        if "transpose" in ops and g.root.type.shape == (2, 2, 9, head_dim):
            assert ops & {"attention", "attention_backward"}, f"a kernel copies a head: {[n.op for n in g.nodes]}"
    assert sum(n.op == "attention" for g in plan.groups for n in g.nodes) == 1


@pytest.mark.parametrize("kw", [dict(is_causal=True), dict(mask=True), dict()], ids=["causal", "mask", "plain"])
def test_several_key_blocks(torch, kw):
    """Head size 256: a key block of at most 16 keys on any L1 data cache up to 64 KiB, so 50 keys run in several
    blocks (the online softmax rescales); 37 queries leave a partial last query tile."""
    q, k, v = _qkv(b=1, h=2, lq=37, lk=50, e=256, ev=256)
    F = torch.nn.functional
    if kw.get("mask"):
        m = RNG.random((37, 50)) < 0.6
        m[:, 20] = True
        m_g, m_t = graphnn.tensor(m), torch.tensor(m)
        g_fn = lambda a, b, c: g_sdpa(a, b, c, attn_mask=m_g)  # noqa: E731
        t_fn = lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=m_t)  # noqa: E731
    else:
        g_fn = lambda a, b, c: g_sdpa(a, b, c, **kw)  # noqa: E731
        t_fn = lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kw)  # noqa: E731
    check(torch, g_fn, t_fn, [q, k, v], compiled=True)


def test_log_sum_exp_output():
    """attention's second output is each row's log-sum-exp (-inf for a row that sees no key), compiled as eagerly,
    within the op's rounding-error bound (graphnn.ir.roundoff) of the float64 value."""
    from graphnn.core.dispatch import apply
    from graphnn.ir import Graph
    from graphnn.ir.roundoff import error_bounds
    from graphnn.ir.types import TensorType

    arrays = list(_qkv(lq=5, lk=7, e=8, ev=8))
    mask = np.zeros((5, 7), np.float32)
    mask[1] = -np.inf
    arrays.append(mask)
    at = {"scale": 0.5, "causal": False, "masked": True}
    g = Graph()
    ins = [g.add_input(TensorType(a.shape, "float32")) for a in arrays]
    g.outputs = [g.add_node("attention", ins, at).outputs[1]]
    bound = error_bounds(g, arrays)[0]
    q, k = (a.astype(np.float64) for a in arrays[:2])
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * 0.5 + mask
    with np.errstate(divide="ignore"):
        want = np.log(np.exp(s).sum(-1))
    ts = [graphnn.tensor(a) for a in arrays]
    f = graphnn.compile(lambda a, b, c, d: apply("attention", [a, b, c, d], at)[1])
    for got in (apply("attention", ts, at)[1].numpy(), f(*ts).numpy()):
        assert np.isneginf(got[:, :, 1]).all()
        finite = np.isfinite(want)
        assert (np.abs(got[finite] - want[finite]) <= bound[finite]).all()
