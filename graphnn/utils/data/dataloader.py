"""DataLoader: batches of a dataset, read in the main process or in worker processes, with PyTorch's semantics.

With num_workers > 0 each batch is read by one worker (round robin) and the batches come back in the order the
batch sampler gives, exactly as with num_workers=0 (an iterable dataset's workers take turns, each iterating its own
copy). Shuffling draws from graphnn's global generator (graphnn.manual_seed) or the `generator` given."""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import time

from graphnn.utils.generator import draw_seed
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler
from .worker import Done, Failure, Fetcher, get_worker_info, unpack, worker_loop  # noqa: F401 (dataloader.get_worker_info)


class DataLoader:
    """Iterates over `dataset` in batches: `for x, y in DataLoader(ds, batch_size=64, shuffle=True): ...`."""

    def __init__(
        self,
        dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn=None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn=None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ):
        _check_workers(num_workers, timeout, prefetch_factor, persistent_workers)
        iterable = isinstance(dataset, IterableDataset)
        if iterable:
            _check_iterable(shuffle, sampler, batch_sampler)
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if sampler is None:
            sampler = _default_sampler(dataset, iterable, shuffle, generator)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers, self.timeout, self.worker_init_fn = num_workers, timeout, worker_init_fn
        self.prefetch_factor = 2 if num_workers > 0 and prefetch_factor is None else prefetch_factor
        self.persistent_workers, self.multiprocessing_context = persistent_workers, multiprocessing_context
        self.pin_memory, self.pin_memory_device, self.in_order = pin_memory, pin_memory_device, in_order  # (CPU only)
        self.collate_fn = collate_fn or (default_collate if self._auto_collation else default_convert)
        self._iterable = iterable
        self._iterator = None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if not self.persistent_workers:
            return _MultiProcessIter(self)
        if self._iterator is None:
            self._iterator = _MultiProcessIter(self)
        else:
            self._iterator.reset(self)
        return self._iterator

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def _fetcher_args(self) -> tuple:
        return (self.dataset, self._iterable, self._auto_collation, self.collate_fn, self.drop_last, self.batch_size)


def _check_workers(num_workers, timeout, prefetch_factor, persistent_workers) -> None:
    if num_workers < 0:
        raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
    if timeout < 0:
        raise ValueError("timeout option should be non-negative")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError(
            "prefetch_factor option could only be specified in multiprocessing."
            "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
        )
    if prefetch_factor is not None and prefetch_factor < 0:
        raise ValueError("prefetch_factor option should be non-negative")
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")


def _check_iterable(shuffle, sampler, batch_sampler) -> None:
    for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
        if value not in (None, False):
            raise ValueError(
                f"DataLoader with IterableDataset: expected unspecified {name} option, but got {name}={value}"
            )


class _InfiniteIndices:
    """The sampler of an iterable dataset: no indices (each worker's iterator decides what comes next)."""

    def __iter__(self):
        return itertools.repeat(None)


def _default_sampler(dataset, iterable: bool, shuffle, generator):
    if iterable:
        return _InfiniteIndices()
    return RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)


class _SingleProcessIter:
    """Batches read in the main process."""

    def __init__(self, loader: DataLoader):
        draw_seed(loader.generator)  # (as the worker processes' base seed: the same shuffles either way)
        self._indices = iter(loader._index_sampler)
        self._fetcher = Fetcher(*loader._fetcher_args())
        self._length = _length_or_none(loader)

    def __iter__(self):
        return self

    def __next__(self):
        return self._fetcher.fetch(next(self._indices))

    def __len__(self) -> int:
        return self._length


def _length_or_none(loader):
    try:
        return len(loader)
    except TypeError:
        return None


_MISSING = object()


class _MultiProcessIter:
    """Batches read by worker processes, handed out in sampler order: task i goes to the next live worker in turn,
    at most prefetch_factor tasks per worker are outstanding, and results are reordered by task number."""

    def __init__(self, loader: DataLoader):
        ctx = loader.multiprocessing_context
        ctx = multiprocessing.get_context(ctx) if isinstance(ctx, str) or ctx is None else ctx
        self._n, self._timeout = loader.num_workers, loader.timeout
        self._persistent = loader.persistent_workers
        self._results = ctx.Queue()
        self._tasks = [ctx.Queue() for _ in range(self._n)]
        spec = {
            "base_seed": draw_seed(loader.generator),
            "num_workers": self._n,
            "dataset": loader.dataset,
            "worker_init_fn": loader.worker_init_fn,
            "fetcher": loader._fetcher_args(),
        }
        self._workers = []
        for i in range(self._n):
            w = ctx.Process(target=worker_loop, args=(spec, i, self._tasks[i], self._results), daemon=True)
            w.start()
            self._workers.append(w)
        self._closed = False
        self._epoch = -1
        self.reset(loader)

    def reset(self, loader: DataLoader) -> None:
        """Start an epoch: a fresh pass of the sampler; results of an unfinished earlier epoch are dropped."""
        self._epoch += 1
        self._indices = iter(loader._index_sampler)
        self._length = _length_or_none(loader)
        self._sent = self._received = 0
        self._owner: dict = {}  # task number -> worker
        self._ready: dict = {}  # task number -> result that came early
        self._live = [True] * self._n
        self._turn = itertools.cycle(range(self._n))
        self._outstanding = [0] * self._n
        self._limit = max(1, loader.prefetch_factor)
        for _ in range(self._limit * self._n):
            self._send_next()

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return self._length

    def _send_next(self) -> None:
        """Give the next task to the next live worker with room, if any."""
        for _ in range(self._n):
            w = next(self._turn)
            if self._live[w] and self._outstanding[w] < self._limit:
                break
        else:
            return
        try:
            indices = next(self._indices)
        except StopIteration:
            return
        self._tasks[w].put((self._epoch, self._sent, indices))
        self._owner[self._sent] = w
        self._outstanding[w] += 1
        self._sent += 1

    def __next__(self):
        while True:
            if self._received == self._sent:
                self._end_epoch()
                raise StopIteration
            out = self._ready.pop(self._received, _MISSING)
            if out is _MISSING:
                self._wait()
                continue
            w = self._owner.pop(self._received)
            self._received += 1
            self._outstanding[w] -= 1
            if isinstance(out, Done):
                self._live[w] = False
            self._send_next()
            if isinstance(out, Done):
                continue
            if isinstance(out, Failure):
                self._end_epoch()
                out.reraise()
            return unpack(out)

    def _wait(self) -> None:
        """Receive one result of this epoch into _ready; a worker that died or a timeout is an error."""
        start = time.monotonic()
        while True:
            try:
                epoch, idx, out = self._results.get(timeout=0.1)
            except queue.Empty:
                dead = [w.pid for w in self._workers if not w.is_alive()]
                if dead:
                    self._shutdown(force=True)
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) exited unexpectedly")
                if self._timeout and time.monotonic() - start > self._timeout:
                    self._shutdown(force=True)
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
                continue
            if epoch == self._epoch:
                self._ready[idx] = out
                return

    def _end_epoch(self) -> None:
        if not self._persistent:
            self._shutdown()

    def _shutdown(self, force: bool = False) -> None:
        """Stop the workers: asked to finish (each gets None), or with `force` (after a timeout or a dead
        worker, when the others may be stuck in a sample) terminated at once."""
        if self._closed:
            return
        self._closed = True
        for q in self._tasks:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for w in self._workers:
            w.join(timeout=0.0 if force else 5.0)
            if w.is_alive():
                w.terminate()
                w.join(timeout=1.0)
        for q in [*self._tasks, self._results]:
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        try:
            self._shutdown()
        except Exception:
            pass
