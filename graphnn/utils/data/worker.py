"""DataLoader worker processes: each reads the batches it is sent (or, for an iterable dataset, the next batch of its
own copy of the dataset) and sends them back; the main process puts them back in order (dataloader.py)."""

from __future__ import annotations

import os
import queue
import random
import traceback
from dataclasses import dataclass

import numpy as np

from graphnn.core.tensor import Tensor

_info = None  # this process's WorkerInfo (None in the main process)


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker process knows about itself: get_worker_info() inside a worker (None in the main process)."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info() -> WorkerInfo | None:
    return _info


class Done:
    """An iterable dataset's copy in this worker is exhausted."""


class Failure:
    """An exception raised in a worker, re-raised in the main process with the worker's traceback."""

    def __init__(self, worker_id: int, exc: BaseException):
        self.kind = type(exc)
        self.text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.worker_id = worker_id

    def reraise(self):
        msg = f"Caught {self.kind.__name__} in DataLoader worker process {self.worker_id}.\nOriginal {self.text}"
        try:
            err = self.kind(msg)
        except Exception:
            err = RuntimeError(msg)
        raise err


class _Array:
    """A tensor in transit between processes: its array and whether it required grad."""

    __slots__ = ("data", "requires_grad")

    def __init__(self, data, requires_grad: bool):
        self.data, self.requires_grad = data, requires_grad


def pack(obj):
    """Tensors (inside tuples, lists, dicts, namedtuples) as plain arrays for the trip to the main process."""
    if isinstance(obj, Tensor):
        return _Array(np.asarray(obj._concrete("DataLoader worker")), obj.requires_grad)
    return _map(obj, pack)


def unpack(obj):
    if isinstance(obj, _Array):
        return Tensor._wrap(obj.data, requires_grad=obj.requires_grad)
    return _map(obj, unpack)


def _map(obj, fn):
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(fn(x) for x in obj))
    if type(obj) in (tuple, list):
        return type(obj)(fn(x) for x in obj)
    if type(obj) is dict:
        return {k: fn(v) for k, v in obj.items()}
    return obj


class Fetcher:
    """Reads one batch (or one sample without batching) from a dataset: by indices for a map-style dataset, the
    next items of an iterator for an iterable one."""

    def __init__(self, dataset, iterable: bool, auto_collation: bool, collate_fn, drop_last: bool, batch_size):
        self.dataset, self.iterable, self.auto = dataset, iterable, auto_collation
        self.collate_fn, self.drop_last, self.batch_size = collate_fn, drop_last, batch_size
        self.it = iter(dataset) if iterable else None

    def fetch(self, indices):
        """The collated batch; StopIteration when an iterable dataset has no (full, with drop_last) batch left."""
        if not self.iterable:
            if not self.auto:
                return self.collate_fn(self.dataset[indices])
            many = getattr(self.dataset, "__getitems__", None)
            samples = many(indices) if callable(many) else [self.dataset[i] for i in indices]
            return self.collate_fn(samples)
        if not self.auto:
            return self.collate_fn(next(self.it))
        samples = []
        for x in self.it:
            samples.append(x)
            if len(samples) == self.batch_size:
                break
        if not samples or (self.drop_last and len(samples) < self.batch_size):
            raise StopIteration
        return self.collate_fn(samples)


def worker_loop(spec: dict, worker_id: int, tasks, results) -> None:
    """The body of a worker process: seed, run worker_init_fn, then answer (epoch, index, indices) tasks with
    (epoch, index, packed batch | Done | Failure) until None arrives. A new epoch restarts an iterable dataset."""
    global _info
    from graphnn.core import random as _random

    seed = spec["base_seed"] + worker_id
    _random.manual_seed(seed)
    random.seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, spec["base_seed"] % 2**64]).generate_state(4))  # as PyTorch
    _info = WorkerInfo(worker_id, spec["num_workers"], seed, spec["dataset"])
    init_error = None
    try:
        if spec["worker_init_fn"] is not None:
            spec["worker_init_fn"](worker_id)
    except Exception as e:
        init_error = Failure(worker_id, e)
    fetcher, epoch, done = None, None, False
    parent = os.getppid()
    while True:
        try:
            task = tasks.get(timeout=5.0)
        except queue.Empty:
            if os.getppid() != parent:  # the main process is gone
                break
            continue
        if task is None:
            break
        task_epoch, idx, indices = task
        if init_error is not None:
            results.put((task_epoch, idx, init_error))
            continue
        if task_epoch != epoch:
            epoch, done = task_epoch, False
            try:
                fetcher = Fetcher(*spec["fetcher"])
            except Exception as e:
                results.put((task_epoch, idx, Failure(worker_id, e)))
                continue
        if done:
            results.put((task_epoch, idx, Done()))
            continue
        try:
            out = pack(fetcher.fetch(indices))
        except StopIteration:
            done, out = True, Done()
        except Exception as e:
            out = Failure(worker_id, e)
        results.put((task_epoch, idx, out))
    results.cancel_join_thread()
