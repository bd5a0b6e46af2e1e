"""The compiled-call runtime reads array addresses from the array objects (codegen/runtime.data_pointer): the same
address ctypes reports, for every kind of array a caller may pass."""

import numpy as np

from graphnn.codegen import runtime


def test_data_pointer_agrees_with_ctypes(tmp_path):
    assert runtime._DATA_OFFSET is not None  # (CPython's object header, NumPy's array struct: found on this build)
    mm = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float32, shape=(4, 3))
    arrays = [
        np.zeros((16, 64), np.float32),
        np.arange(10.0)[3:],  # a view at an offset
        np.ones((5, 6))[:, ::2],  # not contiguous
        np.empty(0, np.int64),
        np.zeros((), np.float64),
        np.frombuffer(bytearray(64), np.float32),  # over a foreign buffer
        np.broadcast_to(np.float32(2.0), (3, 3)),
        mm,  # a subclass
        np.asarray(mm),
    ]
    for a in arrays:
        assert runtime.data_pointer(a) == a.ctypes.data, (type(a), a.shape)
