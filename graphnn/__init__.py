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
from graphnn.core.dtypes import bfloat16, dtype, float16, float32, float64, int64
from graphnn.core.device import device
from graphnn.core.tensor import (
    BoolTensor,
    DoubleTensor,
    FloatTensor,
    LongTensor,
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
from graphnn import distributed, utils, viz  # noqa: E402
from graphnn.utils.generator import Generator  # noqa: E402
from graphnn import accelerator, amp, backends, cpu, cuda, onnx  # noqa: E402
from graphnn.amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402
from graphnn.core.tensor_ops import (
    argsort,
    baddbmm,
    bmm,
    cumsum,
    einsum,
    multinomial,
    scatter,
    scatter_add,
    sort,
    topk,
    tril,
    triu,
    unbind,
)

__version__ = "0.1.0"

float = float32  # noqa: A001
double = float64
long = int64
half = float16


def _unary(op):
    def f(input, *args, **kwargs):
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
    return a.matmul(b)


def is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def maximum(a, b):
    from graphnn.core.dispatch import apply

    return apply("maximum", [a, b])


def minimum(a, b):
    from graphnn.core.dispatch import apply

    return apply("minimum", [a, b])


def where(cond, a, b):
    from graphnn.core.dispatch import apply

    return apply("select", [cond, a, b])


def pow(input, exponent):  # noqa: A001
    """input ** exponent: a tensor to a number or a tensor, or a number to a tensor (torch.pow(2, x))."""
    from graphnn.core.tensor import _pow

    return _pow(input, exponent)


from . import ops  # noqa: E402  (graphnn.ops: defining new ops)

ops.install_all()
