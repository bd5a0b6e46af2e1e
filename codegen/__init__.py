"""graphnn.codegen: lowering of fused IR groups to LLVM IR, JIT compilation, runtime."""
from .jit import STATS, cache_dir, compile_ir
from .module import LoweringError, build_module
from .runtime import CompiledGraph

__all__ = ["CompiledGraph", "build_module", "compile_ir", "cache_dir", "LoweringError", "STATS"]
