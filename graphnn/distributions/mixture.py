"""MixtureSameFamily(mixture_distribution, component_distribution): a Categorical over K components picks one of
the component distribution's rightmost batch entries (all of one family); log p(x) = logsumexp_k(log w_k +
log p_k(x))."""

from __future__ import annotations


from graphnn.core.tensor import Tensor, as_tensor
from graphnn.distributions import constraints
from graphnn.distributions.categorical import Categorical
from graphnn.distributions.distribution import Distribution


class MixtureSameFamily(Distribution):
    has_rsample = False
    arg_constraints: dict = {}

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError(" The Mixture distribution needs to be an  instance of torch.distributions.Categorical")
        if not isinstance(component_distribution, Distribution):
            raise ValueError("The Component distribution need to be an instance of torch.distributions.Distribution")
        self._mixture_distribution, self._component_distribution = mixture_distribution, component_distribution
        mix_batch = tuple(mixture_distribution.batch_shape)
        comp_batch = tuple(component_distribution.batch_shape)[:-1]
        for a, b in zip(reversed(mix_batch), reversed(comp_batch)):
            if a != 1 and b != 1 and a != b:
                raise ValueError(
                    f"`mixture_distribution.batch_shape` ({mix_batch}) is not compatible with "
                    f"`component_distribution.batch_shape`({comp_batch})"
                )
        k = mixture_distribution.logits.shape[-1]
        if k != component_distribution.batch_shape[-1]:
            raise ValueError(
                f"`mixture_distribution component` ({k}) does not equal "
                f"`component_distribution.batch_shape[-1]` ({component_distribution.batch_shape[-1]})"
            )
        self._num_component = k
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(comp_batch, tuple(component_distribution.event_shape), validate_args)

    @property
    def mixture_distribution(self):
        return self._mixture_distribution

    @property
    def component_distribution(self):
        return self._component_distribution

    @constraints.dependent_property
    def support(self):
        return self._component_distribution.support

    def _expand_children(self, new, batch_shape: tuple) -> None:
        new._component_distribution = self._component_distribution.expand(batch_shape + (self._num_component,))
        new._mixture_distribution = self._mixture_distribution.expand(batch_shape)

    def _weights(self) -> Tensor:
        """The mixing probabilities, shaped (batch, K) followed by ones for the event dimensions."""
        p = self._mixture_distribution.probs
        for _ in range(self._event_ndims):
            p = p.unsqueeze(-1)
        return p

    @property
    def mean(self) -> Tensor:
        return (self._weights() * self._component_distribution.mean).sum(-1 - self._event_ndims)

    @property
    def variance(self) -> Tensor:
        """The law of total variance: E[Var(x | k)] + Var(E[x | k])."""
        w, dim = self._weights(), -1 - self._event_ndims
        comp_mean = self._component_distribution.mean
        mean = (w * comp_mean).sum(dim, keepdim=True)
        within = (w * self._component_distribution.variance).sum(dim)
        between = (w * (comp_mean - mean).pow(2)).sum(dim)
        return within + between

    def _pad(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1 - self._event_ndims)

    def cdf(self, value) -> Tensor:
        x = self._pad(as_tensor(value))
        return (self._component_distribution.cdf(x) * self._mixture_distribution.probs).sum(-1)

    def log_prob(self, value) -> Tensor:
        x = as_tensor(value)
        comp = self._component_distribution.log_prob(self._pad(x))  # (..., batch, K)
        log_w = self._mixture_distribution.logits.log_softmax(-1)
        return (comp + log_w).logsumexp(-1)

    def sample(self, sample_shape=()) -> Tensor:
        """A component index per draw (the Categorical), then that component's draw (all K drawn, one kept)."""
        from graphnn.core.grad_mode import no_grad

        with no_grad():
            shape = tuple(sample_shape)
            idx = self._mixture_distribution.sample(shape)  # sample_shape + batch
            draws = self._component_distribution.sample(shape)  # sample_shape + batch + (K,) + event
            event = tuple(self.event_shape)
            index = idx.reshape(*(tuple(idx.shape) + (1,) + (1,) * len(event)))
            index = index.expand(*(tuple(draws.shape[: len(tuple(idx.shape))]) + (1,) + event))
            return draws.gather(len(tuple(idx.shape)), index).squeeze(len(tuple(idx.shape)))

    def __repr__(self) -> str:
        return f"MixtureSameFamily(\n  {self._mixture_distribution!r},\n  {self._component_distribution!r})"
