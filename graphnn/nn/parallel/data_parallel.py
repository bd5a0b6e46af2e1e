"""`torch.nn.parallel` on the CPU: with no GPU to spread a batch over, DataParallel and data_parallel run the
module itself (as PyTorch's do when no device is available)."""

from __future__ import annotations

from ..modules.module import Module


class DataParallel(Module):
    """Holds `module` (state_dict keys `module.*`, as PyTorch's) and calls it."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        self.module = module
        self.device_ids, self.output_device, self.dim = [], output_device, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim: int = 0, module_kwargs=None):
    """module(*inputs, **module_kwargs) (a tuple of inputs, or one input)."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    return module(*inputs, **(module_kwargs or {}))
