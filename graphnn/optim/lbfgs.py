"""L-BFGS with PyTorch's algorithm: two-loop recursion over a bounded history, a fixed step or a strong Wolfe line
search, and its stopping rules. The step runs eagerly (its line search and stopping tests branch on values); the
closure it calls may be compiled with graphnn.compile."""

from __future__ import annotations

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.core.grad_mode import enable_grad, no_grad
from graphnn.core.tensor import Tensor
from ._state import check
from .optimizer import Optimizer


class LBFGS(Optimizer):
    def __init__(
        self,
        params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ):
        check(lr, "learning rate")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad)
        defaults.update(tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    # -- the parameters as one flat vector ----------------------------------------------------------------------
    def _flat_grad(self) -> np.ndarray:
        parts = [
            np.zeros(p.numel(), p.dtype_name) if p.grad is None else np.ravel(p.grad._concrete("LBFGS"))
            for p in self._params
        ]
        return np.concatenate(parts)

    def _add_to_params(self, step, update: np.ndarray) -> None:
        """p += step * update (the slice of the flat vector for p)."""
        offset = 0
        for p in self._params:
            n = p.numel()
            p._assign(p._data + step * update[offset : offset + n].reshape(p._data.shape))
            offset += n

    def _set_params(self, arrays: list) -> None:
        for p, a in zip(self._params, arrays):
            p._assign(a)

    def _evaluate(self, closure, x: list, t, d: np.ndarray) -> tuple:
        """(loss, flat gradient) at x + t d; the parameters are set back to x."""
        self._add_to_params(t, d)
        loss = float(closure())
        flat_grad = self._flat_grad()
        self._set_params(x)
        return loss, flat_grad

    # -- the step -----------------------------------------------------------------------------------------------
    def step(self, closure):
        """One L-BFGS step: up to max_iter iterations, each calling closure() (which must compute the loss, run
        backward and return the loss) once, or several times with the line search. Returns the first loss."""
        if closure is None:
            raise RuntimeError("LBFGS.step needs a closure that computes the loss and its gradients")
        if _tracer.current() is not None:  # (a graph break: the call runs eagerly, as torch.compile's does)
            from graphnn.core.dispatch import located
            from graphnn.core.tensor import TraceError

            raise TraceError(
                located(
                    "LBFGS.step cannot run inside graphnn.compile: its line search and stopping tests depend on "
                    "values; call it eagerly (the closure it calls may be compiled)"
                )
            )
        group = self.param_groups[0]
        with no_grad():
            return self._step(_with_grad(closure), group, self.state.setdefault(self._params[0], {}))

    def _step(self, closure, group: dict, state: dict):
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss = closure()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if np.abs(flat_grad).max() <= tol_grad:
            return orig_loss
        h = _History.load(state, group["history_size"])
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                h.start(flat_grad)
            else:
                h.update(flat_grad)
            h.prev_flat_grad = flat_grad.copy()
            h.prev_loss = loss
            h.t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr if state["n_iter"] == 1 else lr
            gtd = flat_grad.dot(h.d)
            if gtd > -tol_change:  # not a descent direction
                break
            if group["line_search_fn"] is not None:
                x0 = [np.array(p._data) for p in self._params]

                def objective(x, t, d):
                    return self._evaluate(closure, x, t, d)

                loss, flat_grad, h.t, ls_evals = strong_wolfe(
                    objective, x0, h.t, h.d, loss, flat_grad, gtd, tol_change, max_eval - evals
                )
                self._add_to_params(h.t, h.d)
                converged = np.abs(flat_grad).max() <= tol_grad
            else:
                self._add_to_params(h.t, h.d)
                ls_evals, converged = 0, False
                if n_iter != max_iter:
                    loss = float(closure())
                    flat_grad = self._flat_grad()
                    converged = np.abs(flat_grad).max() <= tol_grad
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals
            if n_iter == max_iter or evals >= max_eval or converged:
                break
            if np.abs(h.d * h.t).max() <= tol_change or abs(loss - h.prev_loss) < tol_change:
                break
        h.store(state)
        return orig_loss


def _with_grad(closure):
    def run():
        with enable_grad():
            return closure()

    return run


class _History:
    """The L-BFGS memory: direction d, step t, curvature pairs (old_dirs = y, old_stps = s, ro = 1 / y.s), the
    initial Hessian scale H_diag, the last flat gradient and loss; kept in the optimizer state as PyTorch names it."""

    def __init__(self, state: dict, size: int):
        arr = _array
        self.size = size
        self.d, self.t = arr(state.get("d")), _number(state.get("t"))
        self.old_dirs = [arr(v) for v in state.get("old_dirs") or []]
        self.old_stps = [arr(v) for v in state.get("old_stps") or []]
        self.ro = [arr(v) for v in state.get("ro") or []]
        self.H_diag = _number(state.get("H_diag"))
        self.prev_flat_grad, self.prev_loss = arr(state.get("prev_flat_grad")), state.get("prev_loss")
        self.al = [arr(v) for v in state["al"]] if state.get("al") is not None else None

    @classmethod
    def load(cls, state: dict, size: int) -> "_History":
        return cls(state, size)

    def start(self, flat_grad: np.ndarray) -> None:
        self.d = -flat_grad
        self.old_dirs, self.old_stps, self.ro, self.H_diag = [], [], [], 1

    def update(self, flat_grad: np.ndarray) -> None:
        """Add the last step's curvature pair (when y.s is positive enough) and compute the new direction."""
        y = flat_grad - self.prev_flat_grad
        s = self.d * self.t
        ys = y.dot(s)
        if ys > 1e-10:
            if len(self.old_dirs) == self.size:
                for hist in (self.old_dirs, self.old_stps, self.ro):
                    hist.pop(0)
            self.old_dirs.append(y)
            self.old_stps.append(s)
            self.ro.append(1.0 / ys)
            self.H_diag = ys / y.dot(y)
        if self.al is None:
            self.al = [None] * self.size
        q = -flat_grad
        for i in range(len(self.old_dirs) - 1, -1, -1):
            self.al[i] = self.old_stps[i].dot(q) * self.ro[i]
            q = q - self.al[i] * self.old_dirs[i]
        r = q * self.H_diag
        for i in range(len(self.old_dirs)):
            be_i = self.old_dirs[i].dot(r) * self.ro[i]
            r = r + (self.al[i] - be_i) * self.old_stps[i]
        self.d = r

    def store(self, state: dict) -> None:
        t = _tensor
        state.update(d=t(self.d), t=_scalar_state(self.t), old_dirs=[t(v) for v in self.old_dirs])
        state.update(old_stps=[t(v) for v in self.old_stps], ro=[t(v) for v in self.ro])
        state.update(H_diag=_scalar_state(self.H_diag), prev_flat_grad=t(self.prev_flat_grad))
        state["prev_loss"] = self.prev_loss
        if self.al is not None:
            state["al"] = [None if v is None else t(v) for v in self.al]


def _array(v):
    """A state entry as NumPy (0-d arrays become NumPy scalars of their dtype), or None."""
    if v is None:
        return None
    a = v._concrete("LBFGS state") if isinstance(v, Tensor) else np.asarray(v)
    return a[()] if a.ndim == 0 else np.array(a)


def _number(v):
    """t and H_diag: Python numbers or 0-d tensors in PyTorch's state; NumPy scalars here."""
    return _array(v) if isinstance(v, Tensor) else v


def _tensor(a):
    return None if a is None else Tensor._wrap(np.array(a))


def _scalar_state(v):
    return _tensor(v) if isinstance(v, np.generic) else v


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, within bounds (default: the
    interval), or the bounds' midpoint when the cubic has no minimum."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = np.sqrt(d2_square)
    if x1 <= x2:
        pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(pos, lo), hi)


def strong_wolfe(objective, x, t, d, f, g, gtd, tolerance_change=1e-9, max_ls=25, c1=1e-4, c2=0.9) -> tuple:
    """Line search along d from x for a step t meeting the strong Wolfe conditions (sufficient decrease c1,
    curvature c2): a bracketing phase, then zooming by cubic interpolation. Returns (f, g, t, evaluations)."""
    d_norm = np.abs(d).max()
    f_new, g_new = objective(x, t, d)
    evals, gtd_new = 1, g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g.copy(), gtd
    done, it = False, 0
    bracket = bracket_f = bracket_g = bracket_gtd = None
    while it < max_ls:
        if f_new > f + c1 * t * gtd or (it > 1 and f_new >= f_prev):
            bracket, bracket_f, bracket_g = [t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g, done = [t], [f_new], [g_new], True
            break
        if gtd_new >= 0:
            bracket, bracket_f, bracket_g = [t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        lo, hi = t + 0.01 * (t - t_prev), t * 10  # extrapolate
        t_prev, t = t, cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(lo, hi))
        f_prev, g_prev, gtd_prev = f_new, g_new.copy(), gtd_new
        f_new, g_new = objective(x, t, d)
        evals, gtd_new, it = evals + 1, g_new.dot(d), it + 1
    if it == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    zoom = _Zoom(bracket, bracket_f, bracket_g, bracket_gtd)
    while not done and it < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = zoom.next_trial()
        f_new, g_new = objective(x, t, d)
        evals, gtd_new, it = evals + 1, g_new.dot(d), it + 1
        done = zoom.update(t, f_new, g_new, gtd_new, f + c1 * t * gtd, -c2 * gtd)
    lo = zoom.low
    return bracket_f[lo], bracket_g[lo], bracket[lo], evals


class _Zoom:
    """The zoom phase of the strong Wolfe search: a bracket [low, high] shrunk around an acceptable step."""

    def __init__(self, bracket, f, g, gtd):
        self.b, self.f, self.g, self.gtd = bracket, f, g, gtd
        self.insufficient = False
        self._order()

    def _order(self) -> None:
        self.low, self.high = (0, 1) if self.f[0] <= self.f[-1] else (1, 0)

    def next_trial(self):
        """Cubic interpolation in the bracket, kept away from its ends when progress is insufficient."""
        b = self.b
        t = cubic_interpolate(b[0], self.f[0], self.gtd[0], b[1], self.f[1], self.gtd[1])
        top, bottom = max(b), min(b)
        eps = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < eps:
            if self.insufficient or t >= top or t <= bottom:
                t = top - eps if abs(t - top) < abs(t - bottom) else bottom + eps
                self.insufficient = False
            else:
                self.insufficient = True
        else:
            self.insufficient = False
        return t

    def update(self, t, f_new, g_new, gtd_new, armijo, curvature) -> bool:
        """Replace an end of the bracket by the trial t; True when t meets the strong Wolfe conditions."""
        lo, hi = self.low, self.high
        if f_new > armijo or f_new >= self.f[lo]:
            self._set(hi, t, f_new, g_new, gtd_new)
            self._order()
            return False
        done = abs(gtd_new) <= curvature
        if not done and gtd_new * (self.b[hi] - self.b[lo]) >= 0:
            self._set(hi, self.b[lo], self.f[lo], self.g[lo], self.gtd[lo])
        self._set(lo, t, f_new, g_new, gtd_new)
        return done

    def _set(self, i, t, f, g, gtd) -> None:
        self.b[i], self.f[i], self.g[i], self.gtd[i] = t, f, g.copy(), gtd
