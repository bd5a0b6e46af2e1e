"""The training steps the tests compile: forward, loss, backward and an optimizer update."""

import graphnn.nn as nn
import graphnn.optim as optim


def training_step(net, crit, opt):
    def step(x, y):
        opt.zero_grad()
        loss = crit(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def sgd_step(net, lr: float = 0.02, momentum: float = 0.0):
    """CrossEntropyLoss and SGD."""
    return training_step(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=lr, momentum=momentum))
