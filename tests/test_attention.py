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
    assert any(n.op == "attention" for n in graph.nodes) and any(n.op == "attention_grad" for n in graph.nodes)


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
    with pytest.raises(ValueError, match="is_causal and an explicit attn_mask"):
        g_sdpa(q, k, v, attn_mask=graphnn.ones(5, 7, dtype=graphnn.bool), is_causal=True)
    with pytest.raises(ValueError, match="query and key sizes differ"):
        g_sdpa(q, graphnn.randn(2, 3, 7, 5), v)
