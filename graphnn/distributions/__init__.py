"""graphnn.distributions: probability distributions with PyTorch's API (torch.distributions) for the programs that
sample actions or noise and score them: Categorical, OneHotCategorical, Bernoulli, Binomial, Geometric, Poisson,
Normal, LogNormal, Laplace, MultivariateNormal, Uniform, Exponential, Gamma, Beta, Dirichlet, Independent,
StudentT, Cauchy, HalfCauchy, HalfNormal, Gumbel, Weibull, Pareto, Chi2, FisherSnedecor, Kumaraswamy,
LowRankMultivariateNormal, MixtureSameFamily, Multinomial, NegativeBinomial, ContinuousBernoulli, RelaxedBernoulli,
RelaxedOneHotCategorical, LogisticNormal, VonMises, Independent, TransformedDistribution with the Tanh, Affine, Exp,
Sigmoid, Abs, Power, Softmax, StickBreaking and composed transforms (cache_size=1 remembers the last pair), the
`constraints` of parameters and supports (arg_constraints, support, validate_args), Distribution.expand, and
kl_divergence between them (the pairs PyTorch registers: Normal, MultivariateNormal, Categorical, Bernoulli,
Uniform, Exponential, Gamma, Beta, Dirichlet, Independent, TransformedDistribution, HalfNormal, Cauchy, Gumbel,
Pareto, ContinuousBernoulli, LowRankMultivariateNormal, the mixed pairs of kl_more and those of kl_pairs).

Samples come from graphnn's generator (graphnn.manual_seed): drawn now in eager code, at every call inside
graphnn.compile (Poisson.sample and Binomial.sample read their parameters' values: eager). `log_prob`, `entropy`
and `rsample` are differentiable compositions of tensor ops; Gamma, Beta and Dirichlet's rsample differentiate
through the accepted proposal of their sampler (gamma.standard_gamma), where PyTorch uses implicit gradients."""

from graphnn.distributions import constraints
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
from graphnn.distributions.chi2_fisher import Chi2, FisherSnedecor
from graphnn.distributions.continuous_bernoulli import ContinuousBernoulli
from graphnn.distributions.extreme_value import Gumbel, Kumaraswamy, Pareto, Weibull
from graphnn.distributions.logistic_normal import LogisticNormal
from graphnn.distributions.low_rank_mvn import LowRankMultivariateNormal
from graphnn.distributions.mixture import MixtureSameFamily
from graphnn.distributions.multinomial import Multinomial, NegativeBinomial
from graphnn.distributions.relaxed import (
    ExpRelaxedCategorical,
    LogitRelaxedBernoulli,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from graphnn.distributions.student_cauchy import Cauchy, HalfCauchy, HalfNormal, StudentT
from graphnn.distributions.von_mises import VonMises
from graphnn.distributions import kl_more as _kl_more  # (registers the KL rules of the distributions above)
from graphnn.distributions import kl_pairs as _kl_pairs  # (and the further pairs of kl_pairs)
from graphnn.distributions import transforms
from graphnn.distributions.transforms import (
    AbsTransform,
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PowerTransform,
    ReshapeTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
    TransformedDistribution,
)
from graphnn.distributions.constraint_registry import biject_to, transform_to
from graphnn.distributions.exp_family import ExponentialFamily
from graphnn.distributions.inverse_gamma import InverseGamma
from graphnn.distributions.one_hot_categorical import OneHotCategoricalStraightThrough
from graphnn.distributions import utils

__all__ = [
    "AbsTransform",
    "IndependentTransform",
    "LowerCholeskyTransform",
    "ReshapeTransform",
    "SoftplusTransform",
    "biject_to",
    "transform_to",
    "ExponentialFamily",
    "InverseGamma",
    "OneHotCategoricalStraightThrough",
    "utils",
    "PowerTransform",
    "SoftmaxTransform",
    "StickBreakingTransform",
    "Cauchy",
    "Chi2",
    "ContinuousBernoulli",
    "ExpRelaxedCategorical",
    "FisherSnedecor",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "Kumaraswamy",
    "LogisticNormal",
    "LogitRelaxedBernoulli",
    "LowRankMultivariateNormal",
    "MixtureSameFamily",
    "Multinomial",
    "NegativeBinomial",
    "Pareto",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "StudentT",
    "VonMises",
    "Weibull",
    "constraints",
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
