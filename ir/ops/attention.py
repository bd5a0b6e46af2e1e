"""Attention as one op: softmax(scale * q @ k^T + mask) @ v, never materializing the Lq x Lk matrix in compiled code.

    attention(q, k, v[, mask]; scale, causal)  -> out (..., Lq, Ev), lse (..., Lq): the log-sum-exp of each row's
                                                  scores, which the gradient reads (dead, and never stored, without one)
    attention_backward(q, k, v[, mask], lse, d, g; scale, causal) -> dq, dk, dv[, dmask]: the gradient in one
                                                  kernel (flash-attention 2 style: each block of probabilities
                                                  recomputed once; dmask dead, and never stored, unless read)

q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev); batch dimensions broadcast. `mask` is additive (a float tensor
broadcastable to (..., Lq, Lk); -inf removes a key); `causal` removes key j from query i when j > i (upper-left
aligned, as PyTorch's is_causal). A removed pair is never read: its score is -inf and it adds nothing to the
output or the gradients, so an Inf or NaN in a key, value or gradient row stays out of the rows that do not see it
(PyTorch's kernels multiply it by a zero probability: NaN). A query row with every key removed gives zeros and a
log-sum-exp of -inf (as PyTorch). The gradient
recomputes the probabilities per block from the saved log-sum-exp (d = rowsum(g * out)), as flash attention does.
Both ops read q, k, v (and g) in place through strided views (`reads_views`): the heads of a fused qkv projection
are never copied into head-major tensors.
"""

from __future__ import annotations

import numpy as np

from ._util import is_zero_fill
from ..registry import Fuzz, register
from ..roundoff import steps, unit_roundoff
from ..types import TensorType, broadcast_shapes


def _parts(types_or_values, attrs) -> tuple:
    """(q, k, v, mask or None, rest) of an attention op's inputs."""
    xs = list(types_or_values)
    q, k, v = xs[0], xs[1], xs[2]
    mask = xs[3] if attrs.get("masked") else None
    rest = xs[3 + (1 if attrs.get("masked") else 0) :]
    return q, k, v, mask, rest


def _check(q, k, v, mask) -> tuple:
    """The broadcast batch shape; raises for shapes attention cannot take."""
    if q.ndim < 2 or k.ndim < 2:
        raise ValueError("attention needs (..., L, E) queries and keys")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"query and key sizes differ: {q.shape[-1]} vs {k.shape[-1]}")
    batch = broadcast_shapes(q.shape[:-2], k.shape[:-2])
    if v is not None:
        if v.ndim < 2 or v.shape[-2] != k.shape[-2]:
            raise ValueError(f"values {v.shape} do not match keys {k.shape}")
        batch = broadcast_shapes(batch, v.shape[:-2])
    if not all(t.is_float and t.dtype == q.dtype for t in (q, k) + ((v,) if v is not None else ())):
        raise TypeError("attention needs floating-point q, k, v of one dtype")
    if mask is not None:
        if not mask.is_float:
            raise TypeError(f"the attention mask must be additive (float), got {mask.dtype}")
        full = broadcast_shapes(mask.shape, batch + (q.shape[-2], k.shape[-2]))
        if full != batch + (q.shape[-2], k.shape[-2]):
            raise ValueError(f"mask {mask.shape} does not broadcast to {batch + (q.shape[-2], k.shape[-2])}")
    return batch


def _scores(q, k, mask, attrs) -> np.ndarray:
    """scale * q @ k^T + mask, with removed pairs (see _keep) at -inf (float64 for the reference)."""
    s = np.matmul(q.astype(np.float64), np.swapaxes(k, -1, -2).astype(np.float64)) * attrs["scale"]
    if mask is not None:
        with np.errstate(invalid="ignore"):  # (Inf + -inf: a removed pair, at -inf below)
            s = s + mask
    keep = _keep(mask, attrs, q.shape[-2], k.shape[-2])
    return s if keep is None else np.where(keep, s, -np.inf)


def _keep(mask, attrs, lq: int, lk: int):
    """Which (query, key) pairs take part (broadcastable to (..., lq, lk)); None: all. Removed are key j for query
    i < j (causal) and the pairs where the mask is -inf: a removed pair's score is -inf whatever q and k hold, and
    the kernels skip it, so an Inf or NaN in a key or value row (or in g) a query does not see never reaches it."""
    keep = np.tril(np.ones((lq, lk), bool)) if attrs.get("causal") else None
    if mask is not None and np.isneginf(mask).any():
        seen = ~np.isneginf(mask)
        keep = seen if keep is None else keep & seen
    return keep


def _contract(w: np.ndarray, x: np.ndarray, keep) -> np.ndarray:
    """sum_j w[..., i, j] * x[..., j, :] over the pairs `keep` allows (float64)."""
    x = x.astype(np.float64)
    if keep is None:
        return np.matmul(w, x)
    w = np.where(keep, w, 0.0)
    if np.isfinite(x).all():
        return np.matmul(w, x)
    return np.where(keep[..., None], w[..., None] * x[..., None, :, :], 0.0).sum(-2)


def _probs(s: np.ndarray) -> tuple:
    """(softmax rows, log-sum-exp per row); a row with every key removed gives zeros and lse -inf (NaN scores
    propagate, as in PyTorch)."""
    removed = np.all(np.isneginf(s), axis=-1, keepdims=True)
    m = np.where(removed, 0.0, np.max(s, axis=-1, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = np.exp(s - m)
        total = e.sum(-1, keepdims=True)
        p = np.where(removed, 0.0, e / total)
        lse = np.where(removed, -np.inf, np.log(total) + m)[..., 0]
    return p, lse


def _rel(x, e) -> float:
    """The largest error of x relative to its largest magnitude (0 for exact values)."""
    if e is None:
        return 0.0
    top = float(np.max(np.abs(x), initial=0.0))
    return float(np.max(e, initial=0.0)) / top if top > 0 else 0.0


def _score_errors(node, ins, errs, u: float) -> tuple:
    """(scores, the largest score error of each row, each probability's relative error bound). A score's error: its
    dot product's rounding plus the errors q and k carry, plus the mask's. Softmax turns an error of at most es in a
    row's scores into relative errors of at most 2 es in its probabilities; the op's own rounding is a few steps per
    exp, a sum over the keys and the online softmax's rescaling (an exp and a product per key block: at most one per
    key, whatever block size the kernel picks)."""
    q, k, v, mask, rest = _parts(ins, node.attrs)
    eq, ek, ev, em, erest = _parts(errs, node.attrs)
    scale = node.attrs["scale"]
    aq, ak = np.abs(q.astype(np.float64)), np.abs(k.astype(np.float64))
    es = scale * (
        steps(q.shape[-1]) * u * np.matmul(aq, np.swapaxes(ak, -1, -2))
        + np.matmul(np.asarray(eq, np.float64), np.swapaxes(ak, -1, -2))
        + np.matmul(aq, np.swapaxes(np.asarray(ek, np.float64), -1, -2))
    )
    if mask is not None:
        es = es + em
    s = _scores(q, k, mask, node.attrs)
    es_row = np.max(np.where(np.isfinite(s), es, 0.0), axis=-1)
    lk = k.shape[-2]
    soft = 2 * es_row + u * (steps(lk) + 8 + _RESCALE_STEPS * steps(lk))
    return s, es_row, soft


_RESCALE_STEPS = 5  # rounding steps of one online-softmax rescale: an exp of a few ulp and a product


def _seen_max(av: np.ndarray, keep) -> np.ndarray:
    """The largest |v| over the keys each query row sees (over all keys when they are finite: the same bound or a
    larger one)."""
    if keep is None or np.isfinite(av).all():
        return np.max(av, axis=-2, keepdims=True)
    return np.max(np.where(keep[..., None], av[..., None, :, :], 0.0), axis=-2, initial=0.0)


def _forward_roundoff(node, ins, errs) -> list:
    """Bounds of attention's two outputs: the weighted sum of value rows, and the log-sum-exp."""
    errs = [np.zeros(np.shape(a)) if e is None else e for a, e in zip(ins, errs)]
    q, k, v, mask, _ = _parts(ins, node.attrs)
    ev = _parts(errs, node.attrs)[2]
    u = unit_roundoff(q.dtype)
    s, es_row, soft = _score_errors(node, ins, errs, u)
    p, lse = _probs(s)
    av = np.abs(v.astype(np.float64))
    keep = _keep(mask, node.attrs, q.shape[-2], k.shape[-2])
    lk = k.shape[-2]
    out = soft[..., None] * _seen_max(av, keep) + _contract(p, ev, keep) + u * steps(lk) * _contract(p, av, keep)
    with np.errstate(invalid="ignore"):
        e_lse = es_row + u * (steps(lk) + 8 + _RESCALE_STEPS * steps(lk)) * np.maximum(1.0, np.abs(lse))
    return [out, np.where(np.isfinite(e_lse), e_lse, 0.0)]


_forward_roundoff.per_output = True


def _backward_roundoff(node, ins, errs) -> list:
    """attention_backward's bounds, one per output."""
    errs = [np.zeros(np.shape(a)) if e is None else e for a, e in zip(ins, errs)]
    u = unit_roundoff(node.outputs[0].dtype)
    return [_wrt_roundoff(node, ins, errs, u, w) for w in _WRT[: len(node.outputs)]]


_backward_roundoff.per_output = True


def _wrt_roundoff(node, ins, errs, u: float, wrt: str):
    """The bound of the gradient wrt q, k, v or the mask: sums of products of a few factors of the forward's kind,
    whose relative errors add up; the errors the cotangents g and d carry enter as absolute errors, contracted as
    the values are (a relative bound scaled by the largest |g| would lose a small entry's own error)."""
    q, k, v, mask, rest = _parts(ins, node.attrs)
    eq, ek, ev, em, erest = _parts(errs, node.attrs)
    scale = node.attrs["scale"]
    s, _, soft = _score_errors(node, ins, errs, u)
    p, _ = _probs(s)
    aq, ak, av = (np.abs(x.astype(np.float64)) for x in (q, k, v))
    lk = k.shape[-2]
    lse, d, g = rest
    ag = np.abs(g.astype(np.float64))
    # p = exp(s - lse) is recomputed from the forward's lse: an absolute error in lse is a relative one in p
    e_lse = np.asarray(erest[0], np.float64)
    rel = (
        2 * soft.max(initial=0.0)
        + float(np.max(np.where(np.isfinite(e_lse), e_lse, 0.0), initial=0.0))
        + u * (steps(lk) + steps(v.shape[-1]) + steps(q.shape[-1]))
        + sum(_rel(x, e) for x, e in zip((q, k, v), (eq, ek, ev)))
    )
    eg = np.broadcast_to(np.asarray(erest[2], np.float64), g.shape)
    ed = np.broadcast_to(np.asarray(erest[1], np.float64), d.shape)
    keep = _keep(mask, node.attrs, q.shape[-2], k.shape[-2])
    keep_t = None if keep is None else np.swapaxes(keep, -1, -2)
    with np.errstate(invalid="ignore"):
        pdp = p * (np.matmul(ag, np.swapaxes(av, -1, -2)) + np.abs(d.astype(np.float64))[..., None])
        pdp_err = p * (np.matmul(eg, np.swapaxes(av, -1, -2)) + ed[..., None])  # from g's and d's own errors
    if keep is not None:
        pdp = np.where(keep, pdp, 0.0)
        pdp_err = np.where(keep, pdp_err, 0.0)
    if wrt == "v":
        pt = np.swapaxes(p, -1, -2)
        return rel * _contract(pt, ag, keep_t) + _contract(pt, eg, keep_t)
    if wrt == "mask":
        return rel * pdp + pdp_err
    if wrt == "q":
        return scale * (rel * _contract(pdp, ak, keep) + _contract(pdp_err, ak, keep))
    pt, et = np.swapaxes(pdp, -1, -2), np.swapaxes(pdp_err, -1, -2)
    return scale * (rel * _contract(pt, aq, keep_t) + _contract(et, aq, keep_t))


def _attention_infer(types, attrs):
    q, k, v, mask, rest = _parts(types, attrs)
    if rest:
        raise ValueError(f"attention takes q, k, v and {'a mask' if attrs.get('masked') else 'no mask'}")
    batch = _check(q, k, v, mask)
    return [TensorType(batch + (q.shape[-2], v.shape[-1]), q.dtype), TensorType(batch + (q.shape[-2],), q.dtype)]


def _attention_ref(arrays, attrs):
    q, k, v, mask, _ = _parts(arrays, attrs)
    p, lse = _probs(_scores(q, k, mask, attrs))
    out = _contract(p, v, _keep(mask, attrs, q.shape[-2], k.shape[-2]))
    return [out.astype(q.dtype), lse.astype(q.dtype)]


def _grad_inputs(node) -> tuple:
    q, k, v, mask, _ = _parts(node.inputs, node.attrs)
    return q, k, v, mask


def _attention_grad(b, node, cts):
    """With p = exp(s - lse): ds = p * (g . v_j - d) where d = rowsum(g * out), less the lse's own cotangent (d lse /
    ds = p)."""
    q, k, v, mask = _grad_inputs(node)
    at = {"scale": node.attrs["scale"], "causal": node.attrs.get("causal", False), "masked": mask is not None}
    (g, g_lse), (out, lse) = cts, node.outputs
    d = b.sum(b.mul(g, out), axes=(-1,), keepdims=False)
    if not is_zero_fill(g_lse):
        d = b.sub(d, g_lse)
    ins = [q, k, v] + ([mask] if mask is not None else []) + [lse, d, g]
    inputs = (q, k, v) + ((mask,) if mask is not None else ())
    return [_unbroadcast_to(b, x, t.shape) for x, t in zip(b.attention_backward(*ins, **at), inputs)]


def _unbroadcast_to(b, g, shape):
    from ._util import unbroadcast

    return unbroadcast(b, g, shape)


def _attention_flops(node) -> int:
    q, k, v, _ = _grad_inputs(node)
    out = node.outputs[0]
    rows = out.type.size // out.shape[-1]
    return 2 * rows * k.shape[-2] * (q.shape[-1] + v.shape[-1])


register(
    "attention",
    infer=_attention_infer,
    ref=_attention_ref,
    grad=_attention_grad,
    pattern="opaque",
    schedule="attention",
    flops=_attention_flops,
    torch_name="ScaledDotProductFlashAttentionForCpuBackward0",
    roundoff=_forward_roundoff,
    reads_views=True,
    fuzz=Fuzz(generator="attention", smooth=True, heavy=True),
    doc="softmax(scale * q @ k^T + mask) @ v and the log-sum-exp of each row, over blocks of keys with an online "
    "softmax (the score matrix is never materialized)",
)


_WRT = ("q", "k", "v", "mask")


def _grad_ref(arrays, attrs, wrt: str):
    """The gradient wrt q, k, v or the mask (float64 arithmetic, in q's dtype)."""
    q, k, v, mask, (lse, d, g) = _parts(arrays, attrs)
    s = _scores(q, k, mask, attrs)
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.where(np.isneginf(lse)[..., None], 0.0, np.exp(s - lse[..., None]))  # (NaN propagates)
    g64 = g.astype(np.float64)
    dt = q.dtype
    keep = _keep(mask, attrs, q.shape[-2], k.shape[-2])
    keep_t = None if keep is None else np.swapaxes(keep, -1, -2)
    if wrt == "v":
        return _contract(np.swapaxes(p, -1, -2), g64, keep_t).astype(dt)
    with np.errstate(invalid="ignore", over="ignore"):
        ds = p * (np.matmul(g64, np.swapaxes(v, -1, -2).astype(np.float64)) - d[..., None])
    if keep is not None:
        ds = np.where(keep, ds, 0.0)
    if wrt == "mask":
        return ds.astype(dt)
    if wrt == "q":
        return (_contract(ds, k, keep) * attrs["scale"]).astype(dt)
    return (_contract(np.swapaxes(ds, -1, -2), q, keep_t) * attrs["scale"]).astype(dt)


def _backward_infer(types, attrs):
    q, k, v, mask, rest = _parts(types, attrs)
    batch = _check(q, k, v, mask)
    if len(rest) != 3:
        raise ValueError("attention_backward takes q, k, v, [mask,] lse, d and the output gradient")
    lse, d, g = rest
    rows, out = batch + (q.shape[-2],), batch + (q.shape[-2], v.shape[-1])
    if lse.shape != rows or d.shape != rows or g.shape != out:
        raise ValueError(
            f"attention_backward: lse {lse.shape}, d {d.shape} and gradient {g.shape} must be {rows}, {rows} and {out}"
        )
    if not all(t.dtype == q.dtype for t in rest):
        raise TypeError(f"attention_backward: lse, d and the gradient must be {q.dtype}")
    lk = k.shape[-2]
    shapes = [rows + (q.shape[-1],), batch + (lk, k.shape[-1]), batch + (lk, v.shape[-1])]
    return [TensorType(sh, q.dtype) for sh in shapes + ([rows + (lk,)] if mask is not None else [])]


def _backward_ref(arrays, attrs):
    return [_grad_ref(arrays, attrs, w) for w in _WRT[: 4 if attrs.get("masked") else 3]]


def _backward_flops(node) -> int:
    """Per (query, key) pair: the score and g . v dot products, then the dq, dk and dv updates."""
    q, k, v, _ = _grad_inputs(node)
    rows = node.outputs[0].type.size // q.shape[-1]
    pairs = rows * k.shape[-2] // (2 if node.attrs.get("causal") else 1)
    return 2 * pairs * (2 * q.shape[-1] + 2 * v.shape[-1] + q.shape[-1])


register(
    "attention_backward",
    infer=_backward_infer,
    ref=_backward_ref,
    grad=None,
    pattern="opaque",
    schedule="attention_backward",
    flops=_backward_flops,
    roundoff=_backward_roundoff,
    reads_views=True,
    fuzz=Fuzz(generator="attention", heavy=True),
    doc="attention's gradient for q, k, v (and the mask) in one pass (flash-attention 2 style): per block of keys, "
    "each query row's probabilities are recomputed once from lse and give its dq, dk and dv terms (d = rowsum(g * "
    "out), computed first)",
)
