"""DistributedDataParallel: one model replica per process, gradients averaged across the processes in backward().

When it wraps a module, rank 0's parameters and buffers are copied to every rank. After each backward() that
reached the module's parameters, their gradients are averaged across the ranks, bucket by bucket: the parameters
in reverse order (about the order backward computes their gradients), a first bucket of 1 MiB, then buckets of
bucket_cap_mb (25 MiB), each one `allreduce` of the gradients pre-divided by the world size. Eagerly the buckets go
through MPI at the end of backward(); inside graphnn.compile they become ops of the compiled step, which starts a
bucket's exchange right after its last gradient is computed and waits for it where the optimizer first reads it,
so the exchange overlaps the rest of the backward. Backward passes inside no_sync() accumulate gradients locally;
the first backward after it averages the accumulated gradients (as PyTorch's; a compiled step is traced once with
and once without the exchange).
"""

from __future__ import annotations

import contextlib
import hashlib

from graphnn import autograd
from graphnn import distributed as dist
from graphnn.compiler import tracer as _tracer
from graphnn.core.dispatch import located
from graphnn.core.grad_mode import no_grad
from ..modules.module import Module

FIRST_BUCKET_BYTES = 1 << 20  # PyTorch's first bucket (dist._DEFAULT_FIRST_BUCKET_BYTES)
DEFAULT_BUCKET_MB = 25


def assign_buckets(named_params: list, cap_bytes: int, first_bytes: int = FIRST_BUCKET_BYTES) -> list:
    """[(name, parameter)] split into buckets: reverse order, one dtype per bucket, a bucket closed once it holds
    at least its cap (first_bytes for the first one, cap_bytes after)."""
    buckets, cur, size = [], [], 0
    for name, p in reversed(named_params):
        cap = first_bytes if not buckets else cap_bytes
        if cur and (size >= cap or p.dtype_name != cur[0][1].dtype_name):
            buckets.append(cur)
            cur, size = [], 0
        cur.append((name, p))
        size += p.numel() * p.element_size()
    if cur:
        buckets.append(cur)
    return buckets


class DistributedDataParallel(Module):
    """Data-parallel training of `module` across the processes of the default process group (torch's signature;
    device_ids, output_device, dim, check_reduction, gradient_as_bucket_view and static_graph are accepted and have
    no effect on the CPU)."""

    def __init__(
        self,
        module,
        device_ids=None,
        output_device=None,
        dim: int = 0,
        broadcast_buffers: bool | None = True,
        init_sync: bool = True,
        process_group=None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
        **kwargs,
    ):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a graphnn.nn.Module, got {type(module).__name__}")
        if _tracer.current() is not None:
            raise RuntimeError(located("DistributedDataParallel(...) cannot be created inside graphnn.compile"))
        self._group = dist._default(process_group, "DistributedDataParallel")
        self.module = module
        self.broadcast_buffers = broadcast_buffers is not False
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self.bucket_bytes_cap = int((DEFAULT_BUCKET_MB if bucket_cap_mb is None else bucket_cap_mb) * (1 << 20))
        self._grad_params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._buckets = assign_buckets(self._grad_params, self.bucket_bytes_cap, FIRST_BUCKET_BYTES)
        shapes = [f"{n} {dist._type(p)}" for n, p in module.named_parameters()]
        dist.agree(self._group, "DistributedDataParallel: the models' parameters", shapes)
        if init_sync:
            with no_grad():
                dist.broadcast_coalesced(
                    list(module.parameters()) + list(module.buffers()), 0, "DistributedDataParallel: broadcast"
                )
        autograd.add_backward_observer(self._after_backward)

    def forward(self, *inputs, **kwargs):
        tr = _tracer.current()
        if tr is not None and id(self) not in tr.__dict__.get("no_sync", ()):
            # a compiled step traced with (or without) the gradient exchange is reused only so (unless the step
            # itself enters no_sync(): then the trace decides the flag)
            tr.guard(lambda m=self: m.require_backward_grad_sync, self.require_backward_grad_sync)
        buffers = [b for b in self.module.buffers() if b is not None]
        if self.broadcast_buffers and buffers and self._group.size > 1:
            with no_grad():
                dist.broadcast_coalesced(buffers, 0, "DistributedDataParallel: buffers")
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes run inside accumulate gradients locally, without exchanging them."""
        old = self.require_backward_grad_sync
        tr = _tracer.current()
        if tr is not None:  # (see forward)
            tr.__dict__.setdefault("no_sync", set()).add(id(self))
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    # -- the gradient exchange --------------------------------------------------------------------------------
    def _after_backward(self, tensors: list) -> None:
        if not self.require_backward_grad_sync:
            return
        mine = {id(p) for _, p in self._grad_params}
        if any(id(t) in mine for t in tensors):
            self.reduce_gradients()

    def _bucket_label(self, i: int, bucket: list) -> str:
        names = ", ".join(n for n, _ in bucket)
        return f"DistributedDataParallel gradient bucket {i} ({names})"

    def reduce_gradients(self) -> None:
        """Average every parameter's .grad across the ranks (what backward() does; call it after gradients were
        computed some other way)."""
        missing = [n for n, p in self._grad_params if p.grad is None]
        if missing and not self.find_unused_parameters:
            raise RuntimeError(
                located(
                    "DistributedDataParallel: these parameters received no gradient in this backward: "
                    f"{', '.join(missing)}; they were not used to compute the loss. Pass find_unused_parameters=True "
                    "(they then take the average of the others' gradients; one no rank used keeps .grad None) or freeze "
                    "them with requires_grad_(False)",
                    "",
                )
            )
        eager = _tracer.current() is None
        if eager and self._group.size > 1:
            digest = hashlib.sha256(repr([[(n, dist._type(p)) for n, p in b] for b in self._buckets]).encode())
            dist.agree(self._group, "DistributedDataParallel: the gradient buckets", digest.hexdigest()[:16])
        from graphnn.core.tensor import tensor, zeros_like

        unused = set()
        if eager and self.find_unused_parameters:
            # as PyTorch: a parameter no rank used keeps .grad None (its optimizer then leaves it alone)
            with no_grad():
                flags = tensor([0.0 if p.grad is None else 1.0 for _, p in self._grad_params], dtype="float64")
                used = dist.reduced([flags], "max", "DistributedDataParallel: the parameters used").numpy()
            unused = {id(p) for (_, p), u in zip(self._grad_params, used) if u == 0}
        with no_grad():
            for i, bucket in enumerate(self._buckets):
                grads = [p.grad if p.grad is not None else zeros_like(p) for _, p in bucket]
                flat = dist.reduced(grads, "avg", self._bucket_label(i, bucket))
                for (_, p), (a, b) in zip(bucket, dist._offsets(grads)):
                    if id(p) in unused:
                        continue
                    piece = flat[a:b].reshape(tuple(p.shape))
                    if eager and p.grad is not None:
                        p.grad._assign(piece)
                    else:
                        # (a value of its own, not a view of the bucket: an in-place op on one gradient, as
                        # clip_grad_norm_'s, leaves the others as they are)
                        p.grad = piece.clone() if not eager else piece
