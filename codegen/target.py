"""The LLVM target: the JIT's CPU (the host, or an x86-64 level chosen by GRAPHNN_TARGET) and generic x86-64 (export).

GRAPHNN_TARGET=host (the default) compiles for every feature of this CPU. An x86-64 micro-architecture level
(`x86-64`, `x86-64-v2`, `x86-64-v3` = AVX2/FMA, `x86-64-v4` = AVX-512) compiles for that level only, so one
machine can test the code other CPUs get (e.g. the AVX2 kernels on an AVX-512 CPU). A level the CPU cannot run
is refused with a clear error instead of faulting on an illegal instruction.
"""

from __future__ import annotations

import functools
import os

import llvmlite
import llvmlite.binding as llvm

from graphnn.ir import config

# The features each x86-64 level adds (x86-64 psABI), as LLVM names them.
_LEVELS = {
    "x86-64": ("sse", "sse2", "cx8", "cmov", "fxsr", "mmx"),
    "x86-64-v2": ("cx16", "sahf", "popcnt", "sse3", "sse4.1", "sse4.2", "ssse3"),
    "x86-64-v3": ("avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave"),
    "x86-64-v4": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}
LEVELS = tuple(_LEVELS)


class TargetError(ValueError):
    """GRAPHNN_TARGET names a target this build or this CPU cannot use."""


@functools.lru_cache(maxsize=None)
def init_llvm() -> None:
    # llvmlite >= 0.45 initializes the core itself; only the native target and printer are needed.
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def target_name() -> str:
    """The JIT target asked for: 'host' or an x86-64 level (GRAPHNN_TARGET)."""
    return config.get("GRAPHNN_TARGET") or "host"


def level_features(level: str) -> tuple:
    """Every feature an x86-64 level includes (its own and the lower levels')."""
    names = LEVELS[: LEVELS.index(level) + 1]
    return tuple(f for n in names for f in _LEVELS[n])


@functools.lru_cache(maxsize=None)
def host_features() -> str:
    """The host CPU's features as LLVM's '+a,-b,...' string."""
    init_llvm()
    return llvm.get_host_cpu_features().flatten()


@functools.lru_cache(maxsize=None)
def jit_cpu(name: str | None = None) -> tuple:
    """(cpu, features) the JIT compiles for; raises TargetError for an unknown or unsupported target."""
    name = target_name() if name is None else name
    init_llvm()
    if name == "host":
        return llvm.get_host_cpu_name(), _wide(host_features())
    if name not in _LEVELS:
        raise TargetError(f"GRAPHNN_TARGET={name!r} is not a known target: use host or one of {', '.join(LEVELS)}")
    have = {f[1:] for f in host_features().split(",") if f.startswith("+")}
    missing = [f for f in level_features(name) if f not in have]
    if missing:
        raise TargetError(
            f"GRAPHNN_TARGET={name}: this CPU ({llvm.get_host_cpu_name()}) lacks "
            f"{', '.join(missing)}, so code for {name} cannot run here"
        )
    return name, _wide(",".join("+" + f for f in level_features(name)))


def _wide(features: str) -> str:
    """With AVX-512, LLVM's loop vectorizer too uses 512-bit vectors, as graphnn's own vector code does: LLVM's
    tuning for several Intel cores prefers 256 bits (for the clock of early AVX-512 Xeons, which the GEMM's 512-bit
    micro-kernels engage anyway); on an Intel Xeon a GELU over 768 x 512 floats took 100 us instead of 74."""
    return features + ",-prefer-256-bit" if "+avx512f" in features.split(",") else features


@functools.lru_cache(maxsize=None)
def _machine(cpu: str, features: str, opt: int):
    init_llvm()
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu, features=features, opt=opt, codemodel="jitdefault"
    )


def host_machine(opt: int = 3):
    """Target machine of the JIT (the host CPU, or the level GRAPHNN_TARGET names)."""
    return _machine(*jit_cpu(), opt)


def target_features() -> str:
    """Features of the JIT target (the host's, or those of the chosen level)."""
    return jit_cpu()[1]


def target_key() -> str:
    """Identifies the code a machine produces: part of every compile-cache key."""
    init_llvm()
    cpu, features = jit_cpu()
    llvm_version = ".".join(map(str, llvm.llvm_version_info))
    return (
        f"{llvm.get_process_triple()}/{cpu}/{features}/llvm{llvm_version}/llvmlite{llvmlite.__version__}"
        f"/l1d{l1_data_bytes()}/l2{l2_bytes()}"
    )


def vector_width_bits() -> int:
    """Widest vector register of the JIT target: kernels pick their tile shapes from it."""
    f = set(target_features().split(","))
    if "+avx512f" in f:
        return 512
    if "+avx2" in f or "+avx" in f:
        return 256
    return 128


L1_DEFAULT = 32 << 10  # when the OS does not say: the smallest L1 data cache of AVX2/AVX-512 x86-64 cores
L2_DEFAULT = 512 << 10  # likewise for the per-core L2 (Zen 2-4; Intel cores have 1-2 MiB)


def _cache_bytes(level: int, default: int) -> int:
    """Size of the host's data (or unified) cache of this level as cpu0 sees it, or `default`."""
    path = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(path)):
            d = os.path.join(path, entry)
            with open(os.path.join(d, "level")) as f, open(os.path.join(d, "type")) as t:
                if f.read().strip() == str(level) and t.read().strip() in ("Data", "Unified"):
                    with open(os.path.join(d, "size")) as sz:
                        text = sz.read().strip().upper()
                    scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
                    return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return default


@functools.lru_cache(maxsize=None)
def l1_data_bytes() -> int:
    """Size of the host's level-1 data cache (per core): kernels size the blocks they keep in it from this."""
    return _cache_bytes(1, L1_DEFAULT)


@functools.lru_cache(maxsize=None)
def l2_bytes() -> int:
    """Size of the host's level-2 cache (per core): the GEMM sizes its packed block of A from this."""
    return _cache_bytes(2, L2_DEFAULT)


def vector_registers() -> int:
    """Vector registers of the JIT target (32 with AVX-512, else 16): kernels size register tiles from it."""
    return 32 if vector_width_bits() == 512 else 16
