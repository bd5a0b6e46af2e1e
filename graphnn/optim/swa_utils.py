"""Stochastic weight averaging and exponential moving averages of a model's weights (PyTorch's swa_utils):
AveragedModel keeps a copy of a model whose parameters (and buffers, with use_buffers) are a running average of the
model's, SWALR anneals each group's lr to a constant swa_lr, update_bn recomputes BatchNorm statistics for the
averaged weights."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor
from graphnn.nn.modules.module import Module
from graphnn.nn.modules.regularization import _BatchNorm
from .lr_scheduler import LRScheduler, _per_group

__all__ = [
    "AveragedModel",
    "SWALR",
    "update_bn",
    "get_ema_avg_fn",
    "get_swa_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_multi_avg_fn",
]


def get_ema_multi_avg_fn(decay: float = 0.999):
    """An AveragedModel multi_avg_fn: every averaged tensor moves (1 - decay) of the way to the model's."""

    def ema_update(ema_param_list, current_param_list, _num_averaged) -> None:
        with no_grad():
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                p_ema.copy_(p_ema * decay + p_model * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn():
    """An AveragedModel multi_avg_fn: the equal-weight running mean over the num_averaged + 1 models seen."""

    def swa_update(averaged_param_list, current_param_list, num_averaged) -> None:
        with no_grad():  # (num_averaged + 1 as a tensor when it is one: no value read, so one compiled trace)
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                p_avg.copy_(p_avg + (p_model - p_avg) / (num_averaged + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999):
    """An AveragedModel avg_fn: decay * averaged + (1 - decay) * current."""

    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    """An AveragedModel avg_fn: the running mean averaged + (current - averaged) / (num_averaged + 1)."""

    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A deep copy of `model` (as `.module`) whose parameters update_parameters(model) averages with the model's:
    the first call copies them, later ones apply avg_fn per tensor or multi_avg_fn per dtype group (default: the
    equal-weight mean); `n_averaged` (an int64 buffer) counts the calls. Buffers are copied from the model, or
    averaged too with use_buffers=True."""

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None, use_buffers: bool = False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", Tensor._wrap(np.zeros((), "int64")))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _averaged(self, model: Module) -> tuple:
        if self.use_buffers:
            return (
                list(itertools.chain(self.module.parameters(), self.module.buffers())),
                list(itertools.chain(model.parameters(), model.buffers())),
            )
        return list(self.module.parameters()), list(model.parameters())

    def update_parameters(self, model: Module) -> None:
        mine, theirs = self._averaged(model)
        mine = [p.detach() for p in mine]
        theirs = [p.detach() for p in theirs]
        with no_grad():
            if _tracer.current() is not None:
                # inside graphnn.compile: the average, then the first call's copy chosen in the graph by
                # n_averaged == 0 (reading n_averaged's value would make the trace hold for one count only)
                self._average(mine, theirs)
                first = self.n_averaged == 0
                for a, m in zip(mine, theirs):
                    a.copy_(m.where(first, a))
            elif int(self.n_averaged.item()) == 0:
                for a, m in zip(mine, theirs):
                    a.copy_(m)
            else:
                self._average(mine, theirs)
            if not self.use_buffers:  # the buffers follow the model's
                for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                    b_avg.detach().copy_(b_model.detach())
            self.n_averaged.copy_(self.n_averaged + 1)

    def _average(self, mine: list, theirs: list) -> None:
        """Move the averaged tensors towards the model's: avg_fn per tensor, else multi_avg_fn per dtype group."""
        if self.avg_fn is not None:
            for a, m in zip(mine, theirs):
                a.copy_(self.avg_fn(a, m, self.n_averaged))
            return
        fn = self.multi_avg_fn if self.multi_avg_fn is not None else get_swa_multi_avg_fn()
        groups: dict = {}
        for a, m in zip(mine, theirs):
            groups.setdefault(a.dtype_name, ([], []))
            groups[a.dtype_name][0].append(a)
            groups[a.dtype_name][1].append(m)
        for avg_list, model_list in groups.values():
            fn(avg_list, model_list, self.n_averaged)


def update_bn(loader, model: Module, device=None) -> None:
    """One pass over `loader` (batches, or tuples/lists whose first element is the input) in training mode to
    recompute every BatchNorm's running statistics as a cumulative mean (momentum None); momenta and the training
    mode are restored."""
    momenta = {}
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
            momenta[m] = m.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for m in momenta:
        m.momentum = None
    with no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            if device is not None:
                batch = batch.to(device)
            model(batch)
    for m, momentum in momenta.items():
        m.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneals each group's lr to its swa_lr over anneal_epochs steps (cos or linear), then keeps it there."""

    def __init__(self, optimizer, swa_lr, anneal_epochs: int = 10, anneal_strategy: str = "cos", last_epoch: int = -1):
        for lr, group in zip(_per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must by one of 'cos' or 'linear', instead got {anneal_strategy}")
        self.anneal_func = _cosine_anneal if anneal_strategy == "cos" else _linear_anneal
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        # the lr the annealing started from is recovered from the current one, so other schedulers may move it
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        groups = self.optimizer.param_groups
        prev = [_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev)]


def _linear_anneal(t: float) -> float:
    return t


def _cosine_anneal(t: float) -> float:
    return (1 - math.cos(math.pi * t)) / 2


def _initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
    return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)
