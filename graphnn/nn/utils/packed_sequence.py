"""PackedSequence (torch.nn.utils.rnn): variable-length sequences as the valid time steps of a padded batch, packed
time-major, with pack_padded_sequence / pad_packed_sequence.

A pack stores `batch_sizes[t]` (how many sequences are longer than t) as concrete values: they give the data's
shape, so inside graphnn.compile they are constants of the trace (a PackedSequence argument is keyed by them).
Packing and padding are one gather each, differentiable, eager and compiled.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from graphnn.core.tensor import Tensor, TraceError, as_tensor, cat, full


def _ints(t) -> np.ndarray | None:
    """The values of an index tensor (or sequence of ints) as int64, None for None."""
    if t is None:
        return None
    if isinstance(t, Tensor):
        return np.asarray(t._concrete("PackedSequence indices"), dtype=np.int64)
    return np.asarray(t, dtype=np.int64)


def _index(a: np.ndarray) -> Tensor:
    return Tensor._wrap(np.ascontiguousarray(a, dtype=np.int64))


def invert_permutation(permutation):
    """The inverse of a permutation of 0..n-1 (None for None)."""
    if permutation is None:
        return None
    p = _ints(permutation)
    inv = np.empty_like(p)
    inv[p] = np.arange(p.size, dtype=np.int64)
    return _index(inv)


class PackedSequence(namedtuple("PackedSequence_", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """(data, batch_sizes, sorted_indices, unsorted_indices), as PyTorch's: data holds the valid steps of a padded
    batch sorted by decreasing length, time-major ((sum of lengths, *)); build it with pack_padded_sequence or
    pack_sequence. Only `data` is a graph input of a compiled call; the rest are constants of its trace."""

    _pytree_static_fields = ("batch_sizes", "sorted_indices", "unsorted_indices")

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:  # PackedSequence((data, batch_sizes)), PyTorch's older form
            data, batch_sizes = data
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        as_index = lambda t: t if t is None or isinstance(t, Tensor) else _index(_ints(t))  # noqa: E731
        return super().__new__(cls, data, as_index(batch_sizes), as_index(sorted_indices), as_index(unsorted_indices))

    def to(self, *args, **kwargs) -> "PackedSequence":
        """The sequence with data.to(*args, **kwargs) (itself when that changes nothing)."""
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else type(self)(data, self.batch_sizes, *self[2:])

    def cpu(self) -> "PackedSequence":
        return self

    def cuda(self, *args, **kwargs) -> "PackedSequence":
        return self.to("cuda")

    def double(self) -> "PackedSequence":
        return self.to(dtype="float64")

    def float(self) -> "PackedSequence":
        return self.to(dtype="float32")

    def half(self) -> "PackedSequence":
        return self.to(dtype="float16")

    def long(self) -> "PackedSequence":
        return self.to(dtype="int64")

    def int(self) -> "PackedSequence":
        return self.to(dtype="int32")

    @property
    def is_cuda(self) -> bool:
        return False

    def is_pinned(self) -> bool:
        return False


def layout(batch_sizes) -> tuple:
    """For batch sizes (T,): (valid (T, B) bool mask, flat positions in (T*B) of the packed rows, time-major)."""
    bs = _ints(batch_sizes)
    B = int(bs[0]) if bs.size else 0
    valid = np.arange(B)[None, :] < bs[:, None]
    return valid, np.flatnonzero(valid.ravel())


def pack_rows(padded: Tensor, batch_sizes) -> Tensor:
    """The valid rows of a time-major padded batch (T, B, *), packed: ((sum of lengths, *))."""
    _, rows = layout(batch_sizes)
    T, B = padded.shape[0], padded.shape[1]
    return padded.reshape(T * B, *padded.shape[2:]).index_select(0, _index(rows))


def unpack_rows(data: Tensor, batch_sizes, padding_value: float = 0.0, total_length: int | None = None) -> Tensor:
    """The packed rows placed in a time-major padded batch (total_length or T, B, *), padding_value elsewhere."""
    valid, _ = layout(batch_sizes)
    T, B = valid.shape
    steps = T if total_length is None else total_length
    source = np.full((steps, B), data.shape[0], dtype=np.int64)  # the padding row, appended after the data
    source[:T][valid] = np.arange(data.shape[0])
    pad = full((1, *data.shape[1:]), padding_value, dtype=data.dtype_name)
    rows = cat([data, pad], 0).index_select(0, _index(source.ravel()))
    return rows.reshape(steps, B, *data.shape[1:])


def _lengths(lengths) -> np.ndarray:
    if isinstance(lengths, Tensor) and lengths._data is None:
        from graphnn.core.dispatch import located

        raise TraceError(
            located(
                "pack_padded_sequence: lengths is symbolic inside graphnn.compile, but the lengths give the packed "
                "data's shape: for lengths that change at every batch, pack outside the compiled function and pass "
                "the PackedSequence; a list of ints is a constant of the trace (each "
                "new list traces again)"
            )
        )
    arr = np.asarray(lengths._data if isinstance(lengths, Tensor) else lengths).astype(np.int64)  # (as PyTorch)
    if arr.ndim != 1:
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {arr.ndim}D cpu Long tensor")
    return arr


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False, enforce_sorted: bool = True):
    """Pack a padded batch (T, B, *) ((B, T, *) with batch_first) of sequences of the given lengths.

    With enforce_sorted, lengths must be in decreasing order; otherwise the batch is sorted here and
    sorted_indices / unsorted_indices record the permutation."""
    lens = _lengths(lengths)
    if input.ndim < 2:
        raise IndexError(
            f"pack_padded_sequence: input of shape {tuple(input.shape)} has no batch dimension: expected (T, B, *)"
            " or, with batch_first, (B, T, *)"
        )
    if input.numel() == 0:
        raise RuntimeError(f"Cannot pack empty tensors. (pack_padded_sequence: input of shape {tuple(input.shape)})")
    x = input.transpose(0, 1) if batch_first else input
    T, B = x.shape[0], x.shape[1]
    if lens.size != B:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {lens.size} (batch_size={B})")
    sorted_indices = None
    if not enforce_sorted:
        order = np.argsort(-lens, kind="stable")
        sorted_indices, lens = _index(order), lens[order]
        x = x.index_select(1, sorted_indices)
    elif np.any(lens[1:] > lens[:-1]):
        raise RuntimeError(
            "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can pass "
            "`enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this requirement "
            "if you do not need ONNX exportability."
        )
    if lens.size and lens.min() <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"
        )
    if lens.size and lens.max() > T:
        raise RuntimeError(
            f"pack_padded_sequence: Expected every length to be at most the padded sequence length {T} (input of "
            f"shape {tuple(input.shape)}, batch_first={batch_first}), but got a length of {int(lens.max())}"
        )
    batch_sizes = (lens[None, :] > np.arange(int(lens.max()) if lens.size else 0)[:, None]).sum(1)
    data = pack_rows(x[: batch_sizes.size], batch_sizes)
    return PackedSequence(data, _index(batch_sizes), sorted_indices, None)


def pad_packed_sequence(
    sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0, total_length: int | None = None
) -> tuple:
    """(padded batch (T, B, *) or (B, T, *) in the original order, lengths (B,) int64): pack_padded_sequence undone."""
    bs = _ints(sequence.batch_sizes)
    if total_length is not None and total_length < bs.size:
        raise ValueError(
            "Expected total_length to be at least the length of the longest sequence in input, but got "
            f"total_length={total_length} and max sequence length being {bs.size}"
        )
    padded = unpack_rows(sequence.data, bs, padding_value, total_length)
    valid, _ = layout(bs)
    lengths = valid.sum(0)
    if sequence.unsorted_indices is not None:
        unsorted = _ints(sequence.unsorted_indices)
        padded, lengths = padded.index_select(1, _index(unsorted)), lengths[unsorted]
    return (padded.transpose(0, 1) if batch_first else padded), as_tensor(lengths.astype(np.int64))


__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence"]
