"""graphnn.testing.assert_close / assert_allclose: PyTorch's comparison of tensors (and numbers, sequences, dicts)."""

from __future__ import annotations

import numpy as np

_DEFAULT_TOL = {"float32": (1.3e-6, 1e-5), "float64": (1e-7, 1e-7)}  # (rtol, atol), PyTorch's defaults


def _array(x) -> np.ndarray:
    from graphnn.core.tensor import Tensor

    if isinstance(x, Tensor):
        return np.asarray(x.detach().numpy())
    return np.asarray(x)


def assert_close(
    actual,
    expected,
    *,
    allow_subclasses: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_device: bool = True,
    check_dtype: bool = True,
    check_layout: bool = True,
    check_stride: bool = False,
    msg=None,
) -> None:
    """Raise AssertionError unless |actual - expected| <= atol + rtol * |expected| elementwise (shapes and, with
    check_dtype, dtypes equal); sequences and mappings are compared item by item."""
    if (rtol is None) != (atol is None):
        raise ValueError("Both 'rtol' and 'atol' must be either specified or omitted")
    if isinstance(actual, dict) and isinstance(expected, dict):
        if actual.keys() != expected.keys():
            raise AssertionError(msg or f"The keys of the mappings do not match: {set(actual)} != {set(expected)}")
        for k in actual:
            assert_close(
                actual[k], expected[k], rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype, msg=msg
            )
        return
    if isinstance(actual, (list, tuple)) and isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            raise AssertionError(msg or f"The length of the sequences mismatch: {len(actual)} != {len(expected)}")
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype, msg=msg)
        return
    a, e = _array(actual), _array(expected)
    if a.shape != e.shape:
        raise AssertionError(msg or f"The values for attribute 'shape' do not match: {a.shape} != {e.shape}.")
    if check_dtype and a.dtype != e.dtype:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match: {a.dtype} != {e.dtype}.")
    if rtol is None:
        rtol, atol = _DEFAULT_TOL.get(np.result_type(a, e).name, (0.0, 0.0))
    if a.dtype.kind in "biu" and e.dtype.kind in "biu":
        bad = a != e
    else:
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        ok = np.abs(a64 - e64) <= atol + rtol * np.abs(e64)
        ok |= a64 == e64  # equal infinities
        if equal_nan:
            ok |= np.isnan(a64) & np.isnan(e64)
        bad = ~ok
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise AssertionError(
            msg
            or (
                f"Tensor-likes are not close!\n\nMismatched elements: {int(bad.sum())} / {bad.size}\n"
                f"Greatest mismatch at index {i}: {a[i]!r} vs {e[i]!r} (rtol={rtol}, atol={atol})"
            )
        )


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan: bool = True, msg: str = "") -> None:
    """The older spelling: compares values, not dtypes."""
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=False, msg=msg or None)


def make_tensor(
    *shape,
    dtype,
    device=None,
    low=None,
    high=None,
    requires_grad: bool = False,
    noncontiguous: bool = False,
    exclude_zero: bool = False,
    memory_format=None,
):
    """A tensor of `shape` and `dtype` with values drawn uniformly from [low, high) (default [-9, 9) for floats,
    [-9, 10) for integers, {False, True} for bool) from graphnn's random generator; exclude_zero replaces zeros."""
    import graphnn

    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    name = str(dtype).rsplit(".", 1)[-1]
    if name == "bool":
        out = graphnn.randint(0, 2, shape).bool()
    elif getattr(dtype, "is_floating_point", False):
        lo, hi = (-9.0 if low is None else low), (9.0 if high is None else high)
        out = graphnn.rand(shape, dtype=dtype) * (hi - lo) + lo
        if exclude_zero:
            out = graphnn.where(out == 0, graphnn.full_like(out, graphnn.finfo(dtype).tiny), out)
    else:
        lo, hi = (-9 if low is None else int(low)), (10 if high is None else int(high))
        out = graphnn.randint(lo, hi, shape, dtype=dtype)
        if exclude_zero:
            out = graphnn.where(out == 0, graphnn.ones_like(out), out)
    return out.requires_grad_(requires_grad) if requires_grad else out
