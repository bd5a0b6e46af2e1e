"""AdaptiveLogSoftmaxWithLoss (Grave et al., "Efficient softmax approximation for GPUs"): the frequent classes
(below cutoffs[0]) and one entry per rarer cluster share a head softmax; a class of cluster i has the log
probability of the cluster in the head plus its own in the cluster's softmax, computed from a projection of the
input shrunk by div_value ** (i + 1).

The forward computes every cluster's softmax for every row and selects each row's own (a mask rather than the row
subsets PyTorch gathers): the same values and gradients, with no data-dependent shapes, so it also compiles."""

from __future__ import annotations

from collections import namedtuple

from graphnn.core.tensor import Tensor
from .. import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    def __init__(
        self,
        in_features: int,
        n_classes: int,
        cutoffs,
        div_value: float = 4.0,
        head_bias: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (
            cutoffs != sorted(cutoffs)
            or min(cutoffs) <= 0
            or max(cutoffs) > (n_classes - 1)
            or len(set(cutoffs)) != len(cutoffs)
            or any(int(c) != c for c in cutoffs)
        ):
            raise ValueError(
                "cutoffs should be a sequence of unique, positive integers sorted in an increasing order, where "
                "each value is between 1 and n_classes-1"
            )
        self.in_features, self.n_classes, self.div_value, self.head_bias = in_features, n_classes, div_value, head_bias
        self.cutoffs = cutoffs + [n_classes]
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        kw = {"device": device, "dtype": dtype}
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        tails = []
        for i in range(self.n_clusters):
            hidden = int(in_features // (div_value ** (i + 1)))
            width = self.cutoffs[i + 1] - self.cutoffs[i]
            tails.append(
                Sequential(Linear(in_features, hidden, bias=False, **kw), Linear(hidden, width, bias=False, **kw))
            )
        self.tail = ModuleList(tails)

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for seq in self.tail:
            for layer in seq:
                layer.reset_parameters()

    def _check(self, input: Tensor, target: Tensor | None = None) -> tuple:
        if input.ndim not in (1, 2):
            raise RuntimeError("1D target tensor expects 2D input tensors, but found inputs with size", input.shape)
        if target is not None:
            if input.ndim == 2 and (target.ndim != 1 or target.shape[0] != input.shape[0]):
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input.ndim == 1 and target.ndim != 0:
                raise RuntimeError("0D target tensor expects 1D input tensors, but found inputs with size", input.shape)
        return input.ndim == 1

    def forward(self, input: Tensor, target: Tensor) -> _ASMoutput:
        single = self._check(input, target)
        x = input.unsqueeze(0) if single else input
        y = target.reshape(1) if single else target
        if y._data is not None and y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
            raise RuntimeError(
                f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                f"[{int(y.min())}, {int(y.max())}] were found. "
            )
        head = F.log_softmax(self.head(x), dim=1)
        # each row's entry of the head: its class in the shortlist, else its cluster's slot
        slot = y.clamp(max=self.shortlist_size - 1)
        output = x.new_zeros(y.shape)
        for i in range(self.n_clusters):
            low, high = self.cutoffs[i], self.cutoffs[i + 1]
            mine = (y >= low) & (y < high)
            slot = slot.masked_fill(mine, self.shortlist_size + i)
            local = (y - low).clamp(0, high - low - 1).unsqueeze(1)
            cluster = F.log_softmax(self.tail[i](x), dim=1).gather(1, local).squeeze(1)
            output = output + cluster.masked_fill(~mine, 0.0)
        output = output + head.gather(1, slot.unsqueeze(1)).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output.squeeze(0) if single else output, loss)

    def _full_log_prob(self, x: Tensor, head: Tensor) -> Tensor:
        from graphnn.core.tensor import cat

        parts = [head[:, : self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](x), dim=1)
            parts.append(cluster + head[:, self.shortlist_size + i].unsqueeze(1))
        return cat(parts, 1)

    def log_prob(self, input: Tensor) -> Tensor:
        """Log probabilities of every class, (N, n_classes) (or (n_classes,) for one input)."""
        single = self._check(input)
        x = input.unsqueeze(0) if single else input
        out = self._full_log_prob(x, F.log_softmax(self.head(x), dim=1))
        return out.squeeze(0) if single else out

    def predict(self, input: Tensor) -> Tensor:
        """The most likely class of each input."""
        return self.log_prob(input).argmax(dim=-1)
