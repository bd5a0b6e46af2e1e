"""The vectorizable float32 and float64 math functions (codegen/mathfuncs.py, mathfuncs64.py) over dense grids: within the ulp budget the
rounding-error rules assume (ir/roundoff.py ULP_FUNCTIONS), NaN, infinities and signed zeros as NumPy."""

import math

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph
from graphnn.ir import Graph, TensorType
from graphnn.ir.roundoff import ErrorScalars

ULP_FUNCTIONS = ErrorScalars.ULP_FUNCTIONS

GRID = np.concatenate(
    [
        np.linspace(-6, 6, 120001),
        np.geomspace(1e-38, 6, 4001),
        -np.geomspace(1e-38, 6, 4001),
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 4.0, -4.0, 3.9, 88.0, -88.0],
    ]
).astype(np.float32)

REFERENCE = {
    "erf": np.vectorize(math.erf),
    "exp": np.exp,
    "tanh": np.tanh,
}


@pytest.mark.parametrize("op", sorted(REFERENCE))
def test_float32_function_within_its_ulp_budget(op, monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    x = g.add_input(TensorType(GRID.shape, "float32"), "x")
    g.outputs = [g.emit(op, x)]
    got = CompiledGraph(g)([GRID])[0]
    with np.errstate(all="ignore"):
        want = REFERENCE[op](GRID.astype(np.float64))
        want32 = want.astype(np.float32)
    special = ~np.isfinite(want32) | (want32 == 0)
    np.testing.assert_array_equal(got[special], want32[special])  # (inf, nan, signed zeros exactly)
    finite = ~special
    with np.errstate(all="ignore"):
        unit = np.spacing(np.abs(want32[finite]))
        ulps = np.abs(got[finite].astype(np.float64) - want[finite]) / unit
        # a result below the smallest normal number may carry that much absolute error (underflow), as the
        # rounding-error rules assume
        tiny = np.finfo(np.float32).tiny
        ulps[(np.abs(want[finite]) < tiny) & (np.abs(got[finite] - want[finite]) <= tiny)] = 0.0
    worst = int(np.argmax(ulps))
    assert ulps[worst] <= ULP_FUNCTIONS, f"{op}({GRID[finite][worst]!r}): {ulps[worst]:.2f} ulp"


GRID64 = np.concatenate(
    [
        np.linspace(-30, 30, 120001),
        np.geomspace(1e-300, 30, 4001),
        -np.geomspace(1e-300, 30, 4001),
        np.linspace(-746, 710, 20001),
        [0.0, -0.0, np.inf, -np.inf, np.nan, 0.5, -0.5, np.nextafter(0.5, 0), 709.78, -745.0, 20.0, -20.0],
    ]
)
REFERENCE64 = {"exp": np.exp, "tanh": np.tanh, "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x))}


@pytest.mark.parametrize("op", sorted(REFERENCE64))
def test_float64_function_within_its_ulp_budget(op, monkeypatch, tmp_path):
    """float64 against NumPy's libm-backed functions (the sigmoid reference is NumPy's own formula)."""
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    x = g.add_input(TensorType(GRID64.shape, "float64"), "x")
    g.outputs = [g.emit(op, x)]
    got = CompiledGraph(g)([GRID64])[0]
    with np.errstate(all="ignore"):
        want = REFERENCE64[op](GRID64)
    special = ~np.isfinite(want) | (want == 0)
    np.testing.assert_array_equal(got[special], want[special])
    finite = ~special
    with np.errstate(all="ignore"):
        ulps = np.abs(got[finite] - want[finite]) / np.spacing(np.abs(want[finite]))
        tiny = np.finfo(np.float64).tiny
        ulps[(np.abs(want[finite]) < tiny) & (np.abs(got[finite] - want[finite]) <= tiny)] = 0.0
    worst = int(np.argmax(ulps))
    assert ulps[worst] <= ULP_FUNCTIONS, f"{op}({GRID64[finite][worst]!r}): {ulps[worst]:.2f} ulp"
