"""torch.torch_version: TorchVersion, a version string that compares with other version strings and with tuples of
numbers by its release part (`torch.__version__ >= (1, 10)`, `torch.__version__ < "2.1"`)."""

from __future__ import annotations

import re


def _release(v) -> tuple:
    """The release numbers of a version string ("2.13.0+graphnn.0.1.0" -> (2, 13)) or tuple, zeros dropped at the
    end so that (2, 1) and "2.1.0" compare equal."""
    if isinstance(v, tuple):
        parts = [int(x) for x in v]
    else:
        m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(v))
        if m is None:
            raise ValueError(f"not a version: {v!r}")
        parts = [int(x) for x in m.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


class TorchVersion(str):
    """Equal to the same string or to a tuple of its release numbers; ordered by the release numbers alone (the
    local part "+graphnn.0.1.0" does not count: "2.13.0+graphnn.0.1.0" >= "2.13" holds)."""

    def __eq__(self, other) -> bool:
        if isinstance(other, tuple):
            return _release(self) == _release(other)
        return str.__eq__(self, other)

    def __ne__(self, other) -> bool:
        return not self == other

    def _cmp(self, other, op):
        if isinstance(other, (str, tuple)):
            return op(_release(self), _release(other))
        return NotImplemented

    def __lt__(self, other) -> bool:
        return self._cmp(other, lambda a, b: a < b)

    def __le__(self, other) -> bool:
        return self._cmp(other, lambda a, b: a <= b)

    def __gt__(self, other) -> bool:
        return self._cmp(other, lambda a, b: a > b)

    def __ge__(self, other) -> bool:
        return self._cmp(other, lambda a, b: a >= b)

    __hash__ = str.__hash__


def __getattr__(name: str):
    if name == "__version__":
        from graphnn.version import __version__

        return __version__
    raise AttributeError(f"module 'graphnn.torch_version' has no attribute {name!r}")
