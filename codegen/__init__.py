"""graphnn.codegen: lowering of fused IR groups to LLVM IR, JIT compilation, runtime."""

from .collective import CollectiveError
from .jit import STATS, cache_dir, compile_ir, set_memory_cache_limit
from .module import LoweringError, build_module
from .runtime import CompiledGraph, get_num_threads, set_num_threads

__all__ = [
    "CollectiveError",
    "CompiledGraph",
    "set_num_threads",
    "get_num_threads",
    "build_module",
    "compile_ir",
    "cache_dir",
    "LoweringError",
    "STATS",
    "set_memory_cache_limit",
]
