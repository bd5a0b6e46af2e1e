"""Tensors in shared memory, for training one model from several processes (torch.multiprocessing, Hogwild).

`t.share_memory_()` moves a tensor's elements into a named POSIX shared-memory segment (the tensor stays the same
object; eager updates write its storage in place, so every process sees them). A child process started with
`fork` inherits the mapping; one started with `spawn` or `forkserver` receives the tensor through
multiprocessing's pickler, which graphnn teaches to send a shared tensor as the segment's name (the child maps the
same memory) rather than a copy of its elements. Ordinary pickling (graphnn.save, copy.deepcopy) still copies.
"""

from __future__ import annotations

import weakref
from multiprocessing import shared_memory
from multiprocessing.reduction import ForkingPickler

import numpy as np

from graphnn.core.tensor import Tensor

_MAPPED: dict = {}  # segment name -> SharedMemory object of this process (kept open while the process lives)


class _Segment:
    """Where a shared tensor's elements are: the segment's name and the array over it. Copies of the tensor
    (copy.deepcopy, pickling to a file) hold their own memory, so the segment does not go with them."""

    __slots__ = ("name", "array")

    def __init__(self, name: str, array: np.ndarray):
        self.name, self.array = name, array

    def __deepcopy__(self, memo):
        return None

    def __reduce__(self):
        return (_nothing, ())


def _nothing():
    return None


def _unlink(name: str) -> None:
    shm = _MAPPED.get(name)
    if shm is not None:
        try:
            shm.unlink()
        except FileNotFoundError:
            pass


def _attach(name: str, shape: tuple, dtype: str) -> np.ndarray:
    """The array of shape/dtype at the start of the segment `name`, mapped into this process."""
    shm = _MAPPED.get(name)
    if shm is None:
        # The creating process owns the segment. Children of a multiprocessing parent share its resource tracker,
        # where attaching registers the name once more (a set: no change); Python 3.13 can skip that.
        try:
            shm = shared_memory.SharedMemory(name=name, track=False)
        except TypeError:
            shm = shared_memory.SharedMemory(name=name)
        _MAPPED[name] = shm
    return np.ndarray(shape, np.dtype(dtype), buffer=shm.buf)


def share_memory_(self: Tensor) -> Tensor:
    """Move this tensor's elements to shared memory (no-op if they are there already); returns the tensor."""
    if is_shared(self):
        return self
    data = self._concrete("share_memory_()")
    shm = shared_memory.SharedMemory(create=True, size=max(1, data.nbytes))
    _MAPPED[shm.name] = shm
    arr = np.ndarray(data.shape, data.dtype, buffer=shm.buf)
    arr[...] = data
    self._data = arr
    self._shm = _Segment(shm.name, arr)
    weakref.finalize(arr, _unlink, shm.name)  # the segment's name goes with the array (at the latest at exit)
    if self.grad_fn is None:
        self._value = None  # recorded graphs read the new storage from now on
    return self


def is_shared(self: Tensor) -> bool:
    """Whether the tensor's elements are in shared memory (share_memory_, or received from another process)."""
    shm = self.__dict__.get("_shm")
    return shm is not None and self._data is not None and np.may_share_memory(self._data, shm.array)


def _rebuild(cls, state: dict, name: str, shape: tuple, dtype: str) -> Tensor:
    t = cls.__new__(cls)
    t.__dict__.update(state)
    arr = _attach(name, shape, dtype)
    t._data, t._shm = arr, _Segment(name, arr)
    return t


def _reduce(t: Tensor):
    """multiprocessing's reduction of a tensor: a shared one by its segment, others as pickle does."""
    if not is_shared(t) or t._data is not t._shm.array:  # (a shared tensor's storage is its whole segment)
        return t.__reduce_ex__(4)
    name, arr = t._shm.name, t._shm.array
    state = {k: v for k, v in t.__dict__.items() if k not in ("_data", "_shm", "_value", "_trace", "_vc")}
    state["_value"], state["_trace"] = None, None
    return _rebuild, (type(t), state, name, tuple(arr.shape), arr.dtype.name)


def register_reductions() -> None:
    """Teach multiprocessing's pickler (used to start spawn/forkserver children and by its queues) to send shared
    tensors by reference, for Tensor and each of its subclasses defined so far."""
    todo, seen = [Tensor], set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        ForkingPickler.register(cls, _reduce)
        todo.extend(cls.__subclasses__())
