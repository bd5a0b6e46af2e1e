"""The LLVM target: host CPU (JIT) or generic x86-64 (export)."""
from __future__ import annotations

import functools

import llvmlite.binding as llvm


@functools.lru_cache(maxsize=None)
def init_llvm() -> None:
    # llvmlite >= 0.45 initializes the core itself; only the native target and printer are needed.
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@functools.lru_cache(maxsize=None)
def host_machine(opt: int = 3):
    """Target machine for the host CPU with all of its features."""
    init_llvm()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=host_features(), opt=opt,
                                        codemodel="jitdefault")


@functools.lru_cache(maxsize=None)
def host_features() -> str:
    init_llvm()
    return llvm.get_host_cpu_features().flatten()


def target_key() -> str:
    """Identifies the code a machine produces: part of every compile-cache key."""
    init_llvm()
    return f"{llvm.get_process_triple()}/{llvm.get_host_cpu_name()}/{host_features()}/llvm{'.'.join(map(str, llvm.llvm_version_info))}"


def vector_width_bits() -> int:
    f = host_features()
    if "+avx512f" in f:
        return 512
    if "+avx2" in f or "+avx" in f:
        return 256
    return 128
