"""torch.fft: discrete Fourier transforms as products with DFT matrices (cosines and sines built in float64, held in
the input's precision), so they are real graphnn ops: differentiable, and compiled like any product. Complex
results are ComplexTensors (graphnn/core/complex_tensor.py). The product costs O(n^2) per transformed line: sizes up
to MAX_SIZE points per dimension (audio frames, image planes, spectral layers), beyond it a clear error.

Functions: fft, ifft, rfft, irfft, hfft, ihfft, fft2, ifft2, rfft2, irfft2, hfft2, ihfft2, fftn, ifftn, rfftn, irfftn,
hfftn, ihfftn, fftfreq, rfftfreq, fftshift, ifftshift; `n` / `s` (trim or zero-pad), `dim`, and `norm` ('backward',
'ortho', 'forward') as PyTorch's."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from graphnn.core.complex_tensor import ComplexTensor

MAX_SIZE = 8192


def _g():
    import graphnn

    return graphnn


@functools.lru_cache(maxsize=64)
def _dft(n_in: int, n_out: int, n: int) -> tuple:
    """(cos, sin) of 2 pi j k / n for j < n_in (rows) and k < n_out (columns), float64."""
    jk = np.outer(np.arange(n_in), np.arange(n_out)) % n  # (exact angles: the product reduced mod n first)
    angle = 2 * np.pi * jk / n
    return np.cos(angle), np.sin(angle)


def _matrices(n_in: int, n_out: int, n: int, dtype):
    if max(n_in, n_out, n) > MAX_SIZE:
        raise RuntimeError(
            f"graphnn.fft: a transform of {n} points exceeds graphnn's {MAX_SIZE} (DFT products cost O(n^2) per line)"
        )
    c, s = _dft(n_in, n_out, n)
    g = _g()
    return g.tensor(c, dtype=dtype), g.tensor(s, dtype=dtype)


def _parts(input, what: str):
    """(real part, imaginary part or None) of input, floating."""
    g = _g()
    if isinstance(input, ComplexTensor):
        return input.real, input.imag
    if not isinstance(input, g.Tensor):
        raise TypeError(f"{what}: expected a tensor, got {type(input).__name__}")
    return (input if input.is_floating_point() else input.to(g.get_default_dtype())), None


def _fit(x, dim: int, n: int):
    """x trimmed or zero-padded to n points along dim."""
    size = x.shape[dim]
    if n == size:
        return x
    if n < size:
        return x.narrow(dim, 0, n)
    pad = list(x.shape)
    pad[dim] = n - size
    return _g().cat([x, x.new_zeros(pad)], dim)


def _scale(norm: str | None, n: int, inverse: bool) -> float:
    norm = "backward" if norm is None else norm
    if norm not in ("backward", "ortho", "forward"):
        raise ValueError(f'Invalid normalization mode: "{norm}"')
    if norm == "ortho":
        return 1.0 / math.sqrt(n)
    return 1.0 / n if (norm == "backward") == inverse else 1.0


def _along(x, dim: int, fn):
    """fn applied to x with dim moved last, moved back."""
    if x is None:
        return None
    return fn(x.movedim(dim, -1)).movedim(-1, dim)


def _check_n(n, what: str) -> None:
    if n is not None and n < 1:
        raise RuntimeError(f"{what}: Invalid number of data points ({n}) specified")


def _transform(input, n, dim: int, norm, inverse: bool, what: str):
    """The complex DFT (inverse: the inverse DFT) of n points along dim."""
    _check_n(n, what)
    a, b = _parts(input, what)
    dim = dim % max(a.dim(), 1)
    n = a.shape[dim] if n is None else n
    a, b = _fit(a, dim, n), None if b is None else _fit(b, dim, n)
    c, s = _matrices(n, n, n, a.dtype)
    sign = 1.0 if inverse else -1.0  # e^{sign 2 pi i jk / n} = cos + sign i sin
    k = _scale(norm, n, inverse)
    re = _along(a, dim, lambda t: t @ c)
    im = _along(a, dim, lambda t: t @ s) * sign
    if b is not None:
        re = re - sign * _along(b, dim, lambda t: t @ s)
        im = im + _along(b, dim, lambda t: t @ c)
    return ComplexTensor._from(re * k, im * k)


def fft(input, n=None, dim: int = -1, norm=None, *, out=None):
    return _transform(input, n, dim, norm, False, "fft")


def ifft(input, n=None, dim: int = -1, norm=None, *, out=None):
    return _transform(input, n, dim, norm, True, "ifft")


def rfft(input, n=None, dim: int = -1, norm=None, *, out=None):
    """The n // 2 + 1 non-negative frequencies of the DFT of a real signal."""
    if isinstance(input, ComplexTensor):
        raise RuntimeError("rfft expects a real input tensor, but got a complex one")
    _check_n(n, "rfft")
    a, _ = _parts(input, "rfft")
    dim = dim % max(a.dim(), 1)
    n = a.shape[dim] if n is None else n
    a = _fit(a, dim, n)
    c, s = _matrices(n, n // 2 + 1, n, a.dtype)
    k = _scale(norm, n, False)
    return ComplexTensor._from(_along(a, dim, lambda t: t @ c) * k, _along(a, dim, lambda t: t @ s) * -k)


def irfft(input, n=None, dim: int = -1, norm=None, *, out=None):
    """The real signal of n points (default 2 (m - 1)) whose rfft is input's m frequencies (the imaginary parts of
    the zero and Nyquist frequencies do not count, as in PyTorch)."""
    _check_n(n, "irfft")
    a, b = _parts(input, "irfft")
    dim = dim % max(a.dim(), 1)
    n = 2 * (a.shape[dim] - 1) if n is None else n
    if n < 1:
        raise RuntimeError(f"irfft: Invalid number of data points ({n}) specified")
    m = n // 2 + 1
    a = _fit(a, dim, m)
    b = _fit(b if b is not None else a.new_zeros(a.shape), dim, m)
    c, s = _matrices(m, n, n, a.dtype)  # rows: frequencies k < m; columns: samples j < n
    w = np.full((m, 1), 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0  # (the Nyquist frequency counted once)
    g = _g()
    wt = g.tensor(w, dtype=a.dtype)
    k = _scale(norm, n, True)
    cw, sw = c * wt, s * wt
    out = _along(a, dim, lambda t: t @ cw) - _along(b, dim, lambda t: t @ sw)
    return out * k


def hfft(input, n=None, dim: int = -1, norm=None, *, out=None):
    """The real spectrum of a Hermitian-symmetric signal given by its first half: irfft of the conjugate, scaled as
    a forward transform."""
    x = input.conj() if isinstance(input, ComplexTensor) else input
    return irfft(x, n, dim, _SWAPPED[norm])


def ihfft(input, n=None, dim: int = -1, norm=None, *, out=None):
    return rfft(input, n, dim, _SWAPPED[norm]).conj()


_SWAPPED = {None: "forward", "backward": "forward", "forward": "backward", "ortho": "ortho"}  # (hfft's scaling)


def hfftn(input, s=None, dim=None, norm=None, *, out=None):
    """The real n-dimensional spectrum of a Hermitian-symmetric signal given by its half along the last dim: irfftn
    of the conjugate, scaled as a forward transform."""
    x = input.conj() if isinstance(input, ComplexTensor) else input
    return irfftn(x, s, dim, _SWAPPED[norm])


def ihfftn(input, s=None, dim=None, norm=None, *, out=None):
    """The inverse of hfftn: the conjugate of rfftn, scaled as an inverse transform."""
    return rfftn(input, s, dim, _SWAPPED[norm]).conj()


def hfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return hfftn(input, s, dim, norm)


def ihfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return ihfftn(input, s, dim, norm)


def _dims_and_sizes(input, s, dim, what: str):
    nd = input.dim()
    if dim is None:
        dim = list(range(nd - len(s), nd)) if s is not None else list(range(nd))
    dims = [d % nd for d in (dim if isinstance(dim, (tuple, list)) else [dim])]
    if s is not None and len(s) != len(dims):
        raise RuntimeError(f"{what}: When given, dim and shape arguments must have the same length")
    return dims, list(s) if s is not None else [None] * len(dims)


def fftn(input, s=None, dim=None, norm=None, *, out=None):
    dims, sizes = _dims_and_sizes(input, s, dim, "fftn")
    for d, n in zip(dims, sizes):
        input = _transform(input, n, d, norm, False, "fftn")
    return input


def ifftn(input, s=None, dim=None, norm=None, *, out=None):
    dims, sizes = _dims_and_sizes(input, s, dim, "ifftn")
    for d, n in zip(dims, sizes):
        input = _transform(input, n, d, norm, True, "ifftn")
    return input


def rfftn(input, s=None, dim=None, norm=None, *, out=None):
    dims, sizes = _dims_and_sizes(input, s, dim, "rfftn")
    x = rfft(input, sizes[-1], dims[-1], norm)
    for d, n in zip(dims[:-1], sizes[:-1]):
        x = _transform(x, n, d, norm, False, "rfftn")
    return x


def irfftn(input, s=None, dim=None, norm=None, *, out=None):
    dims, sizes = _dims_and_sizes(input, s, dim, "irfftn")
    for d, n in zip(dims[:-1], sizes[:-1]):
        input = _transform(input, n, d, norm, True, "irfftn")
    return irfft(input, sizes[-1], dims[-1], norm)


def fft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return fftn(input, s, dim, norm)


def ifft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return ifftn(input, s, dim, norm)


def rfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return rfftn(input, s, dim, norm)


def irfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return irfftn(input, s, dim, norm)


def fftfreq(n: int, d: float = 1.0, *, dtype=None, layout=None, device=None, requires_grad: bool = False):
    """The sample frequencies of an n-point DFT with sample spacing d: 0, 1, ..., -2, -1 over n d."""
    return _g().tensor(np.fft.fftfreq(n, d), dtype=dtype or _g().get_default_dtype(), requires_grad=requires_grad)


def rfftfreq(n: int, d: float = 1.0, *, dtype=None, layout=None, device=None, requires_grad: bool = False):
    return _g().tensor(np.fft.rfftfreq(n, d), dtype=dtype or _g().get_default_dtype(), requires_grad=requires_grad)


def _shift(input, dim, half):
    """input rolled by half(size) along each of dims (all by default)."""
    nd = input.dim()
    dims = list(range(nd)) if dim is None else [d % nd for d in (dim if isinstance(dim, (tuple, list)) else [dim])]
    shifts = [half(input.shape[d]) for d in dims]
    if isinstance(input, ComplexTensor):
        return ComplexTensor(input._ri.roll(shifts, dims))
    return input.roll(shifts, dims)


def fftshift(input, dim=None):
    """The zero frequency moved to the middle (a roll by n // 2 along each dimension)."""
    return _shift(input, dim, lambda n: n // 2)


def ifftshift(input, dim=None):
    return _shift(input, dim, lambda n: -(n // 2))


def _window_of(window, win_length: int, n_fft: int, like):
    """The window (ones by default) zero-padded on both sides to n_fft points, as PyTorch centers it."""
    g = _g()
    w = g.ones(win_length, dtype=like.dtype) if window is None else window.to(like.dtype)
    if w.shape[0] != win_length:
        raise RuntimeError(f"stft: expected the window to have {win_length} points, got {w.shape[0]}")
    left = (n_fft - win_length) // 2
    return g.nn.functional.pad(w, (left, n_fft - win_length - left)) if win_length < n_fft else w


def _frames(n_fft: int, hop_length, win_length) -> tuple:
    """(hop, window length) of a short-time transform: n_fft // 4 and n_fft unless given."""
    return (n_fft // 4 if hop_length is None else hop_length), (n_fft if win_length is None else win_length)


def stft(
    input,
    n_fft: int,
    hop_length=None,
    win_length=None,
    window=None,
    center: bool = True,
    pad_mode: str = "reflect",
    normalized: bool = False,
    onesided=None,
    return_complex=None,
):
    """The short-time Fourier transform of a signal (L,) or batch (B, L): (B?, n_fft // 2 + 1, frames) complex
    (onesided; all n_fft frequencies for onesided=False), frames hop_length apart (n_fft // 4), each multiplied by
    the window; center pads n_fft // 2 on both sides with pad_mode. return_complex=False gives view_as_real."""
    g = _g()
    if return_complex is None:
        raise RuntimeError(
            "stft requires the return_complex parameter be given for real inputs, and will further require that "
            "return_complex=True in a future PyTorch release."
        )
    hop, win = _frames(n_fft, hop_length, win_length)
    if window is None:
        warnings.warn(
            "stft: no window was given: a rectangular window is used (spectral leakage; torch.hann_window and others "
            "avoid it); pass window=torch.ones(n_fft) to use it without this warning",
            UserWarning,
            stacklevel=2,
        )
    if not 0 < win <= n_fft or hop <= 0:
        raise RuntimeError(f"stft: expected 0 < win_length <= n_fft and hop_length > 0, got {win}, {n_fft}, {hop}")
    x = input if isinstance(input, ComplexTensor) else _parts(input, "stft")[0]
    if isinstance(x, ComplexTensor):
        raise RuntimeError("graphnn's stft takes real signals")
    single = x.dim() == 1
    x = x.unsqueeze(0) if single else x
    if center:
        x = g.nn.functional.pad(x.unsqueeze(1), (n_fft // 2, n_fft // 2), mode=pad_mode).squeeze(1)
    if x.shape[-1] < n_fft:
        raise RuntimeError(f"stft: the signal ({x.shape[-1]} points) is shorter than n_fft={n_fft}")
    frames = x.unfold(-1, n_fft, hop) * _window_of(window, win, n_fft, x)  # (B, frames, n_fft)
    one = onesided if onesided is not None else True
    spec = rfft(frames, dim=-1) if one else fft(frames, dim=-1)
    spec = spec.transpose(1, 2)
    spec = spec / math.sqrt(n_fft) if normalized else spec
    spec = spec[0] if single else spec
    return spec if return_complex else spec._ri  # (return_complex=False: view_as_real, as PyTorch's deprecated form)


def istft(
    input,
    n_fft: int,
    hop_length=None,
    win_length=None,
    window=None,
    center: bool = True,
    normalized: bool = False,
    onesided=None,
    length=None,
    return_complex: bool = False,
):
    """The signal whose stft is input (B?, freq, frames): each frame's inverse DFT times the window, overlap-added and
    divided by the summed squared window (where it is nonzero), the center padding removed, trimmed or padded to
    `length`."""
    g = _g()
    hop, win = _frames(n_fft, hop_length, win_length)
    spec = input if isinstance(input, ComplexTensor) else g.view_as_complex(input)
    single = spec.dim() == 2
    spec = spec.unsqueeze(0) if single else spec
    spec = spec * math.sqrt(n_fft) if normalized else spec
    spec = spec.transpose(1, 2)  # (B, frames, freq)
    one = onesided if onesided is not None else spec.shape[-1] != n_fft
    frames = irfft(spec, n=n_fft, dim=-1) if one else ifft(spec, dim=-1).real
    w = _window_of(window, win, n_fft, frames)
    frames = frames * w
    count = frames.shape[1]
    total = n_fft + hop * (count - 1)
    # overlap-add (sample t of the output sums frame f's point t - f hop): a fold of the frames as columns
    fold = lambda cols: g.nn.functional.fold(  # noqa: E731
        cols, output_size=(1, total), kernel_size=(1, n_fft), stride=(1, hop)
    ).reshape(cols.shape[0], total)
    y = fold(frames.transpose(1, 2))
    env = fold((w * w).reshape(1, n_fft, 1).expand(1, n_fft, count))[0]
    start = n_fft // 2 if center else 0
    end = total - n_fft // 2 if center else total
    if length is not None:
        end = start + length
    y, env = y[:, start:end], env[start:end]
    if w._data is not None:  # (a window with values: checked on the host; a window computed in a trace is not)
        env_np = np.zeros(total)
        at = (np.arange(count)[:, None] * hop + np.arange(n_fft)).ravel()
        np.add.at(env_np, at, np.tile(w._data.astype(np.float64) ** 2, count))
        if (np.abs(env_np[start:end]) < 1e-11).any():
            raise RuntimeError("istft: window overlap add min: the squared window sums to zero at some samples (NOLA)")
    y = y / env
    if length is not None and y.shape[-1] < length:
        y = g.nn.functional.pad(y, (0, length - y.shape[-1]))
    return y[0] if single else y
