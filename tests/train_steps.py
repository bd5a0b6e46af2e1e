"""The training step the tests compile: forward, CrossEntropyLoss, backward and an SGD update."""
import graphnn.nn as nn
import graphnn.optim as optim


def sgd_step(net, lr: float = 0.02, momentum: float = 0.0):
    crit = nn.CrossEntropyLoss()
    opt = optim.SGD(net.parameters(), lr=lr, momentum=momentum)

    def step(x, y):
        opt.zero_grad()
        loss = crit(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return step
