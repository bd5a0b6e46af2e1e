"""torch.distributed.optim.ZeroRedundancyOptimizer: PyTorch shards the optimizer state over the ranks to save
memory; graphnn keeps the whole state on every rank (the same updates, so the same results), and the class takes
and returns what PyTorch's does."""

from __future__ import annotations

from graphnn.optim.optimizer import Optimizer


class ZeroRedundancyOptimizer(Optimizer):
    """optimizer_class(params, **defaults) on every rank; param_groups and state are the inner optimizer's."""

    def __init__(
        self,
        params,
        optimizer_class: type,
        process_group=None,
        parameters_as_bucket_view: bool = False,
        overlap_with_ddp: bool = False,
        **defaults,
    ):
        self.optim = optimizer_class(params, **defaults)
        self.param_groups, self.state, self.defaults = self.optim.param_groups, self.optim.state, self.optim.defaults

    def step(self, closure=None):
        return self.optim.step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optim.zero_grad(set_to_none)

    def add_param_group(self, param_group: dict) -> None:
        self.optim.add_param_group(param_group)

    def state_dict(self) -> dict:
        return self.optim.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.optim.load_state_dict(state_dict)

    def consolidate_state_dict(self, to: int = 0) -> None:
        """Nothing to gather: every rank holds the whole state."""


__all__ = ["ZeroRedundancyOptimizer"]
