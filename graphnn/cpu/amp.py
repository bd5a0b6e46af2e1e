"""`torch.cpu.amp`: PyTorch's deprecated spellings of `torch.amp.autocast('cpu')` and `GradScaler('cpu')`."""

from __future__ import annotations

from graphnn.amp.deprecated import device_spellings
from graphnn.core.dtypes import bfloat16

autocast, GradScaler = device_spellings("cpu", bfloat16)
