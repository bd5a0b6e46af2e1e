"""ctc_loss: the connectionist temporal classification loss, the log-space forward (alpha) recursion written with
graphnn ops, so its gradient comes from graphnn's autodiff.

Each target is extended with blanks (blank, l1, blank, l2, ..., blank: 2 S + 1 states); alpha_t(s) =
logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2) where l'_s is not blank and differs from l'_{s-2})
+ log_probs[t, l'_s], frozen once t reaches the sample's input length (one graphnn.scan loop over time, not
unrolled); the loss is -logsumexp of the last two
states. "Impossible" states hold a large finite negative number instead of -inf, which keeps every gradient finite;
a loss that stays there (no alignment: the target is too long for the input) is inf, or 0 with zero_infinity.

PyTorch's ctc_loss returns, as the gradient for log_probs, the true gradient plus exp(log_probs), which cancels in
a log_softmax's backward; graphnn returns the true gradient, so both agree on the gradient of the logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.compiler.scan import scan
from graphnn.compiler.tracer import check_values
from graphnn.core.dispatch import apply, op_error, relabel
from graphnn.core.tensor import Tensor, arange, as_tensor, cat, full, stack
from graphnn.ir.registry import IRError

_NEG = -1e30  # "log 0": exp(_NEG - m) is exactly 0 for every finite m that matters, and its gradients are finite


def _error(msg: str) -> Exception:
    return op_error(IRError(f"ctc_loss: {msg}"))


def _lengths(x, n: int, what: str, limit: int, limit_what: str) -> Tensor:
    """input_lengths / target_lengths as an (n,) int64 tensor, each checked to lie in [0, limit]."""
    if isinstance(x, Tensor):
        t = x.reshape(-1) if x.ndim == 0 else x
        if t.dtype_name != "int64":
            t = t.long()
    elif isinstance(x, Sequence) or isinstance(x, (int, np.integer)):
        t = as_tensor(np.asarray(x, dtype=np.int64).reshape(-1))
    else:
        raise _error(f"{what} must be a tensor or a tuple of ints, got {type(x).__name__}")
    if tuple(t.shape) != (n,):
        raise _error(f"{what} must have one entry per batch element ({n}), got shape {tuple(t.shape)}")

    def check(a: np.ndarray) -> None:
        if (a < 0).any() or (a > limit).any():
            bad = int(a[(a < 0) | (a > limit)][0])
            raise _error(f"Expected {what} to have value at most {limit} ({limit_what}) and at least 0, but got {bad}")

    check_values(t, check)
    return t


def _known(t: Tensor):
    """t's values when it has them outside a trace, else None."""
    return t._data if t._data is not None and _tracer.current() is None else None


def _padded_targets(targets: Tensor, target_lengths: Tensor, n: int) -> Tensor:
    """(n, S) targets: the padded form as is, or the concatenated 1-D form cut into rows by target_lengths."""
    if targets.ndim == 2:
        return targets
    total = targets.shape[0]
    known = _known(target_lengths)
    if known is not None:
        if int(known.sum()) > total:
            raise _error(f"the target lengths sum to {int(known.sum())} but targets has {total} elements")
        s = int(known.max(initial=0))
    else:
        s = total  # (traced lengths: every row can hold all the targets)
    if s == 0 or total == 0:
        return full((n, 0), 0, dtype="int64")
    starts = target_lengths.cumsum(0) - target_lengths
    pos = (starts.reshape(n, 1) + arange(s).reshape(1, s)).clamp(max=total - 1)
    return apply("take", [targets, pos], {"axis": 0})


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths,
    target_lengths,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """The CTC loss of (T, N, C) (or unbatched (T, C)) log-probabilities against padded (N, S) or concatenated
    targets, as PyTorch's (reduction 'mean' divides each loss by its target length, then averages)."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    log_probs, targets = as_tensor(log_probs), as_tensor(targets)
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        if targets.ndim == 1:
            targets = targets.unsqueeze(0)
    if log_probs.ndim != 3:
        raise _error(f"log_probs must be (T, N, C) or (T, C), got shape {tuple(log_probs.shape)}")
    if log_probs.dtype_name not in ("float32", "float64"):
        raise _error(f"log_probs must be floating point, got {log_probs.dtype_name}")
    t_len, n, c = log_probs.shape
    if not 0 <= blank < c:
        raise _error(f"blank must be in label range [0, {c}), got {blank}")
    if targets.dtype_name != "int64":
        targets = targets.long()
    if targets.ndim == 2 and targets.shape[0] != n:
        raise _error(f"padded targets must have {n} rows (the batch size), got shape {tuple(targets.shape)}")
    if targets.ndim not in (1, 2):
        raise _error(f"targets must be (N, S) or 1-D concatenated, got shape {tuple(targets.shape)}")
    in_len = _lengths(input_lengths, n, "input_lengths", t_len, "the input's length")
    max_target = targets.shape[1] if targets.ndim == 2 else targets.shape[0]
    tg_len = _lengths(target_lengths, n, "target_lengths", max_target, "the targets' size")
    padded = _padded_targets(targets, tg_len, n)
    loss = _nll(log_probs, padded, in_len, tg_len, blank)
    impossible = loss > -_NEG / 2
    if zero_infinity:
        loss = apply("select", [impossible, 0.0, loss])
    else:  # inf, and (as PyTorch's) a gradient that is not finite: the large stand-in times inf
        loss = loss * apply("select", [impossible, math.inf, 1.0]).type_as_dtype(loss.dtype_name)
    if unbatched:
        loss = loss.reshape(())
    if reduction == "mean":
        loss = (loss / tg_len.clamp(min=1).type_as_dtype(loss.dtype_name)).mean()
    elif reduction == "sum":
        loss = loss.sum()
    return relabel(loss, "CtcLossBackward0", [log_probs])


def _nll(log_probs: Tensor, padded: Tensor, in_len: Tensor, tg_len: Tensor, blank: int) -> Tensor:
    """-log p(target | input) per sample, (N,), by the alpha recursion (_NEG-ish where no alignment exists)."""
    t_len, n, c = log_probs.shape
    s = padded.shape[1]
    length = 2 * s + 1
    if s:
        padded = apply("select", [arange(s).reshape(1, s) < tg_len.reshape(n, 1), padded, blank])
        known = _known(padded)  # (compiled code: the gather below reports a label out of range)
        if known is not None and ((known < 0) | (known >= c)).any():
            bad = int(known[(known < 0) | (known >= c)][0])
            raise _error(f"target label {bad} is out of range for {c} classes")
        blanks = full((n, s), blank, dtype="int64")
        ext = cat([stack([blanks, padded], 2).reshape(n, 2 * s), full((n, 1), blank, dtype="int64")], 1)
        before = cat([full((n, 2), -1, dtype="int64"), ext[:, :-2]], 1)
        skip = (ext != blank) & (ext != before)  # (n, L): state s may be entered from s - 2
    else:
        ext = full((n, 1), blank, dtype="int64")
        skip = None
    lp = log_probs.gather(2, ext.reshape(1, n, length).expand(t_len, n, length))  # (T, n, L)
    states = arange(length).reshape(1, length)
    alpha = apply("select", [states < 2, lp[0], _NEG])
    if s:  # the first label is a start only when the target is not empty
        alpha = apply("select", [(states == 1) & (tg_len.reshape(n, 1) == 0), _NEG, alpha])
    neg1 = full((n, 1), _NEG, dtype=log_probs.dtype_name)
    neg2 = full((n, 2), _NEG, dtype=log_probs.dtype_name)

    def step(alpha: Tensor, x: tuple) -> tuple:
        lp_t, active = x
        terms = [alpha, cat([neg1, alpha[:, :-1]], 1)]
        if skip is not None and length > 2:
            terms.append(apply("select", [skip, cat([neg2, alpha[:, :-2]], 1), _NEG]))
        top = apply("stop_gradient", [_maximum(terms)])
        summed = (terms[0] - top).exp()
        for term in terms[1:]:
            summed = summed + (term - top).exp()
        new = apply("select", [active, top + summed.log() + lp_t, alpha])
        return new, new[:, :1]

    if t_len > 1:  # one IR loop over time (not unrolled): a small graph for any input length
        active = arange(1, t_len).reshape(t_len - 1, 1, 1) < in_len.reshape(1, n, 1)
        alpha, _ = scan(step, alpha, (lp[1:], active))
    last = (2 * tg_len).reshape(n, 1)
    end1 = alpha.gather(1, last).reshape(n)
    end2 = alpha.gather(1, (last - 1).clamp(min=0)).reshape(n)
    end2 = apply("select", [tg_len > 0, end2, _NEG])
    top = apply("stop_gradient", [apply("maximum", [end1, end2])])
    ll = top + ((end1 - top).exp() + (end2 - top).exp()).log()
    empty = apply("select", [tg_len == 0, 0.0, -_NEG])  # no input: only the empty target is possible
    return apply("select", [in_len > 0, -ll, empty.type_as_dtype(ll.dtype_name)])


def _maximum(terms: list) -> Tensor:
    out = terms[0]
    for t in terms[1:]:
        out = apply("maximum", [out, t])
    return out
