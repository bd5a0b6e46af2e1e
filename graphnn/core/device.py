"""Devices as PyTorch code passes them: graphnn runs on the CPU, and names any other device in a clear error."""

from __future__ import annotations

# PyTorch's device types (a string naming another one is an error, as in PyTorch).
_TYPES = (
    "cpu",
    "cuda",
    "ipu",
    "xpu",
    "mkldnn",
    "opengl",
    "opencl",
    "ideep",
    "hip",
    "ve",
    "fpga",
    "maia",
    "xla",
    "lazy",
    "vulkan",
    "mps",
    "meta",
    "hpu",
    "mtia",
    "privateuseone",
)


class device:
    """A device: `device('cpu')`, `device('cuda:1')`, `device('cuda', 1)`; prints and compares like PyTorch's
    (`device(type='cpu')`, str 'cpu'; 'cpu' and 'cpu:0' differ)."""

    __slots__ = ("type", "index")

    def __init__(self, type, index: int | None = None):  # noqa: A002  (PyTorch's argument name)
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        elif isinstance(type, int) and index is None:  # device(0): PyTorch's accelerator index
            type, index = "cuda", type
        elif not isinstance(type, str):
            raise TypeError(f"device() received an invalid combination of arguments: {type!r}")
        else:
            name, sep, num = type.partition(":")
            if sep:
                if index is not None:
                    raise RuntimeError(
                        f"type (string) must not include an index because index was passed explicitly: {type}"
                    )
                if not num.isdigit():
                    raise RuntimeError(f"Invalid device string: '{type}'")
                index = int(num)
            type = name
        if type not in _TYPES:
            raise RuntimeError(f"Expected one of {', '.join(_TYPES)} device type at start of device string: {type}")
        if index is not None and index < 0:
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type, self.index = type, index

    def __repr__(self) -> str:
        return (
            f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"
        )

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (self.type, self.index))

    def __enter__(self) -> "device":
        """`with graphnn.device('cpu'):` makes the CPU the default device of the tensors made inside (it always is);
        any other device is an error."""
        check_device(self, "with device(...)")
        return self

    def __exit__(self, *exc) -> bool:
        return False


CPU = device("cpu")


def check_device(dev, what: str) -> None:
    """`dev` (a device, a string or an index; None: the default) must be the CPU: anything else is a RuntimeError
    naming it, the function and the user's line."""
    if dev is None:
        return
    d = dev if isinstance(dev, device) else device(dev)
    if d.type != "cpu":
        from graphnn.core.dispatch import located

        raise RuntimeError(
            located(
                f"{what}: device '{d}' is not available: graphnn computes on the CPU only (its "
                f"cuda.is_available() is False); use device='cpu'"
            )
        )


def is_device(x) -> bool:
    """Does `x` name a device (a device object, or a string PyTorch reads as one)?"""
    if isinstance(x, device):
        return True
    if isinstance(x, str):
        try:
            device(x)
        except RuntimeError:
            return False
        return True
    return False
