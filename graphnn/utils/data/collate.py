"""default_collate / default_convert: samples to batches, with PyTorch's rules (torch.utils.data.default_collate).

Tensors are stacked along a new first dimension; NumPy arrays and NumPy scalars become tensors (then stacked);
Python floats a float64 tensor, ints an int64 tensor (bools a bool tensor); strings and bytes stay a list;
mappings, namedtuples and sequences are collated field by field (a tuple of fields gives a list, as in PyTorch)."""

from __future__ import annotations

import collections.abc
import copy
import re

import numpy as np

from graphnn.core.tensor import Tensor, as_tensor, stack, tensor

_STR_OR_OBJECT = re.compile("[SaUO]")  # NumPy dtypes that cannot become tensors
ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _stack(batch: list) -> Tensor:
    """torch.stack(batch): without autograd (the usual case of data) one NumPy stack."""
    if any(t.requires_grad or t._data is None for t in batch) or len({t._data.shape for t in batch}) > 1:
        return stack(batch, 0)  # (unequal shapes: stack's error, a RuntimeError naming them)
    return Tensor._wrap(np.stack([t._data for t in batch]))


def _collate_array(batch, *, collate_fn_map=None):
    if _STR_OR_OBJECT.search(batch[0].dtype.str) is not None:
        raise TypeError(ERROR.format(batch[0].dtype))
    return collate([as_tensor(b) for b in batch], collate_fn_map=collate_fn_map)


default_collate_fn_map: dict = {
    Tensor: lambda batch, *, collate_fn_map=None: _stack(list(batch)),
    np.ndarray: _collate_array,
    (np.bool_, np.number, np.object_): lambda batch, *, collate_fn_map=None: as_tensor(np.array(batch)),
    float: lambda batch, *, collate_fn_map=None: tensor(list(batch), dtype="float64"),
    int: lambda batch, *, collate_fn_map=None: tensor(list(batch)),
    str: lambda batch, *, collate_fn_map=None: batch,
    bytes: lambda batch, *, collate_fn_map=None: batch,
}


def _lookup(elem, collate_fn_map: dict):
    fn = collate_fn_map.get(type(elem))
    if fn is not None:
        return fn
    return next((f for kind, f in collate_fn_map.items() if isinstance(elem, kind)), None)


def collate(batch, *, collate_fn_map: dict | None = None):
    """Collate a list of samples with per-type functions (collate_fn_map), recursing into containers."""
    elem = batch[0]
    fn = _lookup(elem, collate_fn_map) if collate_fn_map is not None else None
    if fn is not None:
        return fn(batch, collate_fn_map=collate_fn_map)
    rec = lambda samples: collate(samples, collate_fn_map=collate_fn_map)  # noqa: E731
    if isinstance(elem, collections.abc.Mapping):
        return _same_mapping(elem, {k: rec([d[k] for d in batch]) for k in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(rec(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [rec(s) for s in zip(*batch)]
        return fields if isinstance(elem, tuple) else _same_sequence(elem, fields)
    raise TypeError(ERROR.format(type(elem)))


def _same_mapping(elem, values: dict):
    """A mapping of elem's type holding values (a plain dict when that type cannot be built so)."""
    try:
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(values)
            return clone
        return type(elem)(values)
    except TypeError:
        return values


def _same_sequence(elem, items: list):
    try:
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, v in enumerate(items):
                clone[i] = v
            return clone
        return type(elem)(items)
    except TypeError:
        return items


def default_collate(batch):
    """Samples to a batch with PyTorch's default rules (see the module docstring)."""
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """Without batching (batch_size=None): NumPy arrays and scalars become tensors, inside containers too."""
    if isinstance(data, Tensor):
        return data
    kind = type(data)
    if kind.__module__ == "numpy" and kind.__name__ not in ("str_", "bytes_"):
        if isinstance(data, np.ndarray) and _STR_OR_OBJECT.search(data.dtype.str) is not None:
            return data
        return as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return _same_mapping(data, {k: default_convert(data[k]) for k in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return kind(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _same_sequence(data, [default_convert(d) for d in data])
    return data
