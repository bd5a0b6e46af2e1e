"""Complex tensors, as their real and imaginary parts: a ComplexTensor holds a real tensor `_ri` of shape
(*shape, 2) (PyTorch's `view_as_real` layout) and every complex op is real arithmetic on it, so gradients, graphs and
compiled code see only real ops. `torch.view_as_complex` / `view_as_real` are free, as in PyTorch.

What they offer is what programs do with complex numbers in a network (rotary position embeddings: `torch.polar`,
`view_as_complex(x.reshape(..., -1, 2)) * freqs`, `view_as_real(...).flatten(3)`): creation (`tensor` of complex
data, `polar`, `complex`, `1j * x`, factories with a complex dtype), shapes, indexing and slice assignment, + - * /,
conj, abs, angle, exp, sum / mean, matmul and einsum (four real products), `.real` / `.imag`; complex parameters
(graphnn/nn/parameter.ComplexParameter: a real parameter of the parts) for spectral layers (a Fourier neural
operator's weights). An op they lack raises an AttributeError naming it."""

from __future__ import annotations

import builtins
import numbers

import numpy as np

_REAL_OF = {"complex64": "float32", "complex128": "float64"}


def _g():
    import graphnn

    return graphnn


def _dims(ndim: int, d: int, what: str) -> int:
    if not -ndim <= d < max(ndim, 1):
        raise IndexError(
            f"{what}: Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})"
        )
    return d % max(ndim, 1)


def _shape_args(shape) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


class ComplexTensor:
    """A complex tensor (complex64 or complex128): see the module's docstring."""

    __array_priority__ = 1001
    __hash__ = object.__hash__

    def __init__(self, ri):
        if ri.dim() == 0 or ri.shape[-1] != 2:
            raise RuntimeError(f"a complex tensor needs a last dimension of size 2, got shape {list(ri.shape)}")
        if ri.dtype_name not in ("float32", "float64"):
            ri = ri.float()
        self._ri = ri

    # -- what it is --------------------------------------------------------------------------------------------
    @property
    def shape(self):
        return _g().Size(self._ri.shape[:-1])

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[_dims(self.ndim, dim, "size")]

    @property
    def ndim(self) -> int:
        return self._ri.dim() - 1

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return self._ri.numel() // 2

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def dtype(self):
        from graphnn.core.dtypes import complex64, complex128

        return complex64 if self._ri.dtype_name == "float32" else complex128

    @property
    def device(self):
        return self._ri.device

    @property
    def is_cpu(self) -> bool:
        return True

    def is_complex(self) -> bool:
        return True

    def is_floating_point(self) -> bool:
        return False

    @property
    def requires_grad(self) -> bool:
        return self._ri.requires_grad

    def requires_grad_(self, requires_grad: bool = True) -> "ComplexTensor":
        self._ri.requires_grad_(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self._ri.is_leaf

    @property
    def grad(self):
        g = self._ri.grad
        return None if g is None else ComplexTensor(g)

    @property
    def real(self):
        return self._ri[..., 0]

    @property
    def imag(self):
        return self._ri[..., 1]

    # -- shapes ------------------------------------------------------------------------------------------------
    def view(self, *shape) -> "ComplexTensor":
        return ComplexTensor(self._ri.view(*_shape_args(shape), 2))

    def reshape(self, *shape) -> "ComplexTensor":
        return ComplexTensor(self._ri.reshape(*_shape_args(shape), 2))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "ComplexTensor":
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _dims(self.ndim, start_dim, "flatten"), _dims(self.ndim, end_dim, "flatten")
        return ComplexTensor(self._ri.flatten(s, e))

    def unsqueeze(self, dim: int) -> "ComplexTensor":
        return ComplexTensor(self._ri.unsqueeze(_dims(self.ndim + 1, dim, "unsqueeze")))

    def squeeze(self, dim=None) -> "ComplexTensor":
        if dim is None:
            keep = [d for d in self.shape if d != 1]
            return self.reshape(*keep) if keep else self.reshape(())
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        out = self._ri
        for d in sorted((_dims(self.ndim, d, "squeeze") for d in dims), reverse=True):
            out = out.squeeze(d)
        return ComplexTensor(out)

    def transpose(self, dim0: int, dim1: int) -> "ComplexTensor":
        return ComplexTensor(
            self._ri.transpose(_dims(self.ndim, dim0, "transpose"), _dims(self.ndim, dim1, "transpose"))
        )

    def permute(self, *dims) -> "ComplexTensor":
        dims = [_dims(self.ndim, d, "permute") for d in _shape_args(dims)]
        return ComplexTensor(self._ri.permute(*dims, self.ndim))

    def t(self) -> "ComplexTensor":
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self) -> "ComplexTensor":
        return self.permute(*reversed(range(self.ndim)))

    def expand(self, *sizes) -> "ComplexTensor":
        return ComplexTensor(self._ri.expand(*_shape_args(sizes), 2))

    def repeat(self, *sizes) -> "ComplexTensor":
        return ComplexTensor(self._ri.repeat(*_shape_args(sizes), 1))

    def __getitem__(self, index) -> "ComplexTensor":
        index = index if isinstance(index, tuple) else (index,)
        if any(i is Ellipsis for i in index):
            return ComplexTensor(self._ri[index + (slice(None),)])
        return ComplexTensor(self._ri[index + (Ellipsis, slice(None))])

    def contiguous(self, *args, **kwargs) -> "ComplexTensor":
        return self

    def clone(self, *args, **kwargs) -> "ComplexTensor":
        return ComplexTensor(self._ri.clone())

    def detach(self) -> "ComplexTensor":
        return ComplexTensor(self._ri.detach())

    def to(self, *args, **kwargs) -> "ComplexTensor":
        """A device, another complex dtype, or a tensor's dtype; a real dtype keeps the real part (PyTorch warns
        that the imaginary part is discarded)."""
        from graphnn.core.dtypes import dtype

        target = kwargs.get("dtype") or next((a for a in args if isinstance(a, dtype)), None)
        other = next((a for a in args if isinstance(a, (ComplexTensor, _g().Tensor))), None)
        if other is not None:
            target = other.dtype
        if target is None or target == self.dtype:
            return self
        if getattr(target, "name", None) in _REAL_OF:
            return ComplexTensor(self._ri.to(_REAL_OF[target.name]))
        return self.real.to(target)

    def cpu(self) -> "ComplexTensor":
        return self

    # -- arithmetic --------------------------------------------------------------------------------------------
    def _parts(self):
        return self.real, self.imag

    @staticmethod
    def _from(re, im) -> "ComplexTensor":
        g = _g()
        re = re if isinstance(re, g.Tensor) else g.tensor(re, dtype=im.dtype)
        im = im if isinstance(im, g.Tensor) else g.full_like(re, im)
        return ComplexTensor(g.stack(g.broadcast_tensors(re, im), -1))

    def _other(self, o):
        """(real part, imaginary part or None) of another operand."""
        g = _g()
        if isinstance(o, ComplexTensor):
            return o._parts()
        if isinstance(o, builtins.complex):
            return o.real, o.imag
        if isinstance(o, (numbers.Number, g.Tensor)):
            return o, None
        raise TypeError(f"unsupported operand for a complex tensor: {type(o).__name__}")

    def __add__(self, o):
        a, b = self._parts()
        c, d = self._other(o)
        return self._from(a + c, b if d is None else b + d)

    __radd__ = __add__

    def __sub__(self, o):
        a, b = self._parts()
        c, d = self._other(o)
        return self._from(a - c, b if d is None else b - d)

    def __rsub__(self, o):
        return -(self - o)

    def __neg__(self):
        return ComplexTensor(-self._ri)

    def __mul__(self, o):
        a, b = self._parts()
        c, d = self._other(o)
        if d is None:
            return self._from(a * c, b * c)
        return self._from(a * c - b * d, a * d + b * c)

    __rmul__ = __mul__

    def __truediv__(self, o):
        a, b = self._parts()
        c, d = self._other(o)
        if d is None:
            return self._from(a / c, b / c)
        den = c * c + d * d
        return self._from((a * c + b * d) / den, (b * c - a * d) / den)

    def __rtruediv__(self, o):
        a, b = self._parts()
        c, d = self._other(o)
        d = 0.0 if d is None else d
        den = a * a + b * b
        return self._from((c * a + d * b) / den, (d * a - c * b) / den)

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(o, self)

    def matmul(self, o):
        return matmul(self, o)

    def __setitem__(self, index, value) -> None:
        """x[index] = value in place on the parts (a complex or real tensor, or a number)."""
        g = _g()
        index = index if isinstance(index, tuple) else (index,)
        at = index + ((slice(None),) if any(i is Ellipsis for i in index) else (Ellipsis, slice(None)))
        if isinstance(value, ComplexTensor):
            self._ri[at] = value._ri
            return
        c, d = self._other(value)
        re = c if isinstance(c, g.Tensor) else g.tensor(c, dtype=self._ri.dtype)
        self._ri[at] = g.stack(g.broadcast_tensors(re, g.zeros_like(re) if d is None else g.full_like(re, d)), -1)

    def conj(self) -> "ComplexTensor":
        a, b = self._parts()
        return self._from(a, -b)

    def resolve_conj(self) -> "ComplexTensor":
        return self

    def abs(self):
        return self._ri.pow(2).sum(-1).sqrt()

    __abs__ = abs

    def angle(self):
        a, b = self._parts()
        return _g().atan2(b, a)

    def exp(self) -> "ComplexTensor":
        a, b = self._parts()
        m = a.exp()
        return self._from(m * b.cos(), m * b.sin())

    def sum(self, dim=None, keepdim: bool = False) -> "ComplexTensor":
        if dim is None:
            return ComplexTensor(self._ri.reshape(-1, 2).sum(0))
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        return ComplexTensor(self._ri.sum(tuple(_dims(self.ndim, d, "sum") for d in dims), keepdim=keepdim))

    def mean(self, dim=None, keepdim: bool = False) -> "ComplexTensor":
        total = self.sum(dim, keepdim)
        return total / (self.numel() / max(total.numel(), 1))

    def __eq__(self, o):
        c, d = self._other(o)
        a, b = self._parts()
        return (a == c) & (b == (0 if d is None else d))

    # -- values ------------------------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        ri = self._ri.detach().numpy()
        return ri[..., 0] + 1j * ri[..., 1]

    def tolist(self):
        return self.numpy().tolist()

    def item(self) -> builtins.complex:
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return builtins.complex(self.numpy().reshape(-1)[0])

    def __complex__(self) -> builtins.complex:
        return self.item()

    def __repr__(self) -> str:
        with np.printoptions(precision=4, floatmode="fixed"):
            body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        grad = ", requires_grad=True" if self.requires_grad else ""
        return (
            f"tensor({body}{grad})" if self.dtype.name == "complex64" else f"tensor({body}, dtype={self.dtype!r}{grad})"
        )

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(
            f"{name}: not available for complex tensors in graphnn (complex tensors offer shapes, indexing, + - * /, "
            "conj, abs, angle, exp, sum, mean, matmul, einsum, .real / .imag; torch.view_as_real gives the real "
            "tensor for the rest)"
        )


def _real_tensor(x, what: str):
    g = _g()
    if isinstance(x, ComplexTensor):
        raise RuntimeError(f"{what}: expected a real tensor, got a complex one")
    return x if isinstance(x, g.Tensor) else g.tensor(x)


def view_as_complex(input) -> ComplexTensor:
    """The complex tensor whose real and imaginary parts are input's last dimension (of size 2)."""
    x = _real_tensor(input, "view_as_complex")
    if x.dtype_name not in ("float32", "float64"):
        raise RuntimeError(
            f"view_as_complex is only supported for floating point tensors, but got a tensor of scalar type: {x.dtype_name}"
        )
    if x.dim() == 0 or x.shape[-1] != 2:
        raise RuntimeError(f"Tensor must have a last dimension of size 2, got shape {list(x.shape)}")
    strides = x.stride()
    if strides[-1] != 1:  # (PyTorch's views: the pairs must be adjacent in memory)
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if any(st % 2 for st, n in zip(strides[:-1], x.shape[:-1]) if n != 1) or x.storage_offset() % 2:
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last dimension")
    return ComplexTensor(x)


def view_as_real(input):
    """A complex tensor's values as a real tensor with a last dimension of 2 (real, imaginary)."""
    if not isinstance(input, ComplexTensor):
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return input._ri


def complex(real, imag) -> ComplexTensor:
    """real + i imag (real tensors of one dtype, broadcast together)."""
    re, im = _real_tensor(real, "complex"), _real_tensor(imag, "complex")
    if re.dtype_name != im.dtype_name:
        raise RuntimeError(
            f"Expected object of scalar type {re.dtype_name} but got scalar type {im.dtype_name} for second argument"
        )
    return ComplexTensor._from(*_g().broadcast_tensors(re, im))


def polar(abs, angle) -> ComplexTensor:
    """abs * (cos(angle) + i sin(angle))."""
    r, t = _real_tensor(abs, "polar"), _real_tensor(angle, "polar")
    return ComplexTensor._from(r * t.cos(), r * t.sin())


def _parts_of(x):
    """(real part, imaginary part or None) of a complex or real operand of a product."""
    if isinstance(x, ComplexTensor):
        return x._parts()
    g = _g()
    return (x if isinstance(x, g.Tensor) else g.tensor(x)), None


def _bilinear(f, a, b) -> ComplexTensor:
    """f(a, b) for a function f linear in each real operand, with a or b complex: (p + iq) f (r + is) as four (or two)
    real products."""
    p, q = _parts_of(a)
    r, s = _parts_of(b)
    if q is None:
        return ComplexTensor._from(f(p, r), f(p, s))
    if s is None:
        return ComplexTensor._from(f(p, r), f(q, r))
    return ComplexTensor._from(f(p, r) - f(q, s), f(p, s) + f(q, r))


def matmul(a, b) -> ComplexTensor:
    """a @ b with either operand complex."""
    return _bilinear(_g().matmul, a, b)


def einsum(equation: str, operands: list) -> ComplexTensor:
    """einsum with complex operands: one operand's parts summed alike, two operands' as four real products."""
    g = _g()
    if len(operands) == 1:
        re, im = _parts_of(operands[0])
        return ComplexTensor._from(g.einsum(equation, re), g.einsum(equation, im))
    if len(operands) != 2:
        raise NotImplementedError(f"einsum of {len(operands)} complex operands: give it two at a time")
    return _bilinear(lambda x, y: g.einsum(equation, x, y), *operands)


def from_numpy(arr: np.ndarray, requires_grad: bool = False) -> ComplexTensor:
    """A complex tensor holding a copy of a complex NumPy array (complex64 stays complex64, else complex128)."""
    real = np.float32 if arr.dtype == np.complex64 else np.float64
    ri = np.stack([arr.real, arr.imag], -1).astype(real)
    return ComplexTensor(_g().tensor(ri, requires_grad=requires_grad))
