"""The tutorial's Net: definition, repr, parameters, output, grad_fn chain, and gradients against PyTorch."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.optim as optim
from graphnn.autograd import Variable
from graphnn.tools.tutorial_net import Net
from parity_util import close, recorded_bounds
from tolerance import accumulation_tolerance

EXPECTED_REPR = """Net(
  (conv1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
  (conv2): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))
  (fc1): Linear(in_features=400, out_features=120, bias=True)
  (fc2): Linear(in_features=120, out_features=84, bias=True)
  (fc3): Linear(in_features=84, out_features=10, bias=True)
)"""


def test_repr_and_parameters():
    net = Net()
    assert repr(net) == EXPECTED_REPR
    params = list(net.parameters())
    assert len(params) == 10
    assert params[0].size() == (6, 1, 5, 5)
    assert repr(params[0].size()) == "graphnn.Size([6, 1, 5, 5])"
    assert [n for n, _ in net.named_parameters()][:2] == ["conv1.weight", "conv1.bias"]


def test_forward_backward_and_grad_fn_chain():
    net = Net()
    input = Variable(graphnn.randn(1, 1, 32, 32))
    out = net(input)
    assert out.size() == (1, 10)
    net.zero_grad()
    out.backward(graphnn.randn(1, 10))
    assert net.conv1.bias.grad is not None and net.conv1.bias.grad.shape == (6,)

    output = net(input)
    target = Variable(graphnn.arange(1, 11))
    criterion = nn.MSELoss()
    with pytest.warns(UserWarning):
        loss = criterion(output, target)
    assert loss.size() == ()
    assert type(loss.grad_fn).__name__ == "MseLossBackward0"
    addmm = loss.grad_fn.next_functions[0][0]
    assert type(addmm).__name__ == "AddmmBackward0"
    assert loss.grad_fn.next_functions[1][0] is None  # the target needs no gradient
    names = [type(f).__name__ for f, _ in addmm.next_functions]
    assert names == ["AccumulateGrad", "ReluBackward0", "TBackward0"]
    assert addmm.next_functions[0][0].variable is net.fc3.bias
    assert "MseLossBackward0 object at" in repr(loss.grad_fn)


def _torch_net(torch, net):
    tnn = torch.nn
    tf = torch.nn.functional

    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(1, 6, 5)
            self.conv2 = tnn.Conv2d(6, 16, 5)
            self.fc1 = tnn.Linear(400, 120)
            self.fc2 = tnn.Linear(120, 84)
            self.fc3 = tnn.Linear(84, 10)

        def forward(self, x):
            x = tf.max_pool2d(tf.relu(self.conv1(x)), (2, 2))
            x = tf.max_pool2d(tf.relu(self.conv2(x)), 2)
            x = x.view(-1, 400)
            x = tf.relu(self.fc1(x))
            x = tf.relu(self.fc2(x))
            return self.fc3(x)

    t = TNet()
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in net.state_dict().items()})
    return t


def test_gradients_match_pytorch(torch):
    graphnn.manual_seed(1)
    net = Net()
    tnet = _torch_net(torch, net)
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    target = np.arange(1, 11, dtype=np.float32)

    out = net(graphnn.tensor(x))
    loss = nn.MSELoss()(out, graphnn.tensor(target).view(1, 10))
    bounds = recorded_bounds([out, loss], loss)  # within twice graphnn's rounding-error bound (parity_util)
    net.zero_grad()
    loss.backward()

    tout = tnet(torch.from_numpy(x))
    tloss = torch.nn.MSELoss()(tout, torch.from_numpy(target).view(1, 10))
    tnet.zero_grad()
    tloss.backward()

    close(out, tout, "output", bounds.tol(0))
    close(loss, tloss, "loss", bounds.tol(1))
    for (name, p), tp in zip(net.named_parameters(), tnet.parameters()):
        close(p.grad, tp.grad, name, bounds.grad_tol(p))


def test_tutorial_update_step_runs():
    net = Net()
    input = graphnn.randn(1, 1, 32, 32)
    target = graphnn.arange(1, 11).float().view(1, 10)
    criterion = nn.MSELoss()
    optimizer = optim.SGD(net.parameters(), lr=0.01)
    before = net.fc3.bias.detach().numpy().copy()
    optimizer.zero_grad()
    output = net(input)
    loss = criterion(output, target)
    loss.backward()
    grad = net.fc3.bias.grad.numpy().copy()
    optimizer.step()
    # p - lr * g, with lr * g rounded once and the difference once (float32): 2 roundings of at most |p| + |lr g|
    close(
        net.fc3.bias,
        before - np.float32(0.01) * grad,
        "updated bias",
        accumulation_tolerance("float32", 2, np.abs(before) + np.abs(0.01 * grad)),
    )
