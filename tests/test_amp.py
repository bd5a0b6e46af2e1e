"""What mixed-precision training scripts call, on a float32 CPU library, as PyTorch (CPU build) behaves:
`torch.autocast` / `torch.amp.autocast` regions (computed in float32, warned once), `torch.amp.GradScaler` (a
passthrough when disabled or asked for CUDA; real loss scaling on the CPU), the deprecated `torch.cuda.amp` and
`torch.cpu.amp` spellings, the `torch.backends` switches, and the small tensor idioms of training loops
(f"{loss:.4f}", torch.randint(high, size), generator=)."""

import warnings

import numpy as np
import pytest

import graphnn
from graphnn.amp import autocast_mode
from parity_util import close, copy_state, steps_tolerance, to_np


@pytest.fixture(autouse=True)
def fresh_autocast_warning(monkeypatch):
    monkeypatch.setattr(autocast_mode, "_warned", [False])


def _caught(fn):
    """(fn's result, the messages of the warnings it raised)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in seen]


# -- autocast --------------------------------------------------------------------------------------------------------
def test_autocast_region_reports_like_pytorch(torch):
    for lib in (graphnn, torch):
        assert not lib.is_autocast_enabled("cpu") and lib.get_autocast_dtype("cpu") == lib.bfloat16
        with lib.autocast(device_type="cpu", dtype=lib.bfloat16):
            assert lib.is_autocast_enabled("cpu") and lib.get_autocast_dtype("cpu") == lib.bfloat16
            with lib.autocast(device_type="cpu", enabled=False):
                assert not lib.is_autocast_enabled("cpu")
            assert lib.is_autocast_enabled("cpu") and not lib.is_autocast_enabled()
        assert not lib.is_autocast_enabled("cpu")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(device_type="cuda", dtype="bfloat16"), "Disabling autocast"),
        (dict(device_type="cpu", dtype="float32"), "target dtype is not supported. Disabling autocast"),
    ],
)
def test_autocast_disabled_like_pytorch(torch, kwargs, message):
    """A region PyTorch's CPU build disables (no CUDA; a dtype CPU autocast lacks) warns and is disabled here too."""
    for lib in (graphnn, torch):
        kw = dict(kwargs, dtype=getattr(lib, kwargs["dtype"]))
        ctx, notes = _caught(lambda: lib.autocast(**kw))
        assert any(message in n for n in notes), notes
        with ctx:
            assert not lib.is_autocast_enabled(kw["device_type"])


def test_autocast_computes_float32_and_warns_once():
    x, w = graphnn.randn(4, 8), graphnn.randn(8, 3)
    want = to_np(x @ w)

    @graphnn.autocast(device_type="cpu", dtype=graphnn.bfloat16)
    def product(a, b):
        return a @ b

    def run():
        outs = [product(x, w), graphnn.compile(product)(x, w)]
        with graphnn.amp.autocast("cpu"):
            outs.append(x @ w)
        return outs

    outs, notes = _caught(run)
    assert [n for n in notes if "autocast" in n] == [
        "graphnn computes in float32: autocast to bfloat16 is accepted and its region computes in float32 (the "
        "same results with more precision)"
    ]
    for out in outs:
        assert out.dtype == graphnn.float32
        close(out, want, "product", steps_tolerance(want, 8, np.abs(to_np(x)) @ np.abs(to_np(w))))


def test_autocast_bad_device_type(torch):
    for lib in (graphnn, torch):
        with pytest.raises(RuntimeError, match="device type"):
            lib.autocast(device_type="gpu")
        with pytest.raises(ValueError, match="device_type"):
            lib.autocast(device_type=lib.device("cpu"))


def test_deprecated_amp_spellings(torch):
    for lib in (graphnn, torch):
        ctx, notes = _caught(lambda: lib.cpu.amp.autocast())
        assert any("torch.cpu.amp.autocast(args...)` is deprecated" in n for n in notes)
        with ctx:
            assert lib.is_autocast_enabled("cpu")
        ctx, notes = _caught(lambda: lib.cuda.amp.autocast())
        assert any("is deprecated" in n for n in notes) and any("Disabling autocast" in n for n in notes)
        scaler, notes = _caught(lambda: lib.cuda.amp.GradScaler())
        assert any("is deprecated" in n for n in notes) and any("Disabling" in n for n in notes)
        assert not scaler.is_enabled()


# -- GradScaler --------------------------------------------------------------------------------------------------------
def test_disabled_grad_scaler_passes_through(torch):
    """GradScaler(enabled=False), and an enabled one asked for CUDA where there is none, change nothing."""
    for lib in (graphnn, torch):
        for scaler in (lib.amp.GradScaler("cpu", enabled=False), _caught(lambda: lib.amp.GradScaler("cuda"))[0]):
            m = lib.nn.Linear(3, 1)
            opt = lib.optim.SGD(m.parameters(), lr=0.1)
            loss = m(lib.ones(2, 3)).sum()
            assert scaler.scale(loss) is loss and not scaler.is_enabled()
            loss.backward()
            before = to_np(m.weight.detach()).copy()
            scaler.unscale_(opt)
            assert scaler.step(opt) is None
            scaler.update()
            assert not np.array_equal(to_np(m.weight.detach()), before)
            assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}


def _scaled_training(lib, model, steps: int = 12) -> tuple:
    """SGD steps through an enabled CPU GradScaler whose first scales overflow the gradients: (scales, taken)."""
    opt = lib.optim.SGD(model.parameters(), lr=1e-3)
    scaler = lib.amp.GradScaler("cpu", init_scale=2.0**118, growth_interval=2)
    scales, taken = [], []
    x = lib.tensor(np.linspace(-1, 1, 12).reshape(4, 3).astype(np.float32))
    for _ in range(steps):
        opt.zero_grad()
        scaler.scale((model(x) ** 2).sum() * 1e3).backward()
        scaler.unscale_(opt)
        lib.nn.utils.clip_grad_norm_(model.parameters(), 1e9)
        before = to_np(model.weight.detach()).copy()
        scaler.step(opt)
        taken.append(not np.array_equal(before, to_np(model.weight.detach())))
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, taken, scaler


def test_enabled_grad_scaler_as_pytorch(torch):
    """Steps with Inf gradients are skipped and back the scale off; clean ones grow it every growth_interval."""
    graphnn.manual_seed(0)
    g, t = graphnn.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    copy_state(torch, g, t)
    with np.errstate(over="ignore", invalid="ignore"):  # the overflowing steps, computed eagerly by NumPy
        g_scales, g_taken, g_scaler = _scaled_training(graphnn, g)
    t_scales, t_taken, t_scaler = _scaled_training(torch, t)
    assert g_scales == t_scales and g_taken == t_taken and False in g_taken and True in g_taken
    assert g_scaler.state_dict() == t_scaler.state_dict()
    for p, q in zip(g.parameters(), t.parameters()):
        close(p.detach(), q.detach(), "parameter", steps_tolerance(q.detach(), 4 * len(g_taken)))
    for lib, scaler, model in ((graphnn, g_scaler, g), (torch, t_scaler, t)):
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        model(lib.ones(1, 3)).sum().backward()
        scaler.unscale_(opt)
        with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
            scaler.unscale_(opt)
        scaler.step(opt)
        with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
            scaler.step(opt)
        scaler.update()
    state = g_scaler.state_dict()
    fresh = graphnn.amp.GradScaler("cpu")
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state == t_scaler.state_dict()


def test_grad_scaler_in_compiled_step():
    """A disabled scaler compiles away; an enabled one decides on data: the step runs eagerly after a warning (with
    fullgraph=True, an error says to call it outside)."""
    from graphnn.compiler.python_state import TraceWarning

    model = graphnn.nn.Linear(3, 1)
    opt = graphnn.optim.SGD(model.parameters(), lr=0.1)
    x = graphnn.ones(2, 3)

    def step_with(scaler):
        def step():
            opt.zero_grad()
            loss = model(x).sum()
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            scaler.step(opt)
            scaler.update()
            return loss

        return graphnn.compile(step, fullgraph=full)

    full = False
    step_with(graphnn.amp.GradScaler("cpu", enabled=False))()
    scaler = graphnn.amp.GradScaler("cpu")
    with pytest.warns(TraceWarning, match="runs eagerly"):
        step_with(scaler)()
    assert scaler.get_scale() == 65536.0  # a clean step: the scale stays until growth_interval steps
    full = True
    with pytest.raises(RuntimeError, match="outside graphnn.compile"):
        step_with(graphnn.amp.GradScaler("cpu"))()


# -- backends and loop idioms ----------------------------------------------------------------------------------------
def test_backends_switches(torch):
    for lib in (graphnn, torch):
        lib.backends.cuda.matmul.allow_tf32 = True
        lib.backends.cudnn.allow_tf32 = True
        lib.backends.cudnn.benchmark = True
        assert lib.backends.cuda.matmul.allow_tf32 and lib.backends.cudnn.benchmark
        assert not lib.backends.cudnn.is_available() and not lib.backends.mps.is_available()
        assert not lib.cuda.is_available() and not lib.cuda.is_bf16_supported() and lib.cpu.is_available()
        lib.backends.cudnn.benchmark = False


def test_format_of_tensors(torch):
    for spec, value in ((".4f", 1.234567), ("", 2.5), (">8.2e", -3e-5), ("d", 7)):
        assert format(graphnn.tensor(value), spec) == format(torch.tensor(value), spec)
    assert format(graphnn.ones(2), "") == str(graphnn.ones(2))
    for lib in (graphnn, torch):
        with pytest.raises(TypeError, match="unsupported format string passed to Tensor.__format__"):
            format(lib.ones(2), ".2f")


def test_randint_forms_and_generators(torch):
    for lib in (graphnn, torch):
        a, b = lib.randint(10, (3, 4)), lib.randint(5, 9, (6,))
        assert a.shape == (3, 4) and b.shape == (6,) and a.dtype == b.dtype == lib.int64
        assert 0 <= int(a.min()) and int(a.max()) < 10 and 5 <= int(b.min()) and int(b.max()) < 9
    g1, g2 = graphnn.Generator().manual_seed(7), graphnn.Generator().manual_seed(7)
    for make in (
        lambda g: graphnn.randint(100, (5,), generator=g),
        lambda g: graphnn.randn(5, generator=g),
        lambda g: graphnn.rand(2, 3, generator=g),
        lambda g: graphnn.multinomial(graphnn.ones(4), 2, generator=g),
    ):
        np.testing.assert_array_equal(to_np(make(g1)), to_np(make(g2)))
    graphnn.manual_seed(3)
    before = to_np(graphnn.randn(3))
    graphnn.manual_seed(3)
    graphnn.randn(3, generator=graphnn.Generator())  # draws from its own stream, not the global one
    np.testing.assert_array_equal(to_np(graphnn.randn(3)), before)


def test_distributed_imports_and_data_parallel(torch):
    """Scripts import torch.distributed and DDP unconditionally; one process has no process group until it starts
    one (tests/test_distributed.py); DataParallel
    wraps the module (state_dict keys under `module.`) and runs it."""
    from graphnn.distributed import destroy_process_group, init_process_group  # noqa: F401
    from graphnn.nn.parallel import DistributedDataParallel

    assert not graphnn.distributed.is_initialized() and not torch.distributed.is_initialized()
    for lib, ddp in ((graphnn, DistributedDataParallel), (torch, torch.nn.parallel.DistributedDataParallel)):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            lib.distributed.get_rank()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError, match="Default process group has not been initialized"):
                ddp(lib.nn.Linear(2, 2))
    g, t = graphnn.nn.DataParallel(graphnn.nn.Linear(3, 2)), torch.nn.DataParallel(torch.nn.Linear(3, 2))
    copy_state(torch, g, t)
    assert list(g.state_dict()) == list(t.state_dict()) == ["module.weight", "module.bias"] and repr(g) == repr(t)
    x = np.ones((4, 3), np.float32)
    want = t(torch.tensor(x)).detach()
    terms = np.abs(x) @ np.abs(to_np(t.module.weight.detach())).T + np.abs(to_np(t.module.bias.detach()))
    close(g(graphnn.tensor(x)), want, "DataParallel", steps_tolerance(want, 4, terms))  # 3 products and a bias
