"""graphnn.ir: the intermediate representation, its op registry and its passes."""

from . import ops  # noqa: F401  (registers every primitive)
from .autodiff import grad_graph, vjp
from .graph import Graph, Node, Value
from .interpreter import interpret
from .passes import optimize
from .registry import OPS, Emitter, GraphEmitter, IRError, MissingGradient, get_op, register
from .types import TensorType, broadcast_shapes
from .verify import VerifyError, verify

__all__ = [
    "Graph",
    "Node",
    "Value",
    "TensorType",
    "broadcast_shapes",
    "OPS",
    "Emitter",
    "GraphEmitter",
    "IRError",
    "MissingGradient",
    "get_op",
    "register",
    "interpret",
    "verify",
    "VerifyError",
    "vjp",
    "grad_graph",
    "optimize",
]
