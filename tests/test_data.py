"""graphnn.utils.data against torch.utils.data: batches in sequential order, drop_last, batch sizes and lengths,
the structure default_collate builds, samplers, random_split, Subset/ConcatDataset, argument errors; shuffling is
deterministic under graphnn.manual_seed or a graphnn.Generator and covers every index (graphnn's random stream
differs from PyTorch's, so shuffled orders are checked by their properties); worker processes give the same batches
in the same order as the main process."""

import collections
import os
import time

import numpy as np
import pytest

import graphnn
from graphnn.utils import data as gdata

Point = collections.namedtuple("Point", "x y")


def _np(x):
    if isinstance(x, graphnn.Tensor):
        return x.numpy()
    if isinstance(x, int):  # (batch_size=None: an item of an iterable dataset as it is)
        return np.array(x)
    return x.detach().numpy()


TORCH_DTYPES = {"float32": "float32", "float64": "float64", "int64": "int64", "bool": "bool"}


def _same(g, t, path="batch"):
    """graphnn's collated batch has the structure, types, dtypes and values of PyTorch's."""
    if isinstance(g, graphnn.Tensor):
        assert type(t).__name__ == "Tensor", f"{path}: {type(t)}"
        assert g.dtype_name == str(t.dtype).replace("torch.", ""), f"{path}: {g.dtype_name} vs {t.dtype}"
        np.testing.assert_array_equal(_np(g), _np(t), err_msg=path)
        return
    assert type(g) is type(t) or (type(g).__name__ == type(t).__name__ == "Point"), f"{path}: {type(g)} vs {type(t)}"
    if isinstance(g, dict):
        assert list(g) == list(t), path
        for k in g:
            _same(g[k], t[k], f"{path}[{k!r}]")
    elif isinstance(g, (list, tuple)):
        assert len(g) == len(t), path
        for i, (a, b) in enumerate(zip(g, t)):
            _same(a, b, f"{path}[{i}]")
    else:
        assert g == t, path


class _Rows(gdata.Dataset):
    """Samples of many kinds, the same in both libraries (lib builds the tensors)."""

    def __init__(self, lib, n=7):
        self.lib, self.n = lib, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        lib = self.lib
        return {
            "t": lib.arange(3).float() + i,
            "d": lib.tensor([i * 0.5], dtype=lib.float64),
            "arr": np.full((2,), i, np.float32),
            "scalar": np.float64(i) / 3,
            "f": i / 4,
            "i": i,
            "b": i % 2 == 0,
            "s": f"s{i}",
            "tup": (i, lib.tensor(i)),
            "lst": [np.int64(i), [i * 1.5, "x"]],
            "nt": Point(i, lib.tensor([True, i > 2])),
        }


@pytest.mark.parametrize("batch_size,drop_last", [(1, False), (3, False), (3, True), (7, False), (10, True)])
def test_sequential_batches_and_collate_match_torch(torch, batch_size, drop_last):
    g = gdata.DataLoader(_Rows(graphnn), batch_size=batch_size, drop_last=drop_last)
    t = torch.utils.data.DataLoader(_Rows(torch), batch_size=batch_size, drop_last=drop_last)
    assert len(g) == len(t)
    gb, tb = list(g), list(t)
    assert len(gb) == len(tb)
    for a, b in zip(gb, tb):
        _same(a, b)


def test_tensor_dataset_subset_concat_match_torch(torch):
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    y = np.arange(12)
    gds = gdata.TensorDataset(graphnn.tensor(x), graphnn.tensor(y))
    tds = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    gcat = gdata.ConcatDataset([gdata.Subset(gds, [5, 1, 7]), gds])
    tcat = torch.utils.data.ConcatDataset([torch.utils.data.Subset(tds, [5, 1, 7]), tds])
    assert len(gcat) == len(tcat) == 15 and gcat.cumulative_sizes == tcat.cumulative_sizes
    for i in (0, 2, 3, 14, -1, -15):
        _same(list(gcat[i]), list(tcat[i]), f"item {i}")
    for gb, tb in zip(gdata.DataLoader(gcat, batch_size=4), torch.utils.data.DataLoader(tcat, batch_size=4)):
        _same(gb, tb)
    with pytest.raises(AssertionError, match="Size mismatch"):  # (as PyTorch: an assert)
        gdata.TensorDataset(graphnn.zeros(3), graphnn.zeros(4))


def test_batch_size_none_converts_samples(torch):
    g = list(gdata.DataLoader(_Rows(graphnn, 3), batch_size=None))
    t = list(torch.utils.data.DataLoader(_Rows(torch, 3), batch_size=None))
    for a, b in zip(g, t):
        _same(a, b)


def test_default_collate_errors_match_torch(torch):
    for bad, kind in (([[1, 2], [3]], RuntimeError), ([None, None], TypeError), ([object()], TypeError)):
        with pytest.raises(kind) as gerr:
            gdata.default_collate(bad)
        with pytest.raises(kind) as terr:
            torch.utils.data.default_collate(bad)
        assert str(gerr.value).split("<")[0] == str(terr.value).split("<")[0]
    with pytest.raises(TypeError, match="numpy arrays"):
        gdata.default_collate([np.array(["a"]), np.array(["b"])])


def test_custom_sampler_batch_sampler_and_collate_fn_match_torch(torch):
    x = np.arange(10, dtype=np.float32)
    gds, tds = gdata.TensorDataset(graphnn.tensor(x)), torch.utils.data.TensorDataset(torch.tensor(x))
    order = [9, 0, 8, 1, 7, 2, 6]
    for kw in (
        dict(sampler=order, batch_size=3),
        dict(batch_sampler=[[1, 2], [9], [0, 5, 4]]),
        dict(batch_size=4, collate_fn=lambda b: [float(s[0]) for s in b]),
    ):
        g, t = list(gdata.DataLoader(gds, **kw)), list(torch.utils.data.DataLoader(tds, **kw))
        assert len(g) == len(t)
        for a, b in zip(g, t):
            _same(a, b)


@pytest.mark.parametrize(
    "kw",
    [
        dict(batch_sampler=[[0]], batch_size=2),
        dict(batch_sampler=[[0]], shuffle=True),
        dict(sampler=[0, 1], shuffle=True),
        dict(batch_size=None, drop_last=True),
        dict(num_workers=-1),
        dict(persistent_workers=True),
        dict(prefetch_factor=2),
    ],
    ids=lambda kw: ",".join(kw),
)
def test_argument_errors_match_torch(torch, kw):
    with pytest.raises(ValueError) as gerr:
        gdata.DataLoader(gdata.TensorDataset(graphnn.zeros(4)), **kw)
    with pytest.raises(ValueError) as terr:
        torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(4)), **kw)
    assert str(gerr.value).split(";")[0] == str(terr.value).split(";")[0]


def _stream(data):
    """A class of iterable datasets of the library whose `data` module is given: 0..n-1, split between worker
    processes by worker id (as PyTorch's documentation shows)."""

    class Stream(data.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            info = data.get_worker_info()
            if info is None:
                return iter(range(self.n))
            return iter(range(info.id, self.n, info.num_workers))

        def __len__(self):
            return self.n

    return Stream


_Stream = _stream(gdata)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("batch_size,drop_last", [(2, False), (3, True), (None, False)])
def test_iterable_dataset_matches_torch(torch, workers, batch_size, drop_last):
    """Iterable datasets: batches of consecutive items; with workers, each iterates its own copy and the batches
    come from the workers in turn, as PyTorch's do."""
    kw = dict(batch_size=batch_size, drop_last=drop_last, num_workers=workers)
    g = [_np(b).tolist() for b in gdata.DataLoader(_Stream(11), **kw)]
    t = [_np(b).tolist() for b in torch.utils.data.DataLoader(_stream(torch.utils.data)(11), **kw)]
    assert g == t
    if batch_size is not None and workers == 0:
        assert len(gdata.DataLoader(_Stream(11), **kw)) == len(t)
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        gdata.DataLoader(_Stream(3), shuffle=True)


def _epoch(loader) -> list:
    return [i for b in loader for i in _np(b[0]).tolist()]


def test_shuffle_is_a_seeded_permutation():
    ds = gdata.TensorDataset(graphnn.arange(50))
    loader = gdata.DataLoader(ds, batch_size=8, shuffle=True)
    graphnn.manual_seed(3)
    first, second = _epoch(loader), _epoch(loader)
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second and first != list(range(50))  # a new order each epoch
    graphnn.manual_seed(3)
    assert _epoch(loader) == first and _epoch(loader) == second
    graphnn.manual_seed(4)
    assert _epoch(loader) != first
    # a generator: independent of the global seed
    gen = lambda: graphnn.Generator().manual_seed(11)  # noqa: E731
    a = _epoch(gdata.DataLoader(ds, batch_size=8, shuffle=True, generator=gen()))
    graphnn.manual_seed(99)
    assert _epoch(gdata.DataLoader(ds, batch_size=8, shuffle=True, generator=gen())) == a
    assert sorted(a) == list(range(50))
    assert [len(b[0]) for b in gdata.DataLoader(ds, batch_size=8, shuffle=True, drop_last=True)] == [8] * 6


def test_generator():
    g = graphnn.Generator()
    assert g.initial_seed() == 67280421310721  # PyTorch's default seed
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    state = g.get_state()
    a = gdata.RandomSampler(range(10), generator=g)
    first = list(a)
    g.set_state(state)
    assert list(a) == first


def test_samplers(torch):
    assert list(gdata.SequentialSampler(range(5))) == list(torch.utils.data.SequentialSampler(range(5)))
    gen = graphnn.Generator().manual_seed(0)
    r = list(gdata.RandomSampler(range(10), replacement=True, num_samples=25, generator=gen))
    assert len(r) == 25 and all(0 <= i < 10 for i in r)
    r = list(gdata.RandomSampler(range(10), num_samples=23, generator=gen))
    assert len(r) == 23 and sorted(r[:20]) == sorted(list(range(10)) * 2) and len(set(r[20:])) == 3
    s = list(gdata.SubsetRandomSampler([3, 5, 7, 11], generator=gen))
    assert sorted(s) == [3, 5, 7, 11]
    w = list(gdata.WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 40, generator=gen))
    assert set(w) <= {1, 3} and len(w) == 40
    w = list(gdata.WeightedRandomSampler([1.0, 1.0, 0.0, 3.0], 3, replacement=False, generator=gen))
    assert sorted(w) == [0, 1, 3]
    for n, bs, drop in ((10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False)):
        gb = gdata.BatchSampler(gdata.SequentialSampler(range(n)), bs, drop)
        tb = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), bs, drop)
        assert list(gb) == list(tb) and len(gb) == len(tb)
    with pytest.raises(ValueError, match="batch_size should be a positive integer value"):
        gdata.BatchSampler(range(3), 0, False)


@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.25, 0.25, 0.5], [0.33, 0.33, 0.34], [1, 0, 9]])
def test_random_split(torch, lengths):
    ds = list(range(10))
    gen = graphnn.Generator().manual_seed(1)
    parts = gdata.random_split(ds, lengths, generator=gen)
    t_parts = torch.utils.data.random_split(ds, lengths, generator=torch.Generator().manual_seed(1))
    assert [len(p) for p in parts] == [len(p) for p in t_parts]
    items = [x for p in parts for x in p]
    assert sorted(items) == ds
    again = gdata.random_split(ds, lengths, generator=graphnn.Generator().manual_seed(1))
    assert [list(p) for p in again] == [list(p) for p in parts]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        gdata.random_split(ds, [3, 3])


_INIT: dict = {}  # set by worker_init_fn, in the worker process


class _Tagged(gdata.Dataset):
    """Sample i: (i, the worker that read it, a random number from that worker's graphnn generator, the tag its
    worker_init_fn left)."""

    def __len__(self):
        return 20

    def __getitem__(self, i):
        info = gdata.get_worker_info()
        return i, -1 if info is None else info.id, float(graphnn.rand(1).item()), _INIT.get("tag", -1)


def _init(worker_id):
    _INIT["tag"] = 100 + worker_id + 10 * gdata.get_worker_info().num_workers


@pytest.mark.parametrize("persistent", [False, True])
def test_workers_keep_the_batch_order(persistent):
    ds = _Tagged()
    graphnn.manual_seed(7)
    main = [_np(b[0]).tolist() for b in gdata.DataLoader(ds, batch_size=3, shuffle=True)]
    graphnn.manual_seed(7)
    loader = gdata.DataLoader(
        ds,
        batch_size=3,
        shuffle=True,
        num_workers=2,
        persistent_workers=persistent,
        worker_init_fn=_init,
        pin_memory=True,
        prefetch_factor=1,
    )
    batches = list(loader)
    assert [_np(b[0]).tolist() for b in batches] == main
    workers = [w for b in batches for w in _np(b[1]).tolist()]
    assert set(workers) == {0, 1} and gdata.get_worker_info() is None
    assert [t for b in batches for t in _np(b[3]).tolist()] == [120 + w for w in workers]  # worker_init_fn ran
    assert "tag" not in _INIT  # (in the workers only)
    # each worker has its own seeded generator: draws differ between workers, repeat under the same seed
    draws = {w: [] for w in (0, 1)}
    for b in batches:
        for w, v in zip(_np(b[1]).tolist(), _np(b[2]).tolist()):
            draws[w].append(v)
    assert draws[0][0] != draws[1][0]
    graphnn.manual_seed(7)
    again = list(gdata.DataLoader(ds, batch_size=3, shuffle=True, num_workers=2))
    assert [_np(b[2]).tolist() for b in again] == [_np(b[2]).tolist() for b in batches]
    second = [_np(b[0]).tolist() for b in loader]  # a second epoch (the same workers when persistent)
    assert sorted(i for b in second for i in b) == list(range(20))


class _Failing(gdata.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 4:
            raise ValueError("bad sample 4")
        return i


class _Dying(gdata.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 3:
            os._exit(3)
        return i


class _Slow(gdata.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        time.sleep(3)
        return i


def test_worker_errors():
    it = iter(gdata.DataLoader(_Failing(), batch_size=2, num_workers=2))
    assert _np(next(it)).tolist() == [0, 1]
    assert _np(next(it)).tolist() == [2, 3]
    with pytest.raises(ValueError, match="Caught ValueError in DataLoader worker process 0") as err:
        next(it)
    assert "bad sample 4" in str(err.value)
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        list(gdata.DataLoader(_Dying(), batch_size=2, num_workers=2))
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.5 seconds"):
        list(gdata.DataLoader(_Slow(), num_workers=1, timeout=0.5))


class _NumpyDraws(gdata.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return np.random.randint(0, 1 << 30)


def test_workers_seed_numpy_too():
    """Each worker's NumPy generator is seeded from the loader's base seed and the worker id (as PyTorch does), so
    random augmentation with np.random differs between workers and between epochs."""
    loader = gdata.DataLoader(_NumpyDraws(), batch_size=2, num_workers=2)
    epochs = [[int(v) for b in loader for v in _np(b).tolist()] for _ in range(2)]
    assert len(set(epochs[0])) == 8 and set(epochs[0]) != set(epochs[1])
