"""Everyday PyTorch idioms found missing by probing real programs: range bounds given as 0-d tensors, comparisons
with None and other non-tensors, out= on factory and linalg functions, and torch.nn.modules' import paths."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn


def test_arange_of_a_tensor_bound_is_an_integer_range(torch):
    """`torch.arange(lengths.max())` (a length mask): int64 as PyTorch's, so it indexes and one-hot encodes."""
    for lib in (graphnn, torch):
        lengths = lib.tensor([3, 1, 2])
        idx = lib.arange(lengths.max())
        assert str(idx.dtype).endswith("int64")
        assert str(lib.arange(0, lengths.max(), 1).dtype).endswith("int64")
        assert str(lib.arange(lengths.max().float()).dtype).endswith("float32")
        mask = idx[None, :] < lengths[:, None]
        np.testing.assert_array_equal(mask.numpy(), [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
        assert tuple(lib.randn(4, 5)[:, idx].shape) == (4, 3)


def test_comparisons_with_non_tensors_give_python_answers(torch):
    for lib in (graphnn, torch):
        t = lib.tensor([3, 1, 2])
        assert (t == None) is False and (t != None) is True  # noqa: E711  (the idiom under test)
        assert (t == "a") is False and (t != [1]) is True
        assert (None == t) is False  # noqa: E711
        assert (t == 1).tolist() == [False, True, False]


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, out: lib.zeros(3, out=out),
        lambda lib, out: lib.ones(3, out=out),
        lambda lib, out: lib.full((3,), 2.5, out=out),
        lambda lib, out: lib.arange(3, out=out),
        lambda lib, out: lib.linspace(0, 1, 3, out=out),
        lambda lib, out: lib.linalg.vector_norm(lib.ones(3, 4), dim=1, out=out),
        lambda lib, out: lib.special.expit(lib.zeros(3), out=out),
    ],
    ids=["zeros", "ones", "full", "arange", "linspace", "linalg.vector_norm", "special.expit"],
)
def test_out_argument_of_factories_and_namespaced_functions(torch, call):
    """The result is written into `out` (resized when its shape differs) and `out` is returned, as in PyTorch."""
    results = []
    for lib in (graphnn, torch):
        out = lib.full((3,), -9.0)
        r = call(lib, out)
        assert r is out
        results.append(out.numpy().copy())
    np.testing.assert_array_equal(*results)


def test_torch_nn_modules_import_paths():
    from graphnn.nn.modules.activation import MultiheadAttention
    from graphnn.nn.modules.batchnorm import BatchNorm2d, _BatchNorm
    from graphnn.nn.modules.dropout import _DropoutNd
    from graphnn.nn.modules.instancenorm import _InstanceNorm
    from graphnn.nn.modules.loss import _WeightedLoss
    from graphnn.utils.hooks import RemovableHandle

    assert MultiheadAttention is nn.MultiheadAttention and BatchNorm2d is nn.BatchNorm2d
    # parameter groups without weight decay for norm layers, as training scripts build them
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout2d(), nn.InstanceNorm2d(4, affine=True))
    norms = [m for m in model.modules() if isinstance(m, (_BatchNorm, _InstanceNorm))]
    assert len(norms) == 2 and isinstance(model[2], _DropoutNd)

    class Weighted(_WeightedLoss):
        def forward(self, a, b):
            return ((a - b) ** 2 * self.weight).sum()

    loss = Weighted(weight=graphnn.tensor([1.0, 2.0]))
    assert "weight" in dict(loss.named_buffers())
    assert loss(graphnn.zeros(2), graphnn.ones(2)).item() == 3.0
    hooks = {}
    h = RemovableHandle(hooks)
    hooks[h.id] = print
    h.remove()
    assert hooks == {} and graphnn.utils.hooks.RemovableHandle is RemovableHandle


def test_version_is_the_pytorch_api_level(torch):
    """Programs gate features on torch.__version__ (tuples, strings, packaging): graphnn answers as the PyTorch
    release whose API it follows, with its own release as the local part."""
    v = graphnn.__version__
    assert v.split("+")[0] == torch.__version__.split("+")[0]
    assert v >= (1, 10) and v >= "2.0" and v < (99,) and not v < "2" and v > "1.13.1"
    assert v.endswith("+graphnn." + graphnn.version.graphnn_version)
    assert graphnn.torch_version.__version__ is v and graphnn.torch_version.TorchVersion("2.1.0") == (2, 1)
    packaging = pytest.importorskip("packaging.version")
    assert packaging.parse(v) >= packaging.parse("2.0")


def test_pytorch_keyword_names_of_binary_functions(torch):
    for lib in (graphnn, torch):
        x, y = lib.tensor([1.0, 2.0]), lib.tensor([3.0, 0.0])
        got = [
            lib.add(x, other=y, alpha=2),
            x.sub(other=y),
            x.mul(other=y),
            lib.div(x, other=lib.tensor([2.0, 4.0])),
            lib.maximum(input=x, other=y),
            lib.minimum(x, other=y),
            lib.where(condition=x > 1, input=x, other=y),
            lib.matmul(x, other=y),
            x.pow(exponent=2),
            x.eq(other=y).float(),
            lib.tensor([[1.0, 2.0]]).mm(mat2=lib.tensor([[1.0], [1.0]])),
        ]
        if lib is graphnn:
            ours = [g.numpy() for g in got]
        else:
            for a, b in zip(ours, got):
                np.testing.assert_array_equal(a, b.numpy())


def test_nuclear_norm_through_torch_norm(torch):
    a = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    got = graphnn.norm(graphnn.tensor(a), p="nuc", dim=(1, 2)).numpy()
    want = torch.norm(torch.tensor(a), p="nuc", dim=(1, 2)).numpy()
    # a backward-stable SVD's singular values are each within about m * n * u * ||A||_2 of the exact ones; the
    # norm sums min(m, n) of them, in both libraries
    s_max = np.linalg.svd(a.astype(np.float64), compute_uv=False)[:, 0]
    bound = 2 * min(a.shape[1:]) * a.shape[1] * a.shape[2] * 2.0**-24 * s_max
    assert np.all(np.abs(got - want) <= bound)


def test_legacy_tensor_classes_in_isinstance(torch):
    """`isinstance(x, torch.FloatTensor)` holds for every tensor of that dtype (older programs branch on it)."""
    for lib in (graphnn, torch):
        x, y = lib.ones(2), lib.tensor([1, 2])
        assert isinstance(x, lib.FloatTensor) and not isinstance(x, lib.DoubleTensor)
        assert isinstance(x.double(), lib.DoubleTensor) and isinstance(y, lib.LongTensor)
        assert isinstance(x > 0, lib.BoolTensor) and not isinstance(y, lib.FloatTensor)
        assert isinstance(lib.LongTensor([1]), lib.LongTensor) and not isinstance(3.0, lib.FloatTensor)
