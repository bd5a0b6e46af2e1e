"""Attention as one op: softmax(scale * q @ k^T + mask) @ v, never materializing the Lq x Lk matrix in compiled code.

    attention(q, k, v[, mask]; scale, causal)             -> out (..., Lq, Ev)
    attention_lse(q, k[, mask]; scale, causal)            -> lse (..., Lq): the log-sum-exp of each row's scores
    attention_grad(q, k, v[, mask], lse, d, g; scale, causal, wrt) -> the gradient for q, k, v or the mask

q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev); batch dimensions broadcast. `mask` is additive (a float tensor
broadcastable to (..., Lq, Lk); -inf removes a key); `causal` removes key j from query i when j > i (upper-left
aligned, as PyTorch's is_causal). A query row with every key removed gives zeros (as PyTorch). The gradient
recomputes the probabilities per row from the saved log-sum-exp (d = rowsum(g * out)), as flash attention does.
"""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ..roundoff import steps, unit_roundoff
from ..types import TensorType, broadcast_shapes


def _parts(types_or_values, attrs, has_v: bool = True) -> tuple:
    """(q, k, v or None, mask or None, rest) of an attention op's inputs (v absent for attention_lse)."""
    n = 3 if has_v else 2
    xs = list(types_or_values)
    q, k = xs[0], xs[1]
    v = xs[2] if has_v else None
    mask = xs[n] if attrs.get("masked") else None
    rest = xs[n + (1 if attrs.get("masked") else 0) :]
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
    """scale * q @ k^T + mask, with causal positions at -inf (float64 for the reference)."""
    s = np.matmul(q.astype(np.float64), np.swapaxes(k, -1, -2).astype(np.float64)) * attrs["scale"]
    if mask is not None:
        s = s + mask
    if attrs.get("causal"):
        lq, lk = s.shape[-2:]
        s = np.where(np.tril(np.ones((lq, lk), bool)), s, -np.inf)
    return s


def _keep(attrs, lq: int, lk: int):
    """Which (query, key) pairs are read at all: with causal, key j only for queries i >= j (the kernels never load
    the others, so an Inf or NaN in a value row a query cannot see does not reach it); None: all."""
    return np.tril(np.ones((lq, lk), bool)) if attrs.get("causal") else None


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


def _roundoff(node, ins, errs, out):
    """Rounding-error bound of the attention ops. A score's error: its dot product's rounding plus the errors q and k
    carry, plus the mask's. Softmax turns an error of at most es in a row's scores into relative errors of at most
    2 es in its probabilities; the op's own rounding is a few steps per exp and a sum over the keys. The gradients
    are sums of products of a few such factors: their relative errors add up."""
    has_v = node.op != "attention_lse"
    q, k, v, mask, rest = _parts(ins, node.attrs, has_v)
    eq, ek, ev, em, erest = _parts(errs, node.attrs, has_v)
    u, scale = unit_roundoff(out.dtype), node.attrs["scale"]
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
    soft = 2 * es_row + u * (steps(lk) + 8)  # relative error of each probability
    if node.op == "attention_lse":
        return es_row + u * (steps(lk) + 8) * np.maximum(1.0, np.abs(np.asarray(out, np.float64)))
    p, _ = _probs(s)
    av = np.abs(v.astype(np.float64))
    if node.op == "attention":
        vmax = np.max(av, axis=-2, keepdims=True)
        return soft[..., None] * vmax + np.matmul(p, np.asarray(ev, np.float64)) + u * steps(lk) * np.matmul(p, av)
    lse, d, g = rest
    ag = np.abs(g.astype(np.float64))
    rel = (
        2 * soft.max(initial=0.0)
        + u * (steps(lk) + steps(v.shape[-1]) + steps(q.shape[-1]))
        + sum(_rel(x, e) for x, e in zip((q, k, v, g, d), (eq, ek, ev, erest[2], erest[1])))
    )
    dp = np.matmul(ag, np.swapaxes(av, -1, -2)) + np.abs(d.astype(np.float64))[..., None]
    wrt = node.attrs["wrt"]
    if wrt == "v":
        mag = np.matmul(np.swapaxes(p, -1, -2), ag)
    elif wrt == "mask":
        mag = p * dp
    elif wrt == "q":
        mag = scale * np.matmul(p * dp, ak)
    else:
        mag = scale * np.matmul(np.swapaxes(p * dp, -1, -2), aq)
    return rel * mag


def _attention_infer(types, attrs):
    q, k, v, mask, rest = _parts(types, attrs)
    if rest:
        raise ValueError(f"attention takes q, k, v and {'a mask' if attrs.get('masked') else 'no mask'}")
    batch = _check(q, k, v, mask)
    return TensorType(batch + (q.shape[-2], v.shape[-1]), q.dtype)


def _attention_ref(arrays, attrs):
    q, k, v, mask, _ = _parts(arrays, attrs)
    p, _ = _probs(_scores(q, k, mask, attrs))
    return _contract(p, v, _keep(attrs, q.shape[-2], k.shape[-2])).astype(q.dtype)


def _grad_inputs(node) -> tuple:
    q, k, v, mask, _ = _parts(node.inputs, node.attrs)
    return q, k, v, mask


def _attention_grad(b, node, cts):
    q, k, v, mask = _grad_inputs(node)
    at = {"scale": node.attrs["scale"], "causal": node.attrs.get("causal", False), "masked": mask is not None}
    qk = [q, k] + ([mask] if mask is not None else [])
    lse = b.attention_lse(*qk, **at)
    g, out = cts[0], node.outputs[0]
    d = b.sum(b.mul(g, out), axes=(-1,), keepdims=False)
    ins = [q, k, v] + ([mask] if mask is not None else []) + [lse, d, g]
    grads = [_unbroadcast_to(b, b.attention_grad(*ins, **at, wrt=w), t.shape) for w, t in zip("qkv", (q, k, v))]
    if mask is not None:
        grads.append(_unbroadcast_to(b, b.attention_grad(*ins, **at, wrt="mask"), mask.shape))
    return grads


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
    roundoff=_roundoff,
    fuzz=Fuzz(generator="attention", smooth=True, heavy=True),
    doc="softmax(scale * q @ k^T + mask) @ v, row by row (the score matrix is never materialized)",
)


def _lse_infer(types, attrs):
    q, k, _, mask, rest = _parts(types, attrs, False)
    if rest:
        raise ValueError("attention_lse takes q, k and an optional mask")
    batch = _check(q, k, None, mask)
    return TensorType(batch + (q.shape[-2],), q.dtype)


def _lse_ref(arrays, attrs):
    q, k, _, mask, _ = _parts(arrays, attrs, False)
    return _probs(_scores(q, k, mask, attrs))[1].astype(q.dtype)


register(
    "attention_lse",
    infer=_lse_infer,
    ref=_lse_ref,
    grad=None,
    pattern="opaque",
    schedule="attention_lse",
    flops=lambda n: 2 * n.outputs[0].type.size * n.inputs[1].shape[-2] * n.inputs[0].shape[-1],
    roundoff=_roundoff,
    fuzz=Fuzz(generator="attention", heavy=True),
    doc="log-sum-exp of each row of scale * q @ k^T + mask (what attention's gradient recomputes from)",
)

_WRT = ("q", "k", "v", "mask")


def _grad_infer(types, attrs):
    q, k, v, mask, rest = _parts(types, attrs)
    batch = _check(q, k, v, mask)
    if len(rest) != 3:
        raise ValueError("attention_grad takes q, k, v, [mask,] lse, d and the output gradient")
    lse, d, g = rest
    rows, out = batch + (q.shape[-2],), batch + (q.shape[-2], v.shape[-1])
    if lse.shape != rows or d.shape != rows or g.shape != out:
        raise ValueError(f"lse {lse.shape}, d {d.shape} and gradient {g.shape} must be {rows}, {rows} and {out}")
    wrt = attrs["wrt"]
    if wrt not in _WRT or (wrt == "mask" and mask is None):
        raise ValueError(f"wrt must be one of {_WRT[:3] if mask is None else _WRT}, got {wrt!r}")
    lq, lk = q.shape[-2], k.shape[-2]
    shapes = {
        "q": rows + (q.shape[-1],),
        "k": batch + (lk, k.shape[-1]),
        "v": batch + (lk, v.shape[-1]),
        "mask": batch + (lq, lk),
    }
    return TensorType(shapes[wrt], q.dtype)


def _grad_ref(arrays, attrs):
    q, k, v, mask, (lse, d, g) = _parts(arrays, attrs)
    s = _scores(q, k, mask, attrs)
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.where(np.isneginf(lse)[..., None], 0.0, np.exp(s - lse[..., None]))  # (NaN propagates)
    g64 = g.astype(np.float64)
    wrt, dt = attrs["wrt"], q.dtype
    keep = _keep(attrs, q.shape[-2], k.shape[-2])
    keep_t = None if keep is None else keep.T
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


register(
    "attention_grad",
    infer=_grad_infer,
    ref=_grad_ref,
    grad=None,
    pattern="opaque",
    schedule="attention_grad",
    flops=lambda n: 4 * n.outputs[0].type.size * n.inputs[1].shape[-2] * n.inputs[0].shape[-1],
    roundoff=_roundoff,
    fuzz=Fuzz(generator="attention", heavy=True),
    doc="attention's gradient for q, k, v or the mask (wrt), recomputing the probabilities from lse",
)
