"""Eager semantics that follow PyTorch's rules: Module attribute registration, in-place ops under autograd (values,
gradients, grad_fn names, version checks, views), gradient-mode context managers and decorators, and small API
edges (split/chunk, var/std, retain_grad, .grad assignment, second backward, 0-d type promotion, integer powers,
bitwise operators).

Each case runs the same code with graphnn and with PyTorch (the `torch` fixture) where PyTorch defines the
behaviour. The values used are small integers and powers of two, so every result and gradient is exact in float32
and compared exactly (tolerance.py: an exact computation has a zero rounding bound).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphnn
from tolerance import assert_close, recorded_bounds


def outcome(fn):
    """('ok', value) or ('raises', exception type name): what running fn gives."""
    try:
        return "ok", fn()
    except Exception as e:  # the outcome itself is compared
        return "raises", type(e).__name__


def arr(x):
    if hasattr(x, "detach"):
        x = x.detach()
    return np.array(x.numpy() if hasattr(x, "numpy") else x)


def same(a, b, what=""):
    """Exactly equal values, shapes and dtypes (graphnn vs PyTorch)."""
    a, b = arr(a), arr(b)
    assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.shape}/{a.dtype} vs {b.shape}/{b.dtype}"
    np.testing.assert_array_equal(a, b, err_msg=what)


# -- Module attribute registration (W3) --------------------------------------------------------------------------
def _block(L):
    class Block(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = None  # the ResNet `self.downsample = None` pattern
            self.proj = L.nn.Linear(2, 2)

        def forward(self, x):
            return self.proj(x)

    return Block()


def test_none_then_module_registers_the_module(torch):
    for L in (graphnn, torch):
        b = _block(L)
        assert isinstance(b.proj, L.nn.Linear), L.__name__
        assert "proj" not in vars(b)
        assert [n for n, _ in b.named_parameters()] == ["proj.weight", "proj.bias"]
        assert b(L.zeros(1, 2)).shape == (1, 2)


def test_none_then_parameter_is_used_by_forward(torch):
    for L in (graphnn, torch):
        lin = L.nn.Linear(2, 2)
        lin.bias = None
        assert "bias" in lin._parameters and lin._parameters["bias"] is None  # the slot stays
        assert [k for k in lin.state_dict()] == ["weight"]
        lin.bias = L.nn.Parameter(L.tensor([100.0, 200.0]))
        with L.no_grad():
            lin.weight.zero_()
        same(lin(L.zeros(1, 2)), np.array([[100.0, 200.0]], np.float32), L.__name__)
        assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]  # its place is kept


def test_tensor_to_parameter_slot_is_a_type_error(torch):
    msgs = []
    for L in (graphnn, torch):
        lin = L.nn.Linear(2, 2)
        with pytest.raises(TypeError) as e:
            lin.weight = L.zeros(2, 2)
        msgs.append(str(e.value))
        assert isinstance(lin.weight, L.nn.Parameter)
    assert (
        msgs[0]
        == msgs[1]
        == ("cannot assign 'torch.FloatTensor' as parameter 'weight' (torch.nn.Parameter or None expected)")
    )


def test_module_buffer_and_plain_attribute_rules_match_pytorch(torch):
    def script(L):
        log = []
        m = L.nn.Module()
        m.child = L.nn.Linear(1, 1)
        log.append(outcome(lambda: setattr(m, "child", 3)))  # TypeError: module slot
        m.child = None
        log.append(("slot", "child" in m._modules, m.child is None))
        m.register_buffer("buf", L.ones(2))
        m.buf = L.zeros(2)  # a tensor: still a buffer
        log.append(("buf", [k for k in m.state_dict()], arr(m.buf).tolist()))
        log.append(outcome(lambda: setattr(m, "buf", "x")))  # TypeError: buffer slot
        m.x = 3  # plain attribute ...
        m.x = L.nn.Parameter(L.ones(1))  # ... replaced by a parameter
        log.append(("x", "x" in vars(m), [n for n, _ in m.named_parameters()]))
        log.append(outcome(lambda: setattr(m, "x", 5)))  # TypeError: parameter slot
        log.append(outcome(lambda: setattr(m, "x", L.nn.Linear(1, 1))))  # TypeError: parameter slot
        m.x = None
        log.append(("x2", [n for n, _ in m.named_parameters()], "x" in m._parameters))
        m.x = L.nn.Parameter(L.ones(1))
        del m.x
        log.append(("del", hasattr(m, "x"), [n for n, _ in m.named_parameters()]))
        del m.buf
        log.append(("delbuf", [k for k in m.state_dict()], outcome(lambda: m.buf)))
        m.y = 1
        del m.y
        log.append(("dely", hasattr(m, "y")))
        log.append(outcome(lambda: m.register_parameter("a.b", None)))
        return log

    assert script(graphnn) == script(torch)


def test_parameter_assignment_is_seen_by_compiled_module():
    """Assigning another Parameter to a compiled module's attribute: the next call traces again."""
    lin = graphnn.nn.Linear(2, 2)
    cm = graphnn.compile(lin)
    x = graphnn.ones(1, 2)
    with graphnn.no_grad():
        cm(x)
        lin.weight = graphnn.nn.Parameter(graphnn.zeros(2, 2))
        lin.bias = graphnn.nn.Parameter(graphnn.tensor([1.0, 2.0]))
        same(cm(x), np.array([[1.0, 2.0]], np.float32))
        same(cm(x), lin(x))


# -- in-place ops under autograd (W4) --------------------------------------------------------------------------
INPLACE = {
    "mul_": lambda y, w: y.mul_(3),
    "add_": lambda y, w: y.add_(w),
    "add_alpha": lambda y, w: y.add_(w, alpha=2),
    "sub_": lambda y, w: y.sub_(w),
    "div_": lambda y, w: y.div_(2),
    "clamp_max": lambda y, w: y.clamp_(max=3),
    "clamp_min": lambda y, w: y.clamp_(min=3),
    "copy_": lambda y, w: y.copy_(w * 5),
    "copy_const": lambda y, w: y.copy_(w.detach() * 0 + 7),
    "zero_": lambda y, w: y.zero_(),
    "fill_": lambda y, w: y.fill_(3),
    "iadd": lambda y, w: y.__iadd__(w),
    "imul": lambda y, w: y.__imul__(w),
    "pow_": lambda y, w: y.pow_(2),
    "neg_": lambda y, w: y.neg_(),
    "masked_fill_": lambda y, w: y.masked_fill_(w > 1, 0.5),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_on_non_leaf_is_differentiated(torch, name):
    """y = w * 2; y.<op>_(...); y.sum().backward(): value, grad_fn name and w.grad as PyTorch's."""
    results = []
    for L in (graphnn, torch):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        y = w * 2
        out = INPLACE[name](y, w)
        assert out is y
        y.sum().backward()
        results.append((arr(y), y.grad_fn.name().split("::")[-1], arr(w.grad), y.requires_grad, y.is_leaf))
    g, t = results
    same(g[0], t[0], f"{name} value")
    assert g[1] == t[1], f"{name}: grad_fn {g[1]} vs {t[1]}"
    same(g[2], t[2], f"{name} w.grad")
    assert g[3:] == t[3:]


def test_inplace_on_plain_tensor_with_grad_operand(torch):
    """A tensor that does not require grad becomes part of the graph when an operand does (x.mul_(w))."""
    res = []
    for L in (graphnn, torch):
        w = L.tensor([3.0, 4.0], requires_grad=True)
        x = L.tensor([1.0, 2.0])
        x.mul_(w)
        assert x.requires_grad and not x.is_leaf
        (x * x).sum().backward()
        res.append((arr(x), x.grad_fn.name(), arr(w.grad)))
    same(res[0][0], res[1][0])
    assert res[0][1] == res[1][1]
    same(res[0][2], res[1][2])


def test_leaf_that_requires_grad_refuses_inplace(torch):
    for L in (graphnn, torch):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        for op in (
            lambda: w.add_(1),
            lambda: w.mul_(2),
            lambda: w.zero_(),
            lambda: w.copy_(L.ones(2)),
            lambda: w.uniform_(),
            lambda: w.__iadd__(1),
        ):
            with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
                op()
        same(w, np.array([1.0, 2.0], np.float32))
        with L.no_grad():  # optimizer-style updates
            w.add_(1)
            w.mul_(2)
        same(w, np.array([4.0, 6.0], np.float32))
        assert w.is_leaf and w.requires_grad and w.grad_fn is None
        assert w._version == 2


def test_versions_count_inplace_writes(torch):
    versions = []
    for L in (graphnn, torch):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        y = w * 2
        v = [y._version]
        y.mul_(3)
        v.append(y._version)
        y.add_(1)
        v.append(y._version)
        with L.no_grad():
            y.zero_()
        v.append(y._version)
        versions.append(v)
    assert versions[0] == versions[1]


@pytest.mark.parametrize(
    "case", ["leaf_changed_under_no_grad", "non_leaf_changed_under_no_grad", "detach_alias", "data_of_view_base"]
)
def test_backward_refuses_values_changed_in_place(torch, case):
    """A value the gradient needs was overwritten in place, without gradient, after it was recorded: PyTorch's
    RuntimeError (the version check), never a gradient computed from the new data."""

    def run(L):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        if case == "leaf_changed_under_no_grad":
            s = (w * w).sum()
            with L.no_grad():
                w.add_(1)
            s.backward()
        elif case == "non_leaf_changed_under_no_grad":
            y = w.exp()
            with L.no_grad():
                y.mul_(2)
            y.sum().backward()
        elif case == "detach_alias":
            y = w.exp()
            y.detach().zero_()
            y.sum().backward()
        else:
            y = w * 2
            z = y.view(2, 1)
            q = (z * z).sum()
            with L.no_grad():
                y.add_(1)
            q.backward()

    for L in (graphnn, torch):
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            run(L)


@pytest.mark.parametrize(
    "case", ["mul_operand", "pow_", "exp_", "plain_mul_", "mul_self", "exp_then_mul_", "saved_then_add_"]
)
def test_value_overwritten_with_gradient_keeps_its_recorded_data(torch, case):
    """An in-place op recorded with gradient overwrites the storage, but the graph keeps the old value (as PyTorch's
    in-place ops keep the original when their own gradient needs it). Where PyTorch computes the gradient, graphnn
    agrees; where PyTorch refuses (mul_(self), a value saved by an earlier op), graphnn gives the gradient of the
    same computation written out of place."""

    def inplace(L):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        if case == "mul_operand":
            y = w * 2
            y.mul_(w)
        elif case == "pow_":
            y = w * 2
            y.pow_(2)
        elif case == "exp_":
            y = w * 2
            y.exp_()
        elif case == "plain_mul_":
            y = L.tensor([3.0, 4.0])
            y.mul_(w)
            y = y * y
        elif case == "mul_self":
            y = w * 2
            y.mul_(y)
        elif case == "exp_then_mul_":
            y = w.exp()
            y.mul_(2)
        else:
            y = w * 2
            z = y * y
            y.add_(1)
            y = y + z
        y.sum().backward()
        return y, w.grad

    def out_of_place(L):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        y = {
            "mul_operand": lambda: (w * 2) * w,
            "pow_": lambda: (w * 2) ** 2,
            "exp_": lambda: (w * 2).exp(),
            "plain_mul_": lambda: (L.tensor([3.0, 4.0]) * w) ** 2,
            "mul_self": lambda: (w * 2) * (w * 2),
            "exp_then_mul_": lambda: w.exp() * 2,
            "saved_then_add_": lambda: (w * 2 + 1) + (w * 2) * (w * 2),
        }[case]()
        y.sum().backward()
        return y, w.grad

    gy, gw = inplace(graphnn)
    tol_y = tol_w = None  # exact (small integers and powers of two) ...
    if case in ("exp_", "exp_then_mul_"):  # ... but exp: the rounding bounds of the same formulas (tolerance.py)
        w = graphnn.tensor([1.0, 2.0], requires_grad=True)
        y = (w * 2).exp() if case == "exp_" else w.exp() * 2
        bounds = recorded_bounds([y], y.sum())
        tol_y, tol_w = bounds.tol(0), bounds.grad_tol(w)
    for other in [out_of_place(torch)] + (
        [inplace(torch)] if case in ("mul_operand", "pow_", "exp_", "plain_mul_") else []
    ):  # (PyTorch's own in-place ops, where it computes them)
        assert_close(arr(gy), arr(other[0]), tol_y, f"{case} value")
        assert_close(arr(gw), arr(other[1]), tol_w, f"{case} w.grad")


def test_inplace_that_the_gradient_does_not_need_is_allowed(torch):
    """Overwriting a value no gradient reads is fine (as in PyTorch: add does not save its inputs)."""
    grads = []
    for L in (graphnn, torch):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        y = w * 2
        z = y + 1
        y.mul_(3)
        (z.sum() + y.sum()).backward()
        grads.append(arr(w.grad))
    same(*grads)


def test_views_without_gradients_write_their_base(torch):
    outs = []
    for L in (graphnn, torch):
        x = L.tensor([[1.0, 2.0], [3.0, 4.0]])
        x[0].mul_(10)
        x.t().add_(1)
        x[:, 1].sub_(1)
        x.view(-1).div_(2)
        x.transpose(0, 1)[1].mul_(4)
        outs.append(arr(x))
        w = L.ones(2, 3, requires_grad=True)
        with L.no_grad():  # e.g. an embedding's padding row
            w[0].fill_(5.0)
            w.detach()[1, 1:].zero_()
        (w * w).sum().backward()
        outs.append(arr(w))
        outs.append(arr(w.grad))
    for a, b in zip(outs[:3], outs[3:]):
        same(a, b)


def test_reshape_copy_is_not_a_view(torch):
    """reshape of a transposed tensor copies (in both libraries): an in-place op on it leaves the base alone."""
    outs = []
    for L in (graphnn, torch):
        x = L.tensor([[1.0, 2.0], [3.0, 4.0]])
        y = x.t().reshape(-1)
        y.mul_(10)
        outs.append((arr(x), arr(y)))
    same(outs[0][0], outs[1][0])
    same(outs[0][1], outs[1][1])


@pytest.mark.parametrize("case", ["row_of_non_leaf", "transpose_of_non_leaf", "plain_view_grad_operand"])
def test_inplace_on_views_with_gradients(torch, case):
    """An in-place op on a view with gradients updates its base functionally (the base's new value is the view's
    new value put back into it): values, the base's grad_fn and the gradients as PyTorch's."""
    outs = []
    for L in (graphnn, torch):
        w = L.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        if case == "row_of_non_leaf":
            base = w * 1
            base[0].mul_(10)
        elif case == "transpose_of_non_leaf":
            base = w * 1
            base.t().add_(w)
        else:
            base = L.zeros(2, 2)
            base[0].mul_(w[0])
            base[1].add_(w[1] * w[0])
        (base * base).sum().backward()
        outs.append((arr(base), arr(w.grad), type(base.grad_fn).__name__))
    same(outs[0][0], outs[1][0])
    same(outs[0][1], outs[1][1])
    assert outs[0][2] == outs[1][2] == "CopySlices"


@pytest.mark.parametrize("case", ["transpose_of_leaf", "row_of_leaf", "setitem_of_leaf"])
def test_inplace_on_a_view_of_a_leaf_is_refused(torch, case):
    """As in PyTorch: a view of a leaf that requires grad cannot be changed in place (outside no_grad)."""
    for L in (graphnn, torch):
        w = L.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
            if case == "transpose_of_leaf":
                w.t().add_(1)
            elif case == "row_of_leaf":
                w[0].mul_(2)
            else:
                w[0] = 1.0


def test_inplace_on_an_expanded_view_is_refused():
    """Several elements of an expand()ed view share memory: refused with gradients (PyTorch refuses it always)."""
    w = graphnn.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with pytest.raises(NotImplementedError, match=r"copy_: in-place op on a view of a tensor"):
        (w * 1)[0].expand(2, 2).copy_(w)


def test_view_of_a_tensor_rebound_in_place_follows_it():
    """z = y.view(-1); y.mul_(3) rebinds y's autograd value: z follows it as in PyTorch (its value, and gradients
    through it, are those of the view of the new y)."""
    w = graphnn.tensor([1.0, 2.0], requires_grad=True)
    y = w * 2
    z = y.view(-1)
    y.mul_(3)
    (z * z).sum().backward()  # z = 6 w: d/dw sum(36 w^2) = 72 w
    same(w.grad, np.array([72.0, 144.0], np.float32))
    same(z.detach(), np.array([6.0, 12.0], np.float32))


def test_stale_views_against_pytorch(torch):
    """Views taken before in-place ops on their base (a slice clamped, the whole base scaled) read the new values,
    with PyTorch's gradients, eagerly and compiled."""

    def script(L, x):
        y = x * 1
        v, t, row = y.view(6), y.t(), y[1]
        y[:, 1].clamp_(min=0)
        y.mul_(2)
        return (v * v).sum() + (t * 3).sum() + row.sum()

    data = np.array([[1.0, -2.0], [-3.0, 4.0], [5.0, -6.0]], np.float32)
    tx = torch.tensor(data, requires_grad=True)
    script(torch, tx).backward()
    for run in (lambda x: script(graphnn, x), graphnn.compile(lambda x: script(graphnn, x))):
        for _ in range(2):
            gx = graphnn.tensor(data, requires_grad=True)
            loss = run(gx)
            loss.backward()
            same(gx.grad, tx.grad.numpy())


def test_inplace_shape_and_dtype_rules(torch):
    def script(L):
        return [
            outcome(lambda: L.tensor([1, 2]).mul_(2.5)),  # float into int64
            outcome(lambda: L.ones(2).add_(L.ones(2, 2))),  # broadcast grows self
            outcome(lambda: arr(L.zeros(2, 3).copy_(L.tensor([1, 2, 3]))).tolist()),  # copy_ casts, broadcasts
            outcome(lambda: arr(L.zeros(2, dtype=L.int64).copy_(L.tensor([1.7, -2.2]))).tolist()),
            outcome(lambda: arr(L.ones(2, 2).add_(L.tensor([1.0, 2.0]))).tolist()),
            outcome(lambda: arr(L.ones(2, dtype=L.float64).mul_(L.tensor([2.0, 3.0]))).tolist()),
            outcome(lambda: L.ones(2).clamp_()),
        ]

    g, t = script(graphnn), script(torch)
    assert g == t


def test_copy_gradient_reaches_the_source_only(torch):
    res = []
    for L in (graphnn, torch):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        v = L.tensor([4.0, 8.0], requires_grad=True)
        y = w * 2
        y.copy_(v * 3)
        y.sum().backward()
        res.append((arr(w.grad), arr(v.grad), y.grad_fn.name().split("::")[-1]))
    same(res[0][0], res[1][0])
    same(res[0][1], res[1][1])
    assert res[0][2] == res[1][2]


# -- grad mode (U4) --------------------------------------------------------------------------------------------------
def test_set_grad_enabled_function_context_and_decorator(torch):
    def script(L):
        log = [L.is_grad_enabled()]
        with L.set_grad_enabled(False):
            log.append(L.is_grad_enabled())
            with L.set_grad_enabled(True):
                log.append(L.is_grad_enabled())
            log.append(L.is_grad_enabled())
        log.append(L.is_grad_enabled())
        L.set_grad_enabled(False)  # as a function: from now on
        log.append(L.is_grad_enabled())
        L.set_grad_enabled(True)
        log.append(L.is_grad_enabled())

        @L.set_grad_enabled(False)
        def f():
            return L.is_grad_enabled()

        log += [L.is_grad_enabled(), f(), L.is_grad_enabled()]
        try:
            with L.set_grad_enabled(False):
                raise KeyError
        except KeyError:
            pass
        log.append(L.is_grad_enabled())
        x = L.ones(2, requires_grad=True)
        with L.set_grad_enabled(False):
            log.append((x * 2).requires_grad)
        return log

    assert script(graphnn) == script(torch)


def test_grad_mode_decorators_on_functions_and_generators(torch):
    def script(L):
        log = []
        for deco in (
            L.no_grad(),
            L.no_grad,
            L.enable_grad(),
            L.inference_mode(),
            L.inference_mode,
            L.set_grad_enabled(False),
        ):

            @deco
            def f(a, b=1):
                """doc"""
                return L.is_grad_enabled(), a + b

            @deco
            def gen(n):
                for i in range(n):
                    got = yield (i, L.is_grad_enabled())
                    log.append(("sent", got, L.is_grad_enabled()))
                return "done"

            with L.no_grad():
                log.append(("f", f(1, b=2), f.__doc__, f.__name__))
            log.append(("f2", f(1)))
            it = gen(3)
            log.append(next(it))
            log.append(("outside", L.is_grad_enabled()))
            log.append(it.send("x"))
            log.append(list(it))
        return log

    assert script(graphnn) == script(torch)


def test_grad_mode_is_per_call_in_recursion():
    @graphnn.no_grad()
    def f(n):
        if n:
            f(n - 1)
        return graphnn.is_grad_enabled()

    assert f(3) is False and graphnn.is_grad_enabled()


def test_inference_mode_flag(torch):
    """inference_mode(False) enables gradients (PyTorch's InferenceMode(False) sets grad mode on)."""

    def script(L):
        log = []
        with L.no_grad():
            with L.inference_mode(False):
                log.append(L.is_grad_enabled())
            log.append(L.is_grad_enabled())
        with L.inference_mode():
            log.append((L.is_grad_enabled(), L.is_inference_mode_enabled()))
            with L.inference_mode(False):
                log.append((L.is_grad_enabled(), L.is_inference_mode_enabled()))
        log.append((L.is_grad_enabled(), L.is_inference_mode_enabled()))
        return log

    assert script(graphnn) == script(torch)


# -- small API edges -------------------------------------------------------------------------------------------------
def test_split_and_chunk_argument_errors(torch):
    def script(L):
        x = L.ones(4)
        return [
            outcome(lambda: x.split(0)),
            outcome(lambda: x.chunk(0)),
            outcome(lambda: x.split(-1)),
            outcome(lambda: x.chunk(-2)),
            outcome(lambda: x.split([1, 2])),
            outcome(lambda: x.split(5, dim=2)),
            outcome(lambda: [tuple(t.shape) for t in L.ones(0).split(0)]),
            outcome(lambda: [tuple(t.shape) for t in x.split([1, 3])]),
            outcome(lambda: [tuple(t.shape) for t in x.chunk(3)]),
        ]

    assert script(graphnn) == script(torch)
    with pytest.raises(RuntimeError, match="split_size can only be 0 if dimension size is 0") as e:
        graphnn.ones(4).split(0)
    assert "test_autograd_semantics.py" in str(e.value)  # the user's line
    with pytest.raises(RuntimeError, match="chunk expects `chunks` to be greater than 0, got: 0"):
        graphnn.ones(4).chunk(0)


def test_var_std_without_degrees_of_freedom_are_nan_with_a_warning(torch):
    results = []
    for L in (graphnn, torch):
        one, two = L.tensor([1.0]), L.tensor([1.0, 3.0])
        for fn in (
            lambda: one.var(),
            lambda: one.std(),
            lambda: one.var(0, keepdim=True),
            lambda: two.var(correction=2),
            lambda: two.std(correction=3),
        ):
            with warnings.catch_warnings(record=True) as rec:
                warnings.simplefilter("always")
                out = fn()
            assert any("degrees of freedom is <= 0" in str(r.message) for r in rec), L.__name__
            results.append(arr(out))
    for a, b in zip(results[:5], results[5:]):
        same(a, b)  # NaN (0 / 0) or inf (a positive sum over 0), as PyTorch
    same(graphnn.tensor([1.0, 3.0]).var(correction=0), torch.tensor([1.0, 3.0]).var(correction=0))
    same(graphnn.tensor([1.0, 3.0]).var(unbiased=False), torch.tensor([1.0, 3.0]).var(unbiased=False))


def test_retain_grad(torch):
    res = []
    for L in (graphnn, torch):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        y = w * 2
        y.retain_grad()
        z = y * y
        z.retain_grad()
        w.retain_grad()  # a leaf: no-op
        assert y.retains_grad and not w.retains_grad
        (z * 3).sum().backward()
        res.append((arr(y.grad), arr(z.grad), arr(w.grad)))
        u = w * 2
        u.retain_grad()
        u.mul_(3)  # the gradient retained is the new value's, as in PyTorch
        u.sum().backward()
        res.append((arr(u.grad),))
        with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has requires_grad=False"):
            L.ones(2).retain_grad()
    for a, b in zip(res[:2], res[2:]):
        for x, y in zip(a, b):
            same(x, y)


def test_grad_assignment_is_checked(torch):
    def script(L):
        w = L.ones(2, requires_grad=True)
        return [
            outcome(lambda: setattr(w, "grad", L.ones(3))),
            outcome(lambda: setattr(w, "grad", L.ones(2, dtype=L.float64))),
            outcome(lambda: setattr(w, "grad", L.ones(2, dtype=L.int64))),
            outcome(lambda: setattr(w, "grad", [1.0, 2.0])),
            outcome(lambda: setattr(w, "grad", L.full((2,), 3.0)) or arr(w.grad).tolist()),
            outcome(lambda: setattr(w, "grad", None) or w.grad),
        ]

    assert script(graphnn) == script(torch)


def test_second_backward_raises_unless_the_graph_was_retained(torch):
    for L in (graphnn, torch):
        w = L.tensor([1.0, 2.0], requires_grad=True)
        s = (w * w).sum()
        s.backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            s.backward()
        same(w.grad, np.array([2.0, 4.0], np.float32))
        s = (w * 2).sum()  # no saved tensor either: still freed
        s.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            s.backward()
        w.grad = None
        s = (w * w).sum()
        s.backward(retain_graph=True)
        s.backward()
        same(w.grad, np.array([4.0, 8.0], np.float32))
        s = (w * w).sum()
        L.autograd.grad(s, [w])
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            s.backward()


def test_zero_dim_tensors_do_not_promote_same_category(torch):
    def dtypes(L):
        out = []
        vals = {
            "f32": L.ones(2),
            "f64": L.ones(2, dtype=L.float64),
            "i64": L.ones(2, dtype=L.int64),
            "b": L.ones(2, dtype=L.bool),
        }
        zeros = {"f32": L.tensor(2.0), "f64": L.tensor(2.0, dtype=L.float64), "i64": L.tensor(2), "b": L.tensor(True)}
        for a in vals.values():
            for z in zeros.values():
                for op in (
                    lambda p, q: p * q,
                    lambda p, q: q + p,
                    lambda p, q: L.maximum(p, q),
                    lambda p, q: L.where(p > 0, p, q),
                    lambda p, q: p > q,
                ):
                    r = outcome(lambda: op(a, z).dtype)
                    out.append(r if r[0] == "raises" else str(r[1]).split(".")[-1])
        return out

    assert dtypes(graphnn) == dtypes(torch)
    w = graphnn.ones(2, requires_grad=True)
    s = graphnn.tensor(3.0, dtype=graphnn.float64, requires_grad=True)
    y = w * s
    assert y.dtype == graphnn.float32 and y.grad_fn.name() == "MulBackward0"
    assert y.grad_fn.next_functions[1][0].variable is s  # the edge goes to the 0-d tensor itself
    y.sum().backward()
    assert s.grad.dtype == graphnn.float64 and float(s.grad) == 2.0
    same(w.grad, np.array([3.0, 3.0], np.float32))


def test_integer_tensor_to_negative_integer_power(torch):
    for L in (graphnn, torch):
        x = L.tensor([2, 3, -1])
        with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
            x**-1
        with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
            x.pow(-2)
    same(graphnn.tensor([2, 3]) ** 2, torch.tensor([2, 3]) ** 2)
    same(graphnn.tensor([2, 4]) ** -1.0, torch.tensor([2, 4]) ** -1.0)
    same(graphnn.tensor([2.0, 4.0]) ** -1, torch.tensor([2.0, 4.0]) ** -1)


def test_bitwise_operators(torch):
    a, b = graphnn.tensor([True, False, True]), graphnn.tensor([True, True, False])
    ta, tb = torch.tensor([True, False, True]), torch.tensor([True, True, False])
    for g, t in (
        (~a, ~ta),
        (a & b, ta & tb),
        (a | b, ta | tb),
        (a ^ b, ta ^ tb),
        (a & True, ta & True),
        (False | a, False | ta),
    ):
        same(g, t)
    i, j = graphnn.tensor([7, -7, 5]), graphnn.tensor([3, 12, -2])
    ti, tj = torch.tensor([7, -7, 5]), torch.tensor([3, 12, -2])
    for g, t in ((~i, ~ti), (i & j, ti & tj), (i | j, ti | tj), (i ^ j, ti ^ tj), (a & i, ta & ti), (i & 6, ti & 6)):
        same(g, t)  # bitwise on int64 (two's complement), as PyTorch
    for op in (lambda: ~graphnn.ones(2), lambda: i & graphnn.ones(3), lambda: i | 1.5):
        with pytest.raises(TypeError, match="bitwise ops take integer or bool tensors"):
            op()
