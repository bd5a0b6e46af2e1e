"""graphnn.nn.utils: gradient clipping (also inside compiled training steps), parameters as one vector, padding
and packing of variable-length sequences (graphnn.nn.utils.rnn), weight and spectral normalization (hooks, and as
parametrizations), pruning (prune), functional calls (stateless)."""

from . import parametrizations, parametrize, prune, rnn, stateless
from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value, clip_grad_value_, clip_grads_with_norm_
from .clip_grad import get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights
from . import fusion
from .spectral_norm import remove_spectral_norm, spectral_norm
from .weight_norm import remove_weight_norm, weight_norm


def skip_init(module_cls, *args, **kwargs):
    """module_cls(*args, **kwargs): PyTorch's way to skip parameter initialization (graphnn initializes them; the
    caller overwrites them anyway)."""
    kwargs.pop("device", None)
    return module_cls(*args, **kwargs)


__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "clip_grad_value", "rnn", "get_total_norm"]
__all__ += ["clip_grads_with_norm_"]
__all__ += ["parameters_to_vector", "vector_to_parameters", "parametrize", "parametrizations", "prune"]
__all__ += ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"]
__all__ += ["skip_init"]
__all__ += ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights", "fusion"]
