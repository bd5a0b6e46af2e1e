"""Tensor repr with PyTorch's formatting rules (torch/_tensor_str.py's defaults): 4 digits after the point, or
scientific notation when the nonzero finite magnitudes span more than 1e3 or leave [1e-4, 1e8]; floats that are all
integers print as `1.`; columns share one width; lines wrap at 80 characters; above 1000 elements only the first
and last 3 entries of each dimension are shown, with `...`. set_printoptions changes these as PyTorch's does."""

from __future__ import annotations

import math

import numpy as np

PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}
OPTS: dict = {**PROFILES["default"], "sci_mode": None}  # sci_mode None: chosen from the values


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """torch.set_printoptions: a profile ('default', 'short', 'full') first, then the options given; sci_mode
    True/False forces or forbids scientific notation, None (always set) leaves it to the values."""
    if profile is not None:
        if profile not in PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(PROFILES)}, got {profile!r}")
        OPTS.update(PROFILES[profile])
    for name, v in (
        ("precision", precision),
        ("threshold", threshold),
        ("edgeitems", edgeitems),
        ("linewidth", linewidth),
    ):
        if v is not None:
            OPTS[name] = v
    OPTS["sci_mode"] = sci_mode


def get_printoptions() -> dict:
    return dict(OPTS)


DEFAULT_DTYPES = ("float32", "int64", "bool")  # printed without a dtype= suffix (empty tensors: float32 only)


class _Formatter:
    """One width and notation for every element of a tensor (from its summarized values)."""

    def __init__(self, values: np.ndarray):
        self.floating = values.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.width = True, False, 1
        flat = values.reshape(-1)
        if not self.floating:
            self.width = max((len(str(v)) for v in flat.tolist()), default=1)
            return
        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            return
        mags = np.abs(finite)
        lo, hi = mags.min(), mags.max()
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        forced = OPTS["sci_mode"]
        if forced is not None:
            self.sci_mode = bool(forced)
        else:
            self.sci_mode = bool(hi / lo > 1000.0 or hi > 1e8 or lo < 1e-4)
        vals, p = finite.tolist(), OPTS["precision"]
        if self.sci_mode:
            self.width = max(len(f"{v:.{p}e}") for v in vals)
        elif self.int_mode:
            self.width = max(len(f"{v:.0f}") + 1 for v in vals)
        else:
            self.width = max(len(f"{v:.{p}f}") for v in vals)

    def format(self, value) -> str:
        if not self.floating:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:{self.width}.{OPTS['precision']}e}"
        elif self.int_mode:
            text = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        else:
            text = f"{value:.{OPTS['precision']}f}"
        return " " * (self.width - len(text)) + text


def _summarized(a: np.ndarray) -> np.ndarray:
    """The entries that are printed (the first and last edgeitems along each long dimension)."""
    e = OPTS["edgeitems"]
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return np.concatenate([a[:e], a[a.shape[0] - e :]]) if a.shape[0] > 2 * e else a
    rows = list(range(e)) + list(range(a.shape[0] - e, a.shape[0])) if a.shape[0] > 2 * e else None
    subs = [a[i] for i in (rows if rows is not None else range(a.shape[0]))]
    return np.stack([_summarized(s) for s in subs])


def _vector(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    e = OPTS["edgeitems"]
    per_line = max(1, math.floor((OPTS["linewidth"] - indent) / (fmt.width + 2)))
    if summarize and a.shape[0] > 2 * e:
        items = [fmt.format(v) for v in a[:e].tolist()] + [" ..."]
        items += [fmt.format(v) for v in a[a.shape[0] - e :].tolist()]
    else:
        items = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector(a, indent, summarize, fmt)
    n, e = a.shape[0], OPTS["edgeitems"]
    if summarize and n > 2 * e:
        parts = [_nested(a[i], indent + 1, summarize, fmt) for i in range(e)] + ["..."]
        parts += [_nested(a[i], indent + 1, summarize, fmt) for i in range(n - e, n)]
    else:
        parts = [_nested(a[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def _body(a: np.ndarray, indent: int) -> str:
    summarize = a.size > OPTS["threshold"]
    return _nested(a, indent, summarize, _Formatter(_summarized(a) if summarize else a))


def _with_suffixes(text: str, suffixes: list, indent: int) -> str:
    out = [text]
    last = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > OPTS["linewidth"]:
            out.append(",\n" + " " * indent + s)
            last = indent + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    return "".join(out) + ")"


def tensor_repr(data: np.ndarray, dtype_name: str, extra: list) -> str:
    """`tensor(...)` for the values `data` of a tensor of dtype `dtype_name`; extra: trailing suffixes such as
    `grad_fn=<AddBackward0>` or `requires_grad=True`."""
    prefix = "tensor("
    suffixes = []
    if data.size == 0:
        if data.ndim != 1:
            suffixes.append(f"size={tuple(data.shape)}")
        body = "[]"
        if dtype_name != "float32":
            suffixes.append(f"dtype=graphnn.{dtype_name}")
    else:
        body = _body(data, len(prefix))
        if dtype_name not in DEFAULT_DTYPES:
            suffixes.append(f"dtype=graphnn.{dtype_name}")
    return _with_suffixes(prefix + body, suffixes + list(extra), len(prefix))
