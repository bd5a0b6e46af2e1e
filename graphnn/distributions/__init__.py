"""graphnn.distributions: probability distributions with PyTorch's API (torch.distributions) for the programs that
sample actions or noise and score them: Categorical, Bernoulli, Normal, Uniform, and kl_divergence between them.

Samples come from graphnn's generator (graphnn.manual_seed): drawn now in eager code, at every call inside
graphnn.compile. `log_prob`, `entropy` and `rsample` are differentiable compositions of tensor ops."""

from graphnn.distributions.bernoulli import Bernoulli
from graphnn.distributions.categorical import Categorical
from graphnn.distributions.distribution import Distribution
from graphnn.distributions.kl import kl_divergence, register_kl
from graphnn.distributions.normal import Normal
from graphnn.distributions.uniform import Uniform

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal", "Uniform", "kl_divergence", "register_kl"]
