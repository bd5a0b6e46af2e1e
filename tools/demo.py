"""`graphnn demo`: train the tutorial's Net compiled, on generated data, and compare with eager mode."""

from __future__ import annotations

import sys
import time

import numpy as np

import graphnn
import graphnn.nn as nn
import graphnn.optim as optim

from .data import make_dataset
from .tutorial_net import Net


def progress(i: int, n: int, loss: float, acc: float | None = None, width: int = 30, stream=None) -> None:
    """A progress bar redrawn in place on a terminal; one line per tenth of the run otherwise (on sys.stdout as it
    is when called, by default)."""
    stream = sys.stdout if stream is None else stream
    done = int(width * (i + 1) / n)
    line = f"  [{'#' * done}{'.' * (width - done)}] step {i + 1}/{n}  loss {loss:.4f}"
    if acc is not None:
        line += f"  batch acc {acc:5.1%}"
    if stream.isatty():
        stream.write("\r" + line + ("\n" if i + 1 == n else ""))
    elif (i + 1) % max(1, n // 10) == 0 or i + 1 == n:
        stream.write(line + "\n")
    stream.flush()


def run(steps: int = 300, batch: int = 64, lr: float = 0.02, seed: int = 0, quiet: bool = False) -> dict:
    """Train compiled; return the final training accuracy and step times."""
    graphnn.manual_seed(seed)
    images, labels = make_dataset(batch * 40, seed=seed)
    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=lr, momentum=0.9)

    def train_step(x, y):
        optimizer.zero_grad()
        out = net(x)
        loss = criterion(out, y)
        loss.backward()
        optimizer.step()
        return loss, out

    step = graphnn.compile(train_step)
    n_batches = len(images) // batch
    out = sys.stdout
    if not quiet:
        out.write(
            f"graphnn demo: training the tutorial's Net, compiled, on {len(images)} generated 32x32 images (10 classes)\n"
        )
    t_compile = time.perf_counter()
    times = []
    for i in range(steps):
        j = i % n_batches
        x = graphnn.from_numpy(images[j * batch : (j + 1) * batch])
        y = graphnn.from_numpy(labels[j * batch : (j + 1) * batch])
        t0 = time.perf_counter()
        loss, logits = step(x, y)
        times.append(time.perf_counter() - t0)
        if i == 0:
            t_compile = times[0]
        acc = float((logits.numpy().argmax(1) == labels[j * batch : (j + 1) * batch]).mean())
        if not quiet:
            progress(i, steps, loss.item(), acc)
    with graphnn.no_grad():
        pred = np.concatenate(
            [net(graphnn.from_numpy(images[k : k + 512])).numpy().argmax(1) for k in range(0, len(images), 512)]
        )
    train_acc = float((pred == labels).mean())
    compiled_ms = float(np.median(times[2:])) * 1000 if len(times) > 3 else float("nan")

    # The same step in eager mode (reference interpreter + symbolic backward), for the timing comparison.
    eager_times = []
    for i in range(5):
        x = graphnn.from_numpy(images[:batch])
        y = graphnn.from_numpy(labels[:batch])
        t0 = time.perf_counter()
        train_step(x, y)
        eager_times.append(time.perf_counter() - t0)
    eager_ms = float(np.median(eager_times)) * 1000
    result = {
        "train_accuracy": train_acc,
        "compiled_step_ms": compiled_ms,
        "eager_step_ms": eager_ms,
        "first_call_s": t_compile,
        "steps": steps,
        "batch": batch,
    }
    if not quiet:
        out.write(f"training accuracy: {train_acc:.1%}\n")
        out.write(
            f"step time (batch {batch}): compiled {compiled_ms:.2f} ms, eager {eager_ms:.2f} ms "
            f"({eager_ms / compiled_ms:.2f}x); first call (trace + compile) {t_compile:.2f} s\n"
        )
    return result


def run_distributed(steps: int = 300, batch: int = 64, lr: float = 0.02, seed: int = 0, quiet: bool = False) -> dict:
    """Train the Net data-parallel on the processes of `mpirun -np N graphnn demo --distributed`: each rank takes
    batch / N images of every batch (its DistributedSampler shard), gradients are averaged inside the compiled step;
    rank 0 draws the progress bar. Returns the final training accuracy, step times and whether every rank ended
    with the same weights."""
    import graphnn.distributed as dist
    from graphnn.nn.parallel import DistributedDataParallel
    from graphnn.utils.data import DataLoader, DistributedSampler, TensorDataset

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    talk = rank == 0 and not quiet
    images, labels = make_dataset(batch * 40, seed=seed)  # the same data on every rank
    data = TensorDataset(graphnn.from_numpy(images), graphnn.from_numpy(labels))
    per_rank = max(1, batch // world)
    sampler = DistributedSampler(data, shuffle=True, seed=seed)
    loader = DataLoader(data, batch_size=per_rank, sampler=sampler, drop_last=True)
    graphnn.manual_seed(seed + rank)  # rank 0's weights are broadcast to every rank when the model is wrapped
    net = Net()
    model = DistributedDataParallel(net)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    @graphnn.compile
    def train_step(x, y):
        optimizer.zero_grad()
        out = model(x)
        loss = criterion(out, y)
        loss.backward()
        optimizer.step()
        return loss, out

    if talk:
        sys.stdout.write(
            f"graphnn demo --distributed: the tutorial's Net on {world} rank(s), {per_rank} images per rank and "
            f"step (batch {per_rank * world}), gradients averaged inside the compiled step\n"
        )
        if world == 1:
            sys.stdout.write("  (one process: run `mpirun -np 2 graphnn demo --distributed` for two ranks)\n")
    times, i, epoch = [], 0, 0
    while i < steps:
        sampler.set_epoch(epoch)
        for x, y in loader:
            if i == steps:
                break
            t0 = time.perf_counter()
            loss, logits = train_step(x, y)
            times.append(time.perf_counter() - t0)
            if talk:
                progress(i, steps, loss.item(), float((logits.numpy().argmax(1) == y.numpy()).mean()))
            i += 1
        epoch += 1
    with graphnn.no_grad():
        pred = np.concatenate(
            [net(graphnn.from_numpy(images[k : k + 512])).numpy().argmax(1) for k in range(0, len(images), 512)]
        )
    sums = [float(p.detach().numpy().astype(np.float64).sum()) for p in net.parameters()]
    everywhere = [None] * world
    dist.all_gather_object(everywhere, sums)
    identical = all(s == everywhere[0] for s in everywhere)
    result = {
        "train_accuracy": float((pred == labels).mean()),
        "compiled_step_ms": float(np.median(times[2:])) * 1000 if len(times) > 3 else float("nan"),
        "first_call_s": times[0],
        "world_size": world,
        "identical": identical,
    }
    if talk:
        sys.stdout.write(
            f"training accuracy: {result['train_accuracy']:.1%}; step time {result['compiled_step_ms']:.2f} ms per "
            f"rank (first call, trace + compile: {result['first_call_s']:.2f} s); the same weights on every rank: "
            f"{'yes' if identical else 'NO'}\n"
        )
    dist.destroy_process_group()
    return result
