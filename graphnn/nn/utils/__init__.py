"""graphnn.nn.utils: gradient clipping (also inside compiled training steps), parameters as one vector, padding
and packing of variable-length sequences (graphnn.nn.utils.rnn)."""

from . import rnn, stateless
from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value, clip_grad_value_
from .convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "clip_grad_value", "rnn"]
__all__ += ["parameters_to_vector", "vector_to_parameters"]
