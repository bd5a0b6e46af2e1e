"""The training steps the tests compile: forward, loss, backward and an optimizer update."""

import numpy as np

import graphnn
import graphnn.nn as nn
import graphnn.optim as optim
from parity_util import copy_state


def training_step(net, crit, opt):
    def step(x, y):
        opt.zero_grad()
        loss = crit(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def sum_step(model, opt):
    """step(x): the loss sum(model(x)), its backward and opt's update; returns the loss (a step whose gradients
    have a closed form: a linear layer's are sums of x's columns and the batch size)."""

    def step(x):
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        opt.step()
        return loss

    return step


def sgd_step(net, lr: float = 0.02, momentum: float = 0.0):
    """CrossEntropyLoss and SGD."""
    return training_step(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=lr, momentum=momentum))


def mse_step(lib, model, opt):
    """A regression step of library `lib` (graphnn or torch): mean squared error and the optimizer's update."""
    return training_step(model, lib.nn.functional.mse_loss, opt)


def _small_mlp(lib_nn):
    return lib_nn.Sequential(lib_nn.Linear(4, 6), lib_nn.Tanh(), lib_nn.Linear(6, 2)).double()


def mlp_pair(torch, seed: int = 0):
    """A float64 4-6-2 tanh MLP in graphnn and in PyTorch, with the same weights."""
    graphnn.manual_seed(seed)
    g, t = _small_mlp(nn), _small_mlp(torch.nn)
    copy_state(torch, g, t)
    return g, t


def regression_batches(n: int, seed: int = 30) -> list:
    """n (x, y) float64 batches of 8 rows for mlp_pair's models."""
    r = np.random.default_rng(seed)
    return [(r.standard_normal((8, 4)), r.standard_normal((8, 2))) for _ in range(n)]
