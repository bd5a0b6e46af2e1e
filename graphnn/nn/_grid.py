"""Spatial transformers: affine_grid and grid_sample (2-D and 3-D), composed of graphnn ops.

grid_sample reads input pixels at the grid's real-valued positions: the four neighbours of each position are
gathered (an index gather, whose gradient adds back into the input) and blended with bilinear weights, which
are differentiable functions of the grid, so the gradients with respect to input and grid come from graphnn's
autodiff, eagerly and compiled.
"""

from __future__ import annotations

import itertools

import numpy as np

from graphnn.core.dispatch import apply, op_error, relabel
from graphnn.core.tensor import Tensor, linspace_values, tensor
from graphnn.ir.registry import IRError


def _base_coords(n: int, align_corners: bool, dtype: str) -> np.ndarray:
    """Normalized [-1, 1] coordinates of n pixel centres (align_corners: of the corner pixels' centres), rounded as
    PyTorch's (its linspace in the dtype, scaled by (n - 1) / n without align_corners): grid points that land on
    pixel centres then sit on the same side of them, where the sampling's gradient jumps."""
    if n <= 1:  # (PyTorch's base grid: a single pixel's centre at 0, with or without align_corners)
        return np.zeros(n, dtype)
    r = linspace_values(-1.0, 1.0, n, dtype)
    return r if align_corners else r * np.asarray(n - 1, dtype) / np.asarray(n, dtype)


def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    """Sampling grid (N, H, W, 2) of the affine maps theta (N, 2, 3) for an output of size (N, C, H, W), or
    (N, D, H, W, 3) of theta (N, 3, 4) for (N, C, D, H, W)."""
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise NotImplementedError(
            f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, respectively. Got size {size}"
        )
    d = len(size) - 2
    n, spatial = size[0], size[2:]
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (d, d + 1) or theta.shape[0] != n:
        raise op_error(
            IRError(
                f"affine_grid: expected a batch of {d}D affine matrices of shape Nx{d}x{d + 1} for size "
                f"{list(size)}, got theta of shape {tuple(theta.shape)}"
            )
        )
    if not theta.dtype_name.startswith("float"):
        raise op_error(IRError(f"affine_grid: theta must be a float tensor, got {theta.dtype_name}"))
    ac = bool(align_corners)
    dt = theta.dtype_name
    axes = np.meshgrid(*[_base_coords(k, ac, dt) for k in spatial], indexing="ij")  # (D,) H, W: x varies fastest
    count = int(np.prod(spatial))
    base = np.stack([a.ravel() for a in reversed(axes)] + [np.ones(count, dt)], axis=1)  # (count, d + 1): x, y, (z,) 1
    grid = tensor(base, dtype=dt).matmul(theta.transpose(1, 2))  # (N, count, d)
    return relabel(grid.reshape(n, *spatial, d), "AffineGridGeneratorBackward0", [theta])


def _unnormalize(coord: Tensor, n: int, align_corners: bool) -> Tensor:
    if align_corners:
        return (coord + 1) / 2 * (n - 1)  # (PyTorch's order of operations, so its roundings)
    return ((coord + 1) * n - 1) / 2


def _reflect(x: Tensor, lo: float, hi: float) -> Tensor:
    """x folded back into [lo, hi] by reflections at both ends (PyTorch's reflection padding of coordinates)."""
    if hi <= lo:
        return x * 0 + lo
    span = hi - lo
    d = (x - lo).abs()
    flips = (d / span).floor()
    extra = d - flips * span
    return apply("select", [flips.remainder(2) == 0, extra + lo, span - extra + lo])


def _clip(x: Tensor, n: int) -> Tensor:
    """x clamped to [0, n - 1], with PyTorch's gradient: 1 strictly inside, 0 at and beyond the edges (a grid
    point exactly on the border, as an identity affine grid puts them, does not move)."""
    inside = (x > 0).logical_and(x < n - 1)
    return apply("select", [inside, x, x.detach().clamp(0, n - 1)])


def _source_coord(coord: Tensor, n: int, padding_mode: str, align_corners: bool) -> Tensor:
    return _padded(_unnormalize(coord, n, align_corners), n, padding_mode, align_corners)


def _padded(x: Tensor, n: int, padding_mode: str, align_corners: bool) -> Tensor:
    """Pixel coordinates x moved inside [0, n - 1] by the padding mode (zeros: left as they are)."""
    if padding_mode == "border":
        x = _clip(x, n)
    elif padding_mode == "reflection":
        x = _reflect(x, 0.0, n - 1.0) if align_corners else _reflect(x, -0.5, n - 0.5)
        x = _clip(x, n)
    return x


def grid_sample(
    input: Tensor,
    grid: Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Tensor:
    """input (N, C, H, W) sampled at grid (N, Ho, Wo, 2) of normalized (x, y) positions -> (N, C, Ho, Wo); or
    input (N, C, D, H, W) at grid (N, Do, Ho, Wo, 3) of (x, y, z) positions -> (N, C, Do, Ho, Wo) (trilinear for
    mode="bilinear", as PyTorch)."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(
            f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', but got: '{mode}'"
        )
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(
            f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or 'reflection', "
            f"but got: '{padding_mode}'"
        )
    if input.ndim not in (4, 5):
        raise op_error(IRError(f"grid_sample: expected a 4-D or 5-D input, got {input.ndim}-D {tuple(input.shape)}"))
    d = input.ndim - 2
    n, c = input.shape[:2]
    if grid.ndim != input.ndim or grid.shape[0] != n or grid.shape[-1] != d:
        want = "(N={}, H_out, W_out, 2)".format(n) if d == 2 else "(N={}, D_out, H_out, W_out, 3)".format(n)
        raise op_error(
            IRError(
                f"grid_sample: grid of shape {tuple(grid.shape)} does not fit input of shape "
                f"{tuple(input.shape)} (expected {want})"
            )
        )
    if mode == "bicubic" and d != 2:
        raise op_error(IRError(f"grid_sample: bicubic interpolation only supports 4D input, got {tuple(input.shape)}"))
    ac = bool(align_corners)
    sizes = [input.shape[-1 - i] for i in range(d)]  # of the grid's components x, y (, z): W, H (, D)
    out_shape = tuple(grid.shape[1:-1])
    points = int(np.prod(out_shape))
    flat = input.reshape(n, c, -1)

    def corner(*ixs: Tensor) -> tuple:
        """Pixels at integer positions ixs (x, y (, z): float tensors) and whether each lies inside the input."""
        inside, index = None, None
        for i in reversed(range(d)):  # (z,) y, x: row-major flat index
            ok = (ixs[i] >= 0) & (ixs[i] <= sizes[i] - 1)
            inside = ok if inside is None else inside & ok
            at = ixs[i].clamp(0, sizes[i] - 1)
            index = at if index is None else index * sizes[i] + at
        index = index.long().reshape(n, 1, points).expand(n, c, points)
        return flat.gather(2, index).reshape(n, c, *out_shape), inside.unsqueeze(1)

    if mode == "bicubic":
        return relabel(_bicubic(grid, sizes[1], sizes[0], padding_mode, ac, corner), _GRAD_NAME[d], [input, grid])
    g = [_source_coord(grid[..., i], sizes[i], padding_mode, ac) for i in range(d)]  # (N, *out), in pixels

    if mode == "nearest":
        r = [x.round() for x in g]  # halves to even, as PyTorch's nearbyint
        v, inside = corner(*[x.detach() for x in r])
        # (+ 0 * the rounded positions, whose gradient is 0: the result depends on the grid, as PyTorch's, whose
        # gradient with respect to the grid is zeros, not missing)
        zero = sum((x * 0 for x in r[1:]), r[0] * 0)
        return relabel(apply("select", [inside, v + zero.unsqueeze(1), 0.0]), _GRAD_NAME[d], [input, grid])
    lo = [x.floor().detach() for x in g]
    w1 = [x - x0 for x, x0 in zip(g, lo)]
    w0 = [1 - w for w in w1]
    out = None
    for bits in itertools.product((0, 1), repeat=d):  # x fastest, as PyTorch's corner order
        step = bits[::-1]  # (of x, y (, z))
        wgt = None
        for i in range(d):
            f = w1[i] if step[i] else w0[i]
            wgt = f if wgt is None else wgt * f
        v, inside = corner(*[x0 + 1 if s else x0 for x0, s in zip(lo, step)])
        term = apply("select", [inside, v * wgt.unsqueeze(1), 0.0])
        out = term if out is None else out + term
    return relabel(out, _GRAD_NAME[d], [input, grid])


_GRAD_NAME = {2: "GridSampler2DBackward0", 3: "GridSampler3DBackward0"}
CUBIC_A = -0.75  # the cubic convolution kernel's parameter (PyTorch's bicubic sampling and interpolation)


def _cubic_weights(t: Tensor) -> list:
    """Weights of the taps at -1, 0, 1, 2 for a fractional offset t in [0, 1) (Keys' cubic convolution)."""
    a = CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _bicubic(grid: Tensor, h: int, w: int, padding_mode: str, ac: bool, corner) -> Tensor:
    """Bicubic sampling: the 4 x 4 pixels around each position, each tap moved by the padding mode (zeros outside),
    blended by cubic weights of the fractional offsets (differentiable in the grid); rows first, as PyTorch."""
    gx, gy = _unnormalize(grid[..., 0], w, ac), _unnormalize(grid[..., 1], h, ac)
    x0, y0 = gx.floor().detach(), gy.floor().detach()
    wx, wy = _cubic_weights(gx - x0), _cubic_weights(gy - y0)
    out = None
    for j in range(4):
        py = _padded(y0 + (j - 1), h, padding_mode, ac).detach()
        row = None
        for i in range(4):
            v, inside = corner(_padded(x0 + (i - 1), w, padding_mode, ac).detach(), py)
            term = apply("select", [inside, v, 0.0]) * wx[i].unsqueeze(1)
            row = term if row is None else row + term
        term = row * wy[j].unsqueeze(1)
        out = term if out is None else out + term
    return out
