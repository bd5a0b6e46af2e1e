"""`torch.backends` as a CPU-only library sees it: the CUDA, cuDNN and MPS switches exist and change nothing.

Programs written for GPUs set `torch.backends.cuda.matmul.allow_tf32 = True` or
`torch.backends.cudnn.benchmark = True`; here those are plain attributes (graphnn computes float32 in float32
on the CPU), and `is_available()` says no accelerator is present.
"""

from . import cuda, cudnn, mkldnn, mps, openmp  # noqa: F401
