"""graphnn.distributions: probability distributions with PyTorch's API (torch.distributions) for the programs that
sample actions or noise and score them: Categorical, OneHotCategorical, Bernoulli, Binomial, Geometric, Poisson,
Normal, LogNormal, Laplace, MultivariateNormal, Uniform, Exponential, Gamma, Beta, Dirichlet, Independent,
TransformedDistribution with the Tanh, Affine, Exp, Sigmoid and composed transforms, and kl_divergence between
them (Normal, MultivariateNormal, Categorical, Bernoulli, Uniform, Exponential, Gamma, Beta, Dirichlet pairs).

Samples come from graphnn's generator (graphnn.manual_seed): drawn now in eager code, at every call inside
graphnn.compile (Poisson.sample and Binomial.sample read their parameters' values: eager). `log_prob`, `entropy`
and `rsample` are differentiable compositions of tensor ops; Gamma, Beta and Dirichlet's rsample differentiate
through the accepted proposal of their sampler (gamma.standard_gamma), where PyTorch uses implicit gradients."""

from graphnn.distributions.bernoulli import Bernoulli
from graphnn.distributions.beta import Beta, Dirichlet
from graphnn.distributions.categorical import Categorical
from graphnn.distributions.counts import Binomial, Geometric, Poisson
from graphnn.distributions.distribution import Distribution
from graphnn.distributions.gamma import Exponential, Gamma
from graphnn.distributions.independent import Independent, OneHotCategorical
from graphnn.distributions.kl import kl_divergence, register_kl
from graphnn.distributions.laplace import Laplace, LogNormal
from graphnn.distributions.multivariate_normal import MultivariateNormal
from graphnn.distributions.normal import Normal
from graphnn.distributions.uniform import Uniform
from graphnn.distributions import transforms
from graphnn.distributions.transforms import (
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    SigmoidTransform,
    TanhTransform,
    Transform,
    TransformedDistribution,
)

__all__ = [
    "AffineTransform",
    "ComposeTransform",
    "ExpTransform",
    "SigmoidTransform",
    "TanhTransform",
    "Transform",
    "TransformedDistribution",
    "transforms",
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Dirichlet",
    "Distribution",
    "Exponential",
    "Gamma",
    "Geometric",
    "Independent",
    "Laplace",
    "LogNormal",
    "MultivariateNormal",
    "Normal",
    "OneHotCategorical",
    "Poisson",
    "Uniform",
    "kl_divergence",
    "register_kl",
]
