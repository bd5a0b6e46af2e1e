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


def progress(i: int, n: int, loss: float, acc: float, width: int = 30, stream=sys.stdout) -> None:
    """A progress bar redrawn in place on a terminal; one line per tenth of the run otherwise."""
    done = int(width * (i + 1) / n)
    line = f"  [{'#' * done}{'.' * (width - done)}] step {i + 1}/{n}  loss {loss:.4f}  batch acc {acc:5.1%}"
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
