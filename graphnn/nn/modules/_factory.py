"""The device= and dtype= keyword arguments of module constructors: graphnn computes on the CPU only."""

from __future__ import annotations

from graphnn.core.dtypes import to_dtype


def is_cpu(device) -> bool:
    """None, 'cpu', 'cpu:N', or a device object whose type is 'cpu'."""
    if device is None:
        return True
    kind = getattr(device, "type", device)
    return isinstance(kind, str) and kind.split(":")[0].strip() == "cpu"


def check_device(device, who: str) -> None:
    """A clear error for any device but the CPU."""
    if not is_cpu(device):
        raise RuntimeError(
            f"{who}: graphnn runs on the CPU only, device={device!r} is not available (use device='cpu' or none)"
        )


def factory_dtype(device, dtype, who: str) -> str | None:
    """The parameter dtype a constructor's device= / dtype= arguments ask for (None: the default, float32)."""
    check_device(device, who)
    return None if dtype is None else to_dtype(dtype)
