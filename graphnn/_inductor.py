"""torch._inductor's settings that training scripts set (config.coordinate_descent_tuning, triton.*): graphnn's
compiler picks its kernels from the host CPU it runs on, so these are accepted and change nothing."""

from __future__ import annotations

import sys
from types import SimpleNamespace

config = SimpleNamespace(
    coordinate_descent_tuning=False,
    coordinate_descent_check_all_directions=False,
    max_autotune=False,
    max_autotune_gemm=False,
    freezing=False,
    fx_graph_cache=True,
    epilogue_fusion=True,
    aggressive_fusion=False,
    shape_padding=False,
    cpp_wrapper=False,
    force_fuse_int_mm_with_mul=False,
    use_mixed_mm=False,
    triton=SimpleNamespace(unique_kernel_names=False, cudagraphs=False, cudagraph_trees=False),
    cpp=SimpleNamespace(threads=-1, simdlen=None),
)

sys.modules[__name__ + ".config"] = config  # type: ignore[assignment]  (import torch._inductor.config as config)
