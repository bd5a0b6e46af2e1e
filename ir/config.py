"""graphnn's settings: every GRAPHNN_* environment variable is declared here once, read through `get`, and the ones
that change generated code are part of every compile-cache key (`code_key`).

Values are read from the environment when asked for (programs and tests may change them at run time); a value
that does not parse is reported once (a warning naming the variable and the value) and the default is used.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Setting:
    name: str  # environment variable
    parse: Callable  # str -> value; raises ValueError for a bad value
    default: object
    doc: str
    affects_code: bool = False  # part of the compile-cache key


def _int_at_least(low: int) -> Callable:
    def parse(text: str) -> int:
        v = int(text)
        if v < low:
            raise ValueError(f"must be at least {low}")
        return v

    return parse


def _size_mb(text: str) -> float:
    v = float(text)
    if not (v >= 0 and v != float("inf")):
        raise ValueError("must be a finite number of megabytes, 0 or more")
    return v


def _seconds(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise ValueError("must be a positive number of seconds")
    return v


def _flag(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be 0 or 1")


def _tristate(text: str):
    """'auto' (None), or a flag."""
    return None if text.strip().lower() == "auto" else _flag(text)


def _names(text: str) -> frozenset:
    return frozenset(n.strip() for n in text.split(",") if n.strip())


def _text(text: str) -> str:
    return text.strip()


SETTINGS = {
    s.name: s
    for s in (
        Setting(
            "GRAPHNN_CACHE_DIR",
            _text,
            None,
            "on-disk compile cache folder (default ~/.cache/graphnn; 'off' disables it)",
        ),
        Setting(
            "GRAPHNN_TARGET",
            _text,
            "host",
            "CPU the JIT compiles for: host, or an x86-64 level (x86-64-v2, x86-64-v3 = AVX2, x86-64-v4 = AVX-512)",
            affects_code=True,
        ),
        Setting("GRAPHNN_NUM_THREADS", _int_at_least(1), None, "threads for large kernels (default: the CPU count)"),
        Setting(
            "GRAPHNN_UNROLL",
            _tristate,
            None,
            "LLVM loop unrolling: 1 on, 0 or auto off (see codegen/jit.py)",
            affects_code=True,
        ),
        Setting(
            "GRAPHNN_PARALLEL_COMPILE",
            _flag,
            True,
            "compile big graphs as two LLVM modules, one in a forked helper process",
            affects_code=True,
        ),
        Setting(
            "GRAPHNN_EAGER_NATIVE",
            _int_at_least(0),
            2,
            "eager calls of a heavy op (convolution, product, pooling, ...) with one signature from which it runs as "
            "native code (0: never)",
        ),
        Setting(
            "GRAPHNN_HOT_OPTIMIZER",
            _int_at_least(0),
            8,
            "eager steps of a graphnn optimizer after which its step (without a closure) runs compiled (0: never)",
        ),
        Setting(
            "GRAPHNN_DYNAMIC",
            _flag,
            True,
            "graphnn.compile serves every batch size with one compiled program once it has seen two (the two traces "
            "are unified into a graph whose sizes are symbolic in N; 0: compile each size separately)",
        ),
        Setting(
            "GRAPHNN_REPLAY",
            _flag,
            True,
            "eager calls of composite functions (cross_entropy, linear, layer_norm, ...) replay their traced ops from "
            "the third call with one signature, with an eager op's results at a fraction of its Python cost (0: off)",
        ),
        Setting(
            "GRAPHNN_HOT_BACKWARD",
            _int_at_least(0),
            8,
            "eager backward() calls through one recorded-graph structure after which its gradient graph (reused from "
            "the second call) runs compiled (0: every backward() builds its gradient graph anew)",
        ),
        Setting(
            "GRAPHNN_HOT_CELLS",
            _int_at_least(0),
            8,
            "eager calls of one RNN cell (LSTMCell, GRUCell, RNNCell), or of one RNN/LSTM/GRU layer with one input shape, "
            "after which it runs compiled (0: never)",
        ),
        Setting(
            "GRAPHNN_EPILOGUE_SIBLINGS",
            _flag,
            True,
            "compute elementwise kernels that read a product's result in the product's epilogue (ir/epilogue.py)",
            affects_code=True,
        ),
        Setting(
            "GRAPHNN_MERGE_KERNELS",
            _flag,
            True,
            "merge runs of consecutive elementwise kernels into one kernel writing several results (ir/merge.py)",
            affects_code=True,
        ),
        Setting(
            "GRAPHNN_PROFILE",
            _flag,
            False,
            "build code that counts cycles per kernel (CompiledGraph.profile())",
            affects_code=True,
        ),
        Setting(
            "GRAPHNN_MEMORY_CACHE_MB",
            _size_mb,
            256,
            "megabytes of compiled code kept loaded in memory (least recently used beyond)",
        ),
        Setting(
            "GRAPHNN_MAX_SPECIALIZATIONS",
            _int_at_least(1),
            64,
            "input signatures one compiled function keeps (least recently used beyond)",
        ),
        Setting(
            "GRAPHNN_PRINT_IR_AFTER",
            _names,
            frozenset(),
            "print the IR after these passes (comma-separated names, or 'all') to stderr",
        ),
        Setting("GRAPHNN_PASS_TIMES", _flag, False, "print the time each pass took to stderr"),
        Setting("GRAPHNN_VERIFY_PASSES", _flag, False, "run the IR verifier after every pass (the tests set it)"),
        Setting("GRAPHNN_DOT", _text, None, "Graphviz `dot` program used by graphnn viz (default: found on PATH)"),
        Setting(
            "GRAPHNN_DIST_TIMEOUT",
            _seconds,
            300.0,
            "seconds a rank waits in one collective (or one compiled step that communicates) before it aborts the "
            "job: a rank that died, hangs or runs another collective never makes the others hang",
        ),
        Setting(
            "GRAPHNN_DIST_OVERLAP",
            _flag,
            True,
            "compiled code starts a gradient bucket's allreduce when the bucket is filled and waits for it where it "
            "is first read (0: waits right after starting it)",
            affects_code=True,
        ),
    )
}

_reported: set = set()


def get(name: str):
    """The current value of setting `name` (its default when unset or invalid)."""
    s = SETTINGS[name]
    raw = os.environ.get(name)
    if raw is None or not raw.strip():  # unset or empty: the default
        return s.default
    try:
        return s.parse(raw)
    except ValueError as e:
        if (name, raw) not in _reported:
            _reported.add((name, raw))
            warnings.warn(
                f"{name}={raw!r} is not valid ({e}); using the default ({s.default!r})", RuntimeWarning, stacklevel=2
            )
        return s.default


def code_key() -> str:
    """The settings that change generated code, for compile-cache keys."""
    return " ".join(f"{n}={get(n)!r}" for n, s in sorted(SETTINGS.items()) if s.affects_code)


def describe() -> str:
    """A table of every setting, its current value and what it does (README and `graphnn --settings`)."""
    return "\n".join(f"{n}={get(n)!r}  # {s.doc}" for n, s in SETTINGS.items())
