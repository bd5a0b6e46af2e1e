"""graphnn: a neural-network graph compiler for the CPU with PyTorch's API.

Eager code records IR as it runs (so `loss.backward()` differentiates the IR symbolically);
`graphnn.compile(model_or_step)` traces once, optimizes, fuses and runs LLVM-compiled native code.
"""

from . import ir, codegen  # noqa: F401  (graphnn.ir / graphnn.codegen)
from graphnn.core.dispatch import OpError
from graphnn.core.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from graphnn.core.random import manual_seed, seed
from graphnn.core.dtypes import bool_ as bool  # noqa: A001
from graphnn.core.dtypes import bfloat16, dtype, float16, float32, float64, int8, int16, int32, int64, uint8  # noqa: F401
from graphnn.core.complex_tensor import ComplexTensor as _ComplexTensor
from graphnn.core.device import device
from graphnn.core.tensor import (
    BFloat16Tensor,
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
    Size,
    Tensor,
    TraceError,
    arange,
    as_tensor,
    cat,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    narrow,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    stack,
    tensor,
    zeros,
    zeros_like,
)
from . import autograd, nn, optim  # noqa: E402
from graphnn.compiler.program import compile  # noqa: A001
from graphnn.compiler.python_state import TraceWarning
from graphnn.compiler.scan import scan
from .codegen import get_num_threads, set_num_threads
from graphnn.artifact.export import ExportError, export  # noqa: E402
from graphnn.artifact.checkpoint import CheckpointError, load, save  # noqa: E402
from graphnn import distributed, distributions, profiler, utils, viz  # noqa: E402
from graphnn.utils.generator import Generator, default_generator  # noqa: E402
from graphnn import accelerator, amp, backends, cpu, cuda, onnx  # noqa: E402
from graphnn.amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402
from graphnn.core.tensor_ops import (
    argsort,
    baddbmm,
    bmm,
    cumsum,
    einsum,
    msort,
    multinomial,
    scatter,
    scatter_add,
    sort,
    topk,
    tril,
    triu,
    unbind,
)

from graphnn import torch_version, version  # noqa: E402
from graphnn.version import __version__  # noqa: E402

float = float32  # noqa: A001
double = float64
long = int64
half = float16
int = int32  # noqa: A001 (PyTorch's alias; computed as int64, see graphnn.core.dtypes)
short = int16


_NUMBER_FIRST = ("add", "sub", "mul", "div")  # torch.mul(2, t): these also take a number as input


def _unary(op):
    def f(input, *args, **kwargs):
        if op in _NUMBER_FIRST and not isinstance(input, Tensor):
            return getattr(Tensor, op)(input, *args, **kwargs)
        return getattr(input, op)(*args, **kwargs)

    f.__name__ = op
    return f


for _op in (
    "exp",
    "log",
    "sqrt",
    "tanh",
    "sigmoid",
    "relu",
    "abs",
    "sum",
    "mean",
    "max",
    "min",
    "argmax",
    "argmin",
    "matmul",
    "reshape",
    "flatten",
    "unsqueeze",
    "squeeze",
    "transpose",
    "permute",
    "clamp",
    "neg",
    "sign",
    "t",
    "numel",
    "amax",
    "index_select",
    "gather",
    "split",
    "chunk",
    "masked_fill",
    "softmax",
    "log_softmax",
    "logsumexp",
    "select",
    "is_floating_point",
):
    globals()[_op] = _unary(_op)

# Tensor methods that PyTorch also offers as functions of the module (torch.gt(a, b), torch.add(a, b, alpha=2))
for _op in (
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
    "add",
    "sub",
    "mul",
    "div",
    "norm",
    "std",
    "var",
    "logical_and",
    "logical_or",
    "logical_not",
    "clip",
    "clone",
    "detach",
    "sin",
    "cos",
    "log1p",
    "expm1",
    "rsqrt",
    "erf",
):
    if _op not in globals():
        globals()[_op] = _unary(_op)


_DETERMINISTIC = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode, *, warn_only=False) -> None:
    """Accepted for compatibility: graphnn's results never depend on scheduling (thread splits give bit-identical
    results), so every algorithm is deterministic already."""
    _DETERMINISTIC.update(mode=True if mode else False, warn_only=True if warn_only else False)


def are_deterministic_algorithms_enabled():
    return _DETERMINISTIC["mode"]


def is_deterministic_algorithms_warn_only_enabled():
    return _DETERMINISTIC["warn_only"]


def mm(a, b):
    return a.mm(b)


def is_tensor(x) -> bool:
    return isinstance(x, (Tensor, _ComplexTensor))


def maximum(input, other):
    from graphnn.core.dispatch import apply

    return apply("maximum", [input, other])


def minimum(input, other):
    from graphnn.core.dispatch import apply

    return apply("minimum", [input, other])


def where(condition, input=None, other=None):
    """input where condition, else other; where(condition) alone: the indices of its nonzero elements, one tensor per
    dimension."""
    from graphnn.core.dispatch import apply

    if input is None and other is None:
        return condition.nonzero(as_tuple=True)
    return apply("select", [condition, input, other])


def pow(input, exponent):  # noqa: A001
    """input ** exponent: a tensor to a number or a tensor, or a number to a tensor (torch.pow(2, x))."""
    from graphnn.core.tensor import _pow

    return _pow(input, exponent)


import sys as _sys  # noqa: E402

from graphnn.core import install as _install, tensor_api as _tensor_api  # noqa: E402

_graphnn = _sys.modules[__name__]
# shape, linear-algebra and index functions (graphnn.core.shape_api, ...), before the ops' own API names
_install.install(
    _graphnn, _tensor_api.BOTH, _tensor_api.INPLACE, functions=_tensor_api.FUNCTIONS, methods=_tensor_api.METHODS
)

from . import ops  # noqa: E402  (graphnn.ops: defining new ops)

ops.install_all()

from graphnn.core import math_ops as _math_ops, reductions as _reductions  # noqa: E402
from graphnn.core.dtypes import finfo, iinfo  # noqa: E402

_install.install(_graphnn, _math_ops.FUNCTIONS, _math_ops.INPLACE)
_install.install(_graphnn, _reductions.FUNCTIONS, _reductions.INPLACE)
_install.install_operators()
from graphnn.core import extra_api as _extra_api  # noqa: E402

_install.install(_graphnn, _extra_api.FUNCTIONS, ("scatter_reduce", "renorm"))
_install.install(_graphnn, functions=_extra_api.MODULE_ONLY)
from graphnn.core import inplace_view_api as _inplace_view_api, integer_api as _integer_api  # noqa: E402
from graphnn.core import matrix_exp as _matrix_exp, storage as _storage  # noqa: E402

_install.install(_graphnn, _integer_api.FUNCTIONS, _integer_api.INPLACE)
_install.install(_graphnn, {"matrix_exp": _matrix_exp.matrix_exp})
_install.install(_graphnn, functions=_storage.FUNCTIONS, methods={**_storage.METHODS, **_inplace_view_api.METHODS})
Tensor.__lshift__ = lambda self, o: _extra_api.bitwise_left_shift(self, o)
Tensor.__rshift__ = lambda self, o: _extra_api.bitwise_right_shift(self, o)


def get_default_dtype():
    """The default floating dtype (graphnn.float32 unless set_default_dtype changed it)."""
    from graphnn.core.dtypes import dtype_of, get_default_dtype as name

    return dtype_of(name())


def set_default_dtype(d) -> None:
    """Make float tensors created without a dtype `d` (graphnn.float32 or graphnn.float64)."""
    from graphnn.core.dtypes import set_default_dtype as set_name

    set_name(d)


# Random draws of PyTorch's API (graphnn.normal(...), x.bernoulli_()): names defined earlier are kept.
import numpy as np  # noqa: E402

from graphnn.core import random as _random_module, sampling as _sampling  # noqa: E402
from graphnn.core.random import get_rng_state, initial_seed, set_rng_state  # noqa: E402

_install.install(_graphnn, functions=_sampling.FUNCTIONS, methods=_sampling.METHODS)
random = _random_module  # torch.random.manual_seed(...)
_sys.modules[__name__ + ".random"] = _random_module  # (import torch.random)
channels_last = contiguous_format = preserve_format = channels_last_3d = "memory_format"


from graphnn.core.printing import get_printoptions, set_printoptions  # noqa: E402, F401


# Sparse COO tensors (dense-backed): torch.sparse_coo_tensor, x.to_sparse(), torch.sparse.mm, torch.spmm
from graphnn.core import sparse as _sparse_core  # noqa: E402
from graphnn import sparse  # noqa: E402

sparse_coo_tensor, spmm, layout = _sparse_core.sparse_coo_tensor, _sparse_core.sparse_mm, _sparse_core.layout
strided, sparse_coo = _sparse_core.strided, _sparse_core.sparse_coo
Tensor.to_sparse, Tensor.to_dense = _sparse_core.to_sparse, _sparse_core.to_dense
Tensor.is_sparse = property(lambda self: False, doc="False: a dense tensor (sparse ones are SparseCooTensor)")
Tensor.layout = property(lambda self: strided, doc="graphnn.strided: a dense tensor")
_sparse_core._block_dense_methods()

# Shared memory for multiprocessing (Hogwild training; graphnn.multiprocessing)
from graphnn.core import shared_memory as _shared_memory  # noqa: E402

Tensor.share_memory_, Tensor.is_shared = _shared_memory.share_memory_, _shared_memory.is_shared
_shared_memory.register_reductions()
from graphnn import multiprocessing  # noqa: E402

from graphnn import _dynamo, _inductor, ao, fft, func, jit, linalg, mps, quantization, serialization, special, testing  # noqa: E402  (torch.jit's entry points, linalg's norms, special)

xpu = mps  # (torch.xpu: Intel GPUs, never present here either: is_available() is False, seeding does nothing)
_sys.modules[__name__ + ".xpu"] = mps

i0 = special.i0  # (also Tensor.i0; torch.polygamma, torch.mvlgamma: special's)
polygamma = special.polygamma
mvlgamma = special.multigammaln
Tensor.i0 = lambda self: special.i0(self)
Tensor.polygamma = lambda self, n: special.polygamma(n, self)
Tensor.mvlgamma = lambda self, p: special.multigammaln(self, p)

vmap = func.vmap
stft, istft = fft.stft, fft.istft  # (also Tensor methods)
Tensor.stft, Tensor.istft = fft.stft, fft.istft

from graphnn.nn import _top_level  # noqa: E402

_top_level.install(globals())  # torch.pairwise_distance, torch.pixel_shuffle, torch.conv2d, ...

_MATMUL_PRECISION = ["highest"]


def set_float32_matmul_precision(precision: str) -> None:
    """Accepted as PyTorch's ('highest', 'high' or 'medium'): graphnn's float32 products are always full float32."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"set_float32_matmul_precision: invalid precision {precision!r}")
    _MATMUL_PRECISION[0] = precision


def get_float32_matmul_precision() -> str:
    return _MATMUL_PRECISION[0]


from graphnn.core import compat_api as _compat_api  # noqa: E402

from graphnn.core import torch_level_api as _torch_level_api  # noqa: E402

from graphnn.core.complex_tensor import polar, view_as_complex, view_as_real  # noqa: E402
from graphnn.core.dtypes import complex64, complex128  # noqa: E402

cfloat, cdouble = complex64, complex128
qint8, quint8, qint32 = quantization.qint8, quantization.quint8, quantization.qint32
from graphnn.core import complex_tensor as _complex_tensor  # noqa: E402

setattr(_graphnn, "complex", _complex_tensor.complex)  # torch.complex(real, imag) (the builtin is not used here)
_torch_level_api.install(_graphnn)  # torch.view_copy, torch.cond, torch.sym_int, torch.get_autocast_cpu_dtype, ...
_compat_api.install(_graphnn)  # torch.pi, torch.concat, torch.hann_window, torch.exp_(x), ... (after every other name)


from graphnn.core import out_arg as _out_arg  # noqa: E402

_out_arg.install(globals())  # torch.matmul(a, b, out=c): every public function takes out= (after every other name)
for _namespace in (linalg, fft, special):  # torch.linalg.inv(A, out=B), ...
    _out_arg.install(vars(_namespace))
_out_arg.install_methods(Tensor)  # x.sum(axis=1, keepdims=True): NumPy's names for dim / keepdim, as PyTorch


def __getattr__(name: str):
    if name.startswith("_foreach_"):  # torch._foreach_add_(tensors, ...): the Tensor method on each tensor
        return _compat_api.foreach(name[len("_foreach_") :])
    raise AttributeError(f"module 'graphnn' has no attribute {name!r}")
