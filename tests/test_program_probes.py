"""What real training programs ran into (probes of unseen programs): checks PyTorch makes (non-finite clipping norms,
BCE target sizes and ranges), load_state_dict(assign=True), error types (LinAlgError, IndexError), small modules a
program touches (torch.compiler, torch._dynamo, torch.cuda memory counters, backends, default_generator) and
PyTorch's warnings."""

import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F


def test_clip_grad_norm_nonfinite_raises_compiled_without_writing_parameters():
    model = nn.Linear(2, 1)
    w0 = model.weight.detach().numpy().copy()
    opt = graphnn.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
        opt.step()
        return loss

    step = graphnn.compile(step)
    step(graphnn.ones(3, 2))  # finite: trains
    w1 = model.weight.detach().numpy().copy()
    assert not np.array_equal(w0, w1)
    with pytest.raises(RuntimeError, match="non-finite"):
        step(graphnn.tensor([[np.inf, 1.0]], dtype=graphnn.float32))
    np.testing.assert_array_equal(model.weight.detach().numpy(), w1)  # the failed step wrote nothing back
    with pytest.raises(RuntimeError, match="non-finite"):  # eagerly too
        model(graphnn.tensor([[np.inf, 1.0]])).sum().backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)


def test_binary_cross_entropy_checks():
    probs = graphnn.tensor([[0.9], [0.2], [0.7]])
    with pytest.raises(ValueError, match="same size"):
        nn.BCELoss()(probs, graphnn.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(RuntimeError, match="target should be between 0 and 1"):
        F.binary_cross_entropy(probs, graphnn.tensor([[0.0], [255.0], [1.0]]))
    with pytest.raises(RuntimeError, match="input should be between 0 and 1"):
        nn.BCELoss()(graphnn.tensor([1.5]), graphnn.tensor([1.0]))
    c = graphnn.compile(lambda p, t: F.binary_cross_entropy(p, t))
    with pytest.raises(RuntimeError, match="target should be between 0 and 1"):  # (inputs of the compiled call)
        c(probs, graphnn.tensor([[0.0], [2.0], [1.0]]))


def test_load_state_dict_assign(torch):
    res = []
    for L in (graphnn, torch):
        m = L.nn.Linear(2, 1)
        m.weight.requires_grad_(False)
        sd = {"weight": L.tensor(np.array([[1.0, 2.0]])), "bias": L.tensor(np.array([0.5]))}
        before = m.weight
        m.load_state_dict(sd, assign=True)
        res.append(
            (m.weight is not before, str(m.weight.dtype).split(".")[-1], m.weight.requires_grad, m.bias.requires_grad)
        )
        assert isinstance(m.weight, L.nn.Parameter)
        out = m(L.tensor(np.array([[1.0, 1.0]])))
        assert out.item() == 3.5
    assert res[0] == res[1] == (True, "float64", False, True)


def test_device_context_manager():
    with graphnn.device("cpu"):
        assert graphnn.ones(1).device.type == "cpu"
    with pytest.raises(RuntimeError, match="CPU only"):
        with graphnn.device("cuda"):
            pass


def test_linalg_error_and_index_error_types():
    a = graphnn.tensor([[1.0, 2.0], [2.0, 1.0]])  # not positive-definite
    for chol in (graphnn.linalg.cholesky, graphnn.compile(graphnn.linalg.cholesky)):
        with pytest.raises(graphnn.linalg.LinAlgError):
            chol(a)
        with pytest.raises(RuntimeError):
            chol(a)
    with pytest.raises(IndexError, match="out of range"):
        nn.Embedding(3, 2)(graphnn.tensor([5]))


def test_small_modules_programs_touch():
    assert graphnn.compiler.is_compiling() is False

    def f(x):
        return x * 2 if graphnn.compiler.is_compiling() else x * 3

    assert graphnn.compile(f)(graphnn.ones(1)).item() == 2.0 and f(graphnn.ones(1)).item() == 3.0
    assert graphnn.compiler.disable(len)([1]) == 1 and graphnn.compiler.disable()(len) is len
    graphnn.compiler.reset()
    graphnn._dynamo.config.cache_size_limit = 64
    graphnn._dynamo.mark_dynamic(graphnn.ones(2), 0)
    graphnn.cuda.empty_cache()
    assert graphnn.cuda.memory_allocated() == graphnn.cuda.max_memory_allocated() == 0
    with graphnn.nn.attention.sdpa_kernel(graphnn.nn.attention.SDPBackend.MATH):
        pass
    with graphnn.backends.cuda.sdp_kernel(enable_flash=False):
        graphnn.backends.cuda.enable_flash_sdp(False)
    assert not graphnn.backends.mkldnn.is_available() and not graphnn.backends.openmp.is_available()
    graphnn.mps.manual_seed(0)
    graphnn.default_generator.manual_seed(3)
    a = graphnn.rand(3).tolist()
    graphnn.manual_seed(3)
    assert graphnn.rand(3).tolist() == a and graphnn.default_generator.initial_seed() == 3
    first = [len(s) for s in graphnn.utils.data.random_split(range(10), [8, 2], generator=graphnn.default_generator)]
    assert first == [8, 2]


@pytest.mark.parametrize(
    "name, fn",
    [
        (".grad of a non-leaf", lambda: (graphnn.ones(2, requires_grad=True) * 2).grad),
        ("kl_div mean", lambda: nn.KLDivLoss()(graphnn.zeros(2, 3), graphnn.full((2, 3), 1 / 3))),
        ("x.T of 3-d", lambda: graphnn.ones(2, 3, 4).T),
        ("tensor(tensor)", lambda: graphnn.tensor(graphnn.ones(2))),
        ("F.upsample", lambda: F.upsample(graphnn.ones(1, 1, 2, 2), scale_factor=2)),
        ("smooth_l1 sizes", lambda: nn.SmoothL1Loss()(graphnn.ones(3, 1), graphnn.ones(3))),
    ],
)
def test_pytorch_warnings(name, fn):
    with pytest.warns(UserWarning):
        fn()


def test_scheduler_before_optimizer_warns_once_in_the_wrong_order():
    p = nn.Parameter(graphnn.ones(1))
    opt = graphnn.optim.SGD([p], lr=0.1)
    sched = graphnn.optim.lr_scheduler.StepLR(opt, 1)
    with pytest.warns(UserWarning, match="before optimizer.step"):
        sched.step()
    opt2 = graphnn.optim.SGD([p], lr=0.1)
    sched2 = graphnn.optim.lr_scheduler.StepLR(opt2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt2.step()
        sched2.step()
        sched2.step()
        assert (graphnn.ones(2, requires_grad=True) * 2).retain_grad() is None


def test_pickling_views_and_results_gives_leaves(torch):
    import copy
    import pickle

    x = graphnn.arange(6.0).reshape(2, 3)
    w = graphnn.ones(2, requires_grad=True)
    for t, want_rg in ((x[1], False), (x.t(), False), ((w * 2).detach(), False), (w * 2, True)):
        back = pickle.loads(pickle.dumps(t))
        assert back.requires_grad == want_rg and back.grad_fn is None
        np.testing.assert_array_equal(back.detach().numpy(), t.detach().numpy())
    p = nn.Parameter(graphnn.ones(2))
    assert type(pickle.loads(pickle.dumps(p))) is nn.Parameter
    m = nn.Linear(2, 2)
    m.weight.grad = graphnn.full((2, 2), 3.0)
    c = copy.deepcopy(m)  # (a parameter's deep copy has no gradient, as PyTorch's Parameter.__deepcopy__)
    assert c.weight is not m.weight and c.weight.grad is None and m.weight.grad.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    batches = list(graphnn.utils.data.DataLoader(list(x), batch_size=None, num_workers=1))
    assert [b.tolist() for b in batches] == x.tolist()


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_tensor_dtype_inference_as_pytorch(torch, default):
    cases = [
        np.ones(2, np.float32),
        np.float32(1),
        [np.ones(2, np.float32)] * 2,
        [np.float32(1), 2.5],
        [np.float64(1), 2.5],
        np.ones(2),
        [1.5],
        [1, np.float32(2)],
        [1, 2],
    ]
    got, want = [], []
    graphnn.set_default_dtype(getattr(graphnn, default))
    torch.set_default_dtype(getattr(torch, default))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for c in cases:
                got.append(str(graphnn.tensor(c).dtype).split(".")[-1])
                want.append(str(torch.tensor(c).dtype).split(".")[-1])
    finally:
        graphnn.set_default_dtype(graphnn.float32)
        torch.set_default_dtype(torch.float32)
    assert got == want


def test_collate_of_unequal_shapes_is_a_runtime_error():
    from graphnn.utils.data import default_collate

    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([graphnn.ones(2), graphnn.ones(3)])


def test_replayed_composites_make_inference_tensors():
    x = graphnn.randn(4, 8)
    with graphnn.inference_mode():
        outs = [F.layer_norm(x, (8,)) for _ in range(4)] + [F.gelu(x) for _ in range(4)]
    assert all(o.is_inference() for o in outs)


def test_lstsq_rank_deficient_and_svd_driver(torch):
    rng = np.random.RandomState(0)
    cat = np.eye(3)[rng.randint(0, 3, 10)]
    a = np.concatenate([np.ones((10, 1)), cat, rng.randn(10, 1)], 1)  # column 0 = columns 1 + 2 + 3: rank 4
    y = rng.randn(10, 1)
    g = graphnn.linalg.lstsq(graphnn.tensor(a), graphnn.tensor(y))
    ref = np.linalg.lstsq(a, y, rcond=None)[0]  # the minimum-norm least-squares solution (gelsd's)
    np.testing.assert_allclose(g.solution.numpy(), ref, rtol=1e-8, atol=1e-10)
    assert int(g.rank) == 4
    b, c = rng.randn(2, 5, 3), rng.randn(2, 5, 2)
    r = torch.linalg.lstsq(torch.tensor(b), torch.tensor(c), driver="gelsd")
    o = graphnn.linalg.lstsq(graphnn.tensor(b), graphnn.tensor(c), driver="gelsd")
    for k in ("solution", "residuals", "rank", "singular_values"):
        np.testing.assert_allclose(getattr(o, k).numpy(), getattr(r, k).numpy(), rtol=1e-9, atol=1e-12)


def test_old_batchnorm_checkpoint_without_num_batches_tracked():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    sd = {k: v for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
    m.load_state_dict(sd)  # (strict)
    assert int(m[1].num_batches_tracked) == 0


def test_hardswish_gradient_at_the_kinks(torch):
    res = []
    for L in (graphnn, torch):
        x = L.tensor([-3.0, 3.0, -2.0, 2.0, -4.0, 4.0], requires_grad=True)
        L.nn.functional.hardswish(x).sum().backward()
        res.append(x.grad.numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-6)


def test_class_target_out_of_range_is_an_index_error():
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(graphnn.zeros(2, 3), graphnn.tensor([0, 5]))


def test_func_transforms_of_scientific_programs(torch):
    rng = np.random.RandomState(0)
    w, b, x = rng.randn(3, 2, 4), rng.randn(3, 2), rng.randn(5, 4)
    outs = []
    for L in (graphnn, torch):
        lin = L.nn.Linear(4, 2).double()
        out = L.func.vmap(lambda p, x: L.func.functional_call(lin, p, (x,)), in_dims=(0, None))(
            {"weight": L.tensor(w), "bias": L.tensor(b)}, L.tensor(x)
        )
        outs.append(out.detach().numpy())
        t = L.tensor([0.1, 0.2, 0.3], dtype=L.float64)
        jac, aux = L.func.jacrev(lambda a: (a.sin(), a.sum()), has_aux=True)(t)
        outs.append(np.concatenate([jac.detach().numpy().ravel(), [aux.item()]]))
        outs.append(np.array(L.func.vmap(lambda a, scale=1.0: a * scale)(t, scale=3.0).tolist()))
        outs.append(L.func.linearize(lambda a: a.sin(), t)[1](L.ones(3, dtype=L.float64)).detach().numpy())
        params, _ = L.func.stack_module_state([lin, lin])
        outs.append(params["weight"].detach().numpy())
        xin = L.tensor([0.1, 0.2, 0.3, 0.4], dtype=L.float64, requires_grad=True)
        (g,) = L.autograd.grad(lin(xin), xin, L.eye(2, dtype=L.float64), is_grads_batched=True)
        outs.append(g.detach().numpy())
    half = len(outs) // 2
    for k, (a, r) in enumerate(zip(outs[:half], outs[half:])):
        if k in (4, 5):  # (the models' own weights: graphnn's and PyTorch's initializations differ)
            assert a.shape == r.shape
            continue
        np.testing.assert_allclose(a, r, rtol=1e-12)
    np.testing.assert_array_equal(outs[4][0], outs[4][1])  # (the same model twice)
    np.testing.assert_allclose(outs[5], outs[4][0])  # (the batched gradients of a linear map: its weight rows)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1])
def test_sparse_softmax(torch, fn, dim):
    idx, v = [[0, 0, 1, 2, 2, 2], [1, 2, 2, 0, 1, 2]], [1.0, 2.0, 3.0, -1.0, 0.5, 4.0]
    res = []
    for L in (graphnn, torch):
        vals = L.tensor(v, dtype=L.float64, requires_grad=True)
        out = getattr(L.sparse, fn)(L.sparse_coo_tensor(L.tensor(idx), vals, (3, 3)), dim)
        (out.to_dense() * L.tensor(np.arange(9.0).reshape(3, 3))).sum().backward()
        res.append((out.coalesce().values().detach().numpy(), vals.grad.numpy()))
    for a, r in zip(*res):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)


def test_custom_function_keeping_a_tensor_as_a_ctx_attribute_compiled(torch):
    res = []
    for L, compile in ((torch, lambda f: f), (graphnn, graphnn.compile)):

        class Masked(L.autograd.Function):
            @staticmethod
            def forward(ctx, x, mask):
                ctx.mask = mask
                ctx.scale = 2.0
                return x * mask * ctx.scale

            @staticmethod
            def backward(ctx, g):
                return g * ctx.mask * ctx.scale, None

        w = L.nn.Parameter(L.tensor([1.0, 2.0, 3.0]))

        def step(mask):
            loss = Masked.apply(w * w, mask).sum()
            loss.backward()
            return loss.detach()

        step = compile(step)
        for m in ([1.0, 0.0, 1.0], [0.0, 1.0, 1.0]):
            w.grad = None
            res.append((step(L.tensor(m)).item(), w.grad.tolist()))
    assert res[:2] == res[2:]


def test_double_backward_through_a_custom_function(torch):
    """A custom Function whose backward is written with tensor ops is differentiable again (create_graph=True), as
    PyTorch's: a gradient penalty or a second derivative through it (saved inputs and outputs stand for the call's
    inputs and outputs; other saved tensors are constants)."""
    res = []
    for L in (graphnn, torch):

        class Cube(L.autograd.Function):
            @staticmethod
            def forward(ctx, x, w):
                y = x**3 * w
                ctx.save_for_backward(x, w, y)
                ctx.k = L.tensor(3.0, dtype=x.dtype)
                return y

            @staticmethod
            def backward(ctx, g):
                x, w, y = ctx.saved_tensors
                return g * ctx.k * x**2 * w, g * y / w

        x = L.tensor([0.5, 1.0, 2.0], dtype=L.float64, requires_grad=True)
        w = L.tensor([1.5, -1.0, 0.5], dtype=L.float64, requires_grad=True)
        gx, gw = L.autograd.grad(Cube.apply(x, w).sum(), (x, w), create_graph=True)
        ggx, ggw = L.autograd.grad((gx * gx).sum() + gw.sum(), (x, w))
        res.append([t.detach().numpy() for t in (gx, gw, ggx, ggw)])
    for a, r in zip(*res):
        np.testing.assert_allclose(a, r, rtol=1e-12)


def test_reentrant_checkpoint_without_inputs_requiring_grad(torch):
    from graphnn.utils.checkpoint import checkpoint

    lin = nn.Linear(2, 2)
    x = graphnn.ones(1, 2)
    with pytest.warns(UserWarning, match="none of the inputs requires grad"):
        out = checkpoint(lin, x, use_reentrant=True)
    assert not out.requires_grad  # (as PyTorch's: the layer gets no gradient)
    assert checkpoint(lin, x, use_reentrant=False).requires_grad


def test_torchrun_script_names():
    from graphnn.distributed.elastic.multiprocessing.errors import record

    @record
    def main():
        return 3

    assert main() == 3 and record()(len) is len
    assert graphnn.distributed.is_torchelastic_launched() is False


def test_zero_redundancy_optimizer_steps_as_its_inner_optimizer():
    from graphnn.distributed.optim import ZeroRedundancyOptimizer

    res = []
    for zero in (False, True):
        graphnn.manual_seed(0)
        m = nn.Linear(3, 2)
        opt = (
            ZeroRedundancyOptimizer(m.parameters(), optimizer_class=graphnn.optim.Adam, lr=0.1)
            if zero
            else graphnn.optim.Adam(m.parameters(), lr=0.1)
        )
        sched = graphnn.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
        for _ in range(3):
            opt.zero_grad()
            m(graphnn.ones(4, 3)).pow(2).sum().backward()
            opt.step()
            sched.step()
        if zero:
            opt.consolidate_state_dict(to=0)
            assert set(opt.state_dict()) == {"state", "param_groups"}
        res.append((m.weight.detach().numpy().copy(), opt.param_groups[0]["lr"]))
    np.testing.assert_array_equal(res[0][0], res[1][0])
    assert res[0][1] == res[1][1] == 0.0125


@pytest.mark.parametrize("step_inside", [False, True])
def test_an_argument_that_is_also_an_optimizers_parameter(step_inside):
    """Optimizing an input (style transfer, adversarial examples): the compiled step gets the image as an argument
    and its optimizer holds the same tensor. zero_grad and step act on that argument (they acted on a separate
    captured copy: gradients accumulated and the image never moved)."""
    w = graphnn.tensor([1.0, 2.0, 3.0])

    def run(compiled):
        img = graphnn.tensor([0.5, -0.5, 1.0], requires_grad=True)
        opt = graphnn.optim.SGD([img], lr=0.1, momentum=0.5)

        def step(x):
            opt.zero_grad()
            loss = (x * x * w).sum()
            loss.backward()
            if step_inside:
                opt.step()
            return loss

        fn = graphnn.compile(step) if compiled else step
        seen = []
        for _ in range(4):
            seen.append((fn(img).item(), img.grad.tolist()))
            if not step_inside:
                opt.step()
        return seen, img.tolist()

    (got, img), (want, img_eager) = run(True), run(False)
    for (loss, grad), (loss_e, grad_e) in zip(got, want):  # (float32, a few ops each: fused or not, a few ulps)
        assert loss == pytest.approx(loss_e, rel=1e-6) and grad == pytest.approx(grad_e, rel=1e-6, abs=1e-7)
    assert img == pytest.approx(img_eager, rel=1e-6)


def test_an_argument_reached_as_state_is_keyed_by_identity():
    """The compiled step traced with one optimized tensor serves that tensor; another tensor at that position (a
    second image with its own optimizer) gets its own trace, and a fresh non-state tensor still traces normally."""

    def make():
        img = graphnn.zeros(3, requires_grad=True)
        return img, graphnn.optim.SGD([img], lr=0.5)

    (a, opt_a), (b, opt_b) = make(), make()
    holder = {"opt": opt_a}

    @graphnn.compile
    def step(x, target):
        holder["opt"].zero_grad()
        ((x - target) ** 2).sum().backward()
        holder["opt"].step()

    for _ in range(3):
        step(a, graphnn.ones(3))
    holder["opt"] = opt_b
    step(b, graphnn.full((3,), 2.0))
    # steps of lr 0.5 on (x - t)^2 from 0 land on t at once (gradient 2 (x - t)), then stay
    assert a.tolist() == [1.0] * 3 and b.tolist() == [2.0] * 3
    assert a.grad.tolist() == [0.0] * 3 and b.grad.tolist() == [-4.0] * 3


def _moe_like():
    class GatedMix(nn.Module):
        """A layer that keeps an auxiliary loss on itself, as mixture-of-experts layers do (written for this test)."""

        def __init__(self):
            super().__init__()
            self.gate = nn.Linear(4, 3)
            self.aux_loss = None

        def forward(self, x):
            p = self.gate(x).softmax(-1)
            self.aux_loss = (p.mean(0) ** 2).sum() * 3
            return x * p[:, :1]

    return GatedMix()


def test_a_tensor_set_on_a_module_in_forward_has_its_value_and_gradient_compiled():
    """compile(model) with gradients: `loss = ce + 0.01 * model.aux_loss` after the call (the attribute was a
    symbolic tensor of the trace, an error to use)."""
    runs = []
    for compiled in (False, True):
        graphnn.manual_seed(0)
        m = _moe_like()
        fn = graphnn.compile(m) if compiled else m
        seen = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (set again at every call: no TraceWarning about changed state)
            for i in range(3):
                m.zero_grad()
                loss = fn(graphnn.ones(2, 4) * (i + 1)).sum() + 0.01 * m.aux_loss
                loss.backward()
                seen.append((loss.item(), m.aux_loss.item(), m.gate.weight.grad.numpy().copy()))
        runs.append(seen)
    for (l0, a0, g0), (l1, a1, g1) in zip(*runs):  # (float32, a few fused ops: a few ulps)
        assert l1 == pytest.approx(l0, rel=1e-6) and a1 == pytest.approx(a0, rel=1e-6)
        np.testing.assert_allclose(g1, g0, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("detach", [False, True])
def test_activations_forward_hooks_put_in_a_dict_have_values_compiled(detach):
    """Feature extraction (perceptual / style losses): forward hooks store activations in a dict that the loss
    reads after the compiled model's call; with the activation itself, gradients flow through it."""
    runs = []
    for compiled in (False, True):
        graphnn.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        feats = {}

        def keep(name):
            def hook(module, inputs, output):
                feats[name] = output.detach() if detach else output

            return hook

        net[0].register_forward_hook(keep("conv1"))
        net[1].register_forward_hook(keep("relu1"))
        fn = graphnn.compile(net) if compiled else net
        img = graphnn.rand(1, 3, 6, 6, requires_grad=True)
        seen = []
        for _ in range(2):
            out = fn(img)
            loss = out.pow(2).mean() + feats["conv1"].pow(2).mean() + feats["relu1"].mean()
            loss.backward()
            seen.append((loss.item(), img.grad.numpy().copy(), feats["relu1"].detach().numpy().copy()))
        runs.append(seen)
    for (l0, g0, f0), (l1, g1, f1) in zip(*runs):
        assert l1 == pytest.approx(l0, rel=1e-5)
        np.testing.assert_allclose(f1, f0, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g1, g0, rtol=1e-4, atol=1e-6)  # (3x3 convolutions of 3-4 channels, summed)


@pytest.mark.parametrize("compiled", [False, True])
def test_checkpoint_reruns_in_backward_as_pytorch(torch, compiled):
    """PyTorch recomputes a checkpointed function when the backward reaches it: a BatchNorm inside updates its
    running statistics twice per step (a memory-efficient DenseNet's); graphnn's checkpoint does too eagerly, and the
    rerun leaves the random generator where it was. Compiled, as torch.compile, the function runs once (the running
    statistics of the same steps without checkpoint)."""
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32) * 2 + 1

    def train(lib, model, fn_compile=None, ckpt=True):
        opt = lib.optim.SGD(model.parameters(), lr=0.1)

        def step(inp):
            opt.zero_grad()
            out = lib.utils.checkpoint.checkpoint(model, inp, use_reentrant=False) if ckpt else model(inp)
            loss = out.pow(2).mean()
            loss.backward()
            opt.step()
            return loss

        run = fn_compile(step) if fn_compile else step
        for _ in range(3):
            run(lib.tensor(x))
        return model

    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU())
    gm = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.ReLU())
    gm.load_state_dict({k: graphnn.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    train(torch, tm, ckpt=not compiled)
    train(graphnn, gm, graphnn.compile if compiled else None)
    assert int(gm[1].num_batches_tracked) == int(tm[1].num_batches_tracked) == (3 if compiled else 6)
    np.testing.assert_allclose(gm[1].running_mean.numpy(), tm[1].running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gm[1].running_var.numpy(), tm[1].running_var.numpy(), rtol=1e-5, atol=1e-6)
    if not compiled:  # the rerun draws the first run's numbers and leaves the generator as it was
        graphnn.manual_seed(1)
        drop = nn.Dropout(0.5)
        inp = graphnn.ones(4, 4, requires_grad=True)
        graphnn.utils.checkpoint.checkpoint(drop, inp, use_reentrant=False).sum().backward()
        after = graphnn.rand(3).tolist()
        graphnn.manual_seed(1)
        drop(inp)
        assert graphnn.rand(3).tolist() == after


def test_legacy_constructors_take_sizes_and_all_legacy_classes_exist():
    x = graphnn.zeros(2, 3, 4)
    for cls in (graphnn.Tensor, graphnn.BoolTensor, graphnn.FloatTensor, graphnn.LongTensor, graphnn.IntTensor):
        assert tuple(cls(x.size()).shape) == (2, 3, 4)  # (DeepSpeech's MaskConv: BoolTensor(x.size()).fill_(0))
        assert tuple(cls([2, 3]).shape) == (2,)  # a list is data
    assert graphnn.IntTensor([1, 2]).dtype == graphnn.int64 and graphnn.ByteTensor([1]).tolist() == [1]
    assert graphnn.HalfTensor([0.5]).dtype == graphnn.float32 and graphnn.ShortTensor(2, 2).shape == (2, 2)
    assert x.type("torch.IntTensor").dtype == graphnn.int64
    with graphnn.backends.cudnn.flags(enabled=False, deterministic=True):
        assert graphnn.backends.cudnn.deterministic
    assert not graphnn.backends.cudnn.deterministic


def test_warnings_show_once_per_line_as_python_shows_them():
    """Replaying composites (cross_entropy's plan for a new shape) traced them inside warnings.catch_warnings, whose
    exit made Python show every warning again: a program's own warning printed at every new batch shape."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        for n in range(2, 7):
            warnings.warn("the program's own warning")
            x = graphnn.randn(n, 4)
            for _ in range(2):
                F.cross_entropy(x, graphnn.zeros(n, dtype=graphnn.long))
    assert [str(w.message) for w in seen] == ["the program's own warning"]


def test_rnn_shape_errors_are_runtime_errors_and_kernels_stay_quiet(recwarn):
    with pytest.raises(RuntimeError, match="expected input of size"):
        nn.LSTM(3, 4)(graphnn.zeros(5, 2, 2))
    with pytest.raises(RuntimeError, match="expected hidden size"):
        nn.GRU(3, 4)(graphnn.zeros(5, 2, 3), graphnn.zeros(1, 2, 5))
    with pytest.raises(RuntimeError, match="expected input of size"):
        nn.GRUCell(3, 4)(graphnn.zeros(2, 2))
    a = graphnn.tensor([[np.inf, 1.0]])
    out = a @ graphnn.tensor([[1.0], [-np.inf]])  # inf - inf: nan, without NumPy's RuntimeWarning
    assert np.isnan(out.item()) and not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_ctc_of_an_impossible_target_has_no_finite_gradient_unless_zero_infinity():
    x = np.random.RandomState(0).randn(4, 1, 5).astype(np.float32)
    for zero_infinity in (False, True):
        t = graphnn.tensor(x, requires_grad=True)
        loss = F.ctc_loss(
            t.log_softmax(-1),
            graphnn.tensor([[1, 2, 3, 4, 1, 2]]),
            (4,),
            (6,),
            reduction="sum",
            zero_infinity=zero_infinity,
        )
        loss.backward()
        if zero_infinity:
            assert loss.item() == 0 and (t.grad.numpy() == 0).all()
        else:  # (PyTorch's is nan: training that would go nan in PyTorch does not go on silently)
            assert loss.item() == np.inf and not np.isfinite(t.grad.numpy()).all()


def test_a_trace_that_stops_undoes_its_python_side_effects():
    """A compiled function that empties or extends a list and then needs a concrete value (.item()): the call runs
    eagerly on the list as it was (REINFORCE's `del rewards[:]`, `saved_log_probs.append(...)`)."""
    rewards, log = [1.0, 2.0], []
    w = graphnn.ones(2, requires_grad=True)

    def finish():
        loss = (graphnn.tensor(rewards) * w).sum()
        del rewards[:]
        log.append("called")
        return loss.item()

    with pytest.warns(graphnn.TraceWarning):
        assert graphnn.compile(finish)() == 3.0
    assert rewards == [] and log == ["called"]


def test_lists_a_module_holds_are_watched_in_a_compiled_function():
    """`policy.saved.append(log_prob)` inside a compiled step: the step changes Python state that compiled calls
    would not change again, so its calls run eagerly (the list held one symbolic entry after three calls)."""

    class Policy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.saved = []

    policy = Policy()

    def act(x):
        out = policy.fc(x).softmax(-1)
        policy.saved.append(out[0])
        return out

    fn = graphnn.compile(act)
    with pytest.warns(graphnn.TraceWarning, match="saved"):
        for _ in range(3):
            fn(graphnn.ones(3))
    assert len(policy.saved) == 3 and graphnn.stack(policy.saved).shape == (3,)


def test_optimizer_state_dicts_must_match_and_sampling_without_replacement():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = graphnn.optim.SGD(a.parameters(), lr=0.1)
    two = graphnn.optim.SGD([{"params": [a.weight]}, {"params": [a.bias]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(two.state_dict())
    more = graphnn.optim.SGD(list(a.parameters()) + list(b.parameters()), lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(more.state_dict())
    sampler = graphnn.utils.data.WeightedRandomSampler([1.0, 0.0, 1.0], 3, replacement=False)
    drawn = list(sampler)
    assert sorted(drawn) == [0, 1, 2] and drawn[-1] == 1  # (the zero weight last, as PyTorch's multinomial)


def test_nn_modules_utils(torch):
    from graphnn.nn.modules.utils import _pair, _triple, consume_prefix_in_state_dict_if_present

    assert _pair(3) == (3, 3) and _pair((1, 2)) == (1, 2) and _triple(1) == (1, 1, 1)
    ddp_keys = {"module.fc.weight": graphnn.ones(1), "module.fc.bias": graphnn.zeros(1), "step": 3}
    consume_prefix_in_state_dict_if_present(ddp_keys, "module.")
    t = {"module.fc.weight": 1, "module.fc.bias": 2, "step": 3}
    torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(t, "module.")
    assert list(ddp_keys) == list(t)


def test_compiled_results_inside_inference_mode_are_inference_tensors():
    net = nn.Linear(3, 2)
    fn = graphnn.compile(net)
    with graphnn.inference_mode():
        assert net(graphnn.ones(1, 3)).is_inference() and fn(graphnn.ones(1, 3)).is_inference()
    assert not fn(graphnn.ones(1, 3)).is_inference()


_STEPS = [0]


class _Box:
    """A class a compiled function names (its class attributes are snapshotted as data)."""

    scale = 2.0


def test_a_trace_changing_state_while_naming_a_class_runs_eagerly():
    """Undoing the trace's changes restored a class's __dict__ descriptor (AttributeError: attribute '__dict__' of
    'type' objects is not writable) instead of running the call eagerly with a TraceWarning."""

    def step(x):
        _STEPS[0] += 1
        return x * _Box.scale

    fn = graphnn.compile(step)
    with pytest.warns(graphnn.TraceWarning):
        for _ in range(3):
            assert fn(graphnn.ones(2)).tolist() == [2.0, 2.0]
    assert _STEPS[0] == 3


def test_out_arguments_item_errors_and_from_numpy(torch):
    a, b = graphnn.ones(2, 3), graphnn.ones(3, 2)
    c = graphnn.empty(2, 2)
    assert graphnn.matmul(a, b, out=c) is c and c.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    d = graphnn.empty(0)
    graphnn.cat([a, a], out=d)  # (resized, as PyTorch resizes out)
    assert tuple(d.shape) == (4, 3)
    v, i = graphnn.empty(2), graphnn.empty(2, dtype=graphnn.long)
    got = graphnn.max(graphnn.tensor([[1.0, 5.0], [7.0, 2.0]]), 1, out=(v, i))
    assert got[0] is v and v.tolist() == [5.0, 7.0] and i.tolist() == [1, 0]
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        graphnn.ones(2).item()
    with pytest.warns(UserWarning, match="copy of the array"):
        graphnn.from_numpy(np.zeros(3, np.int32))


def test_autograd_grad_frees_only_the_part_it_ran():
    """First-order MAML: grad(inner_loss, fast_weights) without retain_graph, then a backward through the fast
    weights into the meta-parameters (the graph that made them was freed too)."""
    w = graphnn.ones(3, requires_grad=True)
    h = w * 2.0
    (g,) = graphnn.autograd.grad((h**2).sum(), [h])
    assert g.tolist() == [4.0] * 3
    (h * 3.0).sum().backward()
    assert w.grad.tolist() == [6.0] * 3
    with pytest.raises(RuntimeError, match="a second time"):  # (that backward did free the graph making h)
        (h * 4.0).sum().backward()


def test_quantization_keeps_the_float_model_with_a_warning():
    from graphnn.ao.quantization import DeQuantStub, QuantStub, quantize_dynamic

    import graphnn.quantization as q

    q._warned[0] = False
    model = nn.Sequential(QuantStub(), nn.Linear(4, 3), nn.ReLU(), DeQuantStub())
    with pytest.warns(UserWarning, match="stays in float32"):
        quantized = quantize_dynamic(model, {nn.Linear}, dtype=graphnn.qint8)
    x = graphnn.randn(2, 4)
    assert quantized is not model and graphnn.equal(quantized(x), model(x))
    prepared = q.convert(q.prepare(model))
    assert graphnn.equal(prepared(x), model(x))


def test_a_stateless_meta_copy_for_ensembling():
    """The model-ensembling tutorial: a base copy moved to 'meta' and called with stacked parameters through
    functional_call under vmap."""
    import copy

    from graphnn.func import functional_call, stack_module_state, vmap

    models = [nn.Linear(3, 2) for _ in range(4)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    x = graphnn.randn(5, 3)
    out = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))(params, buffers, x)
    for k, m in enumerate(models):
        np.testing.assert_allclose(out[k].detach().numpy(), m(x).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_forward_ad_dual_tensors_as_pytorch(torch):
    import graphnn.autograd.forward_ad as fwAD

    rng = np.random.default_rng(0)
    x, t, w = (rng.standard_normal(s).astype(np.float32) for s in ((4, 3), (4, 3), (3, 2)))
    out = []
    for lib, ad in ((graphnn, fwAD), (torch, torch.autograd.forward_ad)):
        with ad.dual_level():
            dual = ad.make_dual(lib.tensor(x), lib.tensor(t))
            y = (dual @ lib.tensor(w)).tanh() * dual.sum(1, keepdim=True)
            primal, tangent = ad.unpack_dual(y)
            out.append((primal.detach().numpy(), tangent.detach().numpy()))
            assert ad.unpack_dual(lib.tensor(w)).tangent is None
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-5, atol=1e-6)  # (a few products and a tanh' each)
    with pytest.raises(RuntimeError, match="dual_level"):
        fwAD.make_dual(graphnn.ones(2), graphnn.ones(2))
