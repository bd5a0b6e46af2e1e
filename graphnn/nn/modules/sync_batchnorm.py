"""SyncBatchNorm: BatchNorm whose training statistics are taken over the batches of every rank (two all-reduces of
per-channel sums, differentiable: the backward all-reduces the gradient sums too) when graphnn.distributed is
initialized with more than one process; otherwise it is BatchNorm."""

from __future__ import annotations

from graphnn import distributed as dist
from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import as_tensor
from .regularization import _BatchNorm


class SyncBatchNorm(_BatchNorm):
    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group=None,
        device=None,
        dtype=None,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def forward(self, input):
        if input.ndim < 2:
            raise ValueError(f"expected at least 2D input (got {input.ndim}D input)")
        synced = self.training and dist.is_initialized() and dist.get_world_size(self.process_group) > 1
        return self._synced(input) if synced else self._local(input)

    def _synced(self, input):
        c = input.shape[1]
        axes = (0,) + tuple(range(2, input.ndim))
        shape = (1, c) + (1,) * (input.ndim - 2)
        local_n = input.numel() // c
        count = as_tensor([float(local_n)]).type_as_dtype(input.dtype_name)
        sums = dist.reduced([input.sum(axes), count], "sum", f"SyncBatchNorm statistics of {c} channels")
        n = sums[c:]
        mean = (sums[:c] / n).reshape(shape)
        centred = input - mean
        var = (dist.reduced([(centred * centred).sum(axes)], "sum", "SyncBatchNorm variance") / n).reshape(shape)
        if self.running_mean is not None:
            with no_grad():
                if self.num_batches_tracked is not None:
                    self.num_batches_tracked._assign(self.num_batches_tracked + 1)
                factor = self.momentum
                if factor is None:
                    factor = (1.0 / self.num_batches_tracked.double()).type_as_dtype(self.running_mean.dtype_name)
                unbiased = var.detach().reshape(-1) * n.detach() / (n.detach() - 1.0)
                self.running_mean._assign(self.running_mean * (1 - factor) + mean.detach().reshape(-1) * factor)
                self.running_var._assign(self.running_var * (1 - factor) + unbiased * factor)
        out = centred / (var + self.eps).sqrt()
        if self.weight is not None:
            out = out * self.weight.reshape(shape)
        if self.bias is not None:
            out = out + self.bias.reshape(shape)
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """`module` with every BatchNorm*d (itself or a descendant) replaced by a SyncBatchNorm holding the same
        parameters, buffers and training mode."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group)  # fmt: skip
            for name, p in module._parameters.items():
                out._parameters[name] = p
            for name, b in module._buffers.items():
                out._buffers[name] = b
            out.train(module.training)
            if hasattr(module, "qconfig"):
                out.qconfig = module.qconfig
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
