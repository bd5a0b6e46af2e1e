"""`torch.cuda.amp`: PyTorch's deprecated spellings of `torch.amp.autocast('cuda')` and `GradScaler('cuda')`.

Without CUDA both disable themselves with a warning, as in PyTorch, so `GradScaler(enabled=False)` (or enabled,
when CUDA is absent) passes scale/unscale_/step/update through."""

from __future__ import annotations

from graphnn.amp.deprecated import device_spellings
from graphnn.core.dtypes import float16

autocast, GradScaler = device_spellings("cuda", float16)
