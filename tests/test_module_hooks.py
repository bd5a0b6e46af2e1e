"""Forward hooks and forward pre-hooks of nn.Module, as PyTorch's: what they see, what their results replace, the
order they run in, and removal; inside graphnn.compile they run while tracing, so their changes are compiled in."""

import numpy as np
import pytest

import graphnn
from parity_util import check, copy_state


def _model(nn):
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def _hooked(lib, log: list):
    m = _model(lib.nn).double()
    m[0].register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    m[1].register_forward_hook(lambda mod, args, out: log.append(("tanh", tuple(out.shape))))
    m[2].register_forward_hook(lambda mod, args, out: out + 1)
    m[2].register_forward_hook(lambda mod, args, out: log.append(("last", tuple(args[0].shape))), prepend=True)
    return m


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_hooks_replace_arguments_and_outputs_as_pytorch(torch, compiled):
    g_log, t_log = [], []
    g, t = _hooked(graphnn, g_log), _hooked(torch, t_log)
    copy_state(torch, g, t)
    check(torch, g, t, [np.random.default_rng(0).standard_normal((5, 3))], g, t, compiled=compiled)
    g_log.clear()
    t_log.clear()
    (graphnn.compile(g) if compiled else g)(graphnn.zeros(5, 3, dtype=graphnn.float64))
    t(torch.zeros(5, 3, dtype=torch.float64))
    assert g_log == t_log == [("tanh", (5, 4)), ("last", (5, 4))]


def test_hook_with_kwargs_and_removal(torch):
    for lib in (graphnn, torch):
        m = lib.nn.Linear(2, 2)
        seen = []
        pre = m.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(sorted(kwargs)), with_kwargs=True)
        post = m.register_forward_hook(lambda mod, args, kwargs, out: seen.append("post"), with_kwargs=True)
        m(lib.zeros(1, 2))
        pre.remove()
        with post:
            m(lib.zeros(1, 2))
        m(lib.zeros(1, 2))
        assert seen == [[], "post", "post"], lib.__name__


def test_compiled_module_traces_again_when_hooks_change():
    model = graphnn.nn.Sequential(graphnn.nn.Linear(2, 2), graphnn.nn.ReLU())
    run = graphnn.compile(model)
    x = graphnn.ones(1, 2)
    plain = run(x).detach().numpy()
    handle = model[1].register_forward_hook(lambda mod, args, out: out + 1)
    np.testing.assert_array_equal(run(x).detach().numpy(), plain + 1)
    handle.remove()
    np.testing.assert_array_equal(run(x).detach().numpy(), plain)
