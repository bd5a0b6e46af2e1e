"""Chi2(df): the sum of df squared standard normals, Gamma(df / 2, rate 1/2); FisherSnedecor(df1, df2): the ratio
of two independent chi-squares, each divided by its degrees of freedom."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.tensor import Tensor, as_tensor
from graphnn.distributions import constraints
from graphnn.distributions.distribution import Distribution, broadcast_all
from graphnn.distributions.gamma import Gamma, standard_gamma


class Chi2(Gamma):
    arg_constraints = {"df": constraints.positive}
    _expand_names = ("concentration", "rate")

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, df * 0 + 0.5, validate_args=validate_args)

    @property
    def df(self) -> Tensor:
        return self.concentration * 2

    def _shown_params(self) -> dict:
        return {"df": self.df}


class FisherSnedecor(Distribution):
    has_rsample = True
    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive

    def __init__(self, df1, df2, validate_args=None):
        self._init_params(validate_args, df1=df1, df2=df2)

    @property
    def mean(self) -> Tensor:
        d2 = self.df2
        return (d2 / (d2 - 2).clamp(min=1e-30)).masked_fill(d2 <= 2, math.nan)

    @property
    def mode(self) -> Tensor:
        d1, d2 = self.df1, self.df2
        return ((d1 - 2) / d1 * d2 / (d2 + 2)).masked_fill(d1 <= 2, math.nan)

    @property
    def variance(self) -> Tensor:
        d1, d2 = self.df1, self.df2
        safe = d2.clamp(min=4 + 1e-6)
        v = 2 * safe.pow(2) * (d1 + safe - 2) / (d1 * (safe - 2).pow(2) * (safe - 4))
        return v.masked_fill(d2 <= 4, math.nan)

    def rsample(self, sample_shape=()) -> Tensor:
        """(g1 / df1) / (g2 / df2), g_i ~ Gamma(df_i / 2) (the factors 2 cancel); gradient: gamma.standard_gamma."""
        shape = self._extended_shape(sample_shape)
        tiny = float(np.finfo(self.df1.dtype_name).tiny)
        g1 = standard_gamma(self.df1 * 0.5, shape).clamp(min=tiny)
        g2 = standard_gamma(self.df2 * 0.5, shape).clamp(min=tiny)
        return (g1 / self.df1) / (g2 / self.df2)

    def log_prob(self, value) -> Tensor:
        x = as_tensor(value)
        h1, h2 = 0.5 * self.df1, 0.5 * self.df2
        ratio = self.df1 / self.df2
        lbeta = h1.lgamma() + h2.lgamma() - (h1 + h2).lgamma()
        return h1 * ratio.log() + (h1 - 1) * x.log() - (h1 + h2) * (ratio * x).log1p() - lbeta
