"""Tensors print as PyTorch prints them: the same text for a range of values, dtypes and shapes (fixed and
scientific notation, integral floats, NaN/Inf, ints, bools, 0-d, empty, wrapped lines, summarized large tensors,
grad_fn / requires_grad suffixes). graphnn names its dtypes `graphnn.float64` where PyTorch writes `torch.float64`;
that suffix is compared with the line break before it (which depends on its length) removed."""

import re

import numpy as np
import pytest

import graphnn

R = np.random.default_rng(0)

CASES = {
    "issue example": np.array([0.0640, 1.0]),
    "integral floats": np.array([1.0, 2.0, -3.0]),
    "small values: sci": np.array([1e-5, 1.0]),
    "large values: sci": np.array([1e9, 1.0]),
    "wide range: sci": np.array([0.001, 5.0]),
    "integral and large": np.array([1e10, 2e10]),
    "nan inf zero": np.array([np.nan, np.inf, -np.inf, 0.0, 1.5]),
    "only nan": np.array([np.nan, np.nan]),
    "zeros": np.zeros(3),
    "negative": np.array([-1.5, 100.25, 3.0]),
    "0-d float": np.array(3.14159),
    "0-d integral float": np.array(2.0),
    "0-d tiny": np.array(1e-7),
    "random vector": R.standard_normal(30),
    "random matrix": R.standard_normal((6, 9)),
    "3-d": R.standard_normal((3, 4, 5)),
    "wraps": R.standard_normal((2, 30)) * 1000,
    "big float vector: summarized": np.arange(2000) / 7,
    "big matrix: summarized": R.standard_normal((50, 40)),
    "big 3-d: summarized": R.standard_normal((10, 10, 11)),
    "summarized sci": np.concatenate([R.standard_normal(1500), [1e-9]]),
    "ints": np.arange(10),
    "negative ints": np.array([-100, 5, 12345678901]),
    "int matrix summarized": np.arange(1200).reshape(30, 40),
    "0-d int": np.array(5),
    "bools": np.array([True, False, True]),
    "0-d bool": np.array(True),
    "bool matrix": R.standard_normal((3, 4)) > 0,
    "empty float": np.zeros(0),
    "empty 2-d": np.zeros((0, 3)),
    "empty int": np.zeros(0, np.int64),
    "empty bool 3-d": np.zeros((2, 0, 3), bool),
}


def _normalized(text: str) -> str:
    text = text.replace("graphnn.", "torch.")
    return re.sub(r",\n *dtype=", ", dtype=", text)


# float data in float32 and float64; integer and bool data in their own dtype
DTYPE_CASES = [(n, d) for n, a in CASES.items() for d in (("float32", "float64") if a.dtype.kind == "f" else ("own",))]


@pytest.mark.parametrize("name,dtype", DTYPE_CASES, ids=[f"{n}-{d}" for n, d in DTYPE_CASES])
def test_repr_matches_torch(torch, name, dtype):
    arr = CASES[name] if dtype == "own" else CASES[name].astype(dtype)
    want = repr(torch.from_numpy(np.array(arr)))
    got = repr(graphnn.from_numpy(np.array(arr)))
    assert _normalized(got) == _normalized(want)


def test_autograd_suffixes_match_torch(torch):
    for lib in (graphnn, torch):
        x = lib.tensor([1.5, -2.0], requires_grad=True)
        texts = [repr(x), repr(x * 2), repr((x * 2).sum()), repr(x.detach())]
        if lib is graphnn:
            got = texts
        else:
            want = texts
    assert got == want


def test_parameter_and_long_suffix_wrap(torch):
    p = graphnn.nn.Parameter(graphnn.tensor([[0.5, 1.25]]))
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([[0.5, 1.25]])))
    arr = R.standard_normal((3, 7))
    got = repr(graphnn.tensor(arr, dtype=graphnn.float64, requires_grad=True) * 2)
    want = repr(torch.tensor(arr, dtype=torch.float64, requires_grad=True) * 2)
    assert _normalized(got) == _normalized(want)


def test_tensors_printed_inside_a_compiled_function_show_every_calls_values():
    """As torch.compile (a graph break at the print): the function runs eagerly after one warning, printing the
    values of each call (it printed `tensor(<symbolic f32[2]>)` once, at the trace); f-string formats of a 0-d
    result too (they raised TypeError)."""
    seen = []
    note = seen.append  # (a list named by the compiled function itself would make it run eagerly: a state change)

    @graphnn.compile
    def f(x):
        y = x * 2
        note(repr(y))
        note(f"{y.sum():.2f}")
        return y

    with pytest.warns(graphnn.TraceWarning, match="printing a tensor"):
        f(graphnn.ones(2))
    f(graphnn.zeros(2))
    assert seen == ["tensor([2., 2.])", "4.00", "tensor([0., 0.])", "0.00"]


PRINT_OPTIONS = [
    {"precision": 2},
    {"threshold": 5, "edgeitems": 1},
    {"sci_mode": False},
    {"sci_mode": True},
    {"linewidth": 30},
    {"profile": "short"},
    {"profile": "full"},
    {"profile": "short", "precision": 6},
]


@pytest.mark.parametrize("opts", PRINT_OPTIONS, ids=[repr(o) for o in PRINT_OPTIONS])
def test_print_options_match_torch(torch, opts):
    """set_printoptions changes repr as PyTorch's does (and leaves NumPy's own printing alone)."""
    arrays = [
        np.array([1.23456, 2.0]),
        np.arange(10.0),
        np.array([1e-8, 1.0, 1e6]),
        R.standard_normal((4, 30)),
        np.arange(12.0),
    ]
    numpy_before = np.get_printoptions()
    try:
        for lib in (torch, graphnn):
            lib.set_printoptions(**opts)
        for arr in arrays:
            a = arr.astype(np.float32)
            assert _normalized(repr(graphnn.from_numpy(a))) == _normalized(repr(torch.from_numpy(a)))
        assert np.get_printoptions() == numpy_before
    finally:
        for lib in (torch, graphnn):
            lib.set_printoptions(profile="default", sci_mode=None)
