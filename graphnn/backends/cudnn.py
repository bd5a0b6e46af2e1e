"""`torch.backends.cudnn`: not available; its flags are plain settings that graphnn's CPU code does not read."""

from __future__ import annotations

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version() -> None:
    return None
